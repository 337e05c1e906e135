package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/internal/units"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/pipeline"
)

// Run statuses in the summary.
const (
	runSucceeded   = "succeeded"
	runFailed      = "failed"
	runInvalid     = "invalid"
	runInterrupted = "interrupted"
)

// runJobs runs jobs one after another (a failed job does not stop the next
// ones), then prints the summary table and, when asked, writes the summary
// as JSON and pushes the figures to a Pushgateway, whatever the outcome.
func runJobs(ctx context.Context, runner *pipeline.Runner, jobs []*jobfile.Job, f runFlags, stdout io.Writer, rep *reporter) error {
	started := time.Now()
	var results []*pipeline.JobResult
	failed := 0
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		r := runner.Run(ctx, j)
		results = append(results, r)
		if r.Status != pipeline.Succeeded {
			failed++
		}
	}
	rep.close()
	var err error
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("interrupted: %w", ctx.Err())
	case failed > 0:
		err = errJobsFailed
	}
	sum := newRunSummary("run", started, jobs, results, err)
	table := stdout
	if f.summary == "-" {
		table = rep.stderr // stdout carries the JSON summary alone
	}
	printSummary(table, sum)
	if f.summary != "" {
		err = withFailure(err, writeSummary(f.summary, stdout, sum))
	}
	if f.metricsPush != "" {
		if perr := pushRunMetrics(ctx, f, runner.Shard, results); perr != nil && f.metricsPushOptional {
			rep.log.Warn("the run's figures were not pushed (--metrics-push-optional)", "error", perr)
		} else {
			err = withFailure(err, perr)
		}
	}
	return err
}

// runSummary is the JSON summary of a run (--summary FILE).
type runSummary struct {
	Command         string        `json:"command"`
	Status          string        `json:"status"`
	Error           string        `json:"error,omitempty"`
	Started         time.Time     `json:"started"`
	DurationSeconds float64       `json:"durationSeconds"`
	Duration        string        `json:"duration"`
	Jobs            []jobSummary  `json:"jobs"`
	Totals          totalsSummary `json:"totals"`
}

type totalsSummary struct {
	Jobs        int   `json:"jobs"`
	Failed      int   `json:"failed"`
	Interrupted int   `json:"interrupted"`
	RowsRead    int64 `json:"rowsRead"`
	BytesRead   int64 `json:"bytesRead"`
	Published   int   `json:"published"`
}

type jobSummary struct {
	Job             string             `json:"job"`
	File            string             `json:"file,omitempty"`
	Status          string             `json:"status"`
	Error           string             `json:"error,omitempty"`
	Phase           string             `json:"phase,omitempty"`
	RowsRead        int64              `json:"rowsRead"`
	BytesRead       int64              `json:"bytesRead"`
	Pages           int                `json:"pages"`
	TruncatedPages  int                `json:"truncatedPages,omitempty"`
	Requests        int                `json:"requests"`
	Retries         int                `json:"retries"`
	Attempts        int                `json:"attempts"`
	Throttled       throttleSummary    `json:"throttled"`
	Backoff         backoffSummary     `json:"backoff"`
	DurationSeconds float64            `json:"durationSeconds"`
	Duration        string             `json:"duration"`
	Sinks           []sinkSummary      `json:"sinks"`
	Partitions      []partitionSummary `json:"partitions,omitempty"`
	Columns         []string           `json:"columns,omitempty"`
	Notes           []string           `json:"notes,omitempty"`
	// Watermark: an incremental job's old and new watermark.
	Watermark *pipeline.WatermarkResult `json:"watermark,omitempty"`
}

// throttleSummary counts the requests answered 429 and the time spent
// waiting before retrying them.
type throttleSummary struct {
	Count       int     `json:"count"`
	WaitSeconds float64 `json:"waitSeconds"`
	Wait        string  `json:"wait"`
}

// backoffSummary counts the retries after anything but a 429 (a server
// error, a network failure, a body that broke off) and the time spent
// waiting before them.
type backoffSummary struct {
	Count       int     `json:"count"`
	WaitSeconds float64 `json:"waitSeconds"`
	Wait        string  `json:"wait"`
}

type sinkSummary struct {
	Kind        string        `json:"kind"`
	Location    string        `json:"location"`
	Status      string        `json:"status"`
	Error       string        `json:"error,omitempty"`
	RowsWritten int64         `json:"rowsWritten"`
	Bytes       int64         `json:"bytes"`
	Files       []fileSummary `json:"files,omitempty"`
	Tables      []string      `json:"tables,omitempty"`
	Published   int           `json:"published"`
}

type fileSummary struct {
	Location string `json:"location"`
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"`
	SHA256   string `json:"sha256,omitempty"`
}

type partitionSummary struct {
	Key             string  `json:"key"`
	Status          string  `json:"status"`
	Error           string  `json:"error,omitempty"`
	Phase           string  `json:"phase,omitempty"`
	RowsRead        int64   `json:"rowsRead"`
	Pages           int     `json:"pages"`
	DurationSeconds float64 `json:"durationSeconds"`
}

