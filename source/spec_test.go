package source

import (
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"
)

// validPowerBI is a Power BI block that passes Validate, for tests to
// change one field of.
func validPowerBI() PowerBISpec {
	return PowerBISpec{
		Workspace: "ws", Dataset: "ds", Query: "EVALUATE Sales",
		Auth: azure.AuthSpec{Tenant: "t", ClientID: "c", ClientSecret: "s"},
	}
}

func TestEndpointMustBeHTTPSOffLoopback(t *testing.T) {
	cases := []struct {
		endpoint string
		want     string // "" when valid
	}{
		{"https://api.powerbi.com", ""},
		{"https://127.0.0.1:8443", ""},
		{"http://127.0.0.1:8080", ""},
		{"http://[::1]:8080", ""},
		{"http://localhost:8080/", ""},
		{"http://api.powerbi.com", "clear text"},
		{"http://10.0.0.5:8080", "clear text"},
		{"http://localhost.example.com", "clear text"},
		{"ftp://api.powerbi.com", "not an https URL"},
		{"api.powerbi.com", "not an https URL"},
	}
	for _, c := range cases {
		p := validPowerBI()
		p.Endpoint = c.endpoint
		err := p.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("endpoint %s refused: %v", c.endpoint, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "endpoint: ")):
			t.Errorf("endpoint %s: err = %v, want endpoint: ...%s...", c.endpoint, err, c.want)
		}
	}
}

func TestTimeouts(t *testing.T) {
	idle, request := (*TimeoutsSpec)(nil).Durations()
	if idle != 60*time.Second || request != 10*time.Minute {
		t.Errorf("defaults %s %s, want 60s and 10m as the tags say", idle, request)
	}
	idle, request = (&TimeoutsSpec{Idle: "90s"}).Durations()
	if idle != 90*time.Second || request != 10*time.Minute {
		t.Errorf("idle given: %s %s", idle, request)
	}
	cases := []struct {
		t    TimeoutsSpec
		want string // "" when valid
	}{
		{TimeoutsSpec{}, ""},
		{TimeoutsSpec{Idle: "2m", Request: "1h30m"}, ""},
		{TimeoutsSpec{Idle: "1.5s", Request: "500ms"}, "idle: 1.5s is longer than request (500ms)"},
		{TimeoutsSpec{Idle: "20m"}, "idle: 20m0s is longer than request (10m0s)"},
		{TimeoutsSpec{Idle: "60"}, `timeouts: idle: "60" is not a duration such as 60s, 90s or 2m`},
		{TimeoutsSpec{Request: "one hour"}, `timeouts: request: "one hour" is not a duration such as 10m or 1h`},
		{TimeoutsSpec{Idle: "-5s"}, `timeouts: idle: "-5s" is not a duration`},
		{TimeoutsSpec{Idle: "0s"}, `timeouts: idle: "0s" is not a positive duration`},
		{TimeoutsSpec{Request: "9999999999h"}, `timeouts: request: "9999999999h" is not a positive duration`},
	}
	for _, c := range cases {
		p := validPowerBI()
		p.Timeouts = &c.t
		err := p.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v refused: %v", c.t, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: err = %v, want %q", c.t, err, c.want)
		}
	}
}

func TestQueryTimeoutSeconds(t *testing.T) {
	for text, want := range map[string]int{"": 0, "90s": 90, "1500ms": 2, "20m": 1200, "1ns": 1} {
		p := PowerBISpec{QueryTimeout: text}
		if got := p.QueryTimeoutSeconds(); got != want {
			t.Errorf("%q: %d seconds, want %d", text, got, want)
		}
	}
}

func TestAPIOptions(t *testing.T) {
	cases := []struct {
		name string
		set  func(p *PowerBISpec)
		want string // "" when valid
	}{
		{"default api", func(p *PowerBISpec) {}, ""},
		{"executeQueries", func(p *PowerBISpec) { p.API = APIExecuteQueries }, ""},
		{"executeDaxQueries", func(p *PowerBISpec) { p.API = APIExecuteDaxQueries }, ""},
		{"rowLimit with Arrow", func(p *PowerBISpec) { p.API, p.RowLimit = APIExecuteDaxQueries, 500 }, ""},
		{"unknown api", func(p *PowerBISpec) { p.API = "executeSQL" }, "api: "},
		{"rowLimit with JSON", func(p *PowerBISpec) { p.RowLimit = 500 }, "rowLimit: only used with api: executeDaxQueries"},
		{"rowLimit zero or less", func(p *PowerBISpec) { p.API, p.RowLimit = APIExecuteDaxQueries, -1 }, "rowLimit: "},
		{"queryTimeout with Arrow", func(p *PowerBISpec) { p.API, p.QueryTimeout = APIExecuteDaxQueries, "5m" }, ""},
		{"queryTimeout with JSON", func(p *PowerBISpec) { p.QueryTimeout = "5m" }, "queryTimeout: only used with api: executeDaxQueries"},
		{"queryTimeout not a duration", func(p *PowerBISpec) { p.API, p.QueryTimeout = APIExecuteDaxQueries, "5 minutes" }, "queryTimeout: "},
		{"queryTimeout zero", func(p *PowerBISpec) { p.API, p.QueryTimeout = APIExecuteDaxQueries, "0s" }, "queryTimeout: \"0s\" is not a positive duration"},
		{"queryTimeout past the request timeout", func(p *PowerBISpec) { p.API, p.QueryTimeout = APIExecuteDaxQueries, "11m" },
			"queryTimeout: 11m0s is longer than timeouts.request (10m0s)"},
		{"queryTimeout within a raised request timeout", func(p *PowerBISpec) {
			p.API, p.QueryTimeout, p.Timeouts = APIExecuteDaxQueries, "50m", &TimeoutsSpec{Request: "1h"}
		}, ""},
		{"paging with Arrow", func(p *PowerBISpec) {
			p.API, p.Query, p.Table, p.Paging = APIExecuteDaxQueries, "", "Sales", &PagingSpec{Key: "Sales[OrderID]"}
		}, "paging: not used with api: executeDaxQueries, which has no row or size cap"},
	}
	for _, c := range cases {
		p := validPowerBI()
		c.set(&p)
		err := p.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: err = %v, want ...%s...", c.name, err, c.want)
		}
	}
	if p := validPowerBI(); p.DaxQueries() {
		t.Error("the default api is executeDaxQueries, want executeQueries")
	}
}
