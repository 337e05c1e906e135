package powerbi

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pbicopy/pbicopy/mapping"
)

// The converters in this file take one raw JSON value (a string with its
// quotes, a number literal, true or false; never null, which the builder
// handles) and return the typed value or an error that says why the value
// does not fit. They never allocate on the success path for well-formed input.

var (
	errNotString = errors.New("expected a JSON string")
	errNotNumber = errors.New("expected a JSON number")
	errNotBool   = errors.New("expected true or false")
	errNoValue   = errors.New("is empty: expected a JSON value")
)

// jsonKind names the kind of a raw JSON value for error messages.
func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNumber(raw []byte) bool {
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

// stringContent returns the text of a raw JSON string, unescaping into
// scratch when the literal holds escapes. The result aliases raw or scratch.
func stringContent(raw, scratch []byte) ([]byte, []byte, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, scratch, errNotString
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, scratch, nil
	}
	out, err := jsontext.AppendUnquote(scratch[:0], raw)
	if err != nil {
		return nil, scratch, err
	}
	return out, out, nil
}

var (
	errNotInteger = errors.New("is not an integer")
	errInt64Range = errors.New("is out of the int64 range")
)

// parseInt64 parses an integer literal exactly. A literal with a fraction of
// zeros ("12.0") is accepted, and one with an exponent when its value is a
// whole number ("1E+15", as serialisers write large doubles); any other
// fraction is not.
func parseInt64(raw []byte) (int64, error) {
	if !isNumber(raw) {
		return 0, errNotNumber
	}
	neg := raw[0] == '-'
	digits := raw
	if neg {
		digits = raw[1:]
	}
	if i := bytes.IndexAny(digits, ".eE"); i >= 0 {
		if bytes.IndexAny(digits[i:], "eE") >= 0 {
			return parseInt64Exp(neg, digits)
		}
		if len(bytes.TrimRight(digits[i+1:], "0")) > 0 {
			return 0, errNotInteger
		}
		digits = digits[:i]
	}
	if len(digits) == 0 {
		return 0, errNotNumber
	}
	var u uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, errNotNumber
		}
		d := uint64(c - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, errInt64Range
		}
		u = u*10 + d
	}
	return signedInt64(neg, u)
}

// signedInt64 is u with its sign, if it fits an int64.
func signedInt64(neg bool, u uint64) (int64, error) {
	if neg {
		if u > 1<<63 {
			return 0, errInt64Range
		}
		return int64(-u), nil //nolint:gosec // checked above; -(1<<63) wraps to MinInt64
	}
	if u > math.MaxInt64 {
		return 0, errInt64Range
	}
	return int64(u), nil
}

// parseInt64Exp parses the digits (after the sign) of a number literal with
// an exponent as an int64: its value must be whole and fit. It never goes
// through float64: 9007199254740993E0 stays exact.
func parseInt64Exp(neg bool, digits []byte) (int64, error) {
	e := bytes.IndexAny(digits, "eE")
	mant, expText := digits[:e], digits[e+1:]
	exp, err := strconv.Atoi(string(expText))
	if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range: exp is clamped
		return 0, errNotNumber
	}
	intPart, frac := mant, []byte(nil)
	if i := bytes.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	if len(intPart) == 0 {
		return 0, errNotNumber
	}
	all := [2][]byte{intPart, frac}
	n := len(intPart) + len(frac)
	for k := range n {
		if c := digitAt(all, k); c < '0' || c > '9' {
			return 0, errNotNumber
		}
	}
	// The value is digits * 10^shift. Skip the leading zeros; beyond these
	// bounds the outcome no longer depends on the exponent, and clamping
	// keeps the arithmetic below from overflowing.
	first := 0
	for first < n && digitAt(all, first) == '0' {
		first++
	}
	if first == n {
		return 0, nil // zero, whatever the exponent
	}
	shift := min(max(exp, -2*n-1), 2*n+20) - len(frac)
	keep := n
	if shift < 0 {
		keep = n + shift // digits after the point must be zeros
		for k := max(keep, first); k < n; k++ {
			if digitAt(all, k) != '0' {
				return 0, errNotInteger
			}
		}
		shift = 0
	}
	if keep-first+shift > 19 {
		return 0, errInt64Range
	}
	var u uint64
	for k := first; k < keep; k++ {
		u = u*10 + uint64(digitAt(all, k)-'0')
	}
	for range shift {
		if u > math.MaxUint64/10 {
			return 0, errInt64Range
		}
		u *= 10
	}
	return signedInt64(neg, u)
}

