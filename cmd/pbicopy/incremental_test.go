package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// incrJobText is an incremental job on the demo Sales table: the rows
// ordered after the watermark (a datetime), merged into a table, with the
// state in a local file.
const incrJobText = `name: sales-incr
params:
  since: { type: datetime }
incremental:
  param: since
  column: order_date
  initial: "2024-12-01T00:00:00Z"
state: { path: %[1]q }
source:
  powerbi:
    workspace: ${T_WS}
    dataset: ${T_DS}
    endpoint: ${T_EP}
    query: "EVALUATE FILTER(Sales, Sales[OrderDate] > {{ dax .since }})"
    auth: { tenant: "${T_TENANT}", clientId: "${T_CLIENT}", clientSecret: "${T_SECRET}", authorityHost: "${T_AUTH}" }
mapping:
  columns:
    - { from: "Sales[OrderID]", to: order_id, type: int64 }
    - { from: "Sales[OrderDate]", to: order_date, type: timestamp }
    - { from: "Sales[Amount]", to: amount, type: "decimal(19,4)" }
  unmapped: ignore
sinks:
  - postgres: { dsn: "${T_PG}", table: %[2]s, mode: merge, key: [order_id] }
`

// TestIncrementalKilledAfterCommitIntegration kills the command with
// SIGKILL after the PostgreSQL commit and before the watermark is saved:
// the next run reads the same window again, and the merge leaves the
// table as it was.
func TestIncrementalKilledAfterCommitIntegration(t *testing.T) {
	ctx := context.Background()
	db := sinktest.OpenPG(t) // its own schema, dropped at the end
	conn, schema := db.Conn, db.Schema
	srv, err := fakepbi.Start(fakepbi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	env := childEnv(t, srv, dir, "T_PG="+sinktest.PGDSN())
	statePath := filepath.Join(dir, "state", "sales.json")
	table := schema + ".sales"
	job := filepath.Join(dir, "sales.yaml")
	if err := os.WriteFile(job, []byte(fmt.Sprintf(incrJobText, statePath, table)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) (*exec.Cmd, error, string) {
		c := exec.Command(os.Args[0], "run", job, "--summary", filepath.Join(dir, "summary.json"))
		c.Env = append(append([]string(nil), env...), extra...)
		out, err := c.CombinedOutput()
		return c, err, string(out)
	}
	checksum := func() (int64, string) {
		var n int64
		var sum string
		if err := conn.QueryRow(ctx, "select count(*), coalesce(md5(string_agg(t::text, '|' order by t::text)), '') from "+table+" t").Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		return n, sum
	}

	c, err, out := run("PBICOPY_TEST_FAULT=committed:0", "PBICOPY_TEST_SIGNAL=KILL")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the command was not killed: %v (%v)\n%s", err, c.ProcessState, out)
	}
	rows, sum := checksum()
	if rows == 0 {
		t.Fatal("the table is empty: the kill came before the commit")
	}
	if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the watermark was saved before the kill: %v", err)
	}
	first := srv.Queries()

	if _, err, out := run(); err != nil {
		t.Fatalf("the run after the kill: %v\n%s", err, out)
	}
	queries := srv.Queries()
	if len(first) != 1 || len(queries) != 2 || queries[1].Query != first[0].Query || !strings.Contains(first[0].Query, "> DATETIME(2024, 12, 1, 0, 0, 0)") {
		t.Errorf("the run after the kill read another window:\n%+v", queries)
	}
	if n, s := checksum(); n != rows || s != sum {
		t.Errorf("the repeat changed the table: %d rows, %s; was %d, %s", n, s, rows, sum)
	}
	var summary struct {
		Jobs []struct {
			Watermark struct {
				Old, New, From, Source string
				Advanced               bool
			} `json:"watermark"`
		} `json:"jobs"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil || json.Unmarshal(data, &summary) != nil || len(summary.Jobs) != 1 {
		t.Fatalf("summary: %v\n%s", err, data)
	}
	if wm := summary.Jobs[0].Watermark; wm.Old != "" || wm.New != "2024-12-31T00:00:00Z" || wm.From != "2024-12-01T00:00:00Z" || wm.Source != "initial" || !wm.Advanced {
		t.Errorf("summary watermark: %+v", wm)
	}
}

// TestPlanShowsWatermarkCommand: plan prints the watermark it would read
// from and the query rendered with it; --reset-watermark needs an
// incremental job.
func TestPlanShowsWatermarkCommand(t *testing.T) {
	_, dir := fakeEnv(t, fakepbi.Options{})
	t.Setenv("T_PG", "host=127.0.0.1")
	statePath := filepath.Join(dir, "sales.json")
	job := writeFile(t, filepath.Join(dir, "sales.yaml"), fmt.Sprintf(incrJobText, statePath, "analytics.sales"))
	code, out, errOut := runApp(t, context.Background(), "plan", job)
	if code != 0 || !strings.Contains(out, "watermark since = 2024-12-01T00:00:00Z (incremental.initial: no watermark stored yet), kept in "+statePath) ||
		!strings.Contains(out, "EVALUATE FILTER(Sales, Sales[OrderDate] > DATETIME(2024, 12, 1, 0, 0, 0))") {
		t.Errorf("plan: %d\n%s%s", code, out, errOut)
	}
	writeFile(t, statePath, `{"job": "sales-incr", "param": "since", "type": "datetime", "column": "order_date", "watermark": "2024-12-20T10:00:00Z"}`)
	code, out, _ = runApp(t, context.Background(), "plan", job)
	if code != 0 || !strings.Contains(out, "watermark since = 2024-12-20T10:00:00Z (stored)") || !strings.Contains(out, "> DATETIME(2024, 12, 20, 10, 0, 0)") {
		t.Errorf("plan with a stored watermark: %d\n%s", code, out)
	}
	code, out, _ = runApp(t, context.Background(), "plan", job, "--reset-watermark")
	if code != 0 || !strings.Contains(out, "incremental.initial: --reset-watermark forgets the stored 2024-12-20T10:00:00Z") {
		t.Errorf("plan --reset-watermark: %d\n%s", code, out)
	}
	code, out, _ = runApp(t, context.Background(), "plan", job, "--param", "since=2024-12-24")
	if code != 0 || !strings.Contains(out, "watermark since = 2024-12-24T00:00:00Z (from --param, for this run)") {
		t.Errorf("plan --param: %d\n%s", code, out)
	}
	other := writeFile(t, filepath.Join(dir, "other.yaml"), strings.Replace(
		strings.Replace(fmt.Sprintf(incrJobText, statePath, "analytics.sales"), "incremental:\n  param: since\n  column: order_date\n  initial: \"2024-12-01T00:00:00Z\"\n", "", 1),
		"{{ dax .since }}", "DATE(2024, 1, 1)", 1))
	code, _, errOut = runApp(t, context.Background(), "run", other, "--reset-watermark")
	if code != 2 || !strings.Contains(errOut, "--reset-watermark: job sales-incr is not incremental") {
		t.Errorf("--reset-watermark on another job: %d\n%s", code, errOut)
	}
}
