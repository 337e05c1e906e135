package powerbi

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pbicopy/pbicopy/mapping"
)

// Inference sample sizes: the schema is decided once every key has had
// InferMinRows non-null values, or after InferMaxRows rows, or at the end of
// the result, whichever comes first. Rows seen until then are buffered (raw
// JSON) and replayed. Once a row has left a key out (a response without
// includeNulls), a key never seen yet may still come: the sample then runs to
// InferMaxRows.
const (
	InferMinRows = 1000
	InferMaxRows = 50_000
)

// ErrNoRowsToInfer is returned when a job without a mapping gets an empty
// result: with no keys there is no schema to write.
var ErrNoRowsToInfer = errors.New("the query returned no rows, so no columns can be inferred: declare mapping.columns for a query whose result may be empty")

// SchemaFunc is told the columns once inference has decided them, before
// the first batch is emitted. notes describe choices the user should review
// (renamed collisions, columns that were always null).
type SchemaFunc func(cols []mapping.Column, notes []string) error

// Inferrer is a rowReceiver for jobs without a mapping: it samples the
// first rows, infers column names and types from them, then builds batches
// exactly as a Builder for those columns would, every row included.
type Inferrer struct {
	mem       memory.Allocator
	batchRows int
	emit      EmitFunc
	onSchema  SchemaFunc
	minRows   int
	maxRows   int

	keyIdx  map[string]int // raw key -> index in keys
	rawKeys [][]byte
	stats   []valueStats
	ready   int  // keys with minRows non-null values so far
	sparse  bool // some row left out a key

	arena  []byte
	fields []sampledField
	ends   []int // fields index at the end of each buffered row

	b *Builder // set once decided
}

type sampledField struct {
	key      int
	off, end int
}

// valueStats accumulates what the sampled values of one key looked like.
type valueStats struct {
	nonNull                            int
	ints, bigInts, fracs, exps         int
	nonFinite                          int // "NaN", "Infinity", "-Infinity"
	maxFrac, maxIntDigits              int
	bools, dates, dateTimes, otherStrs int
}

// NewInferrer returns an Inferrer that emits batches like NewBuilder would.
func NewInferrer(mem memory.Allocator, batchRows int, onSchema SchemaFunc, emit EmitFunc) *Inferrer {
	return &Inferrer{mem: mem, batchRows: batchRows, emit: emit, onSchema: onSchema,
		minRows: InferMinRows, maxRows: InferMaxRows, keyIdx: map[string]int{}}
}

// Field receives one key and its raw JSON value; see rowReceiver.
func (in *Inferrer) Field(key, value []byte) error {
	if in.b != nil {
		return in.b.Field(key, value)
	}
	k, ok := in.keyIdx[string(key)]
	if !ok {
		in.sparse = in.sparse || len(in.ends) > 0 // the rows before lacked it
		k = len(in.rawKeys)
		in.keyIdx[string(key)] = k
		in.rawKeys = append(in.rawKeys, bytes.Clone(key))
		in.stats = append(in.stats, valueStats{})
	}
	st := &in.stats[k]
	if len(value) > 0 && value[0] != 'n' {
		st.observe(value)
		if st.nonNull == in.minRows {
			in.ready++
		}
	}
	off := len(in.arena)
	in.arena = append(in.arena, value...)
	in.fields = append(in.fields, sampledField{key: k, off: off, end: len(in.arena)})
	return nil
}

// EndRow closes the current row; see rowReceiver.
func (in *Inferrer) EndRow() error {
	if in.b != nil {
		return in.b.EndRow()
	}
	start := 0
	if n := len(in.ends); n > 0 {
		start = in.ends[n-1]
	}
	if len(in.fields)-start < len(in.rawKeys) {
		in.sparse = true
	}
	in.ends = append(in.ends, len(in.fields))
	n := len(in.ends)
	if n >= in.maxRows || !in.sparse && len(in.rawKeys) > 0 && in.ready == len(in.rawKeys) {
		return in.decide()
	}
	return nil
}

