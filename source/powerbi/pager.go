package powerbi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/source"
)

// maxPageCuts is how many times in a row a page may break off before the
// partition fails.
const maxPageCuts = 3

// pager extracts a table page by page on a unique key.
type pager struct {
	table, key string
	keyType    mapping.Type // zero: judged from the values
	n          int          // page size; 0: auto
	auto       bool
	columns    int // mapped columns, 0 when inferred
	exec       execFunc
	log        *slog.Logger
	progress   func(pages int, rows int64)
}

// pageStats is what a paged extract did.
type pageStats struct {
	QueryStats
	Pages     int
	Truncated int // pages cut by a service limit and continued smaller
	Cuts      int // pages whose body broke off and were continued
	// Retries are the HTTP retries (throttling, server errors) over all
	// pages, and the requests that continued a page that broke off.
	Retries    int
	FinalPageN int
}

// run fetches every page into recv.
func (p *pager) run(ctx context.Context, recv rowReceiver) (pageStats, error) {
	pr := &pageReceiver{next: recv, key: quoteKey(p.key), keyName: p.key, keyType: p.keyType}
	var st pageStats
	n := p.n
	if p.auto {
		n = source.AutoPageRows(p.columns)
		if p.columns == 0 {
			n = source.FirstPageRows
		}
	}
	cuts := 0
	for {
		dax := source.FirstPageQuery(n, p.table, p.key)
		if pr.last != nil {
			dax = source.NextPageQuery(n, p.table, p.key, pr.lastLiteral)
		}
		before := pr.rows
		qs, err := p.exec(ctx, dax, pr)
		page := st.Pages + 1 // a page that broke off is continued under its number
		st.Rows += qs.Rows
		st.Bytes += qs.Bytes
		st.Attempts += qs.Attempts
		st.Retries += max(qs.Attempts-1, 0)
		st.Throttled += qs.Throttled
		st.ThrottledWait += qs.ThrottledWait
		st.BackedOff += qs.BackedOff
		st.BackoffWait += qs.BackoffWait
		st.RequestID = qs.RequestID
		if qs.Label != nil {
			st.Label = qs.Label
		}
		got := pr.rows - before
		var se *ServiceError
		var le *LimitError
		switch {
		case err == nil:
			cuts = 0
			st.Pages++
			if pe, ok := recv.(interface{ EndPage() error }); ok {
				// An inferring receiver decides the types from the first page.
				if err := pe.EndPage(); err != nil {
					return st, err
				}
			}
		case errors.As(err, &se) && se.Truncated(), errors.As(err, &le):
			// The rows received are a correct prefix of the page (the
			// service completes the row it is on): keep them and fetch the
			// rest of the page, smaller. A response refused mid-row leaves
			// that row incomplete: drop it.
			pr.discardRow()
			st.Pages++
			st.Truncated++
			p.pageDone(st.Pages, pr.rows)
			if n == 1 {
				return st, fmt.Errorf("page %d: a single row exceeds the service's limits: %w", page, err)
			}
			n = max(1, n/2)
			p.log.Warn("page cut by a service limit; continuing after the last row with a smaller page",
				"page", page, "rows", got, "pageRows", n, "requestId", qs.RequestID, "reason", err.Error())
			continue
		case source.Retryable(err):
			// The body broke off: drop the half-read row, continue after
			// the last complete one. The continuation is a retry of the
			// page, not a page of its own.
			pr.discardRow()
			st.Cuts++
			if cuts++; cuts > maxPageCuts {
				return st, fmt.Errorf("page %d broke off %d times in a row: %w", page, cuts, err)
			}
			st.Retries++
			st.BackedOff++
			p.log.Warn("page broke off; continuing after the last complete row", "page", page, "rows", got, "error", err.Error())
			continue
		default:
			return st, fmt.Errorf("page %d: %w", page, err)
		}
		p.pageDone(st.Pages, pr.rows)
		if got < int64(n) {
			break
		}
		if p.auto && pr.width > 0 && st.Truncated == 0 {
			// Size the next pages by the columns the rows really carry
			// (unless a cut has shown the pages must be smaller).
			n = source.AutoPageRows(pr.width)
		}
	}
	st.FinalPageN = n
	return st, nil
}

// pageDone reports a page read, if anyone listens.
func (p *pager) pageDone(pages int, rows int64) {
	if p.progress != nil {
		p.progress(pages, rows)
	}
}

// pageReceiver sits between the decoder and the mapping: it holds each row
// until it is complete, checks that the key strictly increases, and
// remembers the last key for the next page's filter.
type pageReceiver struct {
	next    rowReceiver
	key     []byte // the key as a raw JSON string
	keyName string
	keyType mapping.Type

	fields      [][2]int // offsets of key and value in buf
	buf         []byte
	keyVal      []byte // this row's key value (in buf)
	width       int    // fields in the first row
	rows        int64
	last        []byte // the last row's raw key value
	lastLiteral string
}

func quoteKey(k string) []byte {
	b, err := jsontext.AppendQuote(nil, k)
	if err != nil {
		return []byte(strconv.Quote(k))
	}
	return b
}

