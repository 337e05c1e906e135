package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/sink/azureblob"
	"github.com/pbicopy/pbicopy/source/powerbi"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/mapping"
)

const testSecret = "pbicopy-test-secret-9f8e7d"

// fixture is a fake Power BI serving the demo model, and the environment a
// job needs to reach it.
type fixture struct {
	srv  *fakepbi.Server
	opts fakepbi.Options
	env  map[string]string
	dir  string
	logs *bytes.Buffer
}

func newFixture(t *testing.T, opts fakepbi.Options) *fixture {
	t.Helper()
	opts.ClientSecret = testSecret
	if opts.Tables == nil {
		opts.Tables = fakepbi.DemoModel()
	}
	srv, err := fakepbi.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	o := srv.Options()
	return &fixture{srv: srv, opts: o, dir: t.TempDir(), logs: &bytes.Buffer{}, env: map[string]string{
		"WS": o.WorkspaceID, "DS": o.DatasetID, "EP": srv.URL(), "AUTH": srv.AuthorityHost(),
		"TENANT": o.TenantID, "CLIENT": o.ClientID, "SECRET": testSecret,
	}}
}

func (f *fixture) lookup(name string) (string, bool) {
	v, ok := f.env[name]
	return v, ok
}

// fakeAuth is the auth block that signs in to the fixture's fake Entra ID.
const fakeAuth = `{ tenant: "${TENANT}", clientId: "${CLIENT}", clientSecret: "${SECRET}", authorityHost: "${AUTH}" }`

// fakeSource is the source block of a job reading the fixture's fake Power
// BI: lines are the fields under powerbi: that say what to read (a query,
// or a table and its paging), indented four spaces; auth is the auth
// block.
func fakeSource(lines, auth string) string {
	return "source:\n  powerbi:\n    workspace: ${WS}\n    dataset: ${DS}\n    endpoint: ${EP}\n" + lines + "    auth: " + auth + "\n"
}

// queryLine is the query field of fakeSource.
func queryLine(query string) string { return fmt.Sprintf("    query: %q\n", query) }

// job builds a job file querying the fake with query, mapping (YAML, may be
// empty) and Parquet and CSV sinks into the fixture's folder.
func (f *fixture) job(t *testing.T, query, mappingYAML string) *jobfile.Job {
	t.Helper()
	return f.jobOf(t, "test", queryLine(query), mappingYAML)
}

