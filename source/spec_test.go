package source

import (
	"strings"
	"testing"

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
