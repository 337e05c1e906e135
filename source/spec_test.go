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
