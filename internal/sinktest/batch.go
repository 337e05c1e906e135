package sinktest

import (
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DateLayout is the normalised form of a date (a time.Format layout).
const DateLayout = "2006-01-02"

// TimestampLayout is the normalised form of a wall-clock timestamp (a
// time.Format layout): no zone, fraction without trailing zeros.
const TimestampLayout = "2006-01-02T15:04:05.999999"

// Field returns a nullable field; with it a schema reads as a list of
// columns: arrow.NewSchema([]arrow.Field{Field("id", arrow.PrimitiveTypes.Int64)}, nil).
func Field(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

// Decimal returns the decimal128(precision, scale) type.
func Decimal(precision, scale int32) arrow.DataType {
	return &arrow.Decimal128Type{Precision: precision, Scale: scale}
}

// Timestamp is the wall-clock timestamp type of pbicopy's batches:
// timestamp[us] without a zone.
var Timestamp arrow.DataType = &arrow.TimestampType{Unit: arrow.Microsecond}

// NewBatch builds a record batch of schema from rows in the normalised form
// (see the package comment), a string column of dictionary<signed integer,
// utf8> type included; it also accepts int for int64, and time.Time
// for dates and timestamps (its wall clock, whatever its location). The
// caller releases the batch.
func NewBatch(mem memory.Allocator, schema *arrow.Schema, rows [][]any) (arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for r, row := range rows {
		if len(row) != schema.NumFields() {
			return nil, fmt.Errorf("row %d: %d values for %d columns", r, len(row), schema.NumFields())
		}
		for c, v := range row {
			if err := appendValue(b.Field(c), v); err != nil {
				return nil, fmt.Errorf("row %d, column %q: %w", r, schema.Field(c).Name, err)
			}
		}
	}
	return b.NewRecordBatch(), nil
}

// MustBatch is NewBatch failing tb on error.
func MustBatch(tb testing.TB, mem memory.Allocator, schema *arrow.Schema, rows [][]any) arrow.RecordBatch {
	tb.Helper()
	rec, err := NewBatch(mem, schema, rows)
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}

func appendValue(b array.Builder, v any) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	bad := func() error { return fmt.Errorf("value %v (%T) does not fit %s", v, v, b.Type()) }
	switch b := b.(type) {
	case *array.StringBuilder:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		b.Append(s)
	case *array.BinaryDictionaryBuilder: // dictionary<int, utf8>: the Arrow source's strings
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		return b.AppendString(s)
	case *array.Int64Builder:
		switch n := v.(type) {
		case int64:
			b.Append(n)
		case int:
			b.Append(int64(n))
		default:
			return bad()
		}
	case *array.Float64Builder:
		f, ok := v.(float64)
		if !ok {
			return bad()
		}
		b.Append(f)
	case *array.BooleanBuilder:
		x, ok := v.(bool)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Decimal128Builder:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		t := b.Type().(*arrow.Decimal128Type)
		n, err := ParseDecimal(s, t.Precision, t.Scale)
		if err != nil {
			return err
		}
		b.Append(n)
	case *array.Date32Builder:
		t, err := toTime(v, DateLayout)
		if err != nil {
			return err
		}
		if t.Hour() != 0 || t.Minute() != 0 || t.Second() != 0 || t.Nanosecond() != 0 {
			return fmt.Errorf("date %v is not at midnight", v)
		}
		b.Append(arrow.Date32FromTime(t))
	case *array.TimestampBuilder:
		t, err := toTime(v, TimestampLayout)
		if err != nil {
			return err
		}
		b.Append(arrow.Timestamp(t.UnixMicro()))
	default:
		return fmt.Errorf("unsupported type %s", b.Type())
	}
	return nil
}

// toTime takes a time.Time's wall clock, or parses s with layout.
func toTime(v any, layout string) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		y, mo, d := t.Date()
		h, mi, s := t.Clock()
		return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC), nil
	case string:
		return time.Parse(layout, t)
	}
	return time.Time{}, fmt.Errorf("value %v (%T) is neither a time.Time nor a string", v, v)
}

// ParseDecimal parses a decimal written with at most scale fraction digits
// ("-12.34" for scale 4 is -12.3400) into the unscaled decimal128 value.
func ParseDecimal(s string, precision, scale int32) (decimal128.Num, error) {
	digits := strings.TrimPrefix(s, "-")
	ip, fp, _ := strings.Cut(digits, ".")
	if len(fp) > int(scale) {
		return decimal128.Num{}, fmt.Errorf("decimal %q has more than %d fraction digits", s, scale)
	}
	txt := ip + fp + strings.Repeat("0", int(scale)-len(fp))
	n, ok := new(big.Int).SetString(txt, 10)
	if !ok || ip == "" {
		return decimal128.Num{}, fmt.Errorf("bad decimal %q", s)
	}
	if strings.HasPrefix(s, "-") {
		n.Neg(n)
	}
	if len(strings.TrimLeft(txt, "0")) > int(precision) {
		return decimal128.Num{}, fmt.Errorf("decimal %q has more than %d digits", s, precision)
	}
	return decimal128.FromBigInt(n), nil
}

// DecimalString is the normalised form of an unscaled decimal value: its
// digits with the point placed scale digits from the right, zero padded
// (12.3400, -0.0001, 0.0000).
func DecimalString(unscaled *big.Int, scale int32) string {
	neg := unscaled.Sign() < 0
	digits := new(big.Int).Abs(unscaled).String()
	if scale > 0 {
		if len(digits) <= int(scale) {
			digits = strings.Repeat("0", int(scale)-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-int(scale)] + "." + digits[len(digits)-int(scale):]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// DateString is the normalised form of days since 1970-01-01.
func DateString(days int64) string {
	return time.Unix(days*86400, 0).UTC().Format(DateLayout)
}

// TimestampString is the normalised form of microseconds since
// 1970-01-01T00:00:00 on a wall clock.
func TimestampString(us int64) string {
	return time.UnixMicro(us).UTC().Format(TimestampLayout)
}
