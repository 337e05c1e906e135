package sinktest

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// CheckedAlloc returns an allocator that fails t if anything allocated from
// it is still held when the test ends.
func CheckedAlloc(t *testing.T) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// AllTypes is a schema with every column type of pbicopy's batches, two
// decimals among them.
var AllTypes = arrow.NewSchema([]arrow.Field{
	Field("s", arrow.BinaryTypes.String),
	Field("i", arrow.PrimitiveTypes.Int64),
	Field("f", arrow.PrimitiveTypes.Float64),
	Field("d38", Decimal(38, 10)),
	Field("d19", Decimal(19, 4)),
	Field("b", arrow.FixedWidthTypes.Boolean),
	Field("dt", arrow.FixedWidthTypes.Date32),
	Field("ts", Timestamp),
}, nil)

// DictStrings is schema with every utf8 column dictionary-encoded
// (dictionary<int32, utf8>), as the Arrow source hands strings on.
func DictStrings(schema *arrow.Schema) *arrow.Schema {
	fields := schema.Fields()
	for i, f := range fields {
		if f.Type.ID() == arrow.STRING {
			fields[i].Type = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
		}
	}
	md := schema.Metadata()
	return arrow.NewSchema(fields, &md)
}

// AllTypesRows exercises every type of AllTypes at its edges, with nulls in
// every column, in the normalised form.
func AllTypesRows() [][]any {
	negZero := math.Copysign(0, -1)
	return [][]any{
		{"plain", int64(42), 12.5, "12.3400000000", "12.3400", true, "2024-02-29", "2024-03-31T23:59:59.997"},
		{nil, nil, nil, nil, nil, nil, nil, nil},
		{"", int64(0), 0.0, "0.0000000000", "0.0000", false, "1970-01-01", "1970-01-01T00:00:00"},
		{"x", int64(math.MaxInt64), 0.1, "9999999999999999999999999999.9999999999", "999999999999999.9999", true, "9999-12-31", "9999-12-31T23:59:59.999999"},
		{"y", int64(math.MinInt64), negZero, "-9999999999999999999999999999.9999999999", "-999999999999999.9999", false, "0001-01-01", "0001-01-01T00:00:00"},
		{"é 日本 😀", int64(-1), 1e308, "-0.0000000001", "-0.0001", nil, "1900-01-01", "1900-01-01T00:00:00"},
		{`say "hi", then go`, nil, 5e-324, "123456789012345678.0123456789", "-922337203685477.5808", true, nil, "2024-02-29T12:34:56.123456"},
		{"line1\nline2\r\nline3\rend", int64(7), math.Inf(1), "1.0000000000", "922337203685477.5807", false, "2000-01-01", "1969-12-31T23:59:59.999999"},
		{" padded ", int64(8), math.Inf(-1), nil, "0.0001", true, "1969-12-31", nil},
		{",", int64(9), math.NaN(), "-123.4560000000", "100.0000", nil, "2024-12-31", "2024-01-01T00:00:00.000001"},
		{`"`, int64(10), -1234567.89, "0.5000000000", "-1.5000", true, "1600-03-01", "1600-02-29T23:00:00.5"},
		{"tail,", int64(11), 1e21, "7.0000000000", "7.0000", false, "2100-03-01", "2100-02-28T01:02:03.04"},
		{"\u00a0nbsp", int64(12), 1e-7, "-7.0000000000", "-7.0000", true, "1999-12-31", "1999-12-31T23:59:59"},
	}
}

// ManyRows returns n rows of AllTypes with varied, mostly non-null values.
func ManyRows(n int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		var s any = fmt.Sprintf("customer %d", i%5000)
		if i%97 == 0 {
			s = nil
		}
		rows[i] = []any{
			s,
			int64(i) * 7919,
			float64(i) / 3,
			fmt.Sprintf("%d.%010d", i*31, i%10000000000),
			fmt.Sprintf("-%d.%04d", i+1, i%10000),
			i%3 == 0,
			DateString(int64(i % 40000)),
			TimestampString(int64(i) * 1_000_003_007),
		}
	}
	return rows
}

// BatchWriter is what WriteBatches writes to: a sink.
type BatchWriter interface {
	Write(ctx context.Context, rec arrow.RecordBatch) error
}

// WriteBatches builds batches of schema from rows, in chunks of the given
// sizes (the last one repeated), some of them slices of a larger batch so
// that their arrays start at an offset, and writes them to s, releasing
// each after Write returns.
func WriteBatches(t *testing.T, s BatchWriter, mem memory.Allocator, schema *arrow.Schema, rows [][]any, sizes ...int) {
	t.Helper()
	ctx := context.Background()
	for i, k := 0, 0; i < len(rows); k++ {
		n := sizes[min(k, len(sizes)-1)]
		n = min(n, len(rows)-i)
		var rec arrow.RecordBatch
		if k%2 == 1 && i > 0 {
			// A slice with a non-zero offset into a batch that starts one row early.
			whole := MustBatch(t, mem, schema, rows[i-1:i+n])
			rec = whole.NewSlice(1, int64(n+1))
			whole.Release()
		} else {
			rec = MustBatch(t, mem, schema, rows[i:i+n])
		}
		err := s.Write(ctx, rec)
		rec.Release()
		if err != nil {
			t.Fatalf("write rows %d to %d: %v", i, i+n, err)
		}
		i += n
	}
}

// ReadParquet reads a Parquet file with arrow-go and with xitongsys,
// checks that they agree and that the Arrow schema read back is schema,
// and returns the rows.
func ReadParquet(t *testing.T, path string, schema *arrow.Schema, mem memory.Allocator) [][]any {
	t.Helper()
	got, rows, err := ReadParquetArrow(path, mem)
	if err != nil {
		t.Fatal(err)
	}
	if !SameColumns(got, schema) {
		t.Errorf("schema read back by pqarrow:\n%s\nwant:\n%s", got, schema)
	}
	xrows, err := ReadParquetXitongsys(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffRows(rows, xrows); d != "" {
		t.Errorf("xitongsys disagrees with pqarrow: %s", d)
	}
	return rows
}

// ReadCSVFile reads a CSV file written for schema and returns its rows.
func ReadCSVFile(t *testing.T, path string, schema *arrow.Schema) [][]any {
	t.Helper()
	recs, err := ReadCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := CSVRows(recs, schema)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// SameColumns reports whether a and b have the same field names, types and
// nullability, whatever their metadata.
func SameColumns(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.NumFields() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || fa.Nullable != fb.Nullable || !arrow.TypeEqual(fa.Type, fb.Type) {
			return false
		}
	}
	return true
}
