package powerbi

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pbicopy/pbicopy/mapping"
)

// inferRun is the outcome of an Inferrer over some rows.
type inferRun struct {
	cols        []mapping.Column
	notes       []string
	schemaCalls int
	out         *collector
	err         error // from feeding or Finish
}

// runInferrer feeds rows to a new Inferrer (with the given sample sizes when
// non-zero) and finishes it. It checks that the schema callback comes before
// the first batch.
func runInferrer(t *testing.T, minRows, maxRows, batchRows int, rows ...[]kv) *inferRun {
	t.Helper()
	mem := checkedMem(t)
	r := &inferRun{out: newCollector(t)}
	emit := func(rec arrow.RecordBatch) error {
		if r.schemaCalls != 1 {
			rec.Release()
			return fmt.Errorf("batch emitted after %d schema calls", r.schemaCalls)
		}
		return r.out.emit(rec)
	}
	onSchema := func(cols []mapping.Column, notes []string) error {
		r.schemaCalls++
		r.cols, r.notes = cols, notes
		if len(r.out.recs) > 0 {
			return errors.New("schema decided after a batch was emitted")
		}
		return nil
	}
	in := NewInferrer(mem, batchRows, onSchema, emit)
	defer in.Release()
	if minRows > 0 {
		in.minRows = minRows
	}
	if maxRows > 0 {
		in.maxRows = maxRows
	}
	r.err = feed(in, rows...)
	if r.err == nil {
		r.err = in.Finish()
	}
	if r.err == nil && !slices.Equal(in.Columns(), r.cols) {
		t.Fatalf("Columns() = %v, want the columns given to the schema callback %v", in.Columns(), r.cols)
	}
	if r.schemaCalls > 1 {
		t.Fatalf("schema callback called %d times", r.schemaCalls)
	}
	return r
}

// oneKeyRows makes one row per value, each with the single key [V].
func oneKeyRows(values ...string) [][]kv {
	rows := make([][]kv, len(values))
	for i, v := range values {
		rows[i] = []kv{{`"[V]"`, v}}
	}
	return rows
}

