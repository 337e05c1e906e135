package azure

import (
	"strings"
	"testing"
)

// TestAuthorityHostIsHTTPSOnly: tokens are requested only over https, on
// loopback too: azidentity refuses an http authority host whatever the
// host, so accepting one here would only move the failure to run time.
func TestAuthorityHostIsHTTPSOnly(t *testing.T) {
	base := AuthSpec{Tenant: "t", ClientID: "c", ClientSecret: "s"}
	for _, c := range []struct {
		host string
		ok   bool
	}{
		{"https://login.microsoftonline.com/", true},
		{"https://127.0.0.1:8443/", true},
		{"https://localhost:8443/", true},
		{"http://login.microsoftonline.com/", false},
		{"http://login.example.com/", false},
		{"http://127.0.0.1:8080/", false},
		{"http://localhost:8080/", false},
		{"login.microsoftonline.com", false},
	} {
		a := base
		a.AuthorityHost = c.host
		err := a.Validate("public")
		if (err == nil) != c.ok {
			t.Errorf("authorityHost %s: err = %v, want ok %v", c.host, err, c.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "authorityHost: ") {
			t.Errorf("authorityHost %s: %v does not name the field", c.host, err)
		}
	}
}
