package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
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
	// Shard runs only a deterministic share of the partitions.
	Shard Shard
	// Now resolves relative dates; nil means time.Now.
	Now func() time.Time
	// Progress, when not nil, is told of rows, bytes and pages as they
	// pass, for a progress display. It is called from several goroutines
	// when partitions run concurrently and must be quick.
	Progress func(ProgressEvent)
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

// Status is the outcome of a job or a partition.
type Status string

// Outcomes.
const (
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	Skipped   Status = "skipped"
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
	Figures
	Duration time.Duration `json:"duration"`
	// Sinks sums each sink over the partitions.
	Sinks []SinkResult `json:"sinks"`
	// Partitions lists every partition of a partitioned job, those skipped
	// by --resume included.
	Partitions []*PartitionResult `json:"partitions,omitempty"`
	Notes      []string           `json:"notes,omitempty"`
	Columns    []string           `json:"columns,omitempty"`
	err        error
}

// Err is the error that failed the job, or nil.
func (r *JobResult) Err() error { return r.err }

// PartitionResult is what one partition did.
type PartitionResult struct {
	Key    string `json:"key"`
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
	Figures
	Duration time.Duration `json:"duration"`
	Sinks    []SinkResult  `json:"sinks"`
	Notes    []string      `json:"-"`
	Columns  []string      `json:"-"`
	err      error
}

// SinkResult is what one sink published.
type SinkResult struct {
	sink.Result
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
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
	r.progress(ProgressEvent{Kind: ProgressJobEnd, Job: job.Name})
	res.Duration = time.Since(start)
	res.err = err
	if err != nil {
		res.Status, res.Error = Failed, err.Error()
		log.Error("job failed", "error", err, "duration", res.Duration.Round(time.Millisecond).String())
	} else {
		res.Status = Succeeded
		log.Info("job succeeded", "rows", res.Rows, "duration", res.Duration.Round(time.Millisecond).String())
	}
	return res
}

// CheckArgs checks the runner's parameters, range, shard and resume
// settings against job, without running anything: the commands call it for
// every job before running any, so that bad usage runs nothing.
func (r *Runner) CheckArgs(job *jobfile.Job) error {
	_, err := r.partitions(job)
	return err
}

func (r *Runner) partitions(job *jobfile.Job) ([]jobfile.Partition, error) {
	parts, err := job.Partitions(r.Params, r.From, r.To, r.now())
	if err != nil {
		return nil, err
	}
	if r.Shard.N > 1 && job.Partition == nil {
		return nil, fmt.Errorf("--shard: job %s has no partitions to share out", job.Name)
	}
	if r.Resume && job.Partition == nil {
		return nil, fmt.Errorf("--resume: job %s has no partitions to resume", job.Name)
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
		return err
	}
	if err := r.Sources.Prepare(ctx, job.Source, job.Name); err != nil {
		return err
	}
	var st *stateFile
	if job.Partition != nil {
		if st, err = r.openState(ctx, job, r.Shard, r.Resume); err != nil {
			return err
		}
	}
	if len(parts) == 1 && job.Partition == nil {
		pr := r.runPartition(ctx, jp, parts[0], log)
		res.Figures, res.Sinks, res.Notes, res.Columns = pr.Figures, pr.Sinks, pr.Notes, pr.Columns
		return pr.err
	}

	fps, err := checkPartitionOutputs(job, parts)
	if err != nil {
		return err
	}
	r.progress(ProgressEvent{Kind: ProgressJobStart, Job: job.Name, TotalPartitions: len(parts)})
	results := make([]*PartitionResult, len(parts))
	todo := make(chan int)
	var wg sync.WaitGroup
	workers := max(1, min(r.Concurrency, len(parts)))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range todo {
				p := parts[i]
				fp := fps[i]
				if st.isDone(p.Key, fp) {
					results[i] = &PartitionResult{Key: p.Key, Status: Skipped}
					r.progress(ProgressEvent{Kind: ProgressPartition, Job: job.Name})
					continue
				}
				plog := log.With("partition", p.Key)
				pr := r.runPartition(ctx, jp, p, plog)
				if pr.err == nil {
					if err := st.record(ctx, p.Key, fp, pr); err != nil {
						pr.err, pr.Status, pr.Error = err, Failed, err.Error()
					}
				}
				results[i] = pr
				r.progress(ProgressEvent{Kind: ProgressPartition, Job: job.Name})
			}
		}()
	}
	for i := range parts {
		if ctx.Err() != nil {
			break
		}
		todo <- i
	}
	close(todo)
	wg.Wait()

	var failed []string
	var firstErr error
	for i, pr := range results {
		if pr == nil { // never started: interrupted
			pr = &PartitionResult{Key: parts[i].Key, Status: Failed, Error: "not run: interrupted"}
			results[i] = pr
		}
		res.Partitions = append(res.Partitions, pr)
		res.Figures.add(pr.Figures)
		res.Sinks = sumSinks(res.Sinks, pr.Sinks)
		if res.Columns == nil {
			res.Columns = pr.Columns
		}
		res.Notes = append(res.Notes, pr.Notes...)
		if pr.Status == Failed {
			failed = append(failed, pr.Key)
			if firstErr == nil {
				firstErr = fmt.Errorf("partition %s: %s", pr.Key, pr.Error)
			}
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d partitions failed (%s); first: %w; re-run with --resume to retry only those", len(failed), len(parts), summarizeKeys(failed), firstErr)
	}
	return nil
}

