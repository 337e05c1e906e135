package pipeline

import (
	"slices"
	"text/template/parse"
	"time"
)

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

	source string // the rendered query template (the table of a paged job)
	sinks  []plannedSink
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
		out.source = text
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
