package sink

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// TestOutputsAreDeterministic writes the same batches twice into two
// folders, as single files and as split outputs, and compares every byte:
// identical input gives identical files, manifests included, so their
// SHA-256 (in the summary, the state, blob metadata) changes only when
// the data does.
func TestOutputsAreDeterministic(t *testing.T) {
	rows := sinktest.ManyRows(3000)
	write := func(t *testing.T, dir string) {
		mem := sinktest.CheckedAlloc(t)
		for _, ff := range fileFormats {
			dst, err := OpenLocal(filepath.Join(dir, "single."+ff.name))
			if err != nil {
				t.Fatal(err)
			}
			var s Sink
			if ff.name == "parquet" {
				for _, codec := range []string{"zstd", "gzip", "none"} {
					d, err := OpenLocal(filepath.Join(dir, "single-"+codec+".parquet"))
					if err != nil {
						t.Fatal(err)
					}
					k, err := NewParquet(d, sinktest.AllTypes, ParquetOptions{Compression: codec}, mem)
					if err != nil {
						t.Fatal(err)
					}
					sinktest.WriteBatches(t, k, mem, sinktest.AllTypes, rows, 700, 1100)
					if _, err := k.Commit(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				s, err = NewParquet(dst, sinktest.AllTypes, ParquetOptions{}, mem)
			} else {
				s, err = ff.open(dst, sinktest.AllTypes, mem)
			}
			if err != nil {
				t.Fatal(err)
			}
			sinktest.WriteBatches(t, s, mem, sinktest.AllTypes, rows, 700, 1100)
			if _, err := s.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			folder, err := LocalFolder(filepath.Join(dir, "split-"+ff.name))
			if err != nil {
				t.Fatal(err)
			}
			cfg := splitConfig(ff, folder, mem, OutputOptions{Overwrite: true, MaxRows: 1000})
			writeSplit(t, cfg, mem, rows, 700)
		}
	}
	a, b := t.TempDir(), t.TempDir()
	write(t, a)
	write(t, b)
	n := 0
	err := filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			t.Errorf("%s: only in the first run", rel)
			return nil
		}
		n++
		if !bytes.Equal(x, y) {
			at := 0
			for at < min(len(x), len(y)) && x[at] == y[at] {
				at++
			}
			t.Errorf("%s: %d and %d bytes, first difference at byte %d", rel, len(x), len(y), at)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 5+2*4 {
		t.Errorf("compared %d files, want 13", n)
	}
}
