package source

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/spec"
)

// Spec is the source block of a job file: exactly one of its fields is set.
type Spec struct {
	PowerBI *PowerBISpec `yaml:"powerbi" doc:"Query a Power BI semantic model through the executeQueries (JSON) or executeDaxQueries (Apache Arrow) REST API."`
	File    string       `yaml:"file" doc:"Replay a saved executeQueries response (JSON) instead of calling Power BI."`
}

// PowerBISpec is a query against one Power BI dataset.
type PowerBISpec struct {
	Workspace        string         `yaml:"workspace" required:"the workspace (group) id, or me for My workspace" doc:"Workspace (group) id, or me for My workspace (the signed-in user's own, through the API paths without groups/{id}); service principals and managed identities have no My workspace."`
	Dataset          string         `yaml:"dataset" required:"the dataset id" doc:"Dataset (semantic model) id."`
	API              string         `yaml:"api" enum:"executeQueries,executeDaxQueries" default:"executeQueries" doc:"The REST API queried: executeQueries (JSON, any workspace, at most 100,000 rows / 1,000,000 values / 15 MB a query, types inferred or mapped) or executeDaxQueries (Apache Arrow with the model's exact types and no row or size cap; capacity workspaces only, and the tenant setting for XMLA endpoints must be on)."`
	RowLimit         int            `yaml:"rowLimit" min:"1" doc:"executeDaxQueries only: the most rows the service returns (sent as resultsetRowcountLimit); a cap, not a pager: rows past it are not returned."`
	QueryTimeout     string         `yaml:"queryTimeout" pattern:"^(([0-9]+[.]?[0-9]*|[.][0-9]+)(ns|us|µs|ms|s|m|h))+$" patternDoc:"a duration such as 90s or 20m" doc:"executeDaxQueries only: how long the service may run the query before it cancels it and answers with an error, sent as queryTimeout in whole seconds (rounded up); the service's own limit applies when it is not given. It must not be longer than timeouts.request, or pbicopy would give up first."`
	Query            string         `yaml:"query" doc:"DAX query; a Go template over the params, where every value goes through {{ dax .name }}."`
	Table            string         `yaml:"table" doc:"A DAX table expression to extract page by page, instead of query (needs paging)."`
	Paging           *PagingSpec    `yaml:"paging" doc:"Keyset paging over table, past the service's 100,000-row / 1,000,000-value / 15 MB limits."`
	Endpoint         string         `yaml:"endpoint" defaultDoc:"the cloud's (https://api.powerbi.com)" doc:"REST endpoint."`
	Cloud            string         `yaml:"cloud" enum:"@cloud" env:"true" default:"public" doc:"Sets the Entra ID authority, the Power BI endpoint and scope."`
	ImpersonatedUser string         `yaml:"impersonatedUser" doc:"UPN to impersonate (row-level security); not usable by service principals on RLS models."`
	RefreshBefore    bool           `yaml:"refreshBefore" doc:"Refresh the dataset and wait for the refresh to complete before extracting (up to 2 hours); a failed refresh fails the job before any data moves. Needs the Contributor role on the workspace."`
	Timeouts         *TimeoutsSpec  `yaml:"timeouts" doc:"How long to wait on a service that stops answering; a request that times out is read again, like a response that breaks off."`
	Auth             azure.AuthSpec `yaml:"auth" required:"a credential" doc:"Service principal credentials."`
	// SensitivityLabels says what to do with data the service sends with
	// a sensitivity label (informationProtectionLabel).
	SensitivityLabels string `yaml:"sensitivityLabels" enum:"allow,refuse" default:"allow" doc:"Data carrying a sensitivity label (Microsoft Purview, sent with the data): allow copies it and records the label in the log, the summary, Parquet metadata, blob metadata and split manifests; refuse fails the job before anything is published, for sinks that must not hold labelled data."`
}

// MyWorkspace reports whether the workspace is me: the signed-in user's
// My workspace.
func (p *PowerBISpec) MyWorkspace() bool { return p.Workspace == MyWorkspace }

// GroupID is the workspace id the REST paths take: "" for My workspace,
// whose paths have no groups/{id}.
func (p *PowerBISpec) GroupID() string {
	if p.MyWorkspace() {
		return ""
	}
	return p.Workspace
}

// MyWorkspace is the workspace value that names the signed-in user's own.
const MyWorkspace = "me"

