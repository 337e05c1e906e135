package sink

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// benchSchema is the 10-column result of the benchmarks.
var benchSchema = arrow.NewSchema([]arrow.Field{
	sinktest.Field("order_id", arrow.PrimitiveTypes.Int64),
	sinktest.Field("order_date", arrow.FixedWidthTypes.Date32),
	sinktest.Field("updated_at", sinktest.Timestamp),
	sinktest.Field("customer", arrow.BinaryTypes.String),
	sinktest.Field("product", arrow.BinaryTypes.String),
	sinktest.Field("quantity", arrow.PrimitiveTypes.Int64),
	sinktest.Field("unit_price", sinktest.Decimal(19, 4)),
	sinktest.Field("amount", sinktest.Decimal(19, 4)),
	sinktest.Field("discount", arrow.PrimitiveTypes.Float64),
	sinktest.Field("shipped", arrow.FixedWidthTypes.Boolean),
}, nil)

// benchBatches builds n batches of benchSchema with rows rows each: order
// ids counting up, a few thousand customers, a few hundred products, prices
// with cents, the odd null.
func benchBatches(mem memory.Allocator, rows, n int) []arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, benchSchema)
	defer b.Release()
	out := make([]arrow.RecordBatch, n)
	for k := range out {
		for i := range rows {
			id := int64(k*rows + i)
			b.Field(0).(*array.Int64Builder).Append(1_000_000 + id)
			b.Field(1).(*array.Date32Builder).Append(arrow.Date32(19000 + id%1500))
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + id*1_234_567))
			b.Field(3).(*array.StringBuilder).Append(fmt.Sprintf("Customer %05d", id*7919%5000))
			if id%50 == 0 {
				b.Field(4).(*array.StringBuilder).AppendNull()
			} else {
				b.Field(4).(*array.StringBuilder).Append(fmt.Sprintf("Product, \"model\" %d", id%300))
			}
			qty := 1 + id%20
			price := 1999 + (id%300)*1250 // in 1/10000
			b.Field(5).(*array.Int64Builder).Append(qty)
			b.Field(6).(*array.Decimal128Builder).Append(decimal128.FromI64(price * 100))
			b.Field(7).(*array.Decimal128Builder).Append(decimal128.FromI64(price * 100 * qty))
			b.Field(8).(*array.Float64Builder).Append(float64(id%7) * 0.05)
			if id%13 == 0 {
				b.Field(9).(*array.BooleanBuilder).AppendNull()
			} else {
				b.Field(9).(*array.BooleanBuilder).Append(id%3 != 0)
			}
		}
		out[k] = b.NewRecordBatch()
	}
	return out
}

// benchmarkSink writes 1,000,000 rows in batches of 16,384 (the last one
// shorter) to a new file per iteration, commit included.
func benchmarkSink(b *testing.B, ext string, open func(Destination) (Sink, error)) {
	const total, batchRows = 1_000_000, 16_384
	mem := memory.NewGoAllocator()
	batches := benchBatches(mem, batchRows, 4)
	defer func() {
		for _, r := range batches {
			r.Release()
		}
	}()
	last := batches[0].NewSlice(0, total%batchRows)
	defer last.Release()
	path := filepath.Join(b.TempDir(), "bench."+ext)
	ctx := context.Background()
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		dst, err := OpenLocal(path)
		if err != nil {
			b.Fatal(err)
		}
		s, err := open(dst)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < total/batchRows; i++ {
			if err := s.Write(ctx, batches[i%len(batches)]); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Write(ctx, last); err != nil {
			b.Fatal(err)
		}
		res, err := s.Commit(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if res.Rows != total {
			b.Fatalf("%d rows written", res.Rows)
		}
		bytes = res.Bytes
	}
	b.StopTimer()
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(bytes)/(1<<20), "MiB/file")
}

func BenchmarkParquetSink(b *testing.B) {
	benchmarkSink(b, "parquet", func(dst Destination) (Sink, error) {
		return NewParquet(dst, benchSchema, ParquetOptions{}, nil)
	})
}

func BenchmarkCSVSink(b *testing.B) {
	benchmarkSink(b, "csv", func(dst Destination) (Sink, error) {
		return NewCSV(dst, benchSchema, CSVOptions{})
	})
}
