//go:build unix

package sink

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// currentUmask reads the process umask. Reading it means setting it; tests
// of this package do not run in parallel, so no file is created meanwhile.
func currentUmask(t *testing.T) os.FileMode {
	t.Helper()
	old := syscall.Umask(0o022)
	syscall.Umask(old)
	return os.FileMode(old)
}

// TestPublishedModeUmask checks that published files get 0644 minus the
// umask, whatever the mode of the file they replace.
func TestPublishedModeUmask(t *testing.T) {
	for _, umask := range []int{0o022, 0o027, 0o077, 0o002} {
		old := syscall.Umask(umask)
		for _, ff := range fileFormats {
			mem := sinktest.CheckedAlloc(t)
			path := filepath.Join(t.TempDir(), "out."+ff.name)
			writeFile(t, path, "previous")
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			commitFile(t, ff, path, mem, sinktest.AllTypes, sinktest.AllTypesRows(), 4)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := os.FileMode(0o644 &^ umask); fi.Mode().Perm() != want {
				t.Errorf("%s with umask %03o: mode %v, want %v", ff.name, umask, fi.Mode().Perm(), want)
			}
		}
		syscall.Umask(old)
	}
}
