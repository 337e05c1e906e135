package powerbi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pbicopy/pbicopy/source"
)

// DecodeStats describes a decoded response.
type DecodeStats struct {
	Rows  int64 // rows handed to the receiver
	Bytes int64 // bytes of the response body read
	// Label is the response's informationProtectionLabel, nil when it has
	// none.
	Label *source.Label
}

// LabelRefusedError is a response carrying a sensitivity label, decoded for
// a source that refuses labelled data (sensitivityLabels: refuse).
type LabelRefusedError struct{ Label *source.Label }

func (e *LabelRefusedError) Error() string {
	return fmt.Sprintf("the data carries the sensitivity label %s and source.powerbi.sensitivityLabels is refuse: nothing was published; query data without a label, or set sensitivityLabels: allow if the sinks may hold it", e.Label)
}

// Permanent: every partition of the dataset carries its label.
func (e *LabelRefusedError) Permanent() bool { return true }

// ServiceError is an error the service reported inside an HTTP 200 response,
// in one of the three error slots of an executeQueries body.
type ServiceError struct {
	Slot    string // "table", "result" or "response"
	Code    string
	Message string
	Details string // pbi.error detail texts, joined
	// ASCode is the AnalysisServicesErrorCode detail, when given: the
	// engine's error number, which Microsoft support asks for.
	ASCode string
	// Rows is the number of rows received before the slot; Before is set
	// when the slot came before the rows array (rows may have followed).
	Rows   int64
	Before bool
}

func (e *ServiceError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Details
	}
	if msg == "" {
		msg = "(no message)"
	}
	msg = clip(msg)
	var where string
	switch {
	case e.Before:
		where = "before the rows"
	case e.Rows == 0:
		where = "with no rows before it"
	default:
		where = fmt.Sprintf("after %d rows", e.Rows)
	}
	s := fmt.Sprintf("the service reported an error in the %s error slot, %s: %s", e.Slot, where, msg)
	if e.Code != "" {
		s += " (code " + clip(e.Code) + ")"
	}
	if e.ASCode != "" {
		s += " (AnalysisServicesErrorCode " + clip(e.ASCode) + ")"
	}
	if e.Truncated() {
		s += "; the result is incomplete and nothing was published: narrow the query or page it"
	}
	return s
}

// Truncated reports whether the error is the service's notice that the
// result was cut at one of its limits (rows, values or bytes).
func (e *ServiceError) Truncated() bool {
	m := strings.ToLower(e.Message + " " + e.Details)
	return strings.Contains(m, "more than") && (strings.Contains(m, "rows") || strings.Contains(m, "values")) ||
		strings.Contains(m, "truncat") || strings.Contains(m, "exceed")
}

// serviceErrorBody is the shape of an error slot. Everything is optional.
type serviceErrorBody struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	PBIError *struct {
		Code    string `json:"code"`
		Details []struct {
			Code   string `json:"code"`
			Detail struct {
				Value string `json:"value"`
			} `json:"detail"`
		} `json:"details"`
	} `json:"pbi.error"`
}

// details returns the detail texts of the pbi.error envelope, joined, and
// its AnalysisServicesErrorCode apart.
func (b *serviceErrorBody) details() (text, asCode string) {
	if b.PBIError == nil {
		return "", ""
	}
	var parts []string
	for _, d := range b.PBIError.Details {
		switch {
		case d.Detail.Value == "":
		case d.Code == "AnalysisServicesErrorCode":
			asCode = d.Detail.Value
		default:
			parts = append(parts, d.Detail.Value)
		}
	}
	return strings.Join(parts, "; "), asCode
}

