// Package metrics pushes the figures of a run to a Prometheus Pushgateway.
package metrics

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/pipeline"
)

// metricsContentType is the Prometheus text exposition format, the one the
// Pushgateway accepts from a plain HTTP client.
const metricsContentType = "text/plain; version=0.0.4"

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

// Push pushes the figures of a run to a Prometheus Pushgateway at
// gatewayURL, one push per job, grouped by job="pbicopy" and
// pbicopy_job="<job name>" (and instance, when not empty: batch jobs usually
// leave it out so that a run from another host replaces the figures).
//
// Every job gets pbicopy_job_success, _duration_seconds, _rows_read,
// _bytes_read, _requests, _retries, _throttled and
// _last_run_timestamp_seconds, and, when it succeeded,
// _last_success_timestamp_seconds; every sink the job reached gets
// pbicopy_sink_rows_written and _bytes_written labelled by its index and
// kind (never its location, which can hold a SAS token or a password).
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
// failure, naming the job, the gateway (without credentials) and the
// status. ctx bounds the pushes; a nil client means http.DefaultClient.
func Push(ctx context.Context, client *http.Client, gatewayURL string, results []*pipeline.JobResult, instance string) error {
	return pushMetrics(ctx, client, gatewayURL, results, instance, time.Now())
}

func pushMetrics(ctx context.Context, client *http.Client, gatewayURL string, results []*pipeline.JobResult, instance string, now time.Time) error {
	gw, err := parsePushURL(gatewayURL)
	if err != nil {
		return err
	}
	if client == nil {
		client = http.DefaultClient
	}
	ends := make([]time.Time, len(results))
	end := now
	for i := len(results) - 1; i >= 0; i-- {
		ends[i] = end
		end = end.Add(-results[i].Duration)
	}
	var errs []error
	for i, r := range results {
		if err := pushJob(ctx, client, gw, r, instance, ends[i]); err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", r.Job, err))
		}
	}
	return errors.Join(errs...)
}

func pushJob(ctx context.Context, client *http.Client, gw *url.URL, r *pipeline.JobResult, instance string, end time.Time) error {
	target := *gw
	p := strings.TrimSuffix(gw.EscapedPath(), "/") + "/metrics/job/pbicopy/" + groupingPair("pbicopy_job", r.Job)
	if instance != "" {
		p += "/" + groupingPair("instance", instance)
	}
	var err error
	if target.Path, err = url.PathUnescape(p); err != nil {
		return err
	}
	target.RawPath = p
	method := http.MethodPut
	if r.Status != pipeline.Succeeded {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), bytes.NewReader(jobMetrics(r, end)))
	if err != nil {
		return fmt.Errorf("push to %s: %w", redactPushURL(gw), stripURLError(err))
	}
	req.Header.Set("Content-Type", metricsContentType)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("push to %s: %w", redactPushURL(gw), stripURLError(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		msg := fmt.Sprintf("push to %s: %s", redactPushURL(gw), resp.Status)
		if b := strings.TrimSpace(string(body)); b != "" {
			msg += ": " + b
		}
		return errors.New(msg)
	}
	return nil
}

// stripURLError drops the URL a *url.Error repeats, user name included.
func stripURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// groupingPair writes one label of a Pushgateway grouping key as a path:
// name/value, or name@base64/value for a value a path cannot hold as is.
func groupingPair(name, value string) string {
	if value == "" || value == "." || value == ".." || strings.Contains(value, "/") {
		enc := base64.RawURLEncoding.EncodeToString([]byte(value))
		if enc == "" {
			enc = "=" // the Pushgateway's spelling of the empty value
		}
		return name + "@base64/" + enc
	}
	return name + "/" + url.PathEscape(value)
}

// jobMetrics renders the figures of r in the Prometheus text exposition
// format, version 0.0.4.
func jobMetrics(r *pipeline.JobResult, end time.Time) []byte {
	var w metricsWriter
	succeeded := 0.0
	if r.Status == pipeline.Succeeded {
		succeeded = 1
	}
	endSeconds := float64(end.UnixMilli()) / 1e3
	w.gauge("pbicopy_job_success", "Whether the last run of the job succeeded (1) or failed (0).", metricSample{value: succeeded})
	w.gauge("pbicopy_job_duration_seconds", "How long the last run of the job took.", metricSample{value: r.Duration.Seconds()})
	w.gauge("pbicopy_job_rows_read", "Rows the last run read from the source.", metricSample{value: float64(r.Rows)})
	w.gauge("pbicopy_job_bytes_read", "Bytes of response the last run read from the source.", metricSample{value: float64(r.Bytes)})
	w.gauge("pbicopy_job_requests", "Query requests the last run sent to Power BI, retries included.", metricSample{value: float64(r.Requests)})
	w.gauge("pbicopy_job_retries", "Query requests of the last run that repeated a failed one.", metricSample{value: float64(r.Retries)})
	w.gauge("pbicopy_job_throttled", "Times Power BI throttled the last run (HTTP 429).", metricSample{value: float64(r.Throttled)})
	var rows, written []metricSample
	for i, s := range r.Sinks {
		labels := [][2]string{{"sink", strconv.Itoa(i)}, {"kind", s.Kind}}
		rows = append(rows, metricSample{labels, float64(s.Rows)})
		written = append(written, metricSample{labels, float64(s.Bytes)})
	}
	w.gauge("pbicopy_sink_rows_written", "Rows the last run published to the sink, by index in the job's sinks and kind.", rows...)
	w.gauge("pbicopy_sink_bytes_written", "Bytes the last run published to the sink (0 where it has no meaning), by index and kind.", written...)
	w.gauge("pbicopy_job_last_run_timestamp_seconds", "When the last run of the job ended, in Unix seconds.", metricSample{value: endSeconds})
	// Only a success sets this one, and a failed run's push leaves it as it
	// was: alerting on time() minus it catches a job that has not succeeded
	// for too long, whether it fails or stopped running altogether.
	if r.Status == pipeline.Succeeded {
		w.gauge("pbicopy_job_last_success_timestamp_seconds", "When the last successful run of the job ended, in Unix seconds.", metricSample{value: endSeconds})
	}
	return w.buf.Bytes()
}

type metricSample struct {
	labels [][2]string
	value  float64
}

type metricsWriter struct{ buf bytes.Buffer }

// gauge writes a metric family; one without samples is left out.
func (w *metricsWriter) gauge(name, help string, samples ...metricSample) {
	if len(samples) == 0 {
		return
	}
	fmt.Fprintf(&w.buf, "# HELP %s %s\n# TYPE %s gauge\n", name, escapeHelp(help), name)
	for _, s := range samples {
		w.buf.WriteString(name)
		if len(s.labels) > 0 {
			w.buf.WriteByte('{')
			for i, l := range s.labels {
				if i > 0 {
					w.buf.WriteByte(',')
				}
				fmt.Fprintf(&w.buf, "%s=\"%s\"", l[0], escapeLabelValue(l[1]))
			}
			w.buf.WriteByte('}')
		}
		w.buf.WriteByte(' ')
		w.buf.WriteString(strconv.FormatFloat(s.value, 'f', -1, 64))
		w.buf.WriteByte('\n')
	}
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string       { return helpEscaper.Replace(s) }
func escapeLabelValue(s string) string { return labelEscaper.Replace(s) }
