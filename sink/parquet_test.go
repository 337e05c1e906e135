package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// writeParquet writes rows of sinktest.AllTypes to a new Parquet file with opts, in
// batches of batchRows, and returns its path.
func writeParquet(t *testing.T, mem memory.Allocator, opts ParquetOptions, rows [][]any, batchRows int) string {
	t.Helper()
	return writeParquetPages(t, mem, opts, rows, batchRows, parquet.DefaultDataPageSize)
}

// writeParquetPages is writeParquet with a data page size.
func writeParquetPages(t *testing.T, mem memory.Allocator, opts ParquetOptions, rows [][]any, batchRows int, pageSize int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.parquet")
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newParquet(dst, sinktest.AllTypes, opts, mem, pageSize)
	if err != nil {
		t.Fatal(err)
	}
	sinktest.WriteBatches(t, s, mem, sinktest.AllTypes, rows, batchRows)
	if _, err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestParquetFooter asserts what the footer says of every column type, as
// stored (decoded by xitongsys, not arrow-go, which derives a converted type
// on read and would hide the legacy TIMESTAMP_MICROS one).
func TestParquetFooter(t *testing.T) {
	mem := sinktest.CheckedAlloc(t)
	path := writeParquet(t, mem, ParquetOptions{}, sinktest.AllTypesRows(), 3)
	ft, err := sinktest.ReadFooter(path)
	if err != nil {
		t.Fatal(err)
	}
	if ft.CreatedBy != "pbicopy" {
		t.Errorf("created_by %q", ft.CreatedBy)
	}
	if ft.NumRows != int64(len(sinktest.AllTypesRows())) {
		t.Errorf("num_rows %d", ft.NumRows)
	}
	want := []sinktest.ColumnFooter{
		{Name: "s", Physical: "BYTE_ARRAY", Logical: "STRING", Converted: "UTF8"},
		{Name: "i", Physical: "INT64", Logical: "INTEGER(64,signed=true)", Converted: "INT_64"},
		{Name: "f", Physical: "DOUBLE"},
		{Name: "d38", Physical: "FIXED_LEN_BYTE_ARRAY", TypeLen: 16, Logical: "DECIMAL(38,10)", Converted: "DECIMAL"},
		{Name: "d19", Physical: "FIXED_LEN_BYTE_ARRAY", TypeLen: 9, Logical: "DECIMAL(19,4)", Converted: "DECIMAL"},
		{Name: "b", Physical: "BOOLEAN"},
		{Name: "dt", Physical: "INT32", Logical: "DATE", Converted: "DATE"},
		// The trap: no TIMESTAMP_MICROS converted type, which means UTC.
		{Name: "ts", Physical: "INT64", Logical: "TIMESTAMP(MICROS,isAdjustedToUTC=false)"},
	}
	if len(ft.Columns) != len(want) {
		t.Fatalf("%d columns, want %d", len(ft.Columns), len(want))
	}
	for i, w := range want {
		w.Optional, w.Stats, w.Codecs = true, true, []string{"SNAPPY"}
		got := ft.Columns[i]
		if got.Name != w.Name || got.Physical != w.Physical || got.TypeLen != w.TypeLen && w.TypeLen != 0 ||
			got.Logical != w.Logical || got.Converted != w.Converted || got.Optional != w.Optional ||
			got.Stats != w.Stats || !slices.Equal(got.Codecs, w.Codecs) {
			t.Errorf("column %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	// Small batches go into one row group, not one each.
	if len(ft.RowGroupRows) != 1 {
		t.Errorf("%d row groups for %d rows, want 1", len(ft.RowGroupRows), ft.NumRows)
	}
}

// TestParquetRowGroups checks that row groups are cut by size, between
// batches, and that no empty row group ends the file.
func TestParquetRowGroups(t *testing.T) {
	mem := sinktest.CheckedAlloc(t)
	rows := sinktest.ManyRows(50_000)
	// Small pages: the size counts the pages flushed into the row group.
	path := writeParquetPages(t, mem, ParquetOptions{RowGroupBytes: 100 << 10}, rows, 2000, 16<<10)
	ft, err := sinktest.ReadFooter(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ft.RowGroupRows) < 3 {
		t.Errorf("%d row groups (%v), want several", len(ft.RowGroupRows), ft.RowGroupRows)
	}
	var sum int64
	for i, n := range ft.RowGroupRows {
		sum += n
		if n == 0 || n%2000 != 0 && i < len(ft.RowGroupRows)-1 {
			t.Errorf("row group %d has %d rows, want a positive multiple of the batch size", i, n)
		}
	}
	if sum != int64(len(rows)) {
		t.Errorf("row groups hold %d rows, want %d", sum, len(rows))
	}
	if d := sinktest.DiffRows(rows, sinktest.ReadParquet(t, path, sinktest.AllTypes, mem)); d != "" {
		t.Error(d)
	}

	// With the default size the same rows are one row group.
	path = writeParquet(t, mem, ParquetOptions{}, rows, 2000)
	if ft, err = sinktest.ReadFooter(path); err != nil {
		t.Fatal(err)
	}
	if len(ft.RowGroupRows) != 1 {
		t.Errorf("default size: %d row groups, want 1", len(ft.RowGroupRows))
	}
}

// TestParquetRowGroupRows checks that row groups hold exactly RowGroupRows
// rows, batches being sliced where they pass it, and that the values read
// back (both readers) across the slices, nulls included.
func TestParquetRowGroupRows(t *testing.T) {
	mem := sinktest.CheckedAlloc(t)
	rows := sinktest.ManyRows(50_000)
	path := writeParquet(t, mem, ParquetOptions{RowGroupRows: 7000}, rows, 3000)
	ft, err := sinktest.ReadFooter(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{7000, 7000, 7000, 7000, 7000, 7000, 7000, 1000}
	if !slices.Equal(ft.RowGroupRows, want) {
		t.Errorf("row groups of %v rows, want %v", ft.RowGroupRows, want)
	}
	if d := sinktest.DiffRows(rows, sinktest.ReadParquet(t, path, sinktest.AllTypes, mem)); d != "" {
		t.Error(d)
	}

	// A batch larger than a row group is sliced into several.
	path = writeParquet(t, mem, ParquetOptions{RowGroupRows: 1500}, rows[:4000], 4000)
	if ft, err = sinktest.ReadFooter(path); err != nil {
		t.Fatal(err)
	}
	if want := []int64{1500, 1500, 1000}; !slices.Equal(ft.RowGroupRows, want) {
		t.Errorf("one batch of 4000 rows: row groups of %v rows, want %v", ft.RowGroupRows, want)
	}
	if d := sinktest.DiffRows(rows[:4000], sinktest.ReadParquet(t, path, sinktest.AllTypes, mem)); d != "" {
		t.Error(d)
	}
}

// TestParquetColumnFailure checks that a column failing on its goroutine
// fails the sink: the next Write or Commit returns the column's error,
// nothing is published, every goroutine ends and no memory is left.
func TestParquetColumnFailure(t *testing.T) {
	for _, at := range []struct {
		name   string
		batch  int  // the batch whose column 3 fails
		panics bool // the encoder panics instead of returning an error
	}{{"first batch", 1, false}, {"middle batch", 5, false}, {"last batch", 10, false}, {"a panic", 5, true}} {
		t.Run(at.name, func(t *testing.T) {
			mem := sinktest.CheckedAlloc(t)
			dir := t.TempDir()
			path := filepath.Join(dir, "out.parquet")
			dst, err := OpenLocal(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := newParquet(dst, sinktest.AllTypes, ParquetOptions{RowGroupRows: 3000}, mem, parquet.DefaultDataPageSize)
			if err != nil {
				t.Fatal(err)
			}
			injected := errors.New("column 3 broke")
			var seen atomic.Int32
			s.encodeHook = func(col int) error {
				if col == 3 && int(seen.Add(1)) == at.batch {
					if at.panics {
						panic(injected)
					}
					return injected
				}
				return nil
			}
			rows := sinktest.ManyRows(10_000)
			var werr error
			for i := 0; i < len(rows) && werr == nil; i += 1000 {
				rec := sinktest.MustBatch(t, mem, sinktest.AllTypes, rows[i:i+1000])
				werr = s.Write(context.Background(), rec)
				rec.Release()
			}
			_, cerr := s.Commit(context.Background())
			if at.panics {
				// A panic's value is in the message, not the chain.
				if cerr == nil || !strings.Contains(cerr.Error(), `column "d38": column 3 broke`) {
					t.Errorf("write: %v; commit: %v; want the panic as the column's error", werr, cerr)
				}
			} else if !errors.Is(cerr, injected) || werr != nil && !errors.Is(werr, injected) {
				t.Errorf("write: %v; commit: %v; want the column's error", werr, cerr)
			}
			if names := tempFiles(t, dir); len(names) != 0 {
				t.Errorf("files left in the folder: %v", names)
			}
			for i := range s.enc {
				if s.enc[i].in != nil {
					t.Errorf("column %d: its goroutine was not stopped", i)
				}
			}
		})
	}
}

// TestParquetCompression checks that every codec is the one in the footer
// and is readable by both readers.
func TestParquetCompression(t *testing.T) {
	for _, tc := range []struct{ option, codec string }{
		{"", "SNAPPY"}, {"snappy", "SNAPPY"}, {"zstd", "ZSTD"}, {"gzip", "GZIP"}, {"none", "UNCOMPRESSED"},
	} {
		t.Run(tc.codec+"/"+tc.option, func(t *testing.T) {
			mem := sinktest.CheckedAlloc(t)
			rows := sinktest.ManyRows(5000)
			path := writeParquet(t, mem, ParquetOptions{Compression: tc.option}, rows, 1000)
			ft, err := sinktest.ReadFooter(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range ft.Columns {
				for _, codec := range c.Codecs {
					if codec != tc.codec {
						t.Errorf("column %s: codec %s, want %s", c.Name, codec, tc.codec)
					}
				}
			}
			if d := sinktest.DiffRows(rows, sinktest.ReadParquet(t, path, sinktest.AllTypes, mem)); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestParquetBadOptions(t *testing.T) {
	dst, err := OpenLocal(filepath.Join(t.TempDir(), "x.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Abort(context.Background())
	if _, err := NewParquet(dst, sinktest.AllTypes, ParquetOptions{Compression: "lz4"}, nil); err == nil {
		t.Error("codec lz4 accepted")
	}
}

// TestParquetColumnsInParallel checks that encoding columns several at a
// time writes the same bytes as one at a time, and leaks nothing: the
// columns' last pages built on their goroutines before a row group is cut
// (with pages so small that the last one is often empty, and never
// written), and strings dictionary-encoded as the Arrow source sends them.
func TestParquetColumnsInParallel(t *testing.T) {
	mem := sinktest.CheckedAlloc(t)
	rows := sinktest.ManyRows(20_000)
	for _, schema := range []*arrow.Schema{sinktest.AllTypes, sinktest.DictStrings(sinktest.AllTypes)} {
		for _, pageSize := range []int64{parquet.DefaultDataPageSize, 64} {
			name := fmt.Sprintf("%s, pages of %d bytes", schema.Field(0).Type, pageSize)
			write := func(serial bool) []byte {
				path := filepath.Join(t.TempDir(), "out.parquet")
				dst, err := OpenLocal(path)
				if err != nil {
					t.Fatal(err)
				}
				s, err := newParquet(dst, schema, ParquetOptions{RowGroupBytes: 64 << 10}, mem, pageSize)
				if err != nil {
					t.Fatal(err)
				}
				s.serial = serial
				sinktest.WriteBatches(t, s, mem, schema, rows, 1500)
				return commitBytes(t, s, path)
			}
			one := write(true)
			for _, procs := range []int{1, 2, 8} {
				prev := runtime.GOMAXPROCS(procs)
				b := write(false)
				runtime.GOMAXPROCS(prev)
				if !bytes.Equal(b, one) {
					t.Errorf("%s: columns on goroutines of their own (GOMAXPROCS %d) wrote other bytes than one at a time", name, procs)
				}
			}
			path := filepath.Join(t.TempDir(), "one.parquet")
			if err := os.WriteFile(path, one, 0o644); err != nil {
				t.Fatal(err)
			}
			if d := sinktest.DiffRows(rows, sinktest.ReadParquet(t, path, sinktest.AllTypes, mem)); d != "" {
				t.Errorf("%s: %s", name, d)
			}
		}
	}
}

// TestDictionaryPays checks the rule that keeps or drops dictionary
// encoding for a column from its first batch, and that the file says so.
func TestDictionaryPays(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ints := func(n int, f func(i int) int64) arrow.Array {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		for i := range n {
			if i%10 == 0 {
				b.AppendNull()
			} else {
				b.Append(f(i))
			}
		}
		return b.NewArray()
	}
	strs := func(n int, f func(i int) string) arrow.Array {
		b := array.NewStringBuilder(mem)
		defer b.Release()
		for i := range n {
			b.Append(f(i))
		}
		return b.NewArray()
	}
	for _, c := range []struct {
		name string
		a    arrow.Array
		want bool
	}{
		{"unique keys", ints(5000, func(i int) int64 { return int64(i) }), false},
		{"twenty quantities", ints(5000, func(i int) int64 { return int64(i % 20) }), true},
		{"a third distinct", ints(5000, func(i int) int64 { return int64(i / 3) }), true},
		{"few values: not judged", ints(900, func(i int) int64 { return int64(i) }), true},
		{"unique strings", strs(3000, func(i int) string { return fmt.Sprint("id-", i) }), false},
		{"customers", strs(3000, func(i int) string { return fmt.Sprint("customer ", i%300) }), true},
	} {
		if got := dictionaryPays(c.a); got != c.want {
			t.Errorf("%s: dictionaryPays = %v, want %v", c.name, got, c.want)
		}
		c.a.Release()
	}

	// In the file: the unique column plain, the repetitive one with a
	// dictionary.
	sc := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64), sinktest.Field("qty", arrow.PrimitiveTypes.Int64)}, nil)
	id, qty := ints(5000, func(i int) int64 { return int64(i) }), ints(5000, func(i int) int64 { return int64(i % 20) })
	rec := array.NewRecordBatch(sc, []arrow.Array{id, qty}, 5000)
	id.Release()
	qty.Release()
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "dict.parquet")
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewParquet(dst, sc, ParquetOptions{}, mem)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, wantDict := range []bool{false, true} {
		cc, err := r.MetaData().RowGroup(0).ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		if got := cc.HasDictionaryPage(); got != wantDict {
			t.Errorf("column %s: dictionary page %v, want %v (encodings %v)", sc.Field(i).Name, got, wantDict, cc.Encodings())
		}
	}
}

// TestParquetNoColumns checks that a sink of a schema without columns
// commits and aborts without a panic.
func TestParquetNoColumns(t *testing.T) {
	for _, commit := range []bool{true, false} {
		dst, err := OpenLocal(filepath.Join(t.TempDir(), "out.parquet"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewParquet(dst, arrow.NewSchema(nil, nil), ParquetOptions{}, nil)
		if err != nil {
			_ = dst.Abort(context.Background())
			t.Fatal(err)
		}
		if commit {
			_, err = s.Commit(context.Background())
		} else {
			err = s.Abort(context.Background())
		}
		if err != nil {
			t.Errorf("commit %t: %v", commit, err)
		}
	}
}
