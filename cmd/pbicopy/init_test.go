package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/jobfile"
)

// TestInitSkeletonValidates writes both skeletons and checks them the way
// a newcomer uses them: the Power BI one validates with --skip-env (notes
// only) and with its variables set (nothing reported); the saved-response
// one validates and runs end to end offline.
func TestInitSkeletonValidates(t *testing.T) {
	t.Setenv("PBICOPY_LOG_FORMAT", "text")
	t.Chdir(t.TempDir())
	for _, name := range []string{"PBI_WORKSPACE_ID", "PBI_DATASET_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "PBI_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}

	code, stdout, stderr := runCmd(t, "init", "sales-daily")
	if code != exitOK || !strings.Contains(stdout, "wrote sales-daily.yaml") || !strings.Contains(stdout, "validate --skip-env sales-daily.yaml") {
		t.Fatalf("init: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "validate", "--skip-env", "sales-daily.yaml")
	if code != exitOK || strings.Contains(stderr, "ERROR") || strings.Contains(stderr, "WARN") {
		t.Errorf("validate --skip-env: exit %d\n%s%s", code, stdout, stderr)
	}
	// Without --skip-env an unset variable is a problem, as for any job.
	if code, _, _ := runCmd(t, "validate", "sales-daily.yaml"); code != exitInvalid {
		t.Errorf("validate without the variables: exit %d, want %d", code, exitInvalid)
	}
	// With the variables the README tells the user to export: nothing to say.
	loader := jobfile.Loader{LookupEnv: func(name string) (string, bool) {
		return "value-of-" + name, name != "PBI_CLIENT_SECRET" && name != "AZURE_CLIENT_CERTIFICATE_PATH"
	}}
	if _, problems, err := loader.LoadPaths([]string{"sales-daily.yaml"}); err != nil || len(problems) > 0 {
		t.Errorf("with the environment set: %v %v", problems, err)
	}

	// Exists: refused; --force overwrites; -o - prints.
	if code, _, stderr := runCmd(t, "init", "sales-daily"); code != exitInvalid || !strings.Contains(stderr, "sales-daily.yaml exists") {
		t.Errorf("init over an existing file: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, "init", "sales-daily", "--force"); code != exitOK {
		t.Errorf("init --force: exit %d: %s", code, stderr)
	}
	if code, stdout, _ := runCmd(t, "init", "other", "-o", "-"); code != exitOK || !strings.HasPrefix(stdout, "# Job other, written by pbicopy init") {
		t.Errorf("init -o -: exit %d:\n%s", code, stdout)
	}
	for _, bad := range []string{"Sales", "-x", "a_b", strings.Repeat("a", 64)} {
		if code, _, _ := runCmd(t, "init", bad); code != exitInvalid {
			t.Errorf("init %q: exit %d, want %d", bad, code, exitInvalid)
		}
	}

	// The offline walk: a saved response, init --source-file, validate, run.
	opts := fakepbi.Options{Tables: fakepbi.DemoModel()}
	if err := saveResponse("response.json", opts, "EVALUATE Sales ORDER BY Sales[OrderID]"); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCmd(t, "init", "first-job", "--source-file", "response.json"); code != exitOK {
		t.Fatalf("init --source-file: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCmd(t, "validate", "first-job.yaml"); code != exitOK {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCmd(t, "run", "first-job.yaml"); code != exitOK || !strings.Contains(stdout, "1,000 rows read, 2 output(s) published") {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, stderr)
	}
	f, err := os.Open(filepath.Join("out", "first-job", "first-job.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil || len(records) != 1001 {
		t.Errorf("first-job.csv: %d records (%v), want a header and 1,000 rows", len(records), err)
	}
}
