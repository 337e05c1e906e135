package jobfile

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"
)

// This file checks, by fuzzing, that no parameter value can change the
// shape of a query: every value {{ dax }} renders reads back as that
// value, and, in a template that passes checkQueryTemplate, stands as
// tokens of its own. The DAX lexer and literal parser here are written
// apart from the ones the code uses, so that a mistake in one is caught by
// the other.

// FuzzDAXLiteral renders strings, integers and dates as DAX literals and
// parses them back.
func FuzzDAXLiteral(f *testing.F) {
	f.Add("", int64(0), int32(0))
	f.Add(`it's "quoted" // -- /* */ [x] 'y'`+"\n EVALUATE", int64(-5), int32(45000))
	f.Add("\x00\xff\"\"", int64(math.MinInt64), int32(-1))
	f.Add("x", int64(math.MaxInt64), int32(3000000))
	f.Fuzz(func(t *testing.T, s string, n int64, days int32) {
		day := Date{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(days))}
		for _, v := range []any{s, n, day, day.Time.Add(time.Duration(n%86400) * time.Second)} {
			lit, err := DAXLiteral(v)
			if err != nil {
				if !literalOutOfRange(v) {
					t.Fatalf("DAXLiteral(%#v): %v", v, err)
				}
				continue
			}
			if literalOutOfRange(v) {
				t.Fatalf("DAXLiteral(%#v) = %q: a value DAX cannot write was written", v, lit)
			}
			back, err := parseDAXLiteral(lit)
			if err != nil {
				t.Fatalf("DAXLiteral(%#v) = %q, which does not parse: %v", v, lit, err)
			}
			if !sameValue(v, back) {
				t.Fatalf("DAXLiteral(%#v) = %q, which reads back as %#v", v, lit, back)
			}
			toks := lexDAX(lit)
			if len(toks) == 0 || toks[0].start != 0 || toks[len(toks)-1].end != len(lit) {
				t.Fatalf("DAXLiteral(%#v) = %q is not made of whole tokens: %v", v, lit, toks)
			}
		}
	})
}

// literalOutOfRange reports whether v is a value DAXLiteral must refuse.
func literalOutOfRange(v any) bool {
	switch x := v.(type) {
	case int64:
		return x == math.MinInt64
	case Date:
		return x.Year() < 1900 || x.Year() > 9999
	case time.Time:
		return x.Year() < 1900 || x.Year() > 9999 || x.Nanosecond() != 0
	}
	return false
}

// FuzzQueryTemplate renders query templates that checkQueryTemplate
// accepts with any values of the parameters s (a string), n (an int) and
// day (a date). Every value a {{ dax }} prints must be whole tokens of the
// rendered query that read back as the value; and a template without
// branches must render the same tokens, outside its values, whatever the
// values are.
func FuzzQueryTemplate(f *testing.F) {
	for _, tmpl := range []string{
		`EVALUATE FILTER(Sales, Sales[Region] = {{ dax .s }} && Sales[Qty] > {{ dax .n }})`,
		"DEFINE VAR d = {{ dax .day }} // the day\nEVALUATE FILTER(Sales, Sales[Date] = d) -- end",
		`EVALUATE FILTER(Small, Small[Name] = "pre" & {{ dax .s }})`,
		`EVALUATE FILTER(Small, Small[Name] = "pre{{ dax .s }}")`,
		`EVALUATE TOPN({{ dax .n }}, 'Sales Table', 'Sales Table'[Key]]x], ASC) /* {{ if .s }} */`,
		`x -{{ dax .n }} - {{ dax .n }}/{{ dax .n }}`,
		`{{ if .s }}"a"{{ else }}'b'{{ end }} & {{ dax .s }}{{ range .n }}, {{ dax . }}{{ end }}`,
		`{{ $v := dax .s }}{{ dax $v }} {{ dax (printf "%s-%d" .s .n) }} {{ dax .day.Year }}`,
		`{{ with .s }}{{ dax . }}{{ end }} {{ dax .s | dax }}`,
	} {
		f.Add(tmpl, `a" ) // x`+"\nEVALUATE Other -- */", int64(-3), int32(45000))
	}
	f.Fuzz(func(t *testing.T, tmpl, s string, n int64, days int32) {
		// Loops multiply the output (and the time): at most three, of at
		// most four turns each.
		if hasMarker(tmpl) || hasMarker(s) || len(tmpl) > 1000 || strings.Count(tmpl, "range") > 3 {
			return
		}
		parsed, err := parseTemplate("query", tmpl)
		if err != nil || checkQueryTemplate(parsed) != nil {
			return
		}
		day := Date{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(days))}
		n %= 5
		got, ok := renderMarked(t, tmpl, map[string]any{"s": s, "n": n, "day": day})
		if !ok {
			return
		}
		if !straightLine(parsed.Root) {
			return
		}
		ref, ok := renderMarked(t, tmpl, map[string]any{"s": "x", "n": int64(1), "day": Date{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}})
		if !ok {
			return
		}
		if got.shape != ref.shape {
			t.Fatalf("%q: the shape of the query changes with the values:\n%q\n  %s\n%q\n  %s", tmpl, got.text, got.shape, ref.text, ref.shape)
		}
	})
}

