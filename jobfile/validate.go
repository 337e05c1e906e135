package jobfile

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/spec"
	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

// validate checks what decoding cannot, section by section: the rules the
// fields' tags declare (package spec), each section's own rules (the
// Validate methods of its types), templates, and what ties sections
// together (names that must be unique, a paging key that must be mapped,
// partitions and output paths).
func (d *decoder) validate(j *Job) {
	if pb := j.Source.PowerBI; pb != nil {
		d.authFromEnv(j, &pb.Auth, "source.powerbi.auth")
	}
	if st := j.Storage; st != nil && st.Auth != nil {
		d.authFromEnv(j, st.Auth, "storage.auth")
	}
	d.reported = map[string]bool{}
	for _, p := range d.problems {
		if p.Path != "" {
			d.reported[p.Path] = true
		}
	}
	d.fieldErrors(j, "", reflect.TypeFor[Job](), spec.CheckOnly(j, "name"))
	d.validateSource(j)
	d.validateMapping(j)
	d.validateParams(j)
	d.validateIncremental(j)
	d.validateSinks(j)
	d.validateStorage(j)
}

// validateSource checks the source block: its rules, its query's template,
// and a paging key that the mapping must read.
func (d *decoder) validateSource(j *Job) {
	line := j.lines.lineOf
	d.fieldErrors(j, "source", reflect.TypeFor[source.Spec](), j.Source.Validate())
	p := j.Source.PowerBI
	if p == nil || j.Source.File != "" {
		return
	}
	base := "source.powerbi"
	for _, f := range []struct{ name, text string }{{"query", p.Query}, {"table", p.Table}} {
		if f.text == "" {
			continue
		}
		t, err := parseTemplate(f.name, f.text)
		if err == nil {
			err = checkQueryTemplate(t)
		}
		if err != nil {
			d.errorf(line(base+"."+f.name), base+"."+f.name, "%v", err)
		}
	}
	if pg := p.Paging; pg != nil && pg.Key != "" && j.Mapping != nil {
		found := false
		for i, c := range j.Mapping.Columns {
			// A from whose variable is unset might be the key.
			found = found || c.From == pg.Key || d.unset[fmt.Sprintf("mapping.columns[%d].from", i)]
		}
		if !found {
			d.errorf(line(base+".paging.key"), base+".paging.key", "%q is not the from of any mapped column: map the key so every row's key can be read", pg.Key)
		}
	}
	d.validateAuth(j, base+".auth")
}

// validateMapping checks the columns: their rules and types, and keys and
// names that must be unique.
func (d *decoder) validateMapping(j *Job) {
	m := j.Mapping
	if m == nil {
		return
	}
	line := j.lines.lineOf
	d.fieldErrors(j, "mapping", reflect.TypeFor[MappingSpec](), spec.Check(m))
	tos, froms := map[string]string{}, map[string]string{}
	for i, c := range m.Columns {
		p := fmt.Sprintf("mapping.columns[%d]", i)
		d.fieldErrors(j, p, reflect.TypeFor[ColumnSpec](), spec.CheckExcept(c, "type"))
		if c.From != "" {
			if prev, dup := froms[c.From]; dup {
				d.errorf(line(p+".from"), p+".from", "key %q is already mapped by %s", c.From, prev)
			}
			froms[c.From] = p
		}
		if c.To != "" {
			if prev, dup := tos[strings.ToLower(c.To)]; dup {
				d.errorf(line(p+".to"), p+".to", "column name %q is already used by %s (names are compared without case)", c.To, prev)
			}
			tos[strings.ToLower(c.To)] = p
		}
		switch _, err := mapping.ParseType(c.Type); {
		case strings.TrimSpace(c.Type) == "":
			d.fieldErrors(j, p, reflect.TypeFor[ColumnSpec](), spec.Check(c))
		case err != nil:
			d.errorf(line(p+".type"), p+".type", "%v", err)
		}
	}
}

// validateSinks checks each sink: its rules, and a file sink's path
// template, which no other sink may share.
func (d *decoder) validateSinks(j *Job) {
	line := j.lines.lineOf
	d.fieldErrors(j, "", reflect.TypeFor[Job](), spec.CheckOnly(j, "sinks"))
	paths := map[string]string{}
	for i, s := range j.Sinks {
		p := fmt.Sprintf("sinks[%d]", i)
		d.fieldErrors(j, p, reflect.TypeFor[sink.Spec](), s.Validate())
		if _, file := s.Output(); !file || s.Kind() == "" {
			continue
		}
		kp := p + "." + s.Kind()
		path := s.Path()
		if strings.TrimSpace(path) == "" {
			d.fieldErrors(j, p, reflect.TypeFor[sink.Spec](), fmt.Errorf("%s: path: required: the output file, e.g. out/sales.%s", s.Kind(), s.Kind()))
			continue
		}
		if _, err := parseTemplate("path", path); err != nil {
			d.errorf(line(kp+".path"), kp+".path", "%v", err)
		}
		if prev, dup := paths[path]; dup {
			d.errorf(line(kp+".path"), kp+".path", "%s already writes %q", prev, path)
		}
		paths[path] = kp
	}
}

