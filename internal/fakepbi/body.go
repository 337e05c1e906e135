package fakepbi

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// The service's limits on one executeQueries result.
const (
	// DefaultMaxRows is the most rows a result holds.
	DefaultMaxRows = 100_000
	// DefaultMaxValues is the most values (rows times columns) a result
	// holds.
	DefaultMaxValues = 1_000_000
	// DefaultMaxBytes is the size of row data after which the service stops
	// adding rows ("15 MB", taken as MiB).
	DefaultMaxBytes = 15 << 20
)

// TruncationCode is the code of the error the fake adds when a result
// exceeds the row or value limit. The real code is not documented; clients
// must treat any error in any of the three slots as a failure.
const TruncationCode = "DatasetExecuteQueriesError"

const bom = "\xEF\xBB\xBF"

// flushAt is the buffer size after which the body writer hands what it has
// to the underlying writer (and flushes an HTTP response).
const flushAt = 32 << 10

// limits are the effective truncation limits of a response.
type limits struct {
	maxRows, maxValues int
	maxBytes           int64
	slot               string
	label              *Label // Options.SensitivityLabel
}

func (o *Options) limits() limits {
	l := limits{maxRows: o.MaxRows, maxValues: o.MaxValues, maxBytes: o.MaxBytes, slot: o.TruncationSlot, label: o.SensitivityLabel}
	switch {
	case l.maxRows == 0:
		l.maxRows = DefaultMaxRows
	case l.maxRows < 0:
		l.maxRows = math.MaxInt
	}
	switch {
	case l.maxValues == 0:
		l.maxValues = DefaultMaxValues
	case l.maxValues < 0:
		l.maxValues = math.MaxInt
	}
	switch {
	case l.maxBytes == 0:
		l.maxBytes = DefaultMaxBytes
	case l.maxBytes < 0:
		l.maxBytes = math.MaxInt64
	}
	if l.slot == "" {
		l.slot = SlotTable
	}
	return l
}

// WriteResponse writes to w exactly the body the server sends for query
// against tables, with the serializer setting includeNulls and the BOM and
// truncation settings of opts (other options are ignored). It is meant for
// benchmarks and fixtures that need no HTTP.
//
// When the query fails (an unknown name, a syntax error, a type mismatch),
// WriteResponse writes the HTTP 400 body the server sends and returns the
// *QueryError. It also returns an error when a Table's Value returns a value
// of the wrong type (the body is then incomplete) or when writing to w
// fails.
func WriteResponse(w io.Writer, tables []*Table, query string, includeNulls bool, opts Options) error {
	if err := validateTables(tables); err != nil {
		return fmt.Errorf("fakepbi: %w", err)
	}
	if err := validateSlot(opts.TruncationSlot); err != nil {
		return err
	}
	rel, err := plan(tables, query)
	if err != nil {
		var qe *QueryError
		if !errors.As(err, &qe) {
			return err
		}
		b := daxErrorBody(qe.Error())
		if opts.BOM {
			b = append([]byte(bom), b...)
		}
		if _, werr := w.Write(b); werr != nil {
			return werr
		}
		return err
	}
	return writeBody(w, nil, rel, includeNulls, opts.BOM, opts.limits())
}

// recoverValueError, deferred by a writer of rows, turns the panic of a
// table value of the wrong type (a valueError) into the writer's error;
// any other panic goes on.
func recoverValueError(err *error) {
	if r := recover(); r != nil {
		ve, ok := r.(valueError)
		if !ok {
			panic(r)
		}
		*err = ve
	}
}

// writeBody streams the 200 body for rel: rows are generated, encoded into
// one reused buffer and handed to w every flushAt bytes, then flush (if not
// nil) is called. Nothing else is held in memory.
func writeBody(w io.Writer, flush func(), rel *relation, includeNulls, withBOM bool, lim limits) (err error) {
	defer recoverValueError(&err)
	t := rel.base
	ncols := len(rel.cols)
	keys := make([][]byte, ncols)
	types := make([]ColumnType, ncols)
	bases := make([]int, ncols)
	for i, c := range rel.cols {
		keys[i] = append(appendJSONString(nil, c.key()), ':')
		types[i] = t.Columns[c.base].Type
		bases[i] = c.base
	}

	rowLimit, limitMsg := lim.maxRows, fmt.Sprintf("More than %d rows in a query result", lim.maxRows)
	if byValues := lim.maxValues / max(ncols, 1); byValues < rowLimit {
		rowLimit, limitMsg = byValues, fmt.Sprintf("More than %d values in a query result", lim.maxValues)
	}

	buf := make([]byte, 0, flushAt+flushAt/2)
	if withBOM {
		buf = append(buf, bom...)
	}
	buf = append(buf, '{')
	if l := lim.label; l != nil {
		buf = append(buf, `"informationProtectionLabel":{"id":`...)
		buf = appendJSONString(buf, l.ID)
		buf = append(buf, `,"name":`...)
		buf = appendJSONString(buf, l.Name)
		buf = append(buf, "},"...)
	}
	buf = append(buf, `"results":[{"tables":[{"rows":[`...)
	emit := func() error {
		if _, err := w.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
		if flush != nil {
			flush()
		}
		return nil
	}

	it := rel.src.open()
	var rowBytes int64
	truncated := ""
	for count := 0; ; count++ {
		row, ok := it.next()
		if !ok {
			break
		}
		if count == rowLimit {
			truncated = limitMsg
			break
		}
		start := len(buf)
		if count > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '{')
		first := true
		for c := range ncols {
			v := t.Value(row, bases[c])
			if v == nil && !includeNulls {
				continue
			}
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = append(buf, keys[c]...)
			if v == nil {
				buf = append(buf, "null"...)
				continue
			}
			var ok bool
			if buf, ok = appendValue(buf, types[c], v); !ok {
				panic(badCell(t, row, bases[c], v))
			}
		}
		buf = append(buf, '}')
		rowBytes += int64(len(buf) - start)
		if len(buf) >= flushAt {
			if err := emit(); err != nil {
				return err
			}
		}
		if rowBytes >= lim.maxBytes {
			// The documented 15 MB behaviour: the current row is completed
			// and no more rows are written, with no error.
			break
		}
	}
	buf = append(buf, ']')
	errSlot := func(slot string) {
		if truncated != "" && lim.slot == slot {
			buf = append(buf, `,"error":{"code":"`+TruncationCode+`","message":`...)
			buf = appendJSONString(buf, truncated)
			buf = append(buf, '}')
		}
	}
	errSlot(SlotTable)
	buf = append(buf, "}]"...)
	errSlot(SlotResult)
	buf = append(buf, "}]"...)
	errSlot(SlotTop)
	buf = append(buf, '}')
	return emit()
}

