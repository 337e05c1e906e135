package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// dictCase is a string column written once as utf8 and once as the Arrow
// source hands it on, dictionary-encoded.
type dictCase struct {
	name     string
	value    func(row int) *string // nil: null
	rows     int
	batch    int
	index    arrow.DataType
	opts     ParquetOptions
	pageSize int64
	dictPage bool // the file's first row group has a dictionary page
	held     bool // the sink holds the column back until the cut (dictColumn)
	// differs: the file is not the plain strings' (only its values are
	// compared, and two writes with each other); plainOnly: every row
	// group is written without a dictionary.
	differs, plainOnly bool
}

// TestParquetDictionaryStringsSameBytes writes the same string column as
// utf8 and dictionary-encoded (a new, shuffled source dictionary with
// duplicates and unused values every few batches, batches sliced out of
// larger arrays, nulls, the empty string) and compares the files byte for
// byte: keeping the source's dictionary changes how fast the file is
// written, not a byte of it (dictionary page, indices, page cuts,
// statistics), including where arrow-go gives up the dictionary. The one
// exception is a dictionary that outgrows its page: written plain, and the
// same bytes on every run (from utf8, arrow-go lists its two encodings in
// a random order).
func TestParquetDictionaryStringsSameBytes(t *testing.T) {
	pool := func(n, width int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%0*d-%s", width, (i*7919)%n, strings.Repeat("é", i%5))
		}
		out[n/2] = "" // the empty string is a value, not a null
		return out
	}
	small, large := pool(40, 3), pool(3000, 40)
	pick := func(p []string, nullEvery int) func(int) *string {
		return func(r int) *string {
			if nullEvery > 0 && r%nullEvery == 3 {
				return nil
			}
			return &p[(r*r+r/3)%len(p)]
		}
	}
	cases := []dictCase{
		{name: "few values, pages and row groups", value: pick(small, 7), rows: 9000, batch: 1100, index: arrow.PrimitiveTypes.Int32,
			opts: ParquetOptions{RowGroupRows: 2500}, pageSize: 1 << 10, dictPage: true, held: true},
		{name: "int8 indices, zstd, no nulls", value: pick(small, 0), rows: 5000, batch: 700, index: arrow.PrimitiveTypes.Int8,
			opts: ParquetOptions{Compression: "zstd", RowGroupRows: 3000}, pageSize: 2 << 10, dictPage: true, held: true},
		{name: "int16 indices, a batch of nulls", value: func(r int) *string {
			if r >= 1500 && r < 2300 {
				return nil
			}
			return pick(small, 5)(r)
		}, rows: 4000, batch: 800, index: arrow.PrimitiveTypes.Int16, pageSize: 1 << 10, dictPage: true, held: true},
		{name: "dictionary outgrows its page", value: func(r int) *string {
			if r < 1100 {
				return &large[r%10] // the first batch says a dictionary pays
			}
			return pick(large, 11)(r)
		}, rows: 6000, batch: 1100, index: arrow.PrimitiveTypes.Int32, pageSize: 8 << 10, dictPage: false, differs: true, plainOnly: true, held: true},
		{name: "row groups cut by size", value: pick(small, 7), rows: 20000, batch: 1000, index: arrow.PrimitiveTypes.Int32,
			opts: ParquetOptions{RowGroupBytes: 1 << 10}, pageSize: 512, dictPage: true, differs: true, held: true},
		{name: "no compression: arrow-go weighs the dictionary", value: pick(small, 9), rows: 4000, batch: 900, index: arrow.PrimitiveTypes.Int32,
			opts: ParquetOptions{Compression: "none"}, pageSize: 1 << 10, dictPage: true},
		{name: "mostly distinct: no dictionary", value: pick(large, 13), rows: 5000, batch: 1500, index: arrow.PrimitiveTypes.Int32,
			pageSize: 4 << 10, dictPage: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			plain := writeStringColumn(t, filepath.Join(dir, "plain.parquet"), tc, false)
			dict := writeStringColumn(t, filepath.Join(dir, "dict.parquet"), tc, true)
			if tc.differs {
				plain = writeStringColumn(t, filepath.Join(dir, "dict-again.parquet"), tc, true)
			}
			if !bytes.Equal(plain, dict) {
				at := 0
				for at < min(len(plain), len(dict)) && plain[at] == dict[at] {
					at++
				}
				t.Fatalf("utf8 gave %d bytes, dictionary-encoded %d: first difference at byte %d", len(plain), len(dict), at)
			}
			r, err := file.NewParquetReader(bytes.NewReader(dict))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.MetaData().NumRows; got != int64(tc.rows) {
				t.Errorf("%d rows, want %d", got, tc.rows)
			}
			if tc.opts.RowGroupBytes > 0 && r.NumRowGroups() < 3 {
				t.Errorf("%d row groups: the byte limit cut none", r.NumRowGroups())
			}
			for g := range r.NumRowGroups() {
				cc, err := r.MetaData().RowGroup(g).ColumnChunk(0)
				if err != nil {
					t.Fatal(err)
				}
				if g == 0 && cc.HasDictionaryPage() != tc.dictPage {
					t.Errorf("dictionary page: %v, want %v", cc.HasDictionaryPage(), tc.dictPage)
				}
				if tc.plainOnly && (cc.HasDictionaryPage() || len(cc.EncodingStats()) != 1) {
					t.Errorf("row group %d: dictionary page %v, encodings %v; want plain alone", g, cc.HasDictionaryPage(), cc.EncodingStats())
				}
			}
			// The values read back, by an independent reader.
			got := sinktest.ReadParquet(t, filepath.Join(dir, "dict.parquet"), plainSchema, nil)
			if len(got) != tc.rows {
				t.Fatalf("read %d rows", len(got))
			}
			for i, row := range got {
				want := tc.value(i)
				if (want == nil) != (row[0] == nil) || want != nil && row[0] != *want {
					t.Fatalf("row %d: %v, want %v", i, row[0], showString(want))
				}
			}
		})
	}
}

