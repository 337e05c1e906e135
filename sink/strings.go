package sink

import (
	"bytes"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// A string column of a batch is utf8 or dictionary<signed integer, utf8>
// (mapping.IsStringArrow): the Arrow source hands the service's
// dictionary-encoded strings on as they come. Both are the same Parquet,
// CSV and PostgreSQL column; the Parquet sink writes such a column's
// dictionary as it is (see dictColumn), the others read each value through
// it.

// stringColumn reads the values of a string column, plain or
// dictionary-encoded.
type stringColumn struct {
	values *array.String     // the values; a dictionary column's dictionary
	dict   *array.Dictionary // nil for a plain column
	idx32  []int32           // the dictionary's indices when they are int32 (the service's)
}

// stringsOf reads a, an array of a string column's type.
func stringsOf(a arrow.Array) stringColumn {
	d, ok := a.(*array.Dictionary)
	if !ok {
		return stringColumn{values: a.(*array.String)}
	}
	c := stringColumn{values: d.Dictionary().(*array.String), dict: d}
	if i, ok := d.Indices().(*array.Int32); ok {
		c.idx32 = i.Int32Values()
	}
	return c
}

// index is the index in the dictionary of valid row i of a dictionary
// column.
func (c stringColumn) index(i int) int {
	if c.idx32 != nil {
		return int(c.idx32[i])
	}
	return c.dict.GetValueIndex(i)
}

// Value is value i (the empty string for a null).
func (c stringColumn) Value(i int) string {
	if c.dict == nil {
		return c.values.Value(i)
	}
	if c.dict.IsNull(i) {
		return ""
	}
	return c.values.Value(c.index(i))
}

// mayHoldByte reports whether a value may hold the byte b: false is
// certain (it looks at every value's bytes at once, a dictionary's
// included, which may hold values no row uses).
func (c stringColumn) mayHoldByte(b byte) bool {
	return bytes.IndexByte(c.values.ValueBytes(), b) >= 0
}
