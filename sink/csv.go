package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/pbicopy/pbicopy/mapping"
)

// csvFlushBytes is how much encoded text the CSV sink gathers before handing
// it to the destination.
const csvFlushBytes = 256 << 10

// csvSink encodes batches as CSV text written to a Destination.
type csvSink struct {
	dst      Destination
	schema   *arrow.Schema
	eol      string
	cols     []csvColumn
	buf      []byte // encoded text not yet written to dst
	written  int64  // bytes written to dst
	rows     int64
	err      error // sticky failure: Commit returns it
	finished bool  // committed or aborted
}

var _ Sink = (*csvSink)(nil)

// csvKind is the text form of a column.
type csvKind uint8

const (
	csvString csvKind = iota
	csvInt64
	csvFloat64
	csvBool
	csvDecimal
	csvDate
	csvTimestamp
)

// csvColumn is one column of the batch being encoded, with typed access to
// its values so that the row loop needs no interface call per value.
type csvColumn struct {
	kind  csvKind
	scale int32 // decimal only

	valid  []byte // validity bitmap, nil when the column has no null
	offset int    // of the array in valid

	str stringColumn
	bl  *array.Boolean
	i64 []int64
	f64 []float64
	dec []decimal128.Num
	d32 []arrow.Date32
	ts  []arrow.Timestamp
}

// NewCSV returns a Sink that encodes batches of schema as CSV text written
// to dst. On success the sink owns dst: its Commit and Abort commit and
// abort dst. On error the caller still owns dst and must Abort it.
//
// The schema's fields must be of the Arrow types pbicopy's batches use
// (utf8, int64, float64, decimal128, bool, date32, timestamp[us] without a
// zone). The text is UTF-8 without a byte order mark; records end with LF
// (or CRLF, per opts); the first record holds the field names unless
// opts.Header is false; fields are separated by commas and quoted only when
// they contain a quote, a comma, CR or LF (RFC 4180, quotes doubled). A null
// is an empty unquoted field, an empty string is "". Values are written as
// 2024-03-31T23:59:59.997 (timestamps: no zone, no trailing zeros in the
// fraction), 2024-02-29 (dates), 12.3400 (decimals, at their declared
// scale), true and false, and floats in their shortest round-trip form (see
// appendFloat: 0.1, 1234567.89, -0, 1e+21, 1e-7, NaN, Infinity). An empty
// result is a file holding the header only (or nothing without a header).
//
// A one-column file writes a null as an empty line, which is how RFC 4180
// spells it, but which some readers (Go's encoding/csv among them) skip.
func NewCSV(dst Destination, schema *arrow.Schema, opts CSVOptions) (Sink, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("csv options: %w", err)
	}
	if err := checkSchema(schema); err != nil {
		return nil, err
	}
	s := &csvSink{dst: dst, schema: schema, eol: opts.eol(), cols: make([]csvColumn, schema.NumFields())}
	for i, f := range schema.Fields() {
		c := &s.cols[i]
		if mapping.IsStringArrow(f.Type) {
			c.kind = csvString
			continue
		}
		switch t := f.Type.(type) {
		case *arrow.Int64Type:
			c.kind = csvInt64
		case *arrow.Float64Type:
			c.kind = csvFloat64
		case *arrow.BooleanType:
			c.kind = csvBool
		case *arrow.Decimal128Type:
			c.kind, c.scale = csvDecimal, t.Scale
		case *arrow.Date32Type:
			c.kind = csvDate
		case *arrow.TimestampType:
			c.kind = csvTimestamp
		}
	}
	s.buf = make([]byte, 0, csvFlushBytes+64<<10)
	if opts.header() {
		for i, f := range schema.Fields() {
			if i > 0 {
				s.buf = append(s.buf, ',')
			}
			s.buf = appendCSVString(s.buf, f.Name)
		}
		s.buf = append(s.buf, s.eol...)
	}
	return s, nil
}

