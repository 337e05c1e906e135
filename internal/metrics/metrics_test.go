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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// parseExposition parses body as the Prometheus text exposition format
// 0.0.4, more strictly than a Pushgateway: every family has its HELP and
// TYPE lines before its samples and its samples together; names and label
// names are valid, label values correctly quoted and escaped, values
// floats; no timestamps (a Pushgateway refuses them), no labels of the
// grouping key, no duplicate series, no blank lines, and a final newline.
// It returns the value of each series, keyed name{label="value",...} with
// the labels sorted, and the HELP text of each family.
func parseExposition(body string) (series map[string]float64, help map[string]string, err error) {
	if body == "" || !strings.HasSuffix(body, "\n") {
		return nil, nil, errors.New("the body does not end with a newline")
	}
	series, help = map[string]float64{}, map[string]string{}
	types := map[string]string{}
	closed := map[string]bool{}  // families whose lines are over
	sampled := map[string]bool{} // families with samples
	current := ""
	for n, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", n+1, line, fmt.Sprintf(format, args...))
		}
		// switchTo moves on to the lines of family name, which must not
		// have had lines before the current family's.
		switchTo := func(name string) error {
			if name == current {
				return nil
			}
			if current != "" {
				closed[current] = true
			}
			if closed[name] {
				return fail("the lines of %s are not together", name)
			}
			current = name
			return nil
		}
		if line == "" {
			return nil, nil, fail("blank line")
		}
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			kw, rest, _ := strings.Cut(rest, " ")
			name, text, _ := strings.Cut(rest, " ")
			if !metricNameRE.MatchString(name) {
				return nil, nil, fail("bad metric name %q", name)
			}
			if err := switchTo(name); err != nil {
				return nil, nil, err
			}
			if sampled[name] {
				return nil, nil, fail("%s after the samples of %s", kw, name)
			}
			switch kw {
			case "HELP":
				if _, dup := help[name]; dup {
					return nil, nil, fail("second HELP")
				}
				if _, typed := types[name]; typed {
					return nil, nil, fail("HELP after TYPE")
				}
				h, err := unescapeExposition(text, false)
				if err != nil {
					return nil, nil, fail("%v", err)
				}
				help[name] = h
			case "TYPE":
				if _, dup := types[name]; dup {
					return nil, nil, fail("second TYPE")
				}
				if !slices.Contains([]string{"counter", "gauge", "histogram", "summary", "untyped"}, text) {
					return nil, nil, fail("bad type %q", text)
				}
				types[name] = text
			default:
				return nil, nil, fail("a comment that is neither HELP nor TYPE")
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			return nil, nil, fail("a comment that is neither HELP nor TYPE")
		}
		name, labels, value, err := parseSample(line)
		if err != nil {
			return nil, nil, fail("%v", err)
		}
		if err := switchTo(name); err != nil {
			return nil, nil, err
		}
		if _, ok := help[name]; !ok {
			return nil, nil, fail("no HELP line before the samples of %s", name)
		}
		if _, ok := types[name]; !ok {
			return nil, nil, fail("no TYPE line before the samples of %s", name)
		}
		sampled[name] = true
		key := name
		if len(labels) > 0 {
			slices.Sort(labels)
			key += "{" + strings.Join(labels, ",") + "}"
		}
		if _, dup := series[key]; dup {
			return nil, nil, fail("duplicate series %s", key)
		}
		series[key] = value
	}
	return series, help, nil
}

