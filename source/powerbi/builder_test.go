package powerbi

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pbicopy/pbicopy/mapping"
)

// valueCase is one raw JSON value sent to a one-column builder of type typ:
// either want is the value that comes out (rendered as cellValue does), or
// wantErr is a part of the ValueError's reason.
type valueCase struct {
	typ     string
	raw     string
	want    any
	wantErr string
}

func runValueCases(t *testing.T, cases []valueCase) {
	t.Helper()
	for _, tc := range cases {
		name := tc.typ + "/" + tc.raw
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			mem := checkedMem(t)
			out := newCollector(t)
			typ := mustType(t, tc.typ)
			b := NewBuilder(mem, []mapping.Column{{From: "T[V]", To: "v", Type: typ}}, mapping.UnmappedError, 0, out.emit)
			defer b.Release()

			err := b.Field([]byte(`"T[V]"`), []byte(tc.raw))
			if tc.wantErr != "" {
				var ve *ValueError
				if !errors.As(err, &ve) {
					t.Fatalf("value %s into %s: got error %v, want a *ValueError with %q", tc.raw, typ, err, tc.wantErr)
				}
				if !strings.Contains(ve.Reason, tc.wantErr) {
					t.Fatalf("value %s into %s: reason %q, want it to contain %q", tc.raw, typ, ve.Reason, tc.wantErr)
				}
				if ve.Row != 1 || ve.Column != "v" || ve.From != "T[V]" || ve.Type != typ {
					t.Fatalf("ValueError fields: %+v", ve)
				}
				return
			}
			if err != nil {
				t.Fatalf("value %s into %s: %v", tc.raw, typ, err)
			}
			if err := b.EndRow(); err != nil {
				t.Fatal(err)
			}
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
			if len(out.recs) != 1 || out.recs[0].NumRows() != 1 {
				t.Fatalf("got %d batches (%d rows), want one batch of one row", len(out.recs), out.rows())
			}
			got := out.column(t, 0)[0]
			if !sameValue(got, tc.want) {
				t.Fatalf("value %s into %s = %s (%T), want %s (%T)", tc.raw, typ, showValue(got), got, showValue(tc.want), tc.want)
			}
		})
	}
}

func TestBuilderNullAndAbsent(t *testing.T) {
	types := []string{"string", "int64", "float64", "decimal(19,4)", "bool", "date", "timestamp"}
	mem := checkedMem(t)
	out := newCollector(t)
	var cols []mapping.Column
	var nulls []kv
	for i, ts := range types {
		cols = append(cols, mapping.Column{From: "T[" + ts + "]", To: "c" + strconv.Itoa(i), Type: mustType(t, ts)})
		nulls = append(nulls, kv{`"T[` + ts + `]"`, `null`})
	}
	b := NewBuilder(mem, cols, mapping.UnmappedError, 0, out.emit)
	defer b.Release()
	typical := []kv{
		{`"T[string]"`, `"x"`}, {`"T[int64]"`, `7`}, {`"T[float64]"`, `0.5`}, {`"T[decimal(19,4)]"`, `1.25`},
		{`"T[bool]"`, `true`}, {`"T[date]"`, `"2024-02-29T00:00:00"`}, {`"T[timestamp]"`, `"2024-03-31T23:59:59.997"`},
	}
	// Rows: explicit nulls, typical values, no keys at all, typical values in
	// reverse key order, every other key absent.
	reversed := slices.Clone(typical)
	slices.Reverse(reversed)
	var sparse []kv
	for i, f := range typical {
		if i%2 == 0 {
			sparse = append(sparse, f)
		}
	}
	if err := feed(b, nulls, typical, nil, reversed, sparse); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	wantTypical := []any{"x", int64(7), 0.5, "1.2500", true, "2024-02-29", "2024-03-31T23:59:59.997000"}
	for i := range types {
		got := out.column(t, i)
		want := []any{nil, wantTypical[i], nil, wantTypical[i], nil}
		if i%2 == 0 {
			want[4] = wantTypical[i]
		}
		if len(got) != len(want) {
			t.Fatalf("column %s: %d values, want %d", types[i], len(got), len(want))
		}
		for r := range want {
			if !sameValue(got[r], want[r]) {
				t.Errorf("column %s row %d = %v, want %v", types[i], r+1, got[r], want[r])
			}
		}
	}
	if rows := b.Rows(); rows != 5 {
		t.Errorf("Rows() = %d, want 5", rows)
	}
	if nulls := out.recs[0].Column(0).NullN(); nulls != 2 {
		t.Errorf("string column has %d nulls, want 2", nulls)
	}
}