// QueryTimeoutSeconds is queryTimeout in whole seconds, rounded up (0
// when not given). It expects p to have passed Validate.
func (p *PowerBISpec) QueryTimeoutSeconds() int {
	d, err := time.ParseDuration(p.QueryTimeout)
	if err != nil || d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// TimeoutsSpec bounds the waits on the Power BI service, so that a service
// that stops sending cannot hang a run.
type TimeoutsSpec struct {
	Idle    string `yaml:"idle" default:"60s" pattern:"^(([0-9]+[.]?[0-9]*|[.][0-9]+)(ns|us|µs|ms|s|m|h))+$" patternDoc:"a duration such as 60s, 90s or 2m" doc:"The longest wait for the next bytes of a response: its headers, or more of its body."`
	Request string `yaml:"request" default:"10m" pattern:"^(([0-9]+[.]?[0-9]*|[.][0-9]+)(ns|us|µs|ms|s|m|h))+$" patternDoc:"a duration such as 10m or 1h" doc:"The longest one request may take, from sending it to the end of its response (each retry has its own)."`
}

// Durations returns the idle and request timeouts of t, the defaults for
// those it leaves out (t may be nil). It expects t to have passed Validate.
func (t *TimeoutsSpec) Durations() (idle, request time.Duration) {
	var idleText, requestText string
	if t != nil {
		idleText, requestText = t.Idle, t.Request
	}
	idle, _ = time.ParseDuration(cmp.Or(idleText, spec.Default[TimeoutsSpec]("idle")))
	request, _ = time.ParseDuration(cmp.Or(requestText, spec.Default[TimeoutsSpec]("request")))
	return idle, request
}

// Validate checks the durations of t (relative to the timeouts block).
func (t *TimeoutsSpec) Validate() error {
	if err := spec.Check(t); err != nil {
		return err
	}
	var errs []error
	for _, f := range []struct{ name, text string }{{"idle", t.Idle}, {"request", t.Request}} {
		if f.text == "" {
			continue
		}
		if d, err := time.ParseDuration(f.text); err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration such as 60s or 10m", f.name, f.text))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if idle, request := t.Durations(); idle > request {
		return fmt.Errorf("idle: %s is longer than request (%s), so it could never apply: make it shorter", idle, request)
	}
	return nil
}

// PagingSpec is keyset paging on a unique, ordered key.
type PagingSpec struct {
	Key      string `yaml:"key" required:"the unique key column, e.g. Sales[OrderID]" doc:"The unique key column, as a DAX column reference such as Sales[OrderID]; rows come back ordered by it."`
	PageRows string `yaml:"pageRows" default:"auto" doc:"Rows per page: auto (as many as fit the service's limits, with margin) or a number."`
}

// Validate checks that s holds one source and that its fields agree (its
// query's template is checked apart). Each error starts with the path of
// the field it is about, relative to the block ("powerbi: dataset: ...").
func (s Spec) Validate() error {
	switch {
	case s.PowerBI != nil && s.File != "":
		return errors.New("give either powerbi or file, not both")
	case s.PowerBI == nil && s.File == "":
		return errors.New("required: powerbi (a query) or file (a saved response)")
	case s.PowerBI != nil:
		return prefixed("powerbi", s.PowerBI.Validate())
	}
	return nil
}

// Validate checks the fields of a Power BI source; see Spec.Validate.
func (p *PowerBISpec) Validate() error {
	errs := []error{spec.Check(p)}
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	required := func(field, value, hint string) {
		if strings.TrimSpace(value) == "" {
			fail(field, "required: %s", hint)
		}
	}
	switch {
	case p.Query != "" && p.Table != "":
		fail("table", "give either query or table (with paging), not both")
	case p.Table != "" && p.Paging == nil:
		fail("paging", "required with table: paging: { key: Table[Key] }")
	case p.Paging != nil && p.Table == "":
		fail("table", "required with paging: the DAX table expression to page through, e.g. Sales")
	case p.Table == "":
		required("query", p.Query, "a DAX query, e.g. EVALUATE Sales (or table and paging)")
	}
	if pg := p.Paging; pg != nil {
		errs = append(errs, prefixed("paging", spec.Check(pg)))
		if pg.PageRows != "" && pg.PageRows != "auto" {
			if n, err := strconv.Atoi(pg.PageRows); err != nil || n < 1 || n > MaxPageRows {
				fail("paging: pageRows", "%q: write auto or a number from 1 to %d", pg.PageRows, MaxPageRows)
			}
		}
	}
	if p.DaxQueries() {
		if p.Paging != nil {
			fail("paging", "not used with api: executeDaxQueries, which has no row or size cap: give the whole query in query (partitions still split it)")
		}
	} else {
		if p.RowLimit != 0 {
			fail("rowLimit", "only used with api: executeDaxQueries (executeQueries has no such option): remove it, or set api: executeDaxQueries")
		}
		if p.QueryTimeout != "" {
			fail("queryTimeout", "only used with api: executeDaxQueries (executeQueries has no such option): remove it, or set api: executeDaxQueries")
		}
	}
	if p.QueryTimeout != "" && p.DaxQueries() {
		if d, err := time.ParseDuration(p.QueryTimeout); err != nil || d <= 0 {
			fail("queryTimeout", "%q is not a positive duration such as 90s or 20m", p.QueryTimeout)
		} else if _, request := p.Timeouts.Durations(); d > request && (p.Timeouts == nil || p.Timeouts.Validate() == nil) {
			fail("queryTimeout", "%s is longer than timeouts.request (%s): pbicopy would give up on the request before the service gives up on the query; shorten it or raise timeouts.request", d, request)
		}
	}
	if p.Timeouts != nil {
		errs = append(errs, prefixed("timeouts", p.Timeouts.Validate()))
	}
	if p.MyWorkspace() {
		switch m := p.Auth.EffectiveMethod(); m {
		case azure.MethodClientSecret, azure.MethodClientCertificate, azure.MethodWorkloadIdentity, azure.MethodManagedIdentity:
			fail("workspace", "me (My workspace) belongs to a signed-in user, and auth method %s is an app identity, which has none: give the workspace id (a service principal's models live in a workspace it is a member of)", m)
		}
	}
	if p.Endpoint != "" {
		if err := CheckEndpoint(p.Endpoint); err != nil {
			fail("endpoint", "%v", err)
		}
	}
	if err := p.Auth.Validate(p.Cloud); err != nil {
		errs = append(errs, prefixed("auth", err))
	}
	return errors.Join(errs...)
}

// CheckEndpoint checks a Power BI REST endpoint: an https URL with a host.
// Every request carries a bearer token, which http would send in clear
// text: http is accepted only on loopback (a local fake or proxy), where
// the token never leaves the machine.
func CheckEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%q is not an https URL, e.g. https://api.powerbi.com", endpoint)
	case u.Scheme == "http" && !azure.IsLoopback(u.Hostname()):
		return fmt.Errorf("%q uses http, which would send the bearer token in clear text: use https (http is accepted on loopback only)", endpoint)
	}
	return nil
}

