package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/jobfile"
)

const mappedSinks = `mapping:
  columns:
    - { from: "Sales[OrderID]", to: order_id, type: int64 }
    - { from: "Sales[OrderDate]", to: order_date, type: date }
    - { from: "Sales[Amount]", to: amount, type: "decimal(19,4)" }
  unmapped: ignore
sinks:
  - parquet: { path: "%s/sales.parquet", compression: zstd }
  - csv: { path: "%s/sales.csv" }
`

// TestGoldenRun runs a folder with a failing and a good job, and checks
// the summary table and JSON against golden files, and the JSON's figures
// against the files published and the requests the service saw.
func TestGoldenRun(t *testing.T) {
	srv, dir := fakeEnv(t, fakepbi.Options{})
	writeJob(t, dir, "a-bad", "EVALUATE NoSuchTable")
	out := filepath.Join(dir, "out")
	writeFile(t, filepath.Join(dir, "jobs", "b-good.yaml"), "name: b-good\n"+sourceBlock("EVALUATE Sales ORDER BY Sales[OrderID]", nil)+
		strings.ReplaceAll(mappedSinks, "%s", out))
	summary := filepath.Join(dir, "summary.json")
	code, stdout, stderr := runApp(t, context.Background(), "run", filepath.Join(dir, "jobs"), "--summary", summary, "--log-format", "json")
	if code != exitFailed {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	golden(t, "run.txt", normalize(stdout, dir))
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "run-summary.json", normalize(string(data), dir))

	var sum runSummary
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Status != runFailed || len(sum.Jobs) != 2 || sum.Totals.Failed != 1 {
		t.Fatalf("summary %+v", sum)
	}
	bad, good := sum.Jobs[0], sum.Jobs[1]
	if bad.Status != "failed" || !strings.Contains(bad.Error, "NoSuchTable") || bad.Sinks[0].Status != sinkAborted || bad.Sinks[0].Published != 0 {
		t.Errorf("failed job: %+v", bad)
	}
	requests := 0
	for _, j := range sum.Jobs {
		requests += j.Requests
	}
	if requests != srv.QueryRequests() {
		t.Errorf("the summary counts %d requests, the service saw %d", requests, srv.QueryRequests())
	}
	if good.RowsRead != fakepbi.DemoRows || good.Pages != 1 || good.Retries != 0 || good.Throttled.Count != 0 || good.BytesRead == 0 || good.DurationSeconds <= 0 {
		t.Errorf("good job figures: %+v", good)
	}
	var published int
	for _, k := range good.Sinks {
		if len(k.Files) != 1 || k.Published != 1 || k.Status != "succeeded" {
			t.Fatalf("sink %+v", k)
		}
		f := k.Files[0]
		content, err := os.ReadFile(f.Location)
		if err != nil {
			t.Fatal(err)
		}
		sumHex := sha256.Sum256(content)
		if int64(len(content)) != f.Bytes || f.Bytes != k.Bytes || hex.EncodeToString(sumHex[:]) != f.SHA256 {
			t.Errorf("%s: the summary says %d bytes, sha256 %s; the file has %d bytes, sha256 %x", f.Location, f.Bytes, f.SHA256, len(content), sumHex)
		}
		var rows int
		switch k.Kind {
		case "csv":
			recs, err := sinktest.ReadCSV(f.Location)
			if err != nil {
				t.Fatal(err)
			}
			rows = len(recs) - 1 // header
		case "parquet":
			_, recs, err := sinktest.ReadParquetArrow(f.Location, nil)
			if err != nil {
				t.Fatal(err)
			}
			rows = len(recs)
		}
		if int64(rows) != k.RowsWritten || f.Rows != k.RowsWritten || k.RowsWritten != good.RowsRead {
			t.Errorf("%s: the summary says %d rows written, the file holds %d, %d were read", k.Kind, k.RowsWritten, rows, good.RowsRead)
		}
		published += k.Published
	}
	if sum.Totals.Published != published || sum.Totals.RowsRead != good.RowsRead {
		t.Errorf("totals %+v", sum.Totals)
	}
}

