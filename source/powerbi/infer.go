package powerbi

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/source"
)

// What inference reads before it decides: the whole first response of an
// unpaged query (the service sends at most 100,000 rows and 15 MB in one),
// or the first page of a paged one. The two bounds only matter for a saved
// response replayed without the service's limit (benchmarks): the schema is
// then decided after InferMaxRows rows or InferMaxBytes of buffered values.
// Rows read until then are buffered (raw JSON) and replayed.
const (
	InferMaxRows  = 100_000
	InferMaxBytes = MaxResultBytes
)

// ErrNoRowsToInfer is returned when a job without a mapping gets an empty
// result: with no keys there is no schema to write.
var ErrNoRowsToInfer = errors.New("the query returned no rows, so no columns can be inferred: declare mapping.columns for a query whose result may be empty (pbicopy infer prints a mapping from a query that returns rows)")

// SchemaFunc is told the columns once inference has decided them, before
// the first batch is emitted. notes describe choices the user should review
// (renamed collisions, ambiguous types).
type SchemaFunc func(cols []mapping.Column, notes []string) error

// Inferrer is a rowReceiver for jobs without a mapping: it buffers the
// first response (or page), infers column names and types from all of it,
// then builds batches exactly as a Builder for those columns would, every
// row included. A later value that does not fit its inferred type fails
// with an *InferredTypeError, which gives the mapping line to declare.
type Inferrer struct {
	mem       memory.Allocator
	batchRows int
	emit      EmitFunc
	onSchema  SchemaFunc
	maxRows   int
	maxBytes  int

	keyIdx  map[string]int // raw key -> index in keys
	rawKeys [][]byte
	stats   []valueStats

	arena  []byte
	fields []sampledField
	ends   []int // fields index at the end of each buffered row

	b     *Builder // set once decided
	basis string   // what the types were inferred from, for messages

	// nullType, when set, is the type of a column null in every row;
	// zero: such a column is an *AllNullError.
	nullType mapping.Type
}

// sampledField is one buffered value: its key and where its raw JSON ends in
// the arena (it starts where the one before ends).
type sampledField struct {
	key, end uint32
}

// valueStats accumulates what the values of one key looked like.
type valueStats struct {
	nonNull                            int
	ints, bigInts, fracs, exps         int
	nonFinite                          int // "NaN", "Infinity", "-Infinity"
	maxFrac, maxIntDigits              int
	bools, dates, dateTimes, otherStrs int
	firstText, firstNumber             int // 1-based rows of the first text and the first number
}

// NewInferrer returns an Inferrer that emits batches like NewBuilder would.
func NewInferrer(mem memory.Allocator, batchRows int, onSchema SchemaFunc, emit EmitFunc) *Inferrer {
	return &Inferrer{mem: mem, batchRows: batchRows, emit: emit, onSchema: onSchema,
		maxRows: InferMaxRows, maxBytes: InferMaxBytes, keyIdx: map[string]int{}}
}

// Field receives one key and its raw JSON value; see rowReceiver.
func (in *Inferrer) Field(key, value []byte) error {
	if in.b != nil {
		return inferredField(in.b, key, value, in.basis)
	}
	k, ok := in.keyIdx[string(key)]
	if !ok {
		k = len(in.rawKeys)
		in.keyIdx[string(key)] = k
		in.rawKeys = append(in.rawKeys, bytes.Clone(key))
		in.stats = append(in.stats, valueStats{})
	}
	if len(value) > 0 && value[0] != 'n' {
		in.stats[k].observe(value, len(in.ends)+1)
	}
	in.arena = append(in.arena, value...)
	in.fields = append(in.fields, sampledField{key: uint32(k), end: uint32(len(in.arena))})
	return nil
}

// EndRow closes the current row; see rowReceiver.
func (in *Inferrer) EndRow() error {
	if in.b != nil {
		return in.b.EndRow()
	}
	in.ends = append(in.ends, len(in.fields))
	if n := len(in.ends); n >= in.maxRows || len(in.arena) >= in.maxBytes {
		return in.decide(fmt.Sprintf("the first %d rows", n), "the first rows read")
	}
	return nil
}

// EndPage is told by a pager that a page ended: the first page decides the
// schema (the later pages are typed by it).
func (in *Inferrer) EndPage() error {
	if in.b != nil || len(in.ends) == 0 {
		return nil
	}
	return in.decide(fmt.Sprintf("the %d rows of the first page", len(in.ends)), "the first page")
}

