package jobfile

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// A query template is DAX text with actions ({{ ... }}) in it. An action
// that prints a value must stand where DAX reads code, so that the value,
// rendered by {{ dax }} as one complete literal, cannot change the shape
// of the query: not inside a string literal, a quoted name, a bracketed
// name or a comment, whose text the value would continue (and, with a
// quote or a line break, end); nor touching a word or a string, which the
// value would run into (x{{ dax .n }} renders x5, "a"{{ dax .s }} renders
// one string "a""b"). The check reads the template's text nodes, in the
// order they render, with a lexer of DAX that carries its state from one
// text node to the next, across the branches of {{ if }} and the
// iterations of {{ range }}; it never renders the template.

// daxState is where the DAX lexer stands after some text: in code (after
// a separator, a word, a - or / that may start a comment, or a rendered
// value), inside a literal or a name, or inside a comment. The ...Close
// states have read a closing quote or bracket that the next byte may
// double (an escaped quote or bracket).
type daxState uint8

const (
	daxCode         daxState = iota // after a separator, or at the start
	daxWord                         // after a letter, digit, _ or .
	daxDash                         // after -, which -- would make a comment
	daxSlash                        // after /, which // or /* would make a comment
	daxValue                        // after a value an action printed
	daxString                       // inside "..."
	daxStringClose                  // after a " inside "...": its end, or "" (an escaped quote)
	daxQuoted                       // inside '...', a quoted table name
	daxQuotedClose                  // after a ' inside '...'
	daxBracket                      // inside [...], a column or measure name
	daxBracketClose                 // after a ] inside [...]
	daxLineComment                  // inside // ... or -- ..., up to a line feed
	daxBlockComment                 // inside /* ... */
	daxBlockStar                    // after a * inside /* ... */
	daxBlockSlash                   // after a / inside /* ... */
	daxNested                       // after /* inside /* ... */: DAX may nest comments or not
)

// daxStates is a set of daxState: the states the lexer may be in at a
// point of a template, one per path through its branches.
type daxStates uint32

func stateSet(s ...daxState) daxStates {
	var set daxStates
	for _, x := range s {
		set |= 1 << x
	}
	return set
}

func (set daxStates) has(s daxState) bool { return set&(1<<s) != 0 }

func (set daxStates) each(fn func(daxState)) {
	for ; set != 0; set &= set - 1 {
		fn(daxState(bits.TrailingZeros32(uint32(set))))
	}
}

