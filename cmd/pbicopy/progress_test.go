package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/units"
	"github.com/pbicopy/pbicopy/pipeline"
)

// newTestBar is a progress bar without its redraw loop, on a fake clock.
func newTestBar(w *bytes.Buffer, now *time.Time) *progressBar {
	return &progressBar{w: w, width: 100, now: func() time.Time { return *now }}
}

func TestProgressLine(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newTestBar(&out, &now)
	b.event(pipeline.ProgressEvent{Kind: pipeline.ProgressJobStart, Job: "sales", TotalPartitions: 4})
	now = now.Add(3 * time.Second)
	if got := b.line(); got != "sales: waiting for Power BI · 3s" {
		t.Errorf("before rows: %q", got)
	}
	b.event(pipeline.ProgressEvent{Kind: pipeline.ProgressRows, Rows: 12000})
	b.event(pipeline.ProgressEvent{Kind: pipeline.ProgressBytes, Bytes: 2_500_000})
	b.event(pipeline.ProgressEvent{Kind: pipeline.ProgressPage, Pages: 2})
	b.event(pipeline.ProgressEvent{Kind: pipeline.ProgressPartition})
	if got, want := b.line(), "sales: 12,000 rows · 2 pages · 1/4 partitions · 2.4 MiB · 4,000 rows/s · ETA 9s"; got != want {
		t.Errorf("line %q\nwant %q", got, want)
	}
	b.event(pipeline.ProgressEvent{Kind: pipeline.ProgressRefresh, Status: "InProgress", Elapsed: 90 * time.Second})
	if got := b.line(); got != "sales: refreshing the dataset: InProgress · 1m30s" {
		t.Errorf("refresh: %q", got)
	}
	b.width = 20
	if got := b.line(); got != "sales: refreshing …" {
		t.Errorf("cut to the width: %q", got)
	}

	b.drawLocked()
	if !strings.HasPrefix(out.String(), carriageReturn+"sales: ") || !strings.HasSuffix(out.String(), clearToEOL) {
		t.Errorf("drawn as %q", out.String())
	}
	// A log record erases the line first.
	out.Reset()
	log := slog.New(&barHandler{h: slog.NewTextHandler(&out, nil), bar: b})
	log.Info("hello")
	if !strings.HasPrefix(out.String(), carriageReturn+clearToEOL+"time=") {
		t.Errorf("log record: %q", out.String())
	}
	out.Reset()
	log.Info("again") // nothing drawn since: nothing to erase
	if strings.Contains(out.String(), clearToEOL) {
		t.Errorf("erased a line that was not there: %q", out.String())
	}
	b.drawLocked()
	b.event(pipeline.ProgressEvent{Kind: pipeline.ProgressJobEnd})
	if !strings.HasSuffix(out.String(), carriageReturn+clearToEOL) {
		t.Errorf("the line stays after the job: %q", out.String())
	}
	out.Reset()
	b.drawLocked()
	if out.Len() != 0 {
		t.Errorf("drawn between jobs: %q", out.String())
	}
}

func TestGroupDigitsAndWidth(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q", n, got)
		}
	}
	for s, want := range map[string]int{"abc": 3, "東京": 4, "Pizza 🍕": 8, "e\u0301": 1} {
		if got := displayWidth(s); got != want {
			t.Errorf("displayWidth(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestOneByteUnit: the progress line and the summary write a size with
// the same formatter, in IEC units.
func TestOneByteUnit(t *testing.T) {
	for _, n := range []int64{900, 2_500_000, 246_209, 3 << 30} {
		want := units.Bytes(n)
		var out bytes.Buffer
		now := time.Now()
		b := newTestBar(&out, &now)
		b.event(pipeline.ProgressEvent{Kind: pipeline.ProgressJobStart, Job: "j"})
		b.event(pipeline.ProgressEvent{Kind: pipeline.ProgressRows, Rows: 1})
		b.event(pipeline.ProgressEvent{Kind: pipeline.ProgressBytes, Bytes: n})
		line := b.line()
		var table bytes.Buffer
		printSummary(&table, &runSummary{Jobs: []jobSummary{{Job: "j", Status: "succeeded", BytesRead: n,
			Sinks: []sinkSummary{{Kind: "csv", Status: "succeeded", Bytes: n}}}}})
		if !strings.Contains(line, " · "+want) || strings.Count(table.String(), want) != 2 {
			t.Errorf("%d bytes: want %q in both\nprogress: %s\nsummary:\n%s", n, want, line, table.String())
		}
		for _, s := range []string{line, table.String()} {
			if strings.Contains(s, " MB") || strings.Contains(s, " kB") || strings.Contains(s, " GB") {
				t.Errorf("a decimal unit: %s", s)
			}
		}
	}
}