// TestSummaryWhenNothingRuns: an invalid job still leaves a summary with
// the error.
func TestSummaryWhenNothingRuns(t *testing.T) {
	_, dir := fakeEnv(t, fakepbi.Options{})
	p := writeFile(t, filepath.Join(dir, "bad.yaml"), "name: Bad Name\n")
	summary := filepath.Join(dir, "summary.json")
	code, _, _ := runApp(t, context.Background(), "run", p, "--summary", summary)
	if code != exitInvalid {
		t.Fatalf("exit %d", code)
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "run-invalid-summary.json", normalize(string(data), dir))
}

func TestGoldenValidate(t *testing.T) {
	t.Setenv("PBICOPY_LOG_FORMAT", "text")
	_, dir := fakeEnv(t, fakepbi.Options{})
	out := filepath.Join(dir, "out")
	writeFile(t, filepath.Join(dir, "jobs", "daily.yaml"), `name: daily
params:
  day: { type: date }
  region: { type: string, default: North }
`+sourceBlock(`EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }} && Sales[Region] = {{ dax .region }})`, nil)+`sinks:
  - csv: { path: "`+out+`/{{ .region }}/{{ .day }}.csv" }
`)
	writeJob(t, dir, "plain", "EVALUATE Sales")
	code, stdout, stderr := runApp(t, context.Background(), "validate", filepath.Join(dir, "jobs"))
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	golden(t, "validate.txt", normalize(stdout, dir))
	code, stdout, _ = runApp(t, context.Background(), "validate", filepath.Join(dir, "jobs"), "--param", "day=2024-03-01")
	if code != exitOK || strings.Contains(stdout, "needs") {
		t.Errorf("with the param: exit %d\n%s", code, stdout)
	}

	writeFile(t, filepath.Join(dir, "bad", "bad.yaml"), "name: bad\n"+sourceBlock("EVALUATE {{ .x }}", nil)+"sinks:\n  - csv: { path: out.csv, delimiter: ';' }\n")
	code, stdout, stderr = runApp(t, context.Background(), "validate", filepath.Join(dir, "bad"))
	if code != exitInvalid || stdout != "" {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	golden(t, "validate-invalid.txt", normalize(stderr, dir))
}

// onlineJobs writes one job per online failure class, and one that passes.
func onlineJobs(t *testing.T, dir string) {
	out := filepath.Join(dir, "out")
	blocker := writeFile(t, filepath.Join(dir, "blocker"), "a file where a folder should be\n")
	t.Setenv("T_WRONG_SECRET", "not-the-secret")
	mapped := strings.NewReplacer("%s", out).Replace(mappedSinks)
	jobs := []struct{ name, body string }{
		{"a-ok", sourceBlock("EVALUATE Sales ORDER BY Sales[OrderID]", nil) + mapped},
		{"b-wrong-secret", sourceBlock("EVALUATE Sales", strings.NewReplacer("${T_SECRET}", "${T_WRONG_SECRET}")) + "sinks:\n  - csv: { path: " + out + "/b.csv }\n"},
		{"c-unknown-app", sourceBlock("EVALUATE Sales", strings.NewReplacer("${T_CLIENT}", "0bad0000-0000-4000-8000-000000000000")) + "sinks:\n  - csv: { path: " + out + "/c.csv }\n"},
		{"d-unknown-tenant", sourceBlock("EVALUATE Sales", strings.NewReplacer("${T_TENANT}", "0bad0000-0000-4000-8000-00000000000t")) + "sinks:\n  - csv: { path: " + out + "/d.csv }\n"},
		{"e-dax-error", sourceBlock("EVALUATE Salez", nil) + "sinks:\n  - csv: { path: " + out + "/e.csv }\n"},
		{"f-wrong-dataset", sourceBlock("EVALUATE Sales", strings.NewReplacer("${T_DS}", "0bad0000-0000-4000-8000-00000000000d")) + "sinks:\n  - csv: { path: " + out + "/f.csv }\n"},
		{"g-mapping", sourceBlock("EVALUATE Sales", nil) + "mapping:\n  columns:\n    - { from: \"Sales[Customer]\", to: customer, type: int64 }\n  unmapped: ignore\nsinks:\n  - csv: { path: " + out + "/g.csv }\n"},
		{"h-folder", sourceBlock("EVALUATE Sales", nil) + "sinks:\n  - csv: { path: " + blocker + "/h.csv }\n"},
		{"i-empty", sourceBlock("EVALUATE FILTER(Sales, Sales[OrderID] < 0)", nil) + "sinks:\n  - csv: { path: " + out + "/i.csv }\n"},
	}
	for _, j := range jobs {
		writeFile(t, filepath.Join(dir, "jobs", j.name+".yaml"), "name: "+j.name+"\n"+j.body)
	}
}

func TestGoldenValidateOnline(t *testing.T) {
	srv, dir := fakeEnv(t, fakepbi.Options{})
	onlineJobs(t, dir)
	code, stdout, stderr := runApp(t, context.Background(), "validate", "--online", filepath.Join(dir, "jobs"))
	if code != exitFailed {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	golden(t, "validate-online.txt", normalize(stdout, dir))
	for _, q := range srv.Queries() {
		if !strings.Contains(q.Query, "TOPN(1, ") {
			t.Errorf("validate --online sent %q: every query must be sampled to one row", q.Query)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("validate --online created the output folder: %v", err)
	}
	code, stdout, _ = runApp(t, context.Background(), "validate", "--online", filepath.Join(dir, "jobs", "a-ok.yaml"))
	if code != exitOK || !strings.HasSuffix(stdout, "all checks passed\n") {
		t.Errorf("a passing job: exit %d\n%s", code, stdout)
	}
}

func TestGoldenInfer(t *testing.T) {
	srv, dir := fakeEnv(t, fakepbi.Options{})
	p := writeFile(t, filepath.Join(dir, "job.yaml"), "name: infer-me\n"+sourceBlock("EVALUATE Sales ORDER BY Sales[OrderID]", nil)+"sinks:\n  - csv: { path: out.csv }\n")
	code, stdout, stderr := runApp(t, context.Background(), "infer", p)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	golden(t, "infer.txt", stdout)
	// The whole first response, as a run reads it: the query as it is.
	if q := srv.Queries(); len(q) != 1 || q[0].Query != "EVALUATE Sales ORDER BY Sales[OrderID]" {
		t.Errorf("infer sent %+v", q)
	}
	// The block pasted into the job makes a valid job whose run succeeds.
	jobText := "name: inferred\n" + sourceBlock("EVALUATE Sales", nil) + stdout + "sinks:\n  - csv: { path: " + filepath.Join(dir, "inferred.csv") + " }\n"
	jp := writeFile(t, filepath.Join(dir, "inferred.yaml"), jobText)
	if code, stdout, stderr := runApp(t, context.Background(), "run", jp); code != exitOK {
		t.Fatalf("running the inferred mapping: exit %d\n%s\n%s", code, stdout, stderr)
	}

	// Without a job: flags, a query with keys that need quoting, and a
	// sample of 3.
	args := append([]string{"infer", "--sample", "3", "--query", `EVALUATE SELECTCOLUMNS(BigKeys, "Key", BigKeys[Key], "Total (EUR)", BigKeys[Amount], "Note ""quoted""", BigKeys[Note], "When", BigKeys[At], "Ratio", BigKeys[Ratio])`}, adhocFlags(t, srv)...)
	code, stdout, stderr = runApp(t, context.Background(), args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	golden(t, "infer-query.txt", stdout)
	job, _, err := jobfile.Loader{}.Load("x.yaml", []byte("name: x\n"+sourceBlock("EVALUATE BigKeys", nil)+stdout+"sinks:\n  - csv: { path: x.csv }\n"))
	if err != nil {
		t.Fatalf("the printed block does not load: %v", err)
	}
	if c := job.Mapping.Columns; len(c) != 5 || c[2].From != `[Note "quoted"]` || c[1].To != "total_eur" {
		t.Errorf("columns read back: %+v", c)
	}
}

func TestGoldenQuery(t *testing.T) {
	srv, dir := fakeEnv(t, fakepbi.Options{})
	flags := adhocFlags(t, srv)
	q := `EVALUATE TOPN(7, Sales, Sales[OrderID], ASC) ORDER BY Sales[OrderID]`
	run := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runApp(t, context.Background(), append(append([]string{"query"}, args...), flags...)...)
		if code != exitOK {
			t.Fatalf("query %v: exit %d\n%s\n%s", args, code, stdout, stderr)
		}
		return stdout
	}
	golden(t, "query-table.txt", run(q, "--max-rows", "5"))
	golden(t, "query-table-bigkeys.txt", run("EVALUATE BigKeys"))
	golden(t, "query.jsonl", run(q, "--format", "json"))
	golden(t, "query.csv", run(q, "--format", "csv"))
	golden(t, "query-empty.txt", run("EVALUATE FILTER(Sales, Sales[OrderID] < 0)"))

	jsonPath := filepath.Join(dir, "q.jsonl")
	if out := run(q, "--format", "json", "-o", jsonPath); out != "7 rows written to "+jsonPath+"\n" {
		t.Errorf("json -o: %q", out)
	}
	if data, _ := os.ReadFile(jsonPath); string(data) != run(q, "--format", "json") {
		t.Errorf("the JSON file differs from stdout:\n%s", data)
	}
	pq := filepath.Join(dir, "q.parquet")
	if out := run(q, "--format", "parquet", "-o", pq); !strings.HasPrefix(out, "7 rows (") || !strings.HasSuffix(out, ") written to "+pq+"\n") {
		t.Errorf("parquet -o: %q", out)
	}
	_, rows, err := sinktest.ReadParquetArrow(pq, nil)
	if err != nil || len(rows) != 7 {
		t.Errorf("parquet: %d rows, %v", len(rows), err)
	}

	for _, bad := range [][]string{{}, {q, "--format", "xml"}, {q, "-o", "x"}, {q, "--format", "parquet"}, {q, "--job", "j.yaml"}} {
		code, _, stderr := runApp(t, context.Background(), append(append([]string{"query"}, bad...), flags...)...)
		if code != exitInvalid {
			t.Errorf("query %v: exit %d, want %d\n%s", bad, code, exitInvalid, stderr)
		}
	}
}

func TestGoldenRefresh(t *testing.T) {
	t.Setenv("PBICOPY_LOG_FORMAT", "text")
	srv, _ := fakeEnv(t, fakepbi.Options{})
	flags := adhocFlags(t, srv)
	refresh := func(args ...string) (int, string, string) {
		t.Helper()
		code, stdout, stderr := runApp(t, context.Background(), append(append([]string{"refresh"}, args...), flags...)...)
		return code, normalize(stdout), normalize(stderr)
	}
	var got strings.Builder
	record := func(title string, code int, stdout, stderr string) {
		got.WriteString("$ " + title + "\n" + stdout)
		for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
			if strings.HasPrefix(l, "pbicopy: ") {
				got.WriteString(l + "\n")
			}
		}
		got.WriteString("exit " + string(rune('0'+code)) + "\n\n")
	}

	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 3})
	code, stdout, stderr := refresh("--wait")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	record("refresh --wait", code, stdout, stderr)

	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 2})
	code, stdout, stderr = refresh("--wait", "--type", "full", "--table", "Sales", "--table", "BigKeys/p1")
	record("refresh --wait --type full --table Sales --table BigKeys/p1", code, stdout, stderr)
	recs := srv.Refreshes()
	if code != exitOK || !recs[1].Enhanced || recs[1].Body != `{"type":"full","objects":[{"table":"Sales"},{"table":"BigKeys","partition":"p1"}]}` {
		t.Errorf("enhanced: exit %d, %+v", code, recs[1])
	}

	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: -1})
	code, stdout, stderr = refresh()
	record("refresh (no wait)", code, stdout, stderr)
	if code != exitOK {
		t.Errorf("no wait: exit %d", code)
	}
	code, stdout, stderr = refresh("--wait")
	record("refresh --wait, while another refresh runs", code, stdout, stderr)
	if code != exitFailed {
		t.Errorf("already running: exit %d", code)
	}
	// End the running refresh: cancel it as the service would.
	srv2, _ := fakeEnv(t, fakepbi.Options{})
	flags = adhocFlags(t, srv2)
	srv = srv2
	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 1, Outcome: fakepbi.RefreshFailed, ErrorCode: "ModelRefreshFailed_CredentialsNotSpecified", ErrorMessage: "The credentials provided for the SQL source are invalid."})
	code, stdout, stderr = refresh("--wait")
	record("refresh --wait, failing", code, stdout, stderr)
	if code != exitFailed {
		t.Errorf("failed: exit %d", code)
	}
	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: -1})
	code, stdout, stderr = refresh("--wait", "--timeout", "30ms")
	record("refresh --wait --timeout 30ms, never ending", code, stdout, stderr)
	if code != exitFailed {
		t.Errorf("timeout: exit %d", code)
	}
	golden(t, "refresh.txt", got.String())
}

