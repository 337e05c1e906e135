package jobfile

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// DAXLiteral renders a value as one DAX literal that reads back as the
// value, whatever it is, so that no value can change the shape of a
// query:
//
//   - a string is quoted, with every " doubled: "it""s";
//   - an integer is written in digits, a negative one in parentheses,
//     (-5), so that it never starts with - (after a - in the query, -5
//     would make --, a comment); integers beyond DAX's whole numbers
//     (-(2^63-1) to 2^63-1) are refused;
//   - a date is DATE(y, m, d) and a date-time DATETIME(y, m, d, h, mi, s),
//     in years 1900 to 9999, the only ones DATE reads as written (it adds
//     1900 to a year below 1900); a time with a fraction of a second is
//     refused, since DATETIME has none;
//   - nil is BLANK().
func DAXLiteral(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return `"` + strings.ReplaceAll(x, `"`, `""`) + `"`, nil
	case int:
		return daxInt(int64(x))
	case int64:
		return daxInt(x)
	case Date:
		return daxTime(x.Time)
	case DateTime:
		s, err := daxTime(x.UTC())
		if err == nil && strings.HasPrefix(s, "DATE(") {
			// A datetime is always written DATETIME, even at midnight.
			s = "DATETIME(" + strings.TrimSuffix(strings.TrimPrefix(s, "DATE("), ")") + ", 0, 0, 0)"
		}
		return s, err
	case time.Time:
		return daxTime(x)
	case nil:
		return "BLANK()", nil
	}
	return "", fmt.Errorf("dax: cannot render a %T as a DAX literal", v)
}

func daxInt(n int64) (string, error) {
	switch {
	case n == math.MinInt64:
		return "", fmt.Errorf("dax: %d is beyond DAX's whole numbers (-%d to %d)", n, math.MaxInt64, math.MaxInt64)
	case n < 0:
		return "(" + strconv.FormatInt(n, 10) + ")", nil
	}
	return strconv.FormatInt(n, 10), nil
}

// Years DAX's DATE reads as written.
const (
	minDAXYear = 1900
	maxDAXYear = 9999
)

func daxTime(t time.Time) (string, error) {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	switch {
	case y < minDAXYear || y > maxDAXYear:
		return "", fmt.Errorf("dax: %s is outside the years DAX's DATE can write (%d to %d)", t.Format("2006-01-02"), minDAXYear, maxDAXYear)
	case t.Nanosecond() != 0:
		return "", fmt.Errorf("dax: %s has a fraction of a second, which DATETIME cannot write", t.Format(time.RFC3339Nano))
	case h == 0 && mi == 0 && s == 0:
		return fmt.Sprintf("DATE(%d, %d, %d)", y, int(mo), d), nil
	}
	return fmt.Sprintf("DATETIME(%d, %d, %d, %d, %d, %d)", y, int(mo), d, h, mi, s), nil
}

var templateFuncs = template.FuncMap{"dax": DAXLiteral}

// parseTemplate parses a query or path template.
func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(templateFuncs).Option("missingkey=error").Parse(text)
}

// checkQueryTemplate refuses a query template that prints a value
// without the dax function ({{ .day }} would splice raw text into DAX), or
// prints one where DAX does not read code: inside a string literal, a
// quoted or bracketed name or a comment, or touching a word or a string
// (see checkDAXContexts).
func checkQueryTemplate(t *template.Template) error {
	if t.Tree == nil || t.Root == nil {
		return nil
	}
	return checkDAXContexts(t)
}

func endsInDAX(p *parse.PipeNode) bool {
	if len(p.Cmds) == 0 {
		return true
	}
	last := p.Cmds[len(p.Cmds)-1]
	id, ok := last.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == "dax"
}

var missingKeyRE = regexp.MustCompile(`map has no entry for key "([^"]*)"`)

// render executes t over params, rewording a missing parameter.
func render(t *template.Template, params map[string]any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, params); err != nil {
		if m := missingKeyRE.FindStringSubmatch(err.Error()); m != nil {
			return "", fmt.Errorf("the template uses .%s but no value was given: pass --param %s=VALUE", m[1], m[1])
		}
		return "", fmt.Errorf("render: %w", err)
	}
	return b.String(), nil
}
