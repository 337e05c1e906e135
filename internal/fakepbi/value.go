package fakepbi

import (
	"cmp"
	"fmt"
	"math"
	"time"
	"unicode"
	"unicode/utf8"
)

// vkind is the kind of a comparable value.
type vkind uint8

const (
	kBlank vkind = iota
	kInt         // i
	kDec         // i is the value times 10^4 (Currency, short decimal literals)
	kFloat       // f
	kStr         // s
	kBool        // i is 0 or 1
	kTime        // i: Unix seconds of the wall clock read as UTC; n: nanoseconds
)

// cval is a cell or literal value in the form FILTER, TOPN and ORDER BY
// compare.
type cval struct {
	k vkind
	n int32
	i int64
	f float64
	s string
}

// valueError is the panic value of a Table.Value that returned a value of
// the wrong type. It is recovered where a response is written and turned into
// an error: a Table bug must not pass silently, nor crash the server.
type valueError struct{ error }

func badValue(t *Table, row, col int, v any) valueError {
	return valueError{fmt.Errorf("fakepbi: table %s row %d column %s: Value returned %T, not a value of a %s column",
		t.Name, row, t.Columns[col].Name, v, typeGoName(t.Columns[col].Type))}
}

func typeGoName(t ColumnType) string {
	switch t {
	case Int64:
		return "Int64 (int64)"
	case Double:
		return "Double (float64)"
	case Currency:
		return "Currency (fakepbi.Decimal)"
	case String:
		return "String (string)"
	case Bool:
		return "Bool (bool)"
	case DateTime:
		return "DateTime (time.Time)"
	case Variant:
		return "Variant (int64, float64, Decimal, string, bool or time.Time)"
	}
	return "invalid"
}

// cell returns the value of column col in row as a cval. It panics with a
// valueError when Value returns a value of the wrong type.
func cell(t *Table, row, col int) cval {
	v := t.Value(row, col)
	if v == nil {
		return cval{}
	}
	return cellOf(t, row, col, t.Columns[col].Type, v)
}

// variantType is the type of a value of a Variant column.
func variantType(v any) (ColumnType, bool) {
	switch v.(type) {
	case int64:
		return Int64, true
	case float64:
		return Double, true
	case Decimal:
		return Currency, true
	case string:
		return String, true
	case bool:
		return Bool, true
	case time.Time:
		return DateTime, true
	}
	return 0, false
}

// cellOf is the cval of v, a value of a column of type typ.
func cellOf(t *Table, row, col int, typ ColumnType, v any) cval {
	switch typ {
	case Int64:
		if x, ok := v.(int64); ok {
			return cval{k: kInt, i: x}
		}
	case Double:
		if x, ok := v.(float64); ok {
			return cval{k: kFloat, f: x}
		}
	case Currency:
		if x, ok := v.(Decimal); ok {
			if d, ok := parseScaled(string(x)); ok {
				return cval{k: kDec, i: d}
			}
			panic(valueError{fmt.Errorf("fakepbi: table %s row %d column %s: %q is not a Currency value (at most 4 decimals, within ±922337203685477.5807)",
				t.Name, row, t.Columns[col].Name, x)})
		}
	case String:
		if x, ok := v.(string); ok {
			return cval{k: kStr, s: x}
		}
	case Bool:
		if x, ok := v.(bool); ok {
			return boolVal(x)
		}
	case DateTime:
		if x, ok := v.(time.Time); ok {
			return timeVal(x)
		}
	case Variant:
		if vt, ok := variantType(v); ok {
			return cellOf(t, row, col, vt, v)
		}
	}
	panic(badValue(t, row, col, v))
}

func boolVal(b bool) cval {
	if b {
		return cval{k: kBool, i: 1}
	}
	return cval{k: kBool}
}

// timeVal keeps the wall clock of t, whatever its location.
func timeVal(t time.Time) cval {
	if t.Location() != time.UTC {
		y, mo, d := t.Date()
		h, mi, s := t.Clock()
		t = time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
	}
	return cval{k: kTime, i: t.Unix(), n: int32(t.Nanosecond())}
}

// daxZeroTime is the date DAX counts days from: BLANK compares as it.
var daxZeroTime = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC).Unix()

