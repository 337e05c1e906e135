package sink

import (
	"context"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// csvGoldenSchema has a column of every type, with awkward field names.
var csvGoldenSchema = arrow.NewSchema([]arrow.Field{
	sinktest.Field("name", arrow.BinaryTypes.String),
	sinktest.Field("qty", arrow.PrimitiveTypes.Int64),
	sinktest.Field("ratio", arrow.PrimitiveTypes.Float64),
	sinktest.Field("amount", sinktest.Decimal(10, 4)),
	sinktest.Field("ok", arrow.FixedWidthTypes.Boolean),
	sinktest.Field("day", arrow.FixedWidthTypes.Date32),
	sinktest.Field("at", sinktest.Timestamp),
	sinktest.Field(`odd, "name"`, arrow.BinaryTypes.String),
}, nil)

var csvGoldenRows = [][]any{
	{"plain", 1, 0.1, "12.34", true, "2024-02-29", "2024-03-31T23:59:59.997", "x"},
	{nil, nil, nil, nil, nil, nil, nil, nil},
	{"", 0, math.Copysign(0, -1), "-0.0001", false, "1900-01-01", "1900-01-01T00:00:00", ""},
	{`she said "hi"`, math.MinInt64, 1e308, "0", true, "1970-01-01", "2024-02-29T12:34:56.123456", "a,b"},
	{"line1\nline2", math.MaxInt64, 1234567.89, "-999999.9999", false, "9999-12-31", "1969-12-31T23:59:59.999999", "cr\rlf\r\n"},
	{" spaced ", -42, 1e21, "100", nil, "0001-01-01", "2024-01-01T00:00:00.5", "日本語 é 😀"},
	{"tab\there", 7, 1e-7, "1.5", true, "2000-02-29", "2024-01-01T00:00:00.000001", `"`},
	{"\u00a0", 8, math.Inf(-1), "0.0100", false, "2024-12-31", "2024-06-15T08:09:10.12", "'quoted'"},
	{"x", 9, math.NaN(), "123456.7890", true, "2024-01-31", "2024-01-31T00:00:00", ","},
	{"y", 10, 100.0, "-1", false, "2024-02-01", "2024-02-01T01:00:00.1", "trailing "},
}

const csvGolden = `name,qty,ratio,amount,ok,day,at,"odd, ""name"""
plain,1,0.1,12.3400,true,2024-02-29,2024-03-31T23:59:59.997,x
,,,,,,,
"",0,-0,-0.0001,false,1900-01-01,1900-01-01T00:00:00,""
"she said ""hi""",-9223372036854775808,1e+308,0.0000,true,1970-01-01,2024-02-29T12:34:56.123456,"a,b"
"line1
line2",9223372036854775807,1234567.89,-999999.9999,false,9999-12-31,1969-12-31T23:59:59.999999,"cr` + "\r" + `lf` + "\r\n" + `"
 spaced ,-42,1e+21,100.0000,,0001-01-01,2024-01-01T00:00:00.5,日本語 é 😀
tab	here,7,1e-7,1.5000,true,2000-02-29,2024-01-01T00:00:00.000001,""""
` + "\u00a0" + `,8,-Infinity,0.0100,false,2024-12-31,2024-06-15T08:09:10.12,'quoted'
x,9,NaN,123456.7890,true,2024-01-31,2024-01-31T00:00:00,","
y,10,100,-1.0000,false,2024-02-01,2024-02-01T01:00:00.1,trailing 
`

// writeCSV writes rows of schema as CSV with opts, in batches of 3 rows, and
// returns the file's content.
func writeCSV(t *testing.T, schema *arrow.Schema, rows [][]any, opts CSVOptions) string {
	t.Helper()
	mem := sinktest.CheckedAlloc(t)
	path := filepath.Join(t.TempDir(), "out.csv")
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewCSV(dst, schema, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) > 0 {
		sinktest.WriteBatches(t, s, mem, schema, rows, 3)
	}
	if _, err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return readFile(t, path)
}

func TestCSVGolden(t *testing.T) {
	got := writeCSV(t, csvGoldenSchema, csvGoldenRows, CSVOptions{})
	if got != csvGolden {
		t.Errorf("got:\n%s\nwant:\n%s", strconv.Quote(got), strconv.Quote(csvGolden))
	}
	// The Arrow source's dictionary-encoded strings give the same text.
	if dict := writeCSV(t, sinktest.DictStrings(csvGoldenSchema), csvGoldenRows, CSVOptions{}); dict != csvGolden {
		t.Errorf("dictionary-encoded strings gave:\n%s\nwant:\n%s", strconv.Quote(dict), strconv.Quote(csvGolden))
	}
	// The golden text reads back as the rows written.
	recs, err := sinktest.ParseCSV([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := sinktest.CSVRows(recs, csvGoldenSchema)
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]any, len(csvGoldenRows))
	for i, r := range csvGoldenRows {
		want[i] = append([]any(nil), r...)
		if r[3] != nil { // decimals come back at their scale
			n, err := sinktest.ParseDecimal(r[3].(string), 10, 4)
			if err != nil {
				t.Fatal(err)
			}
			want[i][3] = sinktest.DecimalString(n.BigInt(), 4)
		}
		if r[1] != nil {
			want[i][1] = int64(r[1].(int))
		}
	}
	if d := sinktest.DiffRows(want, rows); d != "" {
		t.Error(d)
	}
}

func TestCSVOptions(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		sinktest.Field("a", arrow.BinaryTypes.String),
		sinktest.Field("b", arrow.PrimitiveTypes.Int64),
	}, nil)
	rows := [][]any{{"x\ny", 1}, {nil, nil}}
	no := false
	yes := true
	for _, tc := range []struct {
		name string
		opts CSVOptions
		rows [][]any
		want string
	}{
		{"default", CSVOptions{}, rows, "a,b\n\"x\ny\",1\n,\n"},
		{"lf", CSVOptions{LineEnding: "lf", Header: &yes}, rows, "a,b\n\"x\ny\",1\n,\n"},
		{"crlf", CSVOptions{LineEnding: "crlf"}, rows, "a,b\r\n\"x\ny\",1\r\n,\r\n"},
		{"no header", CSVOptions{Header: &no}, rows, "\"x\ny\",1\n,\n"},
		{"empty", CSVOptions{}, nil, "a,b\n"},
		{"empty crlf", CSVOptions{LineEnding: "crlf"}, nil, "a,b\r\n"},
		{"empty without header", CSVOptions{Header: &no}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := writeCSV(t, schema, tc.rows, tc.opts); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAppendFloat(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "-0"}, {1, "1"}, {-1.5, "-1.5"}, {0.1, "0.1"},
		{100, "100"}, {1e6, "1000000"}, {1234567.89, "1234567.89"}, {123456789012, "123456789012"},
		{1e20, "100000000000000000000"}, {1e21, "1e+21"}, {-1.5e21, "-1.5e+21"}, {1e308, "1e+308"},
		{math.MaxFloat64, "1.7976931348623157e+308"}, {1e-6, "0.000001"}, {1.5e-6, "0.0000015"},
		{9.99e-7, "9.99e-7"}, {1e-7, "1e-7"}, {1e-10, "1e-10"}, {5e-324, "5e-324"}, {-2.5e-100, "-2.5e-100"},
		{0.30000000000000004, "0.30000000000000004"},
		{math.NaN(), "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"},
	} {
		if got := string(appendFloat(nil, tc.f)); got != tc.want {
			t.Errorf("appendFloat(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
	// Every finite float64 round-trips bit for bit.
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		s := string(appendFloat(nil, f))
		g, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(g) != math.Float64bits(f) {
			t.Fatalf("appendFloat(%b) = %q, parses back as %v, %v", f, s, g, err)
		}
	}
}

func TestAppendDecimal(t *testing.T) {
	for _, tc := range []struct {
		v     decimal128.Num
		scale int32
		want  string
	}{
		{decimal128.FromI64(123400), 4, "12.3400"},
		{decimal128.FromI64(-1), 4, "-0.0001"},
		{decimal128.FromI64(0), 4, "0.0000"},
		{decimal128.FromI64(0), 0, "0"},
		{decimal128.FromI64(42), 0, "42"},
		{decimal128.FromI64(-42), 0, "-42"},
		{decimal128.FromI64(5), 1, "0.5"},
		{decimal128.FromI64(math.MinInt64), 4, "-922337203685477.5808"},
		{decimal128.FromI64(math.MaxInt64), 19, "0.9223372036854775807"},
		{bigDecimal("99999999999999999999999999999999999999"), 10, "9999999999999999999999999999.9999999999"},
		{bigDecimal("-99999999999999999999999999999999999999"), 38, "-0.99999999999999999999999999999999999999"},
		{bigDecimal("10000000000000000000"), 0, "10000000000000000000"},
		{bigDecimal("100000000000000000000000000000000000000"), 1, "10000000000000000000000000000000000000.0"},
		{decimal128.New(math.MaxInt64, math.MaxUint64), 0, "170141183460469231731687303715884105727"},
		{decimal128.New(math.MinInt64, 0), 0, "-170141183460469231731687303715884105728"},
	} {
		if got := string(appendDecimal(nil, tc.v.HighBits(), tc.v.LowBits(), tc.scale)); got != tc.want {
			t.Errorf("appendDecimal(%v, %d) = %q, want %q", tc.v, tc.scale, got, tc.want)
		}
	}
	// Random 128-bit values agree with math/big.
	r := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		v := decimal128.New(int64(r.Uint64())>>r.IntN(64), r.Uint64())
		scale := int32(r.IntN(39))
		want := sinktest.DecimalString(v.BigInt(), scale)
		if got := string(appendDecimal(nil, v.HighBits(), v.LowBits(), scale)); got != want {
			t.Fatalf("appendDecimal(%v, %d) = %q, want %q", v, scale, got, want)
		}
	}
	if got := sinktest.DecimalString(big.NewInt(-5), 2); got != "-0.05" {
		t.Errorf("sinktest.DecimalString(-5, 2) = %q", got)
	}
}

// bigDecimal is the decimal128 of an integer written in decimal.
func bigDecimal(s string) decimal128.Num {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return decimal128.FromBigInt(n)
}

func TestAppendDateTimestamp(t *testing.T) {
	for _, tc := range []struct {
		us   int64
		want string
	}{
		{0, "1970-01-01T00:00:00"},
		{-1, "1969-12-31T23:59:59.999999"},
		{1711929599997000, "2024-03-31T23:59:59.997"},
		{1709210096123456, "2024-02-29T12:34:56.123456"},
		{-2208988800000000, "1900-01-01T00:00:00"},
		{-62135596800000000, "0001-01-01T00:00:00"},
		{253402300799999999, "9999-12-31T23:59:59.999999"},
		{100, "1970-01-01T00:00:00.0001"},
	} {
		if got := string(appendTimestamp(nil, tc.us)); got != tc.want {
			t.Errorf("appendTimestamp(%d) = %q, want %q", tc.us, got, tc.want)
		}
	}
	// Every day from 0001-01-01 to 9999-12-31 agrees with package time, and
	// random instants too.
	first := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 86400
	last := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).Unix() / 86400
	for d := first; d <= last; d++ {
		want := time.Unix(d*86400, 0).UTC().Format(sinktest.DateLayout)
		if got := string(appendDate(nil, d)); got != want {
			t.Fatalf("appendDate(%d) = %q, want %q", d, got, want)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 100_000 {
		us := first*86400_000_000 + r.Int64N((last-first+1)*86400_000_000)
		if got, want := string(appendTimestamp(nil, us)), sinktest.TimestampString(us); got != want {
			t.Fatalf("appendTimestamp(%d) = %q, want %q", us, got, want)
		}
	}
}

// TestCSVWriteAllocations checks that encoding allocates nothing per value.
func TestCSVWriteAllocations(t *testing.T) {
	mem := sinktest.CheckedAlloc(t)
	rec := benchBatches(mem, 4096, 1)[0]
	defer rec.Release()
	s, err := NewCSV(discardDest{}, rec.Schema(), CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := s.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("%v allocations per Write of %d rows", allocs, rec.NumRows())
	}
}

// discardDest is a Destination that keeps nothing.
type discardDest struct{}

func (discardDest) Write(p []byte) (int, error)                 { return io.Discard.Write(p) }
func (discardDest) Commit(context.Context, int64) (File, error) { return File{}, nil }
func (discardDest) Abort(context.Context) error                 { return nil }
