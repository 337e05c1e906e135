package metrics

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

// pushGateway is a Pushgateway on a real HTTP server: it records every
// push and parses its grouping key and body as the Pushgateway does.
type pushGateway struct {
	*httptest.Server
	mu     sync.Mutex
	pushes []recordedPush
	status int // answer; 0 means 200
}

type recordedPush struct {
	method, path, contentType, auth string
	body                            string
	prefix                          string            // the path before /metrics/
	grouping                        map[string]string // the grouping key, job included
	series                          map[string]float64
	families                        map[string]*dto.MetricFamily
	err                             error // the grouping key or the body could not be parsed
}

func newPushGateway(t *testing.T) *pushGateway {
	g := &pushGateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p := recordedPush{method: r.Method, path: r.URL.EscapedPath(), contentType: r.Header.Get("Content-Type"), auth: r.Header.Get("Authorization"), body: string(body)}
		p.prefix, p.grouping, p.err = parseGroupingPath(p.path)
		if p.err == nil {
			p.families, p.series, p.err = parseBody(p.body)
		}
		g.mu.Lock()
		g.pushes = append(g.pushes, p)
		status := g.status
		g.mu.Unlock()
		if status != 0 {
			http.Error(w, "boom: the gateway\nis broken", status)
		}
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *pushGateway) recorded() []recordedPush {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.pushes)
}

// parseGroupingPath reads a Pushgateway push path,
// PREFIX/metrics/job/J{/label/value|/label@base64/b64value}.
func parseGroupingPath(path string) (prefix string, labels map[string]string, err error) {
	prefix, rest, ok := strings.Cut(path, "/metrics/")
	if !ok {
		return "", nil, fmt.Errorf("%s: no /metrics/", path)
	}
	parts := strings.Split(rest, "/")
	if len(parts)%2 != 0 || len(parts) < 2 || strings.TrimSuffix(parts[0], "@base64") != "job" {
		return "", nil, fmt.Errorf("%s: not job/J followed by label/value pairs", path)
	}
	labels = map[string]string{}
	for i := 0; i < len(parts); i += 2 {
		name, value := parts[i], parts[i+1]
		if n, ok := strings.CutSuffix(name, "@base64"); ok {
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "="))
			if err != nil {
				return "", nil, fmt.Errorf("%s: %s: %v", path, name, err)
			}
			name, value = n, string(b)
		} else if value, err = url.QueryUnescape(value); err != nil {
			return "", nil, fmt.Errorf("%s: %s: %v", path, name, err)
		}
		if _, dup := labels[name]; dup {
			return "", nil, fmt.Errorf("%s: %s twice", path, name)
		}
		labels[name] = value
	}
	return prefix, labels, nil
}

