package source

import (
	"fmt"
	"strconv"
	"strings"
)

// SampleQuery rewrites a DAX query to return at most n rows, for checks and
// inference that must not read a whole result:
//
//	EVALUATE <table> [ORDER BY ...]             -> EVALUATE TOPN(n, <table>)
//	DEFINE ... EVALUATE <table> [ORDER BY ...]  -> DEFINE ... EVALUATE TOPN(n, <table>)
//
// Comments and the ORDER BY clause (with any START AT) are dropped. ok is
// false when the query has another shape (several EVALUATE statements, or
// no EVALUATE): then it is returned as it is, and the caller must stop
// reading after n rows itself (TOPN may also return more than n rows when
// rows tie, so callers stop after n rows in any case).
func SampleQuery(dax string, n int) (string, bool) {
	toks := daxScan(dax)
	var evals []daxToken
	orderAt, defineAt := -1, -1
	for i, t := range toks {
		switch {
		case t.depth != 0:
		case t.word == "EVALUATE":
			evals = append(evals, t)
		case t.word == "DEFINE" && defineAt < 0 && len(evals) == 0:
			defineAt = i
		case t.word == "ORDER" && i+1 < len(toks) && toks[i+1].word == "BY" && toks[i+1].depth == 0 && len(evals) == 1 && orderAt < 0:
			orderAt = t.start
		}
	}
	if len(evals) != 1 {
		return dax, false
	}
	// Only a DEFINE block (or nothing but comments) may precede EVALUATE.
	first := -1
	for i, t := range toks {
		if t.word != "" || t.other {
			first = i
			break
		}
	}
	if first < 0 || toks[first].word != "EVALUATE" && (defineAt != first) {
		return dax, false
	}
	end := len(dax)
	if orderAt >= 0 {
		end = orderAt
	}
	table := strings.TrimSpace(stripDAXComments(dax[evals[0].end:end]))
	if table == "" {
		return dax, false
	}
	prefix := ""
	if defineAt >= 0 {
		prefix = strings.TrimRight(dax[toks[defineAt].start:evals[0].start], " \t\r\n") + "\n"
	}
	return prefix + "EVALUATE TOPN(" + strconv.Itoa(n) + ", " + table + ")", true
}

// daxToken is a top-level word or punctuation of a DAX text; strings,
// quoted names, [columns] and comments are skipped.
type daxToken struct {
	word       string // upper-cased keyword-like word, "" for other tokens
	other      bool   // a non-word token (not a comment)
	start, end int
	depth      int // parenthesis depth
}

// daxScan lists the words and other tokens of a DAX text, outside strings,
// quoted names, brackets and comments.
func daxScan(s string) []daxToken {
	var toks []daxToken
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
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
		case c == '"' || c == '\'' || c == '[':
			closer := c
			if c == '[' {
				closer = ']'
			}
			j := i + 1
			for j < len(s) {
				if s[j] == closer {
					if j+1 < len(s) && s[j+1] == closer { // doubled: escaped
						j += 2
						continue
					}
					break
				}
				j++
			}
			toks = append(toks, daxToken{other: true, start: i, end: min(j+1, len(s)), depth: depth})
			i = j + 1
		case isDAXWordByte(c):
			j := i
			for j < len(s) && isDAXWordByte(s[j]) {
				j++
			}
			toks = append(toks, daxToken{word: strings.ToUpper(s[i:j]), start: i, end: j, depth: depth})
			i = j
		default:
			if c == '(' {
				depth++
			}
			toks = append(toks, daxToken{other: true, start: i, end: i + 1, depth: depth})
			if c == ')' && depth > 0 {
				depth--
			}
			i++
		}
	}
	return toks
}

func isDAXWordByte(c byte) bool {
	return c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// stripDAXComments removes comments outside strings, names and brackets.
func stripDAXComments(s string) string {
	toks := daxScan(s)
	var b strings.Builder
	last := 0
	for i, t := range toks {
		if i > 0 {
			// Keep the whitespace between tokens as one space, or a newline
			// if the gap held one, so line structure survives.
			gap := s[last:t.start]
			if strings.ContainsAny(gap, "\n") || strings.Contains(gap, "//") || strings.Contains(gap, "--") {
				b.WriteByte('\n')
			} else if gap != "" {
				b.WriteByte(' ')
			}
		}
		b.WriteString(s[t.start:t.end])
		last = t.end
	}
	return b.String()
}

// The service's limits per query, and the margin auto page sizes keep
// below them.
const (
	MaxPageRows   = 100_000
	maxPageValues = 1_000_000
	pageMargin    = 0.9
	// FirstPageRows is the first page of an inferred mapping, whose column
	// count is unknown until a row arrives.
	FirstPageRows = 10_000
)

// AutoPageRows is the page size that keeps rows x columns under the
// service's value limit, with margin.
func AutoPageRows(columns int) int {
	n := MaxPageRows
	if columns > 0 {
		n = min(n, maxPageValues/columns)
	}
	return max(1, int(float64(n)*pageMargin))
}

// FirstPageQuery and NextPageQuery are the page queries, in exactly this
// shape so that they stay predictable and reviewable.
func FirstPageQuery(n int, table, key string) string {
	table = endComment(table)
	return fmt.Sprintf("EVALUATE TOPN(%d, %s, %s, ASC) ORDER BY %s ASC", n, table, key, key)
}

// NextPageQuery is the query of every page after the first.
func NextPageQuery(n int, table, key, lastKey string) string {
	table = endComment(table)
	return fmt.Sprintf("EVALUATE TOPN(%d, FILTER(%s, %s > %s), %s, ASC) ORDER BY %s ASC", n, table, key, lastKey, key, key)
}

// endComment ends a table expression whose last line holds a // or --
// comment with a line break, so the comment cannot swallow the rest of the
// page query.
func endComment(table string) string {
	last := table[strings.LastIndexByte(table, '\n')+1:]
	if strings.Contains(last, "//") || strings.Contains(last, "--") {
		return table + "\n"
	}
	return table
}

// DAXString writes s as a DAX string literal: quoted, with every " doubled,
// so that no value can change the shape of a query.
func DAXString(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
