package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

func TestPartName(t *testing.T) {
	for _, c := range []struct {
		pattern string
		n       int
		want    string
	}{
		{"part-{{.part}}.parquet", 0, "part-00000.parquet"},
		{"part-{{.part}}.parquet", 42, "part-00042.parquet"},
		{"p={{.part}}/x-{{.part}}.csv", 7, "p=00007/x-00007.csv"},
		{"part-{{.part}}.parquet", 123456, "part-123456.parquet"},
	} {
		if got := PartName(c.pattern, c.n); got != c.want {
			t.Errorf("PartName(%q, %d) = %q, want %q", c.pattern, c.n, got, c.want)
		}
	}
	if got := partName("p={{.part}}/x-{{.part}}.csv", 7, 12); got != "p=00007-g12/x-00007-g12.csv" {
		t.Errorf("partName of generation 12: %q", got)
	}
	s := &splitSink{cfg: SplitConfig{Pattern: "p={{.part}}/x-{{.part}}.csv"}, match: partRE("p={{.part}}/x-{{.part}}.csv")}
	for name, want := range map[string]bool{
		"p=00007/x-00007.csv": true, "p=123456/x-123456.csv": true, "p=00007-g3/x-00007-g3.csv": true,
		"p=00007-g3/x-00007-g4.csv": false, "p=00007-g0/x-00007-g0.csv": false, "p=00007-g/x-00007-g.csv": false,
		"p=00007/x-00008.csv": false, "p=0007/x-0007.csv": false, "../p=00007/x-00007.csv": false,
		"p=00007/x-00007.csv.bak": false, "_manifest.json": false,
	} {
		if got := s.madeByPattern(name); got != want {
			t.Errorf("madeByPattern(%q) = %v", name, got)
		}
	}
}

// splitFormat opens the encoder of ff for a split output.
func splitConfig(ff fileFormat, folder Folder, mem memory.Allocator, out OutputOptions) SplitConfig {
	return SplitConfig{
		Folder:  folder,
		Pattern: "part-" + PartMarker + "." + ff.name,
		Encoder: func(dst Destination) (Sink, error) {
			if ff.name == "parquet" {
				// As the pipeline does: the options carry the limit.
				return NewParquet(dst, sinktest.AllTypes, ParquetOptions{MaxBytesPerFile: out.MaxBytes}, mem)
			}
			return ff.open(dst, sinktest.AllTypes, mem)
		},
		Format: ff.kind,
		Job:    "split-job",
		Output: out,
	}
}

// readerOf reads back the files of a folder for split tests: a local
// folder's files directly, a blob folder's after downloading them.
type readerOf func(t *testing.T, name string) (path string, data []byte, ok bool)

func localReader(dir string) readerOf {
	return func(t *testing.T, name string) (string, []byte, bool) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return p, nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return p, data, true
	}
}

