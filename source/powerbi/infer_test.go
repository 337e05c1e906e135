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

// runInferrer feeds rows to a new Inferrer (deciding after maxRows rows
// when non-zero) and finishes it. It checks that the schema callback comes
// before the first batch.
func runInferrer(t *testing.T, maxRows, batchRows int, rows ...[]kv) *inferRun {
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
		{"whole numbers written with a zero fraction", []string{`12.0`, `13`}, "int64", "", []any{int64(12), int64(13)}},
		// A fraction anywhere makes float64: no decimal(19,4) guessed from
		// values with at most 4 decimals (a Double column breaks it later).
		{"at most 4 decimals", []string{`12.5`, `3.1415`, `7`, `-0.0001`}, "float64", "write decimal(19,4) if this is a Currency",
			[]any{12.5, 3.1415, 7.0, -0.0001}},
		{"15 integer digits", []string{`123456789012345.5`}, "float64", "write decimal(19,4)", nil},
		{"long fraction", []string{`0.123456`, `1`}, "float64", "", []any{0.123456, 1.0}},
		{"exponent", []string{`1e-7`, `1.5`}, "float64", "", []any{1e-7, 1.5}},
		{"16 integer digits and a fraction", []string{`1234567890123456.5`}, "float64", "", nil},
		{"beyond int64", []string{`9223372036854775808`, `1`, `-3`}, "decimal(38,0)", "",
			[]any{"9223372036854775808", "1", "-3"}},
		{"beyond decimal(38,0)", []string{`1234567890123456789012345678901234567890`, `1`}, "float64", "",
			[]any{1.2345678901234568e39, 1.0}},
		{"bools", []string{`true`, `false`, `null`}, "bool", "", []any{true, false, nil}},
		// Midnight-only date-times stay timestamp: a 09:15 may come later.
		{"midnight only", []string{`"2024-02-29T00:00:00"`, `"2024-03-01"`}, "timestamp", "every value is at midnight: inferred as timestamp; write date if this is a Date column",
			[]any{"2024-02-29T00:00:00.000000", "2024-03-01T00:00:00.000000"}},
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
		// Numbers and text: string, every value kept, with a note.
		{"numbers then N/A", []string{`1`, `12.50`, `"N/A"`}, "string", `mixes numbers (first in row 1) and text (first in row 3): inferred as string, numbers keep their literal text`,
			[]any{"1", "12.50", "N/A"}},
		{"numbers and booleans", []string{`1`, `true`}, "string", "mixes booleans with numbers or text", []any{"1", "true"}},
		{"dates and numbers", []string{`"2024-02-29"`, `20240229`}, "string", "mixes numbers (first in row 2) and text (first in row 1)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runInferrer(t, 0, 0, oneKeyRows(tt.values...)...)
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
			case tt.wantNote != "" && (len(r.notes) != 1 || !strings.HasPrefix(r.notes[0], "key [V]: ") || !strings.Contains(r.notes[0], tt.wantNote)):
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
// batchRows, and the rows after the decision go through the same builder.
func TestInferrerReplay(t *testing.T) {
	var rows [][]kv
	for i := 1; i <= 100; i++ {
		rows = append(rows, []kv{
			{`"Sales[OrderID]"`, strconv.Itoa(i)},
			{`"Sales[Date]"`, `"2024-01-` + fmt.Sprintf("%02d", i%28+1) + `T00:00:00"`},
			{`"Calendar[Date]"`, `"2023-12-` + fmt.Sprintf("%02d", i%28+1) + `T10:00:00"`},
			{`"[Total Sales]"`, strconv.Itoa(i) + ".25"},
		})
	}
	for _, maxRows := range []int{1, 50, 100, 0} {
		t.Run(fmt.Sprintf("max=%d", maxRows), func(t *testing.T) {
			r := runInferrer(t, maxRows, 7, rows...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			wantCols := []mapping.Column{
				{From: "Sales[OrderID]", To: "order_id", Type: mapping.Type{Kind: mapping.Int64}},
				{From: "Sales[Date]", To: "sales_date", Type: mapping.Type{Kind: mapping.Timestamp}},
				{From: "Calendar[Date]", To: "calendar_date", Type: mapping.Type{Kind: mapping.Timestamp}},
				{From: "[Total Sales]", To: "total_sales", Type: mapping.Type{Kind: mapping.Float64}},
			}
			if !slices.Equal(r.cols, wantCols) {
				t.Fatalf("columns\n got %+v\nwant %+v", r.cols, wantCols)
			}
			wantNotes := []string{
				"key Sales[Date] is named sales_date: its column name collides with another key's",
				"key Calendar[Date] is named calendar_date: its column name collides with another key's",
				"key Sales[Date]: " + noteMidnight,
				"key [Total Sales]: " + noteFourPlaces,
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
				if ids[i] != int64(i+1) || totals[i] != float64(i+1)+0.25 {
					t.Fatalf("row %d = (%v, %v)", i+1, ids[i], totals[i])
				}
			}
		})
	}
}

// TestInferrerReadsTheWholeResponse reproduces the cases that broke
// scheduled jobs when inference decided from the first 1,000 values: each
// later value is within the first response, so the types hold it.
func TestInferrerReadsTheWholeResponse(t *testing.T) {
	const n = 60_000
	var rows [][]kv
	for i := 1; i <= n; i++ {
		double := strconv.FormatFloat(float64(i%1000)/4, 'f', -1, 64) // at most 2 decimals
		when := fmt.Sprintf(`"2024-01-%02dT00:00:00"`, i%28+1)
		late := `null`
		measure := strconv.Itoa(i)
		switch {
		case i == n-1:
			double = `6.666666666666667`
			when = `"2024-03-01T09:15:00"`
		case i > 50_000:
			late = strconv.Itoa(i)
		}
		if i == n {
			measure = `"N/A"`
		}
		rows = append(rows, []kv{{`"T[Double]"`, double}, {`"T[When]"`, when}, {`"T[Late]"`, late}, {`"[Measure]"`, measure}})
	}
	r := runInferrer(t, 0, 0, rows...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := []mapping.Column{
		{From: "T[Double]", To: "double", Type: mapping.Type{Kind: mapping.Float64}},
		{From: "T[When]", To: "when", Type: mapping.Type{Kind: mapping.Timestamp}},
		{From: "T[Late]", To: "late", Type: mapping.Type{Kind: mapping.Int64}},
		{From: "[Measure]", To: "measure", Type: mapping.Type{Kind: mapping.String}},
	}
	if !slices.Equal(r.cols, want) {
		t.Fatalf("columns\n got %+v\nwant %+v", r.cols, want)
	}
	if d := r.out.column(t, 0); d[n-2] != 6.666666666666667 {
		t.Fatalf("double at row %d = %v", n-1, d[n-2])
	}
	if m := r.out.column(t, 3); m[0] != "1" || m[n-1] != "N/A" {
		t.Fatalf("measure = %v ... %v", m[0], m[n-1])
	}
	if l := r.out.column(t, 2); l[0] != nil || l[n-1] != int64(n) {
		t.Fatalf("late = %v ... %v", l[0], l[n-1])
	}
}

// TestInferrerAllNull: a column null in every row read is an error that
// names it and gives the mapping line to write, never a silent string.
func TestInferrerAllNull(t *testing.T) {
	var rows [][]kv
	for i := 1; i <= 10; i++ {
		rows = append(rows, []kv{{`"[ID]"`, strconv.Itoa(i)}, {`"Sales[Discount Rate]"`, `null`}, {`"[Note]"`, `null`}})
	}
	r := runInferrer(t, 0, 0, rows...)
	var an *AllNullError
	if !errors.As(r.err, &an) {
		t.Fatalf("error %v, want an AllNullError", r.err)
	}
	want := `keys Sales[Discount Rate], [Note] are null in all 10 rows of the first response, so no type can be inferred: give the job a mapping: block (pbicopy infer prints one) with - { from: "Sales[Discount Rate]", to: discount_rate, type: TYPE } and - { from: "[Note]", to: note, type: TYPE }, TYPE being`
	if !strings.HasPrefix(r.err.Error(), want) {
		t.Fatalf("error\n%v\nwant it to start with\n%s", r.err, want)
	}
	if r.schemaCalls != 0 || len(r.out.recs) != 0 {
		t.Fatal("a schema or batches came although a column has no type")
	}
}

// TestInferrerLaterValueDoesNotFit: a value after the decision that does not
// fit the inferred type fails with the row, the column, both types and the
// mapping line to add.
func TestInferrerLaterValueDoesNotFit(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"fraction in int64", []string{`1`, `2`, `3`, `4.5`},
			`row 4, column v (from [V]): value 4.5 does not fit the type int64 inferred from the first 3 rows (it is not an integer): it needs float64; give the job a mapping: block (pbicopy infer prints one, run -v logs the inferred one) with the line  - { from: "[V]", to: v, type: float64 }`},
		{"text in float64", []string{`1.5`, `2`, `3`, `"N/A"`}, `value "N/A" does not fit the type float64 inferred from the first 3 rows (it is a string, not a number): it needs string; `},
		{"time in timestamp? no: text", []string{`"2024-01-01"`, `"2024-01-02"`, `"2024-01-03"`, `"soon"`}, `it needs string; give the job a mapping: block (pbicopy infer prints one, run -v logs the inferred one) with the line  - { from: "[V]", to: v, type: string }`},
		{"beyond int64", []string{`1`, `2`, `3`, `9223372036854775808`}, `it needs decimal(38,0);`},
		{"number in bool", []string{`true`, `false`, `true`, `1`}, `it needs string;`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runInferrer(t, 3, 0, oneKeyRows(tt.values...)...)
			var ie *InferredTypeError
			if !errors.As(r.err, &ie) || ie.Row != 4 {
				t.Fatalf("error %v, want an InferredTypeError on row 4", r.err)
			}
			if !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("error\n%v\nwant it to contain\n%s", r.err, tt.want)
			}
		})
	}
}

