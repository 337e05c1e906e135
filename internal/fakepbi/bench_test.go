package fakepbi

import (
	"io"
	"testing"
)

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// BenchmarkWriteResponse writes the 1,000,000-row benchmark body (about
// 290 MB) to io.Discard.
func BenchmarkWriteResponse(b *testing.B) {
	const rows = 1_000_000
	tables := []*Table{BenchTable(rows)}
	opts := Options{MaxRows: -1, MaxValues: -1, MaxBytes: -1}
	var cw countingWriter
	if err := WriteResponse(&cw, tables, "EVALUATE Sales", true, opts); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(cw.n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := WriteResponse(io.Discard, tables, "EVALUATE Sales", true, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkPagingQuery runs one keyset page of 10,000 rows deep in a
// 3,000,000-row table.
func BenchmarkPagingQuery(b *testing.B) {
	tables := []*Table{BenchTable(3_000_000)}
	q := "EVALUATE TOPN(10000, FILTER(Sales, Sales[OrderID] > 2500000), Sales[OrderID], ASC) ORDER BY Sales[OrderID] ASC"
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteResponse(io.Discard, tables, q, true, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