// checkSplit reads the manifest and every part it lists, and checks them
// against each other and against rows.
func checkSplit(t *testing.T, ff fileFormat, read readerOf, mem memory.Allocator, res *Result, rows [][]any, wantParts int) Manifest {
	t.Helper()
	_, data, ok := read(t, "sales/"+ManifestName)
	if !ok {
		t.Fatal("no manifest")
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest: %v\n%s", err, data)
	}
	if m.Version != 1 || m.Job != "split-job" || m.Format != ff.kind || m.Rows != int64(len(rows)) {
		t.Errorf("manifest header %+v", m)
	}
	if len(m.Parts) != wantParts {
		t.Fatalf("%d parts, want %d: %+v", len(m.Parts), wantParts, m.Parts)
	}
	var got [][]any
	var bytes int64
	for i, p := range m.Parts {
		if want := fmt.Sprintf("part-%05d-g%d.%s", i, m.Generation, ff.name); p.Path != want {
			t.Errorf("part %d is %q, want %q", i, p.Path, want)
		}
		path, pdata, ok := read(t, "sales/"+p.Path)
		if !ok {
			t.Fatalf("part %s is missing", p.Path)
		}
		sum := sha256.Sum256(pdata)
		if p.SHA256 != hex.EncodeToString(sum[:]) || p.Bytes != int64(len(pdata)) {
			t.Errorf("part %s: manifest says %d bytes, sha256 %s; the file has %d, %x", p.Path, p.Bytes, p.SHA256, len(pdata), sum)
		}
		prows := ff.read(t, path, sinktest.AllTypes, mem)
		if int64(len(prows)) != p.Rows {
			t.Errorf("part %s: manifest says %d rows, the file has %d", p.Path, p.Rows, len(prows))
		}
		got = append(got, prows...)
		bytes += p.Bytes
		if res != nil && i < len(res.Files) && (res.Files[i].SHA256 != p.SHA256 || res.Files[i].Rows != p.Rows) {
			t.Errorf("result file %d %+v differs from the manifest's %+v", i, res.Files[i], p)
		}
	}
	if m.Bytes != bytes {
		t.Errorf("manifest says %d bytes, the parts have %d", m.Bytes, bytes)
	}
	if res != nil && (res.Bytes != bytes || res.Rows != int64(len(rows)) || len(res.Files) != len(m.Parts) || res.Kind != ff.kind || !strings.HasSuffix(res.Location, ManifestName)) {
		t.Errorf("result %+v for %d bytes in %d parts", *res, bytes, len(m.Parts))
	}
	if d := sinktest.DiffRows(rows, got); d != "" {
		t.Errorf("rows of the parts: %s", d)
	}
	return m
}

// writeSplit writes rows through a split output and commits it.
func writeSplit(t *testing.T, cfg SplitConfig, mem memory.Allocator, rows [][]any, sizes ...int) Result {
	t.Helper()
	s, err := NewSplit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) > 0 {
		sinktest.WriteBatches(t, s, mem, sinktest.AllTypes, rows, sizes...)
	}
	res, err := s.Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSplitLocal(t *testing.T) {
	for _, ff := range fileFormats {
		t.Run(ff.name, func(t *testing.T) {
			mem := sinktest.CheckedAlloc(t)
			dir := t.TempDir()
			folder, err := LocalFolder(filepath.Join(dir, "sales"))
			if err != nil {
				t.Fatal(err)
			}
			read := localReader(dir)
			rows := sinktest.ManyRows(2500)

			// By rows: batches are sliced at the limit.
			res := writeSplit(t, splitConfig(ff, folder, mem, OutputOptions{Overwrite: true, MaxRows: 1000}), mem, rows, 300, 777)
			m := checkSplit(t, ff, read, mem, &res, rows, 3)
			if m.Parts[0].Rows != 1000 || m.Parts[1].Rows != 1000 || m.Parts[2].Rows != 500 {
				t.Errorf("part rows %+v", m.Parts)
			}
			if names := tempFiles(t, filepath.Join(dir, "sales"), ManifestName, "part-00000-g1."+ff.name, "part-00001-g1."+ff.name, "part-00002-g1."+ff.name); len(names) > 0 {
				t.Errorf("files left: %q", names)
			}

			// A re-run with fewer parts removes the previous run's extra one,
			// but never a file the pattern does not name.
			writeFile(t, filepath.Join(dir, "sales", "keep.txt"), "x")
			mdata, _ := os.ReadFile(filepath.Join(dir, "sales", ManifestName))
			var prev Manifest
			_ = json.Unmarshal(mdata, &prev)
			prev.Parts = append(prev.Parts, ManifestPart{Path: "keep.txt"}, ManifestPart{Path: "../outside." + ff.name})
			mdata, _ = json.Marshal(prev)
			writeFile(t, filepath.Join(dir, "sales", ManifestName), string(mdata))
			writeFile(t, filepath.Join(dir, "outside."+ff.name), "x")
			rows = sinktest.ManyRows(1500)
			res = writeSplit(t, splitConfig(ff, folder, mem, OutputOptions{Overwrite: true, MaxRows: 1000}), mem, rows, 4096)
			checkSplit(t, ff, read, mem, &res, rows, 2)
			if _, _, ok := read(t, "sales/part-00002-g1."+ff.name); ok {
				t.Error("the previous run's third part is still there")
			}
			for _, kept := range []string{"sales/keep.txt", "outside." + ff.name} {
				if _, _, ok := read(t, kept); !ok {
					t.Errorf("%s was removed", kept)
				}
			}
			if len(res.Warnings) != 2 || !strings.Contains(res.Warnings[0], "keep.txt") {
				t.Errorf("warnings %q", res.Warnings)
			}

			// By bytes: every part but the last reaches the limit, and
			// exceeds it by less than a batch and a footer.
			rows = sinktest.ManyRows(60_000)
			const limit = 500_000
			res = writeSplit(t, splitConfig(ff, folder, mem, OutputOptions{Overwrite: true, MaxBytes: limit}), mem, rows, 500)
			m = checkSplit(t, ff, read, mem, &res, rows, len(res.Files))
			if len(m.Parts) < 3 {
				t.Errorf("%d parts of about %d bytes for %d bytes", len(m.Parts), limit, m.Bytes)
			}
			for i, p := range m.Parts {
				if p.Bytes > limit*5/4 || i < len(m.Parts)-1 && p.Bytes < limit {
					t.Errorf("part %d has %d bytes, for a limit of %d", i, p.Bytes, limit)
				}
			}

			// An empty output is one part without rows.
			res = writeSplit(t, splitConfig(ff, folder, mem, OutputOptions{Overwrite: true, MaxRows: 10}), mem, nil)
			checkSplit(t, ff, read, mem, &res, nil, 1)
		})
	}
}

