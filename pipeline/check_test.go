package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// checkLines renders checks one per line, as validate --online prints them.
func checkLines(checks []Check) string {
	var b strings.Builder
	for _, c := range checks {
		mark := "ok"
		if !c.OK {
			mark = "FAIL"
		}
		b.WriteString(mark + " " + c.Name + ": " + c.Message + "\n")
	}
	return b.String()
}

// TestCheckOnlineBlobIntegration: validate --online proves a blob output
// through the blob sink's probe, and publishes nothing.
func TestCheckOnlineBlobIntegration(t *testing.T) {
	f := newBlobFixture(t, fakepbi.Options{})
	job := f.job(t, "EVALUATE Sales", salesMapping, "", "  - csv: { path: 'az://${CONTAINER}/sales.csv' }\n  - csv: { path: 'az://nosuchcontainer/x.csv' }\n")
	got := checkLines(f.runner(nil).CheckOnline(context.Background(), job))
	for _, want := range []string{
		"ok auth: a token was issued",
		"ok query: EVALUATE TOPN(1, Sales) answered; its first row decoded into",
		"ok sinks[0] csv: http://127.0.0.1:",
		"/sales.csv: reachable with connection string from AZURE_STORAGE_CONNECTION_STRING",
		"FAIL sinks[1] csv: ",
		"ContainerNotFound",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("checks lack %q:\n%s", want, got)
		}
	}
	if blobs := sinktest.ListBlobs(t, f.cc); len(blobs) != 0 {
		t.Errorf("the check published %v", blobs)
	}
	if n := f.srv.QueryRequests(); n != 1 {
		t.Errorf("%d queries", n)
	}
}

// TestCheckOnlineMissingParam: a value the query needs and nobody gives is
// one failed check; the sinks that need it are left out.
func TestCheckOnlineMissingParam(t *testing.T) {
	f := newFixture(t, fakepbi.Options{})
	job := f.job(t, `EVALUATE FILTER(Sales, Sales[Region] = {{ dax .region }})`, salesMapping)
	checks := f.runner(nil).CheckOnline(context.Background(), job)
	got := checkLines(checks)
	if !strings.HasPrefix(got, "FAIL params: ") || !strings.Contains(got, "--param region=VALUE") || !strings.Contains(got, "ok auth:") || strings.Contains(got, " query: ") {
		t.Errorf("checks:\n%s", got)
	}
	if f.srv.QueryRequests() != 0 {
		t.Errorf("a query ran without its parameter")
	}
}
