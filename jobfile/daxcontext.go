package jobfile

import (
	"errors"
	"fmt"
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
// The lexer handles each state apart (the states after a node from a set
// of states are the union of those from each), so the result of a node is
// computed once per state and kept: nested {{ range }} loops, each
// iterated to a fixed point, then cost no more than the nodes they hold.
type daxChecker struct {
	t    *template.Template
	memo map[daxKey]daxResult
}

type daxKey struct {
	n parse.Node
	s daxState
}

// daxResult is what a node makes of one state: the states it may end in,
// those {{ break }} and {{ continue }} carry to the end of the innermost
// {{ range }}, or why an action in it cannot stand where it does.
type daxResult struct {
	out, brk daxStates
	err      error
}

// daxOrder lists the states from the most telling reason to refuse an
// action to the least (a context before an adjacency), for the message.
var daxOrder = []daxState{
	daxString, daxQuoted, daxBracket, daxLineComment, daxBlockComment, daxBlockStar, daxBlockSlash, daxNested,
	daxStringClose, daxWord, daxValue,
	daxCode, daxDash, daxSlash, daxQuotedClose, daxBracketClose,
}

// checkDAXContexts checks where the actions of a query template stand
// (see the comment at the top of this file).
func checkDAXContexts(t *template.Template) error {
	c := &daxChecker{t: t, memo: map[daxKey]daxResult{}}
	return c.set(t.Root, stateSet(daxCode)).err
}

// set is the result of node n from any of the states in.
func (c *daxChecker) set(n parse.Node, in daxStates) daxResult {
	var r daxResult
	for _, s := range daxOrder {
		if !in.has(s) {
			continue
		}
		one := c.one(n, s)
		if one.err != nil {
			return one
		}
		r.out |= one.out
		r.brk |= one.brk
	}
	return r
}

// one is the result of node n from state s.
func (c *daxChecker) one(n parse.Node, s daxState) daxResult {
	k := daxKey{n, s}
	if r, ok := c.memo[k]; ok {
		return r
	}
	r := c.eval(n, s)
	c.memo[k] = r
	return r
}

func (c *daxChecker) eval(n parse.Node, s daxState) daxResult {
	switch x := n.(type) {
	case *parse.ListNode:
		r := daxResult{out: stateSet(s)}
		if x == nil {
			return r
		}
		for _, child := range x.Nodes {
			next := c.set(child, r.out)
			if next.err != nil {
				return next
			}
			r.out, r.brk = next.out, r.brk|next.brk
		}
		return r
	case *parse.TextNode:
		if s == daxValue && len(x.Text) > 0 {
			if why := valueBefore(x.Text[0]); why != "" {
				return daxResult{err: c.errorf(x, "the value before %q %s", firstLine(x.Text), why)}
			}
		}
		for _, b := range x.Text {
			s = s.next(b)
		}
		return daxResult{out: stateSet(s)}
	case *parse.ActionNode:
		if len(x.Pipe.Decl) > 0 {
			return daxResult{out: stateSet(s)} // {{ $x := ... }} prints nothing
		}
		if why := s.valueAfter(); why != "" {
			// Name the action itself in the advice, with dax.
			quoted := x.Pipe.String()
			if !endsInDAX(x.Pipe) {
				quoted = "dax " + quoted
			}
			why = strings.ReplaceAll(why, "{{ dax .x }}", "{{ "+quoted+" }}")
			return daxResult{err: c.errorf(x, "{{ %s }} %s", x.Pipe, why)}
		}
		if !endsInDAX(x.Pipe) {
			return daxResult{err: c.errorf(x, "{{ %s }} puts a raw value into the DAX query: write {{ dax %s }} so it is quoted as a DAX literal", x.Pipe, x.Pipe)}
		}
		return daxResult{out: stateSet(daxValue)}
	case *parse.IfNode:
		return c.branches(x.List, x.ElseList, s)
	case *parse.WithNode:
		return c.branches(x.List, x.ElseList, s)
	case *parse.RangeNode:
		// The body runs zero or more times: iterate to the states it can
		// end in from any of them. A {{ break }} or {{ continue }} in it
		// ends there too (and, for a continue, runs it again).
		acc := stateSet(s)
		for {
			body := c.set(x.List, acc)
			if body.err != nil {
				return body
			}
			next := body.out | body.brk
			if next|acc == acc {
				break
			}
			acc |= next
		}
		r := daxResult{out: acc}
		if x.ElseList != nil {
			els := c.one(x.ElseList, s)
			if els.err != nil {
				return els
			}
			r.out |= els.out
			r.brk = els.brk // the else branch is outside the loop
		}
		return r
	case *parse.BreakNode, *parse.ContinueNode:
		return daxResult{brk: stateSet(s)} // what follows in this list does not run
	case *parse.TemplateNode:
		return daxResult{err: c.errorf(x, "{{ template }} is not supported in queries")}
	}
	return daxResult{out: stateSet(s)} // comments
}

func (c *daxChecker) branches(then, els *parse.ListNode, s daxState) daxResult {
	a := c.one(then, s)
	if a.err != nil {
		return a
	}
	if els == nil {
		return daxResult{out: a.out | stateSet(s), brk: a.brk}
	}
	b := c.one(els, s)
	if b.err != nil {
		return b
	}
	return daxResult{out: a.out | b.out, brk: a.brk | b.brk}
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
