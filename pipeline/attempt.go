package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

// CommitGrace bounds the commit phase of a partition once it has started:
// an interruption (SIGINT, SIGTERM) that arrives during it lets it finish,
// within this time, so that the sinks end all committed or all left as
// they were, as far as one transaction per sink allows; the summary then
// lists what was published.
const CommitGrace = 2 * time.Minute

// phaseError is the failure of one phase of a partition.
type phaseError struct {
	phase string
	err   error
}

func (e *phaseError) Error() string { return e.err.Error() }
func (e *phaseError) Unwrap() error { return e.err }

// phaseOf names the phase an error of a partition failed in.
func phaseOf(err error) string {
	var pe *phaseError
	if errors.As(err, &pe) {
		return pe.phase
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "interrupted"
	}
	return "source"
}

func sinkName(i int, kind string) string { return fmt.Sprintf("sinks[%d] (%s)", i, kind) }

// fanout hands every batch to every sink, each on its own goroutine, through
// small bounded channels: a slow sink slows the source instead of filling
// memory.
type fanout struct {
	sinks     []sink.Sink
	kinds     []string
	chans     []chan arrow.RecordBatch
	wg        sync.WaitGroup
	mu        sync.Mutex
	err       error
	cancel    context.CancelFunc
	closeOnce sync.Once
}

const sinkQueue = 2

func newFanout(ctx context.Context, cancel context.CancelFunc, sinks []sink.Sink, kinds []string) *fanout {
	f := &fanout{sinks: sinks, kinds: kinds, cancel: cancel}
	for i, s := range sinks {
		ch := make(chan arrow.RecordBatch, sinkQueue)
		f.chans = append(f.chans, ch)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			var err error
			for rec := range ch {
				if err == nil {
					if err = s.Write(ctx, rec); err != nil {
						f.fail(&phaseError{phase: "write " + sinkName(i, kinds[i]), err: fmt.Errorf("%s: %w", sinkName(i, kinds[i]), err)})
					}
				}
				rec.Release()
			}
		}()
	}
	return f
}

// fail records the first failure of a sink and stops the source.
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

// emit hands rec to every sink; it takes over rec's reference.
func (f *fanout) emit(ctx context.Context, rec arrow.RecordBatch) error {
	defer rec.Release()
	if len(f.chans) > 1 {
		settleNullCounts(rec)
	}
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

// settleNullCounts computes the null count of every column of rec, here in
// one goroutine: arrow computes it lazily, on the first NullN, and writes it
// into the array, so that two sinks reading a shared slice (the Arrow
// source hands on zero-copy slices, whose count is unknown) would race.
func settleNullCounts(rec arrow.RecordBatch) {
	var settle func(a arrow.Array)
	settle = func(a arrow.Array) {
		a.NullN() // computes and stores the count in the array's data
		for _, cd := range a.Data().Children() {
			c := array.MakeFromData(cd)
			settle(c)
			c.Release()
		}
		if d, ok := a.(*array.Dictionary); ok {
			settle(d.Dictionary())
		}
	}
	for _, c := range rec.Columns() {
		settle(c)
	}
}

// close ends the stream and waits for every sink to take what it was sent;
// it returns the first failure of a sink. It may be called more than once.
func (f *fanout) close() error {
	f.closeOnce.Do(func() {
		for _, ch := range f.chans {
			close(ch)
		}
		f.wg.Wait()
	})
	return f.failure()
}

// openSinks opens every sink of a partition for batches of schema; when
// one fails, those opened are aborted.
func (r *Runner) openSinks(ctx context.Context, p *partPlan, schema *arrow.Schema, meta func() map[string]string) ([]sink.Sink, error) {
	var opened []sink.Sink
	env := sink.Env{Storage: r.Storage, Mem: r.mem(), Log: r.logger().With("job", p.job.Name), Metadata: meta}
	for i, ps := range p.sinks {
		s, err := ps.target.Open(ctx, schema, env)
		if err == nil && r.WrapSink != nil {
			var w sink.Sink
			if w, err = r.WrapSink(i, s); err != nil {
				_ = s.Abort(context.WithoutCancel(ctx))
			}
			s = w
		}
		if err != nil {
			for _, o := range opened {
				_ = o.Abort(context.WithoutCancel(ctx))
			}
			name := sinkName(i, ps.spec.Kind())
			return nil, &phaseError{phase: "open " + name, err: fmt.Errorf("%s: %w", name, err)}
		}
		opened = append(opened, s)
	}
	return opened, nil
}

// attempt runs the source once into freshly opened sinks, and commits them
// only if the source ended cleanly; otherwise every sink is aborted and
// nothing is published.
func (r *Runner) attempt(parent context.Context, p *partPlan, res *PartitionResult, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	recv := &attemptReceiver{r: r, p: p, res: res, cancel: cancel}
	rctx := r.progressContext(ctx, p.job.Name)
	recv.ctx = rctx

	res.Attempts++
	p.label.Store(nil)
	st, err := p.src.Read(rctx, recv)
	if st.Label != nil {
		p.label.Store(st.Label)
	}
	rows, bytes := st.Rows, st.Bytes
	res.Stats.Add(st)
	res.Rows, res.Bytes = rows, bytes // the last attempt's, not the sum

	if recv.fo != nil {
		// Wait for every sink to take what it was sent (or to fail) before
		// deciding: a failure of a sink is the cause, whatever the source
		// saw since (its cancellation).
		if ferr := recv.fo.close(); ferr != nil {
			err = ferr
		}
	}
	if err == nil && recv.fo == nil {
		err = errors.New("the source announced no schema")
	}
	if err != nil {
		for _, s := range recv.sinks {
			if aerr := s.Abort(context.WithoutCancel(parent)); aerr != nil {
				log.Warn("abort sink", "error", aerr)
			}
		}
		res.Sinks = unpublished(p)
		return err
	}
	res.mark = recv.mark
	return r.commit(parent, p, res, recv.sinks, log)
}

// commit commits the sinks of a partition, the riskiest first (see
// sink.Target.CommitRank). Once it has started it finishes, within
// CommitGrace, even when parent is cancelled. When a commit fails, the
// sinks after it are aborted; those before stay published, and the error
// says so.
func (r *Runner) commit(parent context.Context, p *partPlan, res *PartitionResult, sinks []sink.Sink, log *slog.Logger) error {
	order := make([]int, len(sinks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(p.sinks[a].target.CommitRank(), p.sinks[b].target.CommitRank())
	})
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), CommitGrace)
	defer cancel()
	stop := context.AfterFunc(parent, func() {
		log.Warn("interrupted during the commit phase: finishing it before stopping", "grace", CommitGrace)
	})
	defer stop()

	res.Sinks = unpublished(p)
	var committed []string
	for n, i := range order {
		sr, err := sinks[i].Commit(ctx)
		if err != nil {
			for _, j := range order[n+1:] {
				_ = sinks[j].Abort(ctx)
			}
			name := sinkName(i, p.sinks[i].spec.Kind())
			res.Sinks[i].Status, res.Sinks[i].Error = Failed, err.Error()
			err = fmt.Errorf("%s: commit: %w", name, err)
			if len(committed) > 0 {
				err = &partialError{committed: committed, err: err}
			}
			return &phaseError{phase: "commit " + name, err: err}
		}
		res.Sinks[i] = published(sr)
		committed = append(committed, sinkName(i, p.sinks[i].spec.Kind())+" "+sr.Location)
		log.Info("published", "sink", sr.Kind, "location", sr.Location, "rows", sr.Rows, "bytes", sr.Bytes)
	}
	return nil
}