// Finish decides the schema if the result ended within the sample, then
// emits the last partial batch.
func (in *Inferrer) Finish() error {
	if in.b == nil {
		if len(in.ends) == 0 {
			return ErrNoRowsToInfer
		}
		if err := in.decide(); err != nil {
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

func (in *Inferrer) decide() error {
	cols, notes, err := in.infer()
	if err != nil {
		return err
	}
	if in.onSchema != nil {
		if err := in.onSchema(cols, notes); err != nil {
			return err
		}
	}
	in.b = NewBuilder(in.mem, cols, mapping.UnmappedError, in.batchRows, in.emit)
	start := 0
	for _, end := range in.ends {
		for _, f := range in.fields[start:end] {
			if err := in.b.Field(in.rawKeys[f.key], in.arena[f.off:f.end]); err != nil {
				return err
			}
		}
		if err := in.b.EndRow(); err != nil {
			return err
		}
		start = end
	}
	in.arena, in.fields, in.ends = nil, nil, nil
	return nil
}

// infer derives the columns from the keys and values sampled so far, with
// notes on the choices the user should review.
func (in *Inferrer) infer() ([]mapping.Column, []string, error) {
	keys := make([]string, len(in.rawKeys))
	for i, rk := range in.rawKeys {
		k, err := jsontext.AppendUnquote(nil, rk)
		if err != nil {
			return nil, nil, fmt.Errorf("row key %s: %w", displayValue(rk), err)
		}
		keys[i] = string(k)
	}
	names, notes := mapping.TargetNames(keys)
	cols := make([]mapping.Column, len(keys))
	for i, k := range keys {
		t, note := in.stats[i].infer(len(in.ends))
		cols[i] = mapping.Column{From: k, To: names[i], Type: t}
		if note != "" {
			notes = append(notes, fmt.Sprintf("key %s: %s", k, note))
		}
	}
	return cols, notes, nil
}

func (st *valueStats) observe(raw []byte) {
	st.nonNull++
	switch {
	case raw[0] == 't' || raw[0] == 'f':
		st.bools++
	case raw[0] == '"':
		if _, ok := nonFinite(raw); ok {
			st.nonFinite++
			return
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
		if hasFrac {
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

// infer picks the narrowest type that holds every sampled value.
func (st *valueStats) infer(rows int) (mapping.Type, string) {
	numbers := st.ints + st.bigInts + st.fracs + st.exps + st.nonFinite
	strs := st.dates + st.dateTimes + st.otherStrs
	switch {
	case st.nonNull == 0:
		return mapping.Type{Kind: mapping.String}, fmt.Sprintf("null in all %d sampled rows, inferred as string: declare its type in mapping.columns", rows)
	case numbers == st.nonNull:
		switch {
		case st.exps > 0 || st.nonFinite > 0 || st.fracs > 0 && (st.maxFrac > 4 || st.maxIntDigits > 15):
			return mapping.Type{Kind: mapping.Float64}, ""
		case st.fracs > 0:
			return mapping.Type{Kind: mapping.Decimal, Precision: 19, Scale: 4}, ""
		case st.bigInts > 0 && st.maxIntDigits <= mapping.MaxDecimalPrecision:
			return mapping.Type{Kind: mapping.Decimal, Precision: mapping.MaxDecimalPrecision, Scale: 0}, ""
		case st.bigInts > 0:
			return mapping.Type{Kind: mapping.Float64}, ""
		}
		return mapping.Type{Kind: mapping.Int64}, ""
	case st.bools == st.nonNull:
		return mapping.Type{Kind: mapping.Bool}, ""
	case strs == st.nonNull && st.dates == st.nonNull:
		return mapping.Type{Kind: mapping.Date}, ""
	case strs == st.nonNull && st.otherStrs == 0:
		return mapping.Type{Kind: mapping.Timestamp}, ""
	case strs+st.nonFinite == st.nonNull:
		// "NaN" among other text is text.
		return mapping.Type{Kind: mapping.String}, ""
	case strs != st.nonNull:
		return mapping.Type{Kind: mapping.String}, "mixes numbers, booleans and strings: inferred as string"
	}
	return mapping.Type{Kind: mapping.String}, ""
}
