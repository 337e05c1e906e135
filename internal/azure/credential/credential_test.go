package credential

import (
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/internal/azure"
)

func TestConfig(t *testing.T) {
	if _, err := Build(Config{Tenant: "t", Method: azure.MethodClientSecret}, nil); err == nil || !strings.Contains(err.Error(), "missing clientId, clientSecret") {
		t.Errorf("missing fields: %v", err)
	}
	if _, err := Build(Config{Tenant: "t", ClientID: "c", ClientSecret: "s", AuthorityHost: "http://login.example/"}, nil); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("http authority: %v", err)
	}
	// Not on loopback either: azidentity refuses an http authority
	// whatever the host.
	if _, err := Build(Config{Tenant: "t", ClientID: "c", ClientSecret: "s", AuthorityHost: "http://127.0.0.1:8080/"}, nil); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("http loopback authority: %v", err)
	}
	t.Setenv("AZURE_AUTHORITY_HOST", "http://login.example.test/")
	if _, err := Build(Config{Tenant: "t", ClientID: "c", ClientSecret: "s"}, nil); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("http AZURE_AUTHORITY_HOST: %v", err)
	}
	if _, err := Build(Config{Tenant: "t", ClientID: "c", ClientSecret: "s", AuthorityHost: "https://127.0.0.1:8443/"}, nil); err != nil {
		t.Errorf("https loopback authority: %v", err)
	}
	t.Setenv("AZURE_AUTHORITY_HOST", "https://login.example.test/")
	if got, _ := (Config{}).authorityHost(); got != "https://login.example.test/" {
		t.Errorf("AZURE_AUTHORITY_HOST not honoured: %s", got)
	}
	if got, _ := (Config{AuthorityHost: "https://job.example/"}).authorityHost(); got != "https://job.example/" {
		t.Errorf("the job's authority host must win: %s", got)
	}
}
