package powerbi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/source"
)

// arrowTable has one column of each Power BI type, a column blank on every
// row, a DateTime column at midnight only, and a Double with fractions only
// on some rows.
func arrowTable(rows int) *fakepbi.Table {
	base := time.Date(2024, 2, 28, 0, 0, 0, 0, time.UTC)
	return &fakepbi.Table{
		Name: "Sales",
		Columns: []fakepbi.Column{
			{Name: "Order ID", Type: fakepbi.Int64}, {Name: "Day", Type: fakepbi.DateTime}, {Name: "At", Type: fakepbi.DateTime},
			{Name: "Customer", Type: fakepbi.String}, {Name: "Amount", Type: fakepbi.Currency}, {Name: "Rate", Type: fakepbi.Double},
			{Name: "Returned", Type: fakepbi.Bool}, {Name: "Nothing", Type: fakepbi.Double},
		},
		Rows:     rows,
		SortedBy: "Order ID",
		Value: func(i, c int) any {
			switch c {
			case 0:
				return int64(i + 1)
			case 1:
				return base.AddDate(0, 0, i%3)
			case 2:
				return base.Add(time.Duration(i)*time.Hour + 789*time.Millisecond)
			case 3:
				if i%4 == 3 {
					return nil
				}
				return []string{"Ann", "Bob", "Zoë"}[i%3]
			case 4:
				return fakepbi.Decimal("12.3456")
			case 5:
				if i == 6 {
					return 2.5
				}
				return float64(i)
			case 6:
				return i%2 == 0
			}
			return nil
		},
	}
}

// recordingRecv keeps what a source hands over.
type recordingRecv struct {
	schema *arrow.Schema
	notes  []string
	c      *collector
}

func (r *recordingRecv) Schema(s *arrow.Schema, notes []string) error {
	r.schema, r.notes = s, notes
	return nil
}
func (r *recordingRecv) Batch(rec arrow.RecordBatch) error { return r.c.emit(rec) }

func daxSpec(srv *fakepbi.Server) *source.PowerBISpec {
	o := srv.Options()
	return &source.PowerBISpec{API: source.APIExecuteDaxQueries, Workspace: o.WorkspaceID, Dataset: o.DatasetID,
		Endpoint: srv.URL(), Auth: fakeAuth(srv)}
}

