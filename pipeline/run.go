package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

// Runner runs jobs. The zero value is usable.
type Runner struct {
	Logger *slog.Logger
	// HTTPClient carries Power BI and Entra ID requests; nil means the
	// default. The demo and tests use it to trust the fake's certificate.
	HTTPClient *http.Client
	// Mem allocates Arrow buffers; nil means the Go allocator.
	Mem memory.Allocator
	// BatchRows is the number of rows per batch; 0 means mapping.DefaultBatchRows.
	BatchRows int
	// Params are the template values given with --param.
	Params map[string]string
	// Attempts is how many times a partition is run when the response
	// breaks off mid-stream; 0 means 3.
	Attempts int
	// RetryDelay is the Power BI client's first back-off; 0 means its default.
	RetryDelay time.Duration
}

// Status is the outcome of a job.
type Status string

// Job outcomes.
const (
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
)

// JobResult is what one run of one job did.
type JobResult struct {
	Job      string        `json:"job"`
	File     string        `json:"file,omitempty"`
	Status   Status        `json:"status"`
	Error    string        `json:"error,omitempty"`
	Rows     int64         `json:"rowsRead"`
	Bytes    int64         `json:"bytesRead"`
	Requests int           `json:"requests"`
	Retries  int           `json:"retries"`
	Throttle int           `json:"throttled"`
	Attempts int           `json:"attempts"`
	Duration time.Duration `json:"duration"`
	Sinks    []SinkResult  `json:"sinks"`
	Notes    []string      `json:"notes,omitempty"`
	Columns  []string      `json:"columns,omitempty"`
	err      error
}

// Err is the error that failed the job, or nil.
func (r *JobResult) Err() error { return r.err }

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

// Run runs one job: it never publishes anything unless the source ended
// cleanly, and then commits every sink in order.
func (r *Runner) Run(ctx context.Context, job *Job) *JobResult {
	start := time.Now()
	res := &JobResult{Job: job.Name, File: job.File}
	log := r.logger().With("job", job.Name)
	err := r.run(ctx, job, res, log)
	res.Duration = time.Since(start)
	res.err = err
	if err != nil {
		res.Status, res.Error = Failed, err.Error()
		log.Error("job failed", "error", err, "duration", res.Duration.Round(time.Millisecond))
	} else {
		res.Status = Succeeded
		log.Info("job succeeded", "rows", res.Rows, "duration", res.Duration.Round(time.Millisecond))
	}
	return res
}

func (r *Runner) run(ctx context.Context, job *Job, res *JobResult, log *slog.Logger) error {
	plan, err := r.plan(job)
	if err != nil {
		return err
	}
	attempts := r.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		res.Sinks, res.Notes, res.Columns = nil, nil, nil
		err = r.attempt(ctx, plan, res, log)
		if err == nil || !source.Retryable(err) || attempt == attempts || ctx.Err() != nil {
			return err
		}
		log.Warn("the response broke off; running the query again (nothing was published)", "attempt", attempt, "error", err)
	}
}

// plan is a job with its templates rendered and its source ready.
type plan struct {
	job     *Job
	read    func(ctx context.Context, recv source.RowReceiver) (source.QueryStats, error)
	columns []mapping.Column // nil: infer
	unmap   mapping.Unmapped
	sinks   []plannedSink
}

type plannedSink struct {
	spec SinkSpec
	path string // rendered, absolute (file sinks)
}

func (r *Runner) plan(job *Job) (*plan, error) {
	params := make(map[string]any, len(r.Params))
	for k, v := range r.Params {
		params[k] = v
	}
	p := &plan{job: job}
	if m := job.Mapping; m != nil {
		for _, c := range m.Columns {
			t, err := mapping.ParseType(c.Type)
			if err != nil {
				return nil, fmt.Errorf("mapping: %s: %w", c.From, err)
			}
			p.columns = append(p.columns, mapping.Column{From: c.From, To: c.To, Type: t})
		}
		if m.Unmapped == "ignore" {
			p.unmap = mapping.UnmappedIgnore
		}
	}
	for i, s := range job.Sinks {
		ps := plannedSink{spec: s}
		var tmpl string
		switch {
		case s.Parquet != nil:
			tmpl = s.Parquet.Path
		case s.CSV != nil:
			tmpl = s.CSV.Path
		}
		if tmpl != "" {
			t, err := parseTemplate("path", tmpl)
			if err != nil {
				return nil, fmt.Errorf("sinks[%d].%s.path: %w", i, s.Kind(), err)
			}
			rendered, err := render(t, params)
			if err != nil {
				return nil, fmt.Errorf("sinks[%d].%s.path: %w", i, s.Kind(), err)
			}
			if ps.path, err = filepath.Abs(rendered); err != nil {
				return nil, fmt.Errorf("sinks[%d].%s.path: %w", i, s.Kind(), err)
			}
		}
		p.sinks = append(p.sinks, ps)
	}
	switch src := job.Source; {
	case src.File != "":
		path, err := filepath.Abs(src.File)
		if err != nil {
			return nil, err
		}
		p.read = func(ctx context.Context, recv source.RowReceiver) (source.QueryStats, error) {
			ds, err := source.ReadFile(ctx, path, recv)
			return source.QueryStats{DecodeStats: ds}, err
		}
	case src.PowerBI != nil:
		pb := src.PowerBI
		t, err := parseTemplate("query", pb.Query)
		if err != nil {
			return nil, fmt.Errorf("source.powerbi.query: %w", err)
		}
		dax, err := render(t, params)
		if err != nil {
			return nil, fmt.Errorf("source.powerbi.query: %w", err)
		}
		cloud, err := source.LookupCloud(pb.Cloud)
		if err != nil {
			return nil, fmt.Errorf("source.powerbi.cloud: %w", err)
		}
		var client *source.PowerBI
		newClient := func(ctx context.Context) (*source.PowerBI, error) {
			if client != nil {
				return client, nil
			}
			cred, err := r.credential(ctx, pb.Auth, pb.Cloud, "source.powerbi.auth")
			if err != nil {
				return nil, err
			}
			client, err = source.NewPowerBI(source.PowerBIConfig{
				Endpoint: cmp.Or(pb.Endpoint, cloud.PowerBI), Scope: cloud.PowerBIScope, Credential: cred,
				HTTPClient: r.HTTPClient, Logger: r.logger(), RetryDelay: r.RetryDelay,
			})
			return client, err
		}
		q := source.Query{Workspace: pb.Workspace, Dataset: pb.Dataset, DAX: dax, ImpersonatedUser: pb.ImpersonatedUser}
		p.read = func(ctx context.Context, recv source.RowReceiver) (source.QueryStats, error) {
			c, err := newClient(ctx)
			if err != nil {
				return source.QueryStats{}, err
			}
			return c.ExecuteQuery(ctx, q, recv)
		}
	}
	return p, nil
}

