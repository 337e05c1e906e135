package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// The command, run as a person or a scheduler runs it (a child process),
// meeting a failure or a signal at each phase of a run: the exit code, the
// summary, the outputs, what is left behind. The pipeline's fault matrix
// checks the same invariants for many more cells in process; this test
// checks what only a process shows: exit codes, signals, the summary file,
// stderr free of panics. (Failures past the retries are left to the
// matrix: in a process the back-off takes minutes.)

const failRows = 1_200

// failWorld is a fake Power BI serving Facts, an output folder, a
// container and a table, and a job writing all three.
type failWorld struct {
	facts  *fakepbi.Facts
	srv    *fakepbi.Server
	dir    string
	env    []string
	job    string
	cc     *container.Client
	pg     *pgx.Conn
	table  string
	schema string
}

func newFailWorld(t *testing.T) *failWorld {
	t.Helper()
	db := sinktest.OpenPG(t) // its own schema, dropped at the end
	conn, schema := db.Conn, db.Schema
	az := sinktest.StartAzurite(t)
	cc := sinktest.NewContainer(t, az)

	w := &failWorld{facts: &fakepbi.Facts{Rows: failRows, Days: 1}, dir: t.TempDir(), cc: cc, pg: conn, table: schema + ".facts", schema: schema}
	var err error
	w.srv, err = fakepbi.Start(fakepbi.Options{Tables: []*fakepbi.Table{w.facts.Table()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.srv.Close)
	// The sink's sessions carry the schema's name, so that a fault that
	// terminates them reaches this test's only.
	w.env = childEnv(t, w.srv, w.dir, "T_PG="+sinktest.PGDSN()+" application_name="+schema, "T_AZ="+az.ConnectionString)
	w.job = filepath.Join(w.dir, "facts.yaml")
	text := fmt.Sprintf(`name: facts
source:
  powerbi:
    workspace: ${T_WS}
    dataset: ${T_DS}
    endpoint: ${T_EP}
    query: "EVALUATE Facts"
    auth: { tenant: "${T_TENANT}", clientId: "${T_CLIENT}", clientSecret: "${T_SECRET}", authorityHost: "${T_AUTH}" }
%sstorage: { connectionString: "${T_AZ}" }
sinks:
  - parquet: { path: %q }
  - csv: { path: "az://%s/out/facts.csv" }
  - postgres: { dsn: "${T_PG}", table: %s, mode: replace }
`, fakepbi.FactsMapping, filepath.Join(w.dir, "out", "facts.parquet"), sinktest.ContainerName(cc), w.table)
	if err := os.WriteFile(w.job, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// sinks of the job, in its order, and the order they commit in.
var (
	failSinks   = []string{"sinks[0] (parquet)", "sinks[1] (csv)", "sinks[2] (postgres)"}
	commitOrder = []int{2, 1, 0} // PostgreSQL, then the blob, then the local file
)

// run runs the command in a child process with extra environment.
func (w *failWorld) run(t *testing.T, extra []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	c := exec.Command(os.Args[0], args...)
	c.Env = append(slices.Clone(w.env), extra...)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	if code = exitCode(t, c.Run()); code < 0 {
		t.Fatalf("the command died: %s\n%s", c.ProcessState, e.String())
	}
	return code, o.String(), e.String()
}

// outputs is what each sink holds, in the job's order.
func (w *failWorld) outputs(t *testing.T) [3]string {
	t.Helper()
	var out [3]string
	files := map[string]string{}
	_ = filepath.WalkDir(filepath.Join(w.dir, "out"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(w.dir, p)
			files[rel] = sinktest.SHA256(data)
		}
		return nil
	})
	out[0] = fmt.Sprint(files)
	blobs := map[string]string{}
	for _, n := range sinktest.ListBlobs(t, w.cc) {
		info, _ := sinktest.ReadBlob(t, w.cc, n)
		blobs[n] = sinktest.SHA256(info.Data)
	}
	out[1] = fmt.Sprint(blobs)
	var n int64
	var sum string
	if err := w.pg.QueryRow(context.Background(), "select count(*), coalesce(md5(string_agg(t::text, ',' order by t::text)), '') from "+w.table+" t").Scan(&n, &sum); err != nil {
		out[2] = "(no table)"
	} else {
		out[2] = fmt.Sprint(n, " ", sum)
	}
	return out
}

// leftovers lists the temporary files of the output folder.
func (w *failWorld) leftovers() []string {
	var left []string
	_ = filepath.WalkDir(filepath.Join(w.dir, "out"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			left = append(left, p)
		}
		return nil
	})
	return left
}

func readRunSummary(t *testing.T, path string) runSummary {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no summary: %v", err)
	}
	var s runSummary
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("summary: %v\n%s", err, data)
	}
	if len(s.Jobs) != 1 {
		t.Fatalf("summary of %d jobs", len(s.Jobs))
	}
	return s
}