// TestSplitFailureKeepsPrevious fails a split output after some parts were
// cut, and aborts another: the previous output stays as it was.
func TestSplitFailureKeepsPrevious(t *testing.T) {
	ff := fileFormats[0]
	mem := sinktest.CheckedAlloc(t)
	dir := t.TempDir()
	folder, _ := LocalFolder(filepath.Join(dir, "sales"))
	read := localReader(dir)
	rows := sinktest.ManyRows(2000)
	writeSplit(t, splitConfig(ff, folder, mem, OutputOptions{Overwrite: true, MaxRows: 1000}), mem, rows, 500)
	snapshot := func() map[string]string {
		files := map[string]string{}
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files[p] = readFile(t, p)
			}
			return nil
		})
		return files
	}
	before := snapshot()

	for _, how := range []string{"abort", "write error", "canceled commit"} {
		cfg := splitConfig(ff, folder, mem, OutputOptions{Overwrite: true, MaxRows: 300})
		if how == "write error" {
			n := 0
			cfg.Folder = failingFolder{Folder: folder, failPart: &n}
		}
		s, err := NewSplit(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var werr error
		for i := 0; i < 1500 && werr == nil; i += 250 {
			rec := sinktest.MustBatch(t, mem, sinktest.AllTypes, sinktest.ManyRows(250))
			werr = s.Write(ctx, rec)
			rec.Release()
		}
		switch how {
		case "abort":
			if err := s.Abort(ctx); err != nil {
				t.Fatal(err)
			}
		case "write error":
			if !errors.Is(werr, errInjected) {
				t.Errorf("write error: %v", werr)
			}
			if _, err := s.Commit(ctx); !errors.Is(err, errInjected) {
				t.Errorf("Commit after a failed Write: %v", err)
			}
		case "canceled commit":
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.Commit(cctx); !errors.Is(err, context.Canceled) {
				t.Errorf("canceled Commit: %v", err)
			}
		}
		if err := s.Abort(ctx); err != nil {
			t.Errorf("%s: Abort: %v", how, err)
		}
		after := snapshot()
		if len(after) != len(before) {
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range after {
					if !yield(k) {
						return
					}
				}
			})
			t.Errorf("%s: files %q, want the %d of before", how, keys, len(before))
		}
		for p, content := range before {
			if after[p] != content {
				t.Errorf("%s: %s changed", how, p)
			}
		}
	}
	checkSplit(t, ff, read, mem, nil, rows, 2)
}

// failingFolder opens destinations that fail once the third part is being
// written.
type failingFolder struct {
	Folder
	failPart *int
}

