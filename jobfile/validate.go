package jobfile

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

var jobNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// validate checks what decoding cannot: required fields, allowed values,
// types, templates, and names that must be unique.
func (d *decoder) validate(j *Job) {
	line := j.lines.lineOf
	reported := map[string]bool{}
	for _, p := range d.problems {
		reported[p.Path] = true
	}
	d.reported = reported
	required := func(path, value, hint string) bool {
		if strings.TrimSpace(value) == "" {
			if reported[path] { // already reported as undecodable
				return false
			}
			d.errorf(line(path), path, "required: %s", hint)
			return false
		}
		return true
	}

	if required("name", j.Name, "a job name such as sales-daily") && (!jobNameRE.MatchString(j.Name) || len(j.Name) > 63) {
		d.errorf(line("name"), "name", "%q is not a valid job name: use lowercase letters, digits and -, starting with a letter or digit, at most 63 characters", j.Name)
	}

	d.fieldErrors(j, "source", reflect.TypeFor[source.Spec](), j.Source.Validate())
	if p := j.Source.PowerBI; p != nil && j.Source.File == "" {
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
			for _, c := range j.Mapping.Columns {
				found = found || c.From == pg.Key
			}
			if !found {
				d.errorf(line(base+".paging.key"), base+".paging.key", "%q is not the from of any mapped column: map the key so every row's key can be read", pg.Key)
			}
		}
		d.validateAuth(j, p.Auth, base+".auth")
	}

	if m := j.Mapping; m != nil {
		if len(m.Columns) == 0 && !reported["mapping.columns"] {
			d.errorf(line("mapping"), "mapping.columns", "required: list the columns, or omit mapping to infer them from the data")
		}
		switch m.Unmapped {
		case "", "error", "ignore":
		default:
			d.errorf(line("mapping.unmapped"), "mapping.unmapped", "%q is not allowed: use error or ignore", m.Unmapped)
		}
		tos, froms := map[string]string{}, map[string]string{}
		for i, c := range m.Columns {
			p := fmt.Sprintf("mapping.columns[%d]", i)
			if required(p+".from", c.From, "the row key, e.g. Sales[OrderID] or [Total]") {
				if prev, dup := froms[c.From]; dup {
					d.errorf(line(p+".from"), p+".from", "key %q is already mapped by %s", c.From, prev)
				}
				froms[c.From] = p
			}
			if required(p+".to", c.To, "the output column name") {
				if prev, dup := tos[strings.ToLower(c.To)]; dup {
					d.errorf(line(p+".to"), p+".to", "column name %q is already used by %s (names are compared without case)", c.To, prev)
				}
				tos[strings.ToLower(c.To)] = p
			}
			if required(p+".type", c.Type, "string, int64, float64, decimal(P,S), bool, date or timestamp") {
				if _, err := mapping.ParseType(c.Type); err != nil {
					d.errorf(line(p+".type"), p+".type", "%v", err)
				}
			}
		}
	}

	d.validateParams(j)

	if len(j.Sinks) == 0 {
		d.errorf(line("sinks"), "sinks", "required: at least one sink (parquet, csv or postgres)")
	}
	paths := map[string]string{}
	for i, s := range j.Sinks {
		p := fmt.Sprintf("sinks[%d]", i)
		if err := s.Validate(); err != nil {
			d.fieldErrors(j, p, reflect.TypeFor[sink.Spec](), err)
		}
		if _, file := s.Output(); !file || s.Kind() == "" {
			continue
		}
		kp := p + "." + s.Kind()
		path := s.Path()
		if required(kp+".path", path, "the output file, e.g. out/sales.parquet") {
			if _, err := parseTemplate("path", path); err != nil {
				d.errorf(line(kp+".path"), kp+".path", "%v", err)
			}
			if prev, dup := paths[path]; dup {
				d.errorf(line(kp+".path"), kp+".path", "%s already writes %q", prev, path)
			}
			paths[path] = kp
		}
	}
	d.validateStorage(j)
}

// validateAuth checks what the rules of an auth block (azure.AuthSpec's
// Validate, reported with the block that holds it) do not: a known method,
// and no secret written in the file.
func (d *decoder) validateAuth(j *Job, a azure.AuthSpec, base string) {
	line := j.lines.lineOf
	if a.Method != "" && !slices.Contains(azure.Methods, a.Method) {
		d.errorf(line(base+".method"), base+".method", "%q is not a method: use one of %s", a.Method, strings.Join(azure.Methods, ", "))
	}
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
			path, msg, ft = path+"."+name, rest, ft.Field(index[name]).Type
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
	for _, name := range sortedKeys(j.Params) {
		p, path := j.Params[name], "params."+name
		if !paramNameRE.MatchString(name) {
			d.errorf(line(path), path, "%q is not a valid parameter name: letters, digits and _, not starting with a digit", name)
		}
		switch p.Type {
		case ParamDate, ParamInt, ParamString:
		case "":
			d.errorf(line(path), path+".type", "required: date, int or string")
			continue
		default:
			d.errorf(line(path+".type"), path+".type", "%q is not a parameter type: use date, int or string", p.Type)
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
	param, ok := j.Params[pt.Param]
	switch {
	case pt.Param == "":
		d.errorf(line("partition"), "partition.param", "required: the date or int parameter to step through")
		return
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
