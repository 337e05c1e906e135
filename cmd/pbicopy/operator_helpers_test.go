package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// fakeEnv starts a fake Power BI with opts, exports the T_* variables the
// job files of these tests reference (as fakeJobs does), and returns the
// server and a folder for the test's files.
func fakeEnv(t *testing.T, opts fakepbi.Options) (*fakepbi.Server, string) {
	t.Helper()
	srv, err := fakepbi.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	o := srv.Options()
	for k, v := range map[string]string{
		"T_WS": o.WorkspaceID, "T_DS": o.DatasetID, "T_EP": srv.URL(), "T_AUTH": srv.AuthorityHost(),
		"T_TENANT": o.TenantID, "T_CLIENT": o.ClientID, "T_SECRET": o.ClientSecret,
	} {
		t.Setenv(k, v)
	}
	testClient = srv.Client()
	t.Cleanup(func() { testClient = nil })
	return srv, t.TempDir()
}

// runApp runs the command under ctx, with refresh polls a millisecond
// apart.
func runApp(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, httpClient: testClient, pollInterval: time.Millisecond}
	code = a.run(ctx, args)
	return code, out.String(), errb.String()
}

// adhocFlags are the dataset and credential flags that reach the fake; the
// secret comes from PBI_CLIENT_SECRET (AZURE_CLIENT_SECRET, read first, is
// emptied).
func adhocFlags(t *testing.T, srv *fakepbi.Server) []string {
	t.Helper()
	o := srv.Options()
	t.Setenv("AZURE_CLIENT_SECRET", "")
	t.Setenv("PBI_CLIENT_SECRET", o.ClientSecret)
	return []string{"--workspace", o.WorkspaceID, "--dataset", o.DatasetID, "--tenant", o.TenantID, "--client-id", o.ClientID,
		"--endpoint", srv.URL(), "--authority-host", srv.AuthorityHost()}
}

// writeFile writes a job file (or any file) under dir.
func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sourceBlock is the source of a job reaching the fake through the T_*
// variables; the replacer may change any of its lines.
func sourceBlock(query string, r *strings.Replacer) string {
	text := `source:
  powerbi:
    workspace: ${T_WS}
    dataset: ${T_DS}
    endpoint: ${T_EP}
    query: "` + strings.ReplaceAll(query, `"`, `\"`) + `"
    auth: { tenant: "${T_TENANT}", clientId: "${T_CLIENT}", clientSecret: "${T_SECRET}", authorityHost: "${T_AUTH}" }
`
	if r != nil {
		text = r.Replace(text)
	}
	return text
}

var (
	uuidRE     = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	portRE     = regexp.MustCompile(`(127\.0\.0\.1|localhost):\d+`)
	durationRE = regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m|h)(\d+(\.\d+)?(ms|s|m))*\b`)
	padDurRE   = regexp.MustCompile(` +DUR\b`)
	jsonNumRE  = regexp.MustCompile(`"(durationSeconds|waitSeconds)": [0-9.e+-]+`)
	startedRE  = regexp.MustCompile(`"started": "[^"]*"`)
	sha256RE   = regexp.MustCompile(`"sha256": "[0-9a-f]{64}"`)
	timeRE     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
)

// normalize replaces what changes from run to run: the test's folders,
// UUIDs (request and refresh ids), ports, durations and timestamps.
func normalize(s string, dirs ...string) string {
	for _, d := range dirs {
		s = strings.ReplaceAll(s, d, "$DIR")
	}
	s = uuidRE.ReplaceAllString(s, "UUID")
	s = portRE.ReplaceAllString(s, "$1:PORT")
	s = jsonNumRE.ReplaceAllString(s, `"$1": 0`)
	s = startedRE.ReplaceAllString(s, `"started": "TIME"`)
	s = timeRE.ReplaceAllString(s, "TIME")
	s = sha256RE.ReplaceAllString(s, `"sha256": "SHA256"`)
	s = durationRE.ReplaceAllString(s, "DUR")
	s = padDurRE.ReplaceAllString(s, " DUR")
	return s
}

// golden compares got with testdata/golden/name, or rewrites the file with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test -run %s -update rewrites it)\n--- got:\n%s\n--- want:\n%s", name, t.Name(), got, want)
	}
}
