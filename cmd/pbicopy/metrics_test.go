package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pbicopy/pbicopy/jobfile"
)

// fakeGateway is a Pushgateway that records every push and answers status
// (0 means 200).
type fakeGateway struct {
	*httptest.Server
	mu     sync.Mutex
	pushes []gatewayPush
	status int
}

type gatewayPush struct{ method, path, contentType, body string }

func newFakeGateway(t *testing.T, status int) *fakeGateway {
	t.Helper()
	g := &fakeGateway{status: status}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.pushes = append(g.pushes, gatewayPush{r.Method, r.URL.Path, r.Header.Get("Content-Type"), string(body)})
		g.mu.Unlock()
		if g.status != 0 {
			http.Error(w, "gateway on fire", g.status)
		}
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *fakeGateway) recorded() []gatewayPush {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]gatewayPush(nil), g.pushes...)
}

func TestRunMetricsPush(t *testing.T) {
	dir := fakeJobs(t)
	writeJob(t, dir, "a-bad", "EVALUATE NoSuchTable")
	writeJob(t, dir, "b-good", "EVALUATE Sales")
	gw := newFakeGateway(t, 0)
	code, stdout, stderr := runCmd(t, "run", filepath.Join(dir, "jobs"), "--metrics-push", gw.URL, "--log-format", "json")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d (a job failed)\nstdout %s\nstderr %s", code, exitFailed, stdout, stderr)
	}
	pushes := gw.recorded()
	if len(pushes) != 2 {
		t.Fatalf("%d pushes, want one per job: %+v", len(pushes), pushes)
	}
	for i, want := range []struct{ method, path, success string }{
		// A failed job's push leaves its last success timestamp alone.
		{http.MethodPost, "/metrics/job/pbicopy/pbicopy_job/a-bad", "pbicopy_job_success 0\n"},
		{http.MethodPut, "/metrics/job/pbicopy/pbicopy_job/b-good", "pbicopy_job_success 1\n"},
	} {
		p := pushes[i]
		if p.method != want.method || p.path != want.path {
			t.Errorf("push %d: %s %s, want %s %s", i, p.method, p.path, want.method, want.path)
		}
		if !strings.HasPrefix(p.contentType, "text/plain; version=0.0.4") {
			t.Errorf("push %d: Content-Type %q", i, p.contentType)
		}
		if !strings.Contains(p.body, want.success) || !strings.Contains(p.body, "# TYPE pbicopy_job_rows_read gauge\n") {
			t.Errorf("push %d: body\n%s", i, p.body)
		}
	}
	if !strings.Contains(pushes[1].body, `pbicopy_sink_rows_written{sink="0",kind="csv"} 1000`) {
		t.Errorf("the good job's sink figures are missing:\n%s", pushes[1].body)
	}
	if strings.Contains(pushes[1].body, dir) {
		t.Errorf("a sink location is in the metrics:\n%s", pushes[1].body)
	}
	if strings.Contains(stderr, "push metrics") {
		t.Errorf("a push error was reported: %s", stderr)
	}
}

func TestRunMetricsPushFailureKeepsTheSummary(t *testing.T) {
	dir := fakeJobs(t)
	writeJob(t, dir, "good", "EVALUATE Sales")
	gw := newFakeGateway(t, http.StatusInternalServerError)
	summary := filepath.Join(dir, "summary.json")
	code, stdout, stderr := runCmd(t, "run", filepath.Join(dir, "jobs"), "--metrics-push", gw.URL, "--summary", summary, "--log-format", "json")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d: the jobs succeeded but the push failed\nstderr %s", code, exitFailed, stderr)
	}
	if !strings.Contains(stderr, `"error":"push metrics: `) || !strings.Contains(stderr, "500") || !strings.Contains(stderr, gw.URL) {
		t.Errorf("stderr does not report the failed push:\n%s", stderr)
	}
	if !strings.Contains(stdout, "good") {
		t.Errorf("the summary table is missing:\n%s", stdout)
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatalf("the summary file is missing: %v", err)
	}
	if !json.Valid(data) || !bytes.Contains(data, []byte(`"good"`)) {
		t.Errorf("summary: %s", data)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "good.csv")); err != nil {
		t.Errorf("the job's output: %v", err)
	}
}

func TestRunMetricsPushBadURL(t *testing.T) {
	dir := fakeJobs(t)
	writeJob(t, dir, "good", "EVALUATE Sales")
	for _, u := range []string{"pushgateway:9091", "ftp://gw", "http://user:topsecret@gw/?x=1"} {
		code, _, stderr := runCmd(t, "run", filepath.Join(dir, "jobs"), "--metrics-push", u)
		if code != exitInvalid || !strings.Contains(stderr, "--metrics-push") || strings.Contains(stderr, "topsecret") {
			t.Errorf("%s: exit %d, stderr %s", u, code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a job ran despite a bad --metrics-push")
	}
}

func TestSchemaCommand(t *testing.T) {
	code, stdout, stderr := runCmd(t, "schema")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want, err := jobfile.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Error("pbicopy schema does not print jobfile.JSONSchema")
	}
	if code, _, _ := runCmd(t, "schema", "extra"); code != exitInvalid {
		t.Errorf("schema with an argument: exit %d", code)
	}
	if _, out, _ := runCmd(t, "help"); !strings.Contains(out, "\n  schema ") {
		t.Errorf("the usage does not list the schema command:\n%s", out)
	}
}