// bomSkipper drops a leading UTF-8 byte-order mark.
func bomSkipper(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	return br
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// limits bound what the decoder accepts of a response, so that neither a
// broken service nor a hostile endpoint can make pbicopy read, hold or
// print without end.
type limits struct {
	// resultBytes is the service's per-query limit (MaxResultBytes): a
	// response that reaches it may have been cut silently and is refused
	// (*LimitError). 0 or less: none (nor the bounds derived from it).
	resultBytes int64
	// valueBytes bounds a single name or value, as raw JSON.
	valueBytes int64
	// errorBytes bounds an error slot (and the label), as raw JSON.
	errorBytes int64
	// refuseLabel fails a response carrying a sensitivity label with a
	// *LabelRefusedError, as soon as the label is read.
	refuseLabel bool
	// onLabel, when not nil, is told the label as soon as it is read.
	onLabel func(*source.Label)
}

// maxErrorSlotBytes bounds the raw JSON of one error slot. The service puts
// one-line notices there ("More than 100000 rows in a query result", about
// 100 bytes); 1 MiB is the bound readAPIError puts on a whole error answer.
const maxErrorSlotBytes = 1 << 20

// limitsFor returns the limits of a response under the per-query limit
// resultBytes (0: MaxResultBytes; < 0: none).
//
// A single value is bounded by the per-query limit too: a value that size
// makes its response reach the limit, which is refused anyway, so the bound
// refuses nothing that could be published. It caps what one value costs:
// the decoder's buffer and each copy made of it (builder, inference sample,
// pager) hold a value whole, and a 100 MiB string used to cost 1.2 GB.
func limitsFor(resultBytes int64) limits {
	switch {
	case resultBytes == 0:
		resultBytes = MaxResultBytes
	case resultBytes < 0:
		return limits{valueBytes: MaxResultBytes, errorBytes: maxErrorSlotBytes}
	}
	return limits{resultBytes: resultBytes, valueBytes: resultBytes, errorBytes: maxErrorSlotBytes}
}

// overrun is the offset past which no row of a response may start. The
// service stops after the row during which its count passes the limit. It
// may count 15 MB as 15 MiB, 4.9% above MaxResultBytes, and only the rows:
// 5% and 64 KiB for the envelope before the rows cover both. A response that
// goes on beyond is refused at once, instead of after reading all of it.
func (l limits) overrun() int64 {
	if l.resultBytes <= 0 {
		return 0
	}
	return l.resultBytes + l.resultBytes/20 + 64<<10
}

// ceiling is the offset past which nothing more is read: the row that
// crosses the overrun offset may carry one more value at most.
func (l limits) ceiling() int64 {
	if l.resultBytes <= 0 {
		return 0
	}
	return l.overrun() + l.valueBytes
}

// guardReader hands the body to the decoder, refusing a token (a name, a
// value, or a whole error slot) larger than its bound and a body past the
// ceiling. The decoder calls Read only when the token it is reading does not
// fit what it holds, and holds at most 4 KiB otherwise, so what it holds
// unread is the token in progress: the check costs one comparison per read.
type guardReader struct {
	r        io.Reader
	dec      *jsontext.Decoder
	read     int64 // bytes handed to the decoder
	maxToken int64
	ceiling  int64 // 0: none
}

// tokenTooLarge and pastCeiling are the guard's refusals; the decoder turns
// them into a *LimitError with the rows it had read.
type tokenTooLarge struct{ limit int64 }

func (e *tokenTooLarge) Error() string {
	return fmt.Sprintf("a single value is larger than %d bytes", e.limit)
}

type pastCeiling struct{ at int64 }

func (e *pastCeiling) Error() string {
	return fmt.Sprintf("the response goes on past byte %d", e.at)
}

func (g *guardReader) Read(p []byte) (int, error) {
	if g.read-g.dec.InputOffset() > g.maxToken {
		return 0, &tokenTooLarge{g.maxToken}
	}
	if g.ceiling > 0 && g.read > g.ceiling {
		return 0, &pastCeiling{g.ceiling}
	}
	n, err := g.r.Read(p)
	g.read += int64(n)
	return n, err
}

// Decode streams an executeQueries response body from r into recv: the rows
// of its single result table go to recv field by field, as they arrive; the
// body is never held in memory. A leading BOM is skipped. After the rows,
// all three error slots are checked: any error the service reported there
// (for example the truncation notice "More than 100000 rows in a query
// result") is returned as a *ServiceError, so the caller publishes nothing.
// A response that reaches the service's 15 MB limit (MaxResultBytes) may
// have been cut without notice and is refused with a *LimitError, as soon as
// it goes further than the service sends. An error from recv is returned
// unwrapped.
func Decode(r io.Reader, recv rowReceiver) (DecodeStats, error) {
	return decode(r, recv, limitsFor(0))
}

func decode(r io.Reader, recv rowReceiver, lim limits) (DecodeStats, error) {
	cr := &countingReader{r: r}
	g := &guardReader{r: bomSkipper(cr), maxToken: lim.valueBytes, ceiling: lim.ceiling()}
	d := &decoder{
		dec:    jsontext.NewDecoder(g, jsontext.AllowDuplicateNames(true)),
		recv:   recv,
		guard:  g,
		lim:    lim,
		stopAt: lim.overrun(),
	}
	g.dec = d.dec
	err := d.response()
	st := DecodeStats{Rows: d.rows, Bytes: cr.n, Label: d.label}
	if err != nil {
		var le *LimitError
		if errors.As(err, &le) {
			le.Bytes = cr.n
		}
		return st, err
	}
	if _, err := d.dec.ReadToken(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("unexpected data after the response object")
		}
		return st, fmt.Errorf("the response has trailing data after byte %d: %w", d.dec.InputOffset(), err)
	}
	for _, e := range []*ServiceError{d.tableErr, d.resultErr, d.topErr} {
		if e != nil {
			// A slot read before the rows array is "before the rows" only
			// if rows came after it.
			e.Before = e.Before && d.rows > 0
			return st, e
		}
	}
	if d.tables == 0 || !d.sawRows {
		return st, errors.New("the response has no result rows: expected results[0].tables[0].rows")
	}
	if lim.resultBytes > 0 && st.Bytes >= lim.resultBytes {
		return st, &LimitError{Bytes: st.Bytes, Rows: st.Rows, Limit: lim.resultBytes}
	}
	return st, nil
}

