package pipeline

import (
	"strconv"
	"time"

	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

// Status is the outcome of a job, a partition or a sink.
type Status string

// Outcomes.
const (
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	// Skipped: a partition --resume skipped, recorded as done by an
	// earlier run.
	Skipped Status = "skipped"
	// Interrupted: a job or partition stopped by SIGINT or SIGTERM. What
	// its sinks had committed before stays published (and is listed).
	Interrupted Status = "interrupted"
	// PartiallyPublished: some sinks of a partition committed, then another
	// failed to; the committed ones stay published.
	PartiallyPublished Status = "partially published"
	// Aborted: a sink that published nothing of this run, because the run
	// failed before its commit.
	Aborted Status = "aborted"
	// NotRun: a partition left out because an earlier one failed with an
	// error every partition would meet (source.Permanent).
	NotRun Status = "not run"
)

// Figures are the counts of a run, a partition or a job: what its sources
// did (summed over partitions and attempts, but Rows and Bytes, which are
// the last attempt's), and how many attempts it took.
type Figures struct {
	source.Stats
	Attempts int `json:"attempts"`
}

func (f *Figures) add(o Figures) {
	f.Stats.Add(o.Stats)
	f.Attempts += o.Attempts
}

// JobResult is what one run of one job did.
type JobResult struct {
	Job    string `json:"job"`
	File   string `json:"file,omitempty"`
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
	// Phase names where the job failed ("open sinks[1] (csv)", "source:
	// response", "commit sinks[0] (postgres)", "state", ...); "" when it
	// did not.
	Phase string `json:"phase,omitempty"`
	Figures
	Duration time.Duration `json:"duration"`
	// Sinks sums each sink over the partitions, in the job's order.
	Sinks []SinkResult `json:"sinks"`
	// Partitions lists every partition of a partitioned job, those skipped
	// by --resume included.
	Partitions []*PartitionResult `json:"partitions,omitempty"`
	Notes      []string           `json:"notes,omitempty"`
	Columns    []string           `json:"columns,omitempty"`
	// Watermark is what an incremental job did with its watermark; nil
	// for other jobs, and when the run stopped before reading the state.
	Watermark *WatermarkResult `json:"watermark,omitempty"`
	err       error
}

// Err is the error that failed the job, or nil.
func (r *JobResult) Err() error { return r.err }

// Published is the number of outputs (files and tables) the job published.
func (r *JobResult) Published() int {
	n := 0
	for _, s := range r.Sinks {
		n += s.Published
	}
	return n
}

// PartitionResult is what one partition did.
type PartitionResult struct {
	Key    string `json:"key"`
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
	Phase  string `json:"phase,omitempty"`
	Figures
	Duration time.Duration `json:"duration"`
	// Sinks are by index in the job's sinks.
	Sinks   []SinkResult `json:"sinks"`
	Notes   []string     `json:"-"`
	Columns []string     `json:"-"`
	err     error
	mark    *markTracker // the watermark column's maximum (incremental jobs)
}

// SinkResult is what one sink did: what it published, when it succeeded.
type SinkResult struct {
	sink.Result
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
	// Published counts the outputs published: the files of a file sink, 1
	// for a table.
	Published int `json:"published"`
	parts     int // partitions summed
}

// published makes the result of a committed sink.
func published(r sink.Result) SinkResult {
	n := len(r.Files)
	if n == 0 {
		n = 1 // a table
	}
	return SinkResult{Result: r, Status: Succeeded, Published: n}
}

// sinkRank orders the statuses of one sink in several partitions: the
// job's sink takes the highest.
var sinkRank = map[Status]int{Skipped: 1, NotRun: 2, Succeeded: 3, Interrupted: 4, Aborted: 5, Failed: 6}

// sumSinks adds one partition's sink results to the job's: a sink failed
// if it failed in any partition, else it was aborted if it was in any, else
// interrupted, else it succeeded if it did in any; a sink of partitions
// that were all skipped or not run is so. Where the partitions' locations
// differ, the location is the number of outputs.
func sumSinks(total, part []SinkResult) []SinkResult {
	for i, s := range part {
		if i >= len(total) {
			t := s
			t.Files = append([]sink.File(nil), s.Files...)
			t.parts = 1
			total = append(total, t)
			continue
		}
		t := &total[i]
		t.parts++
		t.Rows += s.Rows
		t.Bytes += s.Bytes
		t.Published += s.Published
		t.Files = append(t.Files, s.Files...)
		if t.Location != s.Location {
			t.Location = "(" + strconv.Itoa(max(len(t.Files), t.Published, t.parts)) + " outputs)"
		}
		if sinkRank[s.Status] > sinkRank[t.Status] {
			if s.Status == Failed {
				t.Error = s.Error
			}
			t.Status = s.Status
		}
	}
	return total
}
