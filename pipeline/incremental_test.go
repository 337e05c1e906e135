package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/faults"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/jobfile"
)

// orders is a table whose rows change between runs, as a source of an
// incremental extract: row i was modified at ordersBase + i hours, and
// rows from ordersArrived on have not arrived yet (modified in 1900, which
// no watermark reaches).
type orders struct {
	mu       sync.Mutex
	modified []time.Time
	amount   []int64
}

const (
	ordersRows    = 120
	ordersArrived = 100
)

var ordersBase = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

func newOrders() *orders {
	o := &orders{modified: make([]time.Time, ordersRows), amount: make([]int64, ordersRows)}
	for i := range ordersRows {
		o.modified[i] = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
		if i < ordersArrived {
			o.modified[i] = ordersBase.Add(time.Duration(i) * time.Hour)
		}
		o.amount[i] = int64(i)
	}
	return o
}

// touch modifies row i at ordersBase + h hours with a new amount (a row
// that had not arrived arrives).
func (o *orders) touch(i, h int, amount int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.modified[i] = ordersBase.Add(time.Duration(h) * time.Hour)
	o.amount[i] = amount
}

func (o *orders) table() *fakepbi.Table {
	return &fakepbi.Table{
		Name:     "Orders",
		Columns:  []fakepbi.Column{{Name: "ID", Type: fakepbi.Int64}, {Name: "ModifiedOn", Type: fakepbi.DateTime}, {Name: "Amount", Type: fakepbi.Int64}},
		Rows:     ordersRows,
		SortedBy: "ID",
		Value: func(i, c int) any {
			o.mu.Lock()
			defer o.mu.Unlock()
			switch c {
			case 0:
				return int64(i + 1)
			case 1:
				return o.modified[i]
			}
			return o.amount[i]
		},
	}
}

const ordersMapping = `mapping:
  columns:
    - { from: "Orders[ID]", to: id, type: int64 }
    - { from: "Orders[ModifiedOn]", to: modified_on, type: timestamp }
    - { from: "Orders[Amount]", to: amount, type: int64 }
`

const ordersQuery = "EVALUATE FILTER(Orders, Orders[ModifiedOn] > {{ dax .since }})"

// incrWorld is a fake Power BI serving orders, and incremental jobs on it.
type incrWorld struct {
	*fixture
	orders *orders
}

func newIncrWorld(t *testing.T) *incrWorld {
	o := newOrders()
	return &incrWorld{fixture: newFixture(t, fakepbi.Options{Tables: []*fakepbi.Table{o.table()}}), orders: o}
}

