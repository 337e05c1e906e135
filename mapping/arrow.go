package mapping

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// This file maps typed Arrow columns (the executeDaxQueries API's) to column
// types: the type a column keeps when no mapping names one (NaturalType),
// and the casts a mapping may ask for (NewCast).

// NaturalType is the column type an Arrow column of type t is written as
// when the mapping gives none: int64 for every integer, float64 for every
// floating-point type, decimal(P,S) for decimal128, bool, date for date32,
// timestamp for date64 (Power BI's DateTime: a date and a time) and every
// timestamp, string for strings and dictionary-encoded strings. Other types
// (binary, unions such as Power BI's Variant, nested types) have none: the
// error says which mapping line to write.
func NaturalType(t arrow.DataType) (Type, error) {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return Type{Kind: Int64}, nil
	case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return Type{Kind: Float64}, nil
	case arrow.DECIMAL128:
		d := t.(*arrow.Decimal128Type)
		return Type{Kind: Decimal, Precision: d.Precision, Scale: d.Scale}, nil
	case arrow.BOOL:
		return Type{Kind: Bool}, nil
	case arrow.DATE32:
		return Type{Kind: Date}, nil
	case arrow.DATE64, arrow.TIMESTAMP:
		return Type{Kind: Timestamp}, nil
	case arrow.STRING, arrow.LARGE_STRING:
		return Type{Kind: String}, nil
	case arrow.DICTIONARY:
		if isStringType(t.(*arrow.DictionaryType).ValueType) {
			return Type{Kind: String}, nil
		}
	case arrow.DENSE_UNION, arrow.SPARSE_UNION:
		return Type{}, fmt.Errorf("is a Variant (values of mixed types, Arrow %s): map it with type: string to write its values as text", t)
	case arrow.BINARY, arrow.LARGE_BINARY:
		return Type{}, fmt.Errorf("is binary (Arrow %s): map it with type: string to write it as base64 text", t)
	}
	return Type{}, fmt.Errorf("has the Arrow type %s, which no column type holds", t)
}

func isStringType(t arrow.DataType) bool {
	return t.ID() == arrow.STRING || t.ID() == arrow.LARGE_STRING
}

// IsStringArrow reports whether t is the Arrow type of a column of type
// string in a batch: utf8, or dictionary<signed integer, utf8>, the
// executeDaxQueries API's dictionary-encoded strings, which the Arrow
// source hands on as they come (every sink writes them as it writes utf8;
// the Parquet sink keeps the dictionary).
func IsStringArrow(t arrow.DataType) bool {
	switch t := t.(type) {
	case *arrow.StringType:
		return true
	case *arrow.DictionaryType:
		return arrow.IsSignedInteger(t.IndexType.ID()) && t.ValueType.ID() == arrow.STRING
	}
	return false
}

// Cast converts one Arrow array to the Arrow type of a column type (Type's
// ArrowType). It returns a new reference, which the caller releases. A value
// that does not fit fails with a *CastError.
type Cast func(mem memory.Allocator, arr arrow.Array) (arrow.Array, error)

// CastError is a value a Cast could not convert.
type CastError struct {
	Index  int    // 0-based index of the value in the array
	Value  string // the value, as text
	Reason string // why it does not fit, e.g. "is not a whole number"
}

func (e *CastError) Error() string {
	return fmt.Sprintf("value %s %s", e.Value, e.Reason)
}

// Identity reports whether arrays of type from go to a column of type to as
// they are, with no per-value work: from is to's Arrow type, or a string
// type of a batch (IsStringArrow) for a string column. A batch's column
// then has the type from (see ArrowType).
func Identity(from arrow.DataType, to Type) bool {
	return arrow.TypeEqual(from, to.ArrowType()) || to.Kind == String && IsStringArrow(from)
}

// ArrowType is the Arrow type of a column of type to in the batches cast
// from arrays of type from: from itself where it goes as it is (Identity),
// else to's.
func ArrowType(from arrow.DataType, to Type) arrow.DataType {
	if Identity(from, to) {
		return from
	}
	return to.ArrowType()
}

