package fakepbi

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The syntax tree of the DAX subset the fake evaluates. The parser only
// checks syntax; names are resolved against the model by bind (plan.go).
//
// Grammar (keywords case-insensitive):
//
//	query      = "EVALUATE" tableExpr [ "ORDER" "BY" orderItem { "," orderItem } ] EOF
//	tableExpr  = name | 'quoted name'
//	           | "SELECTCOLUMNS" "(" tableExpr { "," string "," colRef } ")"
//	           | "TOPN" "(" integer "," tableExpr { "," colRef [ "," order ] } ")"
//	           | "FILTER" "(" tableExpr "," predicate ")"
//	orderItem  = colRef [ "ASC" | "DESC" ]
//	order      = "ASC" | "DESC" | 0 | 1 | TRUE | FALSE
//	predicate  = conj { "||" conj }
//	conj       = atom { "&&" atom }
//	atom       = "(" predicate ")" | operand op operand
//	op         = ">" | ">=" | "<" | "<=" | "=" | "==" | "<>"
//	operand    = colRef | literal
//	colRef     = [ name | 'quoted name' ] "[" column "]"
//	literal    = [ "-" ] number | string | TRUE [ "()" ] | FALSE [ "()" ] | "BLANK" "(" ")"
//	           | "DATE" "(" int "," int "," int ")"
//	           | "DATETIME" "(" int "," int "," int "," int "," int "," int ")"
//	           | dt"2024-01-31T10:00:00"
//
// To add a table function, add a case to parser.tableExpr and a node here,
// then bind it in binder.table.

type queryAST struct {
	table   tableExpr
	orderBy []orderItem
}

type tableExpr interface{ position() pos }

type tableName struct {
	at   pos
	name string
}

type selectColumnsExpr struct {
	at     pos
	in     tableExpr
	names  []string
	nameAt []pos
	cols   []colRef
}

type topnExpr struct {
	at   pos
	n    int64
	in   tableExpr
	keys []orderItem
}

type filterExpr struct {
	at   pos
	in   tableExpr
	pred predExpr
}

func (e *tableName) position() pos         { return e.at }
func (e *selectColumnsExpr) position() pos { return e.at }
func (e *topnExpr) position() pos          { return e.at }
func (e *filterExpr) position() pos        { return e.at }

// colRef is T[Col] (qualified) or [Col].
type colRef struct {
	at        pos
	table     string
	qualified bool
	col       string
}

func (c colRef) String() string {
	if c.qualified {
		return quoteTableName(c.table) + "[" + c.col + "]"
	}
	return "[" + c.col + "]"
}

func quoteTableName(name string) string {
	for _, r := range name {
		if !isIdentPart(r) {
			return "'" + strings.ReplaceAll(name, "'", "''") + "'"
		}
	}
	return name
}

type orderItem struct {
	col  colRef
	desc bool
}

type predExpr interface{ position() pos }

type cmpExpr struct {
	at   pos
	op   string
	l, r operand
}

type logicExpr struct {
	at   pos
	and  bool
	l, r predExpr
}

func (e *cmpExpr) position() pos   { return e.at }
func (e *logicExpr) position() pos { return e.at }

// operand is either a column reference or a literal.
type operand struct {
	col *colRef
	lit *literal
}

// literal is a constant; kind tells its DAX type for type checks.
type literal struct {
	at   pos
	v    cval
	kind ColumnType // 0 for BLANK()
}

type parser struct {
	query string
	toks  []token
	i     int
}

// parseQuery parses a DAX query of the supported subset.
func parseQuery(query string) (*queryAST, error) {
	toks, err := lex(query)
	if err != nil {
		return nil, err
	}
	p := &parser{query: query, toks: toks}
	if !p.keyword("EVALUATE") {
		return nil, p.unexpected()
	}
	p.i++
	var q queryAST
	if q.table, err = p.tableExpr(); err != nil {
		return nil, err
	}
	if p.keyword("ORDER") {
		p.i++
		if !p.keyword("BY") {
			return nil, p.unexpected()
		}
		p.i++
		for {
			item, err := p.orderItem()
			if err != nil {
				return nil, err
			}
			q.orderBy = append(q.orderBy, item)
			if p.tok().kind != tComma {
				break
			}
			p.i++
		}
	}
	if p.tok().kind != tEOF {
		return nil, p.unexpected()
	}
	return &q, nil
}

func (p *parser) tok() token { return p.toks[p.i] }

func (p *parser) peek(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) keyword(kw string) bool {
	t := p.tok()
	return t.kind == tIdent && strings.EqualFold(t.text, kw)
}

func (p *parser) unexpected() error {
	t := p.tok()
	if t.kind == tEOF {
		return queryError(t.at, "The end of the input was reached.")
	}
	return syntaxError(t.at, t.raw, p.query)
}

func (p *parser) expect(k tokKind) (token, error) {
	t := p.tok()
	if t.kind != k {
		return t, p.unexpected()
	}
	p.i++
	return t, nil
}