// receiver is what the source feeds: a Builder, or an Inferrer.
type receiver interface {
	source.RowReceiver
	Release()
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

func (r *Runner) openSinks(ctx context.Context, p *plan, schema *arrow.Schema) ([]sink.Sink, error) {
	var opened []sink.Sink
	for i, ps := range p.sinks {
		s, err := r.openSink(ctx, ps, schema)
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

func (r *Runner) openSink(ctx context.Context, ps plannedSink, schema *arrow.Schema) (sink.Sink, error) {
	switch s := ps.spec; {
	case s.Postgres != nil:
		return sink.NewPostgres(ctx, schema, *s.Postgres)
	case s.Parquet != nil:
		dst, err := sink.OpenLocal(ps.path)
		if err != nil {
			return nil, err
		}
		out, err := sink.NewParquet(dst, schema, *s.Parquet, r.mem())
		if err != nil {
			_ = dst.Abort(ctx)
		}
		return out, err
	case s.CSV != nil:
		dst, err := sink.OpenLocal(ps.path)
		if err != nil {
			return nil, err
		}
		out, err := sink.NewCSV(dst, schema, *s.CSV)
		if err != nil {
			_ = dst.Abort(ctx)
		}
		return out, err
	}
	return nil, errors.New("no sink kind set")
}

// attempt runs the source once into freshly opened sinks, and commits them
// only if the source ended cleanly.
func (r *Runner) attempt(parent context.Context, p *plan, res *JobResult, log *slog.Logger) (err error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	var fo *fanout
	var sinks []sink.Sink
	open := func(cols []mapping.Column) error {
		s, err := r.openSinks(ctx, p, mapping.Schema(cols))
		if err != nil {
			return err
		}
		sinks = s
		fo = newFanout(ctx, cancel, sinks)
		res.Columns = nil
		for _, c := range cols {
			res.Columns = append(res.Columns, c.To+" "+c.Type.String())
		}
		return nil
	}
	emit := func(rec arrow.RecordBatch) error { return fo.emit(ctx, rec) }

	var recv receiver
	var finish func() error
	if p.columns != nil {
		if err := open(p.columns); err != nil {
			return err
		}
		b := mapping.NewBuilder(r.mem(), p.columns, p.unmap, r.BatchRows, emit)
		recv, finish = b, b.Flush
	} else {
		in := mapping.NewInferrer(r.mem(), r.BatchRows, func(cols []mapping.Column, notes []string) error {
			for _, n := range notes {
				log.Warn("inferred mapping: " + n)
			}
			res.Notes = append(res.Notes, notes...)
			return open(cols)
		}, emit)
		recv, finish = in, in.Finish
	}
	defer recv.Release()

	abort := func() {
		if fo != nil {
			_ = fo.close()
		}
		for _, s := range sinks {
			if aerr := s.Abort(context.WithoutCancel(parent)); aerr != nil {
				log.Warn("abort sink", "error", aerr)
			}
		}
	}

	qs, err := p.read(ctx, recv)
	res.Rows, res.Bytes = qs.Rows, qs.Bytes
	res.Requests += qs.Attempts
	res.Retries += max(qs.Attempts-1, 0)
	res.Throttle += qs.Throttled
	if err == nil {
		err = finish()
	}
	if fo != nil {
		if ferr := fo.failure(); ferr != nil {
			// A sink failed first; the source only saw the cancellation.
			err = ferr
		}
	}
	if err != nil {
		abort()
		return err
	}
	if err := fo.close(); err != nil {
		abort()
		return err
	}
	for i, s := range sinks {
		sr, err := s.Commit(parent)
		if err != nil {
			res.Sinks = append(res.Sinks, SinkResult{Result: sink.Result{Kind: p.sinks[i].spec.Kind(), Location: p.sinks[i].path}, Status: Failed, Error: err.Error()})
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

// DefaultMemoryLimit is the soft memory limit (debug.SetMemoryLimit) the
// commands set when GOMEMLIMIT is not: it keeps the garbage collector from
// letting the heap double between cycles. The live heap of a run is well
// under it; it is a target for the collector, not a cap.
const DefaultMemoryLimit = 100 << 20