// NewCast returns the cast of Arrow arrays of type from to column type to,
// or an error when no value of from could ever go there (a string to an
// int64, a Variant to anything but a string). Casts that may lose
// information check every value: 2.5 to int64 fails, 2.0 goes; a date-time
// with a time of day to date fails, midnight goes (keeping its calendar
// day).
func NewCast(from arrow.DataType, to Type) (Cast, error) {
	if Identity(from, to) {
		return func(_ memory.Allocator, arr arrow.Array) (arrow.Array, error) {
			arr.Retain()
			return arr, nil
		}, nil
	}
	if to.Kind == String {
		if _, ok := textOf(from); !ok {
			return nil, fmt.Errorf("cannot be written as text (Arrow %s)", from)
		}
		return castToString, nil
	}
	if d, ok := from.(*arrow.DictionaryType); ok {
		inner, err := NewCast(d.ValueType, to)
		if err != nil {
			return nil, err
		}
		return func(mem memory.Allocator, arr arrow.Array) (arrow.Array, error) {
			dec, err := DecodeDictionary(mem, arr.(*array.Dictionary))
			if err != nil {
				return nil, err
			}
			defer dec.Release()
			return inner(mem, dec)
		}, nil
	}
	get, kind := numberReader(from)
	switch {
	case to.Kind == Int64 && kind == numInt:
		return intCast(get, func(v int64) (int64, string) { return v, "" }), nil
	case to.Kind == Int64 && kind == numUint64:
		return intCast(get, func(v int64) (int64, string) {
			if v < 0 { // a uint64 above MaxInt64, read as int64
				return 0, "is out of the range of int64"
			}
			return v, ""
		}), nil
	case to.Kind == Int64 && kind == numFloat:
		return floatToInt(get), nil
	case to.Kind == Int64 && kind == numDecimal:
		scale := from.(*arrow.Decimal128Type).Scale
		return decimalToInt(scale), nil
	case to.Kind == Float64 && (kind == numInt || kind == numUint64 || kind == numFloat):
		return floatCast(get), nil
	case to.Kind == Float64 && kind == numDecimal:
		scale := from.(*arrow.Decimal128Type).Scale
		return func(mem memory.Allocator, arr arrow.Array) (arrow.Array, error) {
			a := arr.(*array.Decimal128)
			b := array.NewFloat64Builder(mem)
			defer b.Release()
			b.Reserve(a.Len())
			for i := range a.Len() {
				if a.IsNull(i) {
					b.AppendNull()
					continue
				}
				b.UnsafeAppend(decimalFloat(a.Value(i), scale))
			}
			return b.NewArray(), nil
		}, nil
	case to.Kind == Decimal && kind != numNone:
		return toDecimal(from, kind, get, to), nil
	case to.Kind == Timestamp || to.Kind == Date:
		if micros, ok := microsReader(from); ok {
			return timeCast(micros, to), nil
		}
	}
	return nil, fmt.Errorf("cannot be cast from Arrow %s to %s", from, to)
}

type numKind int

const (
	numNone numKind = iota
	numInt
	numUint64
	numFloat
	numDecimal
)

// numberReader returns a reader of the integer values of arrays of type t
// (int64 bits for integers, math.Float64bits for floats) and their kind.
func numberReader(t arrow.DataType) (func(arr arrow.Array, i int) int64, numKind) {
	switch t.ID() {
	case arrow.INT8:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Int8).Value(i)) }, numInt
	case arrow.INT16:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Int16).Value(i)) }, numInt
	case arrow.INT32:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Int32).Value(i)) }, numInt
	case arrow.INT64:
		return func(a arrow.Array, i int) int64 { return a.(*array.Int64).Value(i) }, numInt
	case arrow.UINT8:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Uint8).Value(i)) }, numInt
	case arrow.UINT16:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Uint16).Value(i)) }, numInt
	case arrow.UINT32:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Uint32).Value(i)) }, numInt
	case arrow.UINT64:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Uint64).Value(i)) }, numUint64
	case arrow.FLOAT32:
		return func(a arrow.Array, i int) int64 {
			return int64(math.Float64bits(float64(a.(*array.Float32).Value(i))))
		}, numFloat
	case arrow.FLOAT64:
		return func(a arrow.Array, i int) int64 { return int64(math.Float64bits(a.(*array.Float64).Value(i))) }, numFloat
	case arrow.DECIMAL128:
		return nil, numDecimal
	}
	return nil, numNone
}

func asFloat(bits int64) float64 { return math.Float64frombits(uint64(bits)) }

func intCast(get func(arrow.Array, int) int64, check func(int64) (int64, string)) Cast {
	return func(mem memory.Allocator, arr arrow.Array) (arrow.Array, error) {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.Reserve(arr.Len())
		for i := range arr.Len() {
			if arr.IsNull(i) {
				b.AppendNull()
				continue
			}
			v, why := check(get(arr, i))
			if why != "" {
				return nil, castError(arr, i, why)
			}
			b.UnsafeAppend(v)
		}
		return b.NewArray(), nil
	}
}