// incrJob is an incremental job: the incremental block's lookback (""
// for none), the source's lines (a query, or a table and paging), and the
// state and sinks sections.
func (w *incrWorld) incrJob(t *testing.T, lookback, sourceLines, state, sinks string) *jobfile.Job {
	t.Helper()
	if lookback != "" {
		lookback = "  lookback: " + lookback + "\n"
	}
	text := fmt.Sprintf(`name: orders
%s%sparams:
  since: { type: datetime }
incremental:
  param: since
  column: modified_on
  initial: "2024-01-01T00:00:00Z"
%s%s
sinks:
%s`, fakeSource(sourceLines, fakeAuth), ordersMapping, lookback, state, sinks)
	w.env["PG_DSN"] = sinktest.PGDSN()
	job, _, err := jobfile.Loader{LookupEnv: w.lookup}.Load("orders.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// lastQuery is the text of the last query the fake received.
func (w *incrWorld) lastQuery(t *testing.T) string {
	t.Helper()
	q := w.srv.Queries()
	if len(q) == 0 {
		t.Fatal("no query was sent")
	}
	return q[len(q)-1].Query
}

func readIncrState(t *testing.T, path string) IncrementalState {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st IncrementalState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// ordersTable reads a table loaded from orders: id, amount and
// modification time, by id.
func ordersTable(t *testing.T, conn *pgx.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "select id, amount, modified_on from "+table+" order by id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, amount int64
		var at time.Time
		if err := rows.Scan(&id, &amount, &at); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d:%d:%s", id, amount, at.Format(time.DateTime)))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustSucceedIncr(t *testing.T, res *JobResult) {
	t.Helper()
	if res.Err() != nil {
		t.Fatalf("run failed: %v", res.Err())
	}
}

// TestIncrementalRunsIntegration: the first run loads the window from
// incremental.initial; the next reads only rows past the stored watermark
// (minus the lookback), which a merge loads without duplicates; rows that
// change or arrive move the watermark; {{ .runId }} keeps every run's
// file.
func TestIncrementalRunsIntegration(t *testing.T) {
	w := newIncrWorld(t)
	conn, schema := pgSchema(t)
	table := schema + ".orders"
	statePath := filepath.Join(w.dir, "state", "orders.json")
	job := w.incrJob(t, "2h", queryLine(ordersQuery), fmt.Sprintf("state: { path: %q }", statePath),
		fmt.Sprintf("  - postgres: { dsn: \"${PG_DSN}\", table: %s, mode: merge, key: [id] }\n  - parquet: { path: %q }\n",
			table, filepath.Join(w.dir, "out", "run={{ .runId }}", "orders.parquet")))
	runAt := func(min int) *Runner {
		r := w.runner(nil)
		r.Now = func() time.Time { return time.Date(2024, 6, 1, 0, min, 0, 0, time.UTC) }
		return r
	}

	// Run 1: from the initial watermark, every row that has arrived.
	res := runAt(1).Run(context.Background(), job)
	mustSucceedIncr(t, res)
	if q := w.lastQuery(t); !strings.Contains(q, "> DATETIME(2024, 1, 1, 0, 0, 0)") {
		t.Errorf("run 1 query: %s", q)
	}
	if res.Rows != ordersArrived {
		t.Errorf("run 1 read %d rows, want %d", res.Rows, ordersArrived)
	}
	last := ordersBase.Add((ordersArrived - 1) * time.Hour).Format(jobfile.DateTimeLayout)
	wm := res.Watermark
	if wm == nil || wm.Old != "" || wm.Source != "initial" || wm.From != "2024-01-01T00:00:00Z" || wm.New != last || !wm.Advanced {
		t.Errorf("run 1 watermark: %+v", wm)
	}
	if st := readIncrState(t, statePath); st.Watermark != last || st.Rows != ordersArrived || st.RunID != "20240601T000100Z" || st.Type != "datetime" {
		t.Errorf("state after run 1: %+v", st)
	}
	after1 := ordersTable(t, conn, table)
	if len(after1) != ordersArrived {
		t.Fatalf("table after run 1: %d rows", len(after1))
	}

	// Run 2: nothing new; the lookback re-reads two hours before the
	// watermark, which the merge loads again without duplicates, and the
	// watermark is kept.
	stateBefore, _ := os.ReadFile(statePath)
	res = runAt(2).Run(context.Background(), job)
	mustSucceedIncr(t, res)
	if q := w.lastQuery(t); !strings.Contains(q, "> DATETIME(2024, 3, 5, 1, 0, 0)") {
		t.Errorf("run 2 query (watermark 2024-03-05T03:00:00Z minus 2h): %s", q)
	}
	if res.Rows != 2 {
		t.Errorf("run 2 read %d rows, want the 2 of the lookback", res.Rows)
	}
	if wm := res.Watermark; wm.Old != last || wm.New != last || wm.Advanced || wm.Source != "state" {
		t.Errorf("run 2 watermark: %+v", wm)
	}
	if got := ordersTable(t, conn, table); strings.Join(got, ",") != strings.Join(after1, ",") {
		t.Errorf("the lookback changed the table:\n%v\nwant\n%v", got, after1)
	}
	if now, _ := os.ReadFile(statePath); string(now) != string(stateBefore) {
		t.Errorf("a run with nothing new rewrote the state:\n%s", now)
	}

	// Row 10 changes and rows 100 to 104 arrive: run 3 reads them and the
	// margin, and the watermark moves to their time.
	w.orders.touch(9, 150, 1010) // id 10
	for i := 100; i < 105; i++ {
		w.orders.touch(i, 140+i-100, int64(i))
	}
	res = runAt(3).Run(context.Background(), job)
	mustSucceedIncr(t, res)
	if res.Rows != 2+6 {
		t.Errorf("run 3 read %d rows, want 8 (2 of the lookback, 1 changed, 5 new)", res.Rows)
	}
	newest := ordersBase.Add(150 * time.Hour).Format(jobfile.DateTimeLayout)
	if wm := res.Watermark; wm.Old != last || wm.New != newest || !wm.Advanced {
		t.Errorf("run 3 watermark: %+v", wm)
	}
	got := ordersTable(t, conn, table)
	if len(got) != 105 || got[9] != "10:1010:2024-03-07 06:00:00" {
		t.Errorf("table after run 3: %d rows, row 10 %q", len(got), got[9])
	}
	files, _ := filepath.Glob(filepath.Join(w.dir, "out", "run=*", "orders.parquet"))
	if len(files) != 3 {
		t.Errorf("want one Parquet file per run ({{ .runId }}), got %v", files)
	}
}

// TestIncrementalEmptyResultKeepsWatermark: a run that reads no row keeps
// the stored watermark and leaves the state file alone.
func TestIncrementalEmptyResultKeepsWatermark(t *testing.T) {
	w := newIncrWorld(t)
	statePath := filepath.Join(w.dir, "orders.json")
	job := w.incrJob(t, "", queryLine(ordersQuery), fmt.Sprintf("state: { path: %q }", statePath),
		fmt.Sprintf("  - csv: { path: %q }\n", filepath.Join(w.dir, "out", "{{ .runId }}.csv")))
	mustSucceedIncr(t, w.runner(nil).Run(context.Background(), job))
	before, _ := os.ReadFile(statePath)
	res := w.runner(nil).Run(context.Background(), job)
	mustSucceedIncr(t, res)
	if res.Rows != 0 || res.Watermark.Advanced || res.Watermark.New != res.Watermark.Old || res.Watermark.Old == "" {
		t.Errorf("empty run: %d rows, watermark %+v", res.Rows, res.Watermark)
	}
	if after, _ := os.ReadFile(statePath); string(after) != string(before) {
		t.Errorf("the state changed:\n%s\nwas\n%s", after, before)
	}
}

// TestIncrementalFailureKeepsWatermark: a run whose sink fails, or that is
// interrupted, saves nothing; the next run reads the same window.
func TestIncrementalFailureKeepsWatermark(t *testing.T) {
	w := newIncrWorld(t)
	statePath := filepath.Join(w.dir, "orders.json")
	job := w.incrJob(t, "", queryLine(ordersQuery), fmt.Sprintf("state: { path: %q }", statePath),
		fmt.Sprintf("  - csv: { path: %q }\n  - parquet: { path: %q }\n", filepath.Join(w.dir, "out", "{{ .runId }}.csv"), filepath.Join(w.dir, "out", "{{ .runId }}.parquet")))
	mustSucceedIncr(t, w.runner(nil).Run(context.Background(), job))
	before, _ := os.ReadFile(statePath)
	// Every run from now on, failed or not, reads from the stored
	// watermark, the last row's time.
	window := "EVALUATE FILTER(Orders, Orders[ModifiedOn] > DATETIME(2024, 3, 5, 3, 0, 0))"
	w.orders.touch(100, 200, 1)

	for _, c := range []struct {
		name   string
		plan   func(cancel func()) *faults.Plan
		status Status
	}{
		{"a commit fails", func(func()) *faults.Plan { return &faults.Plan{Index: 1, At: faults.Commit} }, Failed},
		{"a write fails", func(func()) *faults.Plan { return &faults.Plan{Index: 0, At: faults.FirstWrite} }, Failed},
		{"interrupted before the commits", func(cancel func()) *faults.Plan {
			return &faults.Plan{Index: 0, At: faults.FirstWrite, Act: cancel}
		}, Interrupted},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := w.runner(nil)
			r.WrapSink = c.plan(cancel).Wrap
			res := r.Run(ctx, job)
			if res.Status != c.status && !(c.status == Failed && res.Status == PartiallyPublished) {
				t.Fatalf("status %s (%v), want %s", res.Status, res.Err(), c.status)
			}
			if res.Watermark == nil || res.Watermark.Advanced || res.Watermark.New != res.Watermark.Old {
				t.Errorf("watermark: %+v", res.Watermark)
			}
			if after, _ := os.ReadFile(statePath); string(after) != string(before) {
				t.Errorf("the state changed:\n%s", after)
			}
			if q := w.lastQuery(t); q != window {
				t.Errorf("the failed run read another window: %s, want %s", q, window)
			}
		})
	}
	res := w.runner(nil).Run(context.Background(), job)
	mustSucceedIncr(t, res)
	if q := w.lastQuery(t); q != window || res.Rows != 1 || !res.Watermark.Advanced {
		t.Errorf("the run after the failures: %s, %d rows, %+v", q, res.Rows, res.Watermark)
	}
}

// TestIncrementalOverrides: --param sets the watermark for one run without
// moving the stored one back; --reset-watermark starts again from
// incremental.initial and saves what it reads.
func TestIncrementalOverrides(t *testing.T) {
	w := newIncrWorld(t)
	statePath := filepath.Join(w.dir, "orders.json")
	job := w.incrJob(t, "", queryLine(ordersQuery), fmt.Sprintf("state: { path: %q }", statePath),
		fmt.Sprintf("  - csv: { path: %q }\n", filepath.Join(w.dir, "out", "{{ .runId }}.csv")))
	mustSucceedIncr(t, w.runner(nil).Run(context.Background(), job))
	stored := readIncrState(t, statePath).Watermark

	r := w.runner(nil)
	r.Params = map[string]string{"since": "2024-03-04T00:00:00Z"}
	res := r.Run(context.Background(), job)
	mustSucceedIncr(t, res)
	if q := w.lastQuery(t); !strings.Contains(q, "> DATETIME(2024, 3, 4, 0, 0, 0)") || res.Rows != 27 {
		t.Errorf("--param run: %d rows, query %s", res.Rows, q)
	}
	if wm := res.Watermark; wm.Source != "--param" || wm.Old != stored || wm.New != stored || wm.Advanced {
		t.Errorf("--param watermark: %+v", wm)
	}
	if !strings.Contains(w.logs.String(), "--param overrides the stored watermark for this run") {
		t.Error("the override was not logged")
	}
	if got := readIncrState(t, statePath).Watermark; got != stored {
		t.Errorf("--param moved the stored watermark to %s", got)
	}

	r = w.runner(nil)
	r.ResetWatermark = true
	res = r.Run(context.Background(), job)
	mustSucceedIncr(t, res)
	if q := w.lastQuery(t); !strings.Contains(q, "> DATETIME(2024, 1, 1, 0, 0, 0)") || res.Rows != ordersArrived {
		t.Errorf("reset run: %d rows, query %s", res.Rows, q)
	}
	if wm := res.Watermark; wm.Source != "initial" || wm.Old != stored || !wm.Advanced || wm.New != stored {
		t.Errorf("reset watermark: %+v", wm)
	}
	if !strings.Contains(w.logs.String(), "--reset-watermark: the stored watermark is forgotten") {
		t.Error("the reset was not logged")
	}
	if err := (&Runner{ResetWatermark: true}).CheckArgs(w.job(t, "EVALUATE Orders", "")); err == nil || !strings.Contains(err.Error(), "is not incremental") {
		t.Errorf("--reset-watermark on a job that is not incremental: %v", err)
	}
}

// TestIncrementalKeysetPaging: the watermark filter inside the paged table
// expression; every page carries it.
func TestIncrementalKeysetPaging(t *testing.T) {
	w := newIncrWorld(t)
	conn, schema := pgSchema(t)
	table := schema + ".orders"
	statePath := filepath.Join(w.dir, "orders.json")
	src := "    table: \"FILTER(Orders, Orders[ModifiedOn] > {{ dax .since }})\"\n    paging: { key: \"Orders[ID]\", pageRows: 30 }\n"
	job := w.incrJob(t, "1h", src, fmt.Sprintf("state: { path: %q }", statePath),
		fmt.Sprintf("  - postgres: { dsn: \"${PG_DSN}\", table: %s, mode: merge, key: [id] }\n", table))
	res := w.runner(nil).Run(context.Background(), job)
	mustSucceedIncr(t, res)
	if res.Rows != ordersArrived || res.Pages < 4 {
		t.Errorf("run 1: %d rows in %d pages", res.Rows, res.Pages)
	}
	for _, q := range w.srv.Queries() {
		if !strings.Contains(q.Query, "FILTER(Orders, Orders[ModifiedOn] > DATETIME(2024, 1, 1, 0, 0, 0))") {
			t.Errorf("a page without the watermark filter: %s", q.Query)
		}
	}
	n := len(w.srv.Queries())
	w.orders.touch(4, 300, 555) // id 5
	res = w.runner(nil).Run(context.Background(), job)
	mustSucceedIncr(t, res)
	if res.Rows != 2 || len(w.srv.Queries()) != n+1 {
		t.Errorf("run 2: %d rows (want the changed row and the hour of lookback) in %d requests", res.Rows, len(w.srv.Queries())-n)
	}
	if q := w.lastQuery(t); !strings.Contains(q, "> DATETIME(2024, 3, 5, 2, 0, 0)") {
		t.Errorf("run 2 page: %s", q)
	}
	got := ordersTable(t, conn, table)
	if len(got) != ordersArrived || got[4] != "5:555:2024-03-13 12:00:00" {
		t.Errorf("table: %d rows, row 5 %q", len(got), got[4])
	}
}

// TestIncrementalOverlappingRunsLocal: a run that overlaps another cannot
// advance the watermark the other advanced (local state file).
func TestIncrementalOverlappingRunsLocal(t *testing.T) {
	w := newIncrWorld(t)
	statePath := filepath.Join(w.dir, "orders.json")
	job := w.incrJob(t, "", queryLine(ordersQuery), fmt.Sprintf("state: { path: %q }", statePath),
		fmt.Sprintf("  - csv: { path: %q }\n", filepath.Join(w.dir, "out", "{{ .runId }}.csv")))
	state := func() string {
		data, _ := os.ReadFile(statePath)
		return string(data)
	}
	// The first runs, with no state yet, and then two with one.
	checkOverlap(t, w, job, state)
	checkOverlap(t, w, job, state)
}

// overlaps counts the calls of checkOverlap, each of which brings a new
// row.
var overlaps int

// checkOverlap runs the job (A) and, while A is committing, a second run
// (B) to the end: B advances the watermark, and A, whose sinks committed,
// fails to save its own, leaving B's.
func checkOverlap(t *testing.T, w *incrWorld, job *jobfile.Job, state func() string) {
	t.Helper()
	overlaps++
	w.orders.touch(100+overlaps, 500+overlaps, 1)
	var b *JobResult
	var stateB string
	a := w.runner(nil)
	a.WrapSink = (&faults.Plan{Index: 0, At: faults.Commit, Act: func() {
		b = w.runner(nil).Run(context.Background(), job)
		stateB = state()
	}}).Wrap
	res := a.Run(context.Background(), job)
	if b == nil || b.Err() != nil || !b.Watermark.Advanced {
		t.Fatalf("run B: %+v", b)
	}
	if res.Err() == nil || res.Phase != "state" || !strings.Contains(res.Error, "another run of job orders overlapped this one") {
		t.Fatalf("run A: %s %s %v", res.Status, res.Phase, res.Err())
	}
	if res.Watermark.Advanced || res.Watermark.New != res.Watermark.Old {
		t.Errorf("run A's watermark: %+v", res.Watermark)
	}
	if got := state(); got != stateB {
		t.Errorf("run A changed the state after run B:\n%s\nwant\n%s", got, stateB)
	}
	for _, s := range res.Sinks {
		if s.Status != Succeeded {
			t.Errorf("run A's sinks: %+v", res.Sinks)
		}
	}
}

// TestIncrementalOverlappingRunsBlobIntegration: the same on Blob
// Storage, where the state's write is conditional on its ETag.
func TestIncrementalOverlappingRunsBlobIntegration(t *testing.T) {
	o := newOrders()
	bf := newBlobFixtureAlone(t, fakepbi.Options{Tables: []*fakepbi.Table{o.table()}})
	w := &incrWorld{fixture: bf.fixture, orders: o}
	job := w.incrJob(t, "", queryLine(ordersQuery),
		"storage: { connectionString: \"${AZ_CS}\" }\nstate: { path: \"az://${CONTAINER}/state/orders.json\" }",
		"  - parquet: { path: \"az://${CONTAINER}/orders/run={{ .runId }}/orders.parquet\" }\n")
	state := func() string {
		data, err := os.ReadFile(sinktest.DownloadToFile(t, bf.cc, "state/orders.json"))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	// The first runs, with no state yet (If-None-Match: *), and then two
	// with one (If-Match).
	checkOverlap(t, w, job, state)
	var st IncrementalState
	if err := json.Unmarshal([]byte(state()), &st); err != nil || st.Watermark == "" {
		t.Fatalf("state on Blob: %v %+v", err, st)
	}
	checkOverlap(t, w, job, state)
}

// TestPlanShowsWatermark: plan works out the watermark and the query a run
// would use, reading the state and writing nothing.
func TestPlanShowsWatermark(t *testing.T) {
	w := newIncrWorld(t)
	statePath := filepath.Join(w.dir, "orders.json")
	job := w.incrJob(t, "3h", queryLine(ordersQuery), fmt.Sprintf("state: { path: %q }", statePath),
		fmt.Sprintf("  - csv: { path: %q }\n", filepath.Join(w.dir, "out", "{{ .runId }}.csv")))
	p, err := (&Runner{}).Plan(job)
	if err != nil {
		t.Fatal(err)
	}
	if p.Watermark == nil || p.Watermark.Source != "initial" || !strings.Contains(p.Partitions[0].FirstQuery, "> DATETIME(2024, 1, 1, 0, 0, 0)") {
		t.Errorf("plan before any run: %+v %s", p.Watermark, p.Partitions[0].FirstQuery)
	}
	if _, err := os.Stat(statePath); err == nil {
		t.Error("plan wrote the state")
	}
	mustSucceedIncr(t, w.runner(nil).Run(context.Background(), job))
	p, err = (&Runner{}).Plan(job)
	if err != nil {
		t.Fatal(err)
	}
	if wm := p.Watermark; wm.Source != "state" || wm.Old != "2024-03-05T03:00:00Z" || wm.From != "2024-03-05T00:00:00Z" || !strings.Contains(p.Partitions[0].FirstQuery, "> DATETIME(2024, 3, 5, 0, 0, 0)") {
		t.Errorf("plan after a run: %+v %s", wm, p.Partitions[0].FirstQuery)
	}
	if err := os.WriteFile(statePath, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Runner{}).Plan(job); err == nil || !strings.Contains(err.Error(), "is damaged") || !strings.Contains(err.Error(), "--reset-watermark") {
		t.Errorf("plan of a damaged state: %v", err)
	}
	res := w.runner(nil).Run(context.Background(), job)
	if res.Err() == nil || res.Phase != "state" || res.Rows != 0 {
		t.Errorf("run with a damaged state: %s %v, %d rows", res.Phase, res.Err(), res.Rows)
	}
	if err := os.WriteFile(statePath, []byte(`{"job": "orders", "param": "since", "type": "int", "watermark": "42"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Runner{}).Plan(job); err == nil || !strings.Contains(err.Error(), "holds a int watermark, and since is now a datetime: run once with --reset-watermark") {
		t.Errorf("plan of a state of another type: %v", err)
	}
	if p, err := (&Runner{ResetWatermark: true}).Plan(job); err != nil || p.Watermark.Source != "initial" {
		t.Errorf("plan --reset-watermark of a state of another type: %v", err)
	}
}

// TestIncrementalColumnNotRead: without a mapping the column is checked
// when the rows' schema is known: a column the rows lack fails the run
// before any sink opens, and the watermark is kept.
func TestIncrementalColumnNotRead(t *testing.T) {
	w := newIncrWorld(t)
	statePath := filepath.Join(w.dir, "orders.json")
	text := fmt.Sprintf(`name: orders
%sparams:
  since: { type: datetime }
incremental: { param: since, column: changed_on, initial: "2024-01-01T00:00:00Z" }
state: { path: %q }
sinks:
  - csv: { path: %q }
`, fakeSource(queryLine(ordersQuery), fakeAuth), statePath, filepath.Join(w.dir, "out", "{{ .runId }}.csv"))
	job, _, err := jobfile.Loader{LookupEnv: w.lookup}.Load("orders.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	res := w.runner(nil).Run(context.Background(), job)
	if res.Err() == nil || !strings.Contains(res.Error, "incremental.column: the rows have no column changed_on") || res.Published() != 0 {
		t.Errorf("run: %s %v, %d published", res.Status, res.Err(), res.Published())
	}
	if _, err := os.Stat(statePath); !os.IsNotExist(err) {
		t.Errorf("state: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(w.dir, "out", "*")); len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
}

// TestMarkTrackerNamesTheColumnType: a watermark column of a type that
// cannot give one is named by its column type, also for the Arrow
// source's dictionary-encoded strings.
func TestMarkTrackerNamesTheColumnType(t *testing.T) {
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	schema := arrow.NewSchema([]arrow.Field{{Name: "region", Type: dict, Nullable: true}}, nil)
	_, err := newMarkTracker(schema, "region", jobfile.ParamDateTime)
	if err == nil || !strings.Contains(err.Error(), "incremental.column: region is a string column, which cannot give a datetime watermark") {
		t.Errorf("err = %v", err)
	}
}
