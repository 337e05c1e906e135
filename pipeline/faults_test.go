package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/faults"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/sink"
)

// The fault matrix: every failure the tool can meet, injected at each phase
// of a run, for each kind of sink, with the same invariants checked every
// time (see checkInvariants). Real faults are used where they can be made
// (the fake service failing, cutting or throttling; PostgreSQL refusing a
// value, terminating the session, failing at COMMIT; a read-only folder);
// a sink wrapper reaches the phases no real fault reaches on demand (a
// failure at the opening of a sink, at its first or last write, at its
// commit). The table of cells tried and invariants held is printed with
// -v, and docs/failures.md shows it (-update rewrites it there).

const (
	faultDays  = 2     // partitions, one a day
	faultRows  = 1_500 // 750 a day
	faultBatch = 250   // rows per batch: 3 a day, 6 in all
)

// subject is one kind of output in the matrix: how a job writes it, how to
// see what it holds, and what it leaves behind.
type subject struct {
	name string
	sink string // the sinks: entry of the job
	// bytes is what the output holds for one partition's day, byte for
	// byte; rows is its whole content as rows, comparable with another
	// environment's.
	bytes func(t *testing.T, day string) string
	rows  func(t *testing.T) string
	// leftovers lists temporary files and outputs no manifest lists.
	leftovers func(t *testing.T) []string
	pg        *pgx.Conn // the table's connection, for faults made in PostgreSQL
	table     string
	app       string // the application_name of the sink's sessions
	// repeats: a re-run loads the rows again (an append).
	repeats bool
}

// dayDir is the folder of a partition's files: the day, or "all" for a
// job run at once.
func dayDir(whole bool) string {
	if whole {
		return "all"
	}
	return "{{ .day }}"
}

// dayPrefix selects the files of one partition, or all of them.
func dayPrefix(day string) string {
	if day == "" {
		return ""
	}
	return day + "/"
}

// faultEnv is one cell's world: the fake service, its data, the outputs.
type faultEnv struct {
	f         *fixture
	bf        *blobFixture
	data      *fakepbi.Facts
	subj      subject
	extra     string // a second sink, for the faults between two commits
	extraRows func(t *testing.T) string
	faults    *faults.Plan
	// onRequest, when set, runs as each query request leaves.
	onRequest func()
	cancel    context.CancelFunc
	// whole: the job runs at once, not a partition a day.
	whole bool
	// sourceLines are more lines of the source.powerbi block.
	sourceLines string
}

func (e *faultEnv) runner() *Runner {
	r := e.f.runner(nil)
	r.BatchRows = faultBatch
	conn := connector(r)
	conn.Rate = -1
	if e.onRequest != nil {
		base := e.f.srv.Client()
		conn.HTTPClient = &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if strings.HasSuffix(req.URL.Path, "/executeQueries") {
				e.onRequest()
			}
			return base.Transport.RoundTrip(req)
		})}
	}
	if w := e.faults; w != nil {
		w.Rows = faultRows / faultDays
		if e.whole {
			w.Rows = faultRows
		}
		r.WrapSink = w.Wrap
	}
	return r
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// job is the matrix's job: one partition a day over two days, the
// subject's sink (and the extra one), the state in the fixture's folder;
// or, whole, the same rows at once.
func (e *faultEnv) job(t *testing.T) *jobfile.Job {
	t.Helper()
	sinks := "  - " + e.subj.sink + "\n"
	if e.extra != "" {
		sinks += "  - " + e.extra + "\n"
	}
	head := fmt.Sprintf("name: faults\nparams:\n  day: { type: date }\npartition: { param: day, step: 1d }\nstate: { path: %q }\n", filepath.Join(e.f.dir, "state", "faults.json"))
	query := `EVALUATE FILTER(Facts, Facts[Day] = {{ dax .day }})`
	if e.whole {
		head, query = "name: faults\n", "EVALUATE Facts"
	}
	if e.bf != nil {
		head += "storage: { connectionString: '${AZ_CS}' }\n"
	}
	text := head + fakeSource(queryLine(query)+e.sourceLines, fakeAuth) + fakepbi.FactsMapping + "\nsinks:\n" + sinks
	job, _, err := jobfile.Loader{LookupEnv: e.f.lookup}.Load("faults.yaml", []byte(text))
	if err != nil {
		t.Fatalf("job: %v\n%s", err, text)
	}
	return job
}