// Finish decides the schema if the result ended before it was, then emits
// the last partial batch.
func (in *Inferrer) Finish() error {
	if in.b == nil {
		if len(in.ends) == 0 {
			return ErrNoRowsToInfer
		}
		if err := in.decide(fmt.Sprintf("the %d rows of the first response", len(in.ends)), "the first response"); err != nil {
			return err
		}
	}
	return in.b.Flush()
}

// Release frees the builder's buffers.
func (in *Inferrer) Release() {
	if in.b != nil {
		in.b.Release()
	}
}

// Columns returns the inferred columns, or nil before the schema is decided.
func (in *Inferrer) Columns() []mapping.Column {
	if in.b == nil {
		return nil
	}
	return in.b.cols
}

// decide infers the columns from the rows buffered, basis and where saying
// what they were for messages, and replays the rows.
func (in *Inferrer) decide(basis, where string) error {
	cols, err := inferColumns(in.rawKeys, in.stats, len(in.ends))
	var null *AllNullError
	if errors.As(err, &null) {
		null.Where = where
	}
	if null != nil && in.nullType.Kind != 0 {
		for i := range cols {
			if cols[i].NonNull == 0 {
				cols[i].Type = in.nullType
				cols[i].Note = fmt.Sprintf("null in all %d rows: shown as %s", len(in.ends), in.nullType)
			}
		}
		err = nil
	}
	if err != nil {
		return err
	}
	in.basis = basis
	notes := columnNotes(cols)
	plain := make([]mapping.Column, len(cols))
	for i, c := range cols {
		plain[i] = c.Column
	}
	if in.onSchema != nil {
		if err := in.onSchema(plain, notes); err != nil {
			return err
		}
	}
	in.b = NewBuilder(in.mem, plain, mapping.UnmappedError, in.batchRows, in.emit)
	start, off := 0, 0
	for _, end := range in.ends {
		for _, f := range in.fields[start:end] {
			if err := in.b.Field(in.rawKeys[f.key], in.arena[off:f.end]); err != nil {
				return err
			}
			off = int(f.end)
		}
		if err := in.b.EndRow(); err != nil {
			return err
		}
		start = end
	}
	in.arena, in.fields, in.ends = nil, nil, nil
	return nil
}

// inferColumns derives the columns from the keys and their values: the
// names of mapping.TargetNames, the types of valueStats.infer. A key null in
// every row is an *AllNullError, since no type can be inferred for it.
func inferColumns(rawKeys [][]byte, stats []valueStats, rows int) ([]InferredColumn, error) {
	keys := make([]string, len(rawKeys))
	for i, rk := range rawKeys {
		k, err := jsontext.AppendUnquote(nil, rk)
		if err != nil {
			return nil, fmt.Errorf("row key %s: %w", displayValue(rk), err)
		}
		keys[i] = string(k)
	}
	names, _ := mapping.TargetNames(keys)
	cols := make([]InferredColumn, len(keys))
	var null []mapping.Column
	for i, k := range keys {
		t, note := stats[i].infer()
		_, col := mapping.SplitKey(k)
		cols[i] = InferredColumn{
			Column:  mapping.Column{From: k, To: names[i], Type: t},
			NonNull: stats[i].nonNull,
			Renamed: names[i] != mapping.SnakeCase(col),
			Note:    note,
		}
		if stats[i].nonNull == 0 {
			null = append(null, cols[i].Column)
		}
	}
	if len(null) > 0 {
		return cols, &AllNullError{Columns: null, Rows: rows}
	}
	return cols, nil
}

// columnNotes are the notes a run reports on inferred columns: renamed
// columns and ambiguous types.
func columnNotes(cols []InferredColumn) []string {
	var notes []string
	for _, c := range cols {
		if c.Renamed {
			notes = append(notes, fmt.Sprintf("key %s is named %s: its column name collides with another key's", c.From, c.To))
		}
	}
	for _, c := range cols {
		if c.Note != "" {
			notes = append(notes, fmt.Sprintf("key %s: %s", c.From, c.Note))
		}
	}
	return notes
}

// AllNullError reports columns null in every row inference read: no type
// can be inferred for them, and guessing one (string, say) would write later
// numbers as text for good.
type AllNullError struct {
	Columns []mapping.Column // From and To set; Type is the zero Type
	Rows    int
	Where   string // "the first response" (the default), "the first page", ...
}

