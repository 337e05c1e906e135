package jobs_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/jobs"
)

// anyEnv gives every ${NAME} a value, so the examples validate without
// credentials.
func anyEnv(name string) (string, bool) {
	if strings.Contains(name, "ENDPOINT") || strings.Contains(name, "AUTHORITY") {
		return "https://" + strings.ToLower(name) + ".example/", true
	}
	return "value-of-" + name, true
}

func TestEveryJobFileIsValid(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("job files: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			loaded, warnings, err := jobfile.Loader{LookupEnv: anyEnv}.LoadPaths([]string{f})
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %v", warnings)
			}
			if len(loaded) != 1 {
				t.Fatalf("loaded %d jobs", len(loaded))
			}
		})
	}
}

// TestEveryJobFileIsValidWithoutEnv checks the examples as pbicopy
// validate --skip-env does in a fresh checkout: no variable is set, each
// unset one is a note, and nothing else is reported.
func TestEveryJobFileIsValidWithoutEnv(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("job files: %v %v", files, err)
	}
	unset := func(string) (string, bool) { return "", false }
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			loaded, problems, err := jobfile.Loader{LookupEnv: unset, SkipEnv: true}.LoadPaths([]string{f})
			if err != nil {
				t.Fatal(err)
			}
			notes := 0
			for _, p := range problems {
				if p.Severity != jobfile.SeverityNote {
					t.Errorf("not a note: %s", p)
				}
				notes++
			}
			if notes == 0 {
				t.Error("no note: the example reads no environment variable")
			}
			if _, err := loaded[0].Render(nil, true); err != nil {
				t.Errorf("render: %v", err)
			}
		})
	}
}

func TestEmbeddedDemoIsTheFile(t *testing.T) {
	job, _, err := jobfile.Loader{LookupEnv: anyEnv}.Load(jobs.DemoFile, jobs.Demo)
	if err != nil {
		t.Fatal(err)
	}
	if job.Name != "demo-sales" {
		t.Errorf("demo job name %q", job.Name)
	}
}
