package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

// Check is the outcome of one online check of a job.
type Check = source.Check

// SinkCheckTimeout bounds the online check of one sink.
const SinkCheckTimeout = 30 * time.Second

// CheckOnline proves that job could run, without moving any data: it gets
// a token, runs the query sampled to one row (SampleQuery) and decodes that
// row with the job's mapping, and checks that each sink could be written
// (a probe file created and removed in the output folder; for PostgreSQL a
// transaction that checks the schema, the table and the role's privileges,
// then rolls back; for a blob, the container is reached with the
// credential and a block staged, never committed). The templates are rendered with r.Params and the
// declared defaults. Checks that depend on a failed one are left out.
func (r *Runner) CheckOnline(ctx context.Context, job *jobfile.Job) []Check {
	var checks []Check
	add := func(name string, err error, okMsg string) bool {
		c := Check{Name: name, OK: err == nil, Message: okMsg}
		if err != nil {
			c.Message = err.Error()
		}
		checks = append(checks, c)
		return err == nil
	}
	rendered, rerr := job.Render(r.paramsFor(job), false)
	if rerr != nil {
		add("params", rerr, "")
	}

	req := source.Request{Job: job.Name, Spec: job.Source, BatchRows: r.BatchRows, Mem: r.mem(), Log: r.logger()}
	if jp, err := r.planJob(job); err == nil {
		req.Columns, req.Unmapped = jp.columns, jp.unmap
	}
	if rerr == nil {
		req.Query = rendered.Source
	}
	checks = append(checks, r.Sources.Check(ctx, req)...)

	env := sink.Env{Storage: r.Storage, Mem: r.mem(), Log: r.logger()}
	for i, s := range job.Sinks {
		if rerr != nil || i >= len(rendered.Targets) {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, SinkCheckTimeout)
		msg, err := rendered.Targets[i].Probe(pctx, env)
		cancel()
		if err != nil && s.Path() != "" {
			err = fmt.Errorf("%w: fix sinks[%d].%s.path, or give the identity running pbicopy write access there", err, i, s.Kind())
		}
		add(fmt.Sprintf("sinks[%d] %s", i, s.Kind()), err, msg)
	}
	return checks
}
