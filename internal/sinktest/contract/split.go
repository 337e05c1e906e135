package contract

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/sink"
)

// SplitPlace is a folder that split outputs publish into, for
// SplitCommitFaults: a local directory or a blob folder.
type SplitPlace struct {
	// Folder is where the split output publishes.
	Folder sink.Folder
	// Read returns a file of Folder by name, and false if there is none.
	Read FileReader
	// Files returns every file of Folder (committed blobs), by name, with
	// its content, temporary files included.
	Files func(t *testing.T) map[string]string
}

// ErrInjected is the failure SplitCommitFaults injects.
var ErrInjected = errors.New("injected failure")

// SplitCommitFaults publishes a split output, then fails the commit of a
// second one at each of its steps (reading the previous manifest, each
// part's publish, opening and publishing the manifest), and checks after
// each that every file of the folder is as it was (the previous manifest
// and its parts readable, nothing new left); last it runs the second output
// without a fault, then with a failure to remove a previous part, which is
// a warning and not a failed commit.
func SplitCommitFaults(t *testing.T, format string, newPlace func(t *testing.T) SplitPlace) {
	steps := []struct {
		name  string
		fault fault
	}{
		{"read the previous manifest", fault{op: "read", name: sink.ManifestName, nth: 2}},
		{"publish the first part", fault{op: "commit", name: "part-00000-"}},
		{"publish a middle part", fault{op: "commit", name: "part-00002-"}},
		{"publish the last part", fault{op: "commit", name: "part-00003-"}},
		{"open the manifest", fault{op: "open", name: sink.ManifestName}},
		{"publish the manifest", fault{op: "commit", name: sink.ManifestName}},
	}
	before := sinktest.ManyRows(2500) // 3 parts
	after := sinktest.ManyRows(3500)  // 4 parts
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			p := newPlace(t)
			mem := sinktest.CheckedAlloc(t)
			if _, err := commitSplit(t, p.Folder, format, mem, before); err != nil {
				t.Fatal(err)
			}
			snapshot := p.Files(t)
			f := step.fault
			_, err := commitSplit(t, &faultFolder{Folder: p.Folder, fault: &f}, format, mem, after)
			if !errors.Is(err, ErrInjected) {
				t.Fatalf("commit with a failure injected: %v, want the injected failure", err)
			}
			if f.hits == 0 {
				t.Fatal("the fault was never reached")
			}
			if got := p.Files(t); !maps.Equal(got, snapshot) {
				t.Errorf("after a failure at %s the folder holds %q, want as before: %q", step.name, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(snapshot)))
			}
			rows, ok := ReadSplit(t, p.Read, sink.ManifestName, format, sinktest.AllTypes)
			if d := sinktest.DiffRows(before, rows); !ok || d != "" {
				t.Errorf("a reader following the manifest after the failure: %s", d)
			}
			if _, err := commitSplit(t, p.Folder, format, mem, after); err != nil {
				t.Fatalf("re-run: %v", err)
			}
			checkOnly(t, p, format, after)
		})
	}
	t.Run("remove a previous part", func(t *testing.T) {
		p := newPlace(t)
		mem := sinktest.CheckedAlloc(t)
		if _, err := commitSplit(t, p.Folder, format, mem, before); err != nil {
			t.Fatal(err)
		}
		f := fault{op: "remove", name: "part-00001-g1"}
		res, err := commitSplit(t, &faultFolder{Folder: p.Folder, fault: &f}, format, mem, after)
		if err != nil {
			t.Fatalf("a failure to remove a previous part failed the commit: %v", err)
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "part-00001-g1") {
			t.Errorf("warnings %q, want one naming part-00001-g1", res.Warnings)
		}
		rows, ok := ReadSplit(t, p.Read, sink.ManifestName, format, sinktest.AllTypes)
		if d := sinktest.DiffRows(after, rows); !ok || d != "" {
			t.Errorf("after the commit: %s", d)
		}
	})
}