// Sink statuses beyond the runner's: a sink of a failed job that published
// nothing.
const sinkAborted = "aborted"

func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

func human(d time.Duration) string {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// newRunSummary sums up a run; err is the run's error, if any.
func newRunSummary(command string, started time.Time, jobs []*jobfile.Job, results []*pipeline.JobResult, err error) *runSummary {
	d := time.Since(started)
	s := &runSummary{Command: command, Status: runSucceeded, Started: started.UTC().Truncate(time.Second), DurationSeconds: seconds(d), Duration: human(d), Jobs: []jobSummary{}}
	var ie invalidJobs
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		s.Status, s.Error = runInterrupted, err.Error()
	case errors.As(err, &ie):
		s.Status, s.Error = runInvalid, ie.Error()
	default:
		s.Status = runFailed
		if !errors.Is(err, errJobsFailed) {
			s.Error = err.Error()
		}
	}
	for i, r := range results {
		var job *jobfile.Job
		if i < len(jobs) {
			job = jobs[i]
		}
		js := jobSummaryOf(r, job)
		s.Jobs = append(s.Jobs, js)
		s.Totals.Jobs++
		switch r.Status {
		case pipeline.Succeeded:
		case pipeline.Interrupted:
			s.Totals.Interrupted++
		default:
			s.Totals.Failed++
		}
		s.Totals.RowsRead += r.Rows
		s.Totals.BytesRead += r.Bytes
		for _, k := range js.Sinks {
			s.Totals.Published += k.Published
		}
	}
	return s
}

func jobSummaryOf(r *pipeline.JobResult, job *jobfile.Job) jobSummary {
	js := jobSummary{
		Job: r.Job, File: r.File, Status: string(r.Status), Error: r.Error, Phase: r.Phase,
		RowsRead: r.Rows, BytesRead: r.Bytes, Pages: r.Pages, TruncatedPages: r.Truncated,
		Requests: r.Requests, Retries: r.Retries, Attempts: r.Attempts,
		Throttled:       throttleSummary{Count: r.Throttled, WaitSeconds: seconds(r.ThrottledWait), Wait: human(r.ThrottledWait)},
		Backoff:         backoffSummary{Count: r.BackedOff, WaitSeconds: seconds(r.BackoffWait), Wait: human(r.BackoffWait)},
		DurationSeconds: seconds(r.Duration), Duration: human(r.Duration),
		Sinks: []sinkSummary{}, Columns: r.Columns, Notes: r.Notes, Watermark: r.Watermark,
	}
	for _, k := range r.Sinks {
		ks := sinkSummary{Kind: k.Kind, Location: k.Location, Status: string(k.Status), Error: k.Error, RowsWritten: k.Rows, Bytes: k.Bytes, Published: k.Published}
		if k.Kind == "postgres" && k.Published > 0 {
			ks.Tables = []string{k.Location}
		}
		for _, f := range k.Files {
			ks.Files = append(ks.Files, fileSummary{Location: f.Location, Rows: f.Rows, Bytes: f.Bytes, SHA256: f.SHA256})
		}
		js.Sinks = append(js.Sinks, ks)
	}
	if job != nil {
		// The sinks the job did not reach published nothing (the runner
		// lists them all, with their rendered locations).
		for _, spec := range job.Sinks[min(len(r.Sinks), len(job.Sinks)):] {
			js.Sinks = append(js.Sinks, sinkSummary{Kind: spec.Kind(), Location: spec.Location(), Status: sinkAborted})
		}
	}
	for _, p := range r.Partitions {
		js.Partitions = append(js.Partitions, partitionSummary{Key: p.Key, Status: string(p.Status), Error: p.Error, Phase: p.Phase, RowsRead: p.Rows, Pages: p.Pages, DurationSeconds: seconds(p.Duration)})
	}
	return js
}

// writeSummary writes the summary as JSON: to stdout for "-", else to
// path, replaced atomically (a temporary file beside it, renamed over it).
// Only a regular file is replaced: a device, a pipe or a directory at path
// is refused (renaming over /dev/stdout would destroy the device link).
// The file gets mode 0644 minus the umask.
func writeSummary(path string, stdout io.Writer, s *runSummary) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	if err := replaceFile(path, data); err != nil {
		return fmt.Errorf("write summary %s: %w", path, err)
	}
	return nil
}

