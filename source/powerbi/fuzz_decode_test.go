package powerbi

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/mapping"
)

// fuzzLimits keep every fuzzed input cheap: small bounds exercise the
// guard (overrun, ceiling, value and error-slot sizes) on small inputs.
var fuzzLimits = limits{resultBytes: 4 << 10, valueBytes: 512, errorBytes: 256}

// fuzzColumns are the columns the Builder of FuzzDecode maps: one of each
// type, from keys the seeds use.
var fuzzColumns = []mapping.Column{
	{From: "[a]", To: "a", Type: mapping.Type{Kind: mapping.Int64}},
	{From: "[b]", To: "b", Type: mapping.Type{Kind: mapping.String}},
	{From: "[c]", To: "c", Type: mapping.Type{Kind: mapping.Float64}},
	{From: "[d]", To: "d", Type: mapping.Type{Kind: mapping.Decimal, Precision: 19, Scale: 4}},
	{From: "[e]", To: "e", Type: mapping.Type{Kind: mapping.Bool}},
	{From: "[f]", To: "f", Type: mapping.Type{Kind: mapping.Date}},
	{From: "[g]", To: "g", Type: mapping.Type{Kind: mapping.Timestamp}},
}

// maxFuzzMessage bounds an error message: the service's texts are clipped,
// values and keys shortened.
const maxFuzzMessage = 4 << 10

// FuzzDecode feeds any bytes to the response decoder, with a receiver that
// records the raw fields, with a Builder (unmapped keys refused, then
// ignored) and with an Inferrer. Whatever the input: no panic, no leak of
// Arrow memory, an error that is an error (non-empty, bounded in length),
// stats that agree with what the receiver got, and no more read than the
// limits allow. The seed corpus is in testdata/fuzz/FuzzDecode; inputs
// that once failed stay there and run with every go test.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		rec := &recorder{}
		st, err := decode(strings.NewReader(string(data)), rec, fuzzLimits)
		checkFuzzDecode(t, data, st, err)
		if st.Rows != int64(len(rec.rows)) {
			t.Fatalf("stats say %d rows, the receiver got %d", st.Rows, len(rec.rows))
		}
		if err == nil && st.Bytes != int64(len(data)) {
			t.Fatalf("a clean decode read %d of %d bytes", st.Bytes, len(data))
		}

		for _, unmapped := range []mapping.Unmapped{mapping.UnmappedError, mapping.UnmappedIgnore} {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			var got int64
			b := NewBuilder(mem, fuzzColumns, unmapped, 3, func(r arrow.RecordBatch) error {
				got += r.NumRows()
				r.Release()
				return nil
			})
			st, err := decode(strings.NewReader(string(data)), b, fuzzLimits)
			checkFuzzDecode(t, data, st, err)
			if err == nil {
				if err := b.Flush(); err != nil {
					t.Fatalf("flush after a clean decode: %v", err)
				}
				if got != st.Rows {
					t.Fatalf("builder emitted %d rows of %d", got, st.Rows)
				}
			}
			b.Release()
			mem.AssertSize(t, 0)
		}

		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		in := NewInferrer(mem, 3, nil, func(r arrow.RecordBatch) error { r.Release(); return nil })
		in.maxRows = 5
		st, err = decode(strings.NewReader(string(data)), in, fuzzLimits)
		checkFuzzDecode(t, data, st, err)
		if err == nil {
			if err := in.Finish(); err != nil && !errors.Is(err, ErrNoRowsToInfer) {
				checkFuzzError(t, data, err)
			}
		}
		in.Release()
		mem.AssertSize(t, 0)

		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%d bytes took %s", len(data), d)
		}
	})
}

func checkFuzzDecode(t *testing.T, data []byte, st DecodeStats, err error) {
	t.Helper()
	if st.Bytes > int64(len(data)) || st.Rows < 0 {
		t.Fatalf("stats %+v for %d bytes", st, len(data))
	}
	if err != nil {
		checkFuzzError(t, data, err)
	}
}

func checkFuzzError(t *testing.T, data []byte, err error) {
	t.Helper()
	msg := err.Error()
	if msg == "" || len(msg) > maxFuzzMessage {
		t.Fatalf("%q: error message of %d bytes: %.300s", data, len(msg), msg)
	}
	var le *LimitError
	if errors.As(err, &le) && le.Limit != fuzzLimits.resultBytes {
		t.Fatalf("%q: LimitError %+v, with another limit", data, le)
	}
}

// fuzzSeeds are the starting points of FuzzDecode (the corpus directory
// holds more): the shapes of real responses and of the ways they go wrong.
var fuzzSeeds = []string{
	`{"results":[{"tables":[{"rows":[{"[a]":1,"[b]":"x"}]}]}]}`,
	"\xEF\xBB\xBF" + `{"results":[{"tables":[{"rows":[],"error":{"code":"x"}}]}],"error":null}`,
	`{"results":[{"tables":[{"rows":[{"[a]":{"b":1}}]}]}]}`,
	`{"informationProtectionLabel":{"id":"x","name":"General"},"results":[{"tables":[{"rows":[{"[a]":9223372036854775807,"[b]":"a \"q\" \u00e9","[c]":1e308,"[d]":12.3456,"[e]":true,"[f]":"2024-02-29T00:00:00","[g]":"9999-12-31T23:59:59.9999999"},{"[a]":null,"[c]":"NaN","[d]":null},{}],"error":null}],"error":null}],"error":null}`,
	`{"results":[{"tables":[{"rows":[{"[a]":1},{"[a]":2}],"error":{"code":"DatasetExecuteQueriesError","message":"More than 100000 rows in a query result"}}]}]}`,
	`{"results":[{"tables":[{"rows":[{"[a]":1}],"error":{"code":"X","pbi.error":{"code":"X","details":[{"code":"DetailsMessage","detail":{"type":1,"value":"Failed"}},{"code":"AnalysisServicesErrorCode","detail":{"type":1,"value":"3239575574"}}]}},"error":null}]}]}`,
	`{"results":[{"tables":[{"rows":[{"[a]":1}],"rows":[{"[a]":2}]}]}]}`,
	`{"results":[{"tables":[{"rows":[{"[a]":1,"[a]":2}]}]}]}`,
	`{"results":[{"tables":[{"rows":[{"[a]":1E+15,"[c]":"-Infinity","[g]":"2024-03-31T23:59:59.997"}]}]}]}`,
	`{"results":[{"tables":[{"rows":[{"[c]":NaN}]}]}]}`,
	`{"results":[{"tables":[{"rows":[{"[a]":1},{"[a]":`,
	`{"results":[{"tables":[{"rows":[]},{"rows":[]}]}]}`,
	`{"results":[{"error":{"code":"X","message":"Query timeout exceeded"}}]}`,
	`{"results":[{"tables":[{"rows":[{"[b]":"` + strings.Repeat("x", 600) + `"}]}]}]}`,
	`{"results":[{"tables":[{"rows":[` + strings.Repeat(`{"[a]":1,"[b]":"abc"},`, 250) + `{"[a]":2}]}]}]}`,
	`{"results":[{"tables":[{"rows":[{"[k\u0065y]":"\ud83d\ude00\n\t","[b]":"\ud800"}]}]}]}`,
	`{"results":[{"tables":[{"rows":[{"[a]":1}]}]}]} {}`,
	``,
}
