package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/sink"
)

// IncrementalState is the state file of an incremental job: its watermark,
// the maximum of incremental.column over the rows of the last run that
// read any, saved once every sink of that run had committed.
type IncrementalState struct {
	Job    string `json:"job"`
	Param  string `json:"param"`
	Type   string `json:"type"` // date, datetime or int
	Column string `json:"column"`
	// Watermark is the value, as the parameter prints it (2024-03-01,
	// 2024-03-01T13:45:30Z, 1234); "" when --reset-watermark forgot it
	// and the run read nothing.
	Watermark string `json:"watermark,omitempty"`
	// RunID, UpdatedAt and Rows describe the run that saved it.
	RunID     string    `json:"runId"`
	UpdatedAt time.Time `json:"updatedAt"`
	Rows      int64     `json:"rows"`
}

// WatermarkResult is what an incremental run did with its watermark.
type WatermarkResult struct {
	Param  string `json:"param"`
	Column string `json:"column"`
	// State is where the watermark is kept.
	State string `json:"state"`
	// Old is the watermark stored before the run ("" for none).
	Old string `json:"old,omitempty"`
	// From is the value the query was rendered with: Old minus the
	// lookback, incremental.initial, or the --param value.
	From string `json:"from"`
	// Source says where From came from: "state", "initial" (no state
	// yet, or --reset-watermark) or "--param".
	Source string `json:"source"`
	// New is the watermark stored after the run: the maximum of the
	// column when the run read rows past Old, else Old. It is Old too
	// when the run failed.
	New string `json:"new,omitempty"`
	// Advanced says whether the run saved a new watermark.
	Advanced bool `json:"advanced"`
}

// watermarkStore is the state file of an incremental job, read with its
// version so that the new watermark is written only if no other run wrote
// one meanwhile.
type watermarkStore struct {
	v       sink.Versioned
	name    string
	loc     string
	version string            // "" when there is no state file
	state   *IncrementalState // nil when there is no state file
}

func (r *Runner) openWatermark(ctx context.Context, job *jobfile.Job) (*watermarkStore, error) {
	path, err := StatePath(job)
	if err != nil {
		return nil, err
	}
	folder, name, err := job.Resolver().StateFolder(ctx, r.Storage, path)
	if err != nil {
		return nil, err
	}
	v, ok := folder.(sink.Versioned)
	if !ok {
		return nil, fmt.Errorf("state %s: this storage cannot replace a file only if it is unchanged, which the watermark needs", folder.Location(name))
	}
	ws := &watermarkStore{v: v, name: name, loc: folder.Location(name)}
	data, version, err := v.ReadVersion(ctx, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ws, nil
	case err != nil:
		return nil, fmt.Errorf("read state %s: %w", ws.loc, err)
	}
	var st IncrementalState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state %s is damaged (%v): fix it, or run with --reset-watermark to start again from incremental.initial", ws.loc, err)
	}
	ws.version, ws.state = version, &st
	return ws, nil
}

// stored is the stored watermark as a value of the parameter's type, nil
// for none.
func (ws *watermarkStore) stored(job *jobfile.Job) (any, error) {
	if ws.state == nil || ws.state.Watermark == "" {
		return nil, nil
	}
	inc := job.Incremental
	typ := job.Params[inc.Param].Type
	if ws.state.Type != "" && ws.state.Type != typ {
		return nil, fmt.Errorf("state %s holds a %s watermark, and %s is now a %s: run once with --reset-watermark to start again (from incremental.initial, or with --param %s=VALUE from there)", ws.loc, ws.state.Type, inc.Param, typ, inc.Param)
	}
	v, err := jobfile.ParseParam(typ, ws.state.Watermark, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("state %s: watermark: %w: fix it, or run with --reset-watermark", ws.loc, err)
	}
	return v, nil
}

// write saves st if the state file is still as it was read.
func (ws *watermarkStore) write(ctx context.Context, st IncrementalState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := ws.v.WriteIfVersion(ctx, ws.name, append(data, '\n'), ws.version); err != nil {
		return err
	}
	return nil
}