func TestGoldenVersion(t *testing.T) {
	code, stdout, _ := runApp(t, context.Background(), "version")
	if code != exitOK {
		t.Fatal(code)
	}
	lines := strings.Split(stdout, "\n")
	first := regexp.MustCompile(`go1\.\d+(\.\d+)?[^ )]*`).ReplaceAllString(lines[0], "GOVERSION")
	golden(t, "version.txt", first+"\n")
}

// TestRefreshBeforeRun: a job with refreshBefore refreshes the dataset and
// waits for it before extracting; a failed refresh fails the job before any
// query runs or any file is written.
func TestRefreshBeforeRun(t *testing.T) {
	srv, dir := fakeEnv(t, fakepbi.Options{})
	p := writeJob(t, dir, "fresh", "EVALUATE Sales")
	data, _ := os.ReadFile(p)
	writeFile(t, p, strings.Replace(string(data), "    query:", "    refreshBefore: true\n    query:", 1))
	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 2})
	code, stdout, stderr := runApp(t, context.Background(), "run", p, "--log-format", "json")
	if code != exitOK || len(srv.Refreshes()) != 1 || srv.Refreshes()[0].Status != fakepbi.RefreshCompleted || srv.QueryRequests() != 1 {
		t.Fatalf("exit %d, refreshes %+v, %d queries\n%s\n%s", code, srv.Refreshes(), srv.QueryRequests(), stdout, stderr)
	}
	if !strings.Contains(stderr, `"msg":"dataset refresh completed"`) {
		t.Errorf("logs: %s", stderr)
	}
	os.Remove(filepath.Join(dir, "out", "fresh.csv"))
	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 1, Outcome: fakepbi.RefreshFailed, ErrorMessage: "Data source error: the gateway is offline."})
	code, stdout, _ = runApp(t, context.Background(), "run", p, "--log-format", "json")
	if code != exitFailed || srv.QueryRequests() != 1 || !strings.Contains(stdout, "the gateway is offline") || !strings.Contains(stdout, "nothing was extracted") {
		t.Errorf("failed refresh: exit %d, %d queries\n%s", code, srv.QueryRequests(), stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "fresh.csv")); !os.IsNotExist(err) {
		t.Errorf("a failed refresh still wrote the output: %v", err)
	}
}