// parseSample parses name{a="x",b="y"} value; labels come back as a="x"
// with the value unescaped and requoted with %q.
func parseSample(line string) (name string, labels []string, value float64, err error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", nil, 0, errors.New("no value")
	}
	name, rest := line[:i], line[i:]
	if !metricNameRE.MatchString(name) {
		return "", nil, 0, fmt.Errorf("bad metric name %q", name)
	}
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		seen := map[string]bool{}
		for !strings.HasPrefix(rest, "}") {
			ln, after, ok := strings.Cut(rest, `="`)
			if !ok {
				return "", nil, 0, errors.New(`a label without ="`)
			}
			if !labelNameRE.MatchString(ln) || strings.HasPrefix(ln, "__") {
				return "", nil, 0, fmt.Errorf("bad label name %q", ln)
			}
			if ln == "job" || ln == "instance" || ln == "pbicopy_job" {
				return "", nil, 0, fmt.Errorf("label %s belongs to the grouping key", ln)
			}
			if seen[ln] {
				return "", nil, 0, fmt.Errorf("label %s given twice", ln)
			}
			seen[ln] = true
			end := -1
			for j := 0; j < len(after); j++ {
				if after[j] == '\\' {
					j++
					continue
				}
				if after[j] == '"' {
					end = j
					break
				}
			}
			if end < 0 {
				return "", nil, 0, errors.New("unterminated label value")
			}
			v, err := unescapeExposition(after[:end], true)
			if err != nil {
				return "", nil, 0, err
			}
			labels = append(labels, fmt.Sprintf("%s=%q", ln, v))
			rest = after[end+1:]
			if r, ok := strings.CutPrefix(rest, ","); ok && !strings.HasPrefix(r, "}") {
				rest = r
			} else if !strings.HasPrefix(rest, "}") {
				return "", nil, 0, errors.New("expected , or } after a label")
			}
		}
		rest = rest[1:]
	}
	v, ok := strings.CutPrefix(rest, " ")
	if !ok || v == "" {
		return "", nil, 0, errors.New("expected a space and a value")
	}
	if strings.Contains(v, " ") {
		return "", nil, 0, errors.New("a timestamp or trailing text after the value")
	}
	switch v {
	case "NaN", "+Inf", "-Inf":
	default:
		if _, err := strconv.ParseFloat(v, 64); err != nil || strings.ContainsAny(v, "_xXpP") {
			return "", nil, 0, fmt.Errorf("value %q is not a float", v)
		}
	}
	value, _ = strconv.ParseFloat(v, 64)
	return name, labels, value, nil
}

// unescapeExposition undoes the escapes of HELP text (\\ and \n) and label values
// (also \"), refusing any other.
func unescapeExposition(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || label && c == '"' {
			return "", fmt.Errorf("unescaped %q", c)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch {
		case i == len(s):
			return "", errors.New("a lone backslash at the end")
		case s[i] == '\\':
			b.WriteByte('\\')
		case s[i] == 'n':
			b.WriteByte('\n')
		case s[i] == '"' && label:
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

func TestParseExpositionIsStrict(t *testing.T) {
	const ok = "# HELP a_b A help.\n# TYPE a_b gauge\na_b{x=\"1\",y=\"q\\\"\\\\\\n\"} 1.5\na_b{x=\"2\"} 3\n# HELP c C.\n# TYPE c gauge\nc NaN\n"
	series, _, err := parseExposition(ok)
	if err != nil {
		t.Fatal(err)
	}
	if series[`a_b{x="1",y="q\"\\\n"}`] != 1.5 || series[`a_b{x="2"}`] != 3 || len(series) != 3 {
		t.Errorf("series: %v", series)
	}
	for name, body := range map[string]string{
		"no final newline":     "# HELP a A.\n# TYPE a gauge\na 1",
		"no HELP":              "# TYPE a gauge\na 1\n",
		"no TYPE":              "# HELP a A.\na 1\n",
		"TYPE after samples":   "# HELP a A.\na 1\n# TYPE a gauge\n",
		"split family":         "# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\n# HELP b B.\n# TYPE b gauge\nb 1\na{x=\"2\"} 1\n",
		"duplicate series":     "# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
		"bad metric name":      "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n",
		"bad label name":       "# HELP a A.\n# TYPE a gauge\na{x-y=\"1\"} 1\n",
		"bad value":            "# HELP a A.\n# TYPE a gauge\na one\n",
		"timestamp":            "# HELP a A.\n# TYPE a gauge\na 1 1700000000000\n",
		"bad escape":           "# HELP a A.\n# TYPE a gauge\na{x=\"\\t\"} 1\n",
		"unterminated value":   "# HELP a A.\n# TYPE a gauge\na{x=\"1} 1\n",
		"grouping label":       "# HELP a A.\n# TYPE a gauge\na{job=\"x\"} 1\n",
		"blank line":           "# HELP a A.\n# TYPE a gauge\n\na 1\n",
		"other comment":        "# HELP a A.\n# TYPE a gauge\n# hello\na 1\n",
		"bad type":             "# HELP a A.\n# TYPE a meter\na 1\n",
		"label given twice":    "# HELP a A.\n# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",
		"second HELP":          "# HELP a A.\n# HELP a A.\n# TYPE a gauge\na 1\n",
		"missing value":        "# HELP a A.\n# TYPE a gauge\na{x=\"1\"}\n",
		"value with separator": "# HELP a A.\n# TYPE a gauge\na 1_000\n",
	} {
		if _, _, err := parseExposition(body); err == nil {
			t.Errorf("%s: accepted:\n%s", name, body)
		}
	}
}

// pushGateway is a fake Pushgateway that records every push.
type pushGateway struct {
	*httptest.Server
	mu     sync.Mutex
	pushes []recordedPush
	status int // answer; 0 means 200
}

type recordedPush struct {
	method, path, contentType, auth string
	body                            string
}

func newPushGateway(t *testing.T) *pushGateway {
	g := &pushGateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.pushes = append(g.pushes, recordedPush{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), string(body)})
		status := g.status
		g.mu.Unlock()
		if status != 0 {
			http.Error(w, "boom: the gateway is broken", status)
		}
	}))
	t.Cleanup(g.Close)
	return g
}

