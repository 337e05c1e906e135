package sink

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/jackc/pgx/v5/pgtype"
)

// The COPY path. pgx's CopyFrom asks a CopyFromSource for one []any per row
// and encodes each value with the plan its type map chooses for the column's
// type. pgCopySource hands out the same []any for every row, holding one
// column cursor per column (or nil for a null); a cursor is a pointer, so
// putting it in an interface does not allocate. pgCodec, registered on the
// sink's own connection for the column types pbicopy writes, gives cursors a
// plan that appends the PostgreSQL binary format straight from the Arrow
// buffers: no boxing, no time.Time, no big.Int.

// pgValue is a column cursor: it encodes the current row's value of one
// column in PostgreSQL's binary format.
type pgValue interface {
	// appendPG appends the value (never null: nulls are nil in the row).
	appendPG(buf []byte) ([]byte, error)
	// acceptsOID reports whether appendPG writes the binary format of oid.
	acceptsOID(oid uint32) bool
}

// pgCursor is what the cursors of every type share.
type pgCursor struct {
	src *pgCopySource
	col int
}

// valueError records an error about the current value, naming the row and
// the column, and returns it.
func (c *pgCursor) valueError(format string, args ...any) error {
	s := c.src
	s.err = fmt.Errorf("row %d, column %q: %s", s.base+int64(s.row)+1, s.fields[c.col].name, fmt.Sprintf(format, args...))
	return s.err
}

type pgColumnCursor interface {
	pgValue
	set(a arrow.Array)
}

type pgInt64Cursor struct {
	pgCursor
	v []int64
}

func (c *pgInt64Cursor) set(a arrow.Array)          { c.v = a.(*array.Int64).Int64Values() }
func (c *pgInt64Cursor) acceptsOID(oid uint32) bool { return oid == pgtype.Int8OID }
func (c *pgInt64Cursor) appendPG(buf []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint64(buf, uint64(c.v[c.src.row])), nil
}

type pgFloat64Cursor struct {
	pgCursor
	v []float64
}

func (c *pgFloat64Cursor) set(a arrow.Array)          { c.v = a.(*array.Float64).Float64Values() }
func (c *pgFloat64Cursor) acceptsOID(oid uint32) bool { return oid == pgtype.Float8OID }
func (c *pgFloat64Cursor) appendPG(buf []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint64(buf, math.Float64bits(c.v[c.src.row])), nil
}

type pgBoolCursor struct {
	pgCursor
	a *array.Boolean
}

func (c *pgBoolCursor) set(a arrow.Array)          { c.a = a.(*array.Boolean) }
func (c *pgBoolCursor) acceptsOID(oid uint32) bool { return oid == pgtype.BoolOID }
func (c *pgBoolCursor) appendPG(buf []byte) ([]byte, error) {
	if c.a.Value(c.src.row) {
		return append(buf, 1), nil
	}
	return append(buf, 0), nil
}

// PostgreSQL counts dates and timestamps from 2000-01-01, Arrow from 1970.
const (
	pgEpochDays   = 10957
	pgEpochMicros = pgEpochDays * 86400 * 1000000
)

type pgDateCursor struct {
	pgCursor
	v []arrow.Date32
}

func (c *pgDateCursor) set(a arrow.Array)          { c.v = a.(*array.Date32).Date32Values() }
func (c *pgDateCursor) acceptsOID(oid uint32) bool { return oid == pgtype.DateOID }
func (c *pgDateCursor) appendPG(buf []byte) ([]byte, error) {
	d := int64(c.v[c.src.row]) - pgEpochDays
	// The extremes of int32 mean ±infinity to PostgreSQL, and the server
	// checks the rest of the range.
	if d <= math.MinInt32 {
		return nil, c.valueError("date %d days after 1970-01-01 is out of PostgreSQL's range", c.v[c.src.row])
	}
	return binary.BigEndian.AppendUint32(buf, uint32(int32(d))), nil
}

type pgTimestampCursor struct {
	pgCursor
	v []arrow.Timestamp
}

func (c *pgTimestampCursor) set(a arrow.Array)          { c.v = a.(*array.Timestamp).TimestampValues() }
func (c *pgTimestampCursor) acceptsOID(oid uint32) bool { return oid == pgtype.TimestampOID }
func (c *pgTimestampCursor) appendPG(buf []byte) ([]byte, error) {
	us := int64(c.v[c.src.row])
	if us < math.MinInt64+pgEpochMicros+1 {
		return nil, c.valueError("timestamp %d µs after 1970-01-01 is out of PostgreSQL's range", us)
	}
	return binary.BigEndian.AppendUint64(buf, uint64(us-pgEpochMicros)), nil
}