var plainSchema = arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)

func showString(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// writeStringColumn writes tc's column as one Parquet file at path, as
// utf8 or dictionary-encoded, and returns its bytes.
func writeStringColumn(t *testing.T, path string, tc dictCase, asDict bool) []byte {
	t.Helper()
	mem := sinktest.CheckedAlloc(t)
	typ := arrow.DataType(arrow.BinaryTypes.String)
	if asDict {
		typ = &arrow.DictionaryType{IndexType: tc.index, ValueType: arrow.BinaryTypes.String}
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: typ, Nullable: true}}, nil)
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newParquet(dst, schema, tc.opts, mem, tc.pageSize)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var srcDict arrow.Array // the source's dictionary, replaced every third batch
	defer func() {
		if srcDict != nil {
			srcDict.Release()
		}
	}()
	for b, off := 0, 0; off < tc.rows; b, off = b+1, off+tc.batch {
		n := min(tc.batch, tc.rows-off)
		var col arrow.Array
		if asDict {
			if b%3 == 0 {
				if srcDict != nil {
					srcDict.Release()
				}
				srcDict = sourceDictionary(mem, tc, rng)
			}
			col = dictBatch(t, mem, srcDict, tc, off, n)
		} else {
			sb := array.NewStringBuilder(mem)
			for r := off; r < off+n; r++ {
				if v := tc.value(r); v == nil {
					sb.AppendNull()
				} else {
					sb.Append(*v)
				}
			}
			col = sb.NewArray()
			sb.Release()
		}
		rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(n))
		col.Release()
		if err := s.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if asDict && b == 0 && (s.enc[0].dict != nil) != tc.held {
			t.Fatalf("the sink holds the column back: %v, want %v", s.enc[0].dict != nil, tc.held)
		}
	}
	return commitBytes(t, s, path)
}

// sourceDictionary is a dictionary as a source may send it: every value
// of tc's rows (from its first 20,000) in a shuffled order, one of them
// twice, and values no row uses.
func sourceDictionary(mem memory.Allocator, tc dictCase, rng *rand.Rand) arrow.Array {
	seen := map[string]bool{}
	var vals []string
	for r := range min(tc.rows, 20000) {
		if v := tc.value(r); v != nil && !seen[*v] {
			seen[*v] = true
			vals = append(vals, *v)
		}
	}
	vals = append(vals, "unused-1", vals[0], "unused-2")
	if tc.index.ID() == arrow.INT8 {
		vals = vals[:min(len(vals), 127)]
	}
	rng.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.AppendValues(vals, nil)
	return b.NewArray()
}

// dictBatch is rows off..off+n of tc as a dictionary array over dict,
// sliced out of a larger array (as the Arrow source's batches are).
func dictBatch(t *testing.T, mem memory.Allocator, dict arrow.Array, tc dictCase, off, n int) arrow.Array {
	t.Helper()
	where := map[string][]int{}
	ds := dict.(*array.String)
	for i := range ds.Len() {
		where[ds.Value(i)] = append(where[ds.Value(i)], i)
	}
	const pad = 3
	ib := array.NewBuilder(mem, tc.index)
	defer ib.Release()
	appendIdx := func(k int) {
		switch b := ib.(type) {
		case *array.Int8Builder:
			b.Append(int8(k))
		case *array.Int16Builder:
			b.Append(int16(k))
		case *array.Int32Builder:
			b.Append(int32(k))
		}
	}
	for range pad {
		appendIdx(0)
	}
	for r := off; r < off+n; r++ {
		v := tc.value(r)
		if v == nil {
			ib.AppendNull()
			continue
		}
		at := where[*v]
		if len(at) == 0 {
			t.Fatalf("row %d: %q is not in the source dictionary", r, *v)
		}
		appendIdx(at[r%len(at)]) // a duplicated value is sent under both indices
	}
	appendIdx(0)
	idx := ib.NewArray()
	defer idx.Release()
	whole := array.NewDictionaryArray(&arrow.DictionaryType{IndexType: tc.index, ValueType: arrow.BinaryTypes.String}, idx, dict)
	defer whole.Release()
	return array.NewSlice(whole, pad, int64(pad+n))
}

