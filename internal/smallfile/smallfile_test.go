package smallfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(file, 10); err != nil || string(got) != "0123456789" {
		t.Errorf("Read at the limit = %q, %v", got, err)
	}
	_, err := Read(file, 9)
	if err == nil || !strings.Contains(err.Error(), "the file holds more than the 9 bytes allowed") || !strings.Contains(err.Error(), file) {
		t.Errorf("Read past the limit: %v", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != file {
		t.Errorf("not a PathError naming the file: %#v", err)
	}
	if _, err := Read(dir, 10); err == nil || !strings.Contains(err.Error(), "a directory, not a regular file") {
		t.Errorf("Read of a directory: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a missing file: %v", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err == nil {
		if got, err := Read(link, 10); err != nil || string(got) != "0123456789" {
			t.Errorf("Read through a symlink = %q, %v", got, err)
		}
	}
}

// TestReadBoundsFilesOfUnknownSize reads a file whose size is reported as
// 0 but which holds more: the read itself stops at the limit.
func TestReadBoundsFilesOfUnknownSize(t *testing.T) {
	const proc = "/proc/self/status"
	st, err := os.Stat(proc)
	if err != nil || st.Size() != 0 {
		t.Skipf("no %s of size 0 on this system", proc)
	}
	if _, err := Read(proc, 16); err == nil || !strings.Contains(err.Error(), "more than the 16 bytes allowed") {
		t.Errorf("Read of %s: %v", proc, err)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{9: "9 bytes", 16 << 10: "16 KiB", 1 << 20: "1 MiB", 3 << 19: "1.5 MiB", 1536: "1.5 KiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