// TestExitCodes runs one command per failure class.
func TestExitCodes(t *testing.T) {
	srv, dir := fakeEnv(t, fakepbi.Options{})
	good := writeJob(t, dir, "good", "EVALUATE Sales")
	daxErr := writeJob(t, dir, "dax-error", "EVALUATE Salez")
	invalid := writeFile(t, filepath.Join(dir, "invalid.yaml"), "name: invalid\n")
	flags := adhocFlags(t, srv)
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"usage: unknown command", []string{"frobnicate"}, exitInvalid},
		{"usage: unknown flag", []string{"run", "--nope", good}, exitInvalid},
		{"usage: query without a dataset", []string{"query", "EVALUATE Sales"}, exitInvalid},
		{"usage: a secret as a flag", []string{"refresh", "--client-secret", "x"}, exitInvalid},
		{"invalid job: run", []string{"run", invalid}, exitInvalid},
		{"invalid job: validate", []string{"validate", invalid}, exitInvalid},
		{"invalid job: infer", []string{"infer", invalid}, exitInvalid},
		{"runtime failure: run", []string{"run", daxErr}, exitFailed},
		{"runtime failure: query", append([]string{"query", "EVALUATE Salez"}, flags...), exitFailed},
		{"runtime failure: infer", []string{"infer", daxErr}, exitFailed},
		{"online check failure", []string{"validate", "--online", daxErr}, exitFailed},
		{"success", []string{"run", good}, exitOK},
		// Refresh failures and timeouts: TestGoldenRefresh.
	}
	for _, c := range cases {
		code, stdout, stderr := runApp(t, context.Background(), c.args...)
		if code != c.want {
			t.Errorf("%s: exit %d, want %d\nstdout %s\nstderr %s", c.name, code, c.want, stdout, stderr)
		}
	}

	// Interrupted while the service thinks, as by SIGINT (signal.NotifyContext
	// cancels the context): exit 130, nothing published, the summary says so.
	fakeEnv(t, fakepbi.Options{Latency: 5 * time.Second})
	os.RemoveAll(filepath.Join(dir, "out"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	summary := filepath.Join(dir, "interrupted.json")
	start := time.Now()
	code, stdout, stderr := runApp(t, ctx, "run", good, "--summary", summary)
	if code != exitInterrupted || time.Since(start) > 4*time.Second {
		t.Errorf("interrupted: exit %d after %s, want %d at once\nstdout %s\nstderr %s", code, time.Since(start), exitInterrupted, stdout, stderr)
	}
	data, err := os.ReadFile(summary)
	if err != nil || !strings.Contains(string(data), `"status": "interrupted"`) {
		t.Errorf("the summary of an interrupted run: %s %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "good.csv")); !os.IsNotExist(err) {
		t.Errorf("an interrupted run published its output: %v", err)
	}
}

// TestSecretsNeverShown runs every command, with debug logs, with a known
// secret in the environment, and looks for it in everything written.
func TestSecretsNeverShown(t *testing.T) {
	const secret = "s3cret-Value-7f3a9c1e-do-not-print"
	srv, dir := fakeEnv(t, fakepbi.Options{ClientSecret: secret})
	flags := adhocFlags(t, srv)
	job := writeJob(t, dir, "job", "EVALUATE Sales")
	bad := writeJob(t, dir, "bad", "EVALUATE Salez")
	summary := filepath.Join(dir, "summary.json")
	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 1})
	var all strings.Builder
	for _, args := range [][]string{
		{"run", job, bad, "-v", "--summary", summary},
		{"run", job, "-v", "--log-format", "text"},
		{"validate", job, "-v"},
		{"validate", "--online", job, bad, "-v"},
		{"infer", job, "-v"},
		append([]string{"infer", "-v", "--query", "EVALUATE Sales"}, flags...),
		append([]string{"query", "-v", "EVALUATE TOPN(3, Sales, Sales[OrderID], ASC)"}, flags...),
		append([]string{"query", "-v", "--format", "json", "EVALUATE Salez"}, flags...),
		append([]string{"refresh", "-v", "--wait"}, flags...),
		append([]string{"refresh", "-v", "--wait", "--tenant", "0bad0000-0000-4000-8000-00000000000t"}, flags[:4]...),
	} {
		_, stdout, stderr := runApp(t, context.Background(), args...)
		all.WriteString(stdout + stderr)
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	all.Write(data)
	// A wrong secret must not show either.
	t.Setenv("PBI_CLIENT_SECRET", "wrong-"+secret)
	_, stdout, stderr := runApp(t, context.Background(), append([]string{"query", "-v", "EVALUATE Sales"}, flags...)...)
	all.WriteString(stdout + stderr)
	if !strings.Contains(all.String(), "AADSTS7000215") {
		t.Errorf("the wrong secret was not refused; output:\n%s", all.String())
	}
	if strings.Contains(all.String(), secret) {
		t.Errorf("the secret appears in the output:\n%s", all.String())
	}
}

// TestEveryCommandIsDocumented: the help lists every command, and each
// command has help of its own, with examples where it takes arguments.
func TestEveryCommandIsDocumented(t *testing.T) {
	_, out, _ := runCmd(t, "--help")
	manual, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"run", "plan", "validate", "infer", "init", "query", "refresh", "demo", "schema", "version", "completion"} {
		if !strings.Contains(string(manual), "pbicopy "+c+" ") {
			t.Errorf("docs/operations.md does not show pbicopy %s", c)
		}
		if !regexp.MustCompile(`(?m)^  ` + c + ` `).MatchString(out) {
			t.Errorf("the help does not list %q:\n%s", c, out)
		}
		code, help, stderr := runCmd(t, c, "--help")
		if code != exitOK || !strings.Contains(help, "Usage:") || stderr != "" {
			t.Errorf("%s --help: exit %d\n%s\n%s", c, code, help, stderr)
		}
	}
}