// prefixed puts "name: " before each of the errors joined in err.
func prefixed(name string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	var walk func(error)
	walk = func(e error) {
		if u, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range u.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, fmt.Errorf("%s: %w", name, e))
	}
	walk(err)
	return errors.Join(out...)
}

// API values of PowerBISpec.API.
const (
	APIExecuteQueries    = "executeQueries"
	APIExecuteDaxQueries = "executeDaxQueries"
)

// DaxQueries reports whether p queries the executeDaxQueries (Arrow) API.
func (p *PowerBISpec) DaxQueries() bool { return p.API == APIExecuteDaxQueries }

// Template names the field that holds the query template of p (query, or
// table for a paged source) and its text.
func (p *PowerBISpec) Template() (field, text string) {
	if p.Table != "" {
		return "table", p.Table
	}
	return "query", p.Query
}

// PageRows is the page size of a paged source whose mapping declares
// columns columns (0 when inferred): the pageRows it gives, else the
// largest that fits the service's limits.
func (pg *PagingSpec) firstPageRows(columns int) int {
	if n, err := strconv.Atoi(pg.PageRows); err == nil {
		return n
	}
	if columns == 0 {
		return FirstPageRows
	}
	return AutoPageRows(columns)
}

// FirstQuery is the first query a partition sends, its template rendered as
// rendered: the query itself, or the first page's query of a paged source
// whose mapping declares columns columns (0 when inferred).
func (p *PowerBISpec) FirstQuery(rendered string, columns int) string {
	if p.Paging == nil {
		return rendered
	}
	return FirstPageQuery(p.Paging.firstPageRows(columns), rendered, p.Paging.Key)
}
