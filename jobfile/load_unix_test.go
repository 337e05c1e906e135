//go:build unix

package jobfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadPathsRefusesSpecialFiles loads a FIFO with no writer and
// /dev/zero: both are refused at once, neither read.
func TestLoadPathsRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "job.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	paths := []string{fifo, dir}
	wants := []string{fifo + ": cannot read: a named pipe (FIFO), not a regular file"}
	if _, err := os.Stat("/dev/zero"); err == nil {
		paths = append(paths, "/dev/zero")
		wants = append(wants, "/dev/zero: cannot read: a device, not a regular file")
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := Loader{LookupEnv: testEnv}.LoadPaths(paths)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range wants {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LoadPaths blocked on a special file")
	}
}