// TestValidateOnlinePostgresIntegration probes PostgreSQL sinks: a table
// the role may load, one it may not, and a schema that does not exist;
// nothing is created.
func TestValidateOnlinePostgresIntegration(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, sinktest.PGDSN())
	if err != nil {
		sinktest.SkipOrFail(t, "no PostgreSQL server: %v", err)
	}
	defer conn.Close(ctx)
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	schema, role := "pbicopy_validate_"+suffix, "pbicopy_role_"+suffix
	for _, sql := range []string{
		"create schema " + schema,
		"create table " + schema + ".ok (order_id bigint)",
		"create table " + schema + ".locked (order_id bigint)",
		"create role " + role + " nologin",
		"grant usage on schema " + schema + " to " + role,
		"grant insert, delete on " + schema + ".ok to " + role,
		"grant insert on " + schema + ".locked to " + role,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "drop schema "+schema+" cascade")
		_, _ = conn.Exec(context.Background(), "drop owned by "+role)
		_, _ = conn.Exec(context.Background(), "drop role "+role)
	})
	_, dir := fakeEnv(t, fakepbi.Options{})
	t.Setenv("T_PG", sinktest.PGDSN()+" options='-c role="+role+"'")
	mapping := "mapping:\n  columns:\n    - { from: \"Sales[OrderID]\", to: order_id, type: int64 }\n  unmapped: ignore\n"
	p := writeFile(t, filepath.Join(dir, "pg.yaml"), "name: pg\n"+sourceBlock("EVALUATE Sales", nil)+mapping+`sinks:
  - postgres: { dsn: "${T_PG}", table: `+schema+`.ok, mode: replace }
  - postgres: { dsn: "${T_PG}", table: `+schema+`.locked, mode: replace }
  - postgres: { dsn: "${T_PG}", table: no_such_schema_`+suffix+`.t }
`)
	code, stdout, stderr := runApp(t, ctx, "validate", "--online", p)
	if code != exitFailed {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	got := strings.NewReplacer(schema, "SCHEMA", role, "ROLE", suffix, "X").Replace(normalize(stdout, dir))
	golden(t, "validate-online-postgres.txt", got)
	var tables int
	if err := conn.QueryRow(ctx, "select count(*) from pg_tables where schemaname = $1", schema).Scan(&tables); err != nil || tables != 2 {
		t.Errorf("validate changed the schema: %d tables, %v", tables, err)
	}
}