func summarizeKeys(keys []string) string {
	if len(keys) <= 5 {
		return strings.Join(keys, ", ")
	}
	return strings.Join(keys[:5], ", ") + fmt.Sprintf(", and %d more", len(keys)-5)
}

// sumSinks adds one partition's sink results to the job's.
func sumSinks(total, part []SinkResult) []SinkResult {
	for i, s := range part {
		if i >= len(total) {
			t := s
			t.Files = append([]sink.File(nil), s.Files...)
			total = append(total, t)
			continue
		}
		t := &total[i]
		t.Rows += s.Rows
		t.Bytes += s.Bytes
		t.Files = append(t.Files, s.Files...)
		if t.Location != s.Location {
			t.Location = "(" + strconv.Itoa(len(t.Files)) + " outputs)"
		}
		if s.Status == Failed {
			t.Status, t.Error = Failed, s.Error
		}
	}
	return total
}

// runPartition runs one partition, running it again when an unpaged
// response breaks off mid-stream (nothing is published by a failed try).
func (r *Runner) runPartition(ctx context.Context, jp *jobPlan, part jobfile.Partition, log *slog.Logger) *PartitionResult {
	start := time.Now()
	pr := &PartitionResult{Key: part.Key}
	err := func() error {
		pp, err := r.planPartition(ctx, jp, part, log)
		if err != nil {
			return err
		}
		for attempt := 1; ; attempt++ {
			pr.Sinks, pr.Notes, pr.Columns = nil, nil, nil
			err = r.attempt(ctx, pp, pr, log)
			if err == nil || !source.Retryable(err) || attempt == cutAttempts || ctx.Err() != nil {
				return err
			}
			log.Warn("the response broke off; running the query again (nothing was published)", "attempt", attempt, "error", err)
		}
	}()
	pr.Duration = time.Since(start)
	pr.err = err
	if err != nil {
		pr.Status, pr.Error = Failed, err.Error()
		if part.Key != "" {
			log.Error("partition failed", "error", err)
		}
	} else {
		pr.Status = Succeeded
		if part.Key != "" {
			log.Info("partition done", "rows", pr.Rows, "pages", pr.Pages, "duration", pr.Duration.Round(time.Millisecond).String())
		}
	}
	return pr
}

// jobPlan is what every partition of a job shares: its mapping.
type jobPlan struct {
	job     *jobfile.Job
	columns []mapping.Column // nil: infer
	unmap   mapping.Unmapped
}

// partPlan is one partition with its templates rendered.
type partPlan struct {
	*jobPlan
	part  jobfile.Partition
	src   source.Source
	sinks []plannedSink
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

func (r *Runner) planPartition(ctx context.Context, jp *jobPlan, part jobfile.Partition, log *slog.Logger) (*partPlan, error) {
	pp := &partPlan{jobPlan: jp, part: part}
	var err error
	if pp.sinks, err = renderPaths(jp.job, part); err != nil {
		return nil, err
	}
	req := source.Request{Job: jp.job.Name, Spec: jp.job.Source, Columns: jp.columns, Unmapped: jp.unmap, BatchRows: r.BatchRows, Mem: r.mem(), Log: log}
	if pb := jp.job.Source.PowerBI; pb != nil {
		if req.Query, err = jp.job.RenderSource(part.Params); err != nil {
			return nil, err
		}
	}
	if pp.src, err = r.Sources.Open(ctx, req); err != nil {
		return nil, err
	}
	return pp, nil
}

// fanout hands every batch to every sink, each on its own goroutine, through
// small bounded channels: a slow sink slows the source instead of filling
// memory.
type fanout struct {
	sinks  []sink.Sink
	chans  []chan arrow.RecordBatch
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

const sinkQueue = 2

func newFanout(ctx context.Context, cancel context.CancelFunc, sinks []sink.Sink) *fanout {
	f := &fanout{sinks: sinks, cancel: cancel}
	for _, s := range sinks {
		ch := make(chan arrow.RecordBatch, sinkQueue)
		f.chans = append(f.chans, ch)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			var err error
			for rec := range ch {
				if err == nil {
					if err = s.Write(ctx, rec); err != nil {
						f.fail(err)
					}
				}
				rec.Release()
			}
		}()
	}
	return f
}

func (f *fanout) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	f.cancel()
}

