package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"text/template/parse"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/source"
)

// PowerBIClient returns a Power BI client for a source block, with the
// credential a job's run would build: the block's endpoint, or its cloud's.
func (r *Runner) PowerBIClient(ctx context.Context, pb *PowerBISpec) (*source.PowerBI, error) {
	cloud, err := azure.LookupCloud(pb.Cloud)
	if err != nil {
		return nil, fmt.Errorf("source.powerbi.cloud: %w", err)
	}
	cred, err := r.credential(ctx, pb.Auth, pb.Cloud, "source.powerbi.auth")
	if err != nil {
		return nil, err
	}
	return source.NewPowerBI(source.PowerBIConfig{
		Endpoint: cmp.Or(pb.Endpoint, cloud.PowerBI), Scope: cloud.PowerBIScope, Credential: cred,
		HTTPClient: r.HTTPClient, Logger: r.logger(), RetryDelay: r.RetryDelay,
	})
}

// TemplateParams lists the template values a job's query (or table) and
// output paths use ({{ .name }}), sorted, and those of them that neither
// r.Params nor a declared default gives.
func (r *Runner) TemplateParams(job *Job) (used, missing []string) {
	var texts []string
	if pb := job.Source.PowerBI; pb != nil {
		texts = append(texts, pb.Query, pb.Table)
	}
	for _, s := range job.Sinks {
		texts = append(texts, s.Path())
	}
	seen := map[string]bool{}
	for _, text := range texts {
		t, err := parseTemplate("t", text)
		if err != nil || t.Tree == nil {
			continue
		}
		walkTemplate(t.Root, func(name string) { seen[name] = true })
	}
	for name := range seen {
		used = append(used, name)
		if _, ok := r.Params[name]; !ok && job.Params[name].Default == "" {
			missing = append(missing, name)
		}
	}
	slices.Sort(used)
	slices.Sort(missing)
	return used, missing
}

// walkTemplate calls fn with the first field name of every .name reference
// under n.
func walkTemplate(n parse.Node, fn func(string)) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			walkTemplate(c, fn)
		}
	case *parse.ActionNode:
		walkTemplate(x.Pipe, fn)
	case *parse.PipeNode:
		if x == nil {
			return
		}
		for _, c := range x.Cmds {
			walkTemplate(c, fn)
		}
	case *parse.CommandNode:
		for _, a := range x.Args {
			walkTemplate(a, fn)
		}
	case *parse.FieldNode:
		if len(x.Ident) > 0 {
			fn(x.Ident[0])
		}
	case *parse.IfNode:
		walkTemplate(x.Pipe, fn)
		walkTemplate(x.List, fn)
		walkTemplate(x.ElseList, fn)
	case *parse.RangeNode:
		walkTemplate(x.Pipe, fn)
		walkTemplate(x.List, fn)
		walkTemplate(x.ElseList, fn)
	case *parse.WithNode:
		walkTemplate(x.Pipe, fn)
		walkTemplate(x.List, fn)
		walkTemplate(x.ElseList, fn)
	}
}

// Rendered is a job's source and output paths with its templates rendered
// for one partition: the first, or the one --param names.
type Rendered struct {
	// Query is the DAX query; for a paged job (source.powerbi.table), the
	// query of its table, unpaged. "" for a file source.
	Query string
	// Paths are by sink index: the absolute output path, "" for a sink
	// without one.
	Paths []string
	// Partition is the partition's key, "" for a job without partitions.
	Partition string

	sinks []plannedSink
}

// Render renders a job's query (or table) and output paths with r.Params
// and the declared defaults. With placeholders set, a value that neither
// gives is replaced by a placeholder of its type, so that the templates can
// be checked before the values are known; otherwise a missing value is an
// error naming the --param to give.
func (r *Runner) Render(job *Job, placeholders bool) (Rendered, error) {
	given := make(map[string]string, len(r.Params))
	for k, v := range r.Params {
		given[k] = v
	}
	if placeholders {
		_, missing := r.TemplateParams(job)
		if job.Partition != nil {
			if _, ok := given[job.Partition.Param]; !ok && job.Params[job.Partition.Param].Default == "" {
				missing = append(missing, job.Partition.Param)
			}
		}
		for _, m := range missing {
			if _, declared := job.Params[m]; len(job.Params) > 0 && !declared {
				continue // an undeclared name: rendering reports it
			}
			switch job.Params[m].Type {
			case ParamDate:
				given[m] = "2000-01-01"
			case ParamInt:
				given[m] = "0"
			default:
				given[m] = "PARAM-" + m
			}
		}
	}
	parts, err := job.Partitions(given, "", "", time.Now())
	if err != nil {
		return Rendered{}, err
	}
	part := parts[0]
	sinks, err := renderPaths(job, part)
	if err != nil {
		return Rendered{}, err
	}
	out := Rendered{Partition: part.Key, sinks: sinks}
	for _, s := range sinks {
		path := ""
		if s.spec.Path() != "" {
			path = s.target.Location()
		}
		out.Paths = append(out.Paths, path)
	}
	if pb := job.Source.PowerBI; pb != nil {
		text, err := renderSource(pb, part.Params)
		if err != nil {
			return Rendered{}, err
		}
		if pb.Table != "" {
			text = "EVALUATE " + text
		}
		out.Query = text
	}
	return out, nil
}