func (r *pageReceiver) Field(key, value []byte) error {
	ko := len(r.buf)
	r.buf = append(r.buf, key...)
	vo := len(r.buf)
	r.buf = append(r.buf, value...)
	r.fields = append(r.fields, [2]int{ko, vo})
	if bytes.Equal(key, r.key) || bytes.IndexByte(key, '\\') >= 0 && r.isKeyEscaped(key) {
		r.keyVal = r.buf[vo:len(r.buf):len(r.buf)]
	}
	return nil
}

// isKeyEscaped reports whether a key sent with escapes is the paging key.
func (r *pageReceiver) isKeyEscaped(key []byte) bool {
	k, err := unquote(key)
	return err == nil && k == r.keyName
}

func (r *pageReceiver) discardRow() {
	r.fields, r.buf, r.keyVal = r.fields[:0], r.buf[:0], nil
}

func (r *pageReceiver) EndRow() error {
	defer r.discardRow()
	row := r.rows + 1
	if r.keyVal == nil || len(r.keyVal) == 0 || r.keyVal[0] == 'n' {
		return fmt.Errorf("row %d: the paging key %s is missing or null: paging needs a unique key with a value in every row", row, r.keyName)
	}
	if r.last != nil {
		if c, err := compareKeys(r.keyVal, r.last); err != nil {
			return fmt.Errorf("row %d: paging key %s: %w", row, r.keyName, err)
		} else if c <= 0 {
			what := "repeats"
			if c < 0 {
				what = "is lower than the one before"
			}
			return fmt.Errorf("row %d: paging key %s value %s %s (%s): the key must be unique and increasing, or rows would be lost between pages", row, r.keyName, displayValue(r.keyVal), what, displayValue(r.last))
		}
	}
	end := len(r.buf)
	for i, f := range r.fields {
		vEnd := end
		if i+1 < len(r.fields) {
			vEnd = r.fields[i+1][0]
		}
		if err := r.next.Field(r.buf[f[0]:f[1]], r.buf[f[1]:vEnd]); err != nil {
			return err
		}
	}
	if err := r.next.EndRow(); err != nil {
		return err
	}
	if r.rows == 0 {
		r.width = len(r.fields)
	}
	r.rows++
	r.last = append(r.last[:0], r.keyVal...)
	lit, err := keyLiteral(r.last, r.keyType)
	if err != nil {
		return fmt.Errorf("row %d: paging key %s: %w", row, r.keyName, err)
	}
	r.lastLiteral = lit
	return nil
}

// compareKeys orders two raw JSON key values: numbers numerically, strings
// without regard to ASCII case (as DAX compares text).
func compareKeys(a, b []byte) (int, error) {
	switch {
	case a[0] == '"' && b[0] == '"':
		// Text sorts by the model's collation, which pbicopy cannot
		// reproduce: rely on ORDER BY for the order and catch repeats
		// (compared without case, as DAX compares text).
		x, err1 := unquote(a)
		y, err2 := unquote(b)
		if err1 != nil || err2 != nil {
			return 0, errors.New("bad string")
		}
		if strings.EqualFold(x, y) {
			return 0, nil
		}
		return 1, nil
	case a[0] != '"' && b[0] != '"':
		if x, err := strconv.ParseInt(string(a), 10, 64); err == nil {
			if y, err := strconv.ParseInt(string(b), 10, 64); err == nil {
				switch {
				case x < y:
					return -1, nil
				case x > y:
					return 1, nil
				}
				return 0, nil
			}
		}
		x, ok1 := new(big.Rat).SetString(string(a))
		y, ok2 := new(big.Rat).SetString(string(b))
		if !ok1 || !ok2 {
			return 0, errors.New("the key is not a number or a string")
		}
		return x.Cmp(y), nil
	}
	return 0, errors.New("the key mixes numbers and strings")
}

func unquote(raw []byte) (string, error) {
	b, err := jsontext.AppendUnquote(nil, raw)
	return string(b), err
}

// keyLiteral renders a raw key value as a DAX literal for the next page's
// filter: numbers as they are, date-times as DATETIME(...) plus the
// fraction of a second, other strings quoted.
func keyLiteral(raw []byte, t mapping.Type) (string, error) {
	if raw[0] != '"' {
		return string(raw), nil
	}
	s, err := unquote(raw)
	if err != nil {
		return "", err
	}
	if t.Kind == mapping.String {
		return source.DAXString(s), nil
	}
	if ts, ok := parseISODateTime(s); ok {
		lit := fmt.Sprintf("DATETIME(%d, %d, %d, %d, %d, %d)", ts.Year(), int(ts.Month()), ts.Day(), ts.Hour(), ts.Minute(), ts.Second())
		if ns := ts.Nanosecond(); ns != 0 {
			// DAX date-times are days; add the fraction of a second.
			lit = fmt.Sprintf("(%s + %s / 86400)", lit, strconv.FormatFloat(float64(ns)/1e9, 'f', -1, 64))
		}
		return lit, nil
	}
	return source.DAXString(s), nil
}

func parseISODateTime(s string) (time.Time, bool) {
	s = strings.TrimSuffix(s, "Z")
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