type decoder struct {
	dec    *jsontext.Decoder
	recv   rowReceiver
	rows   int64
	tables int
	guard  *guardReader
	lim    limits
	stopAt int64 // no row may start past this offset (limits.overrun); 0: none

	sawRows                     bool
	topErr, resultErr, tableErr *ServiceError
	label                       *source.Label
	nb                          []byte
}

// recvError marks errors from the receiver so they pass through unwrapped.
type recvError struct{ err error }

func (e recvError) Error() string { return e.err.Error() }

// BodyError is a failure to read or parse the response body itself, as
// opposed to an error of the receiver.
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

func (d *decoder) syntax(err error) error {
	var big *tokenTooLarge
	var past *pastCeiling
	switch {
	case errors.As(err, &big):
		return &LimitError{Rows: d.rows, Limit: d.lim.resultBytes, Value: big.limit}
	case errors.As(err, &past):
		return &LimitError{Rows: d.rows, Limit: d.lim.resultBytes, Overrun: true}
	}
	return &BodyError{d.describe(err)}
}

func (d *decoder) describe(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("the response ended early, after %d rows (%d bytes): %w", d.rows, d.dec.InputOffset(), io.ErrUnexpectedEOF)
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		rest := bytes.TrimLeft(d.dec.UnreadBuffer(), ",: \t\r\n")
		for _, tok := range []string{"NaN", "Infinity", "-Infinity"} {
			// The token may be cut by the end of what the decoder holds.
			if len(rest) > 0 && (bytes.HasPrefix(rest, []byte(tok)) || strings.HasPrefix(tok, string(rest))) {
				return fmt.Errorf("the response is not valid JSON near byte %d, after %d rows: a bare %s (JSON has no such number; write it as the string \"%s\", which a float64 column reads): %w", se.ByteOffset, d.rows, tok, tok, err)
			}
		}
		return fmt.Errorf("the response is not valid JSON near byte %d, after %d rows: %w", se.ByteOffset, d.rows, err)
	}
	return fmt.Errorf("read the response after %d rows: %w", d.rows, err)
}

// maxEnvelopeMembers bounds the members of an envelope object (the
// response, results[0], tables[0]). The service sends two or three
// (results, error, informationProtectionLabel; tables, error; rows,
// error); the bound keeps the duplicate check below cheap whatever comes.
const maxEnvelopeMembers = 64