// checkOnly checks that the place holds rows and nothing but the manifest
// and the parts it lists.
func checkOnly(t *testing.T, p SplitPlace, format string, rows [][]any) {
	t.Helper()
	got, ok := ReadSplit(t, p.Read, sink.ManifestName, format, sinktest.AllTypes)
	if d := sinktest.DiffRows(rows, got); !ok || d != "" {
		t.Errorf("after a clean commit: %s", d)
	}
	data, _ := p.Read(t, sink.ManifestName)
	files := p.Files(t)
	for name := range files {
		if name != sink.ManifestName && !strings.Contains(string(data), fmt.Sprintf("%q", name)) {
			t.Errorf("%s is left beside the output", name)
		}
	}
}

// commitSplit writes rows as a split output of parts of 1,000 rows into
// folder and commits it.
func commitSplit(t *testing.T, folder sink.Folder, format string, mem memory.Allocator, rows [][]any) (sink.Result, error) {
	t.Helper()
	ctx := context.Background()
	s, err := sink.NewSplit(ctx, sink.SplitConfig{
		Folder:  folder,
		Pattern: "part-" + sink.PartMarker + "." + format,
		Encoder: func(dst sink.Destination) (sink.Sink, error) {
			if format == "csv" {
				return sink.NewCSV(dst, sinktest.AllTypes, sink.CSVOptions{})
			}
			return sink.NewParquet(dst, sinktest.AllTypes, sink.ParquetOptions{}, mem)
		},
		Format: format,
		Job:    "split-faults",
		Output: sink.OutputOptions{Overwrite: true, MaxRows: 1000},
	})
	if err != nil {
		return sink.Result{}, err
	}
	sinktest.WriteBatches(t, s, mem, sinktest.AllTypes, rows, 700)
	res, err := s.Commit(ctx)
	if err != nil {
		_ = s.Abort(ctx)
	}
	return res, err
}

// fault fails the nth call (counting from 1; 0 means every call) of op
// (open, commit, read, remove) on a name starting with name.
type fault struct {
	op, name string
	nth      int
	calls    int
	hits     int
}

func (f *fault) fires(op, name string) bool {
	if op != f.op || !strings.HasPrefix(name, f.name) {
		return false
	}
	f.calls++
	if f.nth == 0 || f.calls == f.nth {
		f.hits++
		return true
	}
	return false
}

// faultFolder is a real folder whose operations fail on demand: a failed
// commit aborts the real destination, as a failed publish leaves it.
type faultFolder struct {
	sink.Folder
	fault *fault
}

func (f *faultFolder) Open(ctx context.Context, name string, overwrite bool) (sink.Destination, error) {
	if f.fault.fires("open", name) {
		return nil, fmt.Errorf("open %s: %w", name, ErrInjected)
	}
	dst, err := f.Folder.Open(ctx, name, overwrite)
	if err != nil {
		return nil, err
	}
	return &faultDest{Destination: dst, name: name, fault: f.fault}, nil
}

func (f *faultFolder) ReadFile(ctx context.Context, name string) ([]byte, error) {
	if f.fault.fires("read", name) {
		return nil, fmt.Errorf("read %s: %w", name, ErrInjected)
	}
	return f.Folder.ReadFile(ctx, name)
}

func (f *faultFolder) Remove(ctx context.Context, name string) error {
	if f.fault.fires("remove", name) {
		return fmt.Errorf("remove %s: %w", name, ErrInjected)
	}
	return f.Folder.Remove(ctx, name)
}

func (f *faultFolder) Exists(ctx context.Context, name string) (bool, error) {
	e, ok := f.Folder.(interface {
		Exists(context.Context, string) (bool, error)
	})
	if !ok {
		return false, errors.New("the folder cannot tell whether a file exists")
	}
	return e.Exists(ctx, name)
}

type faultDest struct {
	sink.Destination
	name  string
	fault *fault
}

func (d *faultDest) Finish(ctx context.Context) error {
	if f, ok := d.Destination.(sink.Finisher); ok {
		return f.Finish(ctx)
	}
	return nil
}

func (d *faultDest) Commit(ctx context.Context, rows int64) (sink.File, error) {
	if d.fault.fires("commit", d.name) {
		_ = d.Destination.Abort(ctx)
		return sink.File{}, fmt.Errorf("commit %s: %w", d.name, ErrInjected)
	}
	return d.Destination.Commit(ctx, rows)
}