// TestInferrerUnseenKey: a key first seen after the decision cannot be
// added; the error names it and says why.
func TestInferrerUnseenKey(t *testing.T) {
	var rows [][]kv
	for i := 1; i <= 5; i++ {
		rows = append(rows, []kv{{`"[ID]"`, strconv.Itoa(i)}})
	}
	rows = append(rows, []kv{{`"[ID]"`, `6`}, {`"[New]"`, `1`}})
	r := runInferrer(t, 3, 0, rows...)
	if r.err == nil || !strings.Contains(r.err.Error(), `row 6: key "[New]" first appears after the first 3 rows, from which the columns were inferred`) {
		t.Fatalf("error %v, want one naming [New] on row 6", r.err)
	}
}

func TestInferrerNoRows(t *testing.T) {
	r := runInferrer(t, 0, 0)
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

// TestInferrerKeys: columns come in first-seen order; an escaped key is
// unescaped in From and still matches on replay; a duplicate key fails.
func TestInferrerKeys(t *testing.T) {
	rows := [][]kv{
		{{`"Sales[Order\u0049D]"`, `1`}, {`"[Größe]"`, `"L"`}},
		{{`"Sales[Order\u0049D]"`, `2`}, {`"[Größe]"`, `"M"`}, {`"[Extra]"`, `true`}},
	}
	r := runInferrer(t, 0, 0, rows...)
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

	dup := runInferrer(t, 0, 0, []kv{{`"[A]"`, `1`}, {`"[A]"`, `2`}})
	if dup.err == nil || !strings.Contains(dup.err.Error(), "appears twice") {
		t.Fatalf("duplicate key: error %v", dup.err)
	}
}

func TestInferrerDeterministic(t *testing.T) {
	var rows [][]kv
	for i := range 50 {
		rows = append(rows, []kv{
			{`"Sales[Date]"`, `"2024-01-01"`}, {`"Calendar[Date]"`, `"2024-01-01T10:00:00"`},
			{`"[Date]"`, `true`}, {`"[date]"`, strconv.Itoa(i)}, {`"[Amount]"`, `1.5`},
		})
	}
	first := runInferrer(t, 10, 0, rows...)
	for range 5 {
		again := runInferrer(t, 10, 0, rows...)
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

// TestInferrerDecisionPoint checks when the schema is decided: at the end of
// the response, at the end of the first page, or at the row or byte bound.
func TestInferrerDecisionPoint(t *testing.T) {
	const rows = 40
	tests := []struct {
		name      string
		maxRows   int
		maxBytes  int
		pageAfter int // EndPage after this row (0: never)
		want      int // the row after which the schema is decided
	}{
		{"end of the response", 0, 0, 0, rows},
		{"end of the first page", 0, 0, 15, 15},
		{"row bound", 10, 0, 0, 10},
		{"byte bound", 0, 5 * 2, 0, 5}, // two bytes of values a row: a digit and 1
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
			if tt.maxRows > 0 {
				in.maxRows = tt.maxRows
			}
			if tt.maxBytes > 0 {
				in.maxBytes = tt.maxBytes
			}
			for row = 1; row <= rows; row++ {
				if err := feed(in, []kv{{`"[A]"`, strconv.Itoa(row % 10)}, {`"[B]"`, `1`}}); err != nil {
					t.Fatal(err)
				}
				if row == tt.pageAfter {
					if err := in.EndPage(); err != nil {
						t.Fatal(err)
					}
				}
			}
			row = rows
			if err := in.Finish(); err != nil {
				t.Fatal(err)
			}
			if decidedAt != tt.want {
				t.Fatalf("decided after row %d, want %d", decidedAt, tt.want)
			}
			if out.rows() != rows {
				t.Fatalf("%d rows out, want %d", out.rows(), rows)
			}
		})
	}
}

// TestInferrerNullType: for a command that only shows a result, a column
// null in every row takes the type given, with a note.
func TestInferrerNullType(t *testing.T) {
	mem := checkedMem(t)
	out := newCollector(t)
	var cols []mapping.Column
	var notes []string
	in := NewInferrer(mem, 0, func(c []mapping.Column, n []string) error { cols, notes = c, n; return nil }, out.emit)
	defer in.Release()
	in.nullType = mapping.Type{Kind: mapping.String}
	if err := feed(in, []kv{{`"[ID]"`, `1`}, {`"[Empty]"`, `null`}}); err != nil {
		t.Fatal(err)
	}
	if err := in.Finish(); err != nil {
		t.Fatal(err)
	}
	if len(cols) != 2 || cols[1].Type != (mapping.Type{Kind: mapping.String}) || !slices.Equal(notes, []string{"key [Empty]: null in all 1 rows: shown as string"}) {
		t.Fatalf("columns %+v, notes %q", cols, notes)
	}
}