// nonFinite reads the strings a JSON serialiser writes for the values JSON
// numbers cannot hold, which DAX returns for x/0 and 0/0: "Infinity",
// "-Infinity" and "NaN" (as .NET's serialisers write them). The bare tokens
// some serialisers write instead (Infinity, NaN) are not JSON: the decoder
// refuses the response, as telling them from text without tracking every
// string of the body would slow it down.
func nonFinite(raw []byte) (float64, bool) {
	switch string(raw) {
	case `"NaN"`:
		return math.NaN(), true
	case `"Infinity"`:
		return math.Inf(1), true
	case `"-Infinity"`:
		return math.Inf(-1), true
	}
	return 0, false
}

// parseFloat64 parses a number literal as the nearest float64.
func parseFloat64(raw []byte) (float64, error) {
	if !isNumber(raw) {
		return 0, errNotNumber
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return 0, errors.New("is out of the float64 range")
		}
		return 0, errNotNumber
	}
	return f, nil
}

var pow10u64 = func() [20]uint64 {
	var p [20]uint64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// parseDecimal parses a number literal exactly into an unscaled decimal128 at
// the given scale. Digits beyond the scale must be zeros and the value must
// fit the precision: nothing is rounded silently.
func parseDecimal(raw []byte, precision, scale int32) (decimal128.Num, error) {
	if !isNumber(raw) {
		return decimal128.Num{}, errNotNumber
	}
	neg := raw[0] == '-'
	s := raw
	if neg {
		s = s[1:]
	}
	exp := 0
	if i := bytes.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(string(s[i+1:]))
		if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range: e is clamped
			return decimal128.Num{}, errNotNumber
		}
		exp = e
		s = s[:i]
	}
	intPart, frac := s, []byte(nil)
	if i := bytes.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i+1:]
	}
	if len(intPart) == 0 {
		return decimal128.Num{}, errNotNumber
	}
	n := len(intPart) + len(frac)
	// Beyond these bounds the outcome no longer depends on the exponent: a
	// non-zero value has more than 38 digits before the point, or needs more
	// trailing zeros than it has digits; zero stays zero. Clamping bounds the
	// work below and keeps shift from overflowing.
	exp = min(max(exp, -(n+mapping.MaxDecimalPrecision+1)), len(frac)+mapping.MaxDecimalPrecision+1)
	// The value is digits(intPart frac) * 10^(exp - len(frac)); we want it
	// scaled by 10^scale, so shift = scale + exp - len(frac).
	shift := int(scale) + exp - len(frac)
	// Trailing digits cut by a negative shift must be zeros.
	all := [2][]byte{intPart, frac}
	keep := n
	if shift < 0 {
		keep = n + shift
		for k := max(keep, 0); k < n; k++ {
			if digitAt(all, k) != '0' {
				return decimal128.Num{}, fmt.Errorf("has more than %d digits after the decimal point", scale)
			}
		}
		shift = 0
	}
	var u uint64
	var big decimal128.Num
	useBig := false
	ten := decimal128.FromU64(10)
	for k := 0; k < keep; k++ {
		c := digitAt(all, k)
		if c < '0' || c > '9' {
			return decimal128.Num{}, errNotNumber
		}
		d := uint64(c - '0')
		if !useBig {
			if u <= (math.MaxUint64-d)/10 {
				u = u*10 + d
				continue
			}
			big = decimal128.FromU64(u)
			useBig = true
		}
		// big < 10^37 keeps big*10+d below 10^38: checking after the
		// multiplication would miss an int128 overflow that wraps around.
		if !big.FitsInPrecision(mapping.MaxDecimalPrecision - 1) {
			return decimal128.Num{}, fmt.Errorf("does not fit decimal(%d,%d)", precision, scale)
		}
		big = big.Mul(ten).Add(decimal128.FromU64(d))
	}
	// Validate the digits that were dropped as zeros above for syntax too.
	for k := max(keep, 0); k < n; k++ {
		if c := digitAt(all, k); c < '0' || c > '9' {
			return decimal128.Num{}, errNotNumber
		}
	}
	var v decimal128.Num
	switch {
	case useBig:
		v = big
	case shift < len(pow10u64) && u <= math.MaxUint64/pow10u64[shift]:
		v = decimal128.FromU64(u * pow10u64[shift])
		shift = 0
	default:
		v = decimal128.FromU64(u)
	}
	for ; shift > 0; shift-- {
		if !v.FitsInPrecision(mapping.MaxDecimalPrecision - 1) { // as above: no wrap-around
			return decimal128.Num{}, fmt.Errorf("does not fit decimal(%d,%d)", precision, scale)
		}
		v = v.Mul(ten)
	}
	if !v.FitsInPrecision(precision) {
		return decimal128.Num{}, fmt.Errorf("does not fit decimal(%d,%d)", precision, scale)
	}
	if neg {
		v = v.Negate()
	}
	return v, nil
}

