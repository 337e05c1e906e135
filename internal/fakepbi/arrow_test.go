package fakepbi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func daxURL(srv *Server) string {
	o := srv.Options()
	return srv.URL() + "/v1.0/myorg/groups/" + o.WorkspaceID + "/datasets/" + o.DatasetID + "/executeDaxQueries"
}

func daxBody(query string, extra map[string]any) string {
	m := map[string]any{"query": query}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// arrowStream is one decoded stream of an executeDaxQueries body.
type arrowStream struct {
	schema *arrow.Schema
	rows   int64
	recs   []arrow.RecordBatch
}

// readStreams reads every concatenated stream of body with arrow-go's
// reader (a new reader per stream), checking that nothing leaks.
func readStreams(t *testing.T, body []byte) []arrowStream {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	br := bufio.NewReader(bytes.NewReader(body))
	var out []arrowStream
	for {
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
		r, err := ipc.NewReader(br, ipc.WithAllocator(mem))
		if err != nil {
			t.Fatalf("stream %d: %v", len(out), err)
		}
		s := arrowStream{schema: r.Schema()}
		for r.Next() {
			rec := r.RecordBatch()
			rec.Retain()
			s.recs = append(s.recs, rec)
			s.rows += rec.NumRows()
		}
		if err := r.Err(); err != nil {
			t.Fatalf("stream %d: %v", len(out), err)
		}
		r.Release()
		out = append(out, s)
	}
	t.Cleanup(func() {
		for _, s := range out {
			for _, r := range s.recs {
				r.Release()
			}
		}
		mem.AssertSize(t, 0)
	})
	return out
}

func runDax(t *testing.T, srv *Server, tok, query string, extra map[string]any) []arrowStream {
	t.Helper()
	resp, b := post(t, srv.Client(), daxURL(srv), tok, daxBody(query, extra))
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d: %s", query, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != ArrowContentType {
		t.Errorf("Content-Type %q", ct)
	}
	if resp.Header.Get("RequestId") == "" {
		t.Error("no RequestId")
	}
	return readStreams(t, b)
}

func TestArrowTypesAndValues(t *testing.T) {
	when := time.Date(2024, 2, 29, 13, 45, 6, 789_000_000, time.UTC)
	tab := &Table{
		Name: "T",
		Columns: []Column{
			{"I", Int64}, {"D", Double}, {"C", Currency}, {"S", String}, {"B", Bool}, {"W", DateTime},
		},
		Rows: 3,
		Value: func(i, c int) any {
			if i == 2 {
				return nil
			}
			return []any{int64(-7 + i), 2.5, Decimal("12.3456"), []string{"a", "b"}[i], i == 0, when}[c]
		},
	}
	srv := startServer(t, Options{Tables: []*Table{tab}})
	streams := runDax(t, srv, getToken(t, srv), "EVALUATE T", nil)
	if len(streams) != 1 || streams[0].rows != 3 {
		t.Fatalf("streams %d", len(streams))
	}
	s := streams[0]
	want := []string{"T[I]: int64", "T[D]: float64", "T[C]: decimal(19, 4)", "T[S]: dictionary<values=utf8, indices=int32, ordered=false>", "T[B]: bool", "T[W]: date64"}
	for i, f := range s.schema.Fields() {
		if got := f.Name + ": " + f.Type.String(); got != want[i] {
			t.Errorf("field %d: %s, want %s", i, got, want[i])
		}
	}
	rec := s.recs[0]
	if v := rec.Column(0).(*array.Int64).Value(1); v != -6 {
		t.Errorf("int %d", v)
	}
	if v := rec.Column(2).(*array.Decimal128).Value(0); v != decimal128.FromI64(123456) {
		t.Errorf("currency %v", v)
	}
	d := rec.Column(3).(*array.Dictionary)
	if v := d.Dictionary().(*array.String).Value(d.GetValueIndex(1)); v != "b" {
		t.Errorf("string %q", v)
	}
	if v := rec.Column(5).(*array.Date64).Value(0); v != arrow.Date64(when.UnixMilli()) {
		t.Errorf("datetime %d, want %d", v, when.UnixMilli())
	}
	for c := range 6 {
		if !rec.Column(c).IsNull(2) {
			t.Errorf("column %d row 2 is not null", c)
		}
	}
}

func TestArrowStreamsLimitsAndMetrics(t *testing.T) {
	srv := startServer(t, Options{Tables: []*Table{BenchTable(2500)}, ArrowBatchRows: 1000, ExecMetrics: true})
	tok := getToken(t, srv)

	streams := runDax(t, srv, tok, "EVALUATE Sales", nil)
	if len(streams) != 2 || streams[0].rows != 2500 || len(streams[0].recs) != 3 {
		t.Fatalf("got %d streams", len(streams))
	}
	if v, _ := streams[1].schema.Metadata().GetValue(MetaIsExecMetrics); v != "true" {
		t.Errorf("second stream is not exec metrics: %v", streams[1].schema.Metadata())
	}

	streams = runDax(t, srv, tok, "EVALUATE Sales", map[string]any{"resultsetRowcountLimit": 1500})
	if streams[0].rows != 1500 {
		t.Errorf("rowcount limit: %d rows", streams[0].rows)
	}
	streams = runDax(t, srv, tok, "EVALUATE Sales", map[string]any{"schemaOnly": true})
	if streams[0].rows != 0 || streams[0].schema.NumFields() != 10 {
		t.Errorf("schemaOnly: %d rows, %d fields", streams[0].rows, streams[0].schema.NumFields())
	}
	streams = runDax(t, srv, tok, "EVALUATE TOPN(5, Sales, Sales[OrderID], ASC)\nEVALUATE Sales", nil)
	if len(streams) != 3 || streams[0].rows != 5 || streams[1].rows != 2500 {
		t.Errorf("two EVALUATEs: %d streams", len(streams))
	}
	q := srv.Queries()
	last := q[len(q)-1]
	if last.API != "executeDaxQueries" || q[1].RowLimit != 1500 || !q[2].SchemaOnly {
		t.Errorf("recorded %+v", last)
	}
}