func readDax(t *testing.T, srv *fakepbi.Server, pb *source.PowerBISpec, query string, cols []mapping.Column, log *slog.Logger, unmapped ...mapping.Unmapped) (*recordingRecv, source.Stats, error) {
	t.Helper()
	um := mapping.UnmappedError
	if len(unmapped) > 0 {
		um = unmapped[0]
	}
	mem := checkedMem(t)
	conn := &Connector{HTTPClient: srv.Client(), Rate: -1, RetryDelay: 10 * time.Millisecond, Logger: log}
	src, err := conn.Open(context.Background(), source.Request{Spec: source.Spec{PowerBI: pb}, Query: query, Columns: cols, Unmapped: um, Mem: mem, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(*daxSource); !ok {
		t.Fatalf("api executeDaxQueries opened a %T", src)
	}
	r := &recordingRecv{c: newCollector(t)}
	st, err := src.Read(context.Background(), r)
	return r, st, err
}

func TestArrowSourceNaturalTypes(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{arrowTable(10)}, ArrowBatchRows: 4})
	r, st, err := readDax(t, srv, daxSpec(srv), "EVALUATE Sales", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "order_id: int64, day: timestamp, at: timestamp, customer: string, amount: decimal(19,4), rate: float64, returned: bool, nothing: float64"
	var got []string
	for _, f := range r.schema.Fields() {
		got = append(got, f.Name+": "+mapping.TypeName(f.Type))
	}
	if strings.Join(got, ", ") != want {
		t.Errorf("schema\n%s\nwant\n%s", strings.Join(got, ", "), want)
	}
	if st.Rows != 10 || r.c.rows() != 10 || len(r.c.recs) != 3 || st.Pages != 1 || st.Requests != 1 || st.RequestID == "" || st.Bytes == 0 {
		t.Errorf("stats %+v, %d rows in %d batches", st, r.c.rows(), len(r.c.recs))
	}
	checks := map[int][]any{
		0: {int64(1), int64(2)},
		1: {"2024-02-28T00:00:00.000000", "2024-02-29T00:00:00.000000"},
		2: {"2024-02-28T00:00:00.789000", "2024-02-28T01:00:00.789000"},
		3: {"Ann", "Bob", "Zoë", nil, "Bob"},
		4: {"12.3456"},
		6: {true, false},
		7: {nil, nil, nil},
	}
	for c, vals := range checks {
		col := r.c.column(t, c)
		for i, v := range vals {
			if !sameValue(col[i], v) {
				t.Errorf("column %d row %d: %v, want %v", c, i, showValue(col[i]), showValue(v))
			}
		}
	}
	q := srv.Queries()[0]
	if q.API != "executeDaxQueries" || q.Accept != ArrowContentType || !strings.Contains(q.Path, "/groups/"+srv.Options().WorkspaceID+"/") {
		t.Errorf("request %+v", q)
	}
}

// TestArrowSourceSlices checks that a record batch of the service is
// handed on in slices of BatchRows rows, each mapped before the next (so a
// value that fails in a later slice leaves the earlier ones handed on), and
// that a failing value is named by its row in the whole result.
func TestArrowSourceSlices(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{arrowTable(10)}, ArrowBatchRows: 5})
	read := func(cols []mapping.Column, batchRows int) (*recordingRecv, error) {
		mem := checkedMem(t)
		conn := &Connector{HTTPClient: srv.Client(), Rate: -1, RetryDelay: 10 * time.Millisecond}
		src, err := conn.Open(context.Background(), source.Request{Spec: source.Spec{PowerBI: daxSpec(srv)}, Query: "EVALUATE Sales", Columns: cols, Unmapped: mapping.UnmappedIgnore, Mem: mem, BatchRows: batchRows})
		if err != nil {
			t.Fatal(err)
		}
		r := &recordingRecv{c: newCollector(t)}
		_, err = src.Read(context.Background(), r)
		return r, err
	}
	sizes := func(r *recordingRecv) []int64 {
		var n []int64
		for _, rec := range r.c.recs {
			n = append(n, rec.NumRows())
		}
		return n
	}
	r, err := read(nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sizes(r), []int64{3, 2, 3, 2}; !slices.Equal(got, want) {
		t.Errorf("batches of %v rows from record batches of 5 cut at 3, want %v", got, want)
	}
	if ids := r.c.column(t, 0); len(ids) != 10 || !sameValue(ids[6], int64(7)) {
		t.Errorf("order ids %v", ids)
	}

	// Rate holds 2.5 on row 7, in the second record batch (rows 6 to
	// 10): in slices of one row, row 6 is handed on before row 7 fails.
	r, err = read([]mapping.Column{{From: "Sales[Order ID]", To: "id", Type: mustType(t, "int64")}, {From: "Sales[Rate]", To: "rate", Type: mustType(t, "int64")}}, 1)
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Row != 7 || ve.Column != "rate" {
		t.Fatalf("err = %v, want row 7 rate 2.5", err)
	}
	if got := r.c.rows(); got != 6 {
		t.Errorf("%d rows handed on before the failing slice, want 6", got)
	}
}