func testResults() []*pipeline.JobResult {
	ok := &pipeline.JobResult{Job: "sales-daily", Status: pipeline.Succeeded, Figures: pipeline.Figures{Stats: source.Stats{Rows: 1000, Bytes: 123456, Requests: 3, Retries: 1, Throttled: 2}},
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
	if err := pushMetrics(context.Background(), g.Client(), g.URL, results, "", now); err != nil {
		t.Fatal(err)
	}
	if len(g.pushes) != 2 {
		t.Fatalf("%d pushes, want one per job", len(g.pushes))
	}
	nowS := float64(now.Unix())
	want := []struct {
		method, path string
		series       map[string]float64
		absent       []string
	}{
		{http.MethodPut, "/metrics/job/pbicopy/pbicopy_job/sales-daily", map[string]float64{
			"pbicopy_job_success":                                  1,
			"pbicopy_job_duration_seconds":                         2.5,
			"pbicopy_job_rows_read":                                1000,
			"pbicopy_job_bytes_read":                               123456,
			"pbicopy_job_requests":                                 3,
			"pbicopy_job_retries":                                  1,
			"pbicopy_job_throttled":                                2,
			`pbicopy_sink_rows_written{kind="parquet",sink="0"}`:   1000,
			`pbicopy_sink_rows_written{kind="postgres",sink="1"}`:  1000,
			`pbicopy_sink_bytes_written{kind="parquet",sink="0"}`:  40000,
			`pbicopy_sink_bytes_written{kind="postgres",sink="1"}`: 0,
			// It ended before the next job's 1.5 s.
			"pbicopy_job_last_run_timestamp_seconds":     nowS - 1.5,
			"pbicopy_job_last_success_timestamp_seconds": nowS - 1.5,
		}, nil},
		{http.MethodPost, "/metrics/job/pbicopy/pbicopy_job/stock", map[string]float64{
			"pbicopy_job_success":                    0,
			"pbicopy_job_duration_seconds":           1.5,
			"pbicopy_job_rows_read":                  0,
			"pbicopy_job_bytes_read":                 0,
			"pbicopy_job_requests":                   1,
			"pbicopy_job_retries":                    0,
			"pbicopy_job_throttled":                  0,
			"pbicopy_job_last_run_timestamp_seconds": nowS,
		}, []string{"pbicopy_job_last_success_timestamp_seconds", "pbicopy_sink_rows_written"}},
	}
	for i, w := range want {
		p := g.pushes[i]
		if p.method != w.method || p.path != w.path {
			t.Errorf("push %d: %s %s, want %s %s", i, p.method, p.path, w.method, w.path)
		}
		if mt, params, err := mime.ParseMediaType(p.contentType); err != nil || mt != "text/plain" || params["version"] != "0.0.4" {
			t.Errorf("push %d: Content-Type %q", i, p.contentType)
		}
		series, help, err := parseExposition(p.body)
		if err != nil {
			t.Fatalf("push %d: %v\n%s", i, err, p.body)
		}
		for k, v := range w.series {
			if got, ok := series[k]; !ok || got != v {
				t.Errorf("push %d: %s = %v (present %v), want %v", i, k, got, ok, v)
			}
		}
		if len(series) != len(w.series) {
			t.Errorf("push %d: %d series, want %d:\n%s", i, len(series), len(w.series), p.body)
		}
		for _, name := range w.absent {
			if _, ok := help[name]; ok {
				t.Errorf("push %d: %s is there", i, name)
			}
		}
		if strings.Contains(p.body, "SECRET") || strings.Contains(p.body, "analytics.sales") {
			t.Errorf("push %d: a sink location is in the metrics:\n%s", i, p.body)
		}
	}
}

func TestPushMetricsGroupingKeyAndCredentials(t *testing.T) {
	g := newPushGateway(t)
	gw := strings.Replace(g.URL, "http://", "http://pusher:s3cret@", 1) + "/prefix/"
	results := []*pipeline.JobResult{{Job: "a", Status: pipeline.Succeeded}}
	if err := pushMetrics(context.Background(), g.Client(), gw, results, "host/1 a", time.Now()); err != nil {
		t.Fatal(err)
	}
	p := g.pushes[0]
	want := "/prefix/metrics/job/pbicopy/pbicopy_job/a/instance@base64/" + base64.RawURLEncoding.EncodeToString([]byte("host/1 a"))
	if p.path != want {
		t.Errorf("path %s, want %s", p.path, want)
	}
	if p.auth != "Basic "+base64.StdEncoding.EncodeToString([]byte("pusher:s3cret")) {
		t.Errorf("Authorization %q: the URL's credentials were not used", p.auth)
	}
	for value, want := range map[string]string{
		"sales":   "pbicopy_job/sales",
		"a b;c":   "pbicopy_job/a%20b%3Bc",
		"":        "pbicopy_job@base64/=",
		"x/y":     "pbicopy_job@base64/eC95",
		"..":      "pbicopy_job@base64/Li4",
		"ünïcode": "pbicopy_job/%C3%BCn%C3%AFcode",
	} {
		if got := groupingPair("pbicopy_job", value); got != want {
			t.Errorf("groupingPair(%q) = %s, want %s", value, got, want)
		}
	}
}

func TestPushMetricsFailingGateway(t *testing.T) {
	g := newPushGateway(t)
	g.status = http.StatusInternalServerError
	gw := strings.Replace(g.URL, "http://", "http://pusher:s3cret@", 1)
	err := pushMetrics(context.Background(), g.Client(), gw, testResults(), "", time.Now())
	if err == nil {
		t.Fatal("no error from a gateway answering 500")
	}
	msg := err.Error()
	for _, want := range []string{"job sales-daily", "job stock", "500 Internal Server Error", g.URL, "boom: the gateway is broken"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "s3cret") || strings.Contains(msg, "pusher") {
		t.Errorf("the error shows the credentials:\n%s", msg)
	}
	if len(g.pushes) != 2 {
		t.Errorf("%d pushes: a failed push stopped the next job's", len(g.pushes))
	}

	g.Close()
	err = pushMetrics(context.Background(), nil, gw, testResults()[:1], "", time.Now())
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "pusher") || !strings.Contains(err.Error(), g.URL) {
		t.Errorf("unreachable gateway: %v", err)
	}
}

func TestPushMetricsContext(t *testing.T) {
	g := newPushGateway(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Push(ctx, nil, g.URL, testResults(), "")
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
	r := &pipeline.JobResult{Job: "x", Status: pipeline.Succeeded, Sinks: []pipeline.SinkResult{{Result: sink.Result{Kind: "we\"ird\\\nkind", Rows: 1}}}}
	series, _, err := parseExposition(string(jobMetrics(r, time.Unix(1700000000, 0))))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := series[`pbicopy_sink_rows_written{kind="we\"ird\\\nkind",sink="0"}`]; !ok || v != 1 {
		t.Errorf("the label value did not survive escaping: %v", series)
	}
	if series["pbicopy_job_last_run_timestamp_seconds"] != 1700000000 {
		t.Errorf("timestamp: %v", series["pbicopy_job_last_run_timestamp_seconds"])
	}
}