// watermarkFrom works out the value an incremental run renders its
// templates with: the --param value, else the stored watermark minus the
// lookback, else incremental.initial (which part holds already); and the
// stored watermark (nil for none, or when reset).
func (r *Runner) watermarkFrom(job *jobfile.Job, ws *watermarkStore, part jobfile.Partition) (from, old any, wr *WatermarkResult, err error) {
	inc := job.Incremental
	typ := job.Params[inc.Param].Type
	wr = &WatermarkResult{Param: inc.Param, Column: inc.Column, State: ws.loc, Source: "initial"}
	if !r.ResetWatermark {
		if old, err = ws.stored(job); err != nil {
			return nil, nil, nil, err
		}
	}
	if ws.state != nil {
		wr.Old = ws.state.Watermark
	}
	from = part.Params[inc.Param]
	_, given := r.paramsFor(job)[inc.Param]
	switch {
	case given:
		wr.Source = "--param"
	case old != nil:
		lb, err := jobfile.ParseLookback(typ, inc.Lookback)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("incremental.lookback: %w", err)
		}
		from, wr.Source = lb.Before(old), "state"
	}
	wr.From = fmt.Sprint(from)
	return from, old, wr, nil
}

// runIncremental runs an incremental job: its one partition reads from
// the watermark, and once every sink has committed the maximum of the
// column becomes the new watermark, written only if no other run wrote
// the state meanwhile. A run that fails, is interrupted or is killed
// before that write leaves the watermark as it was: the next run reads the
// same window again.
func (r *Runner) runIncremental(ctx context.Context, jp *jobPlan, part jobfile.Partition, res *JobResult, log *slog.Logger) error {
	job := jp.job
	inc := job.Incremental
	typ := job.Params[inc.Param].Type
	ws, err := r.openWatermark(ctx, job)
	if err != nil {
		return &phaseError{phase: "state", err: err}
	}
	from, old, wr, err := r.watermarkFrom(job, ws, part)
	if err != nil {
		return &phaseError{phase: "state", err: err}
	}
	res.Watermark = wr
	wr.New = wr.Old
	switch {
	case r.ResetWatermark:
		log.Warn("--reset-watermark: the stored watermark is forgotten; reading from incremental.initial", "param", inc.Param, "forgotten", wr.Old, "from", wr.From, "state", ws.loc)
	case wr.Source == "--param":
		log.Warn("--param overrides the stored watermark for this run", "param", inc.Param, "from", wr.From, "stored", wr.Old, "state", ws.loc)
	default:
		log.Info("incremental: reading from the watermark", "param", inc.Param, "from", wr.From, "stored", wr.Old, "source", wr.Source, "state", ws.loc)
	}
	params := make(map[string]any, len(part.Params))
	for k, v := range part.Params {
		params[k] = v
	}
	params[inc.Param] = from
	part.Params = params

	pr := r.runPartition(ctx, jp, part, log)
	res.Figures, res.Sinks, res.Notes, res.Columns = pr.Figures, pr.Sinks, pr.Notes, pr.Columns
	if pr.err != nil {
		res.Status, res.Phase = pr.Status, pr.Phase
		log.Info("the watermark is kept: the next run reads this window again", "param", inc.Param, "watermark", wr.Old)
		return pr.err
	}
	next := old
	if pr.mark != nil {
		if v := pr.mark.value(typ); v != nil && (old == nil || compareMark(v, old) > 0) {
			next = v
		}
	}
	if next == old && !r.ResetWatermark {
		log.Info("no row past the watermark: it is kept", "param", inc.Param, "watermark", wr.Old, "rows", pr.Rows)
		return nil
	}
	st := IncrementalState{Job: job.Name, Param: inc.Param, Type: typ, Column: inc.Column,
		RunID: fmt.Sprint(part.Params[jobfile.RunIDParam]), UpdatedAt: time.Now().UTC(), Rows: pr.Rows}
	if next != nil {
		st.Watermark = fmt.Sprint(next)
	}
	// Saved even when an interruption came during the commits, which
	// finished: the window is published.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CommitGrace)
	err = ws.write(sctx, st)
	cancel()
	if err != nil {
		if errors.Is(err, sink.ErrChanged) {
			err = fmt.Errorf("every sink committed, but the watermark was not saved: the state %s changed since this run read it, so another run of job %s overlapped this one; the stored watermark stays the other run's, and the next run reads from it (merge makes the repeat harmless)", ws.loc, job.Name)
		} else {
			err = fmt.Errorf("every sink committed, but the watermark was not saved, so the next run reads this window again (merge makes the repeat harmless): %w", err)
		}
		res.Phase = "state"
		return &phaseError{phase: "state", err: err}
	}
	wr.New, wr.Advanced = st.Watermark, true
	log.Info("watermark saved", "param", inc.Param, "old", wr.Old, "new", wr.New, "state", ws.loc)
	return nil
}