func TestArrowSourceMappingCasts(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{arrowTable(10)}, ArrowBatchRows: 4})
	cols := []mapping.Column{
		{From: "Sales[Order ID]", To: "id", Type: mustType(t, "decimal(10,2)")},
		{From: "sales[day]", To: "day", Type: mustType(t, "date")},
		{From: "Sales[Customer]", To: "who", Type: mustType(t, "string")},
		{From: "Sales[Amount]", To: "amount", Type: mustType(t, "float64")},
		{From: "Sales[Rate]", To: "rate", Type: mustType(t, "int64")},
	}
	pb := daxSpec(srv)
	_, _, err := readDax(t, srv, pb, "EVALUATE SELECTCOLUMNS(Sales, \"x\", Sales[Order ID])", cols, nil)
	if err == nil || !source.Permanent(err) || !strings.Contains(err.Error(), `column day maps from "sales[day]", which the result does not have (its columns: [x])`) {
		t.Errorf("a mapped column missing: %v", err)
	}

	// Rate holds 2.5 on row 7 (the second batch): int64 refuses it.
	r, _, err := readDax(t, srv, pb, "EVALUATE Sales", cols, nil, mapping.UnmappedIgnore)
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Row != 7 || ve.Column != "rate" || !strings.Contains(err.Error(), "2.5 is not a whole number") {
		t.Fatalf("err = %v, want row 7 rate 2.5", err)
	}

	// Unmapped columns are an error, unless ignored.
	cols[4].Type = mustType(t, "float64")
	_, _, err = readDax(t, srv, pb, "EVALUATE Sales", cols, nil)
	if err == nil || !source.Permanent(err) || !strings.Contains(err.Error(), `the result has column "Sales[At]", which the mapping does not map`) {
		t.Fatalf("unmapped: %v", err)
	}
	r, _, err = readDax(t, srv, pb, "EVALUATE Sales", cols, nil, mapping.UnmappedIgnore)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][]any{
		0: {"1.00", "2.00"},
		1: {"2024-02-28", "2024-02-29", "2024-03-01"},
		2: {"Ann", "Bob", "Zoë", nil},
		3: {12.3456},
		4: {0.0, 1.0},
	}
	for c, vals := range want {
		col := r.c.column(t, c)
		for i, v := range vals {
			if !sameValue(col[i], v) {
				t.Errorf("column %d row %d: %v, want %v", c, i, showValue(col[i]), showValue(v))
			}
		}
	}
}

func TestArrowSourceDateWithTimeFails(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{arrowTable(5)}})
	cols := []mapping.Column{{From: "[At]", To: "at", Type: mustType(t, "date")}}
	_, _, err := readDax(t, srv, daxSpec(srv), `EVALUATE SELECTCOLUMNS(Sales, "At", Sales[At])`, cols, nil)
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Row != 1 || !strings.Contains(err.Error(), "value 2024-02-28T00:00:00.789 has a time of day") {
		t.Errorf("err = %v", err)
	}
}

func TestArrowSourceServiceFailures(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{arrowTable(300)}, ArrowBatchRows: 50})
	pb := daxSpec(srv)

	// A DAX error: the error rowset, with its message, codes and RequestId.
	r, _, err := readDax(t, srv, pb, "EVALUATE Nope", nil, nil)
	var de *DaxError
	if !errors.As(err, &de) || !source.Permanent(err) || source.Retryable(err) || r.schema != nil {
		t.Fatalf("err = %v (%T), schema %v", err, err, r.schema)
	}
	for _, want := range []string{"Failed to resolve name 'Nope'", "ErrorCode 3239575574", "FaultCode 0xC1180016", "RequestId " + srv.Queries()[0].RequestID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}

	// Two EVALUATEs: an error naming the count.
	_, _, err = readDax(t, srv, pb, "EVALUATE Sales EVALUATE Sales EVALUATE Sales", nil, nil)
	var rs *ResultsetsError
	if !errors.As(err, &rs) || rs.Count != 3 || !source.Permanent(err) || !strings.Contains(err.Error(), "returned 3 results") {
		t.Errorf("three EVALUATEs: %v", err)
	}

	// A body cut mid-stream: retryable, after some rows.
	srv.CutBody(1, 3000)
	_, _, err = readDax(t, srv, pb, "EVALUATE Sales", nil, nil)
	var se *StreamError
	if !errors.As(err, &se) || !source.Retryable(err) || se.RequestID == "" {
		t.Errorf("cut: %v (%T)", err, err)
	}

	// Throttled, then a 503: retried with Retry-After; an expired token is
	// renewed once.
	srv.Throttle(1, time.Millisecond)
	srv.FailWith(1, 503)
	r, st, err := readDax(t, srv, pb, "EVALUATE Sales", nil, nil)
	if err != nil || r.c.rows() != 300 || st.Throttled != 1 || st.Requests != 3 {
		t.Errorf("throttled: err %v, %d rows, stats %+v", err, r.c.rows(), st)
	}
	srv.ExpireTokens()
	if _, _, err := readDax(t, srv, pb, "EVALUATE Sales", nil, nil); err != nil {
		t.Errorf("expired token: %v", err)
	}

	// A wrong dataset: the JSON error of the API, naming it.
	bad := *pb
	bad.Dataset = "f4ce0000-0000-4000-8000-00000000dead"
	_, _, err = readDax(t, srv, &bad, "EVALUATE Sales", nil, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || !strings.HasPrefix(err.Error(), "executeDaxQueries: HTTP 404") {
		t.Errorf("wrong dataset: %v", err)
	}
}

