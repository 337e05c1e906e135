package jobfile

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// DAXLiteral renders a value as a DAX literal: a string is quoted with every
// " doubled, so no value can change the shape of a query; integers are
// written as they are; a date as DATE(y, m, d); a date-time as
// DATETIME(y, m, d, h, mi, s).
func DAXLiteral(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return `"` + strings.ReplaceAll(x, `"`, `""`) + `"`, nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case Date:
		return fmt.Sprintf("DATE(%d, %d, %d)", x.Year(), int(x.Month()), x.Day()), nil
	case time.Time:
		if x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0 {
			return fmt.Sprintf("DATE(%d, %d, %d)", x.Year(), int(x.Month()), x.Day()), nil
		}
		return fmt.Sprintf("DATETIME(%d, %d, %d, %d, %d, %d)", x.Year(), int(x.Month()), x.Day(), x.Hour(), x.Minute(), x.Second()), nil
	case nil:
		return "BLANK()", nil
	}
	return "", fmt.Errorf("dax: cannot render a %T as a DAX literal", v)
}

var templateFuncs = template.FuncMap{"dax": DAXLiteral}

// parseTemplate parses a query or path template.
func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(templateFuncs).Option("missingkey=error").Parse(text)
}

// checkQueryTemplate refuses a query template that prints a value without
// the dax function: {{ .day }} would splice raw text into DAX.
func checkQueryTemplate(t *template.Template) error {
	if t.Tree == nil || t.Root == nil {
		return nil
	}
	return checkDAXNodes(t.Root)
}

func checkDAXNodes(n parse.Node) error {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return nil
		}
		for _, c := range x.Nodes {
			if err := checkDAXNodes(c); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		if len(x.Pipe.Decl) == 0 && !endsInDAX(x.Pipe) {
			return fmt.Errorf("{{ %s }} puts a raw value into the DAX query: write {{ dax %s }} so it is quoted as a DAX literal", x.Pipe, x.Pipe)
		}
	case *parse.IfNode:
		return firstErr(checkDAXNodes(x.List), checkDAXNodes(x.ElseList))
	case *parse.RangeNode:
		return firstErr(checkDAXNodes(x.List), checkDAXNodes(x.ElseList))
	case *parse.WithNode:
		return firstErr(checkDAXNodes(x.List), checkDAXNodes(x.ElseList))
	case *parse.TemplateNode:
		return errors.New("{{ template }} is not supported in queries")
	}
	return nil
}

func endsInDAX(p *parse.PipeNode) bool {
	if len(p.Cmds) == 0 {
		return true
	}
	last := p.Cmds[len(p.Cmds)-1]
	id, ok := last.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == "dax"
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
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