func (e *AllNullError) Error() string {
	var keys, lines []string
	for _, c := range e.Columns {
		keys = append(keys, c.From)
		lines = append(lines, fmt.Sprintf("- { from: %s, to: %s, type: TYPE }", mapping.YAMLString(c.From), mapping.YAMLName(c.To)))
	}
	what := "key " + keys[0] + " is"
	if len(keys) > 1 {
		what = "keys " + strings.Join(keys, ", ") + " are"
	}
	where := e.Where
	if where == "" {
		where = "the first response"
	}
	return fmt.Sprintf("%s null in all %d rows of %s, so no type can be inferred: give the job a mapping: block (pbicopy infer prints one) with %s, TYPE being the column's type (string, int64, float64, decimal(19,4), bool, date, timestamp)",
		what, e.Rows, where, strings.Join(lines, " and "))
}

// InferredTypeError is a value that does not fit the type inferred for its
// column from earlier rows (the first response, page or partition).
type InferredTypeError struct {
	*ValueError
	Needed mapping.Type
	Basis  string // what the type was inferred from
}

func (e *InferredTypeError) Error() string {
	line := mapping.Column{From: e.From, To: e.Column, Type: e.Needed}.Line()
	return fmt.Sprintf("row %d, column %s (from %s): value %s does not fit the type %s inferred from %s (it %s): it needs %s; give the job a mapping: block (pbicopy infer prints one, run -v logs the inferred one) with the line  %s",
		e.Row, e.Column, e.From, e.Value, e.Type, e.Basis, e.Reason, e.Needed, line)
}

func (e *InferredTypeError) Unwrap() error { return e.ValueError }

// inferredField hands one field to a builder whose columns were inferred,
// explaining its failures in terms of the inference: a value that does not
// fit becomes an *InferredTypeError, a key not seen before says that it came
// after the rows the columns were inferred from.
func inferredField(b *Builder, key, value []byte, basis string) error {
	if b.err != nil {
		return b.err
	}
	if _, ok := b.lookup(key); !ok {
		return b.fail(permanentError{fmt.Errorf("row %d: key %s first appears after %s, from which the columns were inferred: give the job a mapping: block (pbicopy infer prints one) with a line for it", b.row, displayValue(key), basis)})
	}
	err := b.Field(key, value)
	var ve *ValueError
	if err != nil && errors.As(err, &ve) && len(value) > 0 {
		err = b.fail(&InferredTypeError{ValueError: ve, Needed: neededType(ve.Type, value), Basis: basis})
	}
	return err
}

// inferredRows is a Builder whose columns were inferred elsewhere (an
// earlier partition of the job): its failures are explained as an
// Inferrer's are.
type inferredRows struct {
	*Builder
	basis string
}

func (r inferredRows) Field(key, value []byte) error {
	return inferredField(r.Builder, key, value, r.basis)
}
func (r inferredRows) finish() error { return r.Flush() }

// neededType is the type a column inferred as t needs to take raw as well.
func neededType(t mapping.Type, raw []byte) mapping.Type {
	var st valueStats
	st.observe(raw, 1)
	v, _ := st.infer()
	numeric := func(k mapping.Kind) bool {
		return k == mapping.Int64 || k == mapping.Float64 || k == mapping.Decimal
	}
	switch {
	case numeric(t.Kind) && numeric(v.Kind):
		if t.Kind == mapping.Int64 && v.Kind == mapping.Decimal && v.Scale == 0 {
			return v
		}
		return mapping.Type{Kind: mapping.Float64}
	case t.Kind == mapping.Date && v.Kind == mapping.Timestamp:
		return v
	}
	return mapping.Type{Kind: mapping.String}
}

// observe counts one non-null raw value, of the 1-based row.
func (st *valueStats) observe(raw []byte, row int) {
	st.nonNull++
	switch {
	case raw[0] == 't' || raw[0] == 'f':
		st.bools++
	case raw[0] == '"':
		if _, ok := nonFinite(raw); ok {
			st.nonFinite++
			return
		}
		if st.firstText == 0 {
			st.firstText = row
		}
		s, _, err := stringContent(raw, nil)
		if err == nil && len(s) >= 10 {
			if c, err := parseCivil(s); err == nil {
				if c.midnight {
					st.dates++
				} else {
					st.dateTimes++
				}
				return
			}
		}
		st.otherStrs++
	case isNumber(raw):
		if st.firstNumber == 0 {
			st.firstNumber = row
		}
		digits := raw
		if digits[0] == '-' {
			digits = digits[1:]
		}
		if bytes.ContainsAny(digits, "eE") {
			st.exps++
			return
		}
		intPart, frac, hasFrac := bytes.Cut(digits, []byte{'.'})
		st.maxIntDigits = max(st.maxIntDigits, len(intPart))
		if hasFrac && len(bytes.TrimRight(frac, "0")) > 0 {
			st.fracs++
			st.maxFrac = max(st.maxFrac, len(frac))
			return
		}
		if _, err := parseInt64(raw); err != nil {
			st.bigInts++
		} else {
			st.ints++
		}
	default:
		st.otherStrs++
	}
}