// TestParquetDictionaryFailures checks a dictionary-encoded string column
// that fails while a batch is added, while its row group is written at a
// cut or at Commit, or whose sink is aborted with rows held back: the
// error is the sink's, nothing is published, and every batch it held is
// released (the checked allocator holds the batches too).
func TestParquetDictionaryFailures(t *testing.T) {
	vals := []string{"a", "b", "c", ""}
	tc := dictCase{value: func(r int) *string {
		if r%9 == 4 {
			return nil
		}
		return &vals[r%len(vals)]
	}, rows: 10_000, batch: 1000, index: arrow.PrimitiveTypes.Int32}
	// With row groups of 3,000 rows, the column's encoder is called for
	// batches 1-3, the first row group (call 4), batches 4-6, ...
	for _, at := range []struct {
		name  string
		call  int // the failing call of the column's encoder (0: none)
		abort bool
	}{{"adding a batch", 2, false}, {"writing a row group at a cut", 4, false}, {"writing the last row group at Commit", 14, false}, {"aborted", 0, true}} {
		t.Run(at.name, func(t *testing.T) {
			mem := sinktest.CheckedAlloc(t)
			dir := t.TempDir()
			dst, err := OpenLocal(filepath.Join(dir, "out.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			schema := sinktest.DictStrings(plainSchema)
			s, err := newParquet(dst, schema, ParquetOptions{RowGroupRows: 3000}, mem, 1<<10)
			if err != nil {
				t.Fatal(err)
			}
			injected := errors.New("the string column broke")
			var calls atomic.Int32
			s.encodeHook = func(int) error {
				if int(calls.Add(1)) == at.call {
					return injected
				}
				return nil
			}
			dict := sourceDictionary(mem, tc, rand.New(rand.NewPCG(3, 4)))
			defer dict.Release()
			var werr error
			for off := 0; off < tc.rows && werr == nil; off += tc.batch {
				if at.abort && off == 5000 {
					break
				}
				col := dictBatch(t, mem, dict, tc, off, tc.batch)
				rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(tc.batch))
				col.Release()
				werr = s.Write(context.Background(), rec)
				rec.Release()
			}
			if at.abort {
				if err := s.Abort(context.Background()); err != nil || werr != nil {
					t.Errorf("write: %v; abort: %v", werr, err)
				}
			} else if _, cerr := s.Commit(context.Background()); !errors.Is(cerr, injected) || werr != nil && !errors.Is(werr, injected) {
				t.Errorf("write: %v; commit: %v; want the column's error", werr, cerr)
			}
			if names := tempFiles(t, dir); len(names) != 0 {
				t.Errorf("files left in the folder: %v", names)
			}
			if !at.abort && int(calls.Load()) < at.call {
				t.Errorf("the encoder was called %d times, the failure was planned at call %d", calls.Load(), at.call)
			}
		})
	}
}

// TestParquetDictionaryHoldsNoBatch checks that a column held back until
// the cut keeps its indices and values, not the batches: a batch from the
// Arrow source points into the buffers of a whole record batch, every
// column of it.
func TestParquetDictionaryHoldsNoBatch(t *testing.T) {
	src := sinktest.CheckedAlloc(t) // the batches' memory
	mem := sinktest.CheckedAlloc(t) // the sink's
	vals := []string{"x", "y", "zz"}
	tc := dictCase{value: func(r int) *string {
		if r%5 == 1 {
			return nil
		}
		return &vals[r%3]
	}, rows: 8000, batch: 1000, index: arrow.PrimitiveTypes.Int32}
	schema := sinktest.DictStrings(plainSchema)
	path := filepath.Join(t.TempDir(), "out.parquet")
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newParquet(dst, schema, ParquetOptions{RowGroupRows: 1 << 20}, mem, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	dict := sourceDictionary(src, tc, rand.New(rand.NewPCG(5, 6)))
	for off := 0; off < tc.rows; off += tc.batch {
		col := dictBatch(t, src, dict, tc, off, tc.batch)
		rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(tc.batch))
		col.Release()
		if err := s.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	dict.Release()
	s.queued.Wait() // the columns' goroutines have taken every batch
	if n := src.CurrentAlloc(); n != 0 {
		t.Errorf("the sink holds %d bytes of the batches written", n)
	}
	if s.enc[0].dict == nil || s.enc[0].dict.rows != int64(tc.rows) {
		t.Fatal("the column was not held back")
	}
	if _, err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := sinktest.ReadParquet(t, path, plainSchema, nil)
	for i, row := range got {
		if want := tc.value(i); (want == nil) != (row[0] == nil) || want != nil && row[0] != *want {
			t.Fatalf("row %d: %v, want %v", i, row[0], showString(want))
		}
	}
	if len(got) != tc.rows {
		t.Errorf("%d rows", len(got))
	}
}
