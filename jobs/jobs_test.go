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

func TestEmbeddedDemoIsTheFile(t *testing.T) {
	job, _, err := jobfile.Loader{LookupEnv: anyEnv}.Load(jobs.DemoFile, jobs.Demo)
	if err != nil {
		t.Fatal(err)
	}
	if job.Name != "demo-sales" {
		t.Errorf("demo job name %q", job.Name)
	}
}
