package powerbi

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pbicopy/pbicopy/mapping"
)

var fuzzTypes = []string{
	"string", "int64", "float64", "decimal(19,4)", "decimal(38,10)", "decimal(38,0)", "decimal(5,5)",
	"bool", "date", "timestamp",
}

// FuzzBuilderValues feeds arbitrary bytes as the value of a column of every
// type. Each must give a ValueError or exactly one value (possibly null),
// never a panic or a leak; for well-formed JSON, accepted values are checked
// against an independent reading where one is cheap to make.
func FuzzBuilderValues(f *testing.F) {
	for _, s := range []string{
		`null`, `true`, `false`, `0`, `-0`, `12`, `12.0`, `12.50`, `-0.0001`, `1e2`, `1.5E-2`, `1e999`, `-1e-999`,
		`9223372036854775807`, `-9223372036854775808`, `9223372036854775808`,
		`99999999999999999999999999999999999999`, `999999999999999999999999999999999999999`,
		`340282366920938463463374607431768211457`, `0.12345678901234567890123456789012345678`,
		`"x"`, `""`, `"a\nb"`, `"\ud83d\ude00"`, `"\ud83d"`, `"caf\u00e9"`, `"\"`, `"`, `"abc`,
		`"2024-02-29"`, `"2024-02-29T00:00:00"`, `"2024-03-31T23:59:59.997"`, `"2024-03-31T23:59:59.9999995"`,
		`"2023-02-29"`, `"2024-02-29T00:00:00+02:00"`, `"2024-02-29T00:00:00Z"`, `"0000-01-01"`,
		`{}`, `[]`, `-`, `.`, `1.`, `.5`, `1e`, `1e+`, `0x10`, `Inf`, `-Inf`, `NaN`, `nope`, ``,
		`"Infinity"`, `"-Infinity"`, `"NaN"`, `Infinity`, `1E+15`, `-9.223372036854775808E18`, `15E-1`, `0e99999`,
		`"9999-12-31T23:59:59.9999999"`,
		"\xff", "\"\xff\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		for _, ts := range fuzzTypes {
			checkFuzzValue(t, mustType(t, ts), value)
		}
	})
}

func checkFuzzValue(t *testing.T, typ mapping.Type, value []byte) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var recs []arrow.RecordBatch
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	// Batches of one row: a builder reserves its batch up front, which at the
	// default size cost more than the value being checked.
	b := NewBuilder(mem, []mapping.Column{{From: "[V]", To: "v", Type: typ}}, mapping.UnmappedError, 1, func(r arrow.RecordBatch) error {
		recs = append(recs, r)
		return nil
	})
	defer b.Release()

	err := b.Field([]byte(`"[V]"`), value)
	if err != nil {
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Fatalf("%s %q: error %v is not a ValueError", typ, value, err)
		}
		if ve.Reason == "" || len(ve.Error()) > 400 {
			t.Fatalf("%s %q: poor message %q", typ, value, ve.Error())
		}
		if jsontext.Value(value).IsValid() {
			if want, fits, known := exactValue(typ, value); known && fits {
				t.Fatalf("%s %q refused (%v), want %s", typ, value, err, want)
			}
		}
		return
	}
	if err := b.EndRow(); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].NumRows() != 1 {
		t.Fatalf("%s %q: no error and %d batches", typ, value, len(recs))
	}
	col := recs[0].Column(0)
	if col.IsNull(0) {
		if len(value) == 0 || value[0] != 'n' {
			t.Fatalf("%s %q: null without a null literal", typ, value)
		}
		return
	}
	if !jsontext.Value(value).IsValid() {
		return // the decoder never sends it; no panic and a value is all we ask
	}
	switch typ.Kind {
	case mapping.String:
		want := string(value)
		if value[0] == '"' {
			u, err := jsontext.AppendUnquote(nil, value)
			if err != nil {
				t.Fatalf("%s %q: accepted, but it does not unquote: %v", typ, value, err)
			}
			want = string(u)
		}
		if got := col.(*array.String).Value(0); got != want {
			t.Fatalf("%s %q = %q, want %q", typ, value, got, want)
		}
	case mapping.Int64:
		got := col.(*array.Int64).Value(0)
		if want, fits, known := exactValue(typ, value); known && (!fits || want.Cmp(big.NewInt(got)) != 0) {
			t.Fatalf("%s %q accepted as %d, want %v (fits: %v)", typ, value, got, want, fits)
		}
	case mapping.Decimal:
		got := col.(*array.Decimal128).Value(0).BigInt()
		if want, fits, known := exactValue(typ, value); known && (!fits || want.Cmp(got) != 0) {
			t.Fatalf("%s %q accepted as unscaled %s, want %v (fits: %v)", typ, value, got, want, fits)
		}
	case mapping.Float64:
		got := col.(*array.Float64).Value(0)
		want, special := map[string]float64{`"Infinity"`: math.Inf(1), `"-Infinity"`: math.Inf(-1), `"NaN"`: math.NaN()}[string(value)]
		switch {
		case special && math.Float64bits(got) != math.Float64bits(want):
			t.Fatalf("%s %q accepted as %v", typ, value, got)
		case !special && (math.IsInf(got, 0) || math.IsNaN(got)):
			t.Fatalf("%s %q accepted as %v", typ, value, got)
		}
	case mapping.Date:
		u, _ := jsontext.AppendUnquote(nil, value)
		got := col.(*array.Date32).Value(0).ToTime().Format(time.DateOnly)
		if !strings.HasPrefix(string(u), got) {
			t.Fatalf("%s %q accepted as %s", typ, value, got)
		}
	}
}