func TestArrowSourceMetricsAndLimits(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{arrowTable(300)}, ExecMetrics: true})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pb := daxSpec(srv)
	pb.RowLimit = 120
	pb.ImpersonatedUser = "someone@contoso.com"
	r, st, err := readDax(t, srv, pb, "EVALUATE Sales", nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if r.c.rows() != 120 || st.Rows != 120 {
		t.Errorf("rowLimit 120: %d rows", r.c.rows())
	}
	q := srv.Queries()[0]
	if q.RowLimit != 120 || q.ImpersonatedUserName != "someone@contoso.com" || q.SchemaOnly {
		t.Errorf("request %+v", q)
	}
	if !strings.Contains(logs.String(), "execution metrics") || !strings.Contains(logs.String(), "durationMs") {
		t.Errorf("metrics not logged:\n%s", logs.String())
	}
}

// TestArrowQueryTimeout checks that queryTimeout reaches the service in
// whole seconds, and that a query the service cancels for running past it
// fails with the service's message, not retried.
func TestArrowQueryTimeout(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{arrowTable(50)}})
	pb := daxSpec(srv)
	pb.QueryTimeout = "500ms"
	if _, _, err := readDax(t, srv, pb, "EVALUATE Sales", nil, nil); err != nil {
		t.Fatal(err)
	}
	if q := srv.Queries()[0]; q.QueryTimeout != 1 {
		t.Errorf("queryTimeout sent: %d, want 1 (seconds, rounded up)", q.QueryTimeout)
	}
	srv.SetLatency(1100 * time.Millisecond)
	r, _, err := readDax(t, srv, pb, "EVALUATE Sales", nil, nil)
	var de *DaxError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "ran longer than its queryTimeout of 1s") || source.Retryable(err) {
		t.Errorf("query past its timeout: %v", err)
	}
	if r.c.rows() != 0 {
		t.Errorf("%d rows delivered from a cancelled query", r.c.rows())
	}
	if n := len(srv.Queries()); n != 2 {
		t.Errorf("%d requests, want 2 (a cancelled query is not retried)", n)
	}
}

func TestArrowStall(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{arrowTable(3000)}, ArrowBatchRows: 100})
	pb := daxSpec(srv)
	pb.Timeouts = &source.TimeoutsSpec{Idle: "300ms", Request: "20s"}
	srv.Stall(1, 2000)
	_, _, err := readDax(t, srv, pb, "EVALUATE Sales", nil, nil)
	var se *StallError
	if !errors.As(err, &se) || se.Phase != "reading the body" || !source.Retryable(err) {
		t.Errorf("stall: %v", err)
	}
}

