package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/sink"
)

// killRows is the size of the table the kill loop copies: small, so that
// a run takes a fraction of a second and the loop many runs.
const killRows = 400

// killKind is one kind of sink the kill loop runs alone in a job.
type killKind struct {
	name string
	sink string // the sinks: block, with %[1]s for the output folder, %[2]s the container, %[3]s the table
}

var killKinds = []killKind{
	{"parquet", `  - parquet: { path: "%[1]s/day={{ .day }}/facts.parquet" }`},
	{"csv", `  - csv: { path: "%[1]s/day={{ .day }}/facts.csv" }`},
	{"split", `  - parquet: { path: "%[1]s/day={{ .day }}/part-{{ .part }}.parquet", maxRowsPerFile: 150 }`},
	{"postgres replace", `  - postgres: { dsn: "${T_PG}", table: %[3]s, mode: replace }`},
	{"blob parquet", `  - parquet: { path: "az://%[2]s/out/day={{ .day }}/facts.parquet" }`},
}

// TestKillLoopIntegration kills the command with SIGKILL at a random
// moment, over and over, for each kind of sink, and runs it again without
// a kill each time. After every kill, what a reader sees is the previous
// output (byte for byte) or the complete new one, never a part of it; after
// every re-run: exit 0, exactly the new rows, no temporary file or stray
// part or blob, and a state that records the complete run. The delays are
// drawn from a seeded generator (the seed is logged; PBICOPY_KILL_SEED
// replays it); PBICOPY_KILL_RUNS sets the kills per kind (default 30).
func TestKillLoopIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("the kill loop runs the command hundreds of times")
	}
	runs := 30
	if s := os.Getenv("PBICOPY_KILL_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PBICOPY_KILL_RUNS=%q: want a positive number", s)
		}
		runs = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PBICOPY_KILL_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PBICOPY_KILL_SEED=%q: want a number", s)
		}
		seed = n
	}
	t.Logf("PBICOPY_KILL_SEED=%d PBICOPY_KILL_RUNS=%d", seed, runs)

	db := sinktest.OpenPG(t) // its own schema, dropped at the end
	schema := db.Schema
	az := sinktest.StartAzurite(t)

	for i, kind := range killKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			w := newKillWorld(t, kind, az, fmt.Sprintf("%s.facts%d", schema, i))
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			w.loop(t, rng, runs)
		})
	}
}

// killWorld is a fake Power BI serving Facts and a job writing one sink.
type killWorld struct {
	kind   killKind
	facts  *fakepbi.Facts
	srv    *fakepbi.Server
	dir    string // the output folder is dir/out
	state  string
	env    []string
	job    string
	cc     *container.Client
	table  string
	pgConn *pgx.Conn
	// partitioned jobs record their partition in the state file
	partitioned bool
}