// exactValue is the independent reading of a valid JSON value for an int64
// or decimal column, with math/big: the integer (unscaled for a decimal) and
// whether the column must accept it. known is false for other types,
// non-numbers and numbers whose exponent would make math/big slow.
func exactValue(typ mapping.Type, value []byte) (v *big.Int, fits, known bool) {
	if (typ.Kind != mapping.Int64 && typ.Kind != mapping.Decimal) || !isNumber(value) {
		return nil, false, false
	}
	if i := bytes.IndexAny(value, "eE"); i >= 0 && len(bytes.TrimLeft(value[i+1:], "+-0")) > 3 {
		return nil, false, false
	}
	r, ok := new(big.Rat).SetString(string(value))
	if !ok {
		return nil, false, false
	}
	if typ.Kind == mapping.Int64 {
		// Whole values are accepted with or without an exponent.
		fits := r.IsInt() && r.Num().IsInt64()
		return r.Num(), fits, true
	}
	ten := func(n int32) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(ten(typ.Scale)))
	if !scaled.IsInt() {
		return nil, false, true
	}
	return scaled.Num(), new(big.Int).Abs(scaled.Num()).Cmp(ten(typ.Precision)) < 0, true
}

// TestDecimalAgainstBigRat is a deterministic sweep of the decimal parser
// (and of the int64 parser, exponents included) against math/big over
// numbers built from digit patterns, scales and exponents around the
// limits.
func TestDecimalAgainstBigRat(t *testing.T) {
	mantissas := []string{"0", "1", "5", "9", "10", "12.5", "99.99", "100", "0.0001", "0.00010",
		"123456789012345678", "18446744073709551615", "18446744073709551616",
		"9999999999999999999999999999999999999", "99999999999999999999999999999999999999",
		"999999999999999999999999999999999999999", "170141183460469231731687303715884105727",
		"1.7014118346046923173168730371588410572", "0.99999999999999999999999999999999999999",
		"1" + strings.Repeat("0", 77), "0." + strings.Repeat("0", 76) + "1",
		"9223372036854775807", "9223372036854775808", "9.223372036854775807", "922337203685477580.8", "0.00012"}
	exps := []string{"", "e0", "e1", "e-1", "e4", "e-4", "E+10", "e-38", "e37", "e38", "e-39", "e-40", "e-77", "e-78", "e400", "e-400",
		"e18", "E+18", "e19", "e-18", "e-19", "E+15", "e+2", "e-5"}
	for _, ts := range []string{"int64", "decimal(1,0)", "decimal(5,2)", "decimal(19,4)", "decimal(38,0)", "decimal(38,10)", "decimal(38,38)"} {
		typ := mustType(t, ts)
		for _, m := range mantissas {
			for _, e := range exps {
				for _, sign := range []string{"", "-"} {
					checkFuzzValue(t, typ, []byte(sign+m+e))
				}
			}
		}
	}
}