// Markers: each value dax renders in renderMarked is wrapped in a pair of
// private-use runes numbered by the call, which the lexer does not see.
const (
	markOpen  = 0xE100
	markClose = 0xE200
	markCount = 0x100
)

func hasMarker(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r >= markOpen && r < markClose+markCount })
}

type markedQuery struct {
	text  string // the query as DAXLiteral renders it, without markers
	shape string // its tokens, each value as one "lit"
}

// renderMarked renders tmpl with a dax that marks the values it renders,
// and checks each value printed: whole tokens of the query, reading back
// as the value. ok is false when the template cannot be rendered with
// these values.
func renderMarked(t *testing.T, tmpl string, params map[string]any) (markedQuery, bool) {
	var values []any
	mark := func(v any) (string, error) {
		lit, err := DAXLiteral(v)
		if err != nil {
			return "", err
		}
		if len(values) == markCount {
			return "", errors.New("too many values")
		}
		values = append(values, v)
		i := rune(len(values) - 1)
		return string(markOpen+i) + lit + string(markClose+i), nil
	}
	tp, err := template.New("query").Funcs(template.FuncMap{"dax": mark}).Option("missingkey=error").Parse(tmpl)
	if err != nil {
		t.Fatalf("%q parsed once, not twice: %v", tmpl, err)
	}
	b := &limitedBuilder{max: 1 << 20}
	if err := tp.Execute(b, params); err != nil {
		return markedQuery{}, false
	}
	text, spans, ok := stripMarkers(b.String())
	if !ok {
		return markedQuery{}, false // a template function cut a marker
	}
	toks := lexDAX(text)
	var shape []string
	next := 0 // the first token not yet in shape
	for _, sp := range spans {
		lit := text[sp.start:sp.end]
		for next < len(toks) && toks[next].end <= sp.start {
			shape = append(shape, toks[next].kind)
			next++
		}
		first := next
		for next < len(toks) && toks[next].start < sp.end {
			next++
		}
		if first == next || toks[first].start != sp.start || toks[next-1].end != sp.end {
			t.Fatalf("%q with %v: the value %q is not whole tokens of the query %q", tmpl, params, lit, text)
		}
		back, err := parseDAXLiteral(lit)
		if err != nil {
			t.Fatalf("%q with %v: the value %q in %q does not parse: %v", tmpl, params, lit, text, err)
		}
		if want := values[sp.idx]; !sameValue(unmark(want), back) {
			t.Fatalf("%q with %v: the value %q reads back as %#v, not %#v", tmpl, params, lit, back, want)
		}
		shape = append(shape, "lit")
	}
	for ; next < len(toks); next++ {
		shape = append(shape, toks[next].kind)
	}
	return markedQuery{text: text, shape: strings.Join(shape, " ")}, true
}

// limitedBuilder is a strings.Builder that fails past max bytes.
type limitedBuilder struct {
	strings.Builder
	max int
}

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errors.New("too long")
	}
	return b.Builder.Write(p)
}

type markedSpan struct{ idx, start, end int }

// stripMarkers removes the markers of s and returns where the outermost
// marked values stand in what is left; ok is false if the markers do not
// pair up.
func stripMarkers(s string) (string, []markedSpan, bool) {
	var b strings.Builder
	var spans []markedSpan
	var open []markedSpan
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case r >= markOpen && r < markOpen+markCount:
			open = append(open, markedSpan{idx: int(r - markOpen), start: b.Len()})
		case r >= markClose && r < markClose+markCount:
			if len(open) == 0 || open[len(open)-1].idx != int(r-markClose) {
				return "", nil, false
			}
			sp := open[len(open)-1]
			open = open[:len(open)-1]
			sp.end = b.Len()
			if len(open) == 0 {
				spans = append(spans, sp)
			}
		default:
			b.WriteString(s[i : i+w]) // the bytes as they are, valid UTF-8 or not
		}
		i += w
	}
	return b.String(), spans, len(open) == 0
}

// unmark removes the markers of a value that holds another rendered
// value ({{ dax .s | dax }}).
func unmark(v any) any {
	if s, ok := v.(string); ok {
		text, _, _ := stripMarkers(s)
		return text
	}
	return v
}

// straightLine reports whether a template has no branches or loops: all
// its actions then render whatever the values.
func straightLine(l *parse.ListNode) bool {
	for _, n := range l.Nodes {
		switch n.(type) {
		case *parse.TextNode, *parse.ActionNode, *parse.CommentNode:
		default:
			return false
		}
	}
	return true
}