// jobOf is the job named name-job, from the file name.yaml, with the
// source lines given (see fakeSource), the mapping and f.job's sinks.
func (f *fixture) jobOf(t *testing.T, name, sourceLines, mappingYAML string) *jobfile.Job {
	t.Helper()
	text := fmt.Sprintf(`name: %s-job
%s%s
sinks:
  - parquet: { path: %q, compression: zstd }
  - csv: { path: %q }
`, name, fakeSource(sourceLines, fakeAuth), mappingYAML, filepath.Join(f.dir, "out.parquet"), filepath.Join(f.dir, "out.csv"))
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load(name+".yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func (f *fixture) runner(mem memory.Allocator) *Runner {
	return &Runner{
		Logger:    slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Sources:   &powerbi.Connector{HTTPClient: f.srv.Client(), RetryDelay: 10 * time.Millisecond},
		Mem:       mem,
		BatchRows: 100, // several batches even for small tables
		Storage:   azureblob.Storage{HTTPClient: f.srv.Client()},
	}
}

const salesMapping = `mapping:
  columns:
    - { from: "Sales[OrderID]", to: order_id, type: int64 }
    - { from: "Sales[OrderDate]", to: order_date, type: date }
    - { from: "Sales[Customer]", to: customer, type: string }
    - { from: "Sales[Region]", to: region, type: string }
    - { from: "Sales[Quantity]", to: quantity, type: int64 }
    - { from: "Sales[UnitPrice]", to: unit_price, type: "decimal(19,4)" }
    - { from: "Sales[Amount]", to: amount, type: "decimal(19,4)" }
    - { from: "Sales[Discount]", to: discount, type: float64 }
    - { from: "Sales[Returned]", to: returned, type: bool }`

func table(t *testing.T, tables []*fakepbi.Table, name string) *fakepbi.Table {
	t.Helper()
	for _, tb := range tables {
		if tb.Name == name {
			return tb
		}
	}
	t.Fatalf("the fake model has no table %s", name)
	return nil
}

// expectedRows derives the rows a job must write from the fake's own table
// definition, in the normalised form of sinktest: decimals at their scale,
// dates and timestamps as text.
func expectedRows(t *testing.T, tb *fakepbi.Table, cols []mapping.Column) [][]any {
	t.Helper()
	idx := make([]int, len(cols))
	for i, c := range cols {
		_, name := mapping.SplitKey(c.From)
		idx[i] = -1
		for j, tc := range tb.Columns {
			if tc.Name == name {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			t.Fatalf("no column %s in %s", name, tb.Name)
		}
	}
	rows := make([][]any, tb.Rows)
	for r := range rows {
		row := make([]any, len(cols))
		for i, c := range cols {
			v := tb.Value(r, idx[i])
			switch x := v.(type) {
			case nil:
			case fakepbi.Decimal:
				if c.Type.Kind == mapping.Float64 {
					f, err := strconv.ParseFloat(string(x), 64)
					if err != nil {
						t.Fatal(err)
					}
					row[i] = f
					break
				}
				n, err := sinktest.ParseDecimal(string(x), c.Type.Precision, c.Type.Scale)
				if err != nil {
					t.Fatal(err)
				}
				row[i] = sinktest.DecimalString(n.BigInt(), c.Type.Scale)
			case time.Time:
				if c.Type.Kind == mapping.Date {
					row[i] = x.Format("2006-01-02")
				} else {
					row[i] = x.Format("2006-01-02T15:04:05.999999")
				}
			default:
				row[i] = x
			}
			_ = big.NewInt
		}
		rows[r] = row
	}
	return rows
}

func mustColumns(t *testing.T, job *jobfile.Job) []mapping.Column {
	t.Helper()
	var cols []mapping.Column
	for _, c := range job.Mapping.Columns {
		ty, err := mapping.ParseType(c.Type)
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, mapping.Column{From: c.From, To: c.To, Type: ty})
	}
	return cols
}

// checkOutputs reads both outputs back, the Parquet file through arrow and
// through xitongsys/parquet-go, and compares them value by value with want.
func checkOutputs(t *testing.T, f *fixture, cols []mapping.Column, want [][]any) {
	t.Helper()
	pq := filepath.Join(f.dir, "out.parquet")
	_, got, err := sinktest.ReadParquetArrow(pq, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	if d := sinktest.DiffRows(want, got); d != "" {
		t.Errorf("parquet via arrow: %s", d)
	}
	got, err = sinktest.ReadParquetXitongsys(pq)
	if err != nil {
		t.Fatal(err)
	}
	if d := sinktest.DiffRows(want, got); d != "" {
		t.Errorf("parquet via xitongsys: %s", d)
	}
	recs, err := sinktest.ReadCSV(filepath.Join(f.dir, "out.csv"))
	if err != nil {
		t.Fatal(err)
	}
	got, err = sinktest.CSVRows(recs, mapping.Schema(cols))
	if err != nil {
		t.Fatal(err)
	}
	if d := sinktest.DiffRows(want, got); d != "" {
		t.Errorf("csv: %s", d)
	}
	for _, name := range []string{"out.parquet", "out.csv"} {
		st, err := os.Stat(filepath.Join(f.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o044 != 0o044 {
			t.Errorf("%s has mode %v, want readable by group and others", name, st.Mode().Perm())
		}
	}
}

// noTempFiles asserts that the output folder holds exactly names.
func noTempFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	var got []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got = append(got, d.Name())
		}
		return nil
	})
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("files in the output folder: %v, want %v", got, names)
	}
}