// errSampleFull stops a query once the sample has its rows.
var errSampleFull = errors.New("pipeline: sample complete")

// limitRows passes at most n rows to recv, then stops the response.
type limitRows struct {
	recv source.RowReceiver
	n    int64
	rows int64
}

func (l *limitRows) Field(key, value []byte) error { return l.recv.Field(key, value) }

func (l *limitRows) EndRow() error {
	if err := l.recv.EndRow(); err != nil {
		return err
	}
	if l.rows++; l.rows >= l.n {
		return errSampleFull
	}
	return nil
}

// Sample runs dax, rewritten by SampleQuery to return at most n rows, and
// passes at most n rows to recv (whatever the query's shape, and even when
// TOPN returns tied rows beyond n). It returns the query as sent, and the
// rows passed on.
func Sample(ctx context.Context, client *source.PowerBI, q source.Query, n int, recv source.RowReceiver) (string, source.QueryStats, error) {
	q.DAX, _ = SampleQuery(q.DAX, n)
	lr := &limitRows{recv: recv, n: int64(n)}
	qs, err := client.ExecuteQuery(ctx, q, lr)
	if errors.Is(err, errSampleFull) {
		err = nil
	}
	qs.Rows = lr.rows
	return q.DAX, qs, err
}

// InferSample samples at most n rows of a query and infers their columns
// as a job without a mapping would, with the notes to review.
func (r *Runner) InferSample(ctx context.Context, pb *PowerBISpec, dax string, n int) ([]mapping.InferredColumn, source.QueryStats, error) {
	client, err := r.PowerBIClient(ctx, pb)
	if err != nil {
		return nil, source.QueryStats{}, err
	}
	s := mapping.NewSampler()
	_, qs, err := Sample(ctx, client, source.Query{Workspace: pb.Workspace, Dataset: pb.Dataset, DAX: dax, ImpersonatedUser: pb.ImpersonatedUser}, n, s)
	if err != nil {
		return nil, qs, err
	}
	cols, err := s.Columns()
	return cols, qs, err
}

// QueryBatches runs dax and streams its result, typed by inference, as
// Arrow record batches: onSchema is told the columns before the first
// batch; emit takes over each batch (it must Release it).
func (r *Runner) QueryBatches(ctx context.Context, pb *PowerBISpec, dax string, onSchema mapping.SchemaFunc, emit func(arrow.RecordBatch) error) (source.QueryStats, error) {
	client, err := r.PowerBIClient(ctx, pb)
	if err != nil {
		return source.QueryStats{}, err
	}
	const job = "query"
	in := mapping.NewInferrer(r.mem(), r.BatchRows, onSchema, func(rec arrow.RecordBatch) error {
		r.progress(ProgressEvent{Kind: ProgressRows, Job: job, Rows: rec.NumRows()})
		return emit(rec)
	})
	defer in.Release()
	r.progress(ProgressEvent{Kind: ProgressJobStart, Job: job})
	ctx = r.progressContext(ctx, job)
	qs, err := client.ExecuteQuery(ctx, source.Query{Workspace: pb.Workspace, Dataset: pb.Dataset, DAX: dax, ImpersonatedUser: pb.ImpersonatedUser}, in)
	if err != nil {
		return qs, err
	}
	return qs, in.Finish()
}

// EscapeTemplate quotes text so that a query or path template renders it
// as it is.
func EscapeTemplate(text string) string {
	var b []byte
	for i := 0; i < len(text); i++ {
		if text[i] == '{' && i+1 < len(text) && text[i+1] == '{' {
			b = append(b, `{{"{{"}}`...)
			i++
			continue
		}
		b = append(b, text[i])
	}
	return string(b)
}
