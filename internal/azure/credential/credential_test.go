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
	t.Setenv("AZURE_AUTHORITY_HOST", "https://login.example.test/")
	if got, _ := (Config{}).authorityHost(); got != "https://login.example.test/" {
		t.Errorf("AZURE_AUTHORITY_HOST not honoured: %s", got)
	}
	if got, _ := (Config{AuthorityHost: "https://job.example/"}).authorityHost(); got != "https://job.example/" {
		t.Errorf("the job's authority host must win: %s", got)
	}
}