// Notes on the types a later value could have made another choice for.
const (
	noteMidnight   = "every value is at midnight: inferred as timestamp; write date if this is a Date column"
	noteFourPlaces = "every value has at most 4 decimals: inferred as float64; write decimal(19,4) if this is a Currency (fixed decimal) column"
)

// infer picks the type no later value of the same kind can break, with a
// note when the values leave a choice the data engineer should make:
//   - whole numbers: int64 (decimal(38,0) beyond int64, float64 beyond that);
//   - a fraction or an exponent anywhere, or "NaN"/"Infinity" among numbers:
//     float64 (never a decimal guessed from the number of decimals);
//   - ISO date-times, at midnight or not: timestamp (never a date guessed from
//     midnight values: a 09:15 may come later);
//   - true/false: bool; other strings: string;
//   - numbers mixed with text or booleans: string, with a note.
//
// A key with no value at all gets the zero Type (the caller refuses it).
func (st *valueStats) infer() (mapping.Type, string) {
	numbers := st.ints + st.bigInts + st.fracs + st.exps + st.nonFinite
	strs := st.dates + st.dateTimes + st.otherStrs
	switch {
	case st.nonNull == 0:
		return mapping.Type{}, "null in every row: no type can be inferred; declare it"
	case numbers == st.nonNull:
		switch {
		case st.exps > 0 || st.nonFinite > 0:
			return mapping.Type{Kind: mapping.Float64}, ""
		case st.fracs > 0 && st.maxFrac <= 4 && st.maxIntDigits <= 15:
			return mapping.Type{Kind: mapping.Float64}, noteFourPlaces
		case st.fracs > 0:
			return mapping.Type{Kind: mapping.Float64}, ""
		case st.bigInts > 0 && st.maxIntDigits <= mapping.MaxDecimalPrecision:
			return mapping.Type{Kind: mapping.Decimal, Precision: mapping.MaxDecimalPrecision, Scale: 0}, ""
		case st.bigInts > 0:
			return mapping.Type{Kind: mapping.Float64}, ""
		}
		return mapping.Type{Kind: mapping.Int64}, ""
	case st.bools == st.nonNull:
		return mapping.Type{Kind: mapping.Bool}, ""
	case strs == st.nonNull && st.otherStrs == 0 && st.dateTimes == 0:
		return mapping.Type{Kind: mapping.Timestamp}, noteMidnight
	case strs == st.nonNull && st.otherStrs == 0:
		return mapping.Type{Kind: mapping.Timestamp}, ""
	case strs+st.nonFinite == st.nonNull:
		// "NaN" among other text is text.
		return mapping.Type{Kind: mapping.String}, ""
	case numbers > 0 && strs > 0:
		return mapping.Type{Kind: mapping.String}, fmt.Sprintf("mixes numbers (first in row %d) and text (first in row %d): inferred as string, numbers keep their literal text; if the text stands for no value (\"N/A\"), make the measure return BLANK() and declare a numeric type", st.firstNumber, st.firstText)
	}
	return mapping.Type{Kind: mapping.String}, "mixes booleans with numbers or text: inferred as string"
}

// newInferRows returns the rowSink of a request without columns: an
// Inferrer that logs its notes and announces the schema it infers.
func newInferRows(req source.Request, r source.Receiver, mem memory.Allocator, emit EmitFunc) rowSink {
	log := req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	in := NewInferrer(mem, req.BatchRows, func(cols []mapping.Column, notes []string) error {
		for _, n := range notes {
			log.Warn("inferred mapping: " + n)
		}
		if err := r.Schema(mapping.Schema(cols), notes); err != nil {
			return err
		}
		log.Debug("inferred mapping: add this block to the job file to keep these types (pbicopy infer comments the choices to review)",
			"mapping", MappingBlock(mapping.Block(cols, 0)))
		if req.OnInferred != nil {
			req.OnInferred(cols)
		}
		return nil
	}, emit)
	in.nullType = req.NullType
	return inferRows{in}
}

// MappingBlock is a mapping: block, as the debug log of a run without a
// mapping gives it: a text log handler may write it as it is, ready to
// paste, instead of quoted on one line.
type MappingBlock string