func TestBuilderString(t *testing.T) {
	runValueCases(t, []valueCase{
		{"string", `"x"`, "x", ""},
		{"string", `""`, "", ""},
		{"string", `"a\nb"`, "a\nb", ""},
		{"string", `"say \"hi\""`, `say "hi"`, ""},
		{"string", `"back\\slash \/ tab\t cr\r ff\f bs\b"`, "back\\slash / tab\t cr\r ff\f bs\b", ""},
		{"string", `"caf\u00e9"`, "café", ""},
		{"string", `"caf\u00E9"`, "café", ""},
		{"string", `"\u0000"`, "\x00", ""},
		{"string", `"\ud83d\ude00"`, "😀", ""},
		{"string", `"grin \ud83d\ude00 and caf\u00e9\n"`, "grin 😀 and café\n", ""},
		{"string", `"Straße 😀 日本"`, "Straße 😀 日本", ""},
		// Numbers keep their literal text; booleans become true/false.
		{"string", `12.50`, "12.50", ""},
		{"string", `-0`, "-0", ""},
		{"string", `1e+308`, "1e+308", ""},
		{"string", `-1.5E-7`, "-1.5E-7", ""},
		{"string", `12345678901234567890123`, "12345678901234567890123", ""},
		{"string", `true`, "true", ""},
		{"string", `false`, "false", ""},
		{"string", `null`, nil, ""},
		{"string", `{"a":1}`, nil, "is an object, not a string"},
		{"string", `[1]`, nil, "is an array, not a string"},
		{"string", `"bad \x escape"`, nil, "invalid"},
		{"string", `"lone \ud83d surrogate"`, nil, "invalid surrogate pair"},
		{"string", `"unterminated`, nil, "expected a JSON string"},
	})
}

func TestBuilderHugeString(t *testing.T) {
	mem := checkedMem(t)
	out := newCollector(t)
	b := NewBuilder(mem, []mapping.Column{{From: "T[S]", To: "s", Type: mapping.Type{Kind: mapping.String}}}, mapping.UnmappedError, 2, out.emit)
	defer b.Release()
	plain := strings.Repeat("abcdefghij", 100_000)  // 1 MB
	escaped := strings.Repeat(`x\n\u00e9`, 200_000) // 1.6 MB raw
	wantEscaped := strings.Repeat("x\né", 200_000)
	rows := [][]kv{
		{{`"T[S]"`, `"` + plain + `"`}},
		{{`"T[S]"`, `"` + escaped + `"`}},
		{{`"T[S]"`, `"short"`}},
	}
	if err := feed(b, rows...); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	got := out.column(t, 0)
	want := []any{plain, wantEscaped, "short"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: got %d bytes, want %d bytes", i+1, len(got[i].(string)), len(want[i].(string)))
		}
	}
}

func TestBuilderInt64(t *testing.T) {
	runValueCases(t, []valueCase{
		{"int64", `0`, int64(0), ""},
		{"int64", `-0`, int64(0), ""},
		{"int64", `12`, int64(12), ""},
		{"int64", `-12`, int64(-12), ""},
		{"int64", `-9223372036854775808`, int64(math.MinInt64), ""},
		{"int64", `9223372036854775807`, int64(math.MaxInt64), ""},
		{"int64", `9007199254740993`, int64(9007199254740993), ""}, // 2^53+1: no float64 on the way
		{"int64", `1234567890123456789`, int64(1234567890123456789), ""},
		{"int64", `12.0`, int64(12), ""},
		{"int64", `-12.000`, int64(-12), ""},
		{"int64", `null`, nil, ""},
		{"int64", `12.5`, nil, "is not an integer"},
		{"int64", `12.01`, nil, "is not an integer"},
		// Whole numbers in exponent form, as serialisers write large
		// doubles, exactly (never through float64).
		{"int64", `1e3`, int64(1000), ""},
		{"int64", `1E3`, int64(1000), ""},
		{"int64", `1E+15`, int64(1_000_000_000_000_000), ""},
		{"int64", `-1E+15`, int64(-1_000_000_000_000_000), ""},
		{"int64", `12.0e0`, int64(12), ""},
		{"int64", `1.5E+1`, int64(15), ""},
		{"int64", `100E-2`, int64(1), ""},
		{"int64", `0.0012e4`, int64(12), ""},
		{"int64", `9007199254740993E0`, int64(9007199254740993), ""},
		{"int64", `9.007199254740993E15`, int64(9007199254740993), ""},
		{"int64", `9.223372036854775807E18`, int64(math.MaxInt64), ""},
		{"int64", `-9.223372036854775808E18`, int64(math.MinInt64), ""},
		{"int64", `0e99999999999999999999`, int64(0), ""},
		{"int64", `-0.000E-5`, int64(0), ""},
		{"int64", `00012E1`, int64(120), ""},
		{"int64", `1.5e0`, nil, "is not an integer"},
		{"int64", `15E-1`, nil, "is not an integer"},
		{"int64", `1e-99999999999999999999`, nil, "is not an integer"},
		{"int64", `9.223372036854775808E18`, nil, "is out of the int64 range"},
		{"int64", `-9.223372036854775809E18`, nil, "is out of the int64 range"},
		{"int64", `1e19`, nil, "is out of the int64 range"},
		{"int64", `1E+400`, nil, "is out of the int64 range"},
		{"int64", `1e99999999999999999999`, nil, "is out of the int64 range"},
		{"int64", `1e`, nil, "expected a JSON number"},
		{"int64", `1e+`, nil, "expected a JSON number"},
		{"int64", `1.e5`, int64(100000), ""}, // not JSON; the decoder never sends it
		{"int64", `9223372036854775808`, nil, "is out of the int64 range"},
		{"int64", `-9223372036854775809`, nil, "is out of the int64 range"},
		{"int64", `18446744073709551615`, nil, "is out of the int64 range"},
		{"int64", `18446744073709551616`, nil, "is out of the int64 range"},
		{"int64", `123456789012345678901234567890`, nil, "is out of the int64 range"},
		{"int64", `"12"`, nil, "is a string, not a number"},
		{"int64", `true`, nil, "is a boolean, not a number"},
		{"int64", `{}`, nil, "is an object, not a number"},
		{"int64", `[]`, nil, "is an array, not a number"},
		{"int64", `-`, nil, "expected a JSON number"},
	})
}

