package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

// Runner runs jobs. Sources must be set; every other field may be left
// zero.
type Runner struct {
	Logger *slog.Logger
	// Sources opens the sources of the jobs: one *powerbi.Connector per
	// process, so that every request shares one rate limit.
	Sources source.Opener
	// Storage reaches Azure Blob Storage for blob outputs and state files;
	// nil reaches local paths only.
	Storage sink.Storage
	// Mem allocates Arrow buffers; nil means the Go allocator.
	Mem memory.Allocator
	// BatchRows is the number of rows per batch; 0 means mapping.DefaultBatchRows.
	BatchRows int
	// Params are the template values given with --param.
	Params map[string]string
	// From and To bound a backfill: one partition per step between them.
	From, To string
	// Concurrency is the number of partitions in flight; 0 means 1.
	Concurrency int
	// Resume skips the partitions the state file records as done.
	Resume bool
	// ResetWatermark makes an incremental job forget its stored watermark:
	// it reads from incremental.initial, and saves the new one.
	ResetWatermark bool
	// Shard runs only a deterministic share of the partitions.
	Shard Shard
	// Now resolves relative dates; nil means time.Now.
	Now func() time.Time
	// Progress, when not nil, is told of rows, bytes and pages as they
	// pass, for a progress display. It is called from several goroutines
	// when partitions run concurrently and must be quick.
	Progress func(ProgressEvent)

	// WrapSink, when not nil, wraps the i-th sink of a partition as it
	// opens; an error fails the opening. Tests inject failures with it
	// (internal/faults); the wrapper must keep the sink's contract.
	WrapSink func(i int, s sink.Sink) (sink.Sink, error)
}

// cutAttempts is how many times an unpaged partition is run when its
// response breaks off mid-stream (a paged one continues after its last
// complete row instead).
const cutAttempts = 3

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Runner) mem() memory.Allocator {
	if r.Mem == nil {
		return memory.DefaultAllocator
	}
	return r.Mem
}

// Run runs one job: every partition of it (one, unless the job is
// partitioned and a range was given), each publishing nothing unless its
// source ended cleanly, and then committing every sink in order.
func (r *Runner) Run(ctx context.Context, job *jobfile.Job) *JobResult {
	start := time.Now()
	res := &JobResult{Job: job.Name, File: job.File}
	log := r.logger().With("job", job.Name)
	r.progress(ProgressEvent{Kind: ProgressJobStart, Job: job.Name})
	err := r.run(ctx, job, res, log)
	if err == nil && ctx.Err() != nil {
		// The interruption came in the commit phase, which finished.
		err = &phaseError{phase: "commit", err: errors.New("interrupted during the commit phase, which finished first: every output of the job is published; it needs no re-run")}
	}
	r.progress(ProgressEvent{Kind: ProgressJobEnd, Job: job.Name})
	res.Duration = time.Since(start)
	res.err = err
	if err == nil {
		res.Status = Succeeded
		log.Info("job succeeded", "rows", res.Rows, "duration", res.Duration.Round(time.Millisecond))
		return res
	}
	res.Error = err.Error()
	if res.Phase == "" {
		res.Phase = phaseOf(err)
	}
	switch {
	case ctx.Err() != nil:
		res.Status = Interrupted
	case res.Status == "":
		res.Status = Failed
	}
	if len(res.Sinks) < len(job.Sinks) {
		// Stopped before its sinks: they are listed all the same.
		status := Aborted
		if res.Status == Interrupted {
			status = Interrupted
		}
		res.Sinks = append(res.Sinks, r.unreachedSinks(job, status)[len(res.Sinks):]...)
	}
	log.Error("job "+string(res.Status), "error", err, "phase", res.Phase, "published", res.Published(), "duration", res.Duration.Round(time.Millisecond))
	return res
}

