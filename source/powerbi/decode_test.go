package powerbi

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// recorder is a rowReceiver that keeps every field as text.
type recorder struct {
	rows [][][2]string
	cur  [][2]string
	err  error
}

func (r *recorder) Field(key, value []byte) error {
	r.cur = append(r.cur, [2]string{string(key), string(value)})
	return r.err
}

func (r *recorder) EndRow() error {
	r.rows = append(r.rows, r.cur)
	r.cur = nil
	return nil
}

func decodeString(t *testing.T, body string) (*recorder, DecodeStats, error) {
	t.Helper()
	rec := &recorder{}
	st, err := Decode(strings.NewReader(body), rec)
	return rec, st, err
}

func TestDecodeRows(t *testing.T) {
	body := "\xEF\xBB\xBF" + `{"informationProtectionLabel":{"id":"x","name":"General"},"results":[{"tables":[{"rows":[
		{"Sales[OrderID]":9007199254740993,"[Total]":12.5,"Sales[Name]":"a \"q\" \u00e9","Sales[Flag]":true},
		{"Sales[OrderID]":-9223372036854775808,"[Total]":null},
		{}
	],"error":null}],"error":null}],"error":null}`
	rec, st, err := decodeString(t, body)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 3 || len(rec.rows) != 3 {
		t.Fatalf("rows = %d/%d, want 3", st.Rows, len(rec.rows))
	}
	want := [][2]string{{`"Sales[OrderID]"`, `9007199254740993`}, {`"[Total]"`, `12.5`}, {`"Sales[Name]"`, `"a \"q\" \u00e9"`}, {`"Sales[Flag]"`, `true`}}
	for i, f := range want {
		if rec.rows[0][i] != f {
			t.Errorf("row 1 field %d = %q, want %q", i, rec.rows[0][i], f)
		}
	}
	if got := rec.rows[1][0][1]; got != "-9223372036854775808" {
		t.Errorf("int64 min = %s", got)
	}
	if len(rec.rows[2]) != 0 {
		t.Errorf("empty row has fields %v", rec.rows[2])
	}
	if st.Bytes != int64(len(body)) {
		t.Errorf("bytes = %d, want %d", st.Bytes, len(body))
	}
}

func TestDecodeErrorSlots(t *testing.T) {
	rows := `"rows":[{"[a]":1},{"[a]":2}]`
	truncation := `{"code":"DatasetExecuteQueriesError","message":"More than 100000 rows in a query result"}`
	cases := map[string]string{
		"table":    `{"results":[{"tables":[{` + rows + `,"error":` + truncation + `}]}]}`,
		"result":   `{"results":[{"tables":[{` + rows + `}],"error":` + truncation + `}]}`,
		"response": `{"results":[{"tables":[{` + rows + `}]}],"error":` + truncation + `}`,
	}
	for slot, body := range cases {
		t.Run(slot, func(t *testing.T) {
			rec, _, err := decodeString(t, body)
			var se *ServiceError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a ServiceError", err)
			}
			if se.Slot != slot || !se.Truncated() || !strings.Contains(err.Error(), "More than 100000 rows") {
				t.Errorf("slot %q truncated %v: %v", se.Slot, se.Truncated(), err)
			}
			if len(rec.rows) != 2 {
				t.Errorf("rows before the error = %d, want 2", len(rec.rows))
			}
		})
	}
	_, _, err := decodeString(t, `{"results":[{"tables":[{"rows":[],"error":{"code":"X","pbi.error":{"code":"X","details":[{"code":"DetailsMessage","detail":{"type":1,"value":"Failed to execute the DAX query."}},{"code":"AnalysisServicesErrorCode","detail":{"type":1,"value":"3239575574"}}]}}}]}]}`)
	if err == nil || !strings.Contains(err.Error(), "Failed to execute the DAX query.") || !strings.Contains(err.Error(), "(AnalysisServicesErrorCode 3239575574)") {
		t.Errorf("pbi.error details: %v", err)
	}
}