func TestArrowColumnsNeedAMappingForVariants(t *testing.T) {
	variant := arrow.DenseUnionOf([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int64}, {Name: "s", Type: arrow.BinaryTypes.String}}, []arrow.UnionTypeCode{0, 1})
	as := arrow.NewSchema([]arrow.Field{{Name: "[Measure]", Type: variant, Nullable: true}}, nil)
	_, _, _, err := ArrowColumns(as, nil, mapping.UnmappedError)
	if err == nil || !source.Permanent(err) || !strings.Contains(err.Error(), "is a Variant") || !strings.Contains(err.Error(), `{ from: "[Measure]", to: measure, type: string }`) {
		t.Errorf("variant without a mapping: %v", err)
	}
	m := &arrowMapper{cols: []mapping.Column{{From: "[Measure]", To: "m", Type: mustType(t, "int64")}}, out: discardReceiver{}}
	if err := m.Schema(as); err == nil || !source.Permanent(err) || !strings.Contains(err.Error(), "map it as string") {
		t.Errorf("variant as int64: %v", err)
	}
	m = &arrowMapper{cols: []mapping.Column{{From: "[Measure]", To: "m", Type: mustType(t, "string")}}, out: discardReceiver{}}
	if err := m.Schema(as); err != nil {
		t.Errorf("variant as string: %v", err)
	}
}

// TestArrowBodyEndingEarly: a body that ends cleanly between two messages
// (no end-of-stream marker) lost rows: never a complete result. An empty
// body holds no result at all.
func TestArrowBodyEndingEarly(t *testing.T) {
	var full bytes.Buffer
	if err := fakepbi.WriteArrowResponse(&full, []*fakepbi.Table{arrowTable(10)}, "EVALUATE Sales", fakepbi.Options{ArrowBatchRows: 4}); err != nil {
		t.Fatal(err)
	}
	body := full.Bytes()
	if !bytes.HasSuffix(body, eos[:]) {
		t.Fatal("the fake's stream does not end with the end-of-stream marker")
	}
	mem := checkedMem(t)
	read := func(b []byte) (int64, error) {
		c := newCollector(t)
		m := &arrowMapper{mem: mem, out: &recordingRecv{c: c}}
		ds, err := readArrowStreams(bufio.NewReader(bytes.NewReader(b)), mem, m, slog.New(slog.DiscardHandler))
		return ds.Rows, err
	}
	if rows, err := read(body); err != nil || rows != 10 {
		t.Fatalf("whole body: %d rows, %v", rows, err)
	}
	rows, err := read(body[:len(body)-8])
	if !errors.Is(err, errNoEOS) || rows != 10 {
		t.Errorf("without the marker: %d rows, %v", rows, err)
	}
	if _, err := read(nil); err == nil || !strings.Contains(err.Error(), "no Arrow stream of data") {
		t.Errorf("empty body: %v", err)
	}
}

// benchTableMapping is the benchmark table's declared mapping.
func benchTableMapping(b *testing.B) []mapping.Column {
	b.Helper()
	var cols []mapping.Column
	for _, line := range strings.Split(fakepbi.BenchMapping, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "- {") {
			continue
		}
		var from, to, typ string
		for _, part := range strings.Split(strings.Trim(line, "- {}"), ", ") {
			k, v, _ := strings.Cut(part, ": ")
			v = strings.Trim(v, `"`)
			switch k {
			case "from":
				from = v
			case "to":
				to = v
			case "type":
				typ = v
			}
		}
		cols = append(cols, mapping.Column{From: from, To: to, Type: mustType(b, typ)})
	}
	return cols
}

// BenchmarkArrowRead measures the Arrow path of a response held in memory:
// the IPC streams read (LZ4), then mapped to the benchmark table's columns
// (per row).
func BenchmarkArrowRead(b *testing.B) {
	const rows = 200_000
	var body bytes.Buffer
	if err := fakepbi.WriteArrowResponse(&body, []*fakepbi.Table{fakepbi.BenchTable(rows)}, "EVALUATE Sales", fakepbi.Options{}); err != nil {
		b.Fatal(err)
	}
	for _, mapped := range []bool{true, false} {
		name := "natural"
		var cols []mapping.Column
		if mapped {
			name, cols = "mapped", benchTableMapping(b)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				m := &arrowMapper{mem: memory.DefaultAllocator, cols: cols, out: discardReceiver{}}
				if _, err := readArrowStreams(bufio.NewReader(bytes.NewReader(body.Bytes())), memory.DefaultAllocator, m, slog.New(slog.DiscardHandler)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
		})
	}
}

