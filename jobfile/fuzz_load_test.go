package jobfile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/pbicopy/pbicopy/internal/smallfile"
)

// FuzzLoad loads any bytes as a job file: the result is a valid job or an
// *InvalidError whose every problem has a line of the file, never a panic,
// and the cost stays within bounds of the file's size. Its seeds are the
// golden cases of testdata/config and the example jobs, and the crashers
// the fuzzer found, kept in testdata/fuzz/FuzzLoad, run with every go test.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/config/*/job.yaml")
	examples, _ := filepath.Glob("../jobs/*.yaml")
	if len(seeds) == 0 || len(examples) == 0 {
		f.Fatal("no seeds in ../testdata/config or ../jobs")
	}
	for _, file := range append(seeds, examples...) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(validJob))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > smallfile.JobFile {
			return
		}
		// With the test's environment, and without one as validate
		// --skip-env loads jobs.
		checkLoad(t, Loader{LookupEnv: testEnv}, data)
		checkLoad(t, Loader{LookupEnv: func(string) (string, bool) { return "", false }, SkipEnv: true}, data)
	})
}

func checkLoad(t *testing.T, l Loader, data []byte) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	job, warnings, err := l.Load("fuzz.yaml", data)
	runtime.ReadMemStats(&after)
	// Decoding YAML costs up to ~150 bytes per byte of input.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1000*uint64(len(data))+(64<<20) {
		t.Fatalf("%d bytes allocated %d MiB", len(data), alloc>>20)
	}
	lines := yamlLine(data, len(data))
	check := func(p Problem) {
		t.Helper()
		if p.File != "fuzz.yaml" || p.Line < 1 || p.Line > lines || p.Message == "" {
			t.Fatalf("problem without a line of the file (1 to %d): %#v\nin:\n%q", lines, p, data)
		}
	}
	for _, w := range warnings {
		check(w)
	}
	if err == nil {
		if job == nil {
			t.Fatal("no job and no error")
		}
		job.Render(nil, true) // must not panic; a missing value may fail
		return
	}
	var inv *InvalidError
	if !errors.As(err, &inv) || job != nil || len(inv.Problems) == 0 {
		t.Fatalf("Load = %v, %T %v", job, err, err)
	}
	for _, p := range inv.Problems {
		check(p)
	}
}
