package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func mustType(t *testing.T, s string) Type {
	t.Helper()
	typ, err := ParseType(s)
	if err != nil {
		t.Fatal(err)
	}
	return typ
}

func TestNaturalTypes(t *testing.T) {
	cases := []struct {
		arrow arrow.DataType
		want  string // type, or the start of the error
	}{
		{arrow.PrimitiveTypes.Int64, "int64"},
		{arrow.PrimitiveTypes.Int32, "int64"},
		{arrow.PrimitiveTypes.Float64, "float64"},
		{&arrow.Decimal128Type{Precision: 19, Scale: 4}, "decimal(19,4)"},
		{arrow.FixedWidthTypes.Date64, "timestamp"},
		{arrow.FixedWidthTypes.Date32, "date"},
		{&arrow.TimestampType{Unit: arrow.Nanosecond}, "timestamp"},
		{arrow.FixedWidthTypes.Boolean, "bool"},
		{arrow.BinaryTypes.String, "string"},
		{&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, "string"},
		{arrow.BinaryTypes.Binary, "is binary"},
		{arrow.DenseUnionOf([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int64}}, []arrow.UnionTypeCode{0}), "is a Variant"},
	}
	for _, c := range cases {
		typ, err := NaturalType(c.arrow)
		got := typ.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %s, want %s", c.arrow, got, c.want)
		}
	}
}

// cast runs the cast of arr to typ and returns the result as text, or the
// error.
func cast(t *testing.T, mem memory.Allocator, arr arrow.Array, typ string) (string, error) {
	t.Helper()
	defer arr.Release()
	c, err := NewCast(arr.DataType(), mustType(t, typ))
	if err != nil {
		return "", err
	}
	out, err := c(mem, arr)
	if err != nil {
		return "", err
	}
	defer out.Release()
	if !arrow.TypeEqual(out.DataType(), ArrowType(arr.DataType(), mustType(t, typ))) {
		t.Errorf("cast to %s gave Arrow %s", typ, out.DataType())
	}
	var parts []string
	for i := range out.Len() {
		parts = append(parts, out.ValueStr(i))
	}
	return strings.Join(parts, " "), nil
}

func TestCasts(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	ms := func(s string) arrow.Date64 {
		tm, err := time.Parse("2006-01-02T15:04:05.999", s)
		if err != nil {
			t.Fatal(err)
		}
		return arrow.Date64(tm.UnixMilli())
	}
	date64 := func(vals ...arrow.Date64) arrow.Array {
		b := array.NewDate64Builder(mem)
		defer b.Release()
		b.AppendValues(vals, nil)
		b.AppendNull()
		return b.NewArray()
	}
	floats := func(vals ...float64) arrow.Array {
		b := array.NewFloat64Builder(mem)
		defer b.Release()
		b.AppendValues(vals, nil)
		return b.NewArray()
	}
	ints := func(vals ...int64) arrow.Array {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.AppendValues(vals, nil)
		return b.NewArray()
	}
	decimals := func(vals ...int64) arrow.Array {
		b := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 19, Scale: 4})
		defer b.Release()
		for _, v := range vals {
			b.Append(decimal128.FromI64(v))
		}
		return b.NewArray()
	}

	cases := []struct {
		name string
		arr  arrow.Array
		typ  string
		want string // values, or the error's text
	}{
		{"date64 to timestamp", date64(ms("2024-02-29T13:45:06.789"), ms("1899-12-30T00:00:00")), "timestamp",
			"2024-02-29T13:45:06.789 1899-12-30T00:00:00 (null)"},
		{"date64 at midnight to date keeps the day", date64(ms("2024-02-29T00:00:00"), ms("1899-12-30T00:00:00")), "date", "2024-02-29 1899-12-30 (null)"},
		{"date64 with a time to date", date64(ms("2024-02-29T00:00:00"), ms("2024-03-01T09:15:00")), "date", "value 2024-03-01T09:15:00 has a time of day"},
		{"date64 to string", date64(ms("2024-03-31T23:59:59.997")), "string", "2024-03-31T23:59:59.997 (null)"},
		{"float to int64, whole", floats(2, -3), "int64", "2 -3"},
		{"float to int64, lossy", floats(2, 2.5), "int64", "value 2.5 is not a whole number"},
		{"float to decimal", floats(1.25, -0.0001), "decimal(19,4)", "1.25 -0.0001"},
		{"float to decimal, too many decimals", floats(6.666666666666667), "decimal(19,4)", "has more than 4 decimals"},
		{"int64 to decimal", ints(7, -12), "decimal(19,4)", "7 -12"},
		{"int64 to decimal, too many digits", ints(123456), "decimal(6,2)", "has more than 6 digits"},
		{"int64 to float64", ints(1 << 40), "float64", "1.099511627776e+12"},
		{"int64 to string", ints(-5), "string", "-5"},
		{"decimal to int64", decimals(120000, -30000), "int64", "12 -3"},
		{"decimal to int64, lossy", decimals(125000), "int64", "value 12.5000 is not a whole number"},
		{"decimal rescaled", decimals(125000), "decimal(10,2)", "12.5"},
		{"decimal rescaled, lossy", decimals(125001), "decimal(10,2)", "has more than 2 decimals"},
		{"decimal to float64", decimals(125000), "float64", "12.5"},
		{"decimal to string", decimals(125000), "string", "12.5000"},
		{"int64 to bool", ints(1), "bool", "cannot be cast"},
	}
	for _, c := range cases {
		got, err := cast(t, mem, c.arr, c.typ)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}

	// A lossy value names its index.
	_, err := cast(t, mem, floats(1, 2, 2.5), "int64")
	var ce *CastError
	if !errors.As(err, &ce) || ce.Index != 2 {
		t.Errorf("error %v, want index 2", err)
	}

	// A string cannot become a number, whatever its values.
	sb := array.NewStringBuilder(mem)
	sb.Append("1")
	strs := sb.NewArray()
	sb.Release()
	if _, err := cast(t, mem, strs, "int64"); err == nil || !strings.Contains(err.Error(), "cannot be cast") {
		t.Errorf("string to int64: %v", err)
	}
}

