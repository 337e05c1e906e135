package fakepbi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// pbiError decodes the error of a non-200 answer.
type pbiError struct {
	Error struct {
		Code     string `json:"code"`
		Message  string `json:"message"`
		PBIError *struct {
			Code    string `json:"code"`
			Details []struct {
				Code   string `json:"code"`
				Detail struct {
					Type  int    `json:"type"`
					Value string `json:"value"`
				} `json:"detail"`
			} `json:"details"`
		} `json:"pbi.error"`
		Details []struct {
			Message string `json:"message"`
			Target  string `json:"target"`
		} `json:"details"`
	} `json:"error"`
}

func decodeError(t *testing.T, resp *http.Response, body []byte) pbiError {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	var e pbiError
	if err := json.Unmarshal(bytes.TrimPrefix(body, []byte(bom)), &e); err != nil {
		t.Fatalf("decode error body: %v: %s", err, body)
	}
	return e
}

func TestKeyNames(t *testing.T) {
	srv := startServer(t, Options{})
	tok := getToken(t, srv)
	cases := []struct {
		query string
		keys  []string
	}{
		{"EVALUATE Sales", []string{"Sales[OrderID]", "Sales[OrderDate]", "Sales[Customer]", "Sales[Region]", "Sales[Quantity]", "Sales[UnitPrice]", "Sales[Amount]", "Sales[Discount]", "Sales[Returned]"}},
		{"evaluate 'sales'", []string{"Sales[OrderID]", "Sales[OrderDate]", "Sales[Customer]", "Sales[Region]", "Sales[Quantity]", "Sales[UnitPrice]", "Sales[Amount]", "Sales[Discount]", "Sales[Returned]"}},
		{`EVALUATE SELECTCOLUMNS(Sales, "Order ID", Sales[OrderID], "When", 'Sales'[OrderDate], "Qty", [Quantity])`, []string{"[Order ID]", "[When]", "[Qty]"}},
		{`EVALUATE FILTER(SELECTCOLUMNS(Sales, "ID", Sales[OrderID]), [ID] < 3)`, []string{"[ID]"}},
		{`EVALUATE TOPN(2, FILTER(Sales, Sales[OrderID] > 10), Sales[OrderID], ASC)`, []string{"Sales[OrderID]", "Sales[OrderDate]", "Sales[Customer]", "Sales[Region]", "Sales[Quantity]", "Sales[UnitPrice]", "Sales[Amount]", "Sales[Discount]", "Sales[Returned]"}},
	}
	for _, c := range cases {
		b := runQuery(t, srv, tok, c.query, true)
		// Keys in body order: decode the first row as a token stream.
		r := decode(t, b)
		if len(r.rows()) == 0 {
			t.Fatalf("%s: no rows", c.query)
		}
		dec := json.NewDecoder(bytes.NewReader(b[bytes.Index(b, []byte(`"rows":[`))+len(`"rows":[`):]))
		var first json.RawMessage
		if err := dec.Decode(&first); err != nil {
			t.Fatal(err)
		}
		if got := objectKeys(t, first); strings.Join(got, "|") != strings.Join(c.keys, "|") {
			t.Errorf("%s: keys %q, want %q", c.query, got, c.keys)
		}
	}
}