// authFromEnv completes an auth block that leaves its credential to the
// environment (azure.AuthSpec.FromEnv) with the loader's LookupEnv. When
// none of the variables is set, the block is left for its rules to refuse,
// or, under SkipEnv, a note stands for the credential, which counts as
// given.
func (d *decoder) authFromEnv(j *Job, a *azure.AuthSpec, base string) {
	filled, env := a.FromEnv(d.lookup)
	switch {
	case env.Field == "":
	case env.Var != "":
		*a = filled
	case d.skipEnv:
		path := base + "." + env.Field
		d.add(SeverityNote, j.lines.lineOf(base), path, "not given, so it comes from the environment, where none of %s is set: the credential is not checked", strings.Join(env.Vars, ", "))
		d.unset[path] = true
		if env.Field == "certificate" {
			a.Certificate = "${" + env.Vars[0] + "}"
		} else {
			a.ClientSecret = "${" + env.Vars[0] + "}"
		}
	}
}

// validateAuth warns of a secret written in an auth block (its rules are
// checked with the block that holds it).
func (d *decoder) validateAuth(j *Job, base string) {
	line := j.lines.lineOf
	for _, f := range azure.SecretFields {
		if d.literal[base+"."+f] {
			d.warnf(line(base+"."+f), base+"."+f, "the secret is written in the job file: reference an environment variable instead, e.g. ${PBI_CLIENT_SECRET}, and rotate this secret")
		}
	}
}

