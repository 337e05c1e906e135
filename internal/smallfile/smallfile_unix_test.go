//go:build unix

package smallfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadRefusesSpecialFiles reads a FIFO with no writer (which a plain
// open would wait on forever) and a device that never ends.
func TestReadRefusesSpecialFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{fifo: "a named pipe (FIFO), not a regular file"}
	if _, err := os.Stat("/dev/zero"); err == nil {
		cases["/dev/zero"] = "a device, not a regular file"
	}
	for name, want := range cases {
		done := make(chan error, 1)
		go func() {
			_, err := Read(name, 1<<20)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Read(%s): %v, want %q", name, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Read(%s) blocked", name)
		}
	}
}