// TestAdhocSecretEnv: the ad-hoc commands read AZURE_CLIENT_SECRET first,
// then PBI_CLIENT_SECRET.
func TestAdhocSecretEnv(t *testing.T) {
	srv, _ := fakeEnv(t, fakepbi.Options{})
	flags := adhocFlags(t, srv)
	secret := srv.Options().ClientSecret
	for _, c := range []struct {
		azure, pbi string
		code       int
		stderr     string
	}{
		{secret, "", exitOK, ""},
		{secret, "wrong", exitOK, ""},
		{"wrong", secret, exitFailed, "AADSTS7000215"},
		{"", secret, exitOK, ""},
		{"", "", exitInvalid, "set AZURE_CLIENT_SECRET or PBI_CLIENT_SECRET"},
	} {
		t.Setenv("AZURE_CLIENT_SECRET", c.azure)
		t.Setenv("PBI_CLIENT_SECRET", c.pbi)
		code, _, stderr := runApp(t, context.Background(), append([]string{"query", "EVALUATE TOPN(1, Sales)"}, flags...)...)
		if code != c.code || !strings.Contains(stderr, c.stderr) {
			t.Errorf("AZURE_CLIENT_SECRET=%q PBI_CLIENT_SECRET=%q: exit %d, want %d\n%s", c.azure, c.pbi, code, c.code, stderr)
		}
	}
}

