package credential

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

// TestNewTakesTheCredentialFromTheEnvironment gets tokens from the fake
// Entra ID for auth blocks that name a service principal and leave its
// credential to the environment: AZURE_CLIENT_SECRET wins over
// PBI_CLIENT_SECRET, and an empty one does not count.
func TestNewTakesTheCredentialFromTheEnvironment(t *testing.T) {
	srv, err := fakepbi.Start(fakepbi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	o := srv.Options()
	auth := azure.AuthSpec{Tenant: o.TenantID, ClientID: o.ClientID, AuthorityHost: srv.AuthorityHost()}
	token := func(a azure.AuthSpec) error {
		cred, err := New(context.Background(), a, "", "source.powerbi.auth", srv.Client())
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azure.PowerBIScope}})
		return err
	}
	withMethod := auth
	withMethod.Method = azure.MethodClientSecret
	for _, c := range []struct {
		name          string
		azure, pbi    string
		auth          azure.AuthSpec
		ok            bool
		errorContains string
	}{
		{"AZURE_CLIENT_SECRET", o.ClientSecret, "", auth, true, ""},
		{"PBI_CLIENT_SECRET", "", o.ClientSecret, withMethod, true, ""},
		{"AZURE_CLIENT_SECRET first", o.ClientSecret, "wrong", auth, true, ""},
		{"AZURE_CLIENT_SECRET first, even wrong", "wrong", o.ClientSecret, withMethod, false, "AADSTS7000215: invalid client secret"},
		{"none", "", "", withMethod, false, "source.powerbi.auth.clientSecret: not given, and none of AZURE_CLIENT_SECRET, PBI_CLIENT_SECRET is set in the environment"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("AZURE_CLIENT_SECRET", c.azure)
			t.Setenv("PBI_CLIENT_SECRET", c.pbi)
			t.Setenv("AZURE_CLIENT_CERTIFICATE_PATH", "")
			err := token(c.auth)
			if c.ok && err != nil || !c.ok && (err == nil || !strings.Contains(err.Error(), c.errorContains)) {
				t.Errorf("token: %v", err)
			}
		})
	}
}

// TestNewTakesTheCertificateFromTheEnvironment signs in with the
// certificate file AZURE_CLIENT_CERTIFICATE_PATH names when no secret is
// given nor set.
func TestNewTakesTheCertificateFromTheEnvironment(t *testing.T) {
	var assertions atomic.Int32
	srv, err := fakepbi.Start(fakepbi.Options{ClientAssertionCheck: func(a string) error {
		assertions.Add(1)
		if strings.Count(a, ".") != 2 {
			return errors.New("not a JWT")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	o := srv.Options()
	t.Setenv("AZURE_CLIENT_SECRET", "")
	t.Setenv("PBI_CLIENT_SECRET", "")
	t.Setenv("AZURE_CLIENT_CERTIFICATE_PATH", writeCertificate(t))
	cred, err := New(context.Background(), azure.AuthSpec{Tenant: o.TenantID, ClientID: o.ClientID, AuthorityHost: srv.AuthorityHost()}, "", "storage.auth", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azure.PowerBIScope}}); err != nil || assertions.Load() != 1 {
		t.Errorf("token: %v, %d assertions", err, assertions.Load())
	}
}

// writeCertificate writes a self-signed certificate and its key as PEM.
func writeCertificate(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pbicopy-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	file := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