// daxTok is a token of DAX: a string literal, a quoted name, a bracketed
// name, a number, a word (upper-cased) or one punctuation character.
// Comments and white space are not tokens.
type daxTok struct {
	kind       string
	start, end int
}

// lexDAX splits DAX text into tokens, as the engine reads it: strings with
// "" for a quote, 'names' with ”, [names] with ]], comments // and -- to
// the end of the line, /* */ not nested.
func lexDAX(s string) []daxTok {
	var toks []daxTok
	quoted := func(i int, closer byte) int { // the end of a quoted token starting at i
		for j := i + 1; j < len(s); j++ {
			if s[j] == closer {
				if j+1 < len(s) && s[j+1] == closer {
					j++
					continue
				}
				return j + 1
			}
		}
		return len(s)
	}
	word := func(c byte) bool {
		return c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(s[i:], "//") || strings.HasPrefix(s[i:], "--"):
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(s)
			}
		case strings.HasPrefix(s[i:], "/*"):
			if j := strings.Index(s[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(s)
			}
		case c == '"':
			j := quoted(i, '"')
			toks = append(toks, daxTok{"str", i, j})
			i = j
		case c == '\'':
			j := quoted(i, '\'')
			toks = append(toks, daxTok{"name", i, j})
			i = j
		case c == '[':
			j := quoted(i, ']')
			toks = append(toks, daxTok{"column", i, j})
			i = j
		case word(c):
			j := i
			for j < len(s) && word(s[j]) {
				j++
			}
			kind := "word:" + strings.ToUpper(s[i:j])
			if c >= '0' && c <= '9' {
				kind = "num"
			}
			toks = append(toks, daxTok{kind, i, j})
			i = j
		default:
			toks = append(toks, daxTok{string(c), i, i + 1})
			i++
		}
	}
	return toks
}

// parseDAXLiteral reads one DAX literal as DAXLiteral writes it: a string,
// a whole number (a negative one in parentheses), DATE, DATETIME or
// BLANK(). Numbers must be DAX whole numbers and dates must be dates DATE
// reads as written (years 1900 to 9999, months and days in range).
func parseDAXLiteral(s string) (any, error) {
	switch {
	case strings.HasPrefix(s, `"`):
		body, ok := strings.CutSuffix(s[1:], `"`)
		if !ok || len(s) < 2 {
			return nil, errors.New("unterminated string")
		}
		if strings.Count(body, `"`)%2 != 0 || strings.Contains(strings.ReplaceAll(body, `""`, ""), `"`) {
			return nil, errors.New("a lone quote inside the string")
		}
		return strings.ReplaceAll(body, `""`, `"`), nil
	case strings.HasPrefix(s, "(-"):
		digits, ok := strings.CutSuffix(s[2:], ")")
		if !ok || !allDigits(digits) {
			return nil, errors.New("not a negative number")
		}
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return nil, err
		}
		return -n, nil
	case allDigits(s):
		return strconv.ParseInt(s, 10, 64)
	case s == "BLANK()":
		return nil, nil
	}
	name, args, ok := strings.Cut(s, "(")
	args, closed := strings.CutSuffix(args, ")")
	if !ok || !closed || name != "DATE" && name != "DATETIME" {
		return nil, fmt.Errorf("not a literal: %q", s)
	}
	var parts []int
	for _, a := range strings.Split(args, ", ") {
		if !allDigits(a) || len(a) > 4 {
			return nil, fmt.Errorf("bad argument %q", a)
		}
		n, _ := strconv.Atoi(a)
		parts = append(parts, n)
	}
	want := 3
	if name == "DATETIME" {
		want = 6
	}
	if len(parts) != want {
		return nil, fmt.Errorf("%s takes %d arguments", name, want)
	}
	parts = append(parts, 0, 0, 0)
	y, mo, d, h, mi, sec := parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]
	tm := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if y < 1900 || y > 9999 || tm.Year() != y || int(tm.Month()) != mo || tm.Day() != d || h > 23 || mi > 59 || sec > 59 {
		return nil, fmt.Errorf("%s is not a date DAX reads as written", s)
	}
	if name == "DATE" {
		return Date{tm}, nil
	}
	return tm, nil
}

func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// sameValue compares a value given to DAXLiteral with the value its
// literal reads back as: integers as int64, dates and times as instants.
func sameValue(v, back any) bool {
	switch x := v.(type) {
	case int:
		v = int64(x)
	case Date:
		v = x.Time
	}
	if d, ok := back.(Date); ok {
		back = d.Time
	}
	if a, ok := v.(time.Time); ok {
		b, ok := back.(time.Time)
		return ok && a.Equal(b)
	}
	return v == back
}
