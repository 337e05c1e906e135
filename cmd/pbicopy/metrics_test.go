package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

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

type gatewayPush struct {
	method, path, contentType, auth, body string
	grouping                              map[string]string
	series                                map[string]float64
}

func newFakeGateway(t *testing.T, status int) *fakeGateway {
	t.Helper()
	g := &fakeGateway{status: status}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p := gatewayPush{method: r.Method, path: r.URL.EscapedPath(), contentType: r.Header.Get("Content-Type"), auth: r.Header.Get("Authorization"), body: string(body)}
		var err error
		if p.grouping, err = pushGrouping(p.path); err == nil {
			p.series, err = pushedSeries(p.body)
		}
		if err != nil {
			t.Errorf("push %s %s: %v\n%s", r.Method, p.path, err, body)
		}
		g.mu.Lock()
		g.pushes = append(g.pushes, p)
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

// pushGrouping reads the grouping key of a push path,
// /metrics/job/J/label/value..., as the Pushgateway does.
func pushGrouping(path string) (map[string]string, error) {
	rest, ok := strings.CutPrefix(path, "/metrics/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts)%2 != 0 {
		return nil, fmt.Errorf("%s is not /metrics/job/J/label/value...", path)
	}
	key := map[string]string{}
	for i := 0; i < len(parts); i += 2 {
		name, value := parts[i], parts[i+1]
		var err error
		if n, b64 := strings.CutSuffix(name, "@base64"); b64 {
			var b []byte
			b, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "="))
			name, value = n, string(b)
		} else {
			value, err = url.QueryUnescape(value)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", path, name, err)
		}
		key[name] = value
	}
	return key, nil
}

// pushedSeries parses a pushed body with the Prometheus text parser: the
// value of each series, keyed name{label="value",...}, labels sorted.
func pushedSeries(body string) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	series := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			series[key] = m.GetGauge().GetValue()
		}
	}
	return series, nil
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
	host, _ := os.Hostname()
	for i, want := range []struct {
		method, job string
		success     float64
	}{
		// A failed job's push leaves its last success timestamp alone.
		{http.MethodPost, "a-bad", 0},
		{http.MethodPut, "b-good", 1},
	} {
		p := pushes[i]
		key := map[string]string{"job": "pbicopy", "pbicopy_job": want.job, "instance": host}
		if p.method != want.method || !maps.Equal(p.grouping, key) {
			t.Errorf("push %d: %s %s, want %s with grouping %v", i, p.method, p.path, want.method, key)
		}
		if !strings.HasPrefix(p.contentType, "text/plain; version=0.0.4") {
			t.Errorf("push %d: Content-Type %q", i, p.contentType)
		}
		if v, ok := p.series["pbicopy_job_success"]; !ok || v != want.success {
			t.Errorf("push %d: pbicopy_job_success %v (present %v), want %v", i, v, ok, want.success)
		}
		if _, ok := p.series["pbicopy_job_last_success_timestamp_seconds"]; ok != (want.success == 1) {
			t.Errorf("push %d: last success timestamp present %v", i, ok)
		}
	}
	good := pushes[1].series
	if good[`pbicopy_sink_rows_written{kind="csv",sink="0"}`] != 1000 || good[`pbicopy_sink_bytes_written{kind="csv",sink="0"}`] == 0 {
		t.Errorf("the good job's sink figures are missing:\n%s", pushes[1].body)
	}
	if strings.Contains(pushes[1].body, dir) {
		t.Errorf("a sink location is in the metrics:\n%s", pushes[1].body)
	}
	if strings.Contains(stderr, "push metrics") {
		t.Errorf("a push error was reported: %s", stderr)
	}
}

