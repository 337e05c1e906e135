package pipeline

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/jobfile"
)

// authJob is a job whose auth block is given as YAML flow mapping text.
func (f *fixture) authJob(t *testing.T, auth string) *jobfile.Job {
	t.Helper()
	text := fmt.Sprintf(`name: auth-job
%ssinks:
  - csv: { path: %q }
`, fakeSource(queryLine("EVALUATE Sales"), auth), filepath.Join(f.dir, "out.csv"))
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("auth.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func (f *fixture) mustRun(t *testing.T, job *jobfile.Job) {
	t.Helper()
	res := f.runner(nil).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v\nlogs:\n%s", res.Err(), f.logs)
	}
	if res.Rows != fakepbi.DemoRows {
		t.Errorf("rows = %d", res.Rows)
	}
}

func TestAuthSecretFromFile(t *testing.T) {
	f := newFixture(t, fakepbi.Options{})
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.env["SECRET_FILE"] = file
	f.mustRun(t, f.authJob(t, `{ tenant: "${TENANT}", clientId: "${CLIENT}", clientSecretFile: "${SECRET_FILE}", authorityHost: "${AUTH}" }`))
}

func TestAuthSecretFromKeyVault(t *testing.T) {
	f := newFixture(t, fakepbi.Options{Secrets: map[string]string{"pbi-client-secret": testSecret}})
	// The vault is read with the ambient identity: here, the environment's.
	t.Setenv("AZURE_TENANT_ID", f.opts.TenantID)
	t.Setenv("AZURE_CLIENT_ID", f.opts.ClientID)
	t.Setenv("AZURE_CLIENT_SECRET", testSecret)
	f.env["VAULT_REF"] = f.srv.URL() + "/secrets/pbi-client-secret"
	f.mustRun(t, f.authJob(t, `{ tenant: "${TENANT}", clientId: "${CLIENT}", clientSecretFrom: "${VAULT_REF}", authorityHost: "${AUTH}" }`))

	f.env["VAULT_REF"] = f.srv.URL() + "/secrets/missing"
	res := f.runner(nil).Run(context.Background(), f.authJob(t, `{ tenant: "${TENANT}", clientId: "${CLIENT}", clientSecretFrom: "${VAULT_REF}", authorityHost: "${AUTH}" }`))
	if res.Err() == nil || !strings.Contains(res.Err().Error(), "SecretNotFound") || !strings.Contains(res.Err().Error(), "clientSecretFrom") {
		t.Errorf("missing secret: %v", res.Err())
	}
	if strings.Contains(res.Err().Error()+f.logs.String(), testSecret) {
		t.Error("the secret leaked")
	}
}

func TestAuthWorkloadIdentity(t *testing.T) {
	const k8sToken = "eyJhbGciOiJSUzI1NiJ9.k8s-service-account-token.signature"
	f := newFixture(t, fakepbi.Options{ClientAssertionCheck: func(a string) error {
		if a != k8sToken {
			return errors.New("not the federated token")
		}
		return nil
	}})
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte(k8sToken), 0o600); err != nil {
		t.Fatal(err)
	}
	// As the AKS workload identity webhook sets them.
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", file)
	t.Setenv("AZURE_TENANT_ID", f.opts.TenantID)
	t.Setenv("AZURE_CLIENT_ID", f.opts.ClientID)
	f.mustRun(t, f.authJob(t, `{ method: workloadIdentity, authorityHost: "${AUTH}" }`))
}

func TestAuthClientCertificate(t *testing.T) {
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
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	file := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(file, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	// Entra checks the assertion's signature against the registered
	// certificate's public key.
	verify := func(assertion string) error {
		parts := strings.Split(assertion, ".")
		if len(parts) != 3 {
			return errors.New("not a JWT")
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			return err
		}
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig) == nil ||
			rsa.VerifyPSS(&key.PublicKey, crypto.SHA256, sum[:], sig, nil) == nil {
			return nil
		}
		return errors.New("bad signature")
	}
	f := newFixture(t, fakepbi.Options{ClientAssertionCheck: verify})
	f.env["CERT"] = file
	f.mustRun(t, f.authJob(t, `{ tenant: "${TENANT}", clientId: "${CLIENT}", certificate: "${CERT}", authorityHost: "${AUTH}" }`))

	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	key = other // the registered certificate no longer matches the file
	res := f.runner(nil).Run(context.Background(), f.authJob(t, `{ tenant: "${TENANT}", clientId: "${CLIENT}", certificate: "${CERT}", authorityHost: "${AUTH}" }`))
	if res.Err() == nil || !strings.Contains(res.Err().Error(), "AADSTS700027") {
		t.Errorf("wrong certificate: %v", res.Err())
	}
}