// TestRunFailureExitIntegration fails each sink at each phase, and
// interrupts the run there with SIGINT and SIGTERM; and fails the source.
// Each time: exit code 1 (130 for a signal), never 2 and never a panic; the
// summary written, naming the phase and the sink; nothing new published
// but what the commit order had published; no temporary file; then a run
// without the fault publishes the new data.
func TestRunFailureExitIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("each case runs the command as a child process against PostgreSQL and Azurite (about 20 s)")
	}
	w := newFailWorld(t)
	version := 1
	w.facts.Set(version, fakepbi.NoPoison, -1)
	if code, _, stderr := w.run(t, nil, "run", w.job, "--log-format", "json"); code != 0 {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}

	type cell struct {
		name      string
		env       []string
		before    func()           // makes the fault, in the parent
		signal    func(*exec.Cmd)  // sends a signal from the parent
		code      int              // the exit code
		phase     string           // a part of the phase the summary names
		published func(i int) bool // which sinks end published
	}
	none := func(int) bool { return false }
	var requests int // the service's count before the run
	all := func(int) bool { return true }
	var cells []cell
	for i, name := range failSinks {
		for _, at := range []string{"open", "write1", "writeLast", "commit"} {
			fault := fmt.Sprintf("PBICOPY_TEST_FAULT=%s:%d:%d", at, i, failRows)
			phase := map[string]string{"open": "open ", "write1": "write ", "writeLast": "write ", "commit": "commit "}[at] + name
			published := none
			if at == "commit" {
				// The sinks that commit before this one stay published.
				k := slices.Index(commitOrder, i)
				published = func(j int) bool { return slices.Index(commitOrder, j) < k }
			}
			cells = append(cells, cell{name: fmt.Sprintf("fail %s at %s", name, at), env: []string{fault}, code: 1, phase: phase, published: published})
			for _, sig := range []string{"INT", "TERM"} {
				c := cell{name: fmt.Sprintf("SIG%s at %s of %s", sig, at, name), env: []string{fault, "PBICOPY_TEST_SIGNAL=" + sig}, code: 130, published: none}
				if at == "commit" {
					c.published = all // the commit phase finishes
				}
				cells = append(cells, c)
			}
		}
	}
	cells = append(cells,
		cell{name: "token refused", env: []string{"T_SECRET=wrong"}, code: 1, phase: "source", published: none},
		cell{name: "403", before: func() { w.srv.FailWith(100, 403) }, code: 1, phase: "source", published: none},
		cell{name: "body cut on every try", before: func() { w.srv.CutBody(100, 10_000) }, code: 1, phase: "source", published: none},
		cell{name: "bad value in the last batch", before: func() { w.facts.Set(version, fakepbi.Fraction, failRows-1) }, code: 1, phase: "source", published: none},
		cell{name: "PostgreSQL refuses a NUL in the last batch", before: func() { w.facts.Set(version, fakepbi.NUL, failRows-1) }, code: 1, phase: "sinks[2] (postgres)", published: none},
	)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cells = append(cells, cell{name: fmt.Sprintf("%v during the request", sig), code: 130, published: none,
			before: func() { w.srv.SetLatency(3 * time.Second) },
			signal: func(c *exec.Cmd) {
				for w.srv.QueryRequests() == requests {
					time.Sleep(10 * time.Millisecond)
				}
				_ = c.Process.Signal(sig)
			}})
	}

	for _, c := range cells {
		t.Run(c.name, func(t *testing.T) {
			before := w.outputs(t)
			version++
			w.facts.Set(version, fakepbi.NoPoison, -1)
			if c.before != nil {
				c.before()
			}
			requests = w.srv.QueryRequests()
			summary := filepath.Join(t.TempDir(), "summary.json")
			args := []string{"run", w.job, "--summary", summary, "--log-format", "json", "-v"}
			var code int
			var stderr string
			if c.signal != nil {
				cmd := exec.Command(os.Args[0], args...)
				cmd.Env = w.env
				var e bytes.Buffer
				cmd.Stderr = &e
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				c.signal(cmd)
				_ = cmd.Wait()
				code, stderr = cmd.ProcessState.ExitCode(), e.String()
			} else {
				code, _, stderr = w.run(t, c.env, args...)
			}
			w.srv.FailWith(0, 0)
			w.srv.CutBody(0, 0)
			w.srv.SetLatency(0)
			w.facts.Set(version, fakepbi.NoPoison, -1)

			if code != c.code {
				t.Errorf("exit %d, want %d\n%s", code, c.code, stderr)
			}
			if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
				t.Errorf("stderr shows a panic:\n%s", stderr)
			}
			s := readRunSummary(t, summary)
			job := s.Jobs[0]
			wantStatus := "failed"
			if c.code == 130 {
				wantStatus = "interrupted"
			} else if slices.ContainsFunc([]int{0, 1, 2}, c.published) {
				wantStatus = "partially published"
			}
			if job.Status != wantStatus || job.Error == "" {
				t.Errorf("summary: status %q, error %q; want %q", job.Status, job.Error, wantStatus)
			}
			if c.phase != "" && !strings.Contains(job.Phase, c.phase) {
				t.Errorf("summary: phase %q, want it to name %q", job.Phase, c.phase)
			}
			after := w.outputs(t)
			for i := range 3 {
				changed := after[i] != before[i]
				if pub := job.Sinks[i].Status == "succeeded"; pub != c.published(i) || changed != c.published(i) {
					t.Errorf("%s: summary says %s, output changed: %v; want published: %v", failSinks[i], job.Sinks[i].Status, changed, c.published(i))
				}
			}
			if left := w.leftovers(); len(left) > 0 {
				t.Errorf("left behind: %q", left)
			}

			// Without the fault, the run publishes the new data.
			if code, _, stderr := w.run(t, nil, "run", w.job, "--log-format", "json"); code != 0 {
				t.Fatalf("run without the fault: exit %d\n%s", code, stderr)
			}
			final := w.outputs(t)
			for i := range 3 {
				if final[i] == before[i] {
					t.Errorf("%s: the run without the fault published nothing new", failSinks[i])
				}
			}
		})
	}
}