// CheckArgs checks the runner's parameters, range, shard and resume
// settings against job, without running anything: the commands call it for
// every job before running any, so that bad usage runs nothing.
// A value a template needs and no --param or default gives is an error.
func (r *Runner) CheckArgs(job *jobfile.Job) error {
	parts, err := r.partitions(job)
	if err != nil || len(parts) == 0 {
		return err
	}
	// Every partition takes the same values but the partition
	// parameter's: rendering the first shows what is missing.
	if job.Source.PowerBI != nil {
		if _, err := job.RenderSource(parts[0].Params); err != nil {
			return err
		}
	}
	_, err = job.Targets(parts[0])
	return err
}

// UnusedParams lists the --param names that no job of jobs takes (see
// jobfile.Job.Takes): a mistyped name, or a value for another job.
func UnusedParams(jobs []*jobfile.Job, params map[string]string) []string {
	var unused []string
	for name := range params {
		if !slices.ContainsFunc(jobs, func(j *jobfile.Job) bool { return j.Takes(name) }) {
			unused = append(unused, name)
		}
	}
	slices.Sort(unused)
	return unused
}

// paramsFor are the --param values job takes: a run of several jobs gives
// each the values it declares or uses.
func (r *Runner) paramsFor(job *jobfile.Job) map[string]string {
	out := make(map[string]string, len(r.Params))
	for k, v := range r.Params {
		if job.Takes(k) {
			out[k] = v
		}
	}
	return out
}

func (r *Runner) partitions(job *jobfile.Job) ([]jobfile.Partition, error) {
	parts, err := job.Partitions(r.paramsFor(job), r.From, r.To, r.now())
	if err != nil {
		return nil, err
	}
	if r.Shard.N > 1 && job.Partition == nil {
		return nil, fmt.Errorf("--shard: job %s has no partitions to share out", job.Name)
	}
	if r.Resume && job.Partition == nil {
		return nil, fmt.Errorf("--resume: job %s has no partitions to resume", job.Name)
	}
	if r.ResetWatermark && job.Incremental == nil {
		return nil, fmt.Errorf("--reset-watermark: job %s is not incremental (it has no incremental block)", job.Name)
	}
	return r.Shard.Select(parts), nil
}

func (r *Runner) run(ctx context.Context, job *jobfile.Job, res *JobResult, log *slog.Logger) error {
	if r.Sources == nil {
		return errors.New("pipeline: the runner has no Sources")
	}
	parts, err := r.partitions(job)
	if err != nil {
		return err
	}
	jp, err := r.planJob(job)
	if err != nil {
		return &phaseError{phase: "plan", err: err}
	}
	if err := r.Sources.Prepare(ctx, job.Source, job.Name); err != nil {
		return &phaseError{phase: "refresh", err: err}
	}
	if job.Incremental != nil {
		return r.runIncremental(ctx, jp, parts[0], res, log)
	}
	var st *stateFile
	if job.Partition != nil {
		if st, err = r.openState(ctx, job, r.Shard, r.Resume); err != nil {
			return &phaseError{phase: "state", err: err}
		}
	}
	if len(parts) == 1 && job.Partition == nil {
		pr := r.runPartition(ctx, jp, parts[0], log)
		res.Figures, res.Sinks, res.Notes, res.Columns = pr.Figures, pr.Sinks, pr.Notes, pr.Columns
		if pr.err != nil {
			res.Status, res.Phase = pr.Status, pr.Phase
		}
		return pr.err
	}

	fps, err := checkPartitionOutputs(job, parts)
	if err != nil {
		return err
	}
	if !r.Resume {
		keys := make([]string, len(parts))
		for i, p := range parts {
			keys[i] = p.Key
		}
		if err := st.restart(ctx, keys); err != nil {
			return &phaseError{phase: "state", err: err}
		}
	}
	r.progress(ProgressEvent{Kind: ProgressJobStart, Job: job.Name, TotalPartitions: len(parts)})
	results := make([]*PartitionResult, len(parts))
	// stop closes at the first failure every partition would meet (the
	// token refused, the query invalid): the partitions not started then
	// are not run.
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	todo := make(chan int)
	var wg sync.WaitGroup
	workers := max(1, min(r.Concurrency, len(parts)))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range todo {
				if stopped() {
					continue
				}
				p := parts[i]
				fp := fps[i]
				if st.isDone(p.Key, fp) {
					results[i] = &PartitionResult{Key: p.Key, Status: Skipped, Sinks: unreached(job, p, Skipped)}
					r.progress(ProgressEvent{Kind: ProgressPartition, Job: job.Name})
					continue
				}
				plog := log.With("partition", p.Key)
				pr := r.runPartition(ctx, jp, p, plog)
				if pr.err == nil {
					// Recorded even when an interruption came during the
					// commits, which finished: the partition is done.
					sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CommitGrace)
					err := st.record(sctx, p.Key, fp, pr)
					cancel()
					if err != nil {
						err = notRecorded(job, p, err)
						pr.err, pr.Status, pr.Error, pr.Phase = err, Failed, err.Error(), "state"
						plog.Error("partition published, but not recorded in the state", "error", err)
					}
				}
				if pr.err != nil && source.Permanent(pr.err) {
					stopOnce.Do(func() { close(stop) })
				}
				results[i] = pr
				r.progress(ProgressEvent{Kind: ProgressPartition, Job: job.Name})
			}
		}()
	}
