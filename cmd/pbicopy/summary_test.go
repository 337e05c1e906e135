package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

// dailyJob writes a job with a partition per day, each to a CSV file of
// its own.
func dailyJob(t *testing.T, dir, name, table string) string {
	t.Helper()
	return writeFile(t, filepath.Join(dir, name+".yaml"), "name: "+name+`
params:
  day: { type: date }
partition: { param: day, step: 1d }
`+sourceBlock("EVALUATE FILTER("+table+", "+table+"[OrderDate] = {{ dax .day }})", nil)+`mapping:
  columns:
    - { from: "`+table+`[OrderID]", to: order_id, type: int64 }
    - { from: "`+table+`[Amount]", to: amount, type: "decimal(19,4)" }
  unmapped: ignore
sinks:
  - csv: { path: "`+filepath.Join(dir, "out", name)+`/day={{ .day }}.csv" }
`)
}

// TestGoldenRunPartitions: the human summary of a backfill words each
// partition's outcome: skipped (already done) under --resume, not run after
// a failure every partition would meet, interrupted by a signal; and shows
// rendered paths, never a template.
func TestGoldenRunPartitions(t *testing.T) {
	_, dir := fakeEnv(t, fakepbi.Options{})
	daily := dailyJob(t, dir, "daily", "Sales")
	code, _, stderr := runApp(t, context.Background(), "run", daily, "--from", "2024-01-01", "--to", "2024-01-02")
	if code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}

	t.Run("resume", func(t *testing.T) {
		summary := filepath.Join(dir, "resume.json")
		code, stdout, stderr := runApp(t, context.Background(), "run", daily, "--from", "2024-01-01", "--to", "2024-01-04", "--resume", "--summary", summary)
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		golden(t, "run-resume.txt", normalize(stdout, dir))
		s := readRunSummary(t, summary)
		statuses := map[string]string{}
		for _, p := range s.Jobs[0].Partitions {
			statuses[p.Key] = p.Status
		}
		want := map[string]string{"2024-01-01": "skipped", "2024-01-02": "skipped", "2024-01-03": "succeeded", "2024-01-04": "succeeded"}
		for k, v := range want {
			if statuses[k] != v {
				t.Errorf("partition %s: %q, want %q (the JSON keeps the runner's word)", k, statuses[k], v)
			}
		}
	})

	t.Run("all skipped", func(t *testing.T) {
		code, stdout, stderr := runApp(t, context.Background(), "run", daily, "--from", "2024-01-01", "--to", "2024-01-01", "--resume")
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if !strings.Contains(stdout, "daily  csv   skipped (already done)") || !strings.Contains(stdout, filepath.Join(dir, "out", "daily", "day=2024-01-01.csv")) {
			t.Errorf("a sink of a partition --resume skipped:\n%s", stdout)
		}
	})

	t.Run("fail fast", func(t *testing.T) {
		bad := dailyJob(t, dir, "bad", "Salez")
		code, stdout, stderr := runApp(t, context.Background(), "run", bad, "--from", "2024-01-01", "--to", "2024-01-04", "--concurrency", "1")
		if code != exitFailed {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		golden(t, "run-failfast.txt", normalize(stdout, dir))
	})

	t.Run("interrupted", func(t *testing.T) {
		srv, _ := fakeEnv(t, fakepbi.Options{Latency: 5 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { // as SIGINT does, once the first query is in flight
			for srv.QueryRequests() == 0 && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
		}()
		summary := filepath.Join(dir, "interrupted.json")
		code, stdout, stderr := runApp(t, ctx, "run", daily, "--from", "2024-01-05", "--to", "2024-01-07", "--concurrency", "1", "--summary", summary)
		if code != exitInterrupted {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		golden(t, "run-interrupted.txt", normalize(stdout, dir))
		data, err := os.ReadFile(summary)
		if err != nil {
			t.Fatal(err)
		}
		var s runSummary
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		if s.Totals.Interrupted != 1 || s.Totals.Failed != 0 || s.Jobs[0].Sinks[0].Status != "interrupted" {
			t.Errorf("summary: totals %+v, sinks %+v", s.Totals, s.Jobs[0].Sinks)
		}
	})
}

// TestSummaryCountsBackoffApart: a 429, a 503 and a body cut off in one
// run: the summary counts the throttling and the back-offs apart, each
// with its wait, and the re-read of the cut body as a retry, not a page.
func TestSummaryCountsBackoffApart(t *testing.T) {
	srv, dir := fakeEnv(t, fakepbi.Options{})
	job := writeJob(t, dir, "sales", "EVALUATE Sales")
	srv.Throttle(1, time.Second)
	srv.FailWith(1, 503)
	srv.CutBody(1, 3000)
	summary := filepath.Join(dir, "summary.json")
	code, stdout, stderr := runApp(t, context.Background(), "run", job, "--summary", summary)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	j := readRunSummary(t, summary).Jobs[0]
	if j.Requests != 4 || j.Retries != 3 || j.Pages != 1 || j.Throttled.Count != 1 || j.Backoff.Count != 2 {
		t.Errorf("requests %d retries %d pages %d throttled %d backed off %d; want 4 3 1 1 2", j.Requests, j.Retries, j.Pages, j.Throttled.Count, j.Backoff.Count)
	}
	if j.Throttled.WaitSeconds < 1 || j.Backoff.WaitSeconds >= 1 || j.Backoff.WaitSeconds <= 0 {
		t.Errorf("waits: throttled %vs (Retry-After 1s), backed off %vs (the retry delay, 1ms)", j.Throttled.WaitSeconds, j.Backoff.WaitSeconds)
	}
	if got := srv.QueryRequests(); got != j.Requests {
		t.Errorf("the fake saw %d requests, the summary says %d", got, j.Requests)
	}
	header, row, _ := strings.Cut(stdout, "\n")
	row, _, _ = strings.Cut(row, "\n")
	fields := strings.Fields(row)
	// sales succeeded 1,000 1 4 3 1 (1.0Xs) 2 (XXms) 240.4 KiB DUR
	if !strings.Contains(header, "THROTTLED  BACKED OFF") || len(fields) < 10 || fields[2] != "1,000" || fields[3] != "1" || fields[5] != "3" ||
		fields[6] != "1" || !strings.HasPrefix(fields[7], "(1") || fields[8] != "2" || !strings.HasPrefix(fields[9], "(") {
		t.Errorf("summary table:\n%s", stdout)
	}
}
