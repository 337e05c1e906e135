package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// fileFormat is one file sink under the contract test.
type fileFormat struct {
	name string
	kind string // Result.Kind
	open func(dst Destination, schema *arrow.Schema, mem memory.Allocator) (Sink, error)
	// read returns the rows of a published file in sinktest's normalised
	// form, checking every reader agrees.
	read func(t *testing.T, path string, schema *arrow.Schema, mem memory.Allocator) [][]any
}

var fileFormats = []fileFormat{
	{
		name: "parquet",
		kind: "parquet",
		open: func(dst Destination, schema *arrow.Schema, mem memory.Allocator) (Sink, error) {
			return NewParquet(dst, schema, ParquetOptions{}, mem)
		},
		read: sinktest.ReadParquet,
	},
	{
		name: "csv",
		kind: "csv",
		open: func(dst Destination, schema *arrow.Schema, _ memory.Allocator) (Sink, error) {
			return NewCSV(dst, schema, CSVOptions{})
		},
		read: func(t *testing.T, path string, schema *arrow.Schema, _ memory.Allocator) [][]any {
			return sinktest.ReadCSVFile(t, path, schema)
		},
	},
}

// TestFileSinkContract runs the same checks against every file sink.
func TestFileSinkContract(t *testing.T) {
	t.Parallel()
	for _, ff := range fileFormats {
		t.Run(ff.name, func(t *testing.T) {
			t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, ff) })
			t.Run("ManyBatches", func(t *testing.T) { testManyBatches(t, ff) })
			t.Run("Empty", func(t *testing.T) { testEmpty(t, ff) })
			t.Run("AbortKeepsPrevious", func(t *testing.T) { testAbortKeepsPrevious(t, ff) })
			t.Run("FailedWriteThenAbort", func(t *testing.T) { testFailedWriteThenAbort(t, ff) })
			t.Run("CanceledCommit", func(t *testing.T) { testCanceledCommit(t, ff) })
			t.Run("AfterCommit", func(t *testing.T) { testAfterCommit(t, ff) })
			t.Run("SchemaMismatch", func(t *testing.T) { testSchemaMismatch(t, ff) })
			t.Run("UnsupportedType", func(t *testing.T) { testUnsupportedType(t, ff) })
		})
	}
}