// Write encodes rec row by row. It does not keep rec.
func (s *csvSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := checkWrite(ctx, s.finished, s.err, rec, s.schema); err != nil {
		if s.err == nil {
			s.err = err // sticky, like every failure of Write
		}
		return err
	}
	s.bind(rec)
	defer s.unbind()
	n := int(rec.NumRows())
	buf := s.buf
	for r := 0; r < n; r++ {
		for j := range s.cols {
			if j > 0 {
				buf = append(buf, ',')
			}
			c := &s.cols[j]
			if c.valid != nil && !bitutil.BitIsSet(c.valid, c.offset+r) {
				continue
			}
			switch c.kind {
			case csvString:
				buf = appendCSVString(buf, c.str.Value(r))
			case csvInt64:
				buf = strconv.AppendInt(buf, c.i64[r], 10)
			case csvFloat64:
				buf = appendFloat(buf, c.f64[r])
			case csvBool:
				if c.bl.Value(r) {
					buf = append(buf, "true"...)
				} else {
					buf = append(buf, "false"...)
				}
			case csvDecimal:
				v := c.dec[r]
				buf = appendDecimal(buf, v.HighBits(), v.LowBits(), c.scale)
			case csvDate:
				buf = appendDate(buf, int64(c.d32[r]))
			case csvTimestamp:
				buf = appendTimestamp(buf, int64(c.ts[r]))
			}
		}
		buf = append(buf, s.eol...)
		if len(buf) >= csvFlushBytes {
			if _, err := s.dst.Write(buf); err != nil {
				s.buf = buf[:0]
				s.err = fmt.Errorf("write csv: %w", err)
				return s.err
			}
			s.written += int64(len(buf))
			buf = buf[:0]
		}
	}
	s.buf = buf
	s.rows += int64(n)
	return nil
}

// bind points the columns at rec's arrays.
func (s *csvSink) bind(rec arrow.RecordBatch) {
	for j := range s.cols {
		c := &s.cols[j]
		a := rec.Column(j)
		c.valid, c.offset = nil, a.Data().Offset()
		if a.NullN() > 0 {
			c.valid = a.NullBitmapBytes()
		}
		switch c.kind {
		case csvString:
			c.str = stringsOf(a)
		case csvInt64:
			c.i64 = a.(*array.Int64).Int64Values()
		case csvFloat64:
			c.f64 = a.(*array.Float64).Float64Values()
		case csvBool:
			c.bl = a.(*array.Boolean)
		case csvDecimal:
			c.dec = a.(*array.Decimal128).Values()
		case csvDate:
			c.d32 = a.(*array.Date32).Date32Values()
		case csvTimestamp:
			c.ts = a.(*array.Timestamp).TimestampValues()
		}
	}
}

// unbind drops the references to the caller's arrays.
func (s *csvSink) unbind() {
	for j := range s.cols {
		s.cols[j] = csvColumn{kind: s.cols[j].kind, scale: s.cols[j].scale}
	}
}

// Commit writes the remaining text and commits dst.
func (s *csvSink) Commit(ctx context.Context) (Result, error) {
	if err := s.err; err != nil {
		return Result{}, errors.Join(err, s.Abort(ctx))
	}
	if s.finished {
		return Result{}, errors.New("commit: sink already committed or aborted")
	}
	if err := ctx.Err(); err != nil {
		return Result{}, errors.Join(err, s.Abort(ctx))
	}
	if len(s.buf) > 0 {
		if _, err := s.dst.Write(s.buf); err != nil {
			s.err = fmt.Errorf("write csv: %w", err)
			return Result{}, errors.Join(s.err, s.Abort(ctx))
		}
	}
	s.written += int64(len(s.buf))
	s.finished = true
	s.buf = nil
	f, err := s.dst.Commit(ctx, s.rows)
	if err != nil {
		return Result{}, err
	}
	return Result{Kind: "csv", Location: f.Location, Rows: f.Rows, Bytes: f.Bytes, Files: []File{f}}, nil
}

// encodedBytes is the size of the text so far, written or buffered.
func (s *csvSink) encodedBytes() int64 { return s.written + int64(len(s.buf)) }

// Abort discards the text and aborts dst.
func (s *csvSink) Abort(ctx context.Context) error {
	if s.finished {
		return nil
	}
	s.finished = true
	s.buf = nil
	return s.dst.Abort(ctx)
}
