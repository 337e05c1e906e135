package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/pipeline"
)

// TestMain lets a test run the real command in a child process (to kill it
// with SIGKILL): with PBICOPY_TEST_MAIN=1 the test binary is pbicopy.
func TestMain(m *testing.M) {
	if os.Getenv("PBICOPY_TEST_MAIN") == "1" {
		os.Exit(runInterruptible(testChild(), os.Args[1:]))
	}
	os.Exit(m.Run())
}

const backfillJobText = `name: backfill
params:
  day: { type: date }
partition: { param: day, step: 1d }
source:
  powerbi:
    workspace: ${T_WS}
    dataset: ${T_DS}
    endpoint: ${T_EP}
    query: "EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }}) ORDER BY Sales[OrderID]"
    auth: { tenant: "${T_TENANT}", clientId: "${T_CLIENT}", clientSecret: "${T_SECRET}", authorityHost: "${T_AUTH}" }
mapping:
  columns:
    - { from: "Sales[OrderID]", to: order_id, type: int64 }
    - { from: "Sales[OrderDate]", to: order_date, type: date }
    - { from: "Sales[Customer]", to: customer, type: string }
    - { from: "Sales[Amount]", to: amount, type: "decimal(19,4)" }
  unmapped: ignore
sinks:
  - parquet: { path: "%[1]s/day={{ .day }}/sales.parquet" }
  - csv: { path: "%[1]s/day={{ .day }}/sales.csv" }
  - postgres: { dsn: "${T_PG}", table: %[2]s, mode: replacePartition, partitionColumn: order_date }
`