func (p *parser) tableExpr() (tableExpr, error) {
	t := p.tok()
	switch t.kind {
	case tQuoted:
		p.i++
		return &tableName{at: t.at, name: t.text}, nil
	case tIdent:
		if p.peek(1).kind != tLParen {
			p.i++
			return &tableName{at: t.at, name: t.text}, nil
		}
		switch strings.ToUpper(t.text) {
		case "SELECTCOLUMNS":
			return p.selectColumns()
		case "TOPN":
			return p.topn()
		case "FILTER":
			return p.filter()
		}
		return nil, unresolvedName(t.at, t.text)
	}
	return nil, p.unexpected()
}

func (p *parser) selectColumns() (tableExpr, error) {
	e := &selectColumnsExpr{at: p.tok().at}
	p.i += 2
	var err error
	if e.in, err = p.tableExpr(); err != nil {
		return nil, err
	}
	for p.tok().kind == tComma || len(e.cols) == 0 {
		if _, err := p.expect(tComma); err != nil {
			return nil, err
		}
		name, err := p.expect(tString)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tComma); err != nil {
			return nil, err
		}
		c, err := p.colRef()
		if err != nil {
			return nil, err
		}
		e.names = append(e.names, name.text)
		e.nameAt = append(e.nameAt, name.at)
		e.cols = append(e.cols, c)
	}
	if _, err := p.expect(tRParen); err != nil {
		return nil, err
	}
	return e, nil
}

func (p *parser) topn() (tableExpr, error) {
	e := &topnExpr{at: p.tok().at}
	p.i += 2
	nt, err := p.expect(tNumber)
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseInt(nt.text, 10, 64)
	if err != nil {
		return nil, queryError(nt.at, "The first argument of TOPN must be a whole number; the fake evaluates only a literal count.")
	}
	e.n = n
	if _, err := p.expect(tComma); err != nil {
		return nil, err
	}
	if e.in, err = p.tableExpr(); err != nil {
		return nil, err
	}
	// The order keys are optional: without them TOPN returns n rows of the
	// engine's choosing (here the table's first n).
	for p.tok().kind == tComma {
		if _, err := p.expect(tComma); err != nil {
			return nil, err
		}
		c, err := p.colRef()
		if err != nil {
			return nil, err
		}
		// DAX's default TOPN order is descending.
		item := orderItem{col: c, desc: true}
		if p.tok().kind == tComma {
			if desc, ok := p.orderWord(p.peek(1)); ok {
				p.i++
				item.desc = desc
				p.skipWord()
			}
		}
		e.keys = append(e.keys, item)
	}
	if _, err := p.expect(tRParen); err != nil {
		return nil, err
	}
	return e, nil
}

// skipWord consumes the current token and, when "()" follows it, the
// parentheses too: TRUE() is TRUE.
func (p *parser) skipWord() {
	p.i++
	if p.tok().kind == tLParen && p.peek(1).kind == tRParen {
		p.i += 2
	}
}

// orderWord tells whether t is a TOPN order argument and whether it means
// descending: DESC, 0 and FALSE do; ASC, 1 and TRUE mean ascending.
func (p *parser) orderWord(t token) (desc, ok bool) {
	switch {
	case t.kind == tIdent && (strings.EqualFold(t.text, "DESC") || strings.EqualFold(t.text, "FALSE")):
		return true, true
	case t.kind == tIdent && (strings.EqualFold(t.text, "ASC") || strings.EqualFold(t.text, "TRUE")):
		return false, true
	case t.kind == tNumber && t.text == "0":
		return true, true
	case t.kind == tNumber && t.text == "1":
		return false, true
	}
	return false, false
}

func (p *parser) filter() (tableExpr, error) {
	e := &filterExpr{at: p.tok().at}
	p.i += 2
	var err error
	if e.in, err = p.tableExpr(); err != nil {
		return nil, err
	}
	if _, err := p.expect(tComma); err != nil {
		return nil, err
	}
	if e.pred, err = p.predicate(); err != nil {
		return nil, err
	}
	if _, err := p.expect(tRParen); err != nil {
		return nil, err
	}
	return e, nil
}

func (p *parser) orderItem() (orderItem, error) {
	c, err := p.colRef()
	if err != nil {
		return orderItem{}, err
	}
	item := orderItem{col: c}
	switch {
	case p.keyword("ASC"):
		p.i++
	case p.keyword("DESC"):
		item.desc = true
		p.i++
	}
	return item, nil
}

func (p *parser) colRef() (colRef, error) {
	t := p.tok()
	switch t.kind {
	case tBracket:
		p.i++
		return colRef{at: t.at, col: t.text}, nil
	case tIdent, tQuoted:
		if b := p.peek(1); b.kind == tBracket {
			p.i += 2
			return colRef{at: t.at, table: t.text, qualified: true, col: b.text}, nil
		}
		if t.kind == tIdent && p.peek(1).kind == tLParen {
			return colRef{}, queryError(t.at, "The fake evaluates only column references here, not the function '%s'.", t.text)
		}
	}
	return colRef{}, p.unexpected()
}

