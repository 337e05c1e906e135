package powerbi

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/mapping"
)

// benchColumns and benchRow are the 10-column row of the project's
// throughput benchmark: int64, date, timestamp, 2 strings, int64, 2
// decimals, float64, bool.
var benchColumns = []mapping.Column{
	{From: "Sales[OrderID]", To: "order_id", Type: mapping.Type{Kind: mapping.Int64}},
	{From: "Sales[OrderDate]", To: "order_date", Type: mapping.Type{Kind: mapping.Date}},
	{From: "Sales[ShippedAt]", To: "shipped_at", Type: mapping.Type{Kind: mapping.Timestamp}},
	{From: "Customer[Name]", To: "name", Type: mapping.Type{Kind: mapping.String}},
	{From: "Product[Category]", To: "category", Type: mapping.Type{Kind: mapping.String}},
	{From: "Sales[Quantity]", To: "quantity", Type: mapping.Type{Kind: mapping.Int64}},
	{From: "Sales[Unit Price]", To: "unit_price", Type: mapping.Type{Kind: mapping.Decimal, Precision: 19, Scale: 4}},
	{From: "[Total Sales]", To: "total_sales", Type: mapping.Type{Kind: mapping.Decimal, Precision: 19, Scale: 4}},
	{From: "Sales[Discount]", To: "discount", Type: mapping.Type{Kind: mapping.Float64}},
	{From: "Sales[Returned]", To: "returned", Type: mapping.Type{Kind: mapping.Bool}},
}

func benchRow(escapedName, escapedKey bool) [][2][]byte {
	name := `"Contoso Ltd"`
	if escapedName {
		name = `"Caf\u00e9 \"Bistro\""`
	}
	row := [][2]string{
		{`"Sales[OrderID]"`, `9007199254740993`},
		{`"Sales[OrderDate]"`, `"2024-02-29T00:00:00"`},
		{`"Sales[ShippedAt]"`, `"2024-03-31T23:59:59.997"`},
		{`"Customer[Name]"`, name},
		{`"Product[Category]"`, `"Bikes"`},
		{`"Sales[Quantity]"`, `3`},
		{`"Sales[Unit Price]"`, `1234.5678`},
		{`"[Total Sales]"`, `3703.7034`},
		{`"Sales[Discount]"`, `0.075`},
		{`"Sales[Returned]"`, `false`},
	}
	if escapedKey {
		row[0][0] = `"Sales[Order\u0049D]"`
	}
	out := make([][2][]byte, len(row))
	for i, f := range row {
		out[i] = [2][]byte{[]byte(f[0]), []byte(f[1])}
	}
	return out
}