func TestDictionaryAndVariantToString(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	db := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
	for _, s := range []string{"b", "a", "b"} {
		if err := db.AppendString(s); err != nil {
			t.Fatal(err)
		}
	}
	db.AppendNull()
	dict := db.NewArray()
	// Dictionary-encoded strings go on as they are: the same array.
	keep, err := NewCast(dict.DataType(), mustType(t, "string"))
	if err != nil {
		t.Fatal(err)
	}
	if kept, err := keep(mem, dict); err != nil || kept != dict {
		t.Errorf("dictionary to string: %v %v, want the same array", kept, err)
	} else {
		kept.Release()
	}
	if got, err := cast(t, mem, dict, "string"); err != nil || got != "b a b (null)" {
		t.Errorf("dictionary: %q %v", got, err)
	}
	// A slice (as batches are cut into) keeps its offset into the indices
	// and the validity bitmap; an empty string stays apart from a null.
	for _, s := range []string{"", "a", "ccc"} {
		if err := db.AppendString(s); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if i%3 == 0 {
			db.AppendNull()
		} else if err := db.AppendString(strings.Repeat("x", i)); err != nil {
			t.Fatal(err)
		}
	}
	long := db.NewArray()
	db.Release()
	slice := array.NewSlice(long, 2, 13)
	long.Release()
	const sliced = "ccc (null) x xx (null) xxxx xxxxx (null) xxxxxxx xxxxxxxx (null)"
	dec, err := DecodeDictionary(mem, slice.(*array.Dictionary))
	if err != nil {
		t.Fatal(err)
	}
	if got := dec.String(); dec.DataType().ID() != arrow.STRING || got != `["ccc" (null) "x" "xx" (null) "xxxx" "xxxxx" (null) "xxxxxxx" "xxxxxxxx" (null)]` {
		t.Errorf("decoded sliced dictionary: %s %s", dec.DataType(), got)
	}
	dec.Release()
	if got, err := cast(t, mem, slice, "string"); err != nil || got != sliced {
		t.Errorf("sliced dictionary: %q %v", got, err)
	}
	slice.Release()

	// A Variant: a dense union of an int64, a string and a double.
	ub := array.NewEmptyDenseUnionBuilder(mem)
	ib := array.NewInt64Builder(mem)
	stb := array.NewStringBuilder(mem)
	fb := array.NewFloat64Builder(mem)
	ub.AppendChild(ib, "i")
	ub.AppendChild(stb, "s")
	ub.AppendChild(fb, "f")
	ib.Release()
	stb.Release()
	fb.Release()
	ub.Append(0)
	ub.Child(0).(*array.Int64Builder).Append(42)
	ub.Append(1)
	ub.Child(1).(*array.StringBuilder).Append("N/A")
	ub.Append(2)
	ub.Child(2).(*array.Float64Builder).Append(2.5)
	ub.Append(0)
	ub.Child(0).(*array.Int64Builder).AppendNull()
	variant := ub.NewArray()
	ub.Release()
	if _, err := NewCast(variant.DataType(), Type{Kind: Int64}); err == nil {
		t.Error("a Variant casts to int64")
	}
	if got, err := cast(t, mem, variant, "string"); err != nil || got != "42 N/A 2.5 (null)" {
		t.Errorf("variant: %q %v", got, err)
	}
}