// object walks the members of the envelope object whose '{' is next,
// calling member for each name; member must consume the value. A name given
// twice is refused: the decoder runs with duplicate names allowed (checking
// them costs 8% on the rows), and in the envelope a second "error": null
// would erase a truncation notice, a second "rows" add rows. Row objects
// are checked by the receiver (Builder).
func (d *decoder) object(what string, member func(name string) error) error {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return d.syntax(err)
	}
	if tok.Kind() != '{' {
		return fmt.Errorf("%s: expected an object, found %s", what, tok.Kind())
	}
	var seen [maxEnvelopeMembers]string
	n := 0
	for d.dec.PeekKind() != '}' {
		if d.dec.PeekKind() == 0 {
			_, err := d.dec.ReadToken()
			return d.syntax(err)
		}
		tok, err := d.dec.ReadToken()
		if err != nil {
			return d.syntax(err)
		}
		name := tok.String()
		if slices.Contains(seen[:n], name) {
			return &BodyError{fmt.Errorf("the response is malformed: %s has the member %q twice, so it is ambiguous (a second one could hide an error or add rows)", what, clip(name))}
		}
		if n == len(seen) {
			return &BodyError{fmt.Errorf("the response is malformed: %s has more than %d members", what, maxEnvelopeMembers)}
		}
		seen[n] = name
		n++
		if err := member(name); err != nil {
			return err
		}
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return d.syntax(err)
	}
	return nil
}

// array walks the elements of the array whose '[' is next.
func (d *decoder) array(what string, elem func(i int) error) error {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return d.syntax(err)
	}
	if tok.Kind() != '[' {
		return fmt.Errorf("%s: expected an array, found %s", what, tok.Kind())
	}
	for i := 0; ; i++ {
		switch d.dec.PeekKind() {
		case ']':
		case 0: // a read error: report it as such
			_, err := d.dec.ReadToken()
			return d.syntax(err)
		default:
			if err := elem(i); err != nil {
				return err
			}
			continue
		}
		break
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return d.syntax(err)
	}
	return nil
}

func (d *decoder) skip() error {
	if err := d.dec.SkipValue(); err != nil {
		return d.syntax(err)
	}
	return nil
}

// readLarge reads the next value whole, allowed up to the size of an
// error slot rather than of a cell; what names it and kind says what the
// service sends there, in the error for one larger still.
func (d *decoder) readLarge(what, kind string) (jsontext.Value, error) {
	d.guard.maxToken = d.lim.errorBytes
	v, err := d.dec.ReadValue()
	d.guard.maxToken = d.lim.valueBytes
	if err != nil {
		var big *tokenTooLarge
		if errors.As(err, &big) {
			return nil, &BodyError{fmt.Errorf("%s is larger than %d bytes: not %s the service sends", what, big.limit, kind)}
		}
		return nil, d.syntax(err)
	}
	return v, nil
}

func (d *decoder) errorSlot(slot string) (*ServiceError, error) {
	v, err := d.readLarge("the "+slot+" error slot", "an error")
	if err != nil {
		return nil, err
	}
	if v.Kind() == 'n' {
		return nil, nil
	}
	var body serviceErrorBody
	if err := json.Unmarshal(v, &body); err != nil {
		if errors.Is(err, jsontext.ErrDuplicateName) {
			return nil, &BodyError{fmt.Errorf("the response is malformed: its %s error slot is ambiguous: %s", slot, clip(err.Error()))}
		}
		// Keep whatever the service said, even in an unexpected shape.
		return &ServiceError{Slot: slot, Message: string(v), Rows: d.rows, Before: !d.sawRows}, nil
	}
	code := body.Code
	if code == "" && body.PBIError != nil {
		code = body.PBIError.Code
	}
	details, asCode := body.details()
	return &ServiceError{Slot: slot, Code: code, Message: body.Message, Details: details, ASCode: asCode, Rows: d.rows, Before: !d.sawRows}, nil
}

func (d *decoder) response() error {
	if d.dec.PeekKind() == 0 {
		// PeekKind reports an error as kind 0; ReadToken returns it.
		_, err := d.dec.ReadToken()
		if errors.Is(err, io.EOF) {
			return errors.New("the response body is empty")
		}
		return d.syntax(err)
	}
	err := d.object("response", func(name string) (err error) {
		switch name {
		case "results":
			return d.array("results", func(i int) error {
				if i > 0 {
					return errors.New("the response has more than one result: pbicopy sends exactly one query")
				}
				return d.result()
			})
		case "error":
			d.topErr, err = d.errorSlot("response")
			return err
		case "informationProtectionLabel":
			return d.readLabel()
		}
		return d.skip()
	})
	var re recvError
	if errors.As(err, &re) {
		return re.err
	}
	return err
}