type pgStringCursor struct {
	pgCursor
	a        stringColumn
	stripNul bool // the sink strips NULs
	hasNul   bool // and the current batch may hold one in this column
}

func (c *pgStringCursor) set(a arrow.Array) {
	c.a = stringsOf(a)
	c.hasNul = c.stripNul && c.a.mayHoldByte(0)
}

func (c *pgStringCursor) acceptsOID(oid uint32) bool {
	return oid == pgtype.TextOID || oid == pgtype.VarcharOID
}

func (c *pgStringCursor) appendPG(buf []byte) ([]byte, error) {
	s := c.a.Value(c.src.row)
	if c.hasNul && strings.IndexByte(s, 0) >= 0 {
		for i := 0; i < len(s); i++ {
			if s[i] != 0 {
				buf = append(buf, s[i])
			}
		}
		return buf, nil
	}
	return append(buf, s...), nil
}

type pgNumericCursor struct {
	pgCursor
	v     []decimal128.Num
	scale int32
}

func (c *pgNumericCursor) set(a arrow.Array)          { c.v = a.(*array.Decimal128).Values() }
func (c *pgNumericCursor) acceptsOID(oid uint32) bool { return oid == pgtype.NumericOID }
func (c *pgNumericCursor) appendPG(buf []byte) ([]byte, error) {
	return pgAppendNumeric(buf, c.v[c.src.row], c.scale), nil
}

// pgAppendNumeric appends the binary format of the numeric n×10^-scale:
// ndigits, weight, sign and display scale as int16s, then ndigits base-10000
// digits, most significant first, the weight being the power of 10000 of
// the first. Digit groups are aligned on the decimal point; trailing zero
// groups are left out, as PostgreSQL itself does.
func pgAppendNumeric(buf []byte, n decimal128.Num, scale int32) []byte {
	hi, lo := uint64(n.HighBits()), n.LowBits()
	var sign uint16
	if n.HighBits() < 0 {
		sign = 0x4000
		lo = ^lo + 1
		hi = ^hi
		if lo == 0 {
			hi++
		}
	}
	if hi == 0 && lo == 0 {
		buf = binary.BigEndian.AppendUint32(buf, 0) // ndigits 0, weight 0
		buf = binary.BigEndian.AppendUint16(buf, 0)
		return binary.BigEndian.AppendUint16(buf, uint16(scale))
	}

	// groups[0] is the least significant digit group. |n| < 2^127 has at
	// most 39 decimal digits, 42 once aligned: 11 groups.
	var groups [12]uint16
	ng := 0
	if r := scale % 4; r != 0 {
		// The lowest group holds the last r fractional digits, shifted
		// left to fill four places.
		var rem uint64
		hi, lo, rem = pgDiv128(hi, lo, pgPow10[r])
		groups[0] = uint16(rem * pgPow10[4-r])
		ng = 1
	}
	for hi != 0 {
		var rem uint64
		hi, lo, rem = pgDiv128(hi, lo, 10000)
		groups[ng] = uint16(rem)
		ng++
	}
	for lo != 0 {
		groups[ng] = uint16(lo % 10000)
		lo /= 10000
		ng++
	}
	low := 0
	for groups[low] == 0 {
		low++
	}
	weight := ng - 1 - int((scale+3)/4)
	buf = binary.BigEndian.AppendUint16(buf, uint16(ng-low))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, uint16(scale))
	for i := ng - 1; i >= low; i-- {
		buf = binary.BigEndian.AppendUint16(buf, groups[i])
	}
	return buf
}

var pgPow10 = [...]uint64{1, 10, 100, 1000, 10000}

// pgDiv128 divides the unsigned 128-bit hi:lo by d.
func pgDiv128(hi, lo, d uint64) (qhi, qlo, rem uint64) {
	if hi == 0 {
		return 0, lo / d, lo % d
	}
	qhi, rem = hi/d, hi%d
	qlo, rem = bits.Div64(rem, lo, d)
	return qhi, qlo, rem
}