func TestRunEndToEnd(t *testing.T) {
	f := newFixture(t, fakepbi.Options{BOM: true})
	job := f.job(t, "EVALUATE Sales ORDER BY Sales[OrderID] ASC", salesMapping)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	res := f.runner(mem).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v\nlogs:\n%s", res.Err(), f.logs)
	}
	mem.AssertSize(t, 0)
	cols := mustColumns(t, job)
	tb := table(t, f.opts.Tables, "Sales")
	checkOutputs(t, f, cols, expectedRows(t, tb, cols))
	if res.Rows != int64(tb.Rows) || len(res.Sinks) != 2 || res.Sinks[0].Rows != int64(tb.Rows) || res.Sinks[1].Rows != int64(tb.Rows) {
		t.Errorf("result: rows %d, sinks %+v", res.Rows, res.Sinks)
	}
	if res.Sinks[0].Location != filepath.Join(f.dir, "out.parquet") || res.Sinks[0].Bytes == 0 {
		t.Errorf("parquet result: %+v", res.Sinks[0])
	}
	qs := f.srv.Queries()
	if len(qs) != 1 || qs[0].IncludeNulls == nil || !*qs[0].IncludeNulls || !strings.HasPrefix(qs[0].Authorization, "Bearer ") {
		t.Errorf("request: %+v", qs)
	}
	noTempFiles(t, f.dir, "out.csv", "out.parquet")
	if strings.Contains(f.logs.String(), testSecret) {
		t.Error("the client secret appears in the logs")
	}
}