// TestResumeAfterKill kills a backfill with SIGKILL mid-way, resumes it,
// and compares the result with an uninterrupted run, row for row, in
// Parquet, CSV and PostgreSQL.
func TestResumeAfterKillIntegration(t *testing.T) {
	ctx := context.Background()
	db := sinktest.OpenPG(t) // its own schema, dropped at the end
	conn, schema := db.Conn, db.Schema

	srv, err := fakepbi.Start(fakepbi.Options{Latency: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	env := childEnv(t, srv, dir, "T_PG="+sinktest.PGDSN())
	writeJobFile := func(name, out, table string) string {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf(backfillJobText, out, table)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	command := func(args ...string) *exec.Cmd {
		c := exec.Command(os.Args[0], args...)
		c.Env = env
		return c
	}
	const from, to = "2024-04-01", "2024-04-16"
	span := []string{"--from", from, "--to", to, "--concurrency", "2", "--rate", "6000", "--log-format", "json"}

	// The reference: one uninterrupted run.
	refJob := writeJobFile("ref", filepath.Join(dir, "ref"), schema+".ref")
	if out, err := command(append([]string{"run", refJob}, span...)...).CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}

	// The victim: killed once a few partitions are recorded.
	job := writeJobFile("job", filepath.Join(dir, "out"), schema+".sales")
	statePath := filepath.Join(dir, "out", ".pbicopy-state", "backfill.json")
	victim := command(append([]string{"run", job}, span...)...)
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(statePath)
		if strings.Count(string(data), `"finishedAt"`) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			_ = victim.Process.Kill()
			t.Fatal("the backfill recorded no partitions in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := victim.Process.Kill(); err != nil { // SIGKILL: no cleanup at all
		t.Fatal(err)
	}
	_ = victim.Wait()
	data, _ := os.ReadFile(statePath)
	done := strings.Count(string(data), `"finishedAt"`)
	if done >= 16 {
		t.Fatalf("the process finished before it was killed")
	}
	before := srv.QueryRequests()

	out, err := command(append([]string{"run", job, "--resume"}, span...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("resumed run: %v\n%s", err, out)
	}
	if ran := srv.QueryRequests() - before; ran > 16-done {
		t.Errorf("the resumed run made %d requests; %d partitions were already done", ran, done)
	}

	// Row for row: files (hidden temporary files a SIGKILL can leave are
	// never read under the target names) and tables.
	ref, got := readTree(t, filepath.Join(dir, "ref")), readTree(t, filepath.Join(dir, "out"))
	if len(ref) != 32 || len(got) != len(ref) {
		t.Fatalf("%d reference files, %d after resume", len(ref), len(got))
	}
	for name, rows := range ref {
		if d := sinktest.DiffRows(rows, got[name]); d != "" {
			t.Errorf("%s: %s", name, d)
		}
	}
	sum := func(table string) string {
		var n int64
		var s string
		if err := conn.QueryRow(ctx, "select count(*), coalesce(md5(string_agg(t::text, '|' order by t::text)), '') from "+table+" t").Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(n, " ", s)
	}
	if a, b := sum(schema+".ref"), sum(schema+".sales"); a != b {
		t.Errorf("postgres: reference %s, resumed %s", a, b)
	}
}

// readTree reads every Parquet and CSV file under dir (not the hidden ones)
// into rows by relative path.
func readTree(t *testing.T, dir string) map[string][][]any {
	t.Helper()
	out := map[string][][]any{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch filepath.Ext(p) {
		case ".parquet":
			rows, err := sinktest.ReadParquetXitongsys(p)
			out[rel] = rows
			return err
		case ".csv":
			recs, err := sinktest.ReadCSV(p)
			var rows [][]any
			for _, r := range recs {
				var row []any
				for _, v := range r {
					row = append(row, v)
				}
				rows = append(rows, row)
			}
			out[rel] = rows
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPlan(t *testing.T) {
	dir := fakeJobs(t)
	p := filepath.Join(dir, "plan.yaml")
	text := strings.Replace(fmt.Sprintf(backfillJobText, filepath.Join(dir, "out"), "s.t"), "${T_PG}", "host=nowhere", 1)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "plan", p, "--from", "2024-01-30", "--to", "2024-02-02", "--rate", "60")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"job backfill: 4 partition(s)",
		"2024-01-30  EVALUATE FILTER(Sales, Sales[OrderDate] = DATE(2024, 1, 30)) ORDER BY Sales[OrderID]",
		"2024-02-02",
		filepath.Join(dir, "out", "day=2024-02-01", "sales.parquet"),
		"postgres s.t (replacePartition)",
		"at least 4 request(s) at 60/min with 1 in flight: at least 4s",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, stdout)
		}
	}
	if code, _, _ := runCmd(t, "plan", p, "--from", "2024-01-30"); code != exitInvalid {
		t.Errorf("--from without --to: exit %d", code)
	}
	for _, args := range [][]string{
		{"run", p, "--from", "2024-01-30"},
		{"run", p, "--param", "dya=2024-01-01"},
		{"run", p, "--from", "2024-02-02", "--to", "2024-01-01"},
	} {
		code, _, stderr := runCmd(t, args...)
		if code != exitInvalid || !strings.Contains(stderr, "plan.yaml") {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitInvalid, stderr)
		}
	}
	if code, _, _ := runCmd(t, "run", p, "--shard", "2/2"); code != exitInvalid {
		t.Errorf("bad --shard: exit %d", code)
	}
	_ = pipeline.DefaultMemoryLimit
}

// TestShardAuto: --shard auto/n (or PBICOPY_SHARD=auto/n, as a manifest
// sets it) takes the shard index from JOB_COMPLETION_INDEX, as Kubernetes
// sets it in an Indexed Job; without a usable index nothing runs (exit 2).
func TestShardAuto(t *testing.T) {
	dir := fakeJobs(t)
	t.Setenv("PBICOPY_LOG_FORMAT", "text")
	p := filepath.Join(dir, "shard.yaml")
	text := strings.Replace(fmt.Sprintf(backfillJobText, filepath.Join(dir, "out"), "s.t"), "${T_PG}", "host=nowhere", 1)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	span := []string{"--from", "2024-01-01", "--to", "2024-01-09"}
	plan := func(extra ...string) (int, string, string) {
		return runCmd(t, append(append([]string{"plan", p}, span...), extra...)...)
	}
	for i := range 4 {
		_, want, _ := plan("--shard", fmt.Sprintf("%d/4", i))
		t.Setenv("JOB_COMPLETION_INDEX", fmt.Sprint(i))
		code, got, stderr := plan("--shard", "auto/4")
		if code != exitOK || got != want {
			t.Errorf("auto/4 with index %d: exit %d\n%s\nwant the plan of %d/4:\n%s", i, code, got+stderr, i, want)
		}
		t.Setenv("PBICOPY_SHARD", "auto/4")
		code, got, stderr = plan()
		if code != exitOK || got != want {
			t.Errorf("PBICOPY_SHARD=auto/4 with index %d: exit %d\n%s\nwant the plan of %d/4:\n%s", i, code, got+stderr, i, want)
		}
		os.Unsetenv("PBICOPY_SHARD")
	}
	// Shard 1 of 4 over 9 days: the 2nd and 6th.
	t.Setenv("JOB_COMPLETION_INDEX", "1")
	if _, out, _ := plan("--shard", "auto/4"); !strings.Contains(out, "job backfill: 2 partition(s)") || !strings.Contains(out, "2024-01-02") || !strings.Contains(out, "2024-01-06") {
		t.Errorf("shard 1/4 of 9 days:\n%s", out)
	}

	for _, c := range []struct {
		index string // "-" for unset
		shard string
		want  string
	}{
		{"-", "auto/4", "pbicopy: --shard auto/4: JOB_COMPLETION_INDEX is not set: auto takes the shard index from it"},
		{"x", "auto/4", `pbicopy: --shard auto/4: JOB_COMPLETION_INDEX="x" is not a shard index: want an integer from 0 to 3`},
		{"4", "auto/4", "pbicopy: --shard auto/4: JOB_COMPLETION_INDEX=4 is not below 4"},
		{"0", "auto/0", `pbicopy: --shard "auto/0": write i/n with 0 <= i < n`},
	} {
		if c.index == "-" {
			os.Unsetenv("JOB_COMPLETION_INDEX")
		} else {
			t.Setenv("JOB_COMPLETION_INDEX", c.index)
		}
		for _, cmd := range []string{"run", "plan"} {
			code, stdout, stderr := runCmd(t, append([]string{cmd, p, "--shard", c.shard}, span...)...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != exitInvalid || stdout != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], c.want) {
				t.Errorf("%s --shard %s, index %s: exit %d, stdout %q, stderr:\n%s", cmd, c.shard, c.index, code, stdout, stderr)
			}
		}
		// The same through the environment: the message names the flag.
		t.Setenv("PBICOPY_SHARD", c.shard)
		code, _, stderr := runCmd(t, append([]string{"run", p}, span...)...)
		if code != exitInvalid || !strings.Contains(stderr, strings.TrimPrefix(c.want, "pbicopy: ")) {
			t.Errorf("PBICOPY_SHARD=%s, index %s: exit %d\n%s", c.shard, c.index, code, stderr)
		}
		os.Unsetenv("PBICOPY_SHARD")
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("a run with a bad shard wrote outputs: %v", err)
	}
}