// objectKeys returns the keys of a JSON object in order.
func objectKeys(t *testing.T, obj []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestIncludeNulls(t *testing.T) {
	srv := startServer(t, Options{})
	tok := getToken(t, srv)
	q := "EVALUATE TOPN(1, Sales, Sales[OrderID], ASC)" // row 0: Discount is blank
	omitted := decode(t, runQuery(t, srv, tok, q, false)).rows()[0]
	if _, ok := omitted["Sales[Discount]"]; ok || len(omitted) != 8 {
		t.Errorf("includeNulls false: %v, want Sales[Discount] omitted", omitted)
	}
	nulls := decode(t, runQuery(t, srv, tok, q, true)).rows()[0]
	if v, ok := nulls["Sales[Discount]"]; !ok || v != nil || len(nulls) != 9 {
		t.Errorf("includeNulls true: %v, want Sales[Discount]: null", nulls)
	}
	// Without serializerSettings the service omits blanks.
	resp, b := post(t, srv.Client(), queryURL(srv), tok, `{"queries":[{"query":"`+q+`"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if row := decode(t, b).rows()[0]; len(row) != 8 {
		t.Errorf("no serializerSettings: %v, want blanks omitted", row)
	}
	qs := srv.Queries()
	if len(qs) != 3 || qs[0].IncludeNulls == nil || *qs[0].IncludeNulls || !*qs[1].IncludeNulls || qs[2].IncludeNulls != nil {
		t.Errorf("recorded IncludeNulls wrong: %+v", qs)
	}
	if qs[0].Query != q || qs[0].Authorization != "Bearer "+tok || qs[0].Queries != 1 || !uuidRE.MatchString(qs[0].RequestID) {
		t.Errorf("recorded request %+v", qs[0])
	}
	post(t, srv.Client(), queryURL(srv), tok, `{"queries":[{"query":"EVALUATE BigKeys"}],"impersonatedUserName":"someone@contoso.com"}`)
	if last := srv.Queries()[3]; last.ImpersonatedUserName != "someone@contoso.com" || last.Query != "EVALUATE BigKeys" {
		t.Errorf("recorded request %+v", last)
	}
}

func TestBOM(t *testing.T) {
	srv := startServer(t, Options{BOM: true})
	tok := getToken(t, srv)
	b := runQuery(t, srv, tok, "EVALUATE BigKeys", true)
	if !bytes.HasPrefix(b, []byte("\xEF\xBB\xBF{")) {
		t.Fatalf("body starts %q, want a BOM then {", b[:8])
	}
	decode(t, b)
	resp, b := post(t, srv.Client(), queryURL(srv), tok, queryBody("EVALUATE Nope", true))
	if resp.StatusCode != 400 || !bytes.HasPrefix(b, []byte(bom)) {
		t.Errorf("error body: status %d, starts %q", resp.StatusCode, b[:8])
	}
}

func TestTruncation(t *testing.T) {
	cases := []struct {
		name     string
		opts     Options
		query    string
		rows     int
		message  string
		noErrors bool
	}{
		{"rows table slot", Options{MaxRows: 10}, "EVALUATE Sales", 10, "More than 10 rows in a query result", false},
		{"rows result slot", Options{MaxRows: 10, TruncationSlot: SlotResult}, "EVALUATE Sales", 10, "More than 10 rows in a query result", false},
		{"rows top slot", Options{MaxRows: 10, TruncationSlot: SlotTop}, "EVALUATE Sales", 10, "More than 10 rows in a query result", false},
		{"values", Options{MaxValues: 25}, "EVALUATE Sales", 2, "More than 25 values in a query result", false},
		{"values before rows", Options{MaxRows: 100, MaxValues: 45}, `EVALUATE SELECTCOLUMNS(Sales, "a", [OrderID], "b", [Amount])`, 22, "More than 45 values in a query result", false},
		{"real limits", Options{MaxBytes: -1}, `EVALUATE Sales`, DemoRows, "", true},
		{"exactly at the limit", Options{MaxRows: 10}, "EVALUATE FILTER(Sales, Sales[OrderID] <= 10)", 10, "", true},
		{"real row limit", Options{}, "EVALUATE 'Big'", DefaultMaxRows, "More than 100000 rows in a query result", false},
		{"real value limit", Options{MaxBytes: -1}, "EVALUATE 'Wide'", DefaultMaxValues / 11, "More than 1000000 values in a query result", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Tables = append(DemoModel(), narrowTable("Big", 100_001), wideTable("Wide", 11, 100_000))
			srv := startServer(t, c.opts)
			r := decode(t, runQuery(t, srv, getToken(t, srv), c.query, true))
			if got := r.count(); got != c.rows {
				t.Errorf("%d rows, want %d", got, c.rows)
			}
			slots := map[string]*errorObj{SlotTable: r.Results[0].Tables[0].Error, SlotResult: r.Results[0].Error, SlotTop: r.Error}
			want := c.opts.TruncationSlot
			if want == "" {
				want = SlotTable
			}
			for slot, e := range slots {
				switch {
				case c.noErrors || slot != want:
					if e != nil {
						t.Errorf("slot %s: unexpected error %+v", slot, e)
					}
				case e == nil:
					t.Errorf("slot %s: no error", slot)
				case e.Message != c.message || e.Code != TruncationCode:
					t.Errorf("slot %s: error %+v, want message %q", slot, e, c.message)
				}
			}
		})
	}
}

// narrowTable is a 2-column table of n rows sorted by ID.
func narrowTable(name string, n int) *Table {
	return &Table{
		Name:     name,
		Columns:  []Column{{"ID", Int64}, {"Label", String}},
		Rows:     n,
		SortedBy: "ID",
		Value: func(i, c int) any {
			if c == 0 {
				return int64(i)
			}
			return "row"
		},
	}
}

// wideTable is a table of cols Int64 columns and n rows.
func wideTable(name string, cols, n int) *Table {
	t := &Table{Name: name, Rows: n, Value: func(i, c int) any { return int64(i + c) }}
	for c := range cols {
		t.Columns = append(t.Columns, Column{Name: "C" + string(rune('A'+c)), Type: Int64})
	}
	return t
}

// TestByteCut checks the 15 MB behaviour: the row that crosses the limit is
// completed, no more rows follow, and no error says so.
func TestByteCut(t *testing.T) {
	const maxBytes = 1000
	srv := startServer(t, Options{MaxBytes: maxBytes})
	b := runQuery(t, srv, getToken(t, srv), "EVALUATE Sales", true)
	r := decode(t, b)
	if r.Error != nil || r.Results[0].Error != nil || r.Results[0].Tables[0].Error != nil {
		t.Errorf("the byte cut must come without an error: %s", b)
	}
	var raw struct {
		Results []struct {
			Tables []struct {
				Rows []json.RawMessage `json:"rows"`
			} `json:"tables"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	rows := raw.Results[0].Tables[0].Rows
	size := func(n int) int { // bytes of the first n rows with their commas
		s := 0
		for _, row := range rows[:n] {
			s += len(row)
		}
		return s + max(n-1, 0)
	}
	if n := len(rows); n == 0 || n >= DemoRows || size(n) < maxBytes || size(n-1) >= maxBytes {
		t.Errorf("%d rows of %d bytes (without the last: %d), want the first row to reach %d bytes to end the rows", n, size(n), size(n-1), maxBytes)
	}
}

func TestDAXErrorShape(t *testing.T) {
	srv := startServer(t, Options{})
	tok := getToken(t, srv)
	resp, b := post(t, srv.Client(), queryURL(srv), tok, queryBody("EVALUATE Salez", true))
	want := `{"error":{"code":"DatasetExecuteQueriesError","pbi.error":{"code":"DatasetExecuteQueriesError","parameters":{},"details":[` +
		`{"code":"DetailsMessage","detail":{"type":1,"value":"Query (1, 10) Failed to resolve name 'Salez'. It is not a valid table, variable, or function name."}},` +
		`{"code":"AnalysisServicesErrorCode","detail":{"type":1,"value":"3239575574"}}]}}}`
	if resp.StatusCode != 400 || string(b) != want {
		t.Errorf("status %d body\n%s\nwant 400\n%s", resp.StatusCode, b, want)
	}
	if !uuidRE.MatchString(resp.Header.Get("RequestId")) {
		t.Errorf("RequestId %q", resp.Header.Get("RequestId"))
	}
	resp, b = post(t, srv.Client(), queryURL(srv), tok, queryBody("EVALUATE SELECTCOLUMNS(Sales, \"x\", Sales[Nope])", true))
	e := decodeError(t, resp, b)
	if resp.StatusCode != 400 || e.Error.PBIError == nil || e.Error.PBIError.Details[0].Detail.Value !=
		"Query (1, 36) Column 'Nope' in table 'Sales' cannot be found or may not be used in this expression." {
		t.Errorf("unknown column: %d %s", resp.StatusCode, b)
	}
}

func TestGatewayErrors(t *testing.T) {
	srv := startServer(t, Options{})
	tok := getToken(t, srv)
	o := srv.Options()
	body := queryBody("EVALUATE Sales", true)
	cases := []struct {
		name, url, tok, body string
		status               int
		code, message        string
		pbi                  bool
	}{
		{"no token", queryURL(srv), "", body, 401, "PowerBINotAuthorizedException", "", true},
		{"unknown token", queryURL(srv), "forged", body, 401, "PowerBINotAuthorizedException", "", true},
		{"unknown workspace", srv.URL() + "/v1.0/myorg/groups/" + DefaultDatasetID + "/datasets/" + o.DatasetID + "/executeQueries", tok, body, 404, "PowerBIEntityNotFound", "", true},
		{"unknown dataset", srv.URL() + "/v1.0/myorg/groups/" + o.WorkspaceID + "/datasets/" + DefaultWorkspaceID + "/executeQueries", tok, body, 404, "PowerBIEntityNotFound", "", true},
		{"non-group path", srv.URL() + "/v1.0/myorg/datasets/" + o.DatasetID + "/executeQueries", tok, body, 403, "Unauthorized", "API is not accessible for application", false},
		{"two queries", queryURL(srv), tok, `{"queries":[{"query":"EVALUATE Sales"},{"query":"EVALUATE Sales"}]}`, 400, "BadRequest", "Bad Request", false},
		{"no query", queryURL(srv), tok, `{"queries":[]}`, 400, "BadRequest", "Bad Request", false},
		{"not JSON", queryURL(srv), tok, `EVALUATE Sales`, 400, "BadRequest", "Bad Request", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, b := post(t, srv.Client(), c.url, c.tok, c.body)
			e := decodeError(t, resp, b)
			if resp.StatusCode != c.status || e.Error.Code != c.code || e.Error.Message != c.message || (e.Error.PBIError != nil) != c.pbi {
				t.Errorf("status %d body %s", resp.StatusCode, b)
			}
			if c.pbi && e.Error.PBIError.Code != c.code {
				t.Errorf("pbi.error %s", b)
			}
			if !uuidRE.MatchString(resp.Header.Get("RequestId")) {
				t.Errorf("RequestId %q", resp.Header.Get("RequestId"))
			}
		})
	}
}

func TestExpiredTokens(t *testing.T) {
	srv := startServer(t, Options{})
	tok := getToken(t, srv)
	runQuery(t, srv, tok, "EVALUATE BigKeys", true)
	srv.ExpireTokens()
	resp, b := post(t, srv.Client(), queryURL(srv), tok, queryBody("EVALUATE BigKeys", true))
	e := decodeError(t, resp, b)
	if resp.StatusCode != 403 || e.Error.Code != "TokenExpired" || e.Error.Message != "Access token has expired, resubmit with a new access token" {
		t.Errorf("expired token: %d %s", resp.StatusCode, b)
	}
	runQuery(t, srv, getToken(t, srv), "EVALUATE BigKeys", true)

	short := startServer(t, Options{TokenLifetime: 50 * time.Millisecond})
	tok = getToken(t, short)
	time.Sleep(60 * time.Millisecond)
	if resp, _ := post(t, short.Client(), queryURL(short), tok, queryBody("EVALUATE BigKeys", true)); resp.StatusCode != 403 {
		t.Errorf("token past its lifetime: status %d, want 403", resp.StatusCode)
	}
}

func TestThrottleAndFailures(t *testing.T) {
	srv := startServer(t, Options{})
	tok := getToken(t, srv)
	srv.Throttle(2, 1500*time.Millisecond)
	srv.FailWith(1, 503)
	for i := range 2 {
		resp, b := post(t, srv.Client(), queryURL(srv), tok, queryBody("EVALUATE BigKeys", true))
		e := decodeError(t, resp, b)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || e.Error.Code != "TooManyRequests" {
			t.Errorf("call %d: status %d Retry-After %q body %s", i, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
	resp, b := post(t, srv.Client(), queryURL(srv), tok, queryBody("EVALUATE BigKeys", true))
	if e := decodeError(t, resp, b); resp.StatusCode != 503 || e.Error.Code != "ServiceUnavailable" {
		t.Errorf("FailWith: status %d body %s", resp.StatusCode, b)
	}
	srv.FailWith(1, 500)
	resp, b = post(t, srv.Client(), queryURL(srv), tok, queryBody("EVALUATE BigKeys", true))
	if e := decodeError(t, resp, b); resp.StatusCode != 500 || e.Error.PBIError == nil {
		t.Errorf("FailWith 500: status %d body %s", resp.StatusCode, b)
	}
	runQuery(t, srv, tok, "EVALUATE BigKeys", true)
	if srv.QueryRequests() != 5 {
		t.Errorf("QueryRequests = %d, want 5", srv.QueryRequests())
	}
}

func TestRateLimit(t *testing.T) {
	srv := startServer(t, Options{RateLimit: 3, RatePer: time.Minute})
	tok := getToken(t, srv)
	for range 3 {
		runQuery(t, srv, tok, "EVALUATE BigKeys", true)
	}
	resp, b := post(t, srv.Client(), queryURL(srv), tok, queryBody("EVALUATE BigKeys", true))
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" {
		t.Errorf("4th call in a minute: status %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}

	fast := startServer(t, Options{RateLimit: 1, RatePer: 200 * time.Millisecond})
	tok = getToken(t, fast)
	runQuery(t, fast, tok, "EVALUATE BigKeys", true)
	resp, _ = post(t, fast.Client(), queryURL(fast), tok, queryBody("EVALUATE BigKeys", true))
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("sub-second window: status %d Retry-After %q, want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	time.Sleep(250 * time.Millisecond)
	runQuery(t, fast, tok, "EVALUATE BigKeys", true)
}

func TestLatency(t *testing.T) {
	srv := startServer(t, Options{Latency: 100 * time.Millisecond})
	tok := getToken(t, srv)
	start := time.Now()
	runQuery(t, srv, tok, "EVALUATE BigKeys", true)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answer after %v, want at least the 100ms latency", d)
	}
}

func TestCutBody(t *testing.T) {
	srv := startServer(t, Options{})
	tok := getToken(t, srv)
	srv.CutBody(1, 1000)
	req, _ := http.NewRequest(http.MethodPost, queryURL(srv), strings.NewReader(queryBody("EVALUATE Sales", true)))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != 1000 {
		t.Errorf("status %d, read %d bytes, err %v; want 200, 1000 bytes, unexpected EOF", resp.StatusCode, len(b), err)
	}
	// The next call is whole.
	decode(t, runQuery(t, srv, tok, "EVALUATE Sales", true))
}

func TestRedirect(t *testing.T) {
	srv := startServer(t, Options{})
	tok := getToken(t, srv)

	// A client following the redirect naively loses the token.
	srv.Redirect(1)
	resp, _ := post(t, srv.Client(), queryURL(srv), tok, queryBody("EVALUATE BigKeys", true))
	if resp.StatusCode != 401 {
		t.Errorf("naive redirect: status %d, want 401 (Authorization dropped by net/http)", resp.StatusCode)
	}
	qs := srv.Queries()
	if len(qs) != 2 || !strings.HasPrefix(qs[0].Host, "127.0.0.1:") || !strings.HasPrefix(qs[1].Host, "localhost:") || qs[1].Authorization != "" || qs[1].Query != "EVALUATE BigKeys" {
		t.Errorf("requests %+v", qs)
	}

	// A client that re-adds the token gets the result.
	srv.Redirect(1)
	client := *srv.Client()
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		req.Header.Set("Authorization", via[0].Header.Get("Authorization"))
		return nil
	}
	resp, b := post(t, &client, queryURL(srv), tok, queryBody("EVALUATE BigKeys", true))
	if resp.StatusCode != 200 || len(decode(t, b).rows()) != 10 {
		t.Errorf("redirect with token: status %d", resp.StatusCode)
	}

	// The 307 itself.
	srv.Redirect(1)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = post(t, &client, queryURL(srv)+"?x=1", tok, queryBody("EVALUATE BigKeys", true))
	if loc := resp.Header.Get("Location"); resp.StatusCode != 307 || loc != strings.Replace(queryURL(srv), "127.0.0.1", "localhost", 1)+"?x=1" {
		t.Errorf("status %d Location %q", resp.StatusCode, loc)
	}
}

func TestWriteResponseEqualsHTTPBody(t *testing.T) {
	bench := BenchTable(3000)
	bench.Name = "Bench"
	tables := append(DemoModel(), bench)
	queries := []string{
		"EVALUATE Sales",
		"EVALUATE BigKeys",
		"EVALUATE Bench",
		`EVALUATE SELECTCOLUMNS(Sales, "Who", [Customer], "Amount", Sales[Amount]) ORDER BY [Who] DESC`,
		"EVALUATE TOPN(500, FILTER(Bench, Bench[OrderID] > 1000), Bench[OrderID], ASC) ORDER BY Bench[OrderID] ASC",
		"EVALUATE Nope",
	}
	for _, opts := range []Options{{}, {BOM: true, MaxRows: 700, TruncationSlot: SlotTop}, {MaxBytes: 5000}} {
		opts.Tables = tables
		srv := startServer(t, opts)
		tok := getToken(t, srv)
		for _, q := range queries {
			for _, nulls := range []bool{false, true} {
				_, got := post(t, srv.Client(), queryURL(srv), tok, queryBody(q, nulls))
				var want bytes.Buffer
				err := WriteResponse(&want, tables, q, nulls, opts)
				var qe *QueryError
				if err != nil && !errors.As(err, &qe) {
					t.Fatalf("WriteResponse(%s): %v", q, err)
				}
				if !bytes.Equal(got, want.Bytes()) {
					t.Errorf("%s (includeNulls %v, %+v): HTTP body and WriteResponse differ:\n%.300s\n%.300s", q, nulls, opts, got, want.Bytes())
				}
			}
		}
	}
}

// TestStreamingMemory reads a 3,000,000-row response and checks that the
// heap does not grow with it.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a 3,000,000-row response")
	}
	const rows = 3_000_000
	srv := startServer(t, Options{Tables: []*Table{narrowTable("Big", rows)}, MaxRows: -1, MaxValues: -1, MaxBytes: -1})
	tok := getToken(t, srv)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse

	req, _ := http.NewRequest(http.MethodPost, queryURL(srv), strings.NewReader(queryBody("EVALUATE Big", true)))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var peak uint64
	var total int64
	var tail []byte
	buf := make([]byte, 256<<10)
	next := int64(0)
	for {
		n, err := resp.Body.Read(buf)
		total += int64(n)
		if n > 0 {
			tail = append(tail[:0], buf[max(0, n-16):n]...)
		}
		if total >= next {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			next += 8 << 20
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", total, err)
		}
	}
	if !bytes.HasSuffix(tail, []byte(`"row"}]}]}]}`)) || total < rows*30 {
		t.Errorf("read %d bytes ending %q", total, tail)
	}
	t.Logf("%d bytes; heap in use %d MB before, peak %d MB", total, base>>20, peak>>20)
	if peak > base+32<<20 {
		t.Errorf("heap in use grew from %d MB to %d MB while streaming %d MB", base>>20, peak>>20, total>>20)
	}
}

// TestBadValueAbortsResponse checks that a Table returning a value of the
// wrong type mid-stream aborts the response and is logged.
func TestBadValueAbortsResponse(t *testing.T) {
	tb := narrowTable("T", 10_000)
	tb.Value = func(i, c int) any {
		switch {
		case c == 1:
			return "row"
		case i == 9000:
			return "not an int64"
		}
		return int64(i)
	}
	srv := startServer(t, Options{Tables: []*Table{tb}})
	var logged bytes.Buffer
	srv.ts.Config.ErrorLog = log.New(&logged, "", 0)
	tok := getToken(t, srv)
	req, _ := http.NewRequest(http.MethodPost, queryURL(srv), strings.NewReader(queryBody("EVALUATE T", true)))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("the response ended cleanly")
	}
	if !strings.Contains(logged.String(), "table T row 9000 column ID") {
		t.Errorf("log %q", logged.String())
	}
}

func TestHeaderOnlyErrors(t *testing.T) {
	srv := startServer(t, Options{HeaderOnlyErrors: true})
	tok := getToken(t, srv)
	o := srv.Options()
	body := queryBody("EVALUATE Sales", true)
	refreshes := srv.URL() + "/v1.0/myorg/groups/" + o.WorkspaceID + "/datasets/" + o.DatasetID + "/refreshes"
	cases := []struct {
		name, url, tok string
		setup          func()
		status         int
		info           string
	}{
		{"no token", queryURL(srv), "", nil, 401, "InvalidToken"},
		{"unknown token", queryURL(srv), "forged", nil, 401, "InvalidToken"},
		{"other workspace", srv.URL() + "/v1.0/myorg/groups/" + DefaultDatasetID + "/datasets/" + o.DatasetID + "/executeQueries", tok, nil, 401, "GroupNotAccessible"},
		{"injected", queryURL(srv), tok, func() { srv.FailWithInfo(1, 401, "ServicePrincipalIsNotAllowedByTenantAdminSwitch") }, 401, "ServicePrincipalIsNotAllowedByTenantAdminSwitch"},
		{"refresh with an unknown token", refreshes, "forged", nil, 401, "InvalidToken"},
		{"expired", queryURL(srv), tok, srv.ExpireTokens, 403, "TokenExpired"},
		{"refresh with an expired token", refreshes, tok, nil, 403, "TokenExpired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			resp, b := post(t, srv.Client(), c.url, c.tok, body)
			if resp.StatusCode != c.status || len(b) != 0 || resp.Header.Get("X-PowerBI-Error-Info") != c.info {
				t.Errorf("status %d, X-PowerBI-Error-Info %q, body %q; want %d, %q and no body", resp.StatusCode, resp.Header.Get("X-PowerBI-Error-Info"), b, c.status, c.info)
			}
			if !uuidRE.MatchString(resp.Header.Get("RequestId")) {
				t.Errorf("RequestId %q", resp.Header.Get("RequestId"))
			}
		})
	}
	// Other errors keep their JSON bodies.
	resp, b := post(t, srv.Client(), srv.URL()+"/v1.0/myorg/groups/"+o.WorkspaceID+"/datasets/nope/executeQueries", getToken(t, srv), body)
	if e := decodeError(t, resp, b); resp.StatusCode != 404 || e.Error.Code != "PowerBIEntityNotFound" {
		t.Errorf("unknown dataset: %d %s", resp.StatusCode, b)
	}
}