func floatToInt(get func(arrow.Array, int) int64) Cast {
	return intCast(get, func(bits int64) (int64, string) {
		f := asFloat(bits)
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			return 0, "is not a number int64 holds"
		case f != math.Trunc(f):
			return 0, "is not a whole number, so int64 would lose its fraction: map the column as float64 or decimal(P,S)"
		case f < -9.223372036854775808e18 || f >= 9.223372036854775808e18:
			return 0, "is out of the range of int64"
		}
		return int64(f), ""
	})
}

func floatCast(get func(arrow.Array, int) int64) Cast {
	return func(mem memory.Allocator, arr arrow.Array) (arrow.Array, error) {
		_, kind := numberReader(arr.DataType())
		b := array.NewFloat64Builder(mem)
		defer b.Release()
		b.Reserve(arr.Len())
		for i := range arr.Len() {
			if arr.IsNull(i) {
				b.AppendNull()
				continue
			}
			v := get(arr, i)
			switch kind {
			case numFloat:
				b.UnsafeAppend(asFloat(v))
			case numUint64:
				b.UnsafeAppend(float64(uint64(v)))
			default:
				b.UnsafeAppend(float64(v))
			}
		}
		return b.NewArray(), nil
	}
}

// decimalFloat is the float64 nearest to n at scale: 12.3456 gives the
// same float64 as the literal 12.3456 (decimal128's ToFloat64 can be one
// unit off).
func decimalFloat(n decimal128.Num, scale int32) float64 {
	const exact = 1 << 53
	if scale >= 0 && scale <= 22 {
		if v := int64(n.LowBits()); (n.HighBits() == 0 && n.LowBits() <= exact) || (n.HighBits() == -1 && v < 0 && v >= -exact) {
			// Both operands are exact, so the quotient is correctly rounded.
			return float64(v) / math.Pow10(int(scale))
		}
	}
	f, _ := strconv.ParseFloat(n.ToString(scale), 64)
	return f
}

func decimalToInt(scale int32) Cast {
	return func(mem memory.Allocator, arr arrow.Array) (arrow.Array, error) {
		a := arr.(*array.Decimal128)
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.Reserve(a.Len())
		for i := range a.Len() {
			if a.IsNull(i) {
				b.AppendNull()
				continue
			}
			n, err := a.Value(i).Rescale(scale, 0)
			if err != nil {
				return nil, castError(arr, i, "is not a whole number, so int64 would lose its fraction")
			}
			if fits := n.HighBits() == 0 && n.LowBits() <= math.MaxInt64 || n.HighBits() == -1 && n.LowBits() >= 1<<63; !fits {
				return nil, castError(arr, i, "is out of the range of int64")
			}
			b.UnsafeAppend(int64(n.LowBits()))
		}
		return b.NewArray(), nil
	}
}

func toDecimal(from arrow.DataType, kind numKind, get func(arrow.Array, int) int64, to Type) Cast {
	return func(mem memory.Allocator, arr arrow.Array) (arrow.Array, error) {
		b := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: to.Precision, Scale: to.Scale})
		defer b.Release()
		b.Reserve(arr.Len())
		for i := range arr.Len() {
			if arr.IsNull(i) {
				b.AppendNull()
				continue
			}
			var n decimal128.Num
			var err error
			switch kind {
			case numInt:
				n, err = decimal128.FromI64(get(arr, i)).Rescale(0, to.Scale)
			case numUint64:
				n, err = decimal128.FromU64(uint64(get(arr, i))).Rescale(0, to.Scale)
			case numFloat:
				f := asFloat(get(arr, i))
				if math.IsNaN(f) || math.IsInf(f, 0) {
					return nil, castError(arr, i, "is not a number a decimal holds")
				}
				text := strconv.FormatFloat(f, 'f', -1, 64)
				if _, frac, ok := strings.Cut(text, "."); ok && len(frac) > int(to.Scale) {
					return nil, castError(arr, i, fmt.Sprintf("has more than %d decimals, so %s would change it: map the column as float64 or with a larger scale", to.Scale, to))
				}
				n, err = decimal128.FromString(text, MaxDecimalPrecision, to.Scale)
			case numDecimal:
				n, err = arr.(*array.Decimal128).Value(i).Rescale(from.(*arrow.Decimal128Type).Scale, to.Scale)
				if err != nil {
					return nil, castError(arr, i, fmt.Sprintf("has more than %d decimals, so %s would change it", to.Scale, to))
				}
			}
			if err != nil || !n.FitsInPrecision(to.Precision) {
				return nil, castError(arr, i, fmt.Sprintf("has more than %d digits, too many for %s", to.Precision, to))
			}
			b.UnsafeAppend(n)
		}
		return b.NewArray(), nil
	}
}

