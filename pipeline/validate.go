package pipeline

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/mapping"
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
		if _, err := source.LookupCloud(p.Cloud); err != nil {
			d.errorf(line(base+".cloud"), base+".cloud", "%v", err)
		}
		d.validateAuth(j, p.Auth, base+".auth", p.Cloud, required)
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
		n := 0
		for _, set := range []bool{s.Parquet != nil, s.CSV != nil, s.Postgres != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			d.errorf(line(p), p, "each sink holds exactly one of parquet, csv or postgres")
			continue
		}
		kp := p + "." + s.Kind()
		var err error
		var path string
		switch {
		case s.Parquet != nil:
			err, path = s.Parquet.Validate(), s.Parquet.Path
		case s.CSV != nil:
			err, path = s.CSV.Validate(), s.CSV.Path
		case s.Postgres != nil:
			err = s.Postgres.Validate()
		}
		if err != nil {
			d.errorf(line(kp), kp, "%v", err)
		}
		if s.Postgres != nil {
			continue
		}
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
func (d *decoder) validateAuth(j *Job, a AuthSpec, base, cloud string, required func(path, value, hint string) bool) {
	line := j.lines.lineOf
	secrets := 0
	for _, v := range []string{a.ClientSecret, a.ClientSecretFile, a.ClientSecretFrom} {
		if v != "" {
			secrets++
		}
	}
	method := a.Method
	switch {
	case method != "" && !slices.Contains(source.Methods, method):
		d.errorf(line(base+".method"), base+".method", "%q is not a method: use one of %s", method, strings.Join(source.Methods, ", "))
		return
	case method == "" && secrets > 0:
		method = source.MethodClientSecret
	case method == "" && a.Certificate != "":
		method = source.MethodClientCertificate
	case method == "":
		d.errorf(line(base), base, "required: a credential: clientSecret (or clientSecretFile, clientSecretFrom), certificate, or method: workloadIdentity, managedIdentity, azureCLI or default")
		return
	}
	unused := func(field, value string) {
		if value != "" {
			d.errorf(line(base+"."+field), base+"."+field, "not used by method %s: remove it, or set the method that uses it", method)
		}
	}
	switch method {
	case source.MethodClientSecret:
		required(base+".tenant", a.Tenant, "the Entra ID tenant id")
		required(base+".clientId", a.ClientID, "the app registration (client) id")
		if secrets == 0 {
			d.errorf(line(base), base+".clientSecret", "required: clientSecret, clientSecretFile or clientSecretFrom")
		} else if secrets > 1 {
			d.errorf(line(base), base, "give only one of clientSecret, clientSecretFile and clientSecretFrom")
		}
		unused("certificate", a.Certificate)
		unused("certificatePassword", a.CertificatePassword)
		unused("tokenFile", a.TokenFile)
	case source.MethodClientCertificate:
		required(base+".tenant", a.Tenant, "the Entra ID tenant id")
		required(base+".clientId", a.ClientID, "the app registration (client) id")
		required(base+".certificate", a.Certificate, "a PEM or PFX file with the certificate and its private key")
		unused("clientSecret", a.ClientSecret)
		unused("clientSecretFile", a.ClientSecretFile)
		unused("clientSecretFrom", a.ClientSecretFrom)
		unused("tokenFile", a.TokenFile)
	default:
		for _, f := range [][2]string{{"clientSecret", a.ClientSecret}, {"clientSecretFile", a.ClientSecretFile}, {"clientSecretFrom", a.ClientSecretFrom}, {"certificate", a.Certificate}, {"certificatePassword", a.CertificatePassword}} {
			unused(f[0], f[1])
		}
		if method != source.MethodWorkloadIdentity {
			unused("tokenFile", a.TokenFile)
		}
	}
	for _, f := range []string{"clientSecret", "certificatePassword"} {
		if d.literal[base+"."+f] {
			d.warnf(line(base+"."+f), base+"."+f, "the secret is written in the job file: reference an environment variable instead, e.g. ${PBI_CLIENT_SECRET}, and rotate this secret")
		}
	}
	if a.ClientSecretFrom != "" {
		c, _ := source.LookupCloud(cloud)
		if _, err := source.ParseSecretRef(a.ClientSecretFrom, c); err != nil {
			d.errorf(line(base+".clientSecretFrom"), base+".clientSecretFrom", "%v", err)
		}
	}
	if a.AuthorityHost != "" {
		if u, err := url.Parse(a.AuthorityHost); err != nil || u.Host == "" || u.Scheme != "https" {
			d.errorf(line(base+".authorityHost"), base+".authorityHost", "%q is not an https URL, e.g. https://login.microsoftonline.com/", a.AuthorityHost)
		}
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
		var path string
		switch {
		case s.Parquet != nil:
			path = s.Parquet.Path
		case s.CSV != nil:
			path = s.CSV.Path
		case s.Postgres != nil && s.Postgres.Mode == "replace":
			d.errorf(line(kp+".mode"), kp+".mode", "replace would make every partition replace the whole table: use replacePartition (with partitionColumn), merge or append")
		case s.Postgres != nil && (s.Postgres.Mode == "append" || s.Postgres.Mode == ""):
			d.warnf(line(kp), kp+".mode", "append is not idempotent: re-running a partition, or resuming after a commit that failed in another sink, appends its rows again; prefer replacePartition (with partitionColumn) or merge")
		}
		if path != "" && !strings.Contains(path, "."+pt.Param) {
			d.errorf(line(kp+".path"), kp+".path", "every partition would write the same file: put {{ .%s }} in the path", pt.Param)
		}
	}
}