func TestStall(t *testing.T) {
	srv := startServer(t, Options{})
	tok := getToken(t, srv)
	client := *srv.Client()
	client.Timeout = 300 * time.Millisecond

	// Nothing at all: not even the status line.
	srv.Stall(1, -1)
	req, _ := http.NewRequest(http.MethodPost, queryURL(srv), strings.NewReader(queryBody("EVALUATE Sales", true)))
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a stalled call answered %d", resp.StatusCode)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("gave up after %s: the fake did not stall", d)
	}

	// One chunk, then silence.
	srv.Stall(1, 100)
	client.Timeout = 0
	req, _ = http.NewRequest(http.MethodPost, queryURL(srv), strings.NewReader(queryBody("EVALUATE Sales", true)))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stalled body: %v", err)
	}
	got := make([]byte, 0, 200)
	buf := make([]byte, 200)
	done := make(chan error, 1)
	go func() {
		for {
			n, err := resp.Body.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		t.Fatalf("the body ended (%v) after %d bytes: it should have stalled", err, len(got))
	case <-time.After(300 * time.Millisecond):
	}
	resp.Body.Close() // the client gives up
	<-done
	if len(got) != 100 {
		t.Errorf("got %d bytes before the silence, want 100", len(got))
	}
	// The next call is whole.
	decode(t, runQuery(t, srv, tok, "EVALUATE Sales", true))

	// Close ends a stall in progress.
	srv2 := startServer(t, Options{})
	srv2.Stall(1, -1)
	tok2 := getToken(t, srv2)
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, queryURL(srv2), strings.NewReader(queryBody("EVALUATE Sales", true)))
		req.Header.Set("Authorization", "Bearer "+tok2)
		resp, err := srv2.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	for srv2.QueryRequests() == 0 { // the call is in the fake, stalled
		time.Sleep(5 * time.Millisecond)
	}
	srv2.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a call stalled by the fake succeeded when it closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a stall")
	}
}