func isDAXWord(c byte) bool {
	return c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// next is the state after byte c in state s. A line comment ends at a line
// feed only: were DAX to end it at a carriage return too, the check would
// only be stricter than it needs to be.
func (s daxState) next(c byte) daxState {
	switch s {
	case daxDash:
		if c == '-' {
			return daxLineComment
		}
	case daxSlash:
		switch c {
		case '/':
			return daxLineComment
		case '*':
			return daxBlockComment
		}
	case daxString:
		if c == '"' {
			return daxStringClose
		}
		return daxString
	case daxStringClose:
		if c == '"' {
			return daxString
		}
	case daxQuoted:
		if c == '\'' {
			return daxQuotedClose
		}
		return daxQuoted
	case daxQuotedClose:
		if c == '\'' {
			return daxQuoted
		}
	case daxBracket:
		if c == ']' {
			return daxBracketClose
		}
		return daxBracket
	case daxBracketClose:
		if c == ']' {
			return daxBracket
		}
	case daxLineComment:
		if c == '\n' {
			return daxCode
		}
		return daxLineComment
	case daxBlockComment, daxBlockStar, daxBlockSlash:
		switch {
		case c == '/' && s == daxBlockStar:
			return daxCode
		case c == '*' && s == daxBlockSlash:
			return daxNested
		case c == '*':
			return daxBlockStar
		case c == '/':
			return daxBlockSlash
		}
		return daxBlockComment
	case daxNested:
		return daxNested
	}
	// In code (or just past a literal or a name): c starts something new.
	switch {
	case c == '"':
		return daxString
	case c == '\'':
		return daxQuoted
	case c == '[':
		return daxBracket
	case c == '-':
		return daxDash
	case c == '/':
		return daxSlash
	case isDAXWord(c):
		return daxWord
	}
	return daxCode
}

// valueAfter says why a value printed by an action cannot stand in state
// s; "" when it can. A rendered value starts with ", a digit, ( (a
// negative number), DATE, DATETIME or BLANK: never with -, / or *, so it
// cannot start a comment after - or /, nor double a closing ' or ].
func (s daxState) valueAfter() string {
	switch s {
	case daxCode, daxDash, daxSlash, daxQuotedClose, daxBracketClose:
		return ""
	case daxWord:
		return "touches the word before it, which the value would run into (x{{ dax .n }} renders x5): put a space or an operator between them"
	case daxValue:
		return "follows another value directly, which it would run into (two strings make one, \"a\"\"b\"): put a space or an operator between them"
	case daxStringClose:
		return "follows a closing \" directly: a string value would continue that string (\"a\"\"b\" is one string): put a space or an operator between them"
	case daxString:
		return "stands inside a DAX string literal (\"...\"): a value there is spliced into the string unquoted, and a \" in it ends the string; write {{ dax .x }} outside the quotes, where it renders a quoted literal, and join with &, e.g. \"pre\" & {{ dax .x }}"
	case daxQuoted:
		return "stands inside a quoted table name ('...'): a value there could end the name; a parameter cannot name a table, write the name in the query"
	case daxBracket:
		return "stands inside a bracketed name ([...]): a value there could end the name; a parameter cannot name a column or measure, write the name in the query"
	case daxLineComment:
		return "stands inside a DAX comment (// or -- up to the end of the line): a line break in the value would end the comment and add its text to the query; take it out of the comment"
	case daxBlockComment, daxBlockStar, daxBlockSlash:
		return "stands inside a DAX comment (/* ... */): a */ in the value would end the comment and add its text to the query; take it out of the comment"
	case daxNested:
		return "follows a /* written inside a /* ... */ comment, which leaves unclear where the comment ends: remove the inner /*"
	}
	return "stands where the query cannot be read"
}

// valueBefore says why a value printed by an action cannot be followed by
// byte c; "" when it can.
func valueBefore(c byte) string {
	switch {
	case isDAXWord(c):
		return "touches the word after it, which the value would run into ({{ dax .n }}x renders 5x): put a space or an operator between them"
	case c == '"':
		return "is followed by a \" directly: a string value and that string would make one (\"a\"\"b\"): put a space or an operator between them"
	}
	return ""
}

// daxChecker walks a query template's nodes in the order they render.
type daxChecker struct {
	t *template.Template
	// loops holds the states that {{ break }} and {{ continue }} carry to
	// the end of the innermost {{ range }}.
	loops []daxStates
}

// checkDAXContexts checks where the actions of a query template stand
// (see the comment at the top of this file).
func checkDAXContexts(t *template.Template) error {
	c := &daxChecker{t: t}
	_, err := c.list(t.Root, stateSet(daxCode))
	return err
}

func (c *daxChecker) list(l *parse.ListNode, in daxStates) (daxStates, error) {
	if l == nil {
		return in, nil
	}
	var err error
	for _, n := range l.Nodes {
		if in, err = c.node(n, in); err != nil {
			return 0, err
		}
	}
	return in, nil
}

func (c *daxChecker) node(n parse.Node, in daxStates) (daxStates, error) {
	switch x := n.(type) {
	case *parse.TextNode:
		var out daxStates
		var why string
		in.each(func(s daxState) {
			for i, b := range x.Text {
				if s == daxValue && i == 0 {
					if w := valueBefore(b); w != "" && why == "" {
						why = w
					}
				}
				s = s.next(b)
			}
			out |= stateSet(s)
		})
		if why != "" {
			return 0, c.errorf(x, "the value before %q %s", firstLine(x.Text), why)
		}
		return out, nil
	case *parse.ActionNode:
		if len(x.Pipe.Decl) > 0 {
			return in, nil // {{ $x := ... }} prints nothing
		}
		// The most telling reason: a context before an adjacency.
		why := ""
		for _, s := range []daxState{daxString, daxQuoted, daxBracket, daxLineComment, daxBlockComment, daxBlockStar, daxBlockSlash, daxNested, daxStringClose, daxWord, daxValue} {
			if in.has(s) {
				why = s.valueAfter()
				break
			}
		}
		if why != "" {
			return 0, c.errorf(x, "{{ %s }} %s", x.Pipe, why)
		}
		if !endsInDAX(x.Pipe) {
			return 0, c.errorf(x, "{{ %s }} puts a raw value into the DAX query: write {{ dax %s }} so it is quoted as a DAX literal", x.Pipe, x.Pipe)
		}
		if in == 0 {
			return 0, nil
		}
		return stateSet(daxValue), nil
	case *parse.IfNode:
		return c.branches(x.List, x.ElseList, in)
	case *parse.WithNode:
		return c.branches(x.List, x.ElseList, in)
	case *parse.RangeNode:
		// The body runs zero or more times: iterate to the states it can
		// end in from any of them.
		c.loops = append(c.loops, 0)
		acc := in
		for {
			out, err := c.list(x.List, acc)
			if err != nil {
				return 0, err
			}
			out |= c.loops[len(c.loops)-1]
			if out|acc == acc {
				break
			}
			acc |= out
		}
		c.loops = c.loops[:len(c.loops)-1]
		els, err := c.list(x.ElseList, in)
		if err != nil {
			return 0, err
		}
		return acc | els, nil
	case *parse.BreakNode, *parse.ContinueNode:
		if len(c.loops) > 0 {
			c.loops[len(c.loops)-1] |= in
		}
		return 0, nil // what follows in this list does not run
	case *parse.TemplateNode:
		return 0, c.errorf(x, "{{ template }} is not supported in queries")
	}
	return in, nil // comments
}

func (c *daxChecker) branches(then, els *parse.ListNode, in daxStates) (daxStates, error) {
	a, err := c.list(then, in)
	if err != nil {
		return 0, err
	}
	b, err := c.list(els, in)
	if err != nil {
		return 0, err
	}
	return a | b, nil
}

// errorf words an error about node n, naming its line when the query has
// more than one.
func (c *daxChecker) errorf(n parse.Node, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if strings.Contains(c.t.Tree.Root.String(), "\n") {
		loc, _ := c.t.ErrorContext(n)
		// loc is name:line:column.
		if parts := strings.Split(loc, ":"); len(parts) >= 3 {
			if line, err := strconv.Atoi(parts[len(parts)-2]); err == nil {
				msg = fmt.Sprintf("line %d of the %s: %s", line, c.t.Name(), msg)
			}
		}
	}
	return errors.New(msg)
}

// firstLine is the start of text, for a message.
func firstLine(text []byte) string {
	s, _, _ := strings.Cut(string(text), "\n")
	if len(s) > 20 {
		s = s[:20] + "..."
	}
	return s
}