// pgCopySource is the CopyFromSource of a load: it walks the batches that
// arrive on a channel, releasing each once the COPY has encoded it. Only
// pgx's COPY goroutine uses it, until CopyFrom returns.
type pgCopySource struct {
	ctx     context.Context
	batches <-chan arrow.RecordBatch
	fields  []pgField

	cur  arrow.RecordBatch
	n    int   // rows in cur
	row  int   // current row of cur
	base int64 // rows in the batches before cur

	cursors []any         // the cursors, as interface values made once
	nulls   []arrow.Array // per column: the array if it has nulls in cur
	values  []any         // the row handed to pgx
	err     error
}

func newPGCopySource(ctx context.Context, batches <-chan arrow.RecordBatch, fields []pgField, stripNul bool) *pgCopySource {
	s := &pgCopySource{
		ctx:     ctx,
		batches: batches,
		fields:  fields,
		cursors: make([]any, len(fields)),
		nulls:   make([]arrow.Array, len(fields)),
		values:  make([]any, len(fields)),
		row:     -1,
	}
	for i, f := range fields {
		base := pgCursor{src: s, col: i}
		var c pgColumnCursor
		switch f.kind {
		case pgText:
			c = &pgStringCursor{pgCursor: base, stripNul: stripNul}
		case pgBigint:
			c = &pgInt64Cursor{pgCursor: base}
		case pgDouble:
			c = &pgFloat64Cursor{pgCursor: base}
		case pgNumeric:
			c = &pgNumericCursor{pgCursor: base, scale: f.scale}
		case pgBoolean:
			c = &pgBoolCursor{pgCursor: base}
		case pgDate:
			c = &pgDateCursor{pgCursor: base}
		case pgTimestamp:
			c = &pgTimestampCursor{pgCursor: base}
		}
		s.cursors[i] = c
	}
	return s
}

// Next moves to the next row, waiting for the next batch when the current
// one is done. It returns false at the end of the stream (the channel is
// closed) or when the load is cancelled.
func (s *pgCopySource) Next() bool {
	s.row++
	for s.row >= s.n {
		if !s.nextBatch() {
			return false
		}
	}
	return true
}

func (s *pgCopySource) nextBatch() bool {
	if s.cur != nil {
		s.base += int64(s.n)
		s.cur.Release()
		s.cur = nil
	}
	s.n, s.row = 0, 0
	select {
	case rec, ok := <-s.batches:
		if !ok {
			return false
		}
		s.cur, s.n = rec, int(rec.NumRows())
		for i, c := range s.cursors {
			a := rec.Column(i)
			c.(pgColumnCursor).set(a)
			s.nulls[i] = nil
			if a.NullN() > 0 {
				s.nulls[i] = a
			}
		}
		return true
	case <-s.ctx.Done():
		s.err = context.Cause(s.ctx)
		return false
	}
}

// Values returns the current row: the column cursors, nil for nulls.
func (s *pgCopySource) Values() ([]any, error) {
	for i, c := range s.cursors {
		if a := s.nulls[i]; a != nil && a.IsNull(s.row) {
			s.values[i] = nil
		} else {
			s.values[i] = c
		}
	}
	return s.values, nil
}

// Err returns the error that stopped the source, if any.
func (s *pgCopySource) Err() error { return s.err }

// release drops the batch being read, once CopyFrom has returned.
func (s *pgCopySource) release() {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
}

// pgCodec wraps a pgx codec: cursors get a plan that calls appendPG, every
// other value the wrapped codec's plan.
type pgCodec struct{ pgtype.Codec }

func (c pgCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if v, ok := value.(pgValue); ok && format == pgtype.BinaryFormatCode && v.acceptsOID(oid) {
		return pgValuePlan{}
	}
	return c.Codec.PlanEncode(m, oid, format, value)
}

type pgValuePlan struct{}

func (pgValuePlan) Encode(value any, buf []byte) ([]byte, error) {
	return value.(pgValue).appendPG(buf)
}

// pgRegisterCodecs installs pgCodec for the column types the cursors write,
// on one connection's type map.
func pgRegisterCodecs(m *pgtype.Map) {
	for _, oid := range []uint32{pgtype.TextOID, pgtype.VarcharOID, pgtype.Int8OID, pgtype.Float8OID,
		pgtype.NumericOID, pgtype.BoolOID, pgtype.DateOID, pgtype.TimestampOID} {
		if t, ok := m.TypeForOID(oid); ok {
			m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: pgCodec{t.Codec}})
		}
	}
}
