package powerbi

import (
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/mapping"
)

// checkedMem returns an allocator that fails the test if any byte is still
// allocated once the test and its later cleanups have finished. Register it
// before anything that releases memory in a cleanup: cleanups run last-in,
// first-out.
func checkedMem(t testing.TB) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// collector keeps the emitted batches and releases them at the end of the
// test.
type collector struct {
	recs []arrow.RecordBatch
	err  error // returned by emit when set
}

func newCollector(t testing.TB) *collector {
	c := &collector{}
	t.Cleanup(c.release)
	return c
}

func (c *collector) emit(rec arrow.RecordBatch) error {
	c.recs = append(c.recs, rec)
	return c.err
}

func (c *collector) release() {
	for _, r := range c.recs {
		r.Release()
	}
	c.recs = nil
}

func (c *collector) rows() int64 {
	var n int64
	for _, r := range c.recs {
		n += r.NumRows()
	}
	return n
}

// column returns the values of column i over every batch, as cellValue
// renders them.
func (c *collector) column(t testing.TB, i int) []any {
	t.Helper()
	var out []any
	for _, r := range c.recs {
		col := r.Column(i)
		for j := 0; j < col.Len(); j++ {
			out = append(out, cellValue(t, col, j))
		}
	}
	return out
}

// kv is one field of a row: the raw JSON key (quotes included) and the raw
// JSON value, exactly as the decoder hands them over.
type kv struct{ k, v string }

type receiver interface {
	Field(key, value []byte) error
	EndRow() error
}

// feed sends rows to r and returns the first error.
func feed(r receiver, rows ...[]kv) error {
	for _, row := range rows {
		for _, f := range row {
			if err := r.Field([]byte(f.k), []byte(f.v)); err != nil {
				return err
			}
		}
		if err := r.EndRow(); err != nil {
			return err
		}
	}
	return nil
}

// cellValue renders one value: nil for null; string, int64, bool as they
// are; float64 as float64; decimals as their text at the column's scale;
// dates as 2006-01-02; timestamps as 2006-01-02T15:04:05.000000.
func cellValue(t testing.TB, col arrow.Array, j int) any {
	t.Helper()
	if col.IsNull(j) {
		return nil
	}
	switch a := col.(type) {
	case *array.String:
		return a.Value(j)
	case *array.Dictionary: // the Arrow source's strings, as they come
		return cellValue(t, a.Dictionary(), a.GetValueIndex(j))
	case *array.Int64:
		return a.Value(j)
	case *array.Float64:
		return a.Value(j)
	case *array.Decimal128:
		return a.Value(j).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Boolean:
		return a.Value(j)
	case *array.Date32:
		return a.Value(j).ToTime().Format(time.DateOnly)
	case *array.Timestamp:
		return a.Value(j).ToTime(arrow.Microsecond).Format("2006-01-02T15:04:05.000000")
	}
	t.Fatalf("unexpected array type %T", col)
	return nil
}

// sameValue compares two rendered values; floats by their bits, so that -0
// and 0 differ.
func sameValue(a, b any) bool {
	fa, ok1 := a.(float64)
	fb, ok2 := b.(float64)
	if ok1 && ok2 {
		return math.Float64bits(fa) == math.Float64bits(fb)
	}
	return a == b
}

func showValue(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 100 {
			return strconv.Quote(v[:100]) + "..."
		}
		return strconv.Quote(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

func mustType(t testing.TB, s string) mapping.Type {
	t.Helper()
	typ, err := mapping.ParseType(s)
	if err != nil {
		t.Fatal(err)
	}
	return typ
}
