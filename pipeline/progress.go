package pipeline

import (
	"context"
	"time"

	"github.com/pbicopy/pbicopy/source"
)

// ProgressKind says what a ProgressEvent reports.
type ProgressKind uint8

// Progress event kinds.
const (
	// ProgressJobStart: a job starts. TotalPartitions, when known, is the
	// number of partitions it will run (0: unknown or unpartitioned).
	ProgressJobStart ProgressKind = iota + 1
	// ProgressRows: Rows more rows were decoded and handed to the sinks.
	ProgressRows
	// ProgressBytes: Bytes more bytes of response body were read.
	ProgressBytes
	// ProgressPage: Pages more pages (queries) were read in full.
	ProgressPage
	// ProgressPartition: a partition ended (done, failed or skipped).
	ProgressPartition
	// ProgressRefresh: a dataset refresh is in Status, Elapsed after it
	// was started.
	ProgressRefresh
	// ProgressJobEnd: the job ended, successfully or not.
	ProgressJobEnd
)

// ProgressEvent is one step of a run, for a progress display. Counts are
// deltas.
type ProgressEvent struct {
	Kind            ProgressKind
	Job             string
	Rows            int64
	Bytes           int64
	Pages           int
	TotalPartitions int
	Status          string
	Elapsed         time.Duration
}

// progress sends e to the Runner's Progress function, if any.
func (r *Runner) progress(e ProgressEvent) {
	if r.Progress != nil {
		r.Progress(e)
	}
}

// progressContext returns ctx under which sources report their response
// bytes and pages as progress events of job, when there is a Progress
// function.
func (r *Runner) progressContext(ctx context.Context, job string) context.Context {
	if r.Progress == nil {
		return ctx
	}
	return source.WithProgress(ctx, func(bytes int64, pages int) {
		if bytes > 0 {
			r.Progress(ProgressEvent{Kind: ProgressBytes, Job: job, Bytes: bytes})
		}
		if pages > 0 {
			r.Progress(ProgressEvent{Kind: ProgressPage, Job: job, Pages: pages})
		}
	})
}