// markTracker keeps the maximum of the watermark column over the batches
// an attempt reads.
type markTracker struct {
	col  int
	typ  arrow.DataType
	max  int64
	seen bool
}

// newMarkTracker finds the column in the schema the sinks receive (by
// name, else without case) and checks that its type can give a watermark
// of the parameter's type.
func newMarkTracker(schema *arrow.Schema, column, paramType string) (*markTracker, error) {
	idx := schema.FieldIndices(column)
	if len(idx) == 0 {
		for i, f := range schema.Fields() {
			if strings.EqualFold(f.Name, column) {
				idx = []int{i}
				break
			}
		}
	}
	if len(idx) == 0 {
		var names []string
		for _, f := range schema.Fields() {
			names = append(names, f.Name)
		}
		return nil, fmt.Errorf("incremental.column: the rows have no column %s (they have %s)", column, strings.Join(names, ", "))
	}
	f := schema.Field(idx[0])
	ok := false
	switch f.Type.ID() {
	case arrow.DATE32, arrow.TIMESTAMP:
		ok = paramType == jobfile.ParamDate || paramType == jobfile.ParamDateTime
	case arrow.INT64:
		ok = paramType == jobfile.ParamInt
	}
	if !ok {
		return nil, fmt.Errorf("incremental.column: %s is a %s column, which cannot give a %s watermark", f.Name, mapping.TypeName(f.Type), paramType)
	}
	return &markTracker{col: idx[0], typ: f.Type}, nil
}

// add takes the maximum of the column in rec (nulls are skipped).
func (m *markTracker) add(rec arrow.RecordBatch) {
	var vals []int64
	col := rec.Column(m.col)
	switch a := col.(type) {
	case *array.Int64:
		vals = a.Int64Values()
	case *array.Date32:
		for i, v := range a.Date32Values() {
			if a.IsValid(i) && (!m.seen || int64(v) > m.max) {
				m.max, m.seen = int64(v), true
			}
		}
		return
	case *array.Timestamp:
		for i, v := range a.TimestampValues() {
			if a.IsValid(i) && (!m.seen || int64(v) > m.max) {
				m.max, m.seen = int64(v), true
			}
		}
		return
	}
	for i, v := range vals {
		if col.IsValid(i) && (!m.seen || v > m.max) {
			m.max, m.seen = v, true
		}
	}
}

// value is the maximum as a value of the parameter's type, nil when no row
// had one. A timestamp is cut to the second for a datetime (DAX's DATETIME
// has no fraction) and to the day for a date: the rows of that second or
// day are read again by the next run, never skipped.
func (m *markTracker) value(paramType string) any {
	if m == nil || !m.seen {
		return nil
	}
	var t time.Time
	switch m.typ.ID() {
	case arrow.INT64:
		if m.max == math.MinInt64 {
			return int64(math.MinInt64 + 1)
		}
		return m.max
	case arrow.DATE32:
		t = arrow.Date32(m.max).ToTime()
	case arrow.TIMESTAMP:
		t = arrow.Timestamp(m.max).ToTime(m.typ.(*arrow.TimestampType).Unit)
	}
	t = t.UTC()
	if paramType == jobfile.ParamDate {
		y, mo, d := t.Date()
		return jobfile.Date{Time: time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)}
	}
	return jobfile.DateTime{Time: t.Truncate(time.Second)}
}

// compareMark compares two watermarks of one type.
func compareMark(a, b any) int {
	switch x := a.(type) {
	case int64:
		y := b.(int64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case jobfile.Date:
		return x.Compare(b.(jobfile.Date).Time)
	case jobfile.DateTime:
		return x.Compare(b.(jobfile.DateTime).Time)
	}
	return 0
}