func newKillWorld(t *testing.T, kind killKind, az *sinktest.Azurite, table string) *killWorld {
	t.Helper()
	w := &killWorld{kind: kind, facts: &fakepbi.Facts{Rows: killRows, Days: 1}, dir: t.TempDir(), table: table}
	w.state = filepath.Join(w.dir, "state.json")
	var err error
	// Latency spreads a run over the time the kills are drawn from.
	w.srv, err = fakepbi.Start(fakepbi.Options{Tables: []*fakepbi.Table{w.facts.Table()}, Latency: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.srv.Close)
	w.env = childEnv(t, w.srv, w.dir, "T_PG="+sinktest.PGDSN(), "T_AZ="+az.ConnectionString)
	container := "unused"
	if strings.HasPrefix(kind.name, "blob") {
		w.cc = sinktest.NewContainer(t, az)
		container = sinktest.ContainerName(w.cc)
	}
	if strings.HasPrefix(kind.name, "postgres") {
		w.pgConn, err = pgx.Connect(context.Background(), sinktest.PGDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.pgConn.Close(context.Background()) })
	}
	w.job = filepath.Join(w.dir, "facts.yaml")
	// A job of one partition (one day), so that the state records the run;
	// replace, which would replace the whole table for every partition, in
	// a job without partitions and so without state.
	w.partitioned = !strings.Contains(kind.sink, "replace")
	header := "name: facts\nparams:\n  day: { type: date, default: 2024-01-01 }\n"
	if w.partitioned {
		header += "partition: { param: day, step: 1d }\nstate: { path: " + strconv.Quote(w.state) + " }\n"
	}
	text := header + fmt.Sprintf(`source:
  powerbi:
    workspace: ${T_WS}
    dataset: ${T_DS}
    endpoint: ${T_EP}
    query: "EVALUATE FILTER(Facts, Facts[Day] = {{ dax .day }})"
    auth: { tenant: "${T_TENANT}", clientId: "${T_CLIENT}", clientSecret: "${T_SECRET}", authorityHost: "${T_AUTH}" }
%sstorage: { connectionString: "${T_AZ}" }
sinks:
`, fakepbi.FactsMapping) + fmt.Sprintf(kind.sink, filepath.Join(w.dir, "out"), container, table) + "\n"
	if err := os.WriteFile(w.job, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// command is the command, ready to start.
func (w *killWorld) command() (*exec.Cmd, *bytes.Buffer) {
	// One partition, so that the state records the run.
	args := []string{"run", w.job, "--log-format", "json"}
	if w.partitioned {
		args = append(args, "--from", "2024-01-01", "--to", "2024-01-01")
	}
	c := exec.Command(os.Args[0], args...)
	c.Env = w.env
	var e bytes.Buffer
	c.Stderr = &e
	return c, &e
}

// loop runs the command once, then runs times: a run killed after a
// random delay, checked, then a run to the end, checked.
func (w *killWorld) loop(t *testing.T, rng *rand.Rand, runs int) {
	version := 1
	w.facts.Set(version, fakepbi.NoPoison, -1)
	start := time.Now()
	w.rerun(t, version)
	full := time.Since(start)
	prev := w.view(t)
	var killedEarly, killedLate int
	for i := range runs {
		version++
		w.facts.Set(version, fakepbi.NoPoison, -1)
		delay := time.Duration(rng.Int64N(int64(full) * 5 / 4))
		c, stderr := w.command()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = c.Process.Kill() // SIGKILL: no cleanup at all
		_ = c.Wait()
		if strings.Contains(stderr.String(), "panic:") {
			t.Fatalf("kill %d: the command panicked:\n%s", i, stderr)
		}
		killed := w.view(t)
		w.rerun(t, version)
		now := w.view(t)
		switch {
		case killed.equal(prev, true):
			killedEarly++
		case killed.equal(now, false):
			killedLate++ // killed after its commit: the new output, complete
		default:
			t.Fatalf("kill %d after %v: a reader sees neither the previous output nor the complete new one:\nprevious %s\nafter the kill %s\nafter the re-run %s", i, delay, prev, killed, now)
		}
		prev = now
	}
	t.Logf("%s: %d kills (a run takes %v): %d left the previous output, %d the new one", w.kind.name, runs, full.Round(time.Millisecond), killedEarly, killedLate)
}

// rerun runs the command to the end and checks what it leaves.
func (w *killWorld) rerun(t *testing.T, version int) {
	t.Helper()
	c, stderr := w.command()
	if err := c.Run(); err != nil {
		t.Fatalf("run of version %d: %v\n%s", version, err, stderr)
	}
	v := w.view(t)
	if v.rows != killRows || v.versions != fmt.Sprintf("v%d", version) || v.broken != "" {
		t.Fatalf("after the run of version %d: %s", version, v)
	}
	if left := w.leftovers(t); len(left) > 0 {
		t.Fatalf("after the run of version %d, left behind: %q", version, left)
	}
	if !w.partitioned {
		return
	}
	var st struct {
		Partitions map[string]struct {
			Rows    int64
			Outputs []struct{ Rows int64 }
		}
	}
	data, err := os.ReadFile(w.state)
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil || len(st.Partitions) != 1 {
		t.Fatalf("state after the run of version %d: %v\n%s", version, err, data)
	}
	for _, p := range st.Partitions {
		if p.Rows != killRows || len(p.Outputs) != 1 || p.Outputs[0].Rows != killRows {
			t.Fatalf("state after the run of version %d records %s", version, data)
		}
	}
}

// killView is what a reader of the output sees.
type killView struct {
	manifest string // SHA-256 of a split output's manifest
	files    string // SHA-256 of every file or blob a reader reads (a file's name too); the table's digest
	rows     int    // rows read
	dupes    int    // ids read more than once
	versions string // the versions the rows carry ("v3", or "v2 v3" for a mix)
	broken   string // why the output cannot be read
}

// equal compares what readers see. A split output's manifest differs
// between two commits of the same rows (its generation does): two views
// of the same parts are equal unless withManifest.
func (v killView) equal(o killView, withManifest bool) bool {
	if !withManifest {
		v.manifest, o.manifest = "", ""
	}
	return v == o
}

func (v killView) String() string {
	return fmt.Sprintf("{manifest %s, files %s, %d rows (%d duplicated) of %s%s}", v.manifest, v.files, v.rows, v.dupes, v.versions, map[bool]string{true: ", broken: " + v.broken}[v.broken != ""])
}

// view reads the output as a reader does: a file, the parts a manifest
// lists, a blob, a table.
func (w *killWorld) view(t *testing.T) killView {
	t.Helper()
	out := filepath.Join(w.dir, "out", "day=2024-01-01")
	var v killView
	var labels []string
	ids := map[int64]bool{}
	add := func(rows [][]any) {
		for _, r := range rows {
			id := toInt64(r[0])
			if ids[id] {
				v.dupes++
			}
			ids[id] = true
			labels = append(labels, fmt.Sprint(r[2]))
		}
		v.rows += len(rows)
	}
	readFile := func(path string, named bool) {
		data, err := os.ReadFile(path)
		if err != nil {
			v.files += " absent"
			return
		}
		if named {
			v.files += " " + filepath.Base(path) + "="
		}
		v.files += " " + sinktest.SHA256(data)
		rows, err := readRows(path)
		if err != nil {
			v.broken = fmt.Sprintf("%s: %v", path, err)
		}
		add(rows)
	}
	switch w.kind.name {
	case "parquet":
		readFile(filepath.Join(out, "facts.parquet"), true)
	case "csv":
		readFile(filepath.Join(out, "facts.csv"), true)
	case "split":
		data, err := os.ReadFile(filepath.Join(out, sink.ManifestName))
		if err != nil {
			v.files = "absent"
			break
		}
		var m sink.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			v.broken = "manifest: " + err.Error()
			break
		}
		v.manifest = sinktest.SHA256(data)
		for _, p := range m.Parts {
			path := filepath.Join(out, filepath.FromSlash(p.Path))
			pdata, err := os.ReadFile(path)
			if err != nil || sinktest.SHA256(pdata) != p.SHA256 {
				v.broken = fmt.Sprintf("part %s: %v, or not the part the manifest lists", p.Path, err)
				continue
			}
			readFile(path, false) // the names change with every commit
		}
	case "postgres replace":
		rows, err := w.pgConn.Query(context.Background(), "select id, day, label, qty from "+w.table)
		if err != nil {
			v.files = "no table"
			break
		}
		var got [][]any
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		add(got)
		slices.SortFunc(got, func(a, b []any) int { return int(toInt64(a[0]) - toInt64(b[0])) })
		v.files = sinktest.SHA256([]byte(fmt.Sprint(got)))
	case "blob parquet":
		info, ok := sinktest.ReadBlob(t, w.cc, "out/day=2024-01-01/facts.parquet")
		if !ok {
			v.files = "absent"
			break
		}
		path := filepath.Join(t.TempDir(), "facts.parquet")
		if err := os.WriteFile(path, info.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		readFile(path, true)
	}
	seen := map[string]bool{}
	for _, l := range labels {
		ver, _, _ := strings.Cut(l, " ")
		seen[ver] = true
	}
	v.versions = strings.Join(slices.Sorted(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	}), " ")
	return v
}

// leftovers lists what the output folder, container or schema holds
// besides the output: temporary files, parts no manifest lists, blobs
// other than the output, uncommitted blocks.
func (w *killWorld) leftovers(t *testing.T) []string {
	t.Helper()
	out := filepath.Join(w.dir, "out", "day=2024-01-01")
	listed := map[string]bool{"facts.parquet": true, "facts.csv": true, sink.ManifestName: true}
	if data, err := os.ReadFile(filepath.Join(out, sink.ManifestName)); err == nil {
		var m sink.Manifest
		_ = json.Unmarshal(data, &m)
		for _, p := range m.Parts {
			listed[p.Path] = true
		}
	}
	var left []string
	_ = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !listed[d.Name()] {
			left = append(left, p)
		}
		return nil
	})
	if w.cc != nil {
		for _, n := range sinktest.ListBlobs(t, w.cc) {
			if n != "out/day=2024-01-01/facts.parquet" {
				left = append(left, n)
			}
		}
		if n := sinktest.UncommittedBlocks(t, w.cc, "out/day=2024-01-01/facts.parquet"); n > 0 {
			left = append(left, fmt.Sprintf("%d uncommitted blocks", n))
		}
	}
	return left
}

// readRows reads the rows of a Parquet or CSV file (without its header).
func readRows(path string) ([][]any, error) {
	if strings.HasSuffix(path, ".parquet") {
		return sinktest.ReadParquetXitongsys(path)
	}
	recs, err := sinktest.ReadCSV(path)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	var rows [][]any
	for _, r := range recs[1:] {
		row := make([]any, len(r))
		for i, s := range r {
			row[i] = s
		}
		if n, err := strconv.ParseInt(r[0], 10, 64); err == nil {
			row[0] = n
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case int:
		return int64(x)
	}
	n, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	return n
}