func digitAt(parts [2][]byte, k int) byte {
	if k < len(parts[0]) {
		return parts[0][k]
	}
	return parts[1][k-len(parts[0])]
}

// parseBool parses a JSON boolean.
func parseBool(raw []byte) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errNotBool
}

// civil is a parsed ISO-8601 date or date-time without a zone.
type civil struct {
	days     int32 // days since 1970-01-01
	micros   int64 // microseconds since midnight, truncated
	hasTime  bool
	midnight bool // the time of day, as written, is absent or all zeros
}

var errTimeSuffix = errors.New("has an unexpected suffix (time zone offsets are not accepted: values are wall-clock time)")

// parseCivil parses "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS[.fffffffff]",
// optionally followed by "Z" (a zone offset is refused: values are wall-clock
// model time). Fractional digits beyond the microsecond are truncated, never
// rounded: rounding would turn the usual "valid to" sentinel
// 9999-12-31T23:59:59.9999999 into year 10000, and move a value just before
// midnight into the next day.
func parseCivil(s []byte) (civil, error) {
	var c civil
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return c, errors.New("is not an ISO 8601 date (YYYY-MM-DD)")
	}
	y, ok1 := atoiFixed(s[0:4])
	m, ok2 := atoiFixed(s[5:7])
	d, ok3 := atoiFixed(s[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return c, errors.New("is not a valid date")
	}
	c.days = daysFromCivil(y, m, d)
	c.midnight = true
	rest := s[10:]
	if len(rest) == 0 {
		return c, nil
	}
	if rest[0] != 'T' && rest[0] != ' ' {
		return c, errors.New("is not an ISO 8601 date-time")
	}
	rest = rest[1:]
	if n := len(rest); n > 0 && rest[n-1] == 'Z' {
		rest = rest[:n-1]
	}
	if len(rest) < 8 || rest[2] != ':' || rest[5] != ':' {
		return c, errors.New("is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM:SS)")
	}
	hh, ok1 := atoiFixed(rest[0:2])
	mm, ok2 := atoiFixed(rest[3:5])
	ss, ok3 := atoiFixed(rest[6:8])
	if !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 59 {
		return c, errors.New("has an invalid time of day")
	}
	c.hasTime = true
	c.micros = (int64(hh)*3600 + int64(mm)*60 + int64(ss)) * 1_000_000
	c.midnight = c.micros == 0
	rest = rest[8:]
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) == 1 {
			return c, errTimeSuffix
		}
		frac := rest[1:]
		var us int64
		for i, ch := range frac {
			if ch == '+' || ch == '-' {
				return c, errTimeSuffix
			}
			if ch < '0' || ch > '9' {
				return c, errors.New("has an invalid fraction of a second")
			}
			if ch != '0' {
				// Checked on the digits, not on micros: a date column must
				// not take 00:00:00.0000001 for midnight either.
				c.midnight = false
			}
			if i < 6 {
				us = us*10 + int64(ch-'0')
			}
		}
		for i := len(frac); i < 6; i++ {
			us *= 10
		}
		c.micros += us
	}
	return c, nil
}

func atoiFixed(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil converts a proleptic Gregorian date to days since 1970-01-01
// (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int32 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int32(era*146097 + doe - 719468)
}