// TestDecodeErrorSlotPosition: the message says where the slot came: after
// how many rows, before the rows, or with no rows at all.
func TestDecodeErrorSlotPosition(t *testing.T) {
	e := `{"code":"X","message":"Query timeout exceeded"}`
	cases := []struct{ name, body, want string }{
		{"after rows", `{"results":[{"tables":[{"rows":[{"[a]":1},{"[a]":2}],"error":` + e + `}]}]}`, "table error slot, after 2 rows:"},
		{"before rows", `{"results":[{"tables":[{"error":` + e + `,"rows":[{"[a]":1}]}]}]}`, "table error slot, before the rows:"},
		{"top before results", `{"error":` + e + `,"results":[{"tables":[{"rows":[{"[a]":1}]}]}]}`, "response error slot, before the rows:"},
		{"empty rows", `{"results":[{"tables":[{"rows":[],"error":` + e + `}]}]}`, "table error slot, with no rows before it:"},
		{"no table", `{"results":[{"error":` + e + `}]}`, "result error slot, with no rows before it:"},
		{"before empty rows", `{"results":[{"tables":[{"error":` + e + `,"rows":[]}]}]}`, "table error slot, with no rows before it:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := decodeString(t, c.body)
			var se *ServiceError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Query timeout exceeded") {
				t.Errorf("err = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "after the rows") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestDecodeBadBodies(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"empty":               {``, "empty"},
		"cut":                 {`{"results":[{"tables":[{"rows":[{"[a]":1},{"[a]":`, "ended early"},
		"not json":            {`<html>`, "not valid JSON"},
		"nested":              {`{"results":[{"tables":[{"rows":[{"[a]":{"b":1}}]}]}]}`, "nested"},
		"row not object":      {`{"results":[{"tables":[{"rows":[1]}]}]}`, "expected an object"},
		"no table":            {`{"results":[]}`, "no result rows"},
		"no rows member":      {`{"results":[{"tables":[{"columns":[]}]}]}`, "no result rows"},
		"cut after table":     {`{"results":[{"tables":[{"rows":[{"[a]":1}]}`, "ended early"},
		"cut after result":    {`{"results":[{"tables":[{"rows":[]}]}`, "ended early"},
		"error without table": {`{"results":[{"error":{"code":"X","message":"Query timeout exceeded"}}]}`, "Query timeout exceeded"},
		"two tables":          {`{"results":[{"tables":[{"rows":[]},{"rows":[]}]}]}`, "more than one table"},
		"trailing":            {`{"results":[{"tables":[{"rows":[]}]}]} {}`, "trailing"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := decodeString(t, c.body)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	_, _, err := decodeString(t, `{"results":[{"tables":[{"rows":[{"[a]":1},{"[a]":`)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut body: %v is not io.ErrUnexpectedEOF", err)
	}
}

func TestDecodeReceiverErrorPassesThrough(t *testing.T) {
	sentinel := errors.New("stop here")
	rec := &recorder{err: sentinel}
	_, err := Decode(strings.NewReader(`{"results":[{"tables":[{"rows":[{"[a]":1}]}]}]}`), rec)
	if err != sentinel {
		t.Fatalf("err = %v, want the receiver's error unwrapped", err)
	}
}

func TestDecodeHugeStringsAndEscapes(t *testing.T) {
	huge := strings.Repeat("é\"\\x", 1<<18) // about 1.25 MB escaped, crossing many buffer refills
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(huge)
	body := `{"results":[{"tables":[{"rows":[{"[s]":"` + quoted + `","[k\u0065y]":"\ud83d\ude00\n\t"}]}]}]}`
	rec, _, err := decodeString(t, body)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.rows[0][0][1]; got != `"`+quoted+`"` {
		t.Errorf("huge string: got %d bytes, want %d", len(got), len(quoted)+2)
	}
	if got := rec.rows[0][1]; got[0] != `"[k\u0065y]"` || got[1] != `"\ud83d\ude00\n\t"` {
		t.Errorf("escapes are passed raw for the receiver to unquote: %q", got)
	}
}

func TestDecodeManyRowsAcrossBuffers(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"results":[{"tables":[{"rows":[`)
	const n = 50_000
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"T[id]":`)
		b.WriteString(strings.Repeat("9", 1+i%18))
		b.WriteString(`,"T[name]":"row"}`)
	}
	b.WriteString(`]}]}]}`)
	rec, st, err := decodeString(t, b.String())
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != n {
		t.Fatalf("rows %d", st.Rows)
	}
	for i, r := range rec.rows {
		if r[0][0] != `"T[id]"` || r[0][1] != strings.Repeat("9", 1+i%18) || r[1][0] != `"T[name]"` {
			t.Fatalf("row %d corrupted: %q", i, r)
		}
	}
}

func TestReceiverErrorsAreNeverStreamCuts(t *testing.T) {
	rec := &recorder{err: errors.New("connection reset by peer")}
	_, err := Decode(strings.NewReader(`{"results":[{"tables":[{"rows":[{"[a]":1}]}]}]}`), rec)
	if isStreamCut(err) {
		t.Errorf("a receiver error %q was taken for a broken body", err)
	}
	_, err = Decode(strings.NewReader(`{"results":[{"tables":[{"rows":[{"[a]":1},`), &recorder{})
	if !isStreamCut(err) {
		t.Errorf("a body cut mid-rows is not a stream cut: %v", err)
	}
}

// TestDecodeRefusesDuplicateEnvelopeNames: a name given twice in an
// envelope object makes the response ambiguous: a later "error": null
// would erase a truncation notice, a second "rows" would add rows.
func TestDecodeRefusesDuplicateEnvelopeNames(t *testing.T) {
	trunc := `{"code":"DatasetExecuteQueriesError","message":"More than 100000 rows in a query result"}`
	cases := map[string]struct{ body, want string }{
		"table error erased":    {`{"results":[{"tables":[{"rows":[{"[a]":1}],"error":` + trunc + `,"error":null}]}]}`, `results[0].tables[0] has the member "error" twice`},
		"result error erased":   {`{"results":[{"tables":[{"rows":[{"[a]":1}]}],"error":` + trunc + `,"error":null}]}`, `results[0] has the member "error" twice`},
		"response error erased": {`{"results":[{"tables":[{"rows":[{"[a]":1}]}]}],"error":` + trunc + `,"error":null}`, `response has the member "error" twice`},
		"escaped name":          {`{"results":[{"tables":[{"rows":[{"[a]":1}],"error":` + trunc + `,"err\u006fr":null}]}]}`, `has the member "error" twice`},
		"rows twice":            {`{"results":[{"tables":[{"rows":[{"[a]":1}],"rows":[{"[a]":2}]}]}]}`, `has the member "rows" twice`},
		"tables twice":          {`{"results":[{"tables":[{"rows":[]}],"tables":[{"rows":[]}]}]}`, `has the member "tables" twice`},
		"results twice":         {`{"results":[{"tables":[{"rows":[]}]}],"results":[{"tables":[{"rows":[]}]}]}`, `has the member "results" twice`},
		"label twice":           {`{"informationProtectionLabel":{},"informationProtectionLabel":{},"results":[{"tables":[{"rows":[]}]}]}`, `has the member "informationProtectionLabel" twice`},
		"inside an error slot":  {`{"results":[{"tables":[{"rows":[],"error":{"code":"X","message":"a","message":"b"}}]}]}`, "table error slot is ambiguous"},
		"long name in a slot":   {`{"results":[{"tables":[{"rows":[],"error":{"` + strings.Repeat("n", 50_000) + `":1,"` + strings.Repeat("n", 50_000) + `":2}}]}]}`, "…(5"},
		"too many members":      {`{` + manyMembers(maxEnvelopeMembers+1) + `"results":[{"tables":[{"rows":[]}]}]}`, "more than 64 members"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := decodeString(t, c.body)
			var be *BodyError
			if !errors.As(err, &be) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want a BodyError with %q", err, c.want)
			}
			if isStreamCut(err) {
				t.Errorf("an ambiguous response is not a broken stream: %v", err)
			}
			if len(err.Error()) > maxMessageBytes+500 {
				t.Errorf("message of %d bytes", len(err.Error()))
			}
		})
	}
	// Unknown members, each once, are still skipped; rows may repeat keys
	// as far as the decoder is concerned (the Builder refuses them).
	rec, _, err := decodeString(t, `{"a":1,"b":{"a":1,"a":2},"results":[{"x":[],"tables":[{"y":null,"rows":[{"[a]":1,"[a]":2}]}]}]}`)
	if err != nil || len(rec.rows) != 1 || len(rec.rows[0]) != 2 {
		t.Errorf("err = %v, rows %v", err, rec.rows)
	}
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"m%d":%d,`, i, i)
	}
	return b.String()
}

// TestDecodeBareNonFiniteNumbers: bare NaN and Infinity are not JSON; the
// response is refused with a message that says what was found and which
// form is read (the string, into a float64 column).
func TestDecodeBareNonFiniteNumbers(t *testing.T) {
	for _, tok := range []string{"NaN", "Infinity", "-Infinity"} {
		_, _, err := decodeString(t, `{"results":[{"tables":[{"rows":[{"[a]":1},{"[a]": `+tok+`}]}]}]}`)
		want := "a bare " + tok + " (JSON has no such number; write it as the string \"" + tok + "\""
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "after 1 rows") {
			t.Errorf("%s: err = %v, want %q", tok, err, want)
		}
	}
	// The strings pass through the decoder (the column's type decides).
	rec, _, err := decodeString(t, `{"results":[{"tables":[{"rows":[{"[a]":"NaN","[b]":"-Infinity"}]}]}]}`)
	if err != nil || rec.rows[0][0][1] != `"NaN"` || rec.rows[0][1][1] != `"-Infinity"` {
		t.Errorf("strings: %v %v", err, rec.rows)
	}
}