func TestArrowErrorRowset(t *testing.T) {
	srv := startServer(t, Options{})
	streams := runDax(t, srv, getToken(t, srv), "EVALUATE Nope", nil)
	if len(streams) != 1 {
		t.Fatalf("%d streams", len(streams))
	}
	md := streams[0].schema.Metadata()
	isErr, _ := md.GetValue(MetaIsError)
	fault, _ := md.GetValue(MetaFaultString)
	if isErr != "true" || !strings.Contains(fault, "Nope") {
		t.Errorf("metadata %v", md)
	}
	rec := streams[0].recs[0]
	if msg := rec.Column(1).(*array.String).Value(0); !strings.Contains(msg, "Failed to resolve name 'Nope'") {
		t.Errorf("ErrorMessage %q", msg)
	}
}

func TestArrowSharesTheFaults(t *testing.T) {
	srv := startServer(t, Options{})
	tok := getToken(t, srv)
	srv.Throttle(1, time.Second)
	resp, _ := post(t, srv.Client(), daxURL(srv), tok, daxBody("EVALUATE Sales", nil))
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("throttle: %d", resp.StatusCode)
	}
	resp, _ = post(t, srv.Client(), daxURL(srv), "", daxBody("EVALUATE Sales", nil))
	if resp.StatusCode != 401 {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	resp, _ = post(t, srv.Client(), daxURL(srv), tok, `{"query": ""}`)
	if resp.StatusCode != 400 {
		t.Errorf("no query: %d", resp.StatusCode)
	}
	srv.CutBody(1, 300)
	hreq, _ := http.NewRequest(http.MethodPost, daxURL(srv), strings.NewReader(daxBody("EVALUATE Sales", nil)))
	hreq.Header.Set("Authorization", "Bearer "+tok)
	r, err := srv.Client().Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r.Body)
	r.Body.Close()
	if err == nil {
		t.Error("a cut body read to the end without an error")
	}
}

func TestWriteArrowResponseEqualsHTTPBody(t *testing.T) {
	tables := []*Table{BenchTable(3000)}
	srv := startServer(t, Options{Tables: tables})
	_, body := post(t, srv.Client(), daxURL(srv), getToken(t, srv), daxBody("EVALUATE Sales", nil))
	var buf bytes.Buffer
	if err := WriteArrowResponse(&buf, tables, "EVALUATE Sales", Options{}); err != nil {
		t.Fatal(err)
	}
	a, b := readStreams(t, body), readStreams(t, buf.Bytes())
	if len(a) != 1 || len(b) != 1 || !array.RecordEqual(a[0].recs[0], b[0].recs[0]) {
		t.Error("WriteArrowResponse differs from the served body")
	}
}

// TestPrerenderReplaysTheSameBytes checks that a prerendered answer is the
// rendered one byte for byte, through both APIs, that requests with other
// options are still rendered, and that faults still apply to a replay.
func TestPrerenderReplaysTheSameBytes(t *testing.T) {
	srv := startServer(t, Options{Tables: []*Table{BenchTable(5000)}, BOM: true})
	tok := getToken(t, srv)
	const q = "EVALUATE Sales"
	json1 := runQuery(t, srv, tok, q, false)
	_, dax1 := post(t, srv.Client(), daxURL(srv), tok, daxBody(q, nil))
	for _, api := range []string{"executeQueries", "executeDaxQueries"} {
		if err := srv.Prerender(api, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Prerender("executeSomething", q); err == nil {
		t.Error("Prerender of an unknown API: no error")
	}
	if err := srv.Prerender("executeQueries", "EVALUATE Nope"); err == nil {
		t.Error("Prerender of a failing query: no error")
	}
	if json2 := runQuery(t, srv, tok, q, false); !bytes.Equal(json1, json2) {
		t.Errorf("executeQueries: replay differs from the rendered answer (%d vs %d bytes)", len(json2), len(json1))
	}
	if _, dax2 := post(t, srv.Client(), daxURL(srv), tok, daxBody(q, nil)); !bytes.Equal(dax1, dax2) {
		t.Errorf("executeDaxQueries: replay differs from the rendered answer (%d vs %d bytes)", len(dax2), len(dax1))
	}
	// Other options: rendered, not replayed.
	if _, b := post(t, srv.Client(), daxURL(srv), tok, daxBody(q, map[string]any{"resultsetRowcountLimit": 7})); len(readStreams(t, b)) != 1 || readStreams(t, b)[0].rows != 7 {
		t.Error("rowcount limit 7 over a prerendered answer: not 7 rows")
	}
	if withNulls := runQuery(t, srv, tok, q, true); bytes.Equal(withNulls, json1) {
		t.Error("includeNulls answered with the prerendered answer")
	}
	// A cut applies to a replay: the body ends short, in error.
	srv.CutBody(1, 1000)
	hreq, _ := http.NewRequest(http.MethodPost, daxURL(srv), strings.NewReader(daxBody(q, nil)))
	hreq.Header.Set("Authorization", "Bearer "+tok)
	r, err := srv.Client().Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err == nil || len(b) >= len(dax1) {
		t.Errorf("cut replay: %d bytes of %d, error %v", len(b), len(dax1), err)
	}
}
