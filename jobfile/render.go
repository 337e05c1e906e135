package jobfile

import (
	"fmt"
	"slices"
	"strings"
	"text/template/parse"
	"time"

	"github.com/pbicopy/pbicopy/sink"
)

// TemplateParams lists the template values a job's query (or table) and
// output paths use ({{ .name }}), sorted, and those of them that neither
// given (the --param values) nor a declared default gives.
func (job *Job) TemplateParams(given map[string]string) (used, missing []string) {
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
	delete(seen, RunIDParam) // every run sets it
	for name := range seen {
		used = append(used, name)
		if job.Incremental != nil && name == job.Incremental.Param {
			continue // the watermark, or incremental.initial
		}
		if _, ok := given[name]; !ok && job.Params[name].Default == "" {
			missing = append(missing, name)
		}
	}
	slices.Sort(used)
	slices.Sort(missing)
	return used, missing
}

// Takes reports whether the job takes a --param name: it declares it, or,
// declaring no parameters, a template of its uses it.
func (job *Job) Takes(name string) bool {
	if len(job.Params) > 0 {
		_, ok := job.Params[name]
		return ok
	}
	used, _ := job.TemplateParams(nil)
	return slices.Contains(used, name)
}

// ParamNames are the --param names the job takes, sorted.
func (job *Job) ParamNames() []string {
	if len(job.Params) == 0 {
		used, _ := job.TemplateParams(nil)
		return used
	}
	names := make([]string, 0, len(job.Params))
	for name := range job.Params {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
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
	// Source is the rendered template of the source (the table of a paged
	// job, not wrapped in EVALUATE).
	Source string
	// Targets are the sinks placed for the partition, by sink index.
	Targets []*sink.Target
}

// Render renders a job's query (or table) and output paths with params
// (the --param values) and the declared defaults. With placeholders set, a value that neither
// gives is replaced by a placeholder of its type, so that the templates can
// be checked before the values are known; otherwise a missing value is an
// error naming the --param to give.
func (job *Job) Render(params map[string]string, placeholders bool) (Rendered, error) {
	given := make(map[string]string, len(params))
	for k, v := range params {
		given[k] = v
	}
	if placeholders {
		_, missing := job.TemplateParams(params)
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
			case ParamDateTime:
				given[m] = "2000-01-01T00:00:00Z"
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
	targets, err := job.Targets(part)
	if err != nil {
		return Rendered{}, err
	}
	out := Rendered{Partition: part.Key, Targets: targets}
	for i, t := range targets {
		path := ""
		if job.Sinks[i].Path() != "" {
			path = t.Location()
		}
		out.Paths = append(out.Paths, path)
	}
	if pb := job.Source.PowerBI; pb != nil {
		text, err := job.RenderSource(part.Params)
		if err != nil {
			return Rendered{}, err
		}
		out.Source = text
		if pb.Table != "" {
			text = "EVALUATE " + text
		}
		out.Query = text
	}
	return out, nil
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

// Resolver places the job's file outputs and state file: on the local disk,
// or in Azure Blob Storage as its storage block (or, for the credential, its
// Power BI source) says.
func (job *Job) Resolver() sink.Resolver {
	r := sink.Resolver{Job: job.Name, Storage: job.Storage}
	if pb := job.Source.PowerBI; pb != nil {
		r.Auth, r.Cloud = &pb.Auth, pb.Cloud
	}
	return r
}

// Targets places the sinks of one partition: their output paths rendered
// with its parameters, their destinations resolved.
func (job *Job) Targets(part Partition) ([]*sink.Target, error) {
	var out []*sink.Target
	res := job.Resolver()
	for i, s := range job.Sinks {
		var path string
		if tmpl := s.Path(); tmpl != "" {
			var err error
			if path, err = renderOutput(tmpl, part.Params); err != nil {
				return nil, fmt.Errorf("sinks[%d].%s.path: %w", i, s.Kind(), err)
			}
		}
		t, err := s.Target(res, path, part.Range)
		if err != nil {
			return nil, fmt.Errorf("sinks[%d].%s.path: %w", i, s.Kind(), err)
		}
		out = append(out, t)
	}
	return out, nil
}

// RenderSource renders the query of the job's Power BI source (for a paged
// job, the table expression) with params.
func (job *Job) RenderSource(params map[string]any) (string, error) {
	field, text := job.Source.PowerBI.Template()
	t, err := parseTemplate(field, text)
	if err != nil {
		return "", fmt.Errorf("source.powerbi.%s: %w", field, err)
	}
	out, err := render(t, params)
	if err != nil {
		return "", fmt.Errorf("source.powerbi.%s: %w", field, err)
	}
	return strings.TrimSpace(out), nil
}