// microsReader returns a reader of the wall-clock microseconds since the
// epoch of arrays of a date or time type (sub-microsecond digits
// truncated, never rounded).
func microsReader(t arrow.DataType) (func(arr arrow.Array, i int) int64, bool) {
	switch t.ID() {
	case arrow.DATE32:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Date32).Value(i)) * 86_400_000_000 }, true
	case arrow.DATE64:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Date64).Value(i)) * 1000 }, true
	case arrow.TIMESTAMP:
		switch t.(*arrow.TimestampType).Unit {
		case arrow.Second:
			return func(a arrow.Array, i int) int64 { return int64(a.(*array.Timestamp).Value(i)) * 1_000_000 }, true
		case arrow.Millisecond:
			return func(a arrow.Array, i int) int64 { return int64(a.(*array.Timestamp).Value(i)) * 1000 }, true
		case arrow.Microsecond:
			return func(a arrow.Array, i int) int64 { return int64(a.(*array.Timestamp).Value(i)) }, true
		case arrow.Nanosecond:
			return func(a arrow.Array, i int) int64 { return floorDiv(int64(a.(*array.Timestamp).Value(i)), 1000) }, true
		}
	}
	return nil, false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func timeCast(micros func(arrow.Array, int) int64, to Type) Cast {
	const dayMicros = 86_400_000_000
	if to.Kind == Timestamp {
		return func(mem memory.Allocator, arr arrow.Array) (arrow.Array, error) {
			b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond})
			defer b.Release()
			b.Reserve(arr.Len())
			for i := range arr.Len() {
				if arr.IsNull(i) {
					b.AppendNull()
					continue
				}
				b.UnsafeAppend(arrow.Timestamp(micros(arr, i)))
			}
			return b.NewArray(), nil
		}
	}
	return func(mem memory.Allocator, arr arrow.Array) (arrow.Array, error) {
		b := array.NewDate32Builder(mem)
		defer b.Release()
		b.Reserve(arr.Len())
		for i := range arr.Len() {
			if arr.IsNull(i) {
				b.AppendNull()
				continue
			}
			us := micros(arr, i)
			day := floorDiv(us, dayMicros)
			if us != day*dayMicros {
				return nil, castError(arr, i, "has a time of day, which date would drop: map the column as timestamp")
			}
			b.UnsafeAppend(arrow.Date32(day))
		}
		return b.NewArray(), nil
	}
}

// DecodeDictionary returns the values of a dictionary-encoded string array,
// decoded.
func DecodeDictionary(mem memory.Allocator, d *array.Dictionary) (arrow.Array, error) {
	dict := d.Dictionary()
	var value func(i int) string
	switch v := dict.(type) {
	case *array.String:
		value = v.Value
	case *array.LargeString:
		value = v.Value
	default:
		return nil, fmt.Errorf("mapping: cannot decode a dictionary of %s", dict.DataType())
	}
	// One pass to size the data, then the three buffers written directly:
	// a builder would zero what it reserves and check each append.
	n, total := d.Len(), 0
	for i := range n {
		if d.IsValid(i) {
			total += len(value(d.GetValueIndex(i)))
		}
	}
	if total > math.MaxInt32 {
		return nil, fmt.Errorf("mapping: %d bytes of text in one batch, more than a string column holds", total)
	}
	offsets := memory.NewResizableBuffer(mem)
	defer offsets.Release()
	offsets.Resize(arrow.Int32Traits.BytesRequired(n + 1))
	data := memory.NewResizableBuffer(mem)
	defer data.Release()
	data.Resize(total)
	var validity *memory.Buffer
	if d.NullN() > 0 {
		validity = memory.NewResizableBuffer(mem)
		defer validity.Release()
		validity.Resize(int(bitutil.BytesForBits(int64(n))))
		bitutil.CopyBitmap(d.NullBitmapBytes(), d.Data().Offset(), n, validity.Bytes(), 0)
	}
	off, buf, pos := arrow.Int32Traits.CastFromBytes(offsets.Bytes()), data.Bytes(), 0
	for i := range n {
		off[i] = int32(pos)
		if d.IsValid(i) {
			pos += copy(buf[pos:], value(d.GetValueIndex(i)))
		}
	}
	off[n] = int32(pos)
	ad := array.NewData(arrow.BinaryTypes.String, n, []*memory.Buffer{validity, offsets, data}, nil, d.NullN(), 0)
	defer ad.Release()
	return array.NewStringData(ad), nil
}