// badCell explains why v cannot be written for column col.
func badCell(t *Table, row, col int, v any) valueError {
	switch x := v.(type) {
	case float64:
		if t.Columns[col].Type == Double {
			return valueError{fmt.Errorf("fakepbi: table %s row %d column %s: %v cannot be written as JSON", t.Name, row, t.Columns[col].Name, x)}
		}
	case Decimal:
		if t.Columns[col].Type == Currency {
			return valueError{fmt.Errorf("fakepbi: table %s row %d column %s: %q is not a decimal with at most 4 fractional digits", t.Name, row, t.Columns[col].Name, x)}
		}
	case time.Time:
		if t.Columns[col].Type == DateTime {
			return valueError{fmt.Errorf("fakepbi: table %s row %d column %s: %v is outside years 1 to 9999", t.Name, row, t.Columns[col].Name, x)}
		}
	}
	return badValue(t, row, col, v)
}

// appendValue appends the JSON form of v, a non-nil value of a column of
// type typ, and reports false if v is not a valid value of that type.
func appendValue(dst []byte, typ ColumnType, v any) ([]byte, bool) {
	switch typ {
	case Int64:
		if x, ok := v.(int64); ok {
			return strconv.AppendInt(dst, x, 10), true
		}
	case Double:
		if x, ok := v.(float64); ok && !math.IsNaN(x) && !math.IsInf(x, 0) {
			return strconv.AppendFloat(dst, x, 'g', -1, 64), true
		}
	case Currency:
		if x, ok := v.(Decimal); ok {
			return appendDecimal(dst, string(x))
		}
	case String:
		if x, ok := v.(string); ok {
			return appendJSONString(dst, x), true
		}
	case Bool:
		if x, ok := v.(bool); ok {
			return strconv.AppendBool(dst, x), true
		}
	case DateTime:
		if x, ok := v.(time.Time); ok {
			return appendDateTime(dst, x)
		}
	case Variant:
		if vt, ok := variantType(v); ok {
			return appendValue(dst, vt, v)
		}
	}
	return dst, false
}

// appendDecimal appends a decimal literal as a JSON number without leading
// zeros, trailing fractional zeros or a negative zero: "12.5000" -> 12.5,
// "-3.0000" -> -3, "0.0001" -> 0.0001.
func appendDecimal(dst []byte, s string) ([]byte, bool) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	if intPart == "" || len(frac) > 4 || !allDigits(intPart) || !allDigits(frac) {
		return dst, false
	}
	for len(intPart) > 1 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	for frac != "" && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if neg && (intPart != "0" || frac != "") {
		dst = append(dst, '-')
	}
	dst = append(dst, intPart...)
	if frac != "" {
		dst = append(dst, '.')
		dst = append(dst, frac...)
	}
	return dst, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appendDateTime appends the wall clock of t as the service writes
// DateTime values: "2024-02-29T00:00:00", with a fraction of at most 7
// digits (.NET ticks; finer digits are dropped) and without trailing zeros.
func appendDateTime(dst []byte, t time.Time) ([]byte, bool) {
	y, mo, d := t.Date()
	if y < 1 || y > 9999 {
		return dst, false
	}
	h, mi, s := t.Clock()
	dst = append(dst, '"')
	dst = append4(dst, y)
	dst = append(dst, '-')
	dst = append2(dst, int(mo))
	dst = append(dst, '-')
	dst = append2(dst, d)
	dst = append(dst, 'T')
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, mi)
	dst = append(dst, ':')
	dst = append2(dst, s)
	if ticks := t.Nanosecond() / 100; ticks > 0 {
		var f [8]byte
		f[0] = '.'
		for i := 7; i >= 1; i-- {
			f[i] = byte('0' + ticks%10)
			ticks /= 10
		}
		n := 8
		for f[n-1] == '0' {
			n--
		}
		dst = append(dst, f[:n]...)
	}
	return append(dst, '"'), true
}

func append2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10))
}

func append4(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quote, backslash and control
// characters escaped (\n, \r, \t, \b, \f or \u00XX), everything else kept as
// UTF-8; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
