package credential

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/smallfile"
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

// TestNewBoundsFiles gives New secret and certificate files that are too
// large or not regular files: each is refused, naming the field.
func TestNewBoundsFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := azure.AuthSpec{Tenant: "t", ClientID: "c"}
	ok := base
	ok.ClientSecretFile = write("secret", 40)
	if _, err := New(context.Background(), ok, "", "source.powerbi.auth", nil); err != nil {
		t.Errorf("a secret file of 40 bytes: %v", err)
	}
	special := dir
	if _, err := os.Stat("/dev/zero"); err == nil {
		special = "/dev/zero"
	}
	for _, c := range []struct {
		auth azure.AuthSpec
		want string
	}{
		{azure.AuthSpec{ClientSecretFile: write("big-secret", smallfile.Secret+1)}, "source.powerbi.auth.clientSecretFile: read " + filepath.Join(dir, "big-secret") + ": the file holds more than the 16 KiB allowed"},
		{azure.AuthSpec{ClientSecretFile: special}, "source.powerbi.auth.clientSecretFile: read " + special + ": a "},
		{azure.AuthSpec{Certificate: write("big.pem", smallfile.Certificate+1)}, "source.powerbi.auth.certificate: read " + filepath.Join(dir, "big.pem") + ": the file holds more than the 1 MiB allowed"},
		{azure.AuthSpec{Certificate: special}, "source.powerbi.auth.certificate: read " + special + ": a "},
	} {
		a := c.auth
		a.Tenant, a.ClientID = base.Tenant, base.ClientID
		_, err := New(context.Background(), a, "", "source.powerbi.auth", nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "not a regular file") && !strings.Contains(err.Error(), "allowed") {
			t.Errorf("%+v: %v, want %q", c.auth, err, c.want)
		}
	}
}