// zeroLike is the value BLANK takes when compared with v (0, "", FALSE or
// 1899-12-30), as DAX's comparison operators other than == do.
func zeroLike(v cval) cval {
	switch v.k {
	case kTime:
		return cval{k: kTime, i: daxZeroTime}
	case kBlank:
		return cval{}
	}
	return cval{k: v.k}
}

// parseScaled parses a decimal literal with at most 4 fractional digits into
// its value times 10^4.
func parseScaled(s string) (int64, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var v uint64
	digits, frac := 0, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if frac >= 0 {
				frac++
				if frac > 4 {
					return 0, false
				}
			}
			v = v*10 + uint64(c-'0')
			digits++
			if v > 1<<63 || digits > 19 {
				return 0, false
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	if frac < 0 {
		frac = 0
	}
	for ; frac < 4; frac++ {
		if v > (1<<63)/10 {
			return 0, false
		}
		v *= 10
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return int64(-v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

func (v cval) float() float64 {
	switch v.k {
	case kInt:
		return float64(v.i)
	case kDec:
		return float64(v.i) / 1e4
	}
	return v.f
}

// compareVals compares two non-blank values of compatible kinds (checked
// when the query is bound). Text compares case-insensitively, as DAX's
// default collation does.
func compareVals(a, b cval) int {
	switch a.k {
	case kStr:
		return foldCompare(a.s, b.s)
	case kBool:
		return cmp.Compare(a.i, b.i)
	case kTime:
		if c := cmp.Compare(a.i, b.i); c != 0 {
			return c
		}
		return cmp.Compare(a.n, b.n)
	}
	if a.k == kFloat || b.k == kFloat {
		return cmp.Compare(a.float(), b.float())
	}
	ai, bi := a.i, b.i
	if a.k != b.k {
		var ok bool
		if a.k == kInt {
			ai, ok = scale(ai)
		} else {
			bi, ok = scale(bi)
		}
		if !ok {
			return cmp.Compare(a.float(), b.float())
		}
	}
	return cmp.Compare(ai, bi)
}

func scale(i int64) (int64, bool) {
	if i > math.MaxInt64/10000 || i < math.MinInt64/10000 {
		return 0, false
	}
	return i * 10000, true
}

// sortCompare orders values as ORDER BY and TOPN do: blanks first.
func sortCompare(a, b cval) int {
	switch {
	case a.k == kBlank && b.k == kBlank:
		return 0
	case a.k == kBlank:
		return -1
	case b.k == kBlank:
		return 1
	}
	return compareVals(a, b)
}

// foldCompare compares strings ignoring case.
func foldCompare(a, b string) int {
	if a == b {
		return 0
	}
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			la, lb := unicode.ToLower(ra), unicode.ToLower(rb)
			if la != lb {
				return cmp.Compare(la, lb)
			}
		}
		a, b = a[na:], b[nb:]
	}
	return cmp.Compare(len(a), len(b))
}

// cmpOp is a comparison operator.
type cmpOp uint8

const (
	opGT cmpOp = iota
	opGE
	opLT
	opLE
	opEQ       // =, where BLANK equals 0, "" and FALSE
	opStrictEQ // ==, where BLANK equals only BLANK
	opNE
)

func parseOp(s string) cmpOp {
	switch s {
	case ">":
		return opGT
	case ">=":
		return opGE
	case "<":
		return opLT
	case "<=":
		return opLE
	case "==":
		return opStrictEQ
	case "<>":
		return opNE
	}
	return opEQ
}

// flip returns the operator that gives the same result with the operands
// swapped.
func (op cmpOp) flip() cmpOp {
	switch op {
	case opGT:
		return opLT
	case opGE:
		return opLE
	case opLT:
		return opGT
	case opLE:
		return opGE
	}
	return op
}

// apply evaluates a op b with DAX's blank rules.
func (op cmpOp) apply(a, b cval) bool {
	if op == opStrictEQ && (a.k == kBlank || b.k == kBlank) {
		return a.k == b.k
	}
	if a.k == kBlank {
		a = zeroLike(b)
	} else if b.k == kBlank {
		b = zeroLike(a)
	}
	c := 0
	if a.k != kBlank {
		c = compareVals(a, b)
	}
	switch op {
	case opGT:
		return c > 0
	case opGE:
		return c >= 0
	case opLT:
		return c < 0
	case opLE:
		return c <= 0
	case opNE:
		return c != 0
	}
	return c == 0
}
