package powerbi

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/go-json-experiment/json"
)

// ArrowContentType is the media type of executeDaxQueries answers.
const ArrowContentType = "application/vnd.apache.arrow.stream"

// DaxQuery is one executeDaxQueries request.
type DaxQuery struct {
	Workspace        string // group id; "" for My workspace
	Dataset          string
	DAX              string
	ImpersonatedUser string
	// RowLimit is resultsetRowcountLimit: the most rows the service
	// returns (0: no limit).
	RowLimit int
	// SchemaOnly asks for the schema of the result, without rows.
	SchemaOnly bool
	// QueryTimeout is queryTimeout: the seconds the service may run the
	// query before it cancels it (0: the service's default).
	QueryTimeout int
}

type executeDaxQueriesRequest struct {
	Query            string `json:"query"`
	RowLimit         int    `json:"resultsetRowcountLimit,omitempty"`
	SchemaOnly       bool   `json:"schemaOnly,omitempty"`
	ImpersonatedUser string `json:"impersonatedUserName,omitempty"`
	QueryTimeout     int    `json:"queryTimeout,omitempty"`
}

// ArrowReceiver takes the result of an executeDaxQueries request.
type ArrowReceiver interface {
	// Schema is the Arrow schema of the result, before its first batch.
	Schema(schema *arrow.Schema) error
	// Batch is one batch of the result, lent for the call: retain what
	// is kept after it returns.
	Batch(rec arrow.RecordBatch) error
}

