// Package metrics pushes the figures of a run to a Prometheus Pushgateway,
// through the push package of the Prometheus Go client.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"

	"github.com/pbicopy/pbicopy/pipeline"
)

// Job is the job label of every group pbicopy pushes.
const Job = "pbicopy"

// CheckPushURL reports whether s can be a Pushgateway address for
// Push: an http or https URL with a host, and perhaps a path prefix.
// The error does not repeat credentials written in the URL.
func CheckPushURL(s string) error {
	_, err := parsePushURL(s)
	return err
}

func parsePushURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL: write http(s)://host:9091")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%s is not an http(s) URL with a host, e.g. http://pushgateway:9091", redactPushURL(u))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: a Pushgateway address has no query or fragment", redactPushURL(u))
	}
	return u, nil
}

// redactPushURL writes u without its user information (a Pushgateway behind
// basic auth takes it in the URL).
func redactPushURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// Options are the grouping key and the client of a push.
type Options struct {
	// Instance is the value of the grouping label instance; "" means
	// DefaultInstance.
	Instance string
	// Shard, when N > 0 (--shard was given), adds the grouping label
	// shard="i-of-n", so that the shards of a backfill each keep a group.
	Shard pipeline.Shard
	// Client carries the pushes; nil means a client of its own.
	Client *http.Client
}

// DefaultInstance is the instance label of a push that names none: the
// host name, or "unknown" when the system does not tell it.
func DefaultInstance() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown"
}

// ShardLabel is the value of the shard grouping label: "1-of-4" for --shard
// 1/4, "" for no shard.
func ShardLabel(s pipeline.Shard) string {
	if s.N <= 0 {
		return ""
	}
	return strconv.Itoa(s.I) + "-of-" + strconv.Itoa(s.N)
}

// Push pushes the figures of a run to a Prometheus Pushgateway at
// gatewayURL, one push per job, grouped by job="pbicopy",
// pbicopy_job="<job name>", instance (Options.Instance, else the host name)
// and, for a sharded run, shard="i-of-n": two hosts, two CronJobs with their
// own instance, or two shards never replace each other's figures.
//
// Every job gets pbicopy_job_success, _duration_seconds, _rows_read,
// _bytes_read, _requests, _retries, _throttled, _backed_off and
// _last_run_timestamp_seconds, and, when it succeeded,
// _last_success_timestamp_seconds; every sink the job reached gets
// pbicopy_sink_rows_written labelled by its index and kind (never its
// location, which can hold a SAS token or a password), and every file sink
// pbicopy_sink_bytes_written (a PostgreSQL sink writes rows, not bytes).
//
// results are in the order the jobs ran, one after another, the last one
// ending now, as pbicopy run does: a pipeline.JobResult holds a duration but no clock
// time, so a job's end time is now less the durations of the jobs after it.
//
// A job that succeeded replaces its whole group (PUT), so that the series of
// a sink removed from the job go away. A job that failed replaces only the
// metrics it pushes (POST): its last success timestamp stays as it was, and
// so do the sink figures of its last run that reached its sinks when this
// one failed before.
//
// Every job is pushed even when one push fails; the error lists each
// failure, naming the job, the push URL (without credentials: user and
// password written in gatewayURL are sent as basic auth) and the status.
// ctx bounds the pushes.
func Push(ctx context.Context, gatewayURL string, results []*pipeline.JobResult, opts Options) error {
	return pushMetrics(ctx, gatewayURL, results, opts, time.Now())
}

func pushMetrics(ctx context.Context, gatewayURL string, results []*pipeline.JobResult, opts Options, now time.Time) error {
	gw, err := parsePushURL(gatewayURL)
	if err != nil {
		return err
	}
	if opts.Instance == "" {
		opts.Instance = DefaultInstance()
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{}
	}
	ends := make([]time.Time, len(results))
	end := now
	for i := len(results) - 1; i >= 0; i-- {
		ends[i] = end
		end = end.Add(-results[i].Duration)
	}
	var errs []error
	for i, r := range results {
		p := newPusher(gw, r.Job, opts, client).Gatherer(jobMetrics(r, ends[i]))
		push := p.PushContext // PUT: the group is this run's figures alone
		if r.Status != pipeline.Succeeded {
			push = p.AddContext // POST: the last success stays
		}
		if err := push(ctx); err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", r.Job, err))
		}
	}
	return errors.Join(errs...)
}

// newPusher makes the pusher of one job's group at gw. Credentials in gw
// become basic auth, so that the URL the errors show holds none.
func newPusher(gw *url.URL, job string, opts Options, client *http.Client) *push.Pusher {
	base := *gw
	base.User = nil
	p := push.New(base.String(), Job).
		Grouping("pbicopy_job", job).
		Grouping("instance", opts.Instance).
		Client(pushDoer{client}).
		Format(expfmt.NewFormat(expfmt.TypeTextPlain))
	if s := ShardLabel(opts.Shard); s != "" {
		p = p.Grouping("shard", s)
	}
	if gw.User != nil {
		password, _ := gw.User.Password()
		p = p.BasicAuth(gw.User.Username(), password)
	}
	return p
}

