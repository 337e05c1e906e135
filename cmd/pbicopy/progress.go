package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pbicopy/pbicopy/internal/units"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/sink/azureblob"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// progressInterval is the time between two redraws of the progress line:
// at most five a second.
const progressInterval = 200 * time.Millisecond

// Terminal control: back to the start of the line, erase to its end.
const (
	carriageReturn = "\r"
	clearToEOL     = "\x1b[K"
)

// progressBar draws one line on a terminal, redrawn in place, with what
// the run is doing. Log records are written through its handler, which
// erases the line first, so that the two never mix. Its methods are safe
// for concurrent use; event is cheap.
type progressBar struct {
	w     io.Writer
	width int
	now   func() time.Time

	mu          sync.Mutex
	shown       bool // a line is on the terminal
	job         string
	start       time.Time
	rows, bytes int64
	pages       int
	parts       int
	totalParts  int
	refresh     string
	refreshAt   time.Duration
	active      bool

	stop chan struct{}
	done chan struct{}
}

// newProgressBar starts a progress line on the terminal w.
func newProgressBar(w io.Writer) *progressBar {
	b := &progressBar{w: w, width: terminalWidth(w), now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	if b.width <= 0 {
		b.width = 80
	}
	go b.loop()
	return b
}

func (b *progressBar) loop() {
	defer close(b.done)
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.mu.Lock()
			b.drawLocked()
			b.mu.Unlock()
		}
	}
}

// event records a progress event; the line shows it at the next redraw.
func (b *progressBar) event(e pipeline.ProgressEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e.Kind {
	case pipeline.ProgressJobStart:
		b.job, b.start, b.active = e.Job, b.now(), true
		b.rows, b.bytes, b.pages, b.parts, b.totalParts = 0, 0, 0, 0, e.TotalPartitions
		b.refresh = ""
	case pipeline.ProgressRows:
		b.rows += e.Rows
		b.refresh = ""
	case pipeline.ProgressBytes:
		b.bytes += e.Bytes
	case pipeline.ProgressPage:
		b.pages += e.Pages
	case pipeline.ProgressPartition:
		b.parts++
	case pipeline.ProgressRefresh:
		b.refresh, b.refreshAt = e.Status, e.Elapsed
	case pipeline.ProgressJobEnd:
		b.active = false
		b.clearLocked()
	}
}

// line is the progress line's text.
func (b *progressBar) line() string {
	elapsed := b.now().Sub(b.start)
	var parts []string
	switch {
	case b.refresh != "":
		parts = append(parts, "refreshing the dataset: "+b.refresh, b.refreshAt.Round(time.Second).String())
	case b.rows == 0 && b.bytes == 0:
		parts = append(parts, "waiting for Power BI", elapsed.Round(time.Second).String())
	default:
		parts = append(parts, groupDigits(b.rows)+" rows")
		if b.pages > 0 {
			parts = append(parts, fmt.Sprintf("%d pages", b.pages))
		}
		if b.totalParts > 0 {
			parts = append(parts, fmt.Sprintf("%d/%d partitions", b.parts, b.totalParts))
		}
		parts = append(parts, units.Bytes(b.bytes))
		if s := elapsed.Seconds(); s >= 0.5 {
			parts = append(parts, groupDigits(int64(float64(b.rows)/s))+" rows/s")
		}
		if b.totalParts > 0 && b.parts > 0 && b.parts < b.totalParts {
			eta := time.Duration(float64(elapsed) / float64(b.parts) * float64(b.totalParts-b.parts))
			parts = append(parts, "ETA "+eta.Round(time.Second).String())
		}
	}
	s := b.job + ": " + strings.Join(parts, " · ")
	if max := b.width - 1; utf8.RuneCountInString(s) > max && max > 1 {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

func (b *progressBar) drawLocked() {
	if !b.active {
		return
	}
	fmt.Fprint(b.w, carriageReturn+b.line()+clearToEOL)
	b.shown = true
}

func (b *progressBar) clearLocked() {
	if b.shown {
		fmt.Fprint(b.w, carriageReturn+clearToEOL)
		b.shown = false
	}
}

// close stops the redraws and erases the line.
func (b *progressBar) close() {
	if b == nil {
		return
	}
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	b.mu.Lock()
	b.active = false
	b.clearLocked()
	b.mu.Unlock()
}

// barHandler writes log records through h after erasing the progress line;
// the next redraw puts the line back under them.
type barHandler struct {
	h   slog.Handler
	bar *progressBar
}

func (h *barHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *barHandler) Handle(ctx context.Context, r slog.Record) error {
	h.bar.mu.Lock()
	defer h.bar.mu.Unlock()
	h.bar.clearLocked()
	return h.h.Handle(ctx, r)
}

func (h *barHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &barHandler{h: h.h.WithAttrs(attrs), bar: h.bar}
}

func (h *barHandler) WithGroup(name string) slog.Handler {
	return &barHandler{h: h.h.WithGroup(name), bar: h.bar}
}

// groupDigits writes n with thousands separators: 1234567 -> 1,234,567.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// reporter is how a command tells the operator what happens: its logger
// and, when stderr is a terminal, the progress line.
type reporter struct {
	log    *slog.Logger
	bar    *progressBar // nil: no progress line
	stderr io.Writer
}

// newReporter makes the logger the flags ask for and, when stderr is an
// interactive terminal and --no-progress is not given, a progress line.
func (a *app) newReporter() (*reporter, error) {
	log, err := a.newLogger()
	if err != nil {
		return nil, err
	}
	rep := &reporter{log: log, stderr: a.stderr}
	if !a.logs.noProgress && isTerminal(a.stderr) {
		rep.bar = newProgressBar(a.stderr)
		rep.log = slog.New(&barHandler{h: log.Handler(), bar: rep.bar})
	}
	return rep, nil
}

// progress is the Runner's Progress function: nil without a progress line.
func (r *reporter) progress() func(pipeline.ProgressEvent) {
	if r.bar == nil {
		return nil
	}
	return r.bar.event
}

// close erases the progress line for good, before the command prints its
// results.
func (r *reporter) close() {
	if r != nil {
		r.bar.close()
	}
}

// connector returns the process's Power BI connector, logging to the
// reporter and telling the progress line of refreshes. rate is the
// request limit per minute (0: the service's).
func (a *app) connector(rep *reporter, rate float64) *powerbi.Connector {
	c := &powerbi.Connector{HTTPClient: a.httpClient, Logger: rep.log, Rate: rate, RetryDelay: a.pollInterval}
	if p := rep.progress(); p != nil {
		c.OnRefresh = func(job, status string, elapsed time.Duration) {
			p(pipeline.ProgressEvent{Kind: pipeline.ProgressRefresh, Job: job, Status: status, Elapsed: elapsed})
		}
	}
	return c
}

// storage reaches Azure Blob Storage for the commands' blob outputs.
func (a *app) storage() azureblob.Storage { return azureblob.Storage{HTTPClient: a.httpClient} }
