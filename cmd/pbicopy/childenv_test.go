package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

// childEnv is the environment of a pbicopy child process (this test binary
// with PBICOPY_TEST_MAIN=1) against srv: the fake's certificate, written
// to dir/fake.pem, trusted; T_WS, T_DS, T_EP, T_AUTH, T_TENANT, T_CLIENT
// and T_SECRET for the ${...} of the job files; then extra.
func childEnv(t *testing.T, srv *fakepbi.Server, dir string, extra ...string) []string {
	t.Helper()
	certFile := filepath.Join(dir, "fake.pem")
	if err := os.WriteFile(certFile, srv.CertificatePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	o := srv.Options()
	env := append(os.Environ(), "PBICOPY_TEST_MAIN=1", "SSL_CERT_FILE="+certFile,
		"T_WS="+o.WorkspaceID, "T_DS="+o.DatasetID, "T_EP="+srv.URL(), "T_AUTH="+srv.AuthorityHost(),
		"T_TENANT="+o.TenantID, "T_CLIENT="+o.ClientID, "T_SECRET="+o.ClientSecret)
	return append(env, extra...)
}

// exitCode is the exit code of a child process whose Run returned err;
// failing to run it at all fails the test.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return 0
}