// BenchmarkBuilder measures one row per op: allocs/op is allocations per
// row, which should round to 0 (the per-batch buffers are amortised over
// DefaultBatchRows rows).
func BenchmarkBuilder(b *testing.B) {
	for _, bc := range []struct {
		name                     string
		escapedValue, escapedKey bool
	}{{"plain", false, false}, {"escaped-string", true, false}, {"escaped-key", false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			row := benchRow(bc.escapedValue, bc.escapedKey)
			bld := NewBuilder(memory.NewGoAllocator(), benchColumns, mapping.UnmappedError, 0, func(rec arrow.RecordBatch) error {
				rec.Release()
				return nil
			})
			defer bld.Release()
			addRow := func() {
				for _, f := range row {
					if err := bld.Field(f[0], f[1]); err != nil {
						b.Fatal(err)
					}
				}
				if err := bld.EndRow(); err != nil {
					b.Fatal(err)
				}
			}
			// Warm up: one full batch so buffers and scratch space have grown.
			for range mapping.DefaultBatchRows {
				addRow()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				addRow()
			}
			if err := bld.Flush(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestBuilderAllocsPerRow guards the steady state: the only allocations are
// the batch buffers (about 100 per batch), nothing per row or per field.
func TestBuilderAllocsPerRow(t *testing.T) {
	for _, escaped := range []bool{false, true} {
		row := benchRow(escaped, escaped)
		bld := NewBuilder(memory.NewGoAllocator(), benchColumns, mapping.UnmappedError, 0, func(rec arrow.RecordBatch) error {
			rec.Release()
			return nil
		})
		batch := func() {
			for range mapping.DefaultBatchRows {
				for _, f := range row {
					if err := bld.Field(f[0], f[1]); err != nil {
						t.Fatal(err)
					}
				}
				if err := bld.EndRow(); err != nil {
					t.Fatal(err)
				}
			}
		}
		batch() // warm up
		perBatch := testing.AllocsPerRun(3, batch)
		bld.Release()
		t.Logf("escaped=%v: %.0f allocations per batch of %d rows", escaped, perBatch, mapping.DefaultBatchRows)
		if perBatch > mapping.DefaultBatchRows/64 {
			t.Errorf("escaped=%v: %.0f allocations per batch of %d rows, want at most one per 64 rows", escaped, perBatch, mapping.DefaultBatchRows)
		}
	}
}

// benchTableColumns maps the fake's benchmark table (fakepbi.BenchTable,
// fakepbi.BenchMapping).
var benchTableColumns = []mapping.Column{
	{From: "Sales[OrderID]", To: "order_id", Type: mapping.Type{Kind: mapping.Int64}},
	{From: "Sales[OrderDate]", To: "order_date", Type: mapping.Type{Kind: mapping.Date}},
	{From: "Sales[ShippedAt]", To: "shipped_at", Type: mapping.Type{Kind: mapping.Timestamp}},
	{From: "Sales[Customer]", To: "customer", Type: mapping.Type{Kind: mapping.String}},
	{From: "Sales[Product]", To: "product", Type: mapping.Type{Kind: mapping.String}},
	{From: "Sales[Quantity]", To: "quantity", Type: mapping.Type{Kind: mapping.Int64}},
	{From: "Sales[UnitPrice]", To: "unit_price", Type: mapping.Type{Kind: mapping.Decimal, Precision: 19, Scale: 4}},
	{From: "Sales[Amount]", To: "amount", Type: mapping.Type{Kind: mapping.Decimal, Precision: 19, Scale: 4}},
	{From: "Sales[Discount]", To: "discount", Type: mapping.Type{Kind: mapping.Float64}},
	{From: "Sales[Returned]", To: "returned", Type: mapping.Type{Kind: mapping.Bool}},
}

// benchResponse is the body the fake sends for rows rows of its benchmark
// table, with no service limit applied.
func benchResponse(b *testing.B, rows int) []byte {
	b.Helper()
	var buf bytes.Buffer
	opts := fakepbi.Options{MaxRows: -1, MaxValues: -1, MaxBytes: -1}
	if err := fakepbi.WriteResponse(&buf, []*fakepbi.Table{fakepbi.BenchTable(rows)}, "EVALUATE Sales", true, opts); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDecode measures the hot path of a live read on a whole response
// (40,000 rows, about 12 MB, under the service's 15 MB): the streaming
// decoder alone ("tokens"), and the decoder feeding a Builder of the
// table's mapping ("builder"). MB/s is of response JSON.
func BenchmarkDecode(b *testing.B) {
	const rows = 40_000
	body := benchResponse(b, rows)
	for _, bc := range []struct {
		name string
		recv func() (rowReceiver, func())
	}{
		{"tokens", func() (rowReceiver, func()) { return &nopRows{}, func() {} }},
		{"builder", func() (rowReceiver, func()) {
			bld := NewBuilder(memory.NewGoAllocator(), benchTableColumns, mapping.UnmappedError, 0, func(rec arrow.RecordBatch) error {
				rec.Release()
				return nil
			})
			return bld, bld.Release
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				recv, release := bc.recv()
				st, err := Decode(bytes.NewReader(body), recv)
				release()
				if err != nil || st.Rows != rows {
					b.Fatalf("rows %d: %v", st.Rows, err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