// partialError is a commit that failed after others had published.
type partialError struct {
	committed []string
	err       error
}

func (e *partialError) Error() string {
	return fmt.Sprintf("%v; already published, and left so: %s", e.err, strings.Join(e.committed, ", "))
}

func (e *partialError) Unwrap() error { return e.err }

// unpublished are the results of a partition's sinks before any commit:
// each aborted, at its location.
func unpublished(p *partPlan) []SinkResult {
	out := make([]SinkResult, len(p.sinks))
	for i, ps := range p.sinks {
		out[i] = SinkResult{Result: sink.Result{Kind: ps.spec.Kind(), Location: ps.target.Location()}, Status: Aborted}
	}
	return out
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
	mark   *markTracker // incremental jobs: the watermark column's maximum
}

// metadata is what the sinks record with the data (sink.Env.Metadata): its
// sensitivity label, once the source has read it.
func (a *attemptReceiver) metadata() map[string]string {
	l := a.p.label.Load()
	if l == nil {
		return nil
	}
	return map[string]string{"sensitivity_label_id": l.ID, "sensitivity_label_name": l.Name}
}

func (a *attemptReceiver) Schema(schema *arrow.Schema, notes []string) error {
	if a.fo != nil {
		return errors.New("the source announced its schema twice")
	}
	if inc := a.p.job.Incremental; inc != nil {
		m, err := newMarkTracker(schema, inc.Column, a.p.job.Params[inc.Param].Type)
		if err != nil {
			return &phaseError{phase: "plan", err: err}
		}
		a.mark = m
	}
	s, err := a.r.openSinks(a.ctx, a.p, schema, a.metadata)
	if err != nil {
		return err
	}
	kinds := make([]string, len(a.p.sinks))
	for i, ps := range a.p.sinks {
		kinds[i] = ps.spec.Kind()
	}
	a.sinks = s
	a.fo = newFanout(a.ctx, a.cancel, s, kinds)
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
	if a.mark != nil {
		a.mark.add(rec)
	}
	return a.fo.emit(a.ctx, rec)
}

var _ source.Receiver = (*attemptReceiver)(nil)
