package powerbi

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pbicopy/pbicopy/mapping"
)

// EmitFunc receives each full batch. It takes over the caller's reference:
// it must Release rec (or hand it on to someone who does).
type EmitFunc func(rec arrow.RecordBatch) error

// Builder turns decoded rows into typed Arrow record batches. It implements
// rowReceiver: rows go in field by field, batches of BatchRows rows
// come out through the emit function, and Flush emits the last partial batch.
//
// A key absent from a row is null. A key given twice in one row, an unmapped
// key (with mapping.UnmappedError) and a value that does not fit its column's type
// fail with the row number, the column and the value. After such an error
// Field, EndRow and Flush return it again and emit nothing: the row in
// progress is incomplete. Release the builder.
type Builder struct {
	cols      []mapping.Column
	index     map[string]int // key (unquoted, as in mapping.Column.From) -> column
	unmapped  mapping.Unmapped
	batchRows int
	emit      EmitFunc

	rb      *array.RecordBuilder
	appends []func([]byte) error

	seen   []uint64 // row stamp per column: set in this row when seen[i] == row
	filled int      // columns set in the current row
	row    uint64   // 1-based number of the row being built
	inRow  int      // rows in the current batch

	scratch []byte
	keyBuf  []byte
	err     error // the first error from Field, returned by every later call
}

// NewBuilder returns a Builder for cols. batchRows <= 0 means mapping.DefaultBatchRows.
func NewBuilder(mem memory.Allocator, cols []mapping.Column, unmapped mapping.Unmapped, batchRows int, emit EmitFunc) *Builder {
	if batchRows <= 0 {
		batchRows = mapping.DefaultBatchRows
	}
	b := &Builder{
		cols:      cols,
		index:     make(map[string]int, len(cols)),
		unmapped:  unmapped,
		batchRows: batchRows,
		emit:      emit,
		rb:        array.NewRecordBuilder(mem, mapping.Schema(cols)),
		seen:      make([]uint64, len(cols)),
		row:       1,
	}
	b.rb.Reserve(batchRows)
	b.appends = make([]func([]byte) error, len(cols))
	for i, c := range cols {
		b.index[c.From] = i
		b.appends[i] = b.appender(i, c.Type)
	}
	return b
}

// Schema is the Arrow schema of the batches b emits.
func (b *Builder) Schema() *arrow.Schema { return b.rb.Schema() }

// Rows is the number of complete rows received so far.
func (b *Builder) Rows() int64 { return int64(b.row - 1) }

// Field receives one key and its raw JSON value; see rowReceiver.
func (b *Builder) Field(key, value []byte) error {
	if b.err != nil {
		return b.err
	}
	i, ok := b.lookup(key)
	if !ok {
		if b.unmapped == mapping.UnmappedIgnore {
			return nil
		}
		return b.fail(permanentError{fmt.Errorf("row %d: key %s is not mapped to any column: add it to mapping.columns, or set mapping.unmapped: ignore", b.row, displayValue(key))})
	}
	if b.seen[i] == b.row {
		return b.fail(fmt.Errorf("row %d: key %s appears twice in the row", b.row, displayValue(key)))
	}
	b.seen[i] = b.row
	b.filled++
	var err error
	switch {
	case len(value) == 0:
		err = errNoValue
	case value[0] == 'n': // null
		b.rb.Field(i).AppendNull()
		return nil
	default:
		err = b.appends[i](value)
	}
	if err != nil {
		c := b.cols[i]
		return b.fail(&ValueError{Row: int64(b.row), Column: c.To, From: c.From, Type: c.Type, Value: displayValue(value), Reason: err.Error()})
	}
	return nil
}

// lookup finds the column of a raw JSON key. A key without escapes is looked
// up by the bytes between its quotes; one with escapes (a serializer may write
// \u00e9 for é) is unescaped into a reused buffer first, without allocating.
func (b *Builder) lookup(key []byte) (int, bool) {
	if len(key) < 2 || key[0] != '"' || key[len(key)-1] != '"' {
		return 0, false
	}
	if bytes.IndexByte(key, '\\') < 0 {
		i, ok := b.index[string(key[1:len(key)-1])]
		return i, ok
	}
	k, err := jsontext.AppendUnquote(b.keyBuf[:0], key)
	if err != nil {
		return 0, false
	}
	b.keyBuf = k
	i, ok := b.index[string(k)]
	return i, ok
}

// fail records err: the row in progress is incomplete (its columns may differ
// in length), so the builder must not close it or emit it.
func (b *Builder) fail(err error) error {
	b.err = err
	return err
}

// EndRow closes the current row; see rowReceiver.
func (b *Builder) EndRow() error {
	if b.err != nil {
		return b.err
	}
	if b.filled != len(b.cols) {
		for i, s := range b.seen {
			if s != b.row {
				b.rb.Field(i).AppendNull()
			}
		}
	}
	b.filled = 0
	b.row++
	b.inRow++
	if b.inRow >= b.batchRows {
		return b.flush()
	}
	return nil
}