feed:
	for i := range parts {
		select {
		case todo <- i:
		case <-stop:
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(todo)
	wg.Wait()

	var failed []string
	var firstErr error
	var firstPhase string
	partial := false
	notRun := 0
	for i, pr := range results {
		switch {
		case pr != nil:
		case ctx.Err() != nil: // never started: interrupted
			pr = &PartitionResult{Key: parts[i].Key, Status: Interrupted, Error: "not run: interrupted", Sinks: unreached(job, parts[i], Interrupted)}
		default: // never started: an earlier partition's failure stopped the job
			pr = &PartitionResult{Key: parts[i].Key, Status: NotRun, Error: "not run: an earlier partition failed with an error every partition would meet", Sinks: unreached(job, parts[i], NotRun)}
			notRun++
		}
		results[i] = pr
		res.Partitions = append(res.Partitions, pr)
		res.Figures.add(pr.Figures)
		res.Sinks = sumSinks(res.Sinks, pr.Sinks)
		if res.Columns == nil {
			res.Columns = pr.Columns
		}
		res.Notes = append(res.Notes, pr.Notes...)
		if pr.Status == Failed || pr.Status == PartiallyPublished {
			partial = partial || pr.Status == PartiallyPublished
			failed = append(failed, pr.Key)
			if firstErr == nil {
				firstErr, firstPhase = fmt.Errorf("partition %s: %s", pr.Key, pr.Error), pr.Phase
			}
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if len(failed) > 0 {
		res.Phase = firstPhase
		if partial {
			res.Status = PartiallyPublished
		}
		if stopped() {
			// No --resume advice: it cannot cure this error; the error
			// says what can.
			return fmt.Errorf("%w; the job stopped there, as every partition would meet this error (%d of %d partitions not run)", firstErr, notRun, len(parts))
		}
		return fmt.Errorf("%d of %d partitions failed (%s); first: %w; re-run with --resume to retry only those", len(failed), len(parts), summarizeKeys(failed), firstErr)
	}
	return nil
}

// notRecorded is the error of a partition published but not recorded:
// --resume runs it again, which replaces its outputs, except for an append,
// which it would load a second time.
func notRecorded(job *jobfile.Job, p jobfile.Partition, err error) error {
	var again []string
	if sinks, rerr := renderPaths(job, p); rerr == nil {
		for _, s := range sinks {
			if s.target.Repeats() {
				again = append(again, s.target.Location())
			}
		}
	}
	if len(again) == 0 {
		return fmt.Errorf("published, but not recorded in the state: --resume will run it again, replacing its outputs: %w", err)
	}
	return fmt.Errorf("published, but not recorded in the state: a re-run would append its rows to %s a second time: delete them there first, or leave this partition out of the re-run: %w", strings.Join(again, ", "), err)
}

func summarizeKeys(keys []string) string {
	if len(keys) <= 5 {
		return strings.Join(keys, ", ")
	}
	return strings.Join(keys[:5], ", ") + fmt.Sprintf(", and %d more", len(keys)-5)
}

// runPartition runs one partition, running it again when an unpaged
// response breaks off mid-stream (nothing is published by a failed try).
func (r *Runner) runPartition(ctx context.Context, jp *jobPlan, part jobfile.Partition, log *slog.Logger) *PartitionResult {
	start := time.Now()
	pr := &PartitionResult{Key: part.Key}
	err := func() error {
		pp, err := r.planPartition(ctx, jp, part, log)
		if err != nil {
			return &phaseError{phase: "plan", err: err}
		}
		defer pp.release()
		for attempt := 1; ; attempt++ {
			pr.Sinks, pr.Notes, pr.Columns, pr.mark = nil, nil, nil, nil
			err = r.attempt(ctx, pp, pr, log)
			if err == nil || !source.Retryable(err) || attempt == cutAttempts || ctx.Err() != nil {
				return err
			}
			log.Warn("the response broke off; running the query again (nothing was published)", "attempt", attempt, "error", err)
			// The re-read is a retry of the query, not another page.
			pr.Retries++
			pr.BackedOff++
		}
	}()
	pr.Duration = time.Since(start)
	pr.err = err
	if err != nil {
		pr.Status, pr.Error, pr.Phase = Failed, err.Error(), phaseOf(err)
		var pe *partialError
		switch {
		case errors.As(err, &pe):
			pr.Status = PartiallyPublished
		case ctx.Err() != nil:
			pr.Status = Interrupted
			// What the interruption kept from publishing.
			for i := range pr.Sinks {
				if pr.Sinks[i].Status == Aborted {
					pr.Sinks[i].Status = Interrupted
				}
			}
		}
		if part.Key != "" {
			log.Error("partition "+string(pr.Status), "error", err, "phase", pr.Phase)
		}
	} else {
		pr.Status = Succeeded
		if part.Key != "" {
			log.Info("partition done", "rows", pr.Rows, "pages", pr.Pages, "duration", pr.Duration.Round(time.Millisecond))
		}
	}
	return pr
}

// jobPlan is what every partition of a job shares: its mapping.
type jobPlan struct {
	job     *jobfile.Job
	columns []mapping.Column // nil: infer
	unmap   mapping.Unmapped
	infer   sharedInference // the columns inferred, with columns nil
}

// partPlan is one partition with its templates rendered.
type partPlan struct {
	*jobPlan
	part  jobfile.Partition
	src   source.Source
	sinks []plannedSink
	// release ends the partition's part in the job's shared inference.
	release func()
	// label is the sensitivity label of the current attempt's data, from
	// the moment the source reads it.
	label atomic.Pointer[source.Label]
}

func (r *Runner) planJob(job *jobfile.Job) (*jobPlan, error) {
	jp := &jobPlan{job: job}
	if m := job.Mapping; m != nil {
		for _, c := range m.Columns {
			t, err := mapping.ParseType(c.Type)
			if err != nil {
				return nil, fmt.Errorf("mapping: %s: %w", c.From, err)
			}
			jp.columns = append(jp.columns, mapping.Column{From: c.From, To: c.To, Type: t})
		}
		if m.Unmapped == "ignore" {
			jp.unmap = mapping.UnmappedIgnore
		}
	}
	return jp, nil
}

// plannedSink is one sink of one partition.
type plannedSink struct {
	spec   sink.Spec
	target *sink.Target
}

// renderPaths places the sinks of one partition.
func renderPaths(job *jobfile.Job, part jobfile.Partition) ([]plannedSink, error) {
	targets, err := job.Targets(part)
	if err != nil {
		return nil, err
	}
	out := make([]plannedSink, len(targets))
	for i, t := range targets {
		out[i] = plannedSink{spec: job.Sinks[i], target: t}
	}
	return out, nil
}

// unreachedSinks are the sinks of a job that stopped before it reached
// them: the rendered locations of its partition, or the number of outputs
// of its partitions.
func (r *Runner) unreachedSinks(job *jobfile.Job, status Status) []SinkResult {
	parts, err := r.partitions(job)
	switch {
	case err == nil && len(parts) == 1:
		return unreached(job, parts[0], status)
	case err == nil && len(parts) > 1:
		out := unreached(job, parts[0], status)
		for i := range out {
			out[i].Location = "(" + strconv.Itoa(len(parts)) + " outputs)"
		}
		return out
	}
	out := make([]SinkResult, len(job.Sinks))
	for i, spec := range job.Sinks {
		out[i] = SinkResult{Result: sink.Result{Kind: spec.Kind(), Location: spec.Location()}, Status: status}
	}
	return out
}

// unreached are the sinks of a partition that did not run, with their
// rendered locations and status (skipped, not run, interrupted).
func unreached(job *jobfile.Job, part jobfile.Partition, status Status) []SinkResult {
	out := make([]SinkResult, len(job.Sinks))
	sinks, err := renderPaths(job, part)
	for i, spec := range job.Sinks {
		loc := spec.Location()
		if err == nil {
			loc = sinks[i].target.Location()
		}
		out[i] = SinkResult{Result: sink.Result{Kind: spec.Kind(), Location: loc}, Status: status}
	}
	return out
}

func (r *Runner) planPartition(ctx context.Context, jp *jobPlan, part jobfile.Partition, log *slog.Logger) (*partPlan, error) {
	pp := &partPlan{jobPlan: jp, part: part, release: func() {}}
	var err error
	if pp.sinks, err = renderPaths(jp.job, part); err != nil {
		return nil, err
	}
	req := source.Request{Job: jp.job.Name, Spec: jp.job.Source, Columns: jp.columns, Unmapped: jp.unmap, BatchRows: r.BatchRows, Mem: r.mem(), Log: log,
		OnLabel: func(l *source.Label) { pp.label.Store(l) }}
	if pb := jp.job.Source.PowerBI; pb != nil {
		if req.Query, err = jp.job.RenderSource(part.Params); err != nil {
			return nil, err
		}
	}
	if jp.columns == nil && jp.job.Partition != nil {
		if pp.release, err = jp.infer.claim(ctx, part.Key, &req); err != nil {
			return nil, err
		}
	}
	if pp.src, err = r.Sources.Open(ctx, req); err != nil {
		pp.release()
		return nil, err
	}
	return pp, nil
}

// DefaultMemoryLimit is the soft memory limit (debug.SetMemoryLimit) the
// commands set when GOMEMLIMIT is not: it keeps the garbage collector from
// letting the heap double between cycles. The live heap of a run is well
// under it; it is a target for the collector, not a cap.
const DefaultMemoryLimit = 100 << 20

// checkPartitionOutputs refuses partitions that would write the same file
// (each would replace the one before), and returns every partition's
// fingerprint.
func checkPartitionOutputs(job *jobfile.Job, parts []jobfile.Partition) ([]string, error) {
	fps := make([]string, len(parts))
	seen := map[string]string{}
	for i, p := range parts {
		fp, err := fingerprint(job, p)
		if err != nil {
			return nil, err
		}
		fps[i] = fp
		sinks, err := renderPaths(job, p)
		if err != nil {
			return nil, err
		}
		for _, s := range sinks {
			if s.spec.Path() == "" {
				continue
			}
			loc := s.target.Location()
			if prev, dup := seen[loc]; dup {
				return nil, fmt.Errorf("partitions %s and %s would both write %s: make the path name every partition, e.g. with {{ .%s }}", prev, p.Key, loc, job.Partition.Param)
			}
			seen[loc] = p.Key
		}
	}
	return fps, nil
}