func (d *decoder) result() error {
	return d.object("results[0]", func(name string) (err error) {
		switch name {
		case "tables":
			return d.array("results[0].tables", func(i int) error {
				if i > 0 {
					return errors.New("the result has more than one table: a query must return a single table")
				}
				d.tables++
				return d.table()
			})
		case "error":
			d.resultErr, err = d.errorSlot("result")
			return err
		}
		return d.skip()
	})
}

func (d *decoder) table() error {
	return d.object("results[0].tables[0]", func(name string) (err error) {
		switch name {
		case "rows":
			d.sawRows = true
			return d.rowsArray()
		case "error":
			d.tableErr, err = d.errorSlot("table")
			return err
		}
		return d.skip()
	})
}

// rowsArray is the hot loop: one object per row, raw names and values
// handed to the receiver without copying.
func (d *decoder) rowsArray() error {
	dec := d.dec
	tok, err := dec.ReadToken()
	if err != nil {
		return d.syntax(err)
	}
	if tok.Kind() != '[' {
		return fmt.Errorf("results[0].tables[0].rows: expected an array, found %s", tok.Kind())
	}
	for {
		switch dec.PeekKind() {
		case ']':
			if _, err := dec.ReadToken(); err != nil {
				return d.syntax(err)
			}
			return nil
		case '{':
			if d.stopAt > 0 && dec.InputOffset() > d.stopAt {
				// The service completes the row that crosses its limit,
				// then stops: this row is one it never sends.
				return &LimitError{Rows: d.rows, Limit: d.lim.resultBytes, Overrun: true}
			}
		case 0:
			_, err := dec.ReadToken()
			return d.syntax(err)
		default:
			return fmt.Errorf("row %d: expected an object, found %s", d.rows+1, dec.PeekKind())
		}
		if _, err := dec.ReadToken(); err != nil {
			return d.syntax(err)
		}
		for {
			k := dec.PeekKind()
			if k == '}' {
				break
			}
			if k == 0 {
				_, err := dec.ReadToken()
				return d.syntax(err)
			}
			name, err := dec.ReadValue()
			if err != nil {
				return d.syntax(err)
			}
			// The name is only valid until the next call on the decoder.
			nameCopy := d.nameBuf(name)
			if vk := dec.PeekKind(); vk == '{' || vk == '[' {
				return fmt.Errorf("row %d: key %s holds a nested %s; expected a scalar value", d.rows+1, displayValue(nameCopy), vk)
			}
			value, err := dec.ReadValue()
			if err != nil {
				return d.syntax(err)
			}
			if err := d.recv.Field(nameCopy, value); err != nil {
				return recvError{err}
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return d.syntax(err)
		}
		if err := d.recv.EndRow(); err != nil {
			return recvError{err}
		}
		d.rows++
	}
}

// nameBuf copies a row key aside: the decoder may reuse its buffer when it
// reads the value that follows.
func (d *decoder) nameBuf(name []byte) []byte {
	d.nb = append(d.nb[:0], name...)
	return d.nb
}

// readLabel reads the response's informationProtectionLabel: an object
// with the label's id and name (other members ignored), or a string taken
// as the name; null or an empty object is no label.
func (d *decoder) readLabel() error {
	v, err := d.readLarge("the informationProtectionLabel", "a label")
	if err != nil {
		return err
	}
	var l struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	switch v.Kind() {
	case 'n':
		return nil
	case '"':
		// Not the documented shape, but a label all the same.
		if err := json.Unmarshal(v, &l.Name); err != nil {
			return &BodyError{fmt.Errorf("the response is malformed: informationProtectionLabel: %w", err)}
		}
	case '{':
		if err := json.Unmarshal(v, &l); err != nil {
			return &BodyError{fmt.Errorf("the response is malformed: informationProtectionLabel is not a label with an id and a name: %s", clip(string(v)))}
		}
	default:
		return &BodyError{fmt.Errorf("the response is malformed: informationProtectionLabel is not a label with an id and a name: %s", clip(string(v)))}
	}
	if l.ID == "" && l.Name == "" {
		return nil // an empty label is none
	}
	d.label = &source.Label{ID: clip(l.ID), Name: clip(l.Name)}
	if d.lim.onLabel != nil {
		d.lim.onLabel(d.label)
	}
	if d.lim.refuseLabel {
		return recvError{&LabelRefusedError{Label: d.label}}
	}
	return nil
}