func (p *parser) predicate() (predExpr, error) {
	l, err := p.conj()
	if err != nil {
		return nil, err
	}
	for p.tok().kind == tOp && p.tok().text == "||" {
		at := p.tok().at
		p.i++
		r, err := p.conj()
		if err != nil {
			return nil, err
		}
		l = &logicExpr{at: at, l: l, r: r}
	}
	return l, nil
}

func (p *parser) conj() (predExpr, error) {
	l, err := p.atom()
	if err != nil {
		return nil, err
	}
	for p.tok().kind == tOp && p.tok().text == "&&" {
		at := p.tok().at
		p.i++
		r, err := p.atom()
		if err != nil {
			return nil, err
		}
		l = &logicExpr{at: at, and: true, l: l, r: r}
	}
	return l, nil
}

func (p *parser) atom() (predExpr, error) {
	if p.tok().kind == tLParen {
		p.i++
		e, err := p.predicate()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen); err != nil {
			return nil, err
		}
		return e, nil
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := p.tok()
	if op.kind != tOp || op.text == "&&" || op.text == "||" {
		return nil, p.unexpected()
	}
	p.i++
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	return &cmpExpr{at: op.at, op: op.text, l: l, r: r}, nil
}

func (p *parser) operand() (operand, error) {
	t := p.tok()
	switch t.kind {
	case tBracket:
		c, err := p.colRef()
		return operand{col: &c}, err
	case tQuoted:
		c, err := p.colRef()
		return operand{col: &c}, err
	case tIdent:
		if p.peek(1).kind == tBracket {
			c, err := p.colRef()
			return operand{col: &c}, err
		}
	}
	l, err := p.literal()
	return operand{lit: l}, err
}

func (p *parser) literal() (*literal, error) {
	t := p.tok()
	switch t.kind {
	case tMinus:
		p.i++
		n := p.tok()
		if n.kind != tNumber {
			return nil, p.unexpected()
		}
		p.i++
		return numberLiteral(t.at, "-"+n.text), nil
	case tNumber:
		p.i++
		return numberLiteral(t.at, t.text), nil
	case tString:
		p.i++
		return &literal{at: t.at, v: cval{k: kStr, s: t.text}, kind: String}, nil
	case tDTLit:
		p.i++
		tm, err := parseDTLiteral(t.text)
		if err != nil {
			return nil, queryError(t.at, "Cannot convert value '%s' of type Text to type Date.", t.text)
		}
		return &literal{at: t.at, v: timeVal(tm), kind: DateTime}, nil
	case tIdent:
		switch strings.ToUpper(t.text) {
		case "TRUE", "FALSE":
			p.skipWord()
			return &literal{at: t.at, v: boolVal(strings.EqualFold(t.text, "TRUE")), kind: Bool}, nil
		case "BLANK":
			p.i++
			if _, err := p.expect(tLParen); err != nil {
				return nil, err
			}
			if _, err := p.expect(tRParen); err != nil {
				return nil, err
			}
			return &literal{at: t.at, v: cval{k: kBlank}}, nil
		case "DATE", "DATETIME":
			nargs := 3
			if strings.EqualFold(t.text, "DATETIME") {
				nargs = 6
			}
			p.i++
			if _, err := p.expect(tLParen); err != nil {
				return nil, err
			}
			var a [6]int
			for k := range nargs {
				if k > 0 {
					if _, err := p.expect(tComma); err != nil {
						return nil, err
					}
				}
				nt, err := p.expect(tNumber)
				if err != nil {
					return nil, err
				}
				v, err := strconv.Atoi(nt.text)
				if err != nil {
					return nil, syntaxError(nt.at, nt.raw, p.query)
				}
				a[k] = v
			}
			if _, err := p.expect(tRParen); err != nil {
				return nil, err
			}
			if a[0] < 1 || a[0] > 9999 {
				return nil, queryError(t.at, "An argument of function '%s' has the wrong data type or the result is too large or too small.", strings.ToUpper(t.text))
			}
			// Like DAX, out-of-range months, days and times roll over.
			tm := time.Date(a[0], time.Month(a[1]), a[2], a[3], a[4], a[5], 0, time.UTC)
			return &literal{at: t.at, v: timeVal(tm), kind: DateTime}, nil
		}
	}
	return nil, p.unexpected()
}

// numberLiteral makes an Int64 literal of a whole number that fits, else a
// Double one; a decimal with at most 4 fractional digits also keeps its exact
// scaled value so that Currency comparisons are exact.
func numberLiteral(at pos, text string) *literal {
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return &literal{at: at, v: cval{k: kInt, i: i}, kind: Int64}
	}
	f, _ := strconv.ParseFloat(text, 64)
	if d, ok := parseScaled(text); ok {
		return &literal{at: at, v: cval{k: kDec, i: d, f: f}, kind: Double}
	}
	if math.IsInf(f, 0) {
		f = math.Copysign(math.MaxFloat64, f)
	}
	return &literal{at: at, v: cval{k: kFloat, f: f}, kind: Double}
}

// parseDTLiteral parses the text of a dt"..." literal: a date, optionally
// followed by T or a space and a time with optional fraction.
func parseDTLiteral(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad date and time %q", s)
}