func (f *fanout) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// emit takes over rec's reference.
func (f *fanout) emit(ctx context.Context, rec arrow.RecordBatch) error {
	defer rec.Release()
	for _, ch := range f.chans {
		rec.Retain()
		select {
		case ch <- rec:
		case <-ctx.Done():
			rec.Release()
			if err := f.failure(); err != nil {
				return err
			}
			return ctx.Err()
		}
	}
	return nil
}

// close ends the stream and waits for every sink to take what it was sent.
func (f *fanout) close() error {
	for _, ch := range f.chans {
		close(ch)
	}
	f.wg.Wait()
	return f.failure()
}

func (r *Runner) openSinks(ctx context.Context, p *partPlan, schema *arrow.Schema) ([]sink.Sink, error) {
	var opened []sink.Sink
	env := sink.Env{Storage: r.Storage, Mem: r.mem(), Log: r.logger().With("job", p.job.Name)}
	for i, ps := range p.sinks {
		s, err := ps.target.Open(ctx, schema, env)
		if err != nil {
			for _, o := range opened {
				_ = o.Abort(context.WithoutCancel(ctx))
			}
			return nil, fmt.Errorf("sinks[%d] (%s): %w", i, ps.spec.Kind(), err)
		}
		opened = append(opened, s)
	}
	return opened, nil
}

// attempt runs the source once into freshly opened sinks, and commits them
// only if the source ended cleanly.
func (r *Runner) attempt(parent context.Context, p *partPlan, res *PartitionResult, log *slog.Logger) (err error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	recv := &attemptReceiver{r: r, p: p, res: res, cancel: cancel}
	ctx = r.progressContext(ctx, p.job.Name)
	recv.ctx = ctx

	abort := func() {
		if recv.fo != nil {
			_ = recv.fo.close()
		}
		for _, s := range recv.sinks {
			if aerr := s.Abort(context.WithoutCancel(parent)); aerr != nil {
				log.Warn("abort sink", "error", aerr)
			}
		}
	}

	res.Attempts++
	st, err := p.src.Read(ctx, recv)
	rows, bytes := st.Rows, st.Bytes
	res.Stats.Add(st)
	res.Rows, res.Bytes = rows, bytes // the last attempt's, not the sum
	fo := recv.fo
	if fo != nil {
		if ferr := fo.failure(); ferr != nil {
			// A sink failed first; the source only saw the cancellation.
			err = ferr
		}
	}
	if err == nil && fo == nil {
		err = errors.New("the source announced no schema")
	}
	if err != nil {
		abort()
		return err
	}
	if err := fo.close(); err != nil {
		abort()
		return err
	}
	sinks := recv.sinks
	for i, s := range sinks {
		sr, err := s.Commit(parent)
		if err != nil {
			res.Sinks = append(res.Sinks, SinkResult{Result: sink.Result{Kind: p.sinks[i].spec.Kind(), Location: p.sinks[i].target.Location()}, Status: Failed, Error: err.Error()})
			for _, rest := range sinks[i+1:] {
				_ = rest.Abort(context.WithoutCancel(parent))
			}
			return fmt.Errorf("sinks[%d] (%s): commit: %w", i, p.sinks[i].spec.Kind(), err)
		}
		res.Sinks = append(res.Sinks, SinkResult{Result: sr, Status: Succeeded})
		log.Info("published", "sink", sr.Kind, "location", sr.Location, "rows", sr.Rows, "bytes", sr.Bytes)
	}
	return nil
}

// attemptReceiver takes what the source of one attempt reads: the schema
// opens the sinks, and every batch goes to all of them.
type attemptReceiver struct {
	r      *Runner
	p      *partPlan
	res    *PartitionResult
	ctx    context.Context
	cancel context.CancelFunc
	sinks  []sink.Sink
	fo     *fanout
}

func (a *attemptReceiver) Schema(schema *arrow.Schema, notes []string) error {
	if a.fo != nil {
		return errors.New("the source announced its schema twice")
	}
	s, err := a.r.openSinks(a.ctx, a.p, schema)
	if err != nil {
		return err
	}
	a.sinks = s
	a.fo = newFanout(a.ctx, a.cancel, s)
	a.res.Columns = nil
	for _, f := range schema.Fields() {
		a.res.Columns = append(a.res.Columns, f.Name+" "+mapping.TypeName(f.Type))
	}
	a.res.Notes = append(a.res.Notes, notes...)
	return nil
}

func (a *attemptReceiver) Batch(rec arrow.RecordBatch) error {
	if a.fo == nil {
		rec.Release()
		return errors.New("the source sent a batch before its schema")
	}
	a.r.progress(ProgressEvent{Kind: ProgressRows, Job: a.p.job.Name, Rows: rec.NumRows()})
	return a.fo.emit(a.ctx, rec)
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