func TestRunInferred(t *testing.T) {
	f := newFixture(t, fakepbi.Options{})
	job := f.job(t, "EVALUATE Sales", "")
	res := f.runner(nil).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	// Types no later value can break: the currency columns, whose values
	// have at most 4 decimals, and the midnight-only dates are not guessed
	// (notes say what to declare).
	want := []string{"order_id int64", "order_date timestamp", "customer string", "region string", "quantity int64",
		"unit_price float64", "amount float64", "discount float64", "returned bool"}
	if strings.Join(res.Columns, ", ") != strings.Join(want, ", ") {
		t.Errorf("inferred columns:\n got %v\nwant %v", res.Columns, want)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, n := range []string{"key Sales[OrderDate]: every value is at midnight", "key Sales[UnitPrice]: every value has at most 4 decimals", "key Sales[Amount]: every value has at most 4 decimals"} {
		if !strings.Contains(notes, n) {
			t.Errorf("notes %q: want %q", res.Notes, n)
		}
	}
	// The inferred mapping must write exactly what the same mapping
	// declared writes.
	declared := f.job(t, "EVALUATE Sales", strings.NewReplacer("type: date", "type: timestamp", "type: \"decimal(19,4)\"", "type: float64", "type: decimal(19,4)", "type: float64").Replace(salesMapping))
	cols := mustColumns(t, declared)
	checkOutputs(t, f, cols, expectedRows(t, table(t, f.opts.Tables, "Sales"), cols))
}

// publishPrevious writes marker files where the job's outputs go, so a test
// can check a failed run left them untouched.
func publishPrevious(t *testing.T, f *fixture) {
	t.Helper()
	for _, name := range []string{"out.parquet", "out.csv"} {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte("previous "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func checkPreviousUntouched(t *testing.T, f *fixture) {
	t.Helper()
	for _, name := range []string{"out.parquet", "out.csv"} {
		data, err := os.ReadFile(filepath.Join(f.dir, name))
		if err != nil || string(data) != "previous "+name {
			t.Errorf("%s was changed by a failed run: %q, %v", name, data, err)
		}
	}
	noTempFiles(t, f.dir, "out.csv", "out.parquet")
}

func TestRunFailuresPublishNothing(t *testing.T) {
	t.Parallel() // its own fake, folder and outputs
	cases := []struct {
		name  string
		opts  fakepbi.Options
		query string
		setup func(*fakepbi.Server)
		want  []string
	}{
		{name: "truncated rows in table slot", opts: fakepbi.Options{MaxRows: 250},
			query: "EVALUATE Sales", want: []string{"More than 250 rows", "table error slot", "nothing was published", "RequestId"}},
		{name: "truncated values in top slot", opts: fakepbi.Options{MaxValues: 900, TruncationSlot: fakepbi.SlotTop},
			query: "EVALUATE Sales", want: []string{"More than 900 values", "response error slot"}},
		{name: "truncated in result slot", opts: fakepbi.Options{MaxRows: 10, TruncationSlot: fakepbi.SlotResult},
			query: "EVALUATE Sales", want: []string{"result error slot"}},
		{name: "DAX error", query: "EVALUATE Salez",
			want: []string{"HTTP 400", "DatasetExecuteQueriesError", "Salez", "RequestId"}},
		{name: "body cut every time", query: "EVALUATE Sales",
			setup: func(s *fakepbi.Server) { s.CutBody(10, 4000) }, want: []string{"broke off"}},
		{name: "silent 15 MB cut", opts: fakepbi.Options{Tables: []*fakepbi.Table{fakepbi.BenchTable(200_000)}, MaxRows: -1, MaxValues: -1},
			query: "EVALUATE Sales", want: []string{"15 MB per-query limit", "may be silently incomplete"}},
		{name: "value does not fit", query: "EVALUATE Sales",
			want: []string{"row 1, column order_id (bool, from Sales[OrderID]): value 1 is a number, not true or false"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.opts)
			m := salesMapping
			switch {
			case strings.HasPrefix(c.name, "value"):
				m = strings.Replace(m, "to: order_id, type: int64", "to: order_id, type: bool", 1)
			case strings.HasPrefix(c.name, "silent"):
				m = "" // inferred
			}
			job := f.job(t, c.query, m)
			publishPrevious(t, f)
			if c.setup != nil {
				c.setup(f.srv)
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			res := f.runner(mem).Run(context.Background(), job)
			if res.Err() == nil {
				t.Fatal("the run succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(res.Err().Error(), w) {
					t.Errorf("error lacks %q: %v", w, res.Err())
				}
			}
			mem.AssertSize(t, 0)
			checkPreviousUntouched(t, f)
		})
	}
}

// TestRunRecovers: what the service throws at a run that it gets over,
// and how the run counts it: a 429 is throttling (with its wait), a server
// error or a body that broke off is a back-off apart from it, and a
// re-read or a continuation is a retry, not a page.
func TestRunRecovers(t *testing.T) {
	t.Parallel() // its own fake, folder and outputs
	cases := []struct {
		name     string
		paged    bool
		setup    func(*fakepbi.Server)
		attempts int
		throttle int
		requests int
		retries  int
		backoffs int
		pages    int
	}{
		{"throttled twice", false, func(s *fakepbi.Server) { s.Throttle(2, time.Second) }, 1, 2, 3, 2, 0, 1},
		{"server error", false, func(s *fakepbi.Server) { s.FailWith(1, 503) }, 1, 0, 2, 1, 1, 1},
		{"body cut once", false, func(s *fakepbi.Server) { s.CutBody(1, 3000) }, 2, 0, 2, 1, 1, 1},
		{"redirected", false, func(s *fakepbi.Server) { s.Redirect(1) }, 1, 0, 2, 1, 0, 1},
		// 1,000 rows in pages of 400: 3 pages, the first continued after a cut.
		{"paged: page cut once", true, func(s *fakepbi.Server) { s.CutBody(1, 3000) }, 1, 0, 4, 1, 1, 3},
		{"paged: server error", true, func(s *fakepbi.Server) { s.FailWith(1, 500) }, 1, 0, 4, 1, 1, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fakepbi.Options{})
			job := f.job(t, "EVALUATE Sales", salesMapping)
			if c.paged {
				job = f.pagedJob(t, salesMapping, "400")
			}
			c.setup(f.srv)
			res := f.runner(nil).Run(context.Background(), job)
			if res.Err() != nil {
				t.Fatalf("run: %v", res.Err())
			}
			if res.Attempts != c.attempts || res.Throttled != c.throttle || res.Requests != c.requests {
				t.Errorf("attempts %d throttled %d requests %d, want %d %d %d", res.Attempts, res.Throttled, res.Requests, c.attempts, c.throttle, c.requests)
			}
			if res.Retries != c.retries || res.BackedOff != c.backoffs || res.Pages != c.pages {
				t.Errorf("retries %d backed off %d pages %d, want %d %d %d", res.Retries, res.BackedOff, res.Pages, c.retries, c.backoffs, c.pages)
			}
			if got := f.srv.QueryRequests(); got != res.Requests {
				t.Errorf("the fake saw %d requests, the run reports %d", got, res.Requests)
			}
			// The waits are each counted where they belong: Retry-After
			// (1s) after a 429, the retry delay (10ms) after a 5xx.
			if (res.ThrottledWait >= 2*time.Second) != (c.throttle == 2) || (res.ThrottledWait > 0) != (c.throttle > 0) {
				t.Errorf("throttled wait %s for %d throttled requests", res.ThrottledWait, c.throttle)
			}
			if wantWait := strings.Contains(c.name, "server error"); (res.BackoffWait >= 5*time.Millisecond) != wantWait {
				t.Errorf("back-off wait %s (want one: %v)", res.BackoffWait, wantWait)
			}
			for _, q := range f.srv.Queries() {
				if !strings.HasPrefix(q.Authorization, "Bearer ") {
					t.Errorf("request to %s without a bearer token", q.Host)
				}
			}
			cols := mustColumns(t, job)
			checkOutputs(t, f, cols, expectedRows(t, table(t, f.opts.Tables, "Sales"), cols))
		})
	}
}

func TestRunCancelledPublishesNothing(t *testing.T) {
	f := newFixture(t, fakepbi.Options{Tables: []*fakepbi.Table{fakepbi.BenchTable(2_000_000)}, MaxRows: -1, MaxValues: -1, MaxBytes: -1})
	job := f.job(t, "EVALUATE Sales", "")
	publishPrevious(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	r := f.runner(nil)
	connector(r).ResultBytes = -1 // a response far past 15 MB, cancelled midway
	res := r.Run(ctx, job)
	if !errors.Is(res.Err(), context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", res.Err())
	}
	checkPreviousUntouched(t, f)
}

func TestRunWrongSecretNeverShown(t *testing.T) {
	f := newFixture(t, fakepbi.Options{})
	f.env["SECRET"] = "wrong-secret-value-123"
	job := f.job(t, "EVALUATE Sales", salesMapping)
	res := f.runner(nil).Run(context.Background(), job)
	if res.Err() == nil || !strings.Contains(res.Err().Error(), "AADSTS7000215") {
		t.Fatalf("err = %v, want AADSTS7000215", res.Err())
	}
	for _, out := range []string{res.Err().Error(), f.logs.String()} {
		if strings.Contains(out, "wrong-secret-value-123") || strings.Contains(out, testSecret) {
			t.Errorf("a secret leaked: %s", out)
		}
	}
}

func TestRunFileSource(t *testing.T) {
	dir := t.TempDir()
	resp := filepath.Join(dir, "response.json")
	tables := fakepbi.DemoModel()
	var buf bytes.Buffer
	buf.WriteString("\xEF\xBB\xBF")
	if err := fakepbi.WriteResponse(&buf, tables, "EVALUATE Sales", false, fakepbi.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(resp, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("name: file-job\nsource: { file: %q }\n%s\nsinks:\n  - parquet: { path: %q }\n  - csv: { path: %q }\n",
		resp, salesMapping, filepath.Join(dir, "out.parquet"), filepath.Join(dir, "out.csv"))
	job, _, err := jobfile.Loader{}.Load("file.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	res := (&Runner{Sources: &powerbi.Connector{}}).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	f := &fixture{dir: dir}
	cols := mustColumns(t, job)
	checkOutputs(t, f, cols, expectedRows(t, table(t, tables, "Sales"), cols))
}

// connector is the Power BI connector of a runner made by the fixture.
func connector(r *Runner) *powerbi.Connector { return r.Sources.(*powerbi.Connector) }