func TestInferTypes(t *testing.T) {
	tests := []struct {
		name     string
		values   []string
		want     string // type
		wantNote string // part of the note on [V], "" for none
		wantOut  []any  // the values that come out, when checked
	}{
		{"ints", []string{`1`, `-2`, `null`, `9223372036854775807`}, "int64", "",
			[]any{int64(1), int64(-2), nil, int64(9223372036854775807)}},
		{"currency", []string{`12.5`, `3.1415`, `7`, `-0.0001`}, "decimal(19,4)", "",
			[]any{"12.5000", "3.1415", "7.0000", "-0.0001"}},
		{"whole numbers with a fraction", []string{`12.0`, `13`}, "decimal(19,4)", "", nil},
		{"15 integer digits", []string{`123456789012345.5`}, "decimal(19,4)", "", nil},
		{"long fraction", []string{`0.123456`, `1`}, "float64", "", []any{0.123456, 1.0}},
		{"exponent", []string{`1e-7`, `1.5`}, "float64", "", []any{1e-7, 1.5}},
		{"16 integer digits and a fraction", []string{`1234567890123456.5`}, "float64", "", nil},
		{"beyond int64", []string{`9223372036854775808`, `1`, `-3`}, "decimal(38,0)", "",
			[]any{"9223372036854775808", "1", "-3"}},
		{"beyond decimal(38,0)", []string{`1234567890123456789012345678901234567890`, `1`}, "float64", "",
			[]any{1.2345678901234568e39, 1.0}},
		{"bools", []string{`true`, `false`, `null`}, "bool", "", []any{true, false, nil}},
		{"dates", []string{`"2024-02-29T00:00:00"`, `"2024-03-01"`}, "date", "", []any{"2024-02-29", "2024-03-01"}},
		{"timestamps", []string{`"2024-02-29T00:00:00"`, `"2024-03-31T23:59:59.997"`}, "timestamp", "",
			[]any{"2024-02-29T00:00:00.000000", "2024-03-31T23:59:59.997000"}},
		{"7 fractional digits before midnight", []string{`"2024-02-28T23:59:59.9999999"`, `"2024-02-29"`}, "timestamp", "",
			[]any{"2024-02-28T23:59:59.999999", "2024-02-29T00:00:00.000000"}},
		{"valid-to sentinel", []string{`"9999-12-31T23:59:59.9999999"`, `"2024-02-29T10:00:00"`}, "timestamp", "",
			[]any{"9999-12-31T23:59:59.999999", "2024-02-29T10:00:00.000000"}},
		{"infinities and NaN", []string{`"Infinity"`, `1`, `"-Infinity"`, `"NaN"`, `null`}, "float64", "",
			[]any{math.Inf(1), 1.0, math.Inf(-1), math.NaN(), nil}},
		{"only infinities", []string{`"Infinity"`, `"-Infinity"`}, "float64", "", []any{math.Inf(1), math.Inf(-1)}},
		{"NaN among text", []string{`"NaN"`, `"abc"`}, "string", "", []any{"NaN", "abc"}},
		{"whole numbers with exponents", []string{`1E+15`, `2`}, "float64", "", []any{1e15, 2.0}},
		{"strings", []string{`"abc"`, `"2024-02-29"`, `""`}, "string", "", []any{"abc", "2024-02-29", ""}},
		{"zoned date-times are strings", []string{`"2024-02-29T00:00:00+02:00"`}, "string", "", nil},
		{"numbers and strings", []string{`1`, `"a"`, `12.50`}, "string", "mixes numbers, booleans and strings",
			[]any{"1", "a", "12.50"}},
		{"numbers and booleans", []string{`1`, `true`}, "string", "mixes numbers, booleans and strings", []any{"1", "true"}},
		{"dates and numbers", []string{`"2024-02-29"`, `20240229`}, "string", "mixes numbers, booleans and strings", nil},
		{"always null", []string{`null`, `null`, `null`}, "string", "null in all 3 sampled rows, inferred as string: declare its type in mapping.columns",
			[]any{nil, nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runInferrer(t, 0, 0, 0, oneKeyRows(tt.values...)...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if len(r.cols) != 1 {
				t.Fatalf("columns %v, want one", r.cols)
			}
			want := mapping.Column{From: "[V]", To: "v", Type: mustType(t, tt.want)}
			if r.cols[0] != want {
				t.Fatalf("column %+v, want %+v", r.cols[0], want)
			}
			switch {
			case tt.wantNote == "" && len(r.notes) > 0:
				t.Fatalf("notes %q, want none", r.notes)
			case tt.wantNote != "" && (len(r.notes) != 1 || !strings.Contains(r.notes[0], "key [V]: "+tt.wantNote)):
				t.Fatalf("notes %q, want one on key [V] with %q", r.notes, tt.wantNote)
			}
			got := r.out.column(t, 0)
			if len(got) != len(tt.values) {
				t.Fatalf("%d rows out, want %d", len(got), len(tt.values))
			}
			if tt.wantOut != nil {
				for i := range got {
					if !sameValue(got[i], tt.wantOut[i]) {
						t.Errorf("row %d = %s, want %s", i+1, showValue(got[i]), showValue(tt.wantOut[i]))
					}
				}
			}
		})
	}
}

// TestInferrerReplay: every buffered row comes out, in order, in batches of
// batchRows, and the rows after the sample go through the same builder.
func TestInferrerReplay(t *testing.T) {
	var rows [][]kv
	for i := 1; i <= 100; i++ {
		rows = append(rows, []kv{
			{`"Sales[OrderID]"`, strconv.Itoa(i)},
			{`"Sales[Date]"`, `"2024-01-` + fmt.Sprintf("%02d", i%28+1) + `T00:00:00"`},
			{`"Calendar[Date]"`, `"2023-12-` + fmt.Sprintf("%02d", i%28+1) + `"`},
			{`"[Total Sales]"`, strconv.Itoa(i) + ".25"},
		})
	}
	for _, tc := range []struct{ minRows, maxRows int }{{10, 50}, {1000, 50_000}, {1, 1}, {100, 100}} {
		t.Run(fmt.Sprintf("min=%d,max=%d", tc.minRows, tc.maxRows), func(t *testing.T) {
			r := runInferrer(t, tc.minRows, tc.maxRows, 7, rows...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			wantCols := []mapping.Column{
				{From: "Sales[OrderID]", To: "order_id", Type: mapping.Type{Kind: mapping.Int64}},
				{From: "Sales[Date]", To: "sales_date", Type: mapping.Type{Kind: mapping.Date}},
				{From: "Calendar[Date]", To: "calendar_date", Type: mapping.Type{Kind: mapping.Date}},
				{From: "[Total Sales]", To: "total_sales", Type: mapping.Type{Kind: mapping.Decimal, Precision: 19, Scale: 4}},
			}
			if !slices.Equal(r.cols, wantCols) {
				t.Fatalf("columns\n got %+v\nwant %+v", r.cols, wantCols)
			}
			wantNotes := []string{
				"key Sales[Date] is named sales_date: its column name collides with another key's",
				"key Calendar[Date] is named calendar_date: its column name collides with another key's",
			}
			if !slices.Equal(r.notes, wantNotes) {
				t.Fatalf("notes\n got %q\nwant %q", r.notes, wantNotes)
			}
			if r.out.rows() != 100 {
				t.Fatalf("%d rows out, want 100", r.out.rows())
			}
			for i, rec := range r.out.recs {
				if want := min(7, 100-7*i); rec.NumRows() != int64(want) {
					t.Fatalf("batch %d has %d rows, want %d", i, rec.NumRows(), want)
				}
			}
			ids := r.out.column(t, 0)
			totals := r.out.column(t, 3)
			for i := range 100 {
				if ids[i] != int64(i+1) || totals[i] != strconv.Itoa(i+1)+".2500" {
					t.Fatalf("row %d = (%v, %v)", i+1, ids[i], totals[i])
				}
			}
		})
	}
}

// TestInferrerLateValues: a column null in the first 2,000 rows is inferred
// from the values that come later within the sample, not from its first one
// alone.
func TestInferrerLateValues(t *testing.T) {
	const nullRows, valueRows = 2000, 1500
	build := func(absent bool) [][]kv {
		var rows [][]kv
		for i := 1; i <= nullRows+valueRows; i++ {
			row := []kv{{`"[ID]"`, strconv.Itoa(i)}}
			switch {
			case i > 1 && i <= nullRows && absent:
			case i <= nullRows:
				row = append(row, kv{`"[Late]"`, `null`})
			case i == nullRows+1:
				row = append(row, kv{`"[Late]"`, `12`}) // a whole first value: not an int64 column
			default:
				row = append(row, kv{`"[Late]"`, strconv.Itoa(i) + ".25"})
			}
			rows = append(rows, row)
		}
		return rows
	}
	for _, absent := range []bool{false, true} {
		name := "null"
		if absent {
			// As in a response sent without includeNulls: rows that leave
			// keys out keep the sample going to InferMaxRows.
			name = "absent after the first row"
		}
		t.Run(name, func(t *testing.T) {
			r := runInferrer(t, 0, 0, 0, build(absent)...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			want := []mapping.Column{
				{From: "[ID]", To: "id", Type: mapping.Type{Kind: mapping.Int64}},
				{From: "[Late]", To: "late", Type: mapping.Type{Kind: mapping.Decimal, Precision: 19, Scale: 4}},
			}
			if !slices.Equal(r.cols, want) {
				t.Fatalf("columns %+v, want %+v", r.cols, want)
			}
			if len(r.notes) != 0 {
				t.Fatalf("notes %q, want none", r.notes)
			}
			late := r.out.column(t, 1)
			if len(late) != nullRows+valueRows {
				t.Fatalf("%d rows out, want %d", len(late), nullRows+valueRows)
			}
			if late[0] != nil || late[nullRows-1] != nil || late[nullRows] != "12.0000" || late[len(late)-1] != strconv.Itoa(nullRows+valueRows)+".2500" {
				t.Fatalf("late = %v ... %v", late[:2], late[nullRows-1:nullRows+2])
			}
		})
	}
}

// TestInferrerUnseenKey documents a limit: when every row so far had every
// key, a key first seen after the decision cannot be added; the error names it.
func TestInferrerUnseenKey(t *testing.T) {
	var rows [][]kv
	for i := 1; i <= 5; i++ {
		rows = append(rows, []kv{{`"[ID]"`, strconv.Itoa(i)}})
	}
	rows = append(rows, []kv{{`"[ID]"`, `6`}, {`"[New]"`, `1`}})
	r := runInferrer(t, 3, 0, 0, rows...)
	if r.err == nil || !strings.Contains(r.err.Error(), `row 6: key "[New]" is not mapped`) {
		t.Fatalf("error %v, want one naming [New] on row 6", r.err)
	}
}

// TestInferrerNullThroughSample: a column null in every sampled row falls
// back to string with a note, and later values keep their text.
func TestInferrerNullThroughSample(t *testing.T) {
	var rows [][]kv
	for i := 1; i <= InferMaxRows+3; i++ {
		v := `null`
		switch i {
		case InferMaxRows + 1:
			v = `12.50`
		case InferMaxRows + 2:
			v = `"x"`
		case InferMaxRows + 3:
			v = `true`
		}
		rows = append(rows, []kv{{`"[ID]"`, strconv.Itoa(i)}, {`"Sales[Comment]"`, v}})
	}
	r := runInferrer(t, 0, 0, 0, rows...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.cols[1]; got != (mapping.Column{From: "Sales[Comment]", To: "comment", Type: mapping.Type{Kind: mapping.String}}) {
		t.Fatalf("column %+v", got)
	}
	wantNote := "key Sales[Comment]: null in all 50000 sampled rows, inferred as string: declare its type in mapping.columns"
	if !slices.Equal(r.notes, []string{wantNote}) {
		t.Fatalf("notes %q, want %q", r.notes, wantNote)
	}
	got := r.out.column(t, 1)
	if len(got) != InferMaxRows+3 || got[0] != nil || got[InferMaxRows-1] != nil ||
		got[InferMaxRows] != "12.50" || got[InferMaxRows+1] != "x" || got[InferMaxRows+2] != "true" {
		t.Fatalf("%d values, last ones %v", len(got), got[InferMaxRows-1:])
	}
}

func TestInferrerNoRows(t *testing.T) {
	r := runInferrer(t, 0, 0, 0)
	if !errors.Is(r.err, ErrNoRowsToInfer) {
		t.Fatalf("Finish = %v, want ErrNoRowsToInfer", r.err)
	}
	if r.schemaCalls != 0 || len(r.out.recs) != 0 {
		t.Fatalf("%d schema calls and %d batches for an empty result", r.schemaCalls, len(r.out.recs))
	}
	if !strings.Contains(ErrNoRowsToInfer.Error(), "mapping.columns") {
		t.Fatalf("ErrNoRowsToInfer does not say how to fix it: %v", ErrNoRowsToInfer)
	}
}

func TestInferrerSchemaError(t *testing.T) {
	mem := checkedMem(t)
	out := newCollector(t)
	refuse := errors.New("refused")
	in := NewInferrer(mem, 0, func([]mapping.Column, []string) error { return refuse }, out.emit)
	defer in.Release()
	if in.Columns() != nil {
		t.Fatal("Columns() before the decision is not nil")
	}
	if err := feed(in, oneKeyRows(`1`, `2`)...); err != nil {
		t.Fatal(err)
	}
	if err := in.Finish(); err != refuse {
		t.Fatalf("Finish = %v, want the schema callback's error", err)
	}
	if len(out.recs) != 0 {
		t.Fatal("batches emitted although the schema was refused")
	}
}

// TestInferrerValueErrorAfterSample: a value after the sample that does not
// fit the inferred type fails with its row number.
func TestInferrerValueErrorAfterSample(t *testing.T) {
	r := runInferrer(t, 3, 3, 0, oneKeyRows(`1`, `2`, `3`, `4`, `4.5`)...)
	var ve *ValueError
	if !errors.As(r.err, &ve) || ve.Row != 5 || ve.Column != "v" || ve.Type != (mapping.Type{Kind: mapping.Int64}) {
		t.Fatalf("error %v, want a ValueError on row 5 of int64 column v", r.err)
	}
}

// TestInferrerKeys: columns come in first-seen order; an escaped key is
// unescaped in From and still matches on replay; a duplicate key fails.
func TestInferrerKeys(t *testing.T) {
	rows := [][]kv{
		{{`"Sales[Order\u0049D]"`, `1`}, {`"[Größe]"`, `"L"`}},
		{{`"Sales[Order\u0049D]"`, `2`}, {`"[Größe]"`, `"M"`}, {`"[Extra]"`, `true`}},
	}
	r := runInferrer(t, 0, 0, 0, rows...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := []mapping.Column{
		{From: "Sales[OrderID]", To: "order_id", Type: mapping.Type{Kind: mapping.Int64}},
		{From: "[Größe]", To: "größe", Type: mapping.Type{Kind: mapping.String}},
		{From: "[Extra]", To: "extra", Type: mapping.Type{Kind: mapping.Bool}},
	}
	if !slices.Equal(r.cols, want) {
		t.Fatalf("columns %+v, want %+v", r.cols, want)
	}
	if got := r.out.column(t, 2); !slices.Equal(got, []any{nil, true}) {
		t.Fatalf("extra = %v", got)
	}

	dup := runInferrer(t, 0, 0, 0, []kv{{`"[A]"`, `1`}, {`"[A]"`, `2`}})
	if dup.err == nil || !strings.Contains(dup.err.Error(), "appears twice") {
		t.Fatalf("duplicate key: error %v", dup.err)
	}
}

func TestInferrerDeterministic(t *testing.T) {
	var rows [][]kv
	for i := range 50 {
		rows = append(rows, []kv{
			{`"Sales[Date]"`, `"2024-01-01"`}, {`"Calendar[Date]"`, `"2024-01-01T10:00:00"`},
			{`"[Date]"`, `null`}, {`"[date]"`, strconv.Itoa(i)}, {`"[Amount]"`, `1.5`},
		})
	}
	first := runInferrer(t, 10, 0, 0, rows...)
	for range 5 {
		again := runInferrer(t, 10, 0, 0, rows...)
		if !slices.Equal(again.cols, first.cols) || !slices.Equal(again.notes, first.notes) {
			t.Fatalf("second run differs:\n%+v %q\n%+v %q", first.cols, first.notes, again.cols, again.notes)
		}
	}
	wantNames := []string{"sales_date", "calendar_date", "date", "date_2", "amount"}
	var names []string
	for _, c := range first.cols {
		names = append(names, c.To)
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("names %v, want %v", names, wantNames)
	}
}

var _ receiver = (*Inferrer)(nil)

// TestInferrerDecisionPoint checks when the schema is decided: as soon as
// every key has minRows non-null values, unless rows leave keys out; at
// maxRows at the latest.
func TestInferrerDecisionPoint(t *testing.T) {
	const minRows, maxRows = 10, 30
	tests := []struct {
		name string
		row  func(i int) []kv // i is 1-based
		want int              // the row after which the schema is decided
	}{
		{"dense", func(i int) []kv {
			return []kv{{`"[A]"`, strconv.Itoa(i)}, {`"[B]"`, `"x"`}}
		}, minRows},
		{"late column", func(i int) []kv {
			b := `null`
			if i > 5 {
				b = `true`
			}
			return []kv{{`"[A]"`, strconv.Itoa(i)}, {`"[B]"`, b}}
		}, 5 + minRows},
		{"sparse column", func(i int) []kv {
			b := `null`
			if i%3 == 0 {
				b = `1.5`
			}
			return []kv{{`"[A]"`, strconv.Itoa(i)}, {`"[B]"`, b}}
		}, maxRows},
		{"always null", func(i int) []kv {
			return []kv{{`"[A]"`, strconv.Itoa(i)}, {`"[B]"`, `null`}}
		}, maxRows},
		{"a row leaves a key out", func(i int) []kv {
			if i == 2 {
				return []kv{{`"[A]"`, strconv.Itoa(i)}}
			}
			return []kv{{`"[A]"`, strconv.Itoa(i)}, {`"[B]"`, `1`}}
		}, maxRows},
		{"a key appears in row 2", func(i int) []kv {
			if i == 1 {
				return []kv{{`"[A]"`, strconv.Itoa(i)}}
			}
			return []kv{{`"[A]"`, strconv.Itoa(i)}, {`"[B]"`, `1`}}
		}, maxRows},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := checkedMem(t)
			out := newCollector(t)
			decidedAt := 0
			row := 0
			in := NewInferrer(mem, 0, func([]mapping.Column, []string) error {
				decidedAt = row
				return nil
			}, out.emit)
			defer in.Release()
			in.minRows, in.maxRows = minRows, maxRows
			for row = 1; row <= maxRows+5; row++ {
				if err := feed(in, tt.row(row)); err != nil {
					t.Fatal(err)
				}
			}
			if err := in.Finish(); err != nil {
				t.Fatal(err)
			}
			if decidedAt != tt.want {
				t.Fatalf("decided after row %d, want %d", decidedAt, tt.want)
			}
			if out.rows() != maxRows+5 {
				t.Fatalf("%d rows out, want %d", out.rows(), maxRows+5)
			}
		})
	}
}