// flatten lists the errors joined in err, at any depth.
func flatten(err error) []error {
	u, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range u.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

// fieldErrors reports the errors of a section's Validate method, each at
// the field it starts with: "tenant: required" from the auth block at base
// is reported at base.tenant, "powerbi: dataset: required" from the source
// block at source.powerbi.dataset. An error that names no field of the
// section is reported at the section.
func (d *decoder) fieldErrors(j *Job, base string, t reflect.Type, err error) {
	if err == nil {
		return
	}
	for _, e := range flatten(err) {
		path, msg := base, e.Error()
		for ft := t; ; {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			name, rest, ok := strings.Cut(msg, ": ")
			if !ok || ft.Kind() != reflect.Struct {
				break
			}
			names, index := yamlFields(ft)
			if !slices.Contains(names, name) {
				break
			}
			path, msg, ft = join(path, name), rest, ft.Field(index[name]).Type
		}
		if d.reported[path] {
			continue
		}
		d.errorf(j.lines.lineOf(path), path, "%s", msg)
	}
}

// validateParams checks params, partition and their use in output paths.
func (d *decoder) validateParams(j *Job) {
	line := j.lines.lineOf
	d.fieldErrors(j, "", reflect.TypeFor[Job](), spec.CheckOnly(j, "params"))
	for _, name := range sortedKeys(j.Params) {
		p, path := j.Params[name], "params."+name
		if name == RunIDParam {
			d.errorf(line(path), path, "%s is set by every run ({{ .%s }}, the UTC time it started): give the parameter another name", RunIDParam, RunIDParam)
			continue
		}
		if err := spec.Check(p); err != nil {
			d.fieldErrors(j, path, reflect.TypeFor[ParamSpec](), err)
			continue
		}
		if p.Default != "" {
			if _, err := parseParam(p.Type, p.Default, time.Now()); err != nil {
				d.errorf(line(path+".default"), path+".default", "%v", err)
			}
		}
	}
	pt := j.Partition
	if pt == nil {
		return
	}
	if err := spec.Check(pt); err != nil {
		d.fieldErrors(j, "partition", reflect.TypeFor[PartitionSpec](), err)
		return
	}
	param, ok := j.Params[pt.Param]
	switch {
	case !ok:
		d.errorf(line("partition.param"), "partition.param", "%q is not declared in params", pt.Param)
		return
	}
	if _, err := parseStep(param.Type, pt.Step); err != nil {
		d.errorf(line("partition.step"), "partition.step", "%v", err)
	}
	for i, s := range j.Sinks {
		kp := fmt.Sprintf("sinks[%d].%s", i, s.Kind())
		problem, warning := s.Partitioned()
		if problem != nil {
			field, msg, _ := strings.Cut(problem.Error(), ": ")
			d.errorf(line(kp+"."+field), kp+"."+field, "%s", msg)
		}
		if warning != nil {
			field, msg, _ := strings.Cut(warning.Error(), ": ")
			d.warnf(line(kp), kp+"."+field, "%s", msg)
		}
		if path := s.Path(); path != "" && !strings.Contains(path, "."+pt.Param) {
			d.errorf(line(kp+".path"), kp+".path", "every partition would write the same file: put {{ .%s }} in the path", pt.Param)
		}
	}
}

// validateIncremental checks the incremental block: its parameter, its
// values in that parameter's type, its column, a query that uses the
// watermark, and sinks that can take a window read again.
func (d *decoder) validateIncremental(j *Job) {
	inc := j.Incremental
	if inc == nil {
		return
	}
	line := j.lines.lineOf
	if j.Partition != nil {
		d.errorf(line("incremental"), "incremental", "incremental and partition are distinct modes and a job has one or the other: incremental reads from a stored watermark at every run, partition steps through --from/--to; make two jobs to have both")
	}
	if err := spec.Check(inc); err != nil {
		d.fieldErrors(j, "incremental", reflect.TypeFor[IncrementalSpec](), err)
		return
	}
	param, ok := j.Params[inc.Param]
	switch {
	case !ok:
		d.errorf(line("incremental.param"), "incremental.param", "%q is not declared in params: declare it with type date, datetime or int", inc.Param)
		return
	case param.Type != ParamDate && param.Type != ParamDateTime && param.Type != ParamInt:
		d.errorf(line("incremental.param"), "incremental.param", "%s is a %s parameter: a watermark is a date, datetime or int", inc.Param, cmpOr(param.Type, ParamString))
		return
	}
	if _, err := parseParam(param.Type, inc.Initial, time.Now()); err != nil {
		d.errorf(line("incremental.initial"), "incremental.initial", "%v", err)
	}
	lookback, err := ParseLookback(param.Type, inc.Lookback)
	if err != nil {
		d.errorf(line("incremental.lookback"), "incremental.lookback", "%v", err)
	}
	if m := j.Mapping; m != nil {
		var names []string
		found := false
		for i, c := range m.Columns {
			names = append(names, c.To)
			if !strings.EqualFold(c.To, inc.Column) && !d.unset[fmt.Sprintf("mapping.columns[%d].to", i)] {
				continue
			}
			found = true
			t, err := mapping.ParseType(c.Type)
			if err != nil || d.unset[fmt.Sprintf("mapping.columns[%d].type", i)] {
				break
			}
			if want := watermarkColumnTypes[param.Type]; !slices.Contains(want, t.String()) {
				d.errorf(line("incremental.column"), "incremental.column", "%s is a %s column, and the watermark is a %s (%s): map it as %s", c.To, t.String(), param.Type, inc.Param, strings.Join(want, " or "))
			}
			break
		}
		if !found {
			d.errorf(line("incremental.column"), "incremental.column", "%q is not an output column (the to of a mapped column): use one of %s", inc.Column, strings.Join(names, ", "))
		}
	}
	pb := j.Source.PowerBI
	if pb == nil || j.Source.File != "" {
		d.errorf(line("incremental"), "incremental", "an incremental job reads a powerbi source whose query filters on the watermark; a file source replays the same rows at every run")
	} else if field, text := pb.Template(); text != "" {
		if t, err := parseTemplate(field, text); err == nil && t.Tree != nil {
			uses := false
			walkTemplate(t.Root, func(name string) { uses = uses || name == inc.Param })
			if !uses {
				d.errorf(line("source.powerbi."+field), "source.powerbi."+field, "the watermark filters nothing: the incremental parameter %s is not used here; filter on it, e.g. FILTER(Sales, Sales[ModifiedOn] > {{ dax .%s }})", inc.Param, inc.Param)
			}
		}
	}
	if j.State == nil || j.State.Path == "" {
		hasFile := false
		for _, s := range j.Sinks {
			hasFile = hasFile || s.Path() != ""
		}
		if !hasFile {
			d.errorf(line("incremental"), "incremental", "the watermark is kept in a state file, and without a file sink it has no default place: set state.path (a local path or az://container/path)")
		}
	}
	for i, s := range j.Sinks {
		kp := fmt.Sprintf("sinks[%d].%s", i, s.Kind())
		problem, warning := s.Incremental(!lookback.IsZero())
		if problem != nil {
			field, msg, _ := strings.Cut(problem.Error(), ": ")
			d.errorf(line(kp+"."+field), kp+"."+field, "%s", msg)
		}
		if warning != nil {
			field, msg, _ := strings.Cut(warning.Error(), ": ")
			d.warnf(line(kp+"."+field), kp+"."+field, "%s", msg)
		}
		if path := s.Path(); path != "" && !strings.Contains(path, "."+RunIDParam) && !strings.Contains(path, "."+inc.Param) {
			d.warnf(line(kp+".path"), kp+".path", "every run replaces this file with that run's new rows only: put {{ .%s }} in the path to keep each run's, e.g. out/run={{ .%s }}/data.parquet", RunIDParam, RunIDParam)
		}
	}
}

// watermarkColumnTypes are the column types whose maximum can become the
// watermark of a parameter type.
var watermarkColumnTypes = map[string][]string{
	ParamDate:     {"date", "timestamp"},
	ParamDateTime: {"timestamp", "date"},
	ParamInt:      {"int64"},
}
