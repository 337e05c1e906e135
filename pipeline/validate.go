package pipeline

import (
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/sink"
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

	src := j.Source
	switch {
	case src.PowerBI != nil && src.File != "":
		d.errorf(line("source"), "source", "give either powerbi or file, not both")
	case src.PowerBI == nil && src.File == "":
		d.errorf(line("source"), "source", "required: powerbi (a query) or file (a saved response)")
	case src.PowerBI != nil:
		p, base := src.PowerBI, "source.powerbi"
		required(base+".workspace", p.Workspace, "the workspace (group) id")
		required(base+".dataset", p.Dataset, "the dataset id")
		switch {
		case p.Query != "" && p.Table != "":
			d.errorf(line(base+".table"), base+".table", "give either query or table (with paging), not both")
		case p.Table != "" && p.Paging == nil:
			d.errorf(line(base+".table"), base+".paging", "required with table: paging: { key: Table[Key] }")
		case p.Paging != nil && p.Table == "":
			d.errorf(line(base+".paging"), base+".table", "required with paging: the DAX table expression to page through, e.g. Sales")
		case p.Table == "":
			required(base+".query", p.Query, "a DAX query, e.g. EVALUATE Sales (or table and paging)")
		}
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
		if pg := p.Paging; pg != nil {
			pb := base + ".paging"
			if required(pb+".key", pg.Key, "the unique key column, e.g. Sales[OrderID]") && j.Mapping != nil {
				found := false
				for _, c := range j.Mapping.Columns {
					found = found || c.From == pg.Key
				}
				if !found {
					d.errorf(line(pb+".key"), pb+".key", "%q is not the from of any mapped column: map the key so every row's key can be read", pg.Key)
				}
			}
			if pg.PageRows != "" && pg.PageRows != "auto" {
				if n, err := strconv.Atoi(pg.PageRows); err != nil || n < 1 || n > maxPageRows {
					d.errorf(line(pb+".pageRows"), pb+".pageRows", "%q: write auto or a number from 1 to %d", pg.PageRows, maxPageRows)
				}
			}
		}
		if p.Endpoint != "" {
			if u, err := url.Parse(p.Endpoint); err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http" {
				d.errorf(line(base+".endpoint"), base+".endpoint", "%q is not an https URL, e.g. https://api.powerbi.com", p.Endpoint)
			}
		}
		if _, err := azure.LookupCloud(p.Cloud); err != nil {
			d.errorf(line(base+".cloud"), base+".cloud", "%v", err)
		}
		d.validateAuth(j, p.Auth, base+".auth", p.Cloud)
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

// validateAuth checks one auth block: a known method, and the fields that
// method needs and no others.
func (d *decoder) validateAuth(j *Job, a azure.AuthSpec, base, cloud string) {
	line := j.lines.lineOf
	if a.Method != "" && !slices.Contains(azure.Methods, a.Method) {
		d.errorf(line(base+".method"), base+".method", "%q is not a method: use one of %s", a.Method, strings.Join(azure.Methods, ", "))
		return
	}
	d.fieldErrors(j, base, reflect.TypeFor[azure.AuthSpec](), a.Validate(cloud))
	for _, f := range azure.SecretFields {
		if d.literal[base+"."+f] {
			d.warnf(line(base+"."+f), base+"."+f, "the secret is written in the job file: reference an environment variable instead, e.g. ${PBI_CLIENT_SECRET}, and rotate this secret")
		}
	}
}

// fieldErrors reports the errors of a section's Validate method: an error
// that starts with the name of one of the section's fields ("tenant: ...")
// is reported at that field, any other at the section.
func (d *decoder) fieldErrors(j *Job, base string, t reflect.Type, err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		errs = u.Unwrap()
	}
	names, _ := yamlFields(t)
	for _, e := range errs {
		path, msg := base, e.Error()
		if name, rest, ok := strings.Cut(msg, ": "); ok && slices.Contains(names, name) {
			path, msg = base+"."+name, rest
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