// commitFile writes rows to a new file sink at path and commits it.
func commitFile(t *testing.T, ff fileFormat, path string, mem memory.Allocator, schema *arrow.Schema, rows [][]any, sizes ...int) Result {
	t.Helper()
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ff.open(dst, schema, mem)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) > 0 {
		sinktest.WriteBatches(t, s, mem, schema, rows, sizes...)
	}
	res, err := s.Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func testRoundTrip(t *testing.T, ff fileFormat) {
	mem := sinktest.CheckedAlloc(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "out."+ff.name)
	writeFile(t, path, "previous content")
	rows := sinktest.AllTypesRows()
	res := commitFile(t, ff, path, mem, sinktest.AllTypes, rows, 1, 3, 2, 4)

	content := readFile(t, path)
	sum := sha256.Sum256([]byte(content))
	want := File{Location: path, Rows: int64(len(rows)), Bytes: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
	if res.Kind != ff.kind || res.Location != path || res.Rows != want.Rows || res.Bytes != want.Bytes || len(res.Files) != 1 || res.Files[0] != want {
		t.Errorf("result %+v, want kind %s and file %+v", res, ff.kind, want)
	}
	if d := sinktest.DiffRows(rows, ff.read(t, path, sinktest.AllTypes, mem)); d != "" {
		t.Error(d)
	}
	if names := tempFiles(t, filepath.Dir(path), "out."+ff.name); len(names) > 0 {
		t.Errorf("files left beside the output: %q", names)
	}
}

func testManyBatches(t *testing.T, ff fileFormat) {
	mem := sinktest.CheckedAlloc(t)
	path := filepath.Join(t.TempDir(), "out."+ff.name)
	rows := sinktest.ManyRows(30_000)
	res := commitFile(t, ff, path, mem, sinktest.AllTypes, rows, 4096, 1, 5000, 999)
	if res.Rows != int64(len(rows)) {
		t.Errorf("result says %d rows, want %d", res.Rows, len(rows))
	}
	if d := sinktest.DiffRows(rows, ff.read(t, path, sinktest.AllTypes, mem)); d != "" {
		t.Error(d)
	}
}

func testEmpty(t *testing.T, ff fileFormat) {
	for _, withBatch := range []bool{false, true} {
		mem := sinktest.CheckedAlloc(t)
		path := filepath.Join(t.TempDir(), "empty."+ff.name)
		dst, err := OpenLocal(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ff.open(dst, sinktest.AllTypes, mem)
		if err != nil {
			t.Fatal(err)
		}
		if withBatch {
			rec := sinktest.MustBatch(t, mem, sinktest.AllTypes, nil)
			err := s.Write(context.Background(), rec)
			rec.Release()
			if err != nil {
				t.Fatal(err)
			}
		}
		res, err := s.Commit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows != 0 || res.Bytes == 0 {
			t.Errorf("result %+v, want 0 rows in a non-empty file", res)
		}
		if rows := ff.read(t, path, sinktest.AllTypes, mem); len(rows) != 0 {
			t.Errorf("read %d rows, want none", len(rows))
		}
	}
}

func testAbortKeepsPrevious(t *testing.T, ff fileFormat) {
	for _, nrows := range []int{0, 5, 20_000} {
		mem := sinktest.CheckedAlloc(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "out."+ff.name)
		writeFile(t, path, "previous content")
		dst, err := OpenLocal(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ff.open(dst, sinktest.AllTypes, mem)
		if err != nil {
			t.Fatal(err)
		}
		if nrows > 0 {
			sinktest.WriteBatches(t, s, mem, sinktest.AllTypes, sinktest.ManyRows(nrows), 4096)
		}
		if !hasTemp(tempFiles(t, dir)) {
			t.Error("no temporary file while writing")
		}
		if err := s.Abort(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Abort(context.Background()); err != nil {
			t.Errorf("second Abort: %v", err)
		}
		if got := readFile(t, path); got != "previous content" {
			t.Errorf("after %d rows and Abort the file holds %q", nrows, got)
		}
		if names := tempFiles(t, dir, "out."+ff.name); len(names) > 0 {
			t.Errorf("files left after Abort: %q", names)
		}
		if _, err := s.Commit(context.Background()); err == nil {
			t.Error("Commit after Abort succeeded")
		}
	}
}

func testFailedWriteThenAbort(t *testing.T, ff fileFormat) {
	for _, limit := range []int64{0, 100, 300_000} {
		mem := sinktest.CheckedAlloc(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "out."+ff.name)
		writeFile(t, path, "previous content")
		local, err := OpenLocal(path)
		if err != nil {
			t.Fatal(err)
		}
		dst := &failingDest{Destination: local, limit: limit}
		s, err := ff.open(dst, sinktest.AllTypes, mem)
		if err != nil {
			// The encoder may write its start before any batch.
			if !errors.Is(err, errInjected) {
				t.Fatalf("limit %d: open: %v", limit, err)
			}
			if err := local.Abort(context.Background()); err != nil {
				t.Fatal(err)
			}
		} else {
			var werr error
			rows := sinktest.ManyRows(20_000)
			for i := 0; i < len(rows) && werr == nil; i += 1000 {
				rec := sinktest.MustBatch(t, mem, sinktest.AllTypes, rows[i:i+1000])
				werr = s.Write(context.Background(), rec)
				rec.Release()
			}
			if werr == nil {
				_, werr = s.Commit(context.Background())
			} else if _, err := s.Commit(context.Background()); err == nil {
				t.Errorf("limit %d: Commit after a failed Write succeeded", limit)
			}
			if !errors.Is(werr, errInjected) {
				t.Errorf("limit %d: error %v, want the injected one", limit, werr)
			}
			if err := s.Abort(context.Background()); err != nil {
				t.Errorf("limit %d: Abort: %v", limit, err)
			}
		}
		if got := readFile(t, path); got != "previous content" {
			t.Errorf("limit %d: after a failed write the file holds %.40q", limit, got)
		}
		if names := tempFiles(t, dir, "out."+ff.name); len(names) > 0 {
			t.Errorf("limit %d: files left: %q", limit, names)
		}
	}
}

func testCanceledCommit(t *testing.T, ff fileFormat) {
	mem := sinktest.CheckedAlloc(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "out."+ff.name)
	writeFile(t, path, "previous content")
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ff.open(dst, sinktest.AllTypes, mem)
	if err != nil {
		t.Fatal(err)
	}
	sinktest.WriteBatches(t, s, mem, sinktest.AllTypes, sinktest.AllTypesRows(), 5)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Commit(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a canceled context: %v", err)
	}
	if err := s.Abort(context.Background()); err != nil {
		t.Errorf("Abort after a failed Commit: %v", err)
	}
	if got := readFile(t, path); got != "previous content" {
		t.Errorf("after a canceled Commit the file holds %.40q", got)
	}
	if names := tempFiles(t, dir, "out."+ff.name); len(names) > 0 {
		t.Errorf("files left: %q", names)
	}
}

func testAfterCommit(t *testing.T, ff fileFormat) {
	mem := sinktest.CheckedAlloc(t)
	path := filepath.Join(t.TempDir(), "out."+ff.name)
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ff.open(dst, sinktest.AllTypes, mem)
	if err != nil {
		t.Fatal(err)
	}
	sinktest.WriteBatches(t, s, mem, sinktest.AllTypes, sinktest.AllTypesRows(), 100)
	if _, err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, path)
	if err := s.Abort(context.Background()); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	rec := sinktest.MustBatch(t, mem, sinktest.AllTypes, sinktest.AllTypesRows())
	defer rec.Release()
	if err := s.Write(context.Background(), rec); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if _, err := s.Commit(context.Background()); err == nil {
		t.Error("second Commit succeeded")
	}
	if readFile(t, path) != before {
		t.Error("the published file changed after Commit")
	}
}

func testSchemaMismatch(t *testing.T, ff fileFormat) {
	mem := sinktest.CheckedAlloc(t)
	dst, err := OpenLocal(filepath.Join(t.TempDir(), "out."+ff.name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ff.open(dst, sinktest.AllTypes, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abort(context.Background())
	other := arrow.NewSchema([]arrow.Field{sinktest.Field("s", arrow.BinaryTypes.String)}, nil)
	rec := sinktest.MustBatch(t, mem, other, [][]any{{"x"}})
	defer rec.Release()
	if err := s.Write(context.Background(), rec); err == nil {
		t.Error("Write of a batch with another schema succeeded")
	}
}

func testUnsupportedType(t *testing.T, ff fileFormat) {
	mem := sinktest.CheckedAlloc(t)
	for _, typ := range []arrow.DataType{
		arrow.PrimitiveTypes.Int32,
		&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
		&arrow.TimestampType{Unit: arrow.Nanosecond},
		arrow.ListOf(arrow.PrimitiveTypes.Int64),
	} {
		dst, err := OpenLocal(filepath.Join(t.TempDir(), "out."+ff.name))
		if err != nil {
			t.Fatal(err)
		}
		sc := arrow.NewSchema([]arrow.Field{sinktest.Field("x", typ)}, nil)
		if s, err := ff.open(dst, sc, mem); err == nil {
			t.Errorf("type %s accepted", typ)
			s.Abort(context.Background())
		}
		if err := dst.Abort(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOneColumnNull checks that a null in a one-column file survives: it is
// an empty line in CSV.
func TestOneColumnNull(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("v", arrow.BinaryTypes.String)}, nil)
	rows := [][]any{{"a"}, {nil}, {""}, {nil}}
	for _, ff := range fileFormats {
		t.Run(ff.name, func(t *testing.T) {
			mem := sinktest.CheckedAlloc(t)
			path := filepath.Join(t.TempDir(), "one."+ff.name)
			commitFile(t, ff, path, mem, schema, rows, 10)
			if d := sinktest.DiffRows(rows, ff.read(t, path, schema, mem)); d != "" {
				t.Error(d)
			}
		})
	}
}

// TestPublishedMode checks the default mode of a published file (the umask
// variations are in mode_unix_test.go).
func TestPublishedMode(t *testing.T) {
	for _, ff := range fileFormats {
		t.Run(ff.name, func(t *testing.T) {
			mem := sinktest.CheckedAlloc(t)
			path := filepath.Join(t.TempDir(), "out."+ff.name)
			commitFile(t, ff, path, mem, sinktest.AllTypes, sinktest.AllTypesRows(), 4)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := os.FileMode(0o644) &^ currentUmask(t); fi.Mode().Perm() != want {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), want)
			}
		})
	}
}
