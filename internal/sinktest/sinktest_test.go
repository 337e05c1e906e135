package sinktest

import (
	"math"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestParseCSV(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [][]string
	}{
		{"", nil},
		{"a,b\n", [][]string{{"a", "b"}}},
		{"a,b\r\n1,\r\n", [][]string{{"a", "b"}, {"1", CSVNull}}},
		{"a\n\n\"\"\n", [][]string{{"a"}, {CSVNull}, {""}}},
		{"\"x,\"\"y\"\"\nz\",\" s \"\n", [][]string{{"x,\"y\"\nz", " s "}}},
	} {
		got, err := ParseCSV([]byte(tc.in))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCSV(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"\xef\xbb\xbfa\n", // BOM
		"a",               // no line ending
		"a,b\n1\n",        // short record
		"a\"b\n",          // quote in an unquoted field
		"\"a\"b\n",        // text after a closing quote
		"\"a\n",           // unclosed quote
		"a\rb\n",          // bare CR
		"a\nb\r\n",        // mixed line endings
		"a,",              // ends after a comma
	} {
		if got, err := ParseCSV([]byte(in)); err == nil {
			t.Errorf("ParseCSV(%q) = %q, want an error", in, got)
		}
	}
}

func TestCSVRows(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		Field("i", arrow.PrimitiveTypes.Int64), Field("f", arrow.PrimitiveTypes.Float64),
		Field("b", arrow.FixedWidthTypes.Boolean), Field("s", arrow.BinaryTypes.String),
	}, nil)
	rows, err := CSVRows([][]string{{"i", "f", "b", "s"}, {"-1", "-0", "true", ""}, {CSVNull, "NaN", "false", CSVNull}}, schema)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]any{{int64(-1), math.Copysign(0, -1), true, ""}, {nil, math.NaN(), false, nil}}
	if d := DiffRows(want, rows); d != "" {
		t.Error(d)
	}
	if d := DiffRows([][]any{{0.0}}, [][]any{{math.Copysign(0, -1)}}); d == "" {
		t.Error("DiffRows takes -0 for 0")
	}
	if _, err := CSVRows([][]string{{"x", "f", "b", "s"}}, schema); err == nil {
		t.Error("wrong header accepted")
	}
	if _, err := CSVRows([][]string{{"i", "f", "b", "s"}, {"1.5", "0", "true", "x"}}, schema); err == nil {
		t.Error("1.5 accepted as int64")
	}
}

func TestNewBatch(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		Field("d", Decimal(5, 2)), Field("dt", arrow.FixedWidthTypes.Date32), Field("ts", Timestamp),
	}, nil)
	rec, err := NewBatch(mem, schema, [][]any{{"-1.5", "2024-02-29", "2024-03-31T23:59:59.997"}, {nil, nil, nil}})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if got := rec.Column(0).(*array.Decimal128).Value(0); got != decimal128.FromI64(-150) {
		t.Errorf("decimal -1.5 at scale 2 is %v, want -150", got)
	}
	if got := rec.Column(2).(*array.Timestamp).Value(0); got != 1711929599997000 {
		t.Errorf("timestamp %d", got)
	}
	for _, bad := range [][]any{
		{"1.234", nil, nil},            // too many fraction digits
		{"1234.5", nil, nil},           // too many digits
		{nil, "2024-02-30", nil},       // no such day
		{nil, nil, "2024-03-31 23:59"}, // wrong layout
		{int64(1), nil, nil},           // wrong Go type
		{nil, nil},                     // too few values
	} {
		if rec, err := NewBatch(mem, schema, [][]any{bad}); err == nil {
			rec.Release()
			t.Errorf("row %v accepted", bad)
		}
	}
}
