package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

// testClient, when set, trusts the fake started by the current test.
var testClient *http.Client

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, httpClient: testClient}
	code = a.run(context.Background(), args)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("PBICOPY_LOG_FORMAT", "text")
	for _, c := range []struct {
		args []string
		want string // the one line of the error
		hint string // the command whose help the hint names
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`, "pbicopy"},
		{[]string{"rn"}, `unknown command "rn" (did you mean run?)`, "pbicopy"},
		{[]string{"run"}, "run needs at least one job file or folder", "pbicopy run"},
		{[]string{"validate"}, "validate needs at least one job file or folder", "pbicopy validate"},
		{[]string{"run", "--param", "novalue", "x.yaml"}, `invalid argument "novalue" for "--param" flag: "novalue": write name=value`, "pbicopy run"},
		{[]string{"run", "--parm", "a=b", "x.yaml"}, "unknown flag: --parm", "pbicopy run"},
		{[]string{"demo", "extra"}, `unknown command "extra" for "pbicopy demo"`, "pbicopy demo"},
		{[]string{"validate", "--online", "--skip-env", "x.yaml"}, "--online needs the environment that --skip-env leaves out", "pbicopy validate"},
		{[]string{"query", "-o", "out.txt", "EVALUATE Sales"}, "-o out.txt: say the format with --format", "pbicopy query"},
	} {
		code, stdout, stderr := runCmd(t, c.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != exitInvalid || stdout != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], "pbicopy: "+c.want) || lines[1] != "Run '"+c.hint+" --help' for usage." {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s", c.args, code, stdout, stderr)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{nil, {"help"}, {"--help"}, {"-h"}} {
		if code, out, stderr := runCmd(t, args...); code != exitOK || !strings.Contains(out, "Exit codes") || stderr != "" {
			t.Errorf("%v: %d %s %s", args, code, out, stderr)
		}
	}
	for _, args := range [][]string{{"run", "--help"}, {"help", "run"}, {"run", "-h"}} {
		code, out, stderr := runCmd(t, args...)
		if code != exitOK || !strings.Contains(out, "pbicopy run JOB.yaml|DIR...") || !strings.Contains(out, "--concurrency int") || !strings.Contains(out, "Examples:") || stderr != "" {
			t.Errorf("%v: exit %d\n%s\n%s", args, code, out, stderr)
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if code, out, _ := runCmd(t, args...); code != exitOK || !strings.HasPrefix(out, "pbicopy ") {
			t.Errorf("%v: %d %s", args, code, out)
		}
	}
	if code, out, _ := runCmd(t, "completion", "bash"); code != exitOK || !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash: exit %d\n%.200s", code, out)
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	dir := fakeJobs(t)
	p := writeJob(t, dir, "env", "EVALUATE Sales")
	summary := filepath.Join(dir, "summary.json")
	t.Setenv("PBICOPY_SUMMARY", summary)
	t.Setenv("PBICOPY_LOG_FORMAT", "json")
	code, _, stderr := runCmd(t, "run", p)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(summary); err != nil {
		t.Errorf("PBICOPY_SUMMARY was not used: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("PBICOPY_LOG_FORMAT=json was not used: %s", line)
		}
	}
	// A flag on the command line wins; a bad value names the variable.
	t.Setenv("PBICOPY_CONCURRENCY", "many")
	code, _, stderr = runCmd(t, "run", p, "--log-format", "text")
	if code != exitInvalid || !strings.Contains(stderr, `PBICOPY_CONCURRENCY="many"`) {
		t.Errorf("bad PBICOPY_CONCURRENCY: exit %d\n%s", code, stderr)
	}
}

// fakeJobs starts the fake Power BI, exports the variables the job files
// below reference, and returns a folder for outputs.
func fakeJobs(t *testing.T) string {
	t.Helper()
	_, dir := fakeEnv(t, fakepbi.Options{})
	return dir
}

func writeJob(t *testing.T, dir, name, query string) string {
	t.Helper()
	text := fmt.Sprintf(`name: %s
source:
  powerbi:
    workspace: ${T_WS}
    dataset: ${T_DS}
    endpoint: ${T_EP}
    query: %q
    auth: { tenant: "${T_TENANT}", clientId: "${T_CLIENT}", clientSecret: "${T_SECRET}", authorityHost: "${T_AUTH}" }
sinks:
  - csv: { path: %q }
`, name, query, filepath.Join(dir, "out", name+".csv"))
	p := filepath.Join(dir, "jobs", name+".yaml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunFolderOneJobFails(t *testing.T) {
	dir := fakeJobs(t)
	writeJob(t, dir, "a-bad", "EVALUATE NoSuchTable")
	writeJob(t, dir, "b-good", "EVALUATE Sales")
	summary := filepath.Join(dir, "summary.json")
	code, stdout, stderr := runCmd(t, "run", filepath.Join(dir, "jobs"), "--summary", summary, "--log-format", "json")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, exitFailed, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "b-good.csv")); err != nil {
		t.Errorf("the good job after the failed one did not run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "a-bad.csv")); err == nil {
		t.Error("the failed job published its output")
	}
	if !regexp.MustCompile(`(?m)^a-bad +failed `).MatchString(stdout) || !regexp.MustCompile(`(?m)^b-good +succeeded `).MatchString(stdout) || !strings.Contains(stdout, "NoSuchTable") {
		t.Errorf("summary:\n%s", stdout)
	}
	var sum struct {
		Jobs []struct {
			Job, Status, Error string
			RowsRead           int64
		}
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Jobs) != 2 || sum.Jobs[0].Status != "failed" || sum.Jobs[0].Error == "" || sum.Jobs[1].Status != "succeeded" || sum.Jobs[1].RowsRead == 0 {
		t.Errorf("summary JSON: %s", data)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
	if strings.Contains(stdout+stderr+string(data), os.Getenv("T_SECRET")) {
		t.Error("the client secret appears in the output")
	}
}

func TestRunInvalidRunsNothing(t *testing.T) {
	dir := fakeJobs(t)
	writeJob(t, dir, "good", "EVALUATE Sales")
	bad := writeJob(t, dir, "bad", "EVALUATE Sales")
	data, _ := os.ReadFile(bad)
	if err := os.WriteFile(bad, bytes.Replace(data, []byte("csv: {"), []byte("csv: { delimiter: ';',"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "run", filepath.Join(dir, "jobs"), "--log-format", "text")
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d: %s", code, exitInvalid, stderr)
	}
	if !strings.Contains(stderr, "bad.yaml:10: sinks[0].csv.delimiter: unknown field") || !strings.Contains(stderr, "nothing was run") {
		t.Errorf("stderr: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("an invalid folder still ran a job")
	}
	code, _, _ = runCmd(t, "validate", filepath.Join(dir, "jobs"))
	if code != exitInvalid {
		t.Errorf("validate: exit %d", code)
	}
	code, out, _ := runCmd(t, "validate", filepath.Join(dir, "jobs", "good.yaml"))
	if code != exitOK || !strings.Contains(out, "ok (job good)") {
		t.Errorf("validate good: %d %s", code, out)
	}
}

func TestRunParam(t *testing.T) {
	dir := fakeJobs(t)
	p := writeJob(t, dir, "param", `EVALUATE FILTER(Sales, Sales[Region] = {{ dax .region }})`)
	data, _ := os.ReadFile(p)
	data = bytes.Replace(data, []byte("param.csv"), []byte("region={{ .region }}/param.csv"), 1)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "run", p, "--param", "region=North")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	out, err := os.ReadFile(filepath.Join(dir, "out", "region=North", "param.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "South") || !strings.Contains(string(out), "North") {
		t.Errorf("the filter was not applied:\n%.300s", out)
	}
	// A value missing, or one no job takes: bad usage, nothing runs.
	code, _, stderr = runCmd(t, "run", p)
	if code != exitInvalid || !strings.Contains(stderr, "--param region=VALUE") {
		t.Errorf("missing param: exit %d, %s", code, stderr)
	}
	// In a folder, each job takes the values it uses.
	writeJob(t, dir, "other", "EVALUATE TOPN(5, Sales)")
	if code, _, stderr := runCmd(t, "run", filepath.Dir(p), "--param", "region=North"); code != exitOK {
		t.Errorf("a folder with a job that does not use the param: exit %d, %s", code, stderr)
	}
	code, _, stderr = runCmd(t, "run", p, "--param", "region=North", "--param", "regoin=South")
	if code != exitInvalid || !strings.Contains(stderr, "--param regoin: no job of this run declares or uses it") {
		t.Errorf("unused param: exit %d, %s", code, stderr)
	}

}

func TestDemo(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo")
	code, stdout, stderr := runCmd(t, "demo", "--out", out)
	if code != exitOK {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"sales.parquet", "sales.csv", "sales-arrow.parquet", "sales-arrow.csv"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if !regexp.MustCompile(`(?m)^demo-sales +succeeded +1,000 `).MatchString(stdout) || !regexp.MustCompile(`(?m)^demo-sales-arrow +succeeded +1,000 `).MatchString(stdout) ||
		!strings.Contains(stdout, "1 executeQueries and 1 executeDaxQueries request(s)") {
		t.Errorf("demo output:\n%s", stdout)
	}
	// The Arrow API wrote what the JSON API wrote.
	jsonCSV, err1 := os.ReadFile(filepath.Join(out, "sales.csv"))
	arrowCSV, err2 := os.ReadFile(filepath.Join(out, "sales-arrow.csv"))
	if err1 != nil || err2 != nil || string(jsonCSV) != string(arrowCSV) {
		t.Errorf("the two demo CSVs differ (%v, %v)", err1, err2)
	}
}
