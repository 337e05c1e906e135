package sink

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestSweepTemps leaves temporary files as killed runs, live runs and
// other machines leave them, and opens a file in their folder: only those
// whose writer is gone, or that are older than TempMaxAge, are removed.
func TestSweepTemps(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("process ids are not checked on Windows")
	}
	dir := t.TempDir()
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	dead := exited.Process.Pid
	host := processHost()
	old := time.Now().Add(-TempMaxAge - time.Hour)
	files := []struct {
		name string
		old  bool
		keep bool
	}{
		{".a.parquet.tmp-" + strconv.Itoa(dead) + "-" + host + "-k3j", false, false},       // killed here
		{".b.parquet.tmp-" + strconv.Itoa(os.Getppid()) + "-" + host + "-x1", false, true}, // a live run
		{".b.parquet.tmp-" + strconv.Itoa(os.Getpid()) + "-" + host + "-x2", false, true},  // this process
		{".c.csv.tmp-" + strconv.Itoa(dead) + "-0badc0de-z9", false, true},                 // another machine, recent
		{".c.csv.tmp-" + strconv.Itoa(dead) + "-0badc0de-z8", true, false},                 // another machine, old
		{".b.parquet.tmp-" + strconv.Itoa(os.Getppid()) + "-" + host + "-x3", true, false}, // a live pid, but old
		{".d.csv.tmp-2z8k3", false, true},                                                  // an older version's, recent
		{".d.csv.tmp-2z8k4", true, false},                                                  // an older version's, old
		{".notes.tmp-draft.txt", true, true},                                               // not ours
		{"data.parquet", true, true},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if f.old {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	dst, err := OpenLocal(filepath.Join(dir, "new.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Abort(context.Background())
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	for _, f := range files {
		if kept := slices.Contains(names, f.name); kept != f.keep {
			t.Errorf("%s: kept %v, want %v", f.name, kept, f.keep)
		}
	}
	tmp := dst.(*localFile).tmpName
	if m := tempRE.FindStringSubmatch(filepath.Base(tmp)); m == nil || m[1] != strconv.Itoa(os.Getpid()) || m[2] != host {
		t.Errorf("temporary name %s does not record this process", tmp)
	}
}
