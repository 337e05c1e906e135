package sink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tempFiles lists the files in dir other than the named ones.
func tempFiles(t *testing.T, dir string, except ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		keep := true
		for _, x := range except {
			if e.Name() == x {
				keep = false
			}
		}
		if keep {
			names = append(names, e.Name())
		}
	}
	return names
}

// errInjected is the error a failingDest returns.
var errInjected = errors.New("injected write failure")

// failingDest fails every Write once more than limit bytes were written.
type failingDest struct {
	Destination
	limit, n int64
}

func (d *failingDest) Write(p []byte) (int, error) {
	if d.n+int64(len(p)) > d.limit {
		return 0, errInjected
	}
	d.n += int64(len(p))
	return d.Destination.Write(p)
}

// writeFile creates path with content, failing t on error.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFile returns the content of path, failing t on error.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hasTemp reports whether names include a temporary file of ours.
func hasTemp(names []string) bool {
	for _, n := range names {
		if strings.Contains(n, ".tmp-") {
			return true
		}
	}
	return false
}

// commitBytes commits s, whose destination is the local file path, and
// returns the file's bytes.
func commitBytes(t *testing.T, s Sink, path string) []byte {
	t.Helper()
	if _, err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
