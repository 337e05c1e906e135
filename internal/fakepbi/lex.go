package fakepbi

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// pos is a position in the query text, 1-based, counted in characters as
// DAX error messages count them.
type pos struct{ line, col int }

type tokKind int

const (
	tEOF     tokKind = iota
	tIdent           // EVALUATE, Sales, TOPN, ASC
	tQuoted          // 'Sales Data': text is the unescaped name
	tBracket         // [Order ID]: text is the unescaped name
	tString          // "text": text is the unescaped string
	tDTLit           // dt"2024-01-31T10:00:00": text is the string
	tNumber          // 12, 12.5, 1e3
	tLParen          // (
	tRParen          // )
	tComma           // ,
	tOp              // > >= < <= = == <> && ||
	tMinus           // -
)

// token is one lexeme. raw is the source text, quotes included, for syntax
// error messages.
type token struct {
	kind tokKind
	text string
	raw  string
	at   pos
}

// lexer splits a query into tokens. Whitespace and // -- /* */ comments
// separate tokens and are otherwise ignored.
type lexer struct {
	src       string
	off       int
	line, col int
}

// lex returns all tokens of src, ending with tEOF, or the first lexical error.
func lex(src string) ([]token, error) {
	lx := &lexer{src: src, line: 1, col: 1}
	var toks []token
	for {
		t, err := lx.next()
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		if t.kind == tEOF {
			return toks, nil
		}
	}
}

func (lx *lexer) peekRune(ahead int) rune {
	off := lx.off
	for ; ahead > 0 && off < len(lx.src); ahead-- {
		_, n := utf8.DecodeRuneInString(lx.src[off:])
		off += n
	}
	if off >= len(lx.src) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(lx.src[off:])
	return r
}

func (lx *lexer) advance() rune {
	r, n := utf8.DecodeRuneInString(lx.src[lx.off:])
	lx.off += n
	if r == '\n' {
		lx.line++
		lx.col = 1
	} else {
		lx.col++
	}
	return r
}

func (lx *lexer) skipSpaceAndComments() error {
	for lx.off < len(lx.src) {
		r := lx.peekRune(0)
		switch {
		case unicode.IsSpace(r) || r == '\uFEFF':
			lx.advance()
		case r == '/' && lx.peekRune(1) == '/', r == '-' && lx.peekRune(1) == '-':
			for lx.off < len(lx.src) && lx.peekRune(0) != '\n' {
				lx.advance()
			}
		case r == '/' && lx.peekRune(1) == '*':
			at := pos{lx.line, lx.col}
			lx.advance()
			lx.advance()
			for {
				if lx.off >= len(lx.src) {
					return queryError(at, "The comment is not terminated.")
				}
				if lx.peekRune(0) == '*' && lx.peekRune(1) == '/' {
					lx.advance()
					lx.advance()
					break
				}
				lx.advance()
			}
		default:
			return nil
		}
	}
	return nil
}

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }
func isIdentPart(r rune) bool {
	return r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r)
}
func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func (lx *lexer) next() (token, error) {
	if err := lx.skipSpaceAndComments(); err != nil {
		return token{}, err
	}
	at := pos{lx.line, lx.col}
	start := lx.off
	if lx.off >= len(lx.src) {
		return token{kind: tEOF, at: at}, nil
	}
	tok := func(k tokKind, text string) (token, error) {
		return token{kind: k, text: text, raw: lx.src[start:lx.off], at: at}, nil
	}
	r := lx.peekRune(0)
	switch {
	case (r == 'd' || r == 'D') && (lx.peekRune(1) == 't' || lx.peekRune(1) == 'T') && lx.peekRune(2) == '"':
		lx.advance()
		lx.advance()
		s, err := lx.quoted('"', at, "The string literal is not terminated.")
		if err != nil {
			return token{}, err
		}
		return tok(tDTLit, s)
	case isIdentStart(r):
		for lx.off < len(lx.src) && isIdentPart(lx.peekRune(0)) {
			lx.advance()
		}
		return tok(tIdent, lx.src[start:lx.off])
	case isDigit(r) || r == '.' && isDigit(lx.peekRune(1)):
		for isDigit(lx.peekRune(0)) {
			lx.advance()
		}
		if lx.peekRune(0) == '.' {
			lx.advance()
			for isDigit(lx.peekRune(0)) {
				lx.advance()
			}
		}
		if e := lx.peekRune(0); e == 'e' || e == 'E' {
			sign := lx.peekRune(1)
			if isDigit(sign) || (sign == '+' || sign == '-') && isDigit(lx.peekRune(2)) {
				lx.advance()
				lx.advance()
				for isDigit(lx.peekRune(0)) {
					lx.advance()
				}
			}
		}
		return tok(tNumber, lx.src[start:lx.off])
	case r == '\'':
		s, err := lx.quoted('\'', at, "The table name is not terminated.")
		if err != nil {
			return token{}, err
		}
		return tok(tQuoted, s)
	case r == '"':
		s, err := lx.quoted('"', at, "The string literal is not terminated.")
		if err != nil {
			return token{}, err
		}
		return tok(tString, s)
	case r == '[':
		s, err := lx.bracket(at)
		if err != nil {
			return token{}, err
		}
		return tok(tBracket, s)
	case r == '(':
		lx.advance()
		return tok(tLParen, "(")
	case r == ')':
		lx.advance()
		return tok(tRParen, ")")
	case r == ',':
		lx.advance()
		return tok(tComma, ",")
	case r == '-':
		lx.advance()
		return tok(tMinus, "-")
	case r == '>' || r == '<' || r == '=':
		lx.advance()
		if n := lx.peekRune(0); n == '=' || r == '<' && n == '>' {
			lx.advance()
		}
		return tok(tOp, lx.src[start:lx.off])
	case r == '&' && lx.peekRune(1) == '&', r == '|' && lx.peekRune(1) == '|':
		lx.advance()
		lx.advance()
		return tok(tOp, lx.src[start:lx.off])
	}
	lx.advance()
	return token{}, syntaxError(at, lx.src[start:lx.off], lx.src)
}

// quoted reads a literal delimited by q, in which a doubled q stands for
// one q.
func (lx *lexer) quoted(q rune, at pos, unterminated string) (string, error) {
	lx.advance()
	var b strings.Builder
	for {
		if lx.off >= len(lx.src) {
			return "", queryError(at, "%s", unterminated)
		}
		r := lx.advance()
		if r == q {
			if lx.peekRune(0) != q {
				return b.String(), nil
			}
			lx.advance()
		}
		b.WriteRune(r)
	}
}

// bracket reads a [column] name, in which ]] stands for ].
func (lx *lexer) bracket(at pos) (string, error) {
	lx.advance()
	var b strings.Builder
	for {
		if lx.off >= len(lx.src) {
			return "", queryError(at, "The column name is not terminated.")
		}
		r := lx.advance()
		if r == ']' {
			if lx.peekRune(0) != ']' {
				return b.String(), nil
			}
			lx.advance()
		}
		b.WriteRune(r)
	}
}