// castToString renders every value as text.
func castToString(mem memory.Allocator, arr arrow.Array) (arrow.Array, error) {
	if d, ok := arr.(*array.Dictionary); ok && isStringType(d.Dictionary().DataType()) {
		return DecodeDictionary(mem, d)
	}
	text, _ := textOf(arr.DataType())
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Reserve(arr.Len())
	for i := range arr.Len() {
		s, ok := text(arr, i)
		if !ok {
			b.AppendNull()
			continue
		}
		b.Append(s)
	}
	return b.NewArray(), nil
}

// textOf returns the function that renders value i of an array of type t
// as text (false for a null), as the CSV output writes values: integers in
// decimal, floats in their shortest round-trip form, decimals at their
// scale, dates as 2024-02-29, date-times as 2024-03-31T23:59:59.997,
// booleans as true/false, binary as base64. A union renders the value of
// its child.
func textOf(t arrow.DataType) (func(arr arrow.Array, i int) (string, bool), bool) {
	if get, kind := numberReader(t); kind == numInt || kind == numUint64 || kind == numFloat {
		return orNull(func(a arrow.Array, i int) string {
			v := get(a, i)
			switch kind {
			case numFloat:
				return strconv.FormatFloat(asFloat(v), 'g', -1, 64)
			case numUint64:
				return strconv.FormatUint(uint64(v), 10)
			}
			return strconv.FormatInt(v, 10)
		}), true
	}
	if micros, ok := microsReader(t); ok {
		layout := "2006-01-02T15:04:05.999999"
		if t.ID() == arrow.DATE32 {
			layout = "2006-01-02"
		}
		return orNull(func(a arrow.Array, i int) string { return time.UnixMicro(micros(a, i)).UTC().Format(layout) }), true
	}
	switch t.ID() {
	case arrow.DECIMAL128:
		scale := t.(*arrow.Decimal128Type).Scale
		return orNull(func(a arrow.Array, i int) string { return a.(*array.Decimal128).Value(i).ToString(scale) }), true
	case arrow.BOOL:
		return orNull(func(a arrow.Array, i int) string { return strconv.FormatBool(a.(*array.Boolean).Value(i)) }), true
	case arrow.STRING, arrow.LARGE_STRING:
		return orNull(arrow.Array.ValueStr), true
	case arrow.BINARY, arrow.LARGE_BINARY:
		return orNull(func(a arrow.Array, i int) string {
			b := a.(array.BinaryLike)
			return base64.StdEncoding.EncodeToString(b.ValueBytes()[b.ValueOffset64(i):b.ValueOffset64(i+1)])
		}), true
	case arrow.DICTIONARY:
		inner, ok := textOf(t.(*arrow.DictionaryType).ValueType)
		if !ok {
			return nil, false
		}
		return func(a arrow.Array, i int) (string, bool) {
			d := a.(*array.Dictionary)
			if d.IsNull(i) {
				return "", false
			}
			return inner(d.Dictionary(), d.GetValueIndex(i))
		}, true
	case arrow.DENSE_UNION, arrow.SPARSE_UNION:
		ut := t.(arrow.UnionType)
		children := make([]func(arrow.Array, int) (string, bool), len(ut.Fields()))
		for c, f := range ut.Fields() {
			fn, ok := textOf(f.Type)
			if !ok && f.Type.ID() != arrow.NULL {
				return nil, false
			}
			children[c] = fn
		}
		return func(a arrow.Array, i int) (string, bool) {
			u := a.(array.Union)
			c := u.ChildID(i)
			fn := children[c]
			if fn == nil {
				return "", false
			}
			off := i
			if du, ok := a.(*array.DenseUnion); ok {
				off = int(du.ValueOffset(i))
			}
			return fn(u.Field(c), off)
		}, true
	}
	return nil, false
}

// orNull is the renderer of textOf that gives render's text for a value
// and false for a null.
func orNull(render func(a arrow.Array, i int) string) func(arrow.Array, int) (string, bool) {
	return func(a arrow.Array, i int) (string, bool) {
		if a.IsNull(i) {
			return "", false
		}
		return render(a, i), true
	}
}

func castError(arr arrow.Array, i int, why string) *CastError {
	v := "?"
	if text, ok := textOf(arr.DataType()); ok {
		if s, ok := text(arr, i); ok {
			v = s
		}
	}
	return &CastError{Index: i, Value: v, Reason: why}
}