func TestBuilderFloat64(t *testing.T) {
	runValueCases(t, []valueCase{
		{"float64", `0`, 0.0, ""},
		{"float64", `-0`, math.Copysign(0, -1), ""},
		{"float64", `-0.0`, math.Copysign(0, -1), ""},
		{"float64", `0.1`, 0.1, ""},
		{"float64", `12`, 12.0, ""},
		{"float64", `-12.5`, -12.5, ""},
		{"float64", `1e+308`, 1e308, ""},
		{"float64", `1.7976931348623157e308`, math.MaxFloat64, ""},
		{"float64", `5e-324`, 5e-324, ""},
		{"float64", `1E-05`, 1e-5, ""},
		{"float64", `9007199254740993`, 9007199254740992.0, ""}, // nearest float64
		{"float64", `1e-999`, 0.0, ""},                          // underflows to zero
		{"float64", `null`, nil, ""},
		{"float64", `1e999`, nil, "is out of the float64 range"},
		{"float64", `-1e999`, nil, "is out of the float64 range"},
		{"float64", `1.8e308`, nil, "is out of the float64 range"},
		// DAX returns these for x/0 and 0/0; serialisers write them as
		// strings. The bare tokens are not JSON (the decoder refuses them).
		{"float64", `"Infinity"`, math.Inf(1), ""},
		{"float64", `"-Infinity"`, math.Inf(-1), ""},
		{"float64", `"NaN"`, math.NaN(), ""},
		{"float64", `"nan"`, nil, "is a string, not a number"},
		{"float64", `"Inf"`, nil, "is a string, not a number"},
		{"float64", `"+Infinity"`, nil, "is a string, not a number"},
		{"float64", `"1.5"`, nil, "is a string, not a number"},
		{"float64", `false`, nil, "is a boolean, not a number"},
		{"float64", `1.2.3`, nil, "expected a JSON number"},
	})
}

func TestBuilderDecimal(t *testing.T) {
	const nines38 = "99999999999999999999999999999999999999"
	runValueCases(t, []valueCase{
		{"decimal(19,4)", `12.5`, "12.5000", ""},
		{"decimal(19,4)", `-0.0001`, "-0.0001", ""},
		{"decimal(19,4)", `0`, "0.0000", ""},
		{"decimal(19,4)", `-0`, "0.0000", ""},
		{"decimal(19,4)", `0.0000`, "0.0000", ""},
		{"decimal(19,4)", `12`, "12.0000", ""},
		{"decimal(19,4)", `12.0`, "12.0000", ""},
		{"decimal(19,4)", `1e2`, "100.0000", ""},
		{"decimal(19,4)", `1E+2`, "100.0000", ""},
		{"decimal(19,4)", `1.5E-2`, "0.0150", ""},
		{"decimal(19,4)", `15e-4`, "0.0015", ""},
		{"decimal(19,4)", `12.34000000`, "12.3400", ""},
		{"decimal(19,4)", `999999999999999.9999`, "999999999999999.9999", ""},
		{"decimal(19,4)", `-999999999999999.9999`, "-999999999999999.9999", ""},
		{"decimal(19,4)", `0e999`, "0.0000", ""},
		{"decimal(19,4)", `0e-999`, "0.0000", ""},
		{"decimal(19,4)", `0e99999999999999999999`, "0.0000", ""},
		{"decimal(19,4)", "1" + strings.Repeat("0", 450) + "e-450", "1.0000", ""},
		{"decimal(19,4)", "0." + strings.Repeat("0", 450) + "1e451", "1.0000", ""},
		{"decimal(19,4)", `1e99999999999999999999`, nil, "does not fit decimal(19,4)"},
		{"decimal(19,4)", `1e-99999999999999999999`, nil, "has more than 4 digits after the decimal point"},
		{"decimal(19,4)", `null`, nil, ""},
		{"decimal(19,4)", `1000000000000000`, nil, "does not fit decimal(19,4)"},
		{"decimal(19,4)", `1e15`, nil, "does not fit decimal(19,4)"},
		{"decimal(19,4)", `12.00001`, nil, "has more than 4 digits after the decimal point"},
		{"decimal(19,4)", `1e-5`, nil, "has more than 4 digits after the decimal point"},
		{"decimal(19,4)", `1e401`, nil, "does not fit decimal(19,4)"},
		{"decimal(19,4)", `1e-401`, nil, "has more than 4 digits after the decimal point"},
		{"decimal(19,4)", `"12.5"`, nil, "is a string, not a number"},
		{"decimal(19,4)", `true`, nil, "is a boolean, not a number"},
		{"decimal(19,4)", `1e`, nil, "expected a JSON number"},
		{"decimal(19,4)", `-`, nil, "expected a JSON number"},
		// Fractional digits beyond the scale must be zeros: nothing is rounded.
		{"decimal(10,2)", `12.340000`, "12.34", ""},
		{"decimal(10,2)", `-12.340000`, "-12.34", ""},
		{"decimal(10,2)", `12.345`, nil, "has more than 2 digits after the decimal point"},
		{"decimal(10,2)", `12.3401`, nil, "has more than 2 digits after the decimal point"},
		{"decimal(10,2)", `0.0010`, nil, "has more than 2 digits after the decimal point"},
		{"decimal(5,2)", `999.99`, "999.99", ""},
		{"decimal(5,2)", `-999.99`, "-999.99", ""},
		{"decimal(5,2)", `1000`, nil, "does not fit decimal(5,2)"},
		{"decimal(5,2)", `-1000.00`, nil, "does not fit decimal(5,2)"},
		{"decimal(1,0)", `9`, "9", ""},
		{"decimal(1,0)", `10`, nil, "does not fit decimal(1,0)"},
		{"decimal(1,0)", `10e-1`, "1", ""},
		// decimal(38,10): beyond 64 bits, both signs.
		{"decimal(38,10)", `1234567890123456789012345678.0123456789`, "1234567890123456789012345678.0123456789", ""},
		{"decimal(38,10)", `-1234567890123456789012345678.0123456789`, "-1234567890123456789012345678.0123456789", ""},
		{"decimal(38,10)", `9999999999999999999999999999.9999999999`, "9999999999999999999999999999.9999999999", ""},
		{"decimal(38,10)", `-9999999999999999999999999999.9999999999`, "-9999999999999999999999999999.9999999999", ""},
		{"decimal(38,10)", `18446744073709551616`, "18446744073709551616.0000000000", ""},
		{"decimal(38,10)", `10000000000000000000000000000`, nil, "does not fit decimal(38,10)"},
		{"decimal(38,10)", `1e28`, nil, "does not fit decimal(38,10)"},
		// decimal(38,0): the full 38 digits, and never one more (int128 must not wrap).
		{"decimal(38,0)", nines38, nines38, ""},
		{"decimal(38,0)", "-" + nines38, "-" + nines38, ""},
		{"decimal(38,0)", `1e37`, "10000000000000000000000000000000000000", ""},
		{"decimal(38,0)", `9.9999999999999999999999999999999999999e37`, nines38, ""},
		{"decimal(38,0)", nines38 + ".000", nines38, ""},
		{"decimal(38,0)", nines38 + "9", nil, "does not fit decimal(38,0)"},
		{"decimal(38,0)", "-" + nines38 + "9", nil, "does not fit decimal(38,0)"},
		{"decimal(38,0)", `100000000000000000000000000000000000000`, nil, "does not fit decimal(38,0)"},
		{"decimal(38,0)", `340282366920938463463374607431768211457`, nil, "does not fit decimal(38,0)"}, // 2^128+1
		{"decimal(38,0)", `1e38`, nil, "does not fit decimal(38,0)"},
		{"decimal(38,0)", `12345678901234567890123456789012345678901234567890`, nil, "does not fit decimal(38,0)"},
		{"decimal(38,1)", nines38, nil, "does not fit decimal(38,1)"},
		{"decimal(38,1)", `9999999999999999999999999999999999999.9`, "9999999999999999999999999999999999999.9", ""},
		{"decimal(38,38)", `0.12345678901234567890123456789012345678`, "0.12345678901234567890123456789012345678", ""},
		{"decimal(38,38)", `-0.99999999999999999999999999999999999999`, "-0.99999999999999999999999999999999999999", ""},
		{"decimal(38,38)", `1`, nil, "does not fit decimal(38,38)"},
	})
}