// Flush emits the rows received since the last batch, if any.
func (b *Builder) Flush() error {
	if b.err != nil {
		return b.err
	}
	if b.inRow == 0 {
		return nil
	}
	return b.flush()
}

func (b *Builder) flush() error {
	rec := b.rb.NewRecordBatch()
	b.inRow = 0
	b.rb.Reserve(b.batchRows)
	return b.emit(rec)
}

// Release frees the builder's buffers. Batches already emitted are not
// affected.
func (b *Builder) Release() { b.rb.Release() }

// permanentError is an error of the job that every partition would meet
// (source.Permanent).
type permanentError struct{ error }

func (e permanentError) Unwrap() error   { return e.error }
func (e permanentError) Permanent() bool { return true }

// ValueError reports a value that does not fit its column.
type ValueError struct {
	Row    int64 // 1-based row number in the result
	Column string
	From   string
	Type   mapping.Type
	Value  string // the raw JSON value, shortened for display
	Reason string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("row %d, column %s (%s, from %s): value %s %s", e.Row, e.Column, e.Type, e.From, e.Value, e.Reason)
}

func displayValue(raw []byte) string {
	const max = 80
	if len(raw) <= max {
		return string(raw)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(raw[cut]) {
		cut--
	}
	return string(raw[:cut]) + "…(" + strconv.Itoa(len(raw)) + " bytes)"
}

func kindMismatch(raw []byte, want string) error {
	return fmt.Errorf("is %s, not %s", jsonKind(raw), want)
}

// appender returns the function that appends one non-null raw value to
// column i.
func (b *Builder) appender(i int, t mapping.Type) func([]byte) error {
	fb := b.rb.Field(i)
	switch t.Kind {
	case mapping.String:
		sb := fb.(*array.StringBuilder)
		return func(raw []byte) error {
			switch {
			case raw[0] == '"':
				s, scratch, err := stringContent(raw, b.scratch)
				b.scratch = scratch
				if err != nil {
					return err
				}
				sb.BinaryBuilder.Append(s)
			case raw[0] == '{' || raw[0] == '[':
				return kindMismatch(raw, "a string")
			default: // numbers keep their literal text; booleans become true/false
				sb.BinaryBuilder.Append(raw)
			}
			return nil
		}
	case mapping.Int64:
		ib := fb.(*array.Int64Builder)
		return func(raw []byte) error {
			if !isNumber(raw) {
				return kindMismatch(raw, "a number")
			}
			v, err := parseInt64(raw)
			if err != nil {
				return err
			}
			ib.Append(v)
			return nil
		}
	case mapping.Float64:
		f := fb.(*array.Float64Builder)
		return func(raw []byte) error {
			if !isNumber(raw) {
				if v, ok := nonFinite(raw); ok {
					f.Append(v)
					return nil
				}
				return kindMismatch(raw, "a number")
			}
			v, err := parseFloat64(raw)
			if err != nil {
				return err
			}
			f.Append(v)
			return nil
		}
	case mapping.Decimal:
		db := fb.(*array.Decimal128Builder)
		return func(raw []byte) error {
			if !isNumber(raw) {
				return kindMismatch(raw, "a number")
			}
			v, err := parseDecimal(raw, t.Precision, t.Scale)
			if err != nil {
				return err
			}
			db.Append(v)
			return nil
		}
	case mapping.Bool:
		bb := fb.(*array.BooleanBuilder)
		return func(raw []byte) error {
			v, err := parseBool(raw)
			if err != nil {
				return kindMismatch(raw, "true or false")
			}
			bb.Append(v)
			return nil
		}
	case mapping.Date:
		db := fb.(*array.Date32Builder)
		return func(raw []byte) error {
			c, err := b.civilValue(raw, "a date string")
			if err != nil {
				return err
			}
			if !c.midnight {
				return fmt.Errorf("has a time of day other than midnight: declare the column as timestamp")
			}
			db.Append(arrow.Date32(c.days))
			return nil
		}
	case mapping.Timestamp:
		tb := fb.(*array.TimestampBuilder)
		return func(raw []byte) error {
			c, err := b.civilValue(raw, "a date-time string")
			if err != nil {
				return err
			}
			tb.Append(arrow.Timestamp(int64(c.days)*86_400_000_000 + c.micros))
			return nil
		}
	}
	panic("mapping: appender for invalid type " + t.String())
}

// civilValue parses a raw JSON string holding an ISO date or date-time.
func (b *Builder) civilValue(raw []byte, want string) (civil, error) {
	if raw[0] != '"' {
		return civil{}, kindMismatch(raw, want)
	}
	s, scratch, err := stringContent(raw, b.scratch)
	b.scratch = scratch
	if err != nil {
		return civil{}, err
	}
	return parseCivil(s)
}