func (f failingFolder) Open(ctx context.Context, name string, overwrite bool) (Destination, error) {
	dst, err := f.Folder.Open(ctx, name, overwrite)
	if err != nil {
		return nil, err
	}
	*f.failPart++
	if *f.failPart == 3 {
		return &failingDest{Destination: dst, limit: 1000}, nil
	}
	return dst, nil
}

func TestSplitOverwriteFalse(t *testing.T) {
	ff := fileFormats[1]
	mem := sinktest.CheckedAlloc(t)
	dir := t.TempDir()
	folder, _ := LocalFolder(filepath.Join(dir, "sales"))
	cfg := splitConfig(ff, folder, mem, OutputOptions{MaxRows: 100})
	writeSplit(t, cfg, mem, sinktest.ManyRows(150), 50)
	if _, err := NewSplit(context.Background(), cfg); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), ManifestName) {
		t.Errorf("second create-only split output: %v", err)
	}
	// Parts without a manifest, as a commit killed before its manifest
	// leaves them: their generation is skipped, and they are removed once
	// the new manifest is published.
	if err := os.Remove(filepath.Join(dir, "sales", ManifestName)); err != nil {
		t.Fatal(err)
	}
	rows := sinktest.ManyRows(120)
	res := writeSplit(t, cfg, mem, rows, 50)
	m := checkSplit(t, ff, localReader(dir), mem, &res, rows, 2)
	if m.Generation != 2 {
		t.Errorf("generation %d, want 2 (1 skipped)", m.Generation)
	}
	if names := tempFiles(t, filepath.Join(dir, "sales"), ManifestName, "part-00000-g2.csv", "part-00001-g2.csv"); len(names) > 0 {
		t.Errorf("files left: %q", names)
	}
}

func TestSplitConfigErrors(t *testing.T) {
	folder, _ := LocalFolder(t.TempDir())
	ff := fileFormats[0]
	cfg := splitConfig(ff, folder, memory.DefaultAllocator, OutputOptions{Overwrite: true, MaxRows: 10})
	cfg.Pattern = "sales/out.parquet"
	if _, err := NewSplit(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), PartMarker) {
		t.Errorf("pattern without the marker: %v", err)
	}
	cfg = splitConfig(ff, folder, memory.DefaultAllocator, OutputOptions{Overwrite: true})
	if _, err := NewSplit(context.Background(), cfg); err == nil {
		t.Error("split output without a limit accepted")
	}
}

// TestSplitRemovesWhatAKilledCommitReplaced: a commit stopped after its
// manifest but before it deleted the parts the manifest replaced (a killed
// process) leaves their names in its manifest, and the next commit deletes
// them: nothing is left behind for good.
func TestSplitRemovesWhatAKilledCommitReplaced(t *testing.T) {
	ff := fileFormats[0]
	mem := sinktest.CheckedAlloc(t)
	dir := filepath.Join(t.TempDir(), "sales")
	folder, err := LocalFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows := sinktest.ManyRows(2500)
	cfg := splitConfig(ff, folder, mem, OutputOptions{Overwrite: true, MaxRows: 1000})
	gen := func(g int) []string {
		var names []string
		for n := range 3 {
			names = append(names, fmt.Sprintf("part-%05d-g%d.%s", n, g, ff.name))
		}
		return names
	}
	writeSplit(t, cfg, mem, rows, 700)
	kept := map[string][]byte{}
	for _, n := range gen(1) {
		kept[n] = []byte(readFile(t, filepath.Join(dir, n)))
	}
	writeSplit(t, cfg, mem, rows, 700)
	var m Manifest
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, ManifestName))), &m); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m.Replaced) != fmt.Sprint(gen(1)) {
		t.Fatalf("manifest of generation %d replaced %q, want %q", m.Generation, m.Replaced, gen(1))
	}
	// The commit of generation 2, killed before it deleted generation 1.
	for n, data := range kept {
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeSplit(t, cfg, mem, rows, 700)
	if left := tempFiles(t, dir, append(gen(3), ManifestName)...); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}