// ExecuteDaxQuery runs q through the executeDaxQueries API and streams its
// result into recv, reading the Arrow IPC streams of the body as they come
// (buffers allocated from mem; the body is never held). The request goes
// through the same pipeline as ExecuteQuery (rate limiter, retries with
// Retry-After, timeouts, redirects, token renewal) and fails the same ways,
// and also with a *DaxError for the error rowset the service answers a
// failed query with, and a *ResultsetsError for a query with more than one
// EVALUATE. A rowset of execution metrics is logged (debug) and skipped.
func (p *Client) ExecuteDaxQuery(ctx context.Context, q DaxQuery, mem memory.Allocator, recv ArrowReceiver) (QueryStats, error) {
	body, err := json.Marshal(executeDaxQueriesRequest{Query: q.DAX, RowLimit: q.RowLimit, SchemaOnly: q.SchemaOnly, ImpersonatedUser: q.ImpersonatedUser, QueryTimeout: q.QueryTimeout})
	if err != nil {
		return QueryStats{}, err
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	const op = "executeDaxQueries"
	st := &attemptStats{}
	ctx = context.WithValue(context.WithValue(ctx, attemptKey{}, st), queryKey{}, true)
	resp, err := p.send(ctx, op, p.queryURL(q.Workspace, q.Dataset, op), body, ArrowContentType)
	if err != nil {
		return p.stats(st, DecodeStats{}), err
	}
	p.log.Debug(op+" answered", "requestId", st.requestID, "attempts", st.attempts)
	wb := &watchedReader{r: progressBody(ctx, resp.Body)}
	ds, err := readArrowStreams(bufio.NewReaderSize(wb, 64<<10), mem, recv, p.log)
	resp.Body.Close()
	ds.Bytes = wb.n
	if err == nil {
		return p.stats(st, ds), nil
	}
	var re recvError
	var de *DaxError
	var rs *ResultsetsError
	var stall *StallError
	switch {
	case errors.As(err, &re):
		err = re.err // the receiver's own error, as it is
	case ctx.Err() != nil:
		// The caller gave up.
	case errors.As(wb.err, &stall):
		err = &StallError{Phase: stall.Phase, Timeout: stall.Timeout, Waited: stall.Waited, Rows: ds.Rows, RequestID: st.requestID}
	case wb.err != nil:
		// The body failed before the streams ended: read again.
		err = &StreamError{Err: fmt.Errorf("%w (%v)", err, wb.err), RequestID: st.requestID}
	case errors.Is(err, errNoEOS) || wb.eof && errors.Is(err, io.ErrUnexpectedEOF):
		// The body ended before the stream did.
		err = &StreamError{Err: err, RequestID: st.requestID}
	case errors.As(err, &de):
		de.RequestID = st.requestID
	case errors.As(err, &rs):
		rs.RequestID = st.requestID
	default:
		err = fmt.Errorf("%s: %w%s", op, err, requestIDNote(st.requestID))
	}
	return p.stats(st, ds), err
}

// watchedReader counts the bytes read and keeps the first error other than
// io.EOF, and whether the body ended (so that an Arrow stream cut short
// by a clean end of body is told from a malformed one).
type watchedReader struct {
	r   io.Reader
	n   int64
	err error
	eof bool
}

func (w *watchedReader) Read(b []byte) (int, error) {
	n, err := w.r.Read(b)
	w.n += int64(n)
	switch {
	case err == io.EOF:
		w.eof = true
	case err != nil && w.err == nil:
		w.err = err
	}
	return n, err
}

// The schema metadata keys of executeDaxQueries' special rowsets.
const (
	metaIsError       = "IsError"
	metaFaultCode     = "FaultCode"
	metaFaultString   = "FaultString"
	metaIsExecMetrics = "IsExecMetrics"
)

// metaTrue reports whether key is "true" in md (any case).
func metaTrue(md arrow.Metadata, key string) bool {
	v, ok := metaValue(md, key)
	return ok && strings.EqualFold(strings.TrimSpace(v), "true")
}

// metaValue is the value of key in md, its name compared without case.
func metaValue(md arrow.Metadata, key string) (string, bool) {
	for i, k := range md.Keys() {
		if strings.EqualFold(k, key) {
			return md.Values()[i], true
		}
	}
	return "", false
}

// readArrowStreams reads the concatenated Arrow IPC streams of br, a new
// reader for each, handing the one data rowset to recv.
func readArrowStreams(br *bufio.Reader, mem memory.Allocator, recv ArrowReceiver, log *slog.Logger) (DecodeStats, error) {
	var ds DecodeStats
	data := 0
	for n := 1; ; n++ {
		if _, err := br.Peek(1); err == io.EOF {
			break
		} else if err != nil {
			return ds, err
		}
		tr := &tailReader{r: br}
		rd, err := ipc.NewReader(tr, ipc.WithAllocator(mem))
		if err != nil {
			return ds, fmt.Errorf("the Arrow stream %d of the response could not be read: %w", n, err)
		}
		md := rd.Schema().Metadata()
		switch {
		case metaTrue(md, metaIsError):
			err := readErrorRowset(rd)
			rd.Release()
			return ds, err
		case metaTrue(md, metaIsExecMetrics):
			err := logMetrics(rd, log)
			rd.Release()
			if err != nil {
				return ds, fmt.Errorf("the execution metrics of the response could not be read: %w", err)
			}
			continue
		}
		if data++; data > 1 {
			for rd.Next() { // to the end of this stream, to count the next ones
			}
			rd.Release()
			return ds, &ResultsetsError{Count: data + countDataStreams(br, mem)}
		}
		if err := recv.Schema(rd.Schema()); err != nil {
			rd.Release()
			return ds, recvError{err}
		}
		for rd.Next() {
			rec := rd.RecordBatch()
			if err := recv.Batch(rec); err != nil {
				rd.Release()
				return ds, recvError{err}
			}
			ds.Rows += rec.NumRows()
		}
		err = rd.Err()
		rd.Release()
		if err != nil {
			return ds, fmt.Errorf("the Arrow stream %d of the response broke off after %d rows: %w", n, ds.Rows, err)
		}
		if tr.tail != eos {
			return ds, fmt.Errorf("the Arrow stream %d of the response ended after %d rows %w", n, ds.Rows, errNoEOS)
		}
	}
	if data == 0 {
		return ds, errors.New("the response holds no result: no Arrow stream of data came")
	}
	return ds, nil
}

// countDataStreams reads the rest of br and counts its data rowsets.
func countDataStreams(br *bufio.Reader, mem memory.Allocator) int {
	n := 0
	for {
		if _, err := br.Peek(1); err != nil {
			return n
		}
		rd, err := ipc.NewReader(br, ipc.WithAllocator(mem))
		if err != nil {
			return n
		}
		md := rd.Schema().Metadata()
		if !metaTrue(md, metaIsError) && !metaTrue(md, metaIsExecMetrics) {
			n++
		}
		for rd.Next() {
		}
		err = rd.Err()
		rd.Release()
		if err != nil {
			return n
		}
	}
}

// eos is the end-of-stream marker of the Arrow IPC stream format: a
// continuation token and a zero length.
var eos = [8]byte{0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0}

// errNoEOS is a stream that ended without its end-of-stream marker: the
// body ended at a message boundary, so rows may be missing.
var errNoEOS = errors.New("without its end-of-stream marker")

// tailReader keeps the last 8 bytes read through it (the Arrow reader reads
// exactly the messages it needs, so after a stream they are its end).
type tailReader struct {
	r    io.Reader
	tail [8]byte
}

func (t *tailReader) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if n >= 8 {
		copy(t.tail[:], b[n-8:n])
	} else if n > 0 {
		copy(t.tail[:], t.tail[n:])
		copy(t.tail[8-n:], b[:n])
	}
	return n, err
}