// TestBuilderDecimalUnscaled checks the unscaled integer itself, not only
// its rendering.
func TestBuilderDecimalUnscaled(t *testing.T) {
	mem := checkedMem(t)
	out := newCollector(t)
	b := NewBuilder(mem, []mapping.Column{{From: "T[D]", To: "d", Type: mustType(t, "decimal(19,4)")}}, mapping.UnmappedError, 0, out.emit)
	defer b.Release()
	if err := feed(b, []kv{{`"T[D]"`, `12.5`}}, []kv{{`"T[D]"`, `-0.0001`}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	col := out.recs[0].Column(0).(*array.Decimal128)
	for i, want := range []int64{125000, -1} {
		v := col.Value(i)
		if v.HighBits() != want>>63 || v.LowBits() != uint64(want) {
			t.Errorf("row %d: unscaled (%d, %d), want %d", i+1, v.HighBits(), v.LowBits(), want)
		}
	}
}

func TestBuilderBool(t *testing.T) {
	runValueCases(t, []valueCase{
		{"bool", `true`, true, ""},
		{"bool", `false`, false, ""},
		{"bool", `null`, nil, ""},
		{"bool", `1`, nil, "is a number, not true or false"},
		{"bool", `"true"`, nil, "is a string, not true or false"},
		{"bool", `tru`, nil, "is a boolean, not true or false"},
		{"bool", `{}`, nil, "is an object, not true or false"},
	})
}

func TestBuilderDate(t *testing.T) {
	runValueCases(t, []valueCase{
		{"date", `"2024-02-29T00:00:00"`, "2024-02-29", ""},
		{"date", `"2024-02-29"`, "2024-02-29", ""},
		{"date", `"1900-01-01T00:00:00"`, "1900-01-01", ""},
		{"date", `"1970-01-01"`, "1970-01-01", ""},
		{"date", `"1969-12-31"`, "1969-12-31", ""},
		{"date", `"0001-01-01"`, "0001-01-01", ""},
		{"date", `"2000-02-29"`, "2000-02-29", ""},
		{"date", `"9999-12-31T00:00:00"`, "9999-12-31", ""},
		{"date", `"2024-02-29T00:00:00.000"`, "2024-02-29", ""},
		{"date", `"2024-02-29T00:00:00.0000000"`, "2024-02-29", ""},
		{"date", `"2024-02-29T00:00:00Z"`, "2024-02-29", ""},
		{"date", `"2024-02-29 00:00:00"`, "2024-02-29", ""},
		{"date", `"2024-02-29T\u00300:00:00"`, "2024-02-29", ""},
		{"date", `null`, nil, ""},
		{"date", `"2023-02-29"`, nil, "is not a valid date"},
		{"date", `"1900-02-29"`, nil, "is not a valid date"},
		{"date", `"2024-04-31"`, nil, "is not a valid date"},
		{"date", `"2024-13-01"`, nil, "is not a valid date"},
		{"date", `"2024-00-10"`, nil, "is not a valid date"},
		{"date", `"2024-01-00"`, nil, "is not a valid date"},
		{"date", `"2024-02-29T12:30:00"`, nil, "has a time of day other than midnight: declare the column as timestamp"},
		{"date", `"2024-02-29T00:00:01"`, nil, "declare the column as timestamp"},
		{"date", `"2024-02-29T00:00:00.0000001"`, nil, "declare the column as timestamp"},
		// A time just before midnight is not a date, nor the next day.
		{"date", `"2024-02-28T23:59:59.9999999"`, nil, "declare the column as timestamp"},
		{"date", `"9999-12-31T23:59:59.9999999"`, nil, "declare the column as timestamp"},
		{"date", `"9999-12-31T00:00:00.0000001"`, nil, "declare the column as timestamp"},
		{"date", `"9999-12-31T00:00:00.0000000"`, "9999-12-31", ""},
		{"date", `"2024-02-29T24:00:00"`, nil, "has an invalid time of day"},
		{"date", `"2024-02-29T00:00:00+02:00"`, nil, "time zone offsets are not accepted"},
		{"date", `"2024/02/29"`, nil, "is not an ISO 8601 date"},
		{"date", `"24-02-29"`, nil, "is not an ISO 8601 date"},
		{"date", `""`, nil, "is not an ISO 8601 date"},
		{"date", `"2024-02-29x"`, nil, "is not an ISO 8601 date-time"},
		{"date", `20240229`, nil, "is a number, not a date string"},
		{"date", `true`, nil, "is a boolean, not a date string"},
	})
}

func TestBuilderTimestamp(t *testing.T) {
	runValueCases(t, []valueCase{
		{"timestamp", `"2024-03-31T23:59:59.997"`, "2024-03-31T23:59:59.997000", ""},
		{"timestamp", `"2024-03-31T23:59:59"`, "2024-03-31T23:59:59.000000", ""},
		{"timestamp", `"2024-03-31T23:59:59.5"`, "2024-03-31T23:59:59.500000", ""},
		{"timestamp", `"2024-03-31T23:59:59.123456"`, "2024-03-31T23:59:59.123456", ""},
		// 7 digits (.NET ticks) are truncated to the microsecond, never
		// rounded: the "valid to" sentinel stays in year 9999, and no value
		// moves to the next second or day.
		{"timestamp", `"2024-03-31T23:59:59.1234564"`, "2024-03-31T23:59:59.123456", ""},
		{"timestamp", `"2024-03-31T23:59:59.1234565"`, "2024-03-31T23:59:59.123456", ""},
		{"timestamp", `"2024-03-31T23:59:59.123456789"`, "2024-03-31T23:59:59.123456", ""},
		{"timestamp", `"2024-03-31T10:00:00.9999995"`, "2024-03-31T10:00:00.999999", ""},
		{"timestamp", `"2024-03-31T23:59:59.9999995"`, "2024-03-31T23:59:59.999999", ""},
		{"timestamp", `"2024-12-31T23:59:59.9999999"`, "2024-12-31T23:59:59.999999", ""},
		{"timestamp", `"2024-03-31T23:59:59.9999994"`, "2024-03-31T23:59:59.999999", ""},
		{"timestamp", `"9999-12-31T23:59:59.9999999"`, "9999-12-31T23:59:59.999999", ""},
		{"timestamp", `"9999-12-31T23:59:59.999999999"`, "9999-12-31T23:59:59.999999", ""},
		{"timestamp", `"2024-02-29T10:11:12Z"`, "2024-02-29T10:11:12.000000", ""},
		{"timestamp", `"2024-02-29T10:11:12.5Z"`, "2024-02-29T10:11:12.500000", ""},
		{"timestamp", `"2024-02-29 10:11:12"`, "2024-02-29T10:11:12.000000", ""},
		{"timestamp", `"2024-02-29"`, "2024-02-29T00:00:00.000000", ""},
		{"timestamp", `"1900-01-01T00:00:00"`, "1900-01-01T00:00:00.000000", ""},
		{"timestamp", `"0001-01-01T00:00:00"`, "0001-01-01T00:00:00.000000", ""},
		{"timestamp", `"9999-12-31T23:59:59.999999"`, "9999-12-31T23:59:59.999999", ""},
		{"timestamp", `null`, nil, ""},
		{"timestamp", `"2024-03-31T23:59:59+02:00"`, nil, "time zone offsets are not accepted"},
		{"timestamp", `"2024-03-31T23:59:59.997+02:00"`, nil, "time zone offsets are not accepted"},
		{"timestamp", `"2024-03-31T23:59:59.997-05:00"`, nil, "time zone offsets are not accepted"},
		{"timestamp", `"2024-03-31T23:59:59."`, nil, "time zone offsets are not accepted"},
		{"timestamp", `"2024-03-31T23:59:59.99x"`, nil, "has an invalid fraction of a second"},
		{"timestamp", `"2024-03-31T23:59"`, nil, "is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM:SS)"},
		{"timestamp", `"2024-03-31T"`, nil, "is not an ISO 8601 date-time"},
		{"timestamp", `"2024-03-31T23:59:60"`, nil, "has an invalid time of day"},
		{"timestamp", `"2024-03-31T23:60:00"`, nil, "has an invalid time of day"},
		{"timestamp", `"2024-03-31T2x:00:00"`, nil, "has an invalid time of day"},
		{"timestamp", `"2023-02-29T00:00:00"`, nil, "is not a valid date"},
		{"timestamp", `"yesterday"`, nil, "is not an ISO 8601 date"},
		{"timestamp", `1711929599`, nil, "is a number, not a date-time string"},
	})
}

// TestBuilderTimestampMicros checks the stored integers: microseconds since
// 1970-01-01T00:00:00 of the wall-clock time (no zone applied) and days
// since 1970-01-01.
func TestBuilderTimestampMicros(t *testing.T) {
	mem := checkedMem(t)
	out := newCollector(t)
	cols := []mapping.Column{
		{From: "T[TS]", To: "ts", Type: mapping.Type{Kind: mapping.Timestamp}},
		{From: "T[D]", To: "d", Type: mapping.Type{Kind: mapping.Date}},
	}
	b := NewBuilder(mem, cols, mapping.UnmappedError, 0, out.emit)
	defer b.Release()
	rows := [][]kv{
		{{`"T[TS]"`, `"2024-03-31T23:59:59.997"`}, {`"T[D]"`, `"2024-02-29"`}},
		{{`"T[TS]"`, `"1969-12-31T23:59:59.999999"`}, {`"T[D]"`, `"1969-12-31"`}},
		{{`"T[TS]"`, `"0001-01-01T00:00:00"`}, {`"T[D]"`, `"0001-01-01"`}},
	}
	if err := feed(b, rows...); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	wantTS := []time.Time{
		time.Date(2024, 3, 31, 23, 59, 59, 997_000_000, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	day := func(y int, m time.Month, d int) int32 {
		return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
	}
	wantDays := []int32{day(2024, 2, 29), day(1969, 12, 31), day(1, 1, 1)}
	if wantDays[1] != -1 || wantDays[2] != -719162 {
		t.Fatalf("test arithmetic: %v", wantDays)
	}
	ts := out.recs[0].Column(0).(*array.Timestamp)
	d := out.recs[0].Column(1).(*array.Date32)
	for i, w := range wantTS {
		if got := int64(ts.Value(i)); got != w.UnixMicro() {
			t.Errorf("row %d: timestamp %d, want %d", i+1, got, w.UnixMicro())
		}
		if got := int32(d.Value(i)); got != wantDays[i] {
			t.Errorf("row %d: date %d, want %d", i+1, got, wantDays[i])
		}
	}
}

func TestBuilderBatches(t *testing.T) {
	cols := []mapping.Column{
		{From: "Sales[OrderID]", To: "order_id", Type: mapping.Type{Kind: mapping.Int64}},
		{From: "[Total]", To: "total", Type: mustType(t, "decimal(19,4)")},
	}
	row := func(i int) []kv {
		return []kv{{`"Sales[OrderID]"`, strconv.Itoa(i)}, {`"[Total]"`, strconv.Itoa(i) + ".5"}}
	}
	tests := []struct {
		name      string
		batchRows int
		rows      int
		wantSizes []int64
	}{
		{"zero rows", 3, 0, nil},
		{"one partial", 3, 2, []int64{2}},
		{"exact multiple", 3, 6, []int64{3, 3}},
		{"full and partial", 3, 7, []int64{3, 3, 1}},
		{"batches of one", 1, 3, []int64{1, 1, 1}},
		{"default size", 0, 5, []int64{5}},
		{"negative size", -1, 5, []int64{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := checkedMem(t)
			out := newCollector(t)
			b := NewBuilder(mem, cols, mapping.UnmappedError, tt.batchRows, out.emit)
			defer b.Release()
			if !b.Schema().Equal(mapping.Schema(cols)) {
				t.Fatalf("Schema() = %s", b.Schema())
			}
			for i := 1; i <= tt.rows; i++ {
				if err := feed(b, row(i)); err != nil {
					t.Fatal(err)
				}
				// Full batches leave as soon as they are full.
				if tt.batchRows > 0 && len(out.recs) != i/tt.batchRows {
					t.Fatalf("after row %d: %d batches emitted, want %d", i, len(out.recs), i/tt.batchRows)
				}
			}
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := b.Flush(); err != nil { // a second Flush emits nothing
				t.Fatal(err)
			}
			var sizes []int64
			for _, r := range out.recs {
				sizes = append(sizes, r.NumRows())
				if !r.Schema().Equal(mapping.Schema(cols)) {
					t.Fatalf("batch schema %s", r.Schema())
				}
			}
			if !slices.Equal(sizes, tt.wantSizes) {
				t.Fatalf("batch sizes %v, want %v", sizes, tt.wantSizes)
			}
			if b.Rows() != int64(tt.rows) {
				t.Fatalf("Rows() = %d, want %d", b.Rows(), tt.rows)
			}
			ids := out.column(t, 0)
			totals := out.column(t, 1)
			for i := range ids {
				if ids[i] != int64(i+1) || totals[i] != strconv.Itoa(i+1)+".5000" {
					t.Fatalf("row %d = (%v, %v)", i+1, ids[i], totals[i])
				}
			}
		})
	}
}

func TestBuilderEmitError(t *testing.T) {
	mem := checkedMem(t)
	out := newCollector(t)
	out.err = errors.New("sink full")
	b := NewBuilder(mem, []mapping.Column{{From: "[X]", To: "x", Type: mapping.Type{Kind: mapping.Int64}}}, mapping.UnmappedError, 2, out.emit)
	defer b.Release()
	if err := feed(b, []kv{{`"[X]"`, `1`}}); err != nil {
		t.Fatal(err)
	}
	if err := feed(b, []kv{{`"[X]"`, `2`}}); err != out.err {
		t.Fatalf("EndRow on a full batch = %v, want the emit error", err)
	}
	if err := feed(b, []kv{{`"[X]"`, `3`}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != out.err {
		t.Fatalf("Flush = %v, want the emit error", err)
	}
}

func TestBuilderUnmapped(t *testing.T) {
	cols := []mapping.Column{{From: "Sales[OrderID]", To: "order_id", Type: mapping.Type{Kind: mapping.Int64}}}
	rows := [][]kv{
		{{`"Sales[OrderID]"`, `1`}},
		{{`"Sales[OrderID]"`, `2`}, {`"Sales[New Column]"`, `"surprise"`}},
		{{`"Sales[OrderID]"`, `3`}},
	}

	t.Run("error", func(t *testing.T) {
		mem := checkedMem(t)
		out := newCollector(t)
		b := NewBuilder(mem, cols, mapping.UnmappedError, 0, out.emit)
		defer b.Release()
		err := feed(b, rows...)
		if err == nil {
			t.Fatal("an unmapped key was accepted")
		}
		msg := err.Error()
		for _, want := range []string{"row 2", "Sales[New Column]", "is not mapped", "mapping.columns", "mapping.unmapped: ignore"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
		}
		if ferr := b.Flush(); ferr != err || len(out.recs) != 0 {
			t.Fatalf("Flush after the error = %v with %d batches, want the same error and none", ferr, len(out.recs))
		}
	})

	t.Run("ignore", func(t *testing.T) {
		mem := checkedMem(t)
		out := newCollector(t)
		b := NewBuilder(mem, cols, mapping.UnmappedIgnore, 0, out.emit)
		defer b.Release()
		if err := feed(b, rows...); err != nil {
			t.Fatal(err)
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
		got := out.column(t, 0)
		if !slices.Equal(got, []any{int64(1), int64(2), int64(3)}) {
			t.Fatalf("order_id = %v, want [1 2 3]", got)
		}
		if n := out.recs[0].NumCols(); n != 1 {
			t.Fatalf("%d columns, want 1", n)
		}
	})
}

func TestBuilderKeys(t *testing.T) {
	cols := []mapping.Column{
		{From: "Sales[OrderID]", To: "order_id", Type: mapping.Type{Kind: mapping.Int64}},
		{From: "Umsatz[Größe]", To: "groesse", Type: mapping.Type{Kind: mapping.String}},
		{From: "[Say \"hi\"]", To: "hi", Type: mapping.Type{Kind: mapping.String}},
		{From: "[Tab\tKey]", To: "tab", Type: mapping.Type{Kind: mapping.String}},
	}
	tests := []struct {
		name    string
		row     []kv
		col     int
		want    any
		wantErr string
	}{
		{"plain", []kv{{`"Sales[OrderID]"`, `1`}}, 0, int64(1), ""},
		{"escaped letter", []kv{{`"Sales[Order\u0049D]"`, `2`}}, 0, int64(2), ""},
		{"escaped bracket", []kv{{`"Sales\u005bOrderID\u005d"`, `3`}}, 0, int64(3), ""},
		{"escaped slash", []kv{{`"Sales[Order\/ID]"`, `4`}}, 1, nil, "is not mapped"},
		{"raw UTF-8", []kv{{`"Umsatz[Größe]"`, `"L"`}}, 1, "L", ""},
		{"escaped UTF-8", []kv{{`"Umsatz[Gr\u00f6\u00dfe]"`, `"M"`}}, 1, "M", ""},
		{"escaped quote", []kv{{`"[Say \"hi\"]"`, `"a"`}}, 2, "a", ""},
		{"quote as \\u0022", []kv{{`"[Say \u0022hi\u0022]"`, `"b"`}}, 2, "b", ""},
		{"control character", []kv{{`"[Tab\tKey]"`, `"c"`}}, 3, "c", ""},
		{"control as \\u0009", []kv{{`"[Tab\u0009Key]"`, `"d"`}}, 3, "d", ""},
		{"case differs", []kv{{`"Sales[orderid]"`, `1`}}, 0, nil, "is not mapped"},
		{"duplicate", []kv{{`"Sales[OrderID]"`, `1`}, {`"Sales[OrderID]"`, `2`}}, 0, nil, `row 1: key "Sales[OrderID]" appears twice in the row`},
		{"duplicate null", []kv{{`"Sales[OrderID]"`, `null`}, {`"Sales[OrderID]"`, `null`}}, 0, nil, "appears twice"},
		{"duplicate escaped", []kv{{`"Sales[OrderID]"`, `1`}, {`"Sales[Order\u0049D]"`, `2`}}, 0, nil, "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := checkedMem(t)
			out := newCollector(t)
			b := NewBuilder(mem, cols, mapping.UnmappedError, 0, out.emit)
			defer b.Release()
			err := feed(b, tt.row)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
			for c := range cols {
				got := out.column(t, c)[0]
				want := any(nil)
				if c == tt.col {
					want = tt.want
				}
				if got != want {
					t.Fatalf("column %s = %v, want %v", cols[c].To, got, want)
				}
			}
		})
	}
}

func TestValueErrorMessage(t *testing.T) {
	cols := []mapping.Column{
		{From: "Sales[OrderID]", To: "order_id", Type: mapping.Type{Kind: mapping.Int64}},
		{From: "[Total]", To: "total", Type: mustType(t, "decimal(19,4)")},
	}
	mem := checkedMem(t)
	out := newCollector(t)
	b := NewBuilder(mem, cols, mapping.UnmappedError, 3, out.emit)
	defer b.Release()
	good := []kv{{`"Sales[OrderID]"`, `1`}, {`"[Total]"`, `1.5`}}
	bad := []kv{{`"Sales[OrderID]"`, `1`}, {`"[Total]"`, `12.34567`}}
	err := feed(b, good, good, good, good, bad)
	want := "row 5, column total (decimal(19,4), from [Total]): value 12.34567 has more than 4 digits after the decimal point"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Row != 5 || ve.Column != "total" || ve.From != "[Total]" || ve.Value != "12.34567" {
		t.Fatalf("ValueError = %+v", ve)
	}

	// The error sticks: row 5 is incomplete (order_id set, total not), so
	// neither it nor row 4 may be emitted, and nothing may panic on columns
	// of different lengths.
	if err := b.Field([]byte(`"Sales[OrderID]"`), []byte(`2`)); err != ve {
		t.Fatalf("Field after the error = %v, want the same error", err)
	}
	if err := b.EndRow(); err != ve {
		t.Fatalf("EndRow after the error = %v, want the same error", err)
	}
	if err := b.Flush(); err != ve {
		t.Fatalf("Flush after the error = %v, want the same error", err)
	}
	if out.rows() != 3 {
		t.Fatalf("%d rows emitted, want the 3 of the first full batch", out.rows())
	}
}

func TestValueErrorLongValue(t *testing.T) {
	long := `"` + strings.Repeat("é", 500_000) + `"` // 1 MB of two-byte runes
	mem := checkedMem(t)
	out := newCollector(t)
	b := NewBuilder(mem, []mapping.Column{{From: "T[N]", To: "n", Type: mapping.Type{Kind: mapping.Int64}}}, mapping.UnmappedError, 0, out.emit)
	defer b.Release()
	err := b.Field([]byte(`"T[N]"`), []byte(long))
	var ve *ValueError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v, want a ValueError", err)
	}
	msg := err.Error()
	if len(msg) > 300 {
		t.Fatalf("message is %d bytes long, want it shortened", len(msg))
	}
	if !strings.Contains(msg, "…(1000002 bytes)") {
		t.Fatalf("message %q does not give the value's length", msg)
	}
	if !strings.HasPrefix(ve.Value, `"éé`) || !utf8.ValidString(ve.Value) {
		t.Fatalf("shortened value %q is not a valid prefix", ve.Value)
	}
	if !strings.Contains(msg, "row 1, column n (int64, from T[N])") || !strings.Contains(msg, "is a string, not a number") {
		t.Fatalf("message %q", msg)
	}
}

func TestDisplayValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"12.5", "12.5"},
		{strings.Repeat("a", 80), strings.Repeat("a", 80)},
		{strings.Repeat("a", 81), strings.Repeat("a", 80) + "…(81 bytes)"},
		{"a" + strings.Repeat("é", 60), "a" + strings.Repeat("é", 39) + "…(121 bytes)"},
	}
	for _, tt := range tests {
		if got := displayValue([]byte(tt.in)); got != tt.want {
			t.Errorf("displayValue(%d bytes) = %q, want %q", len(tt.in), got, tt.want)
		}
	}
}

// TestBuilderEmptyValue: the decoder never sends an empty value, but an empty
// slice must give an error, not a panic.
func TestBuilderEmptyValue(t *testing.T) {
	for _, ts := range []string{"string", "int64", "float64", "decimal(19,4)", "bool", "date", "timestamp"} {
		mem := checkedMem(t)
		b := NewBuilder(mem, []mapping.Column{{From: "[X]", To: "x", Type: mustType(t, ts)}}, mapping.UnmappedError, 0, newCollector(t).emit)
		var ve *ValueError
		if err := b.Field([]byte(`"[X]"`), nil); !errors.As(err, &ve) {
			t.Errorf("%s: empty value gave %v, want a ValueError", ts, err)
		}
		b.Release()
	}
}

func TestBuilderRowsAcrossBatches(t *testing.T) {
	mem := checkedMem(t)
	out := newCollector(t)
	b := NewBuilder(mem, []mapping.Column{{From: "[X]", To: "x", Type: mapping.Type{Kind: mapping.Bool}}}, mapping.UnmappedError, 2, out.emit)
	defer b.Release()
	var rows [][]kv
	for range 5 {
		rows = append(rows, []kv{{`"[X]"`, `true`}})
	}
	rows = append(rows, []kv{{`"[X]"`, `"yes"`}})
	err := feed(b, rows...)
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Row != 6 {
		t.Fatalf("error %v, want a ValueError on row 6", err)
	}
	if out.rows() != 4 {
		t.Fatalf("%d rows emitted before the error, want 4", out.rows())
	}
}

var _ receiver = (*Builder)(nil)