// replaceFile writes data to path atomically, replacing a regular file
// only, with mode 0644 minus the umask.
func replaceFile(path string, data []byte) error {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file: write the summary to a file, or to - for standard output", path)
	}
	dir, name := filepath.Split(path)
	var tmp *os.File
	var err error
	for range 100 {
		tmpName := filepath.Join(dir, "."+name+".tmp-"+strconv.FormatUint(rand.Uint64(), 36))
		tmp, err = os.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644) // 0644 minus the umask
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// writeSummaryOf writes the summary of a run that ran no job, because it
// failed before (an invalid job file), when --summary asks for one.
func writeSummaryOf(path string, stdout io.Writer, command string, started time.Time, err error) error {
	if path == "" {
		return err
	}
	if werr := writeSummary(path, stdout, newRunSummary(command, started, nil, nil, err)); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

// printSummary prints the run summary as tables: one line per job, one per
// sink, then the errors and notes.
func printSummary(w io.Writer, s *runSummary) {
	if len(s.Jobs) == 0 {
		return
	}
	var rows [][]string
	for _, j := range s.Jobs {
		rows = append(rows, []string{j.Job, humanStatus(j.Status), groupDigits(j.RowsRead), fmt.Sprint(j.Pages), fmt.Sprint(j.Requests), fmt.Sprint(j.Retries),
			countAndWait(j.Throttled.Count, j.Throttled.WaitSeconds, j.Throttled.Wait), countAndWait(j.Backoff.Count, j.Backoff.WaitSeconds, j.Backoff.Wait),
			units.Bytes(j.BytesRead), j.Duration})
	}
	writeTable(w, []string{"JOB", "STATUS", "ROWS READ", "PAGES", "REQUESTS", "RETRIES", "THROTTLED", "BACKED OFF", "READ", "DURATION"}, rows,
		[]bool{false, false, true, true, true, true, true, true, true, true})
	fmt.Fprintln(w)
	rows = nil
	for _, j := range s.Jobs {
		for _, k := range j.Sinks {
			bytes := units.Bytes(k.Bytes)
			if k.Kind == "postgres" {
				bytes = "-"
			}
			rows = append(rows, []string{j.Job, k.Kind, humanStatus(k.Status), groupDigits(k.RowsWritten), bytes, k.Location})
		}
	}
	writeTable(w, []string{"JOB", "SINK", "STATUS", "ROWS WRITTEN", "BYTES", "OUTPUT"}, rows, []bool{false, false, false, true, true, false})
	for _, j := range s.Jobs {
		if len(j.Partitions) > 0 {
			fmt.Fprintf(w, "\n%s: %s\n", j.Job, partitionCounts(j.Partitions))
		}
	}
	for _, j := range s.Jobs {
		if j.Error != "" {
			where, msg := "", j.Error
			if j.Phase != "" && j.Phase != string(pipeline.Interrupted) {
				where = " (at " + j.Phase + ")"
			}
			if j.Status == string(pipeline.Interrupted) {
				msg = strings.TrimPrefix(msg, "interrupted: ")
			}
			fmt.Fprintf(w, "\n%s: %s%s: %s\n", j.Job, humanStatus(j.Status), where, msg)
		}
		for _, n := range j.Notes {
			fmt.Fprintf(w, "%s: note: %s\n", j.Job, n)
		}
	}
	outcome := fmt.Sprintf("%d succeeded, %d failed", s.Totals.Jobs-s.Totals.Failed-s.Totals.Interrupted, s.Totals.Failed)
	if s.Totals.Interrupted > 0 {
		outcome += fmt.Sprintf(", %d interrupted", s.Totals.Interrupted)
	}
	fmt.Fprintf(w, "\n%d job(s): %s; %s rows read, %d output(s) published, in %s\n",
		s.Totals.Jobs, outcome, groupDigits(s.Totals.RowsRead), s.Totals.Published, s.Duration)
}

// countAndWait writes a count of retries and, when there was one or a
// wait, the time waited: "0", "3 (4.5s)".
func countAndWait(n int, seconds float64, wait string) string {
	if n == 0 && seconds == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", n, wait)
}

// humanStatus is how the summary table words a status: a partition
// --resume skipped was done by an earlier run.
func humanStatus(status string) string {
	if status == string(pipeline.Skipped) {
		return "skipped (already done)"
	}
	return status
}

// partitionCounts words the outcome of a job's partitions: how many ended
// each way, and which did not succeed (the first few of each).
func partitionCounts(parts []partitionSummary) string {
	order := []string{string(pipeline.Succeeded), string(pipeline.Skipped), string(pipeline.Failed),
		string(pipeline.PartiallyPublished), string(pipeline.Interrupted), string(pipeline.NotRun)}
	keys := map[string][]string{}
	for _, p := range parts {
		if !slices.Contains(order, p.Status) {
			order = append(order, p.Status)
		}
		keys[p.Status] = append(keys[p.Status], p.Key)
	}
	var out []string
	for _, st := range order {
		k := keys[st]
		if len(k) == 0 {
			continue
		}
		text := fmt.Sprintf("%d %s", len(k), humanStatus(st))
		if st != string(pipeline.Succeeded) && st != string(pipeline.Skipped) {
			if len(k) > 3 {
				k = append(k[:3:3], fmt.Sprintf("and %d more", len(k)-3))
			}
			text += " (" + strings.Join(k, ", ") + ")"
		}
		out = append(out, text)
	}
	return fmt.Sprintf("%d partition(s): %s", len(parts), strings.Join(out, ", "))
}