// TestArrowMyWorkspacePath: without a workspace the request goes to the My
// workspace form of the URL, which the service refuses to service
// principals (the error says to use the workspace path).
func TestArrowMyWorkspacePath(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	_, err := realClient(t, srv).ExecuteDaxQuery(context.Background(), DaxQuery{Dataset: srv.Options().DatasetID, DAX: "EVALUATE Sales"}, checkedMem(t), &arrowMapper{out: discardReceiver{}})
	q := srv.Queries()
	if len(q) != 1 || q[0].Path != "/v1.0/myorg/datasets/"+srv.Options().DatasetID+"/executeDaxQueries" {
		t.Fatalf("requests %+v", q)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || !strings.Contains(err.Error(), "has no My workspace and must use the workspace (groups) path") {
		t.Errorf("err = %v", err)
	}
}

// TestVariantThroughBothAPIs: a measure of mixed types (the fake serves it
// as a dense union through executeDaxQueries and as mixed JSON values
// through executeQueries) mapped as string gives the same text through
// both APIs, but for a Currency value, which Arrow types (written at its
// 4 decimals) and JSON sends as a bare number; through Arrow without a
// string mapping it is refused before a row is read.
func TestVariantThroughBothAPIs(t *testing.T) {
	when := time.Date(2024, 3, 1, 9, 15, 0, 0, time.UTC)
	values := []any{int64(42), "N/A", 2.5, nil, fakepbi.Decimal("12.3400"), true, when, int64(-7)}
	tbl := &fakepbi.Table{Name: "KPI", Columns: []fakepbi.Column{{Name: "Id", Type: fakepbi.Int64}, {Name: "Status", Type: fakepbi.Variant}},
		Rows: len(values), Value: func(i, c int) any {
			if c == 0 {
				return int64(i + 1)
			}
			return values[i]
		}}
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{tbl}})
	cols := []mapping.Column{{From: "KPI[Id]", To: "id", Type: mustType(t, "int64")}, {From: "KPI[Status]", To: "status", Type: mustType(t, "string")}}

	r, _, err := readDax(t, srv, daxSpec(srv), "EVALUATE KPI", cols, nil)
	if err != nil {
		t.Fatal(err)
	}
	arrowText := r.c.column(t, 1)
	want := []any{"42", "N/A", "2.5", nil, "12.3400", "true", "2024-03-01T09:15:00", "-7"}
	if fmt.Sprint(arrowText) != fmt.Sprint(want) {
		t.Errorf("Arrow, as string:\n got %q\nwant %q", arrowText, want)
	}

	pb := daxSpec(srv)
	pb.API = source.APIExecuteQueries
	conn := &Connector{HTTPClient: srv.Client(), Rate: -1, RetryDelay: 10 * time.Millisecond}
	src, err := conn.Open(context.Background(), source.Request{Spec: source.Spec{PowerBI: pb}, Query: "EVALUATE KPI", Columns: cols, Unmapped: mapping.UnmappedError, Mem: checkedMem(t)})
	if err != nil {
		t.Fatal(err)
	}
	jr := &recordingRecv{c: newCollector(t)}
	if _, err := src.Read(context.Background(), jr); err != nil {
		t.Fatal(err)
	}
	want[4] = "12.34"
	if jsonText := jr.c.column(t, 1); fmt.Sprint(jsonText) != fmt.Sprint(want) {
		t.Errorf("JSON, as string:\n got %q\nwant %q", jsonText, want)
	}

	// Without a string mapping: refused before any row, with the line.
	_, _, err = readDax(t, srv, daxSpec(srv), "EVALUATE KPI", []mapping.Column{cols[0], {From: "KPI[Status]", To: "status", Type: mustType(t, "int64")}}, nil)
	if err == nil || !strings.Contains(err.Error(), "map it as string") {
		t.Errorf("Variant as int64: %v", err)
	}
}