// parseBody parses a pushed body in the text exposition format: every
// family must be a gauge with help, no series may carry a timestamp (a
// Pushgateway refuses them). It returns the value of each series, keyed
// name{label="value",...} with the labels sorted.
func parseBody(body string) (map[string]*dto.MetricFamily, map[string]float64, error) {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	series := map[string]float64{}
	for name, f := range families {
		if f.GetType() != dto.MetricType_GAUGE || f.GetHelp() == "" {
			return nil, nil, fmt.Errorf("%s: type %s, help %q", name, f.GetType(), f.GetHelp())
		}
		for _, m := range f.GetMetric() {
			if m.TimestampMs != nil {
				return nil, nil, fmt.Errorf("%s: a timestamp", name)
			}
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
	return families, series, nil
}

func testResults() []*pipeline.JobResult {
	ok := &pipeline.JobResult{Job: "sales-daily", Status: pipeline.Succeeded, Figures: pipeline.Figures{Stats: source.Stats{Rows: 1000, Bytes: 123456, Requests: 4, Retries: 3, Throttled: 2, BackedOff: 1}},
		Duration: 2500 * time.Millisecond, Sinks: []pipeline.SinkResult{
			{Result: sink.Result{Kind: "parquet", Location: "https://acct.blob.core.windows.net/c/a.parquet?sig=SECRET", Rows: 1000, Bytes: 40000}, Status: pipeline.Succeeded},
			{Result: sink.Result{Kind: "postgres", Location: "analytics.sales", Rows: 1000}, Status: pipeline.Succeeded},
		}}
	failed := &pipeline.JobResult{Job: "stock", Status: pipeline.Failed, Error: "boom", Figures: pipeline.Figures{Stats: source.Stats{Requests: 1}}, Duration: 1500 * time.Millisecond}
	return []*pipeline.JobResult{ok, failed}
}

func TestPushMetrics(t *testing.T) {
	g := newPushGateway(t)
	now := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	results := testResults()
	if err := pushMetrics(context.Background(), g.URL, results, Options{Instance: "nightly", Client: g.Client()}, now); err != nil {
		t.Fatal(err)
	}
	pushes := g.recorded()
	if len(pushes) != 2 {
		t.Fatalf("%d pushes, want one per job", len(pushes))
	}
	nowS := float64(now.Unix())
	want := []struct {
		method string
		job    string
		series map[string]float64
		absent []string
	}{
		{http.MethodPut, "sales-daily", map[string]float64{
			"pbicopy_job_success":                                 1,
			"pbicopy_job_duration_seconds":                        2.5,
			"pbicopy_job_rows_read":                               1000,
			"pbicopy_job_bytes_read":                              123456,
			"pbicopy_job_requests":                                4,
			"pbicopy_job_retries":                                 3,
			"pbicopy_job_throttled":                               2,
			"pbicopy_job_backed_off":                              1,
			`pbicopy_sink_rows_written{kind="parquet",sink="0"}`:  1000,
			`pbicopy_sink_rows_written{kind="postgres",sink="1"}`: 1000,
			`pbicopy_sink_bytes_written{kind="parquet",sink="0"}`: 40000,
			// No bytes for the PostgreSQL sink: it writes rows.
			// It ended before the next job's 1.5 s.
			"pbicopy_job_last_run_timestamp_seconds":     nowS - 1.5,
			"pbicopy_job_last_success_timestamp_seconds": nowS - 1.5,
		}, nil},
		{http.MethodPost, "stock", map[string]float64{
			"pbicopy_job_success":                    0,
			"pbicopy_job_duration_seconds":           1.5,
			"pbicopy_job_rows_read":                  0,
			"pbicopy_job_bytes_read":                 0,
			"pbicopy_job_requests":                   1,
			"pbicopy_job_retries":                    0,
			"pbicopy_job_throttled":                  0,
			"pbicopy_job_backed_off":                 0,
			"pbicopy_job_last_run_timestamp_seconds": nowS,
		}, []string{"pbicopy_job_last_success_timestamp_seconds", "pbicopy_sink_rows_written", "pbicopy_sink_bytes_written"}},
	}
	for i, w := range want {
		p := pushes[i]
		if p.err != nil {
			t.Fatalf("push %d: %v\n%s", i, p.err, p.body)
		}
		wantKey := map[string]string{"job": "pbicopy", "pbicopy_job": w.job, "instance": "nightly"}
		if p.method != w.method || p.prefix != "" || !mapsEqual(p.grouping, wantKey) {
			t.Errorf("push %d: %s %s (grouping %v), want %s with %v", i, p.method, p.path, p.grouping, w.method, wantKey)
		}
		if mt, params, err := mime.ParseMediaType(p.contentType); err != nil || mt != "text/plain" || params["version"] != "0.0.4" {
			t.Errorf("push %d: Content-Type %q", i, p.contentType)
		}
		for k, v := range w.series {
			if got, ok := p.series[k]; !ok || got != v {
				t.Errorf("push %d: %s = %v (present %v), want %v", i, k, got, ok, v)
			}
		}
		if len(p.series) != len(w.series) {
			t.Errorf("push %d: %d series, want %d:\n%s", i, len(p.series), len(w.series), p.body)
		}
		for _, name := range w.absent {
			if _, ok := p.families[name]; ok {
				t.Errorf("push %d: %s is there", i, name)
			}
		}
		if strings.Contains(p.body, "SECRET") || strings.Contains(p.body, "analytics.sales") {
			t.Errorf("push %d: a sink location is in the metrics:\n%s", i, p.body)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestPushMetricsOnlyPostgres(t *testing.T) {
	g := newPushGateway(t)
	r := &pipeline.JobResult{Job: "load", Status: pipeline.Succeeded, Sinks: []pipeline.SinkResult{
		{Result: sink.Result{Kind: "postgres", Location: "a.b", Rows: 7, Bytes: 99}, Status: pipeline.Succeeded},
	}}
	if err := Push(context.Background(), g.URL, []*pipeline.JobResult{r}, Options{Client: g.Client()}); err != nil {
		t.Fatal(err)
	}
	p := g.recorded()[0]
	if p.err != nil {
		t.Fatal(p.err)
	}
	if _, ok := p.families["pbicopy_sink_bytes_written"]; ok {
		t.Errorf("a bytes_written family for a PostgreSQL sink:\n%s", p.body)
	}
	if p.series[`pbicopy_sink_rows_written{kind="postgres",sink="0"}`] != 7 {
		t.Errorf("rows written:\n%s", p.body)
	}
}

// TestPushMetricsWatermark: an incremental job reports its watermark
// before and after the run as numbers, and whether it advanced; a job
// without one reports none of them.
func TestPushMetricsWatermark(t *testing.T) {
	g := newPushGateway(t)
	results := []*pipeline.JobResult{
		{Job: "orders", Status: pipeline.Succeeded, Watermark: &pipeline.WatermarkResult{Old: "2024-03-01T10:00:00Z", New: "2024-03-02T08:30:00Z", Advanced: true}},
		{Job: "ids", Status: pipeline.Failed, Watermark: &pipeline.WatermarkResult{Old: "1234", New: "1234"}},
		{Job: "first", Status: pipeline.Succeeded, Watermark: &pipeline.WatermarkResult{New: "2024-03-01", Advanced: true}},
		{Job: "plain", Status: pipeline.Succeeded},
	}
	if err := Push(context.Background(), g.URL, results, Options{Client: g.Client()}); err != nil {
		t.Fatal(err)
	}
	pushes := g.recorded()
	if len(pushes) != len(results) {
		t.Fatalf("%d pushes, want %d", len(pushes), len(results))
	}
	want := []map[string]float64{
		{"pbicopy_job_watermark_previous": 1709287200, "pbicopy_job_watermark": 1709368200, "pbicopy_job_watermark_advanced": 1},
		{"pbicopy_job_watermark_previous": 1234, "pbicopy_job_watermark": 1234, "pbicopy_job_watermark_advanced": 0},
		{"pbicopy_job_watermark": 1709251200, "pbicopy_job_watermark_advanced": 1},
		{},
	}
	for i, p := range pushes {
		if p.err != nil {
			t.Fatal(p.err)
		}
		for _, name := range []string{"pbicopy_job_watermark_previous", "pbicopy_job_watermark", "pbicopy_job_watermark_advanced"} {
			v, ok := p.series[name]
			if w, want := want[i][name]; ok != want || v != w {
				t.Errorf("job %s: %s = %v (present %v), want %v (present %v)", results[i].Job, name, v, ok, w, want)
			}
		}
	}
}

func TestPushMetricsGroupingKey(t *testing.T) {
	host := DefaultInstance()
	for _, c := range []struct {
		name string
		opts Options
		want map[string]string
	}{
		{"defaults", Options{}, map[string]string{"instance": host}},
		{"instance", Options{Instance: "cron-a"}, map[string]string{"instance": "cron-a"}},
		{"shard", Options{Shard: pipeline.Shard{I: 2, N: 4}}, map[string]string{"instance": host, "shard": "2-of-4"}},
		{"both", Options{Instance: "backfill", Shard: pipeline.Shard{I: 0, N: 1}}, map[string]string{"instance": "backfill", "shard": "0-of-1"}},
		{"odd values", Options{Instance: "host/1 a;b"}, map[string]string{"instance": "host/1 a;b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newPushGateway(t)
			c.opts.Client = g.Client()
			results := []*pipeline.JobResult{{Job: "sales/eu", Status: pipeline.Succeeded}}
			if err := Push(context.Background(), g.URL+"/prefix/", results, c.opts); err != nil {
				t.Fatal(err)
			}
			p := g.recorded()[0]
			if p.err != nil {
				t.Fatal(p.err)
			}
			c.want["job"], c.want["pbicopy_job"] = "pbicopy", "sales/eu"
			if p.prefix != "/prefix" || !mapsEqual(p.grouping, c.want) {
				t.Errorf("path %s: prefix %q grouping %v, want /prefix and %v", p.path, p.prefix, p.grouping, c.want)
			}
		})
	}
}

// TestPushMetricsShardsKeepTheirGroups pushes the same job from four
// shards and from two instances: each lands in a group of its own.
func TestPushMetricsShardsKeepTheirGroups(t *testing.T) {
	g := newPushGateway(t)
	results := []*pipeline.JobResult{{Job: "backfill", Status: pipeline.Succeeded}}
	for i := range 4 {
		if err := Push(context.Background(), g.URL, results, Options{Instance: "k8s", Shard: pipeline.Shard{I: i, N: 4}, Client: g.Client()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, inst := range []string{"cron-a", "cron-b"} {
		if err := Push(context.Background(), g.URL, results, Options{Instance: inst, Client: g.Client()}); err != nil {
			t.Fatal(err)
		}
	}
	groups := map[string]bool{}
	for _, p := range g.recorded() {
		groups[fmt.Sprint(p.grouping)] = true
	}
	if len(groups) != 6 {
		t.Errorf("%d distinct groups for 6 pushes: %v", len(groups), groups)
	}
}

func TestPushMetricsCredentials(t *testing.T) {
	g := newPushGateway(t)
	gw := strings.Replace(g.URL, "http://", "http://pusher:s3cret@", 1)
	results := []*pipeline.JobResult{{Job: "a", Status: pipeline.Succeeded}}
	if err := Push(context.Background(), gw, results, Options{Client: g.Client()}); err != nil {
		t.Fatal(err)
	}
	p := g.recorded()[0]
	if p.auth != "Basic "+base64.StdEncoding.EncodeToString([]byte("pusher:s3cret")) {
		t.Errorf("Authorization %q: the URL's credentials were not used", p.auth)
	}
	if strings.Contains(p.body, "s3cret") || strings.Contains(p.path, "s3cret") {
		t.Errorf("the password is in the push: %s\n%s", p.path, p.body)
	}
}

func TestPushMetricsFailingGateway(t *testing.T) {
	g := newPushGateway(t)
	g.status = http.StatusInternalServerError
	gw := strings.Replace(g.URL, "http://", "http://pusher:s3cret@", 1)
	err := Push(context.Background(), gw, testResults(), Options{Instance: "i", Client: g.Client()})
	if err == nil {
		t.Fatal("no error from a gateway answering 500")
	}
	msg := err.Error()
	for _, want := range []string{"job sales-daily: push to " + g.URL + "/metrics/job/pbicopy/", "job stock", "500 Internal Server Error", "boom: the gateway is broken"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "s3cret") || strings.Contains(msg, "pusher") {
		t.Errorf("the error shows the credentials:\n%s", msg)
	}
	if n := len(g.recorded()); n != 2 {
		t.Errorf("%d pushes: a failed push stopped the next job's", n)
	}

	g.Close()
	err = Push(context.Background(), gw, testResults()[:1], Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "pusher") || !strings.Contains(err.Error(), g.URL) {
		t.Errorf("unreachable gateway: %v", err)
	}
}

func TestPushMetricsContext(t *testing.T) {
	g := newPushGateway(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Push(ctx, g.URL, testResults(), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestCheckPushURL(t *testing.T) {
	for _, ok := range []string{"http://gw:9091", "https://user:pw@gw.example/push/"} {
		if err := CheckPushURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "gw:9091", "ftp://gw", "http://", "http://gw:9091/?x=1", "http://u:topsecret@gw/#f", "http://gw:bad port"} {
		err := CheckPushURL(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%q: the error shows the password: %v", bad, err)
		}
	}
}

func TestJobMetricsEscaping(t *testing.T) {
	g := newPushGateway(t)
	r := &pipeline.JobResult{Job: "x", Status: pipeline.Succeeded, Sinks: []pipeline.SinkResult{{Result: sink.Result{Kind: "we\"ird\\\nkind", Rows: 1}}}}
	if err := pushMetrics(context.Background(), g.URL, []*pipeline.JobResult{r}, Options{Client: g.Client()}, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	p := g.recorded()[0]
	if p.err != nil {
		t.Fatal(p.err)
	}
	if v, ok := p.series[fmt.Sprintf("pbicopy_sink_rows_written{kind=%q,sink=%q}", "we\"ird\\\nkind", "0")]; !ok || v != 1 {
		t.Errorf("the label value did not survive escaping: %v", p.series)
	}
	if p.series["pbicopy_job_last_run_timestamp_seconds"] != 1700000000 {
		t.Errorf("timestamp: %v", p.series["pbicopy_job_last_run_timestamp_seconds"])
	}
}
