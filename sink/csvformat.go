package sink

import (
	"math"
	"math/bits"
	"strconv"
)

// The text forms of CSV values. Each appends to dst and allocates nothing
// beyond growing dst.

// csvSpecial marks the bytes that force a field to be quoted (RFC 4180).
var csvSpecial = [256]bool{'"': true, ',': true, '\r': true, '\n': true}

// appendCSVString appends s as a CSV field: unquoted unless it contains a
// quote, a comma, CR or LF, or is empty (an unquoted empty field is a null).
// Inner quotes are doubled. Leading and trailing spaces are kept unquoted.
func appendCSVString(dst []byte, s string) []byte {
	if len(s) == 0 {
		return append(dst, '"', '"')
	}
	quote := false
	for i := 0; i < len(s); i++ {
		if csvSpecial[s[i]] {
			quote = true
			break
		}
	}
	if !quote {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for {
		i := indexQuote(s)
		if i < 0 {
			break
		}
		dst = append(dst, s[:i+1]...)
		dst = append(dst, '"')
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, '"')
}

func indexQuote(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			return i
		}
	}
	return -1
}

// appendFloat appends f in the shortest form that parses back to the same
// float64, laid out as JavaScript and encoding/json do: plain decimal
// notation for magnitudes in [1e-6, 1e21) (1234567.89, 0.001, -0), exponent
// notation outside it with no leading zero in the exponent (1e+21, 1e-7,
// 1e+308, 5e-324). NaN and the infinities, which JSON cannot carry but an
// Arrow array can, are written NaN, Infinity and -Infinity, as PostgreSQL,
// .NET and JavaScript spell them.
//
// strconv's 'g' format is avoided on purpose: it switches to exponents from
// 1e6 (1234567.89 becomes 1.23456789e+06), a poor fit for amounts.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	abs := math.Abs(f)
	if abs == 0 || (abs >= 1e-6 && abs < 1e21) {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// Turn e-07 into e-7; positive exponents here have two or three digits.
	if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst
}

// appendDecimal appends the decimal128 value (hi, lo) with the given scale,
// at exactly that scale: 12.3400, -0.0001, 0.0000, 42 for scale 0.
func appendDecimal(dst []byte, hi int64, lo uint64, scale int32) []byte {
	uhi := uint64(hi)
	if hi < 0 {
		dst = append(dst, '-')
		// Two's complement negation of the 128-bit value.
		lo = ^lo + 1
		uhi = ^uhi
		if lo == 0 {
			uhi++
		}
	}
	var buf [40]byte // 2^127 has 39 digits
	digits := appendUint128(buf[:0], uhi, lo)
	s := int(scale)
	switch {
	case s <= 0:
		dst = append(dst, digits...)
		for ; s < 0; s++ {
			dst = append(dst, '0')
		}
	case len(digits) > s:
		dst = append(dst, digits[:len(digits)-s]...)
		dst = append(dst, '.')
		dst = append(dst, digits[len(digits)-s:]...)
	default:
		dst = append(dst, '0', '.')
		for i := len(digits); i < s; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	}
	return dst
}

// appendUint128 appends the decimal digits of the unsigned 128-bit value
// (hi, lo), dividing by 10^19 (the largest power of ten in a uint64) instead
// of going through math/big.
func appendUint128(dst []byte, hi, lo uint64) []byte {
	const e19 = 10_000_000_000_000_000_000
	var parts [2]uint64 // 2^128 < 10^57: at most two 19-digit groups below the top
	n := 0
	for hi != 0 {
		qhi, r := hi/e19, hi%e19
		qlo, rem := bits.Div64(r, lo, e19)
		parts[n] = rem
		n++
		hi, lo = qhi, qlo
	}
	dst = strconv.AppendUint(dst, lo, 10)
	for n--; n >= 0; n-- {
		var group [19]byte
		v := parts[n]
		for i := len(group) - 1; i >= 0; i-- {
			group[i] = byte('0' + v%10)
			v /= 10
		}
		dst = append(dst, group[:]...)
	}
	return dst
}

// appendDate appends days since 1970-01-01 as 2024-02-29.
func appendDate(dst []byte, days int64) []byte {
	y, m, d := civil(days)
	dst = appendYear(dst, y)
	return append(dst, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

// appendTimestamp appends microseconds since 1970-01-01T00:00:00 (wall-clock
// time, no zone) as 2024-03-31T23:59:59.997: no zone, and the fraction of a
// second without trailing zeros, left out when zero.
func appendTimestamp(dst []byte, us int64) []byte {
	const usPerDay = 86_400_000_000
	days, rem := us/usPerDay, us%usPerDay
	if rem < 0 {
		days--
		rem += usPerDay
	}
	dst = appendDate(dst, days)
	secs, frac := rem/1_000_000, rem%1_000_000
	h, mi, s := secs/3600, secs/60%60, secs%60
	dst = append(dst, 'T',
		byte('0'+h/10), byte('0'+h%10), ':',
		byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10))
	if frac == 0 {
		return dst
	}
	var f [7]byte
	f[0] = '.'
	for i := 6; i >= 1; i-- {
		f[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 7
	for f[n-1] == '0' {
		n--
	}
	return append(dst, f[:n]...)
}

// appendYear appends a year as four digits, as ISO 8601 does for years 0 to
// 9999; other years, which Power BI cannot send, get a sign or more digits.
func appendYear(dst []byte, y int64) []byte {
	if y < 0 {
		dst = append(dst, '-')
		y = -y
	}
	if y > 9999 {
		return strconv.AppendInt(dst, y, 10)
	}
	return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date, the
// calendar of Go's time package and of Arrow, Parquet and PostgreSQL
// (Howard Hinnant's civil_from_days).
func civil(days int64) (year int64, month, day int64) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365]
	mp := (5*doy + 2) / 153                                // [0, 11], from March
	day = doy - (153*mp+2)/5 + 1
	month = mp + 3
	if mp >= 10 {
		month = mp - 9
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}