// TestRunMetricsGroupingPerShard runs the shards of a backfill as two
// CronJob pods would: each pushes a group of its own.
func TestRunMetricsGroupingPerShard(t *testing.T) {
	dir := fakeJobs(t)
	job := writeFile(t, filepath.Join(dir, "daily.yaml"), `name: daily
params:
  day: { type: date }
partition: { param: day, step: 1d }
`+sourceBlock("EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }})", nil)+`mapping:
  columns:
    - { from: "Sales[OrderID]", to: order_id, type: int64 }
    - { from: "Sales[Amount]", to: amount, type: "decimal(19,4)" }
  unmapped: ignore
sinks:
  - csv: { path: "`+filepath.Join(dir, "out")+`/day={{ .day }}.csv" }
`)
	gw := newFakeGateway(t, 0)
	for i := range 2 {
		code, _, stderr := runCmd(t, "run", job, "--from", "2024-01-01", "--to", "2024-01-04",
			"--shard", fmt.Sprintf("%d/2", i), "--metrics-push", gw.URL, "--metrics-instance", "backfill")
		if code != exitOK {
			t.Fatalf("shard %d: exit %d: %s", i, code, stderr)
		}
	}
	code, _, stderr := runCmd(t, "run", job, "--param", "day=2024-01-05", "--metrics-push", gw.URL+"/", "--metrics-instance", "nightly")
	if code != exitOK {
		t.Fatalf("unsharded: exit %d: %s", code, stderr)
	}
	pushes := gw.recorded()
	want := []map[string]string{
		{"job": "pbicopy", "pbicopy_job": "daily", "instance": "backfill", "shard": "0-of-2"},
		{"job": "pbicopy", "pbicopy_job": "daily", "instance": "backfill", "shard": "1-of-2"},
		{"job": "pbicopy", "pbicopy_job": "daily", "instance": "nightly"},
	}
	if len(pushes) != len(want) {
		t.Fatalf("%d pushes, want %d", len(pushes), len(want))
	}
	for i, w := range want {
		if !maps.Equal(pushes[i].grouping, w) {
			t.Errorf("push %d: %s, want grouping %v", i, pushes[i].path, w)
		}
		if got := pushes[i].series["pbicopy_job_success"]; got != 1 {
			t.Errorf("push %d: success %v", i, got)
		}
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

// jsonRecords parses stderr as JSON lines: every line must be a record.
func jsonRecords(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a line of stderr is not a JSON record: %q (%v)", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestRunMetricsPushOptionalOrRequired: a Pushgateway that fails (answers
// 503, or is not there) fails the run unless --metrics-push-optional makes
// it a warning; either way, with JSON logs, it is one JSON record that does
// not show the gateway's password, and the job's output is published.
func TestRunMetricsPushOptionalOrRequired(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	for _, gwCase := range []struct {
		name string
		url  func(t *testing.T) string
		want string
	}{
		{"503", func(t *testing.T) string { return newFakeGateway(t, http.StatusServiceUnavailable).URL }, "503 Service Unavailable: gateway on fire"},
		{"unreachable", func(t *testing.T) string { return downURL }, "connection refused"},
	} {
		for _, optional := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s optional=%v", gwCase.name, optional), func(t *testing.T) {
				dir := fakeJobs(t)
				writeJob(t, dir, "good", "EVALUATE Sales")
				gw := gwCase.url(t)
				withUser := strings.Replace(gw, "http://", "http://pusher:pa55word@", 1)
				args := []string{"run", filepath.Join(dir, "jobs"), "--metrics-push", withUser, "--log-format", "json"}
				if optional {
					args = append(args, "--metrics-push-optional")
				}
				code, stdout, stderr := runCmd(t, args...)
				wantCode := exitFailed
				if optional {
					wantCode = exitOK
				}
				if code != wantCode {
					t.Fatalf("exit %d, want %d\nstderr %s", code, wantCode, stderr)
				}
				if strings.Contains(stderr, "pa55word") || strings.Contains(stdout, "pa55word") {
					t.Errorf("the gateway's password is shown:\n%s", stderr)
				}
				if _, err := os.Stat(filepath.Join(dir, "out", "good.csv")); err != nil {
					t.Errorf("the job's output: %v", err)
				}
				var found []map[string]any
				for _, rec := range jsonRecords(t, stderr) {
					if e, _ := rec["error"].(string); strings.Contains(e, "push") {
						found = append(found, rec)
					}
				}
				if len(found) != 1 {
					t.Fatalf("%d records of the failed push, want 1:\n%s", len(found), stderr)
				}
				rec := found[0]
				msg := rec["error"].(string)
				wantLevel := "ERROR"
				if optional {
					wantLevel = "WARN"
				}
				if rec["level"] != wantLevel || !strings.Contains(msg, gw+"/metrics/job/pbicopy/") || !strings.Contains(msg, gwCase.want) || strings.Contains(msg, "\n") {
					t.Errorf("the push failure record: %v", rec)
				}
			})
		}
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