// run runs the job over its days.
func (e *faultEnv) run(t *testing.T, resume bool) *JobResult {
	t.Helper()
	r := e.runner()
	if !e.whole {
		r.From, r.To, r.Resume = "2024-01-01", "2024-01-02", resume
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.cancel = cancel
	return r.Run(ctx, e.job(t))
}

// newFaultEnv makes a cell's world for a subject.
func newFaultEnv(t *testing.T, s faultSubjectCase) *faultEnv {
	data := &fakepbi.Facts{Rows: faultRows, Days: faultDays}
	opts := fakepbi.Options{Tables: []*fakepbi.Table{data.Table()}}
	e := &faultEnv{data: data, whole: s.whole}
	if s.blob {
		e.bf = newBlobFixtureAlone(t, opts)
		e.f = e.bf.fixture
	} else {
		e.f = newFixture(t, opts)
	}
	e.subj = s.make(t, e.f, e.bf, s.whole)
	return e
}

// localSubject is a file output in the fixture's folder.
func localSubject(kind string, split bool) func(t *testing.T, f *fixture, bf *blobFixture, whole bool) subject {
	return func(t *testing.T, f *fixture, _ *blobFixture, whole bool) subject {
		dir := filepath.Join(f.dir, "out")
		path, opts := filepath.Join(dir, dayDir(whole), "data."+kind), ""
		if split {
			path, opts = filepath.Join(dir, dayDir(whole), "part-{{ .part }}."+kind), ", maxRowsPerFile: 300"
		}
		read := func(t *testing.T) map[string][]byte { return readDir(t, dir) }
		return subject{
			sink:      fmt.Sprintf("%s: { path: %q%s }", kind, path, opts),
			bytes:     func(t *testing.T, day string) string { return bytesOf(read(t), dayPrefix(day)) },
			rows:      func(t *testing.T) string { return rowsOf(t, read(t)) },
			leftovers: func(t *testing.T) []string { return leftoversOf(read(t)) },
		}
	}
}

// blobSubject is a file output in the fixture's Azurite container.
func blobSubject(kind string, split bool) func(t *testing.T, f *fixture, bf *blobFixture, whole bool) subject {
	return func(t *testing.T, _ *fixture, bf *blobFixture, whole bool) subject {
		path, opts := "az://${CONTAINER}/out/"+dayDir(whole)+"/data."+kind, ""
		if split {
			path, opts = "az://${CONTAINER}/out/"+dayDir(whole)+"/part-{{ .part }}."+kind, ", maxRowsPerFile: 300"
		}
		read := func(t *testing.T) map[string][]byte {
			files := map[string][]byte{}
			for _, n := range sinktest.ListBlobs(t, bf.cc) {
				info, _ := sinktest.ReadBlob(t, bf.cc, n)
				files[n] = info.Data
			}
			return files
		}
		return subject{
			sink:      fmt.Sprintf("%s: { path: '%s'%s }", kind, path, opts),
			bytes:     func(t *testing.T, day string) string { return bytesOf(read(t), "out/"+dayPrefix(day)) },
			rows:      func(t *testing.T) string { return rowsOf(t, read(t)) },
			leftovers: func(t *testing.T) []string { return leftoversOf(read(t)) },
		}
	}
}

// pgSubjectOf is a PostgreSQL table loaded in mode.
func pgSubjectOf(mode string) func(t *testing.T, f *fixture, bf *blobFixture, whole bool) subject {
	return func(t *testing.T, f *fixture, _ *blobFixture, _ bool) subject {
		conn, schema := pgSchema(t)
		table := schema + ".facts"
		// The sink's sessions carry the schema's name, so that a fault
		// that terminates them reaches this subject's only.
		f.env["PG_DSN"] = withAppName(sinktest.PGDSN(), schema)
		extra := map[string]string{"merge": ", key: [id]", "replacePartition": ", partitionColumn: day"}[mode]
		content := func(t *testing.T, day string) string {
			var exists bool
			_ = conn.QueryRow(context.Background(), "select to_regclass($1) is not null", table).Scan(&exists)
			if !exists {
				return "(no table)"
			}
			var n int64
			var sum string
			if err := conn.QueryRow(context.Background(), "select count(*), coalesce(md5(string_agg(t::text, ',' order by t::text)), '') from "+table+" t where $1 = '' or day = $1::date", day).Scan(&n, &sum); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%d rows %s", n, sum)
		}
		return subject{
			sink:      fmt.Sprintf("postgres: { dsn: '${PG_DSN}', table: %s, mode: %s%s }", table, mode, extra),
			bytes:     content,
			rows:      func(t *testing.T) string { return content(t, "") },
			leftovers: func(t *testing.T) []string { return nil },
			pg:        conn,
			table:     table,
			app:       schema,
			repeats:   mode == "append",
		}
	}
}

// readDir reads every file under dir, by path relative to it; the state
// folder is not an output.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

// bytesOf lists the files under prefix with their SHA-256.
func bytesOf(files map[string][]byte, prefix string) string {
	var lines []string
	for n, data := range files {
		if strings.HasPrefix(n, prefix) {
			lines = append(lines, n+" "+sinktest.SHA256(data))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// rowsOf lists the data files with a digest of their rows (so that two
// environments compare whatever the bytes of their encoders), and the
// manifests with their parts.
//
// A split output's part names carry its generation, which every commit
// increases: the names are compared without it, so that a re-run matches
// the uninterrupted result whatever commits came between.
func rowsOf(t *testing.T, files map[string][]byte) string {
	t.Helper()
	var lines []string
	for n, data := range files {
		n := generationRE.ReplaceAllString(n, "")
		switch {
		case strings.HasSuffix(n, sink.ManifestName):
			var m sink.Manifest
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			var parts []string
			for _, p := range m.Parts {
				parts = append(parts, fmt.Sprintf("%s:%d", generationRE.ReplaceAllString(p.Path, ""), p.Rows))
			}
			lines = append(lines, fmt.Sprintf("%s rows %d parts %s", n, m.Rows, strings.Join(parts, ",")))
		case strings.HasSuffix(n, ".parquet"), strings.HasSuffix(n, ".csv"):
			rows := decodeRows(t, n, data)
			lines = append(lines, fmt.Sprintf("%s %d rows %s", n, len(rows), sinktest.SHA256([]byte(fmt.Sprint(rows)))))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// generationRE matches the generation in a split output's part name.
var generationRE = regexp.MustCompile(`-g[0-9]+`)

var faultSchema = arrow.NewSchema([]arrow.Field{
	sinktest.Field("id", arrow.PrimitiveTypes.Int64), sinktest.Field("day", arrow.FixedWidthTypes.Date32),
	sinktest.Field("label", arrow.BinaryTypes.String), sinktest.Field("qty", arrow.PrimitiveTypes.Int64),
}, nil)

func decodeRows(t *testing.T, name string, data []byte) [][]any {
	t.Helper()
	path := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(name, ".csv") {
		return sinktest.ReadCSVFile(t, path, faultSchema)
	}
	_, rows, err := sinktest.ReadParquetArrow(path, nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rows
}

// leftoversOf lists temporary files, and the parts of a split output that
// its manifest does not list.
func leftoversOf(files map[string][]byte) []string {
	listed := map[string]bool{}
	for n, data := range files {
		if strings.HasSuffix(n, sink.ManifestName) {
			var m sink.Manifest
			if json.Unmarshal(data, &m) == nil {
				dir := n[:len(n)-len(sink.ManifestName)]
				for _, p := range m.Parts {
					listed[dir+p.Path] = true
				}
			}
		}
	}
	var left []string
	for n := range files {
		base := n[strings.LastIndexByte(n, '/')+1:]
		switch {
		case strings.Contains(base, ".tmp-"):
			left = append(left, n)
		case strings.Contains(base, "part-") && !listed[n]:
			left = append(left, n+" (not in the manifest)")
		}
	}
	slices.Sort(left)
	return left
}

// faultCell is one fault at one phase.
type faultCell struct {
	phase string
	// wantPhase is a part of the phase the result must name, for a failure.
	wantPhase string
	// inject prepares the fault in e; false when the fault cannot be made
	// for e's subject.
	inject    func(t *testing.T, e *faultEnv) bool
	interrupt bool // the run is interrupted, not failed
	// published: the outputs are new after the run, by design (the state
	// write fails after the commits; between two commits the first sink
	// published).
	published bool
}

func wrapAt(index int, at faults.Point) func(t *testing.T, e *faultEnv) bool {
	return func(t *testing.T, e *faultEnv) bool {
		e.faults = &faults.Plan{Index: index, At: at}
		return true
	}
}

func interruptAt(at faults.Point) func(t *testing.T, e *faultEnv) bool {
	return func(t *testing.T, e *faultEnv) bool {
		e.faults = &faults.Plan{Index: 0, At: at, Act: func() { e.cancel() }}
		return true
	}
}

func faultCells() []faultCell {
	cells := []faultCell{
		{phase: "token refused", wantPhase: "source", inject: func(t *testing.T, e *faultEnv) bool {
			e.f.env["SECRET"] = "wrong-secret"
			return true
		}},
		{phase: "first request: 5xx past the retries", wantPhase: "source", inject: func(t *testing.T, e *faultEnv) bool {
			e.f.srv.FailWith(1000, 500)
			return true
		}},
		{phase: "first request: 403", wantPhase: "source", inject: func(t *testing.T, e *faultEnv) bool {
			e.f.srv.FailWith(1000, 403)
			return true
		}},
		{phase: "mid-body: cut on every try", wantPhase: "source", inject: func(t *testing.T, e *faultEnv) bool {
			e.f.srv.CutBody(1000, 20_000)
			return true
		}},
		{phase: "mid-body: stalled past the idle timeout", wantPhase: "source", inject: func(t *testing.T, e *faultEnv) bool {
			e.sourceLines = "    timeouts: { idle: 200ms }\n"
			e.f.srv.Stall(1000, 20_000)
			return true
		}},
		{phase: "429: a Retry-After past the cap", wantPhase: "source", inject: func(t *testing.T, e *faultEnv) bool {
			e.f.srv.Throttle(1000, 10*time.Minute)
			return true
		}},
		{phase: "decode: first batch", wantPhase: "source", inject: func(t *testing.T, e *faultEnv) bool {
			e.data.Set(2, fakepbi.Fraction, 3)
			return true
		}},
		{phase: "decode: middle batch", wantPhase: "source", inject: func(t *testing.T, e *faultEnv) bool {
			e.data.Set(2, fakepbi.Fraction, 750) // in the middle batch of day 1 (row 375 of 750), and of the whole
			return true
		}},
		{phase: "decode: last batch", wantPhase: "source", inject: func(t *testing.T, e *faultEnv) bool {
			e.data.Set(2, fakepbi.Fraction, faultRows-2) // day 1's last row, and the last batch of the whole
			return true
		}},
		{phase: "sink open", wantPhase: "open sinks[0]", inject: wrapAt(0, faults.Open)},
		{phase: "first write", wantPhase: "write sinks[0]", inject: wrapAt(0, faults.FirstWrite)},
		{phase: "last write", wantPhase: "write sinks[0]", inject: wrapAt(0, faults.LastWrite)},
		{phase: "commit", wantPhase: "commit sinks[0]", inject: wrapAt(0, faults.Commit)},
		{phase: "PostgreSQL: NUL in the last batch", wantPhase: "sinks[0]", inject: func(t *testing.T, e *faultEnv) bool {
			if e.subj.pg == nil {
				return false
			}
			e.data.Set(2, fakepbi.NUL, faultRows-2)
			return true
		}},
		{phase: "PostgreSQL: COMMIT refused", wantPhase: "commit sinks[0]", inject: func(t *testing.T, e *faultEnv) bool {
			if e.subj.pg == nil {
				return false
			}
			// A deferred constraint trigger fails at COMMIT, after every row
			// is in: what a serialization failure or a lost connection does.
			ctx := context.Background()
			fn := e.subj.table + "_refuse"
			for _, q := range []string{
				"create function " + fn + "() returns trigger language plpgsql as $$ begin raise exception 'refused at commit'; end $$",
				"create constraint trigger refuse after insert or update on " + e.subj.table + " deferrable initially deferred for each row execute function " + fn + "()",
			} {
				if _, err := e.subj.pg.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			return true
		}},
		{phase: "PostgreSQL: session terminated during COPY", wantPhase: "sinks[0]", inject: func(t *testing.T, e *faultEnv) bool {
			if e.subj.pg == nil {
				return false
			}
			conn, app := e.subj.pg, e.subj.app
			e.faults = &faults.Plan{Index: 0, At: faults.FirstWrite, Act: func() {
				var n int
				if err := conn.QueryRow(context.Background(), "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = $1", app).Scan(&n); err != nil || n == 0 {
					t.Errorf("no session terminated (%d): %v", n, err)
				}
			}}
			return true
		}},
		{phase: "PostgreSQL: session terminated at commit", wantPhase: "commit sinks[0]", inject: func(t *testing.T, e *faultEnv) bool {
			if e.subj.pg == nil {
				return false
			}
			// Every row is sent; the sink's session ends as its commit
			// (the end of the COPY, the mode's work, COMMIT) starts.
			conn, app := e.subj.pg, e.subj.app
			e.faults = &faults.Plan{Index: 0, At: faults.Commit, Act: func() {
				var n int
				if err := conn.QueryRow(context.Background(), "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = $1", app).Scan(&n); err != nil || n == 0 {
					t.Errorf("no session terminated (%d): %v", n, err)
				}
			}}
			return true
		}},
		{phase: "after the commit of sink 1, before sink 2", wantPhase: "commit sinks[1]", published: true, inject: func(t *testing.T, e *faultEnv) bool {
			// A second sink that commits after the subject (a local file
			// ranks after every other kind) fails at its commit.
			dir := filepath.Join(e.f.dir, "extra")
			e.extra = fmt.Sprintf("csv: { path: %q }", filepath.Join(dir, dayDir(e.whole)+".csv"))
			e.extraRows = func(t *testing.T) string { return bytesOf(readDir(t, dir), "") }
			e.faults = &faults.Plan{Index: 1, At: faults.Commit}
			return true
		}},
		{phase: "state write", wantPhase: "state", published: true, inject: func(t *testing.T, e *faultEnv) bool {
			// The state's folder turns into a file as the sink commits: the
			// outputs are published, the partitions are not recorded.
			if e.whole {
				return false // no state
			}
			state := filepath.Join(e.f.dir, "state")
			e.faults = &faults.Plan{Index: 0, At: faults.Commit, Act: func() {
				if err := os.RemoveAll(state); err == nil {
					_ = os.WriteFile(state, []byte("not a folder"), 0o644)
				}
			}}
			return true
		}},
		{phase: "interrupted: first request", interrupt: true, inject: func(t *testing.T, e *faultEnv) bool {
			var once sync.Once
			e.onRequest = func() { once.Do(func() { e.cancel() }) }
			e.f.srv.FailWith(1000, 503)
			return true
		}},
	}
	for _, at := range []struct {
		name string
		at   faults.Point
	}{{"sink open", faults.Open}, {"first write", faults.FirstWrite}, {"last write", faults.LastWrite}, {"commit phase", faults.Commit}} {
		c := faultCell{phase: "interrupted: " + at.name, interrupt: true, inject: interruptAt(at.at)}
		if at.at == faults.Commit {
			// Once the commit phase has started it finishes: that
			// partition is published, the next ones do not run.
			c.published = true
		}
		cells = append(cells, c)
	}
	return cells
}

// faultSubjectCase is a column of the matrix: a subject, on Azurite or
// not, in a partitioned job or in one run at once (whole).
type faultSubjectCase struct {
	name        string
	make        func(t *testing.T, f *fixture, bf *blobFixture, whole bool) subject
	blob, whole bool
}

func faultSubjects() []faultSubjectCase {
	return []faultSubjectCase{
		{"parquet (local)", localSubject("parquet", false), false, false},
		{"parquet, one run (local)", localSubject("parquet", false), false, true},
		{"csv split (local)", localSubject("csv", true), false, false},
		{"csv (blob)", blobSubject("csv", false), true, false},
		{"parquet split, one run (blob)", blobSubject("parquet", true), true, true},
		{"postgres append", pgSubjectOf("append"), false, false},
		{"postgres append, one run", pgSubjectOf("append"), false, true},
		{"postgres replace, one run", pgSubjectOf("replace"), false, true},
		{"postgres merge", pgSubjectOf("merge"), false, false},
		{"postgres replacePartition", pgSubjectOf("replacePartition"), false, false},
	}
}

// TestFaultMatrixIntegration runs every cell and prints what held.
func TestFaultMatrixIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault matrix runs real PostgreSQL and Azurite")
	}
	cells := faultCells()
	var mu sync.Mutex
	held := map[string]map[string]string{} // subject -> phase -> verdict
	// The subjects run side by side (each in a world of its own: its fake
	// service, folder, container, schema); the report waits for them all.
	t.Run("subjects", func(t *testing.T) {
		for _, s := range faultSubjects() {
			t.Run(s.name, func(t *testing.T) {
				t.Parallel()
				// The uninterrupted result, for the re-runs to match: version 1,
				// then version 2, in a world of its own.
				ref := newFaultEnv(t, s)
				ref.data.Set(1, fakepbi.NoPoison, -1)
				mustSucceed(t, ref.run(t, false), ref)
				ref.data.Set(2, fakepbi.NoPoison, -1)
				mustSucceed(t, ref.run(t, false), ref)
				want := ref.subj.rows(t)
				for _, c := range cells {
					t.Run(c.phase, func(t *testing.T) {
						verdict := runFaultCell(t, s, c, want)
						mu.Lock()
						if held[s.name] == nil {
							held[s.name] = map[string]string{}
						}
						held[s.name][c.phase] = verdict
						mu.Unlock()
					})
				}
			})
		}
	})
	report := faultReport(faultSubjects(), cells, held)
	t.Log("\n" + report)
	if !t.Failed() && !strings.Contains(report, "not run") {
		checkFaultDoc(t, report)
	}
}

var updateDocs = flag.Bool("update", false, "rewrite the fault matrix in docs/failures.md")

// checkFaultDoc keeps the matrix printed in the docs the one the test
// last ran: -update rewrites it.
func checkFaultDoc(t *testing.T, report string) {
	t.Helper()
	const path, begin, end = "../docs/failures.md", "<!-- fault matrix: begin -->\n", "<!-- fault matrix: end -->"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s: no %q ... %q markers", path, begin, end)
	}
	table := "```\n" + report + "```\n"
	if doc[i+len(begin):j] == table {
		return
	}
	if !*updateDocs {
		t.Errorf("%s shows another matrix than the test ran: go test ./pipeline -run TestFaultMatrixIntegration -update", path)
		return
	}
	if err := os.WriteFile(path, []byte(doc[:i+len(begin)]+table+doc[j:]), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustSucceed(t *testing.T, res *JobResult, e *faultEnv) {
	t.Helper()
	if res.Err() != nil {
		t.Fatalf("run: %v\nlogs:\n%s", res.Err(), e.f.logs)
	}
}

// runFaultCell runs one cell and checks the invariants; it returns the
// verdict for the report: "held", "n/a" or what broke.
func runFaultCell(t *testing.T, s faultSubjectCase, c faultCell, want string) string {
	e := newFaultEnv(t, s)
	e.data.Set(1, fakepbi.NoPoison, -1)
	mustSucceed(t, e.run(t, false), e)
	days := []string{"2024-01-01", "2024-01-02"}
	if s.whole {
		days = []string{""}
	}
	before := map[string]string{}
	for _, d := range days {
		before[d] = e.subj.bytes(t, d)
	}

	e.data.Set(2, fakepbi.NoPoison, -1)
	if !c.inject(t, e) {
		return "n/a"
	}
	// The run's goroutines carry a label of the cell, for the leak check.
	cell := s.name + "/" + c.phase
	var res *JobResult
	pprof.Do(context.Background(), pprof.Labels("faultcell", cell), func(context.Context) { res = e.run(t, false) })
	parts := res.Partitions
	if e.whole {
		parts = []*PartitionResult{{Key: "", Status: res.Status, Phase: res.Phase, Sinks: res.Sinks}}
	}

	// The outcome: a failure (or an interruption) that names its phase.
	switch {
	case c.interrupt && res.Status != Interrupted:
		t.Errorf("status %s, want interrupted: %v", res.Status, res.Err())
	case !c.interrupt && res.Status != Failed && res.Status != PartiallyPublished:
		t.Errorf("status %s, want failed: %v", res.Status, res.Err())
	}
	if !c.interrupt && !strings.Contains(res.Phase, c.wantPhase) {
		t.Errorf("phase %q, want it to name %q (error: %v)", res.Phase, c.wantPhase, res.Err())
	}
	for _, p := range parts {
		if p.Status == Failed && p.Phase == "" {
			t.Errorf("partition %s failed without a phase: %s", p.Key, p.Error)
		}
	}
	// A partition that did not publish shows nothing new: one that failed
	// (before its state was to be recorded), was interrupted or not run.
	failedOne := false
	for _, p := range parts {
		published := p.Status == Succeeded || p.Status == PartiallyPublished || p.Phase == "state"
		if c.published && p.Status == Interrupted {
			// Interrupted in its commit phase, which finished.
			published = slices.ContainsFunc(p.Sinks, func(s SinkResult) bool { return s.Status == Succeeded })
		}
		failedOne = failedOne || !published
		if after := e.subj.bytes(t, p.Key); !published && after != before[p.Key] {
			t.Errorf("partition %s is %s, yet its output changed:\nbefore:\n%s\nafter:\n%s", p.Key, p.Status, before[p.Key], after)
		}
	}
	// The job counts every output its partitions published (a failed
	// partition does not hide the others').
	if !e.whole {
		n := 0
		for _, p := range parts {
			if p.Status == Succeeded && (len(p.Sinks) == 0 || p.Sinks[0].Published == 0) {
				t.Errorf("partition %s succeeded, publishing nothing", p.Key)
			}
			if len(p.Sinks) > 0 {
				n += p.Sinks[0].Published
			}
		}
		if len(res.Sinks) > 0 && res.Sinks[0].Published != n {
			t.Errorf("the job counts %d outputs published by its sink, its partitions %d", res.Sinks[0].Published, n)
		}
	}
	if !failedOne && !c.published {
		t.Errorf("every partition published: the fault did not happen")
	}
	if c.phase == "after the commit of sink 1, before sink 2" {
		// An append commits last: the failed sink before it leaves
		// nothing published. Any other subject commits before the file.
		if e.subj.repeats && res.Status != Failed {
			t.Errorf("status %s, want failed: an append commits after every other sink", res.Status)
		}
		if !e.subj.repeats && (res.Status != PartiallyPublished || !strings.Contains(res.Error, "already published")) {
			t.Errorf("status %s, error %q: want partially published, naming what was", res.Status, res.Error)
		}
		if got := e.extraRows(t); got != "" {
			t.Errorf("the failed sink published: %s", got)
		}
	}
	verdict := "held"
	if c.published && c.interrupt && e.whole {
		// A job run at once, interrupted in its commit phase: the phase
		// finished, the job is done and says so; no re-run is needed (an
		// append's would load the rows again).
		if !strings.Contains(res.Error, "every output of the job is published") {
			t.Errorf("error %q: want it to say the job is published", res.Error)
		}
		if got := e.subj.rows(t); got != want {
			t.Errorf("the published output is not the uninterrupted one:\ngot:\n%s\nwant:\n%s", got, want)
		}
		if t.Failed() {
			return "BROKEN: see the test log"
		}
		return "held: published, and says so"
	}
	if c.phase == "state write" && e.subj.repeats {
		// Published but not recorded: a re-run would append again, which
		// the error says, naming the table; left out of the re-run, the
		// outputs are already the uninterrupted result.
		if !strings.Contains(res.Error, "a second time") || !strings.Contains(res.Error, e.subj.table) {
			t.Errorf("error %q: want it to say a re-run appends again to %s", res.Error, e.subj.table)
		}
		if got := e.subj.rows(t); got != want {
			t.Errorf("the published output is not the uninterrupted one:\ngot:\n%s\nwant:\n%s", got, want)
		}
		if t.Failed() {
			return "BROKEN: see the test log"
		}
		return "held: the error says a re-run appends again"
	}
	if left := e.subj.leftovers(t); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
	// The state records no partition whose sinks did not all commit.
	if st := readFaultState(t, e); st != nil {
		for _, p := range parts {
			if _, recorded := st.Partitions[p.Key]; recorded && p.Status != Succeeded {
				t.Errorf("partition %s is %s but recorded as done", p.Key, p.Status)
			}
		}
	}
	// No goroutine of the run is left behind, once idle connections are
	// closed (the pool keeps them for the next run, by design).
	e.f.srv.Client().CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	left, stacks := labelled(cell)
	for left > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		left, stacks = labelled(cell)
	}
	if left > 0 {
		t.Errorf("%d goroutines of the run left behind:\n%s", left, stacks)
	}

	// A re-run (resuming, the faults gone) yields the uninterrupted result.
	e.faults, e.onRequest, e.extra = nil, nil, ""
	e.f.env["SECRET"] = testSecret
	e.f.srv.FailWith(0, 0)
	e.f.srv.CutBody(0, 0)
	e.f.srv.Stall(0, 0)
	e.f.srv.Throttle(0, 0)
	if e.subj.pg != nil {
		_, _ = e.subj.pg.Exec(context.Background(), "drop trigger if exists refuse on "+e.subj.table)
	}
	_ = os.Remove(filepath.Join(e.f.dir, "state")) // the file the state cell left
	e.data.Set(2, fakepbi.NoPoison, -1)
	mustSucceed(t, e.run(t, true), e)
	if got := e.subj.rows(t); got != want {
		t.Errorf("after a re-run the output is not the uninterrupted one:\ngot:\n%s\nwant:\n%s", got, want)
	}
	if t.Failed() {
		return "BROKEN: see the test log"
	}
	return verdict
}

// labelled counts the live goroutines labelled faultcell=cell, and gives
// their stacks.
func labelled(cell string) (int, string) {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	want, _ := json.Marshal(map[string]string{"faultcell": cell})
	n := 0
	var stacks []string
	// Entries are separated by blank lines: "N @ addresses", then
	// "# labels: {...}", then the frames.
	for entry := range strings.SplitSeq(b.String(), "\n\n") {
		if !strings.Contains(entry, "# labels: "+string(want)) {
			continue
		}
		var k int
		if _, err := fmt.Sscanf(entry, "%d @", &k); err == nil {
			n += k
			stacks = append(stacks, entry)
		}
	}
	return n, strings.Join(stacks, "\n\n")
}

// withAppName sets the application_name of a PostgreSQL connection string.
func withAppName(dsn, name string) string {
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "application_name=" + name
	}
	return dsn + " application_name=" + name
}

func readFaultState(t *testing.T, e *faultEnv) *State {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.f.dir, "state", "faults.json"))
	if err != nil {
		return nil
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state: %v", err)
	}
	return &st
}

// faultReport is the matrix as a table: a row per phase, a column per
// subject (lettered, with a legend), each cell "ok" (every invariant held),
// "ok" with a note, "n/a" (the fault cannot happen there) or "BROKEN".
func faultReport(subjects []faultSubjectCase, cells []faultCell, held map[string]map[string]string) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprint(w, "phase")
	for i := range subjects {
		fmt.Fprintf(w, "\t%c", 'A'+i)
	}
	fmt.Fprintln(w)
	var notes []string
	tried, ok := 0, 0
	for _, c := range cells {
		fmt.Fprint(w, c.phase)
		for _, s := range subjects {
			v := held[s.name][c.phase]
			switch {
			case v == "":
				v = "not run"
			case v == "n/a":
			case v == "held":
				tried, ok, v = tried+1, ok+1, "ok"
			case strings.HasPrefix(v, "held: "):
				note := strings.TrimPrefix(v, "held: ")
				n := slices.Index(notes, note)
				if n < 0 {
					notes, n = append(notes, note), len(notes)
				}
				tried, ok, v = tried+1, ok+1, fmt.Sprintf("ok(%d)", n+1)
			default:
				tried++
			}
			fmt.Fprintf(w, "\t%s", v)
		}
		fmt.Fprintln(w)
	}
	w.Flush()
	b.WriteString("\n")
	for i, s := range subjects {
		fmt.Fprintf(&b, "%c: %s\n", 'A'+i, s.name)
	}
	for i, n := range notes {
		fmt.Fprintf(&b, "(%d) %s\n", i+1, n)
	}
	fmt.Fprintf(&b, "\n%d cells tried, %d held every invariant\n", tried, ok)
	return b.String()
}