// pushDoer sends the pushes and makes their errors one line each: the push
// URL (without credentials), the status and the start of the gateway's
// answer, or the network failure.
type pushDoer struct{ c *http.Client }

func (d pushDoer) Do(req *http.Request) (*http.Response, error) {
	target := req.URL.Redacted()
	resp, err := d.c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("push to %s: %w", target, stripURLError(err))
	}
	// The Pushgateway answers 200, or 202 (older versions).
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // lets the connection be reused
	msg := fmt.Sprintf("push to %s: %s", target, resp.Status)
	if b := strings.Join(strings.Fields(string(body)), " "); b != "" {
		msg += ": " + b
	}
	return nil, errors.New(msg)
}

// stripURLError drops the method and URL a *url.Error repeats.
func stripURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// jobMetrics gathers the figures of r, a job that ended at end.
func jobMetrics(r *pipeline.JobResult, end time.Time) prometheus.Gatherer {
	reg := prometheus.NewPedanticRegistry()
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		g.Set(v)
		reg.MustRegister(g)
	}
	succeeded := 0.0
	if r.Status == pipeline.Succeeded {
		succeeded = 1
	}
	endSeconds := float64(end.UnixMilli()) / 1e3
	gauge("pbicopy_job_success", "Whether the last run of the job succeeded (1) or failed (0).", succeeded)
	gauge("pbicopy_job_duration_seconds", "How long the last run of the job took.", r.Duration.Seconds())
	gauge("pbicopy_job_rows_read", "Rows the last run read from the source.", float64(r.Rows))
	gauge("pbicopy_job_bytes_read", "Bytes of response the last run read from the source.", float64(r.Bytes))
	gauge("pbicopy_job_requests", "Query requests the last run sent to Power BI, retries included.", float64(r.Requests))
	gauge("pbicopy_job_retries", "Query requests of the last run that repeated a failed one.", float64(r.Retries))
	gauge("pbicopy_job_throttled", "Times Power BI throttled the last run (HTTP 429).", float64(r.Throttled))
	gauge("pbicopy_job_backed_off", "Retries of the last run after a server error, a network failure or a body that broke off.", float64(r.BackedOff))
	gauge("pbicopy_job_last_run_timestamp_seconds", "When the last run of the job ended, in Unix seconds.", endSeconds)
	// Only a success sets this one, and a failed run's push leaves it as it
	// was: alerting on time() minus it catches a job that has not succeeded
	// for too long, whether it fails or stopped running altogether.
	if r.Status == pipeline.Succeeded {
		gauge("pbicopy_job_last_success_timestamp_seconds", "When the last successful run of the job ended, in Unix seconds.", endSeconds)
	}
	if w := r.Watermark; w != nil {
		// An incremental job: its watermark as a number (Unix seconds for
		// a date or a date-time, the value for an int), before and after.
		if v, ok := watermarkValue(w.Old); ok {
			gauge("pbicopy_job_watermark_previous", "The watermark stored before the last run (Unix seconds for a date or date-time, else the integer).", v)
		}
		if v, ok := watermarkValue(w.New); ok {
			gauge("pbicopy_job_watermark", "The watermark stored after the last run (Unix seconds for a date or date-time, else the integer).", v)
		}
		advanced := 0.0
		if w.Advanced {
			advanced = 1
		}
		gauge("pbicopy_job_watermark_advanced", "Whether the last run saved a new watermark (1) or kept the old one (0).", advanced)
	}
	if len(r.Sinks) == 0 {
		return reg
	}
	labels := []string{"sink", "kind"}
	rows := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pbicopy_sink_rows_written", Help: "Rows the last run published to the sink, by index in the job's sinks and kind."}, labels)
	written := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pbicopy_sink_bytes_written", Help: "Bytes the last run published to the file sink, by index in the job's sinks and kind."}, labels)
	for i, s := range r.Sinks {
		index := strconv.Itoa(i)
		rows.WithLabelValues(index, s.Kind).Set(float64(s.Rows))
		if s.Kind != "postgres" { // a table: rows, not bytes
			written.WithLabelValues(index, s.Kind).Set(float64(s.Bytes))
		}
	}
	reg.MustRegister(rows, written) // a vector without series is left out
	return reg
}

// watermarkValue is a watermark as the parameter prints it (1234,
// 2024-03-01, 2024-03-01T13:45:30Z) as a number: the integer, or Unix
// seconds.
func watermarkValue(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return float64(n), true
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return float64(t.Unix()), true
		}
	}
	return 0, false
}