// ResultsetsError is a query whose answer holds more than one result (one
// per EVALUATE): a job writes one table.
type ResultsetsError struct {
	Count     int
	RequestID string
}

func (e *ResultsetsError) Error() string {
	return fmt.Sprintf("executeDaxQueries: the query returned %d results (one per EVALUATE), and a job writes one: keep one EVALUATE in the query, or make one job per result%s",
		e.Count, requestIDNote(e.RequestID))
}

// Permanent reports that every partition would meet it.
func (e *ResultsetsError) Permanent() bool { return true }

// DaxError is the error rowset of an executeDaxQueries answer: the query
// failed (HTTP 200 with the error in an Arrow stream).
type DaxError struct {
	Code        string // ErrorCode
	Message     string // ErrorMessage
	Description string // ErrorDescription
	FaultCode   string // schema metadata FaultCode (hexadecimal)
	FaultString string // schema metadata FaultString
	RequestID   string
}

func (e *DaxError) Error() string {
	msg := strings.TrimRight(clip(cmp.Or(e.Message, e.FaultString, e.Description, "(no message)")), ". ")
	var codes []string
	if e.Code != "" {
		codes = append(codes, "ErrorCode "+clip(e.Code))
	}
	if e.FaultCode != "" {
		codes = append(codes, "FaultCode "+clip(e.FaultCode))
	}
	s := "executeDaxQueries: the query failed: " + msg
	if len(codes) > 0 {
		s += " (" + strings.Join(codes, ", ") + ")"
	}
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "xmla"):
		s += ". executeDaxQueries needs the workspace on a capacity (Premium, Fabric or Embedded) and the tenant setting \"Allow XMLA endpoints and Analyze in Excel with on-premises semantic models\" on; or use api: executeQueries"
	default:
		s += ". Fix the query (test it in DAX Studio or Power BI Desktop)"
	}
	return s + requestIDNote(e.RequestID)
}

// Permanent reports that the same query fails again.
func (e *DaxError) Permanent() bool { return true }

// readErrorRowset reads the error rowset of rd into a *DaxError.
func readErrorRowset(rd *ipc.Reader) error {
	md := rd.Schema().Metadata()
	e := &DaxError{}
	e.FaultCode, _ = metaValue(md, metaFaultCode)
	e.FaultString, _ = metaValue(md, metaFaultString)
	if rd.Next() {
		rec := rd.RecordBatch()
		if rec.NumRows() > 0 {
			for i, f := range rec.Schema().Fields() {
				text, ok := textAt(rec.Column(i), 0)
				if !ok {
					continue
				}
				switch {
				case strings.EqualFold(f.Name, "ErrorCode"):
					e.Code = text
				case strings.EqualFold(f.Name, "ErrorMessage"):
					e.Message = text
				case strings.EqualFold(f.Name, "ErrorDescription"):
					e.Description = text
				}
			}
		}
	}
	return e
}

// logMetrics logs the rows of an execution-metrics rowset at debug level.
func logMetrics(rd *ipc.Reader, log *slog.Logger) error {
	for rd.Next() {
		rec := rd.RecordBatch()
		for r := range int(rec.NumRows()) {
			attrs := make([]any, 0, 2*rec.NumCols())
			for c, f := range rec.Schema().Fields() {
				text, _ := textAt(rec.Column(c), r)
				attrs = append(attrs, f.Name, text)
			}
			log.Debug("executeDaxQueries execution metrics", attrs...)
		}
	}
	return rd.Err()
}

// textAt is value i of arr as text; false for a null.
func textAt(arr arrow.Array, i int) (string, bool) {
	if i >= arr.Len() || arr.IsNull(i) {
		return "", false
	}
	return arr.ValueStr(i), true
}