// TestGoldenInferArrow: infer on an executeDaxQueries job prints the
// mapping of the result's schema, from a schemaOnly request (no rows), and
// the block makes a job whose run succeeds.
func TestGoldenInferArrow(t *testing.T) {
	srv, dir := fakeEnv(t, fakepbi.Options{})
	arrow := strings.NewReplacer("    query:", "    api: executeDaxQueries\n    query:")
	p := writeFile(t, filepath.Join(dir, "job.yaml"), "name: infer-arrow\n"+sourceBlock("EVALUATE Sales", arrow)+"sinks:\n  - csv: { path: out.csv }\n")
	code, stdout, stderr := runApp(t, context.Background(), "infer", p)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	golden(t, "infer-arrow.txt", stdout)
	if q := srv.Queries(); len(q) != 1 || !q[0].SchemaOnly || q[0].API != "executeDaxQueries" || q[0].Query != "EVALUATE Sales" {
		t.Errorf("infer sent %+v", q)
	}
	// query on the Arrow job shows the model's types, and its strings
	// (dictionary-encoded by the service) as text.
	for _, format := range []string{"table", "json"} {
		code, out, stderr := runApp(t, context.Background(), "query", "--job", p, "--max-rows", "4", "--format", format, "EVALUATE TOPN(4, Sales, Sales[OrderID], ASC) ORDER BY Sales[OrderID]")
		if code != exitOK {
			t.Fatalf("query --format %s: exit %d\n%s\n%s", format, code, out, stderr)
		}
		golden(t, "query-arrow."+format, out)
	}
	jobText := "name: inferred\n" + sourceBlock("EVALUATE Sales", arrow) + stdout + "sinks:\n  - csv: { path: " + filepath.Join(dir, "inferred.csv") + " }\n"
	jp := writeFile(t, filepath.Join(dir, "inferred.yaml"), jobText)
	if code, stdout, stderr := runApp(t, context.Background(), "run", jp); code != exitOK {
		t.Fatalf("running the inferred mapping: exit %d\n%s\n%s", code, stdout, stderr)
	}
}
