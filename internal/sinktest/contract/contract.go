// Package contract is the contract every sink keeps, as a test suite run
// against each kind of output (in the manner of rclone's fstests): a sink
// publishes everything it was given on Commit, or nothing; a failed Write
// is sticky; Abort leaves what was published before as it was; batches
// belong to the caller. A new kind of sink joins by describing itself as a
// Subject and calling Run.
package contract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/sink"
)

// Subject is one kind of output under the contract, made afresh for each
// test: every sink it opens publishes to the same place (a file, the folder
// of a split output, a blob, a table).
type Subject struct {
	// Kind is the Result.Kind its sinks report.
	Kind string
	// Open opens a sink that publishes to the subject's place, for batches
	// of schema, allocating from mem where it allocates Arrow memory.
	Open func(ctx context.Context, schema *arrow.Schema, mem memory.Allocator) (sink.Sink, error)
	// Read returns the rows published at the place, in sinktest's
	// normalised form and in the order they were written, and false when
	// nothing was ever published there.
	Read func(t *testing.T, schema *arrow.Schema) (rows [][]any, published bool)
	// Combine is what the place holds after rows were committed over what
	// it held before: nil means the new rows replace the old (files, a
	// table loaded with mode replace).
	Combine func(before, committed [][]any) [][]any
	// Unordered says the place keeps no order (a table): rows are
	// compared whatever their order.
	Unordered bool
	// Leftovers lists what a sink left behind at the place besides its
	// published output (temporary files, parts a manifest does not
	// list); nil is not checked.
	Leftovers func(t *testing.T) []string
}

func (s Subject) combine(before, committed [][]any) [][]any {
	if s.Combine == nil {
		return committed
	}
	return s.Combine(before, committed)
}

// Run runs the contract against the subjects newSubject makes, one per
// test.
func Run(t *testing.T, newSubject func(t *testing.T) Subject) {
	tests := []struct {
		name string
		run  func(t *testing.T, s Subject)
	}{
		{"RoundTrip", testRoundTrip},
		{"ManyBatches", testManyBatches},
		{"Empty", testEmpty},
		{"SecondCommit", testSecondCommit},
		{"AbortKeepsPrevious", testAbortKeepsPrevious},
		{"FailedWriteThenAbort", testFailedWriteThenAbort},
		{"FailedWriteIsSticky", testFailedWriteIsSticky},
		{"CanceledCommit", testCanceledCommit},
		{"AfterCommit", testAfterCommit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newSubject(t)) })
	}
}

// publish writes rows in batches of the given sizes and commits them.
func publish(t *testing.T, s Subject, schema *arrow.Schema, rows [][]any, sizes ...int) sink.Result {
	t.Helper()
	mem := sinktest.CheckedAlloc(t)
	k, err := s.Open(context.Background(), schema, mem)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if len(rows) > 0 {
		sinktest.WriteBatches(t, k, mem, schema, rows, sizes...)
	}
	res, err := k.Commit(context.Background())
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if res.Kind != s.Kind || res.Rows != int64(len(rows)) {
		t.Errorf("result %s with %d rows, want %s with %d", res.Kind, res.Rows, s.Kind, len(rows))
	}
	return res
}

// expect checks that the place holds want.
func expect(t *testing.T, s Subject, schema *arrow.Schema, want [][]any, what string) {
	t.Helper()
	got, ok := s.Read(t, schema)
	if !ok {
		t.Fatalf("%s: nothing is published", what)
	}
	if s.Unordered {
		want, got = sinktest.SortRows(want), sinktest.SortRows(got)
	}
	if d := sinktest.DiffRows(want, got); d != "" {
		t.Errorf("%s: %s", what, d)
	}
	noLeftovers(t, s, what)
}

func noLeftovers(t *testing.T, s Subject, what string) {
	t.Helper()
	if s.Leftovers == nil {
		return
	}
	if left := s.Leftovers(t); len(left) > 0 {
		t.Errorf("%s: left behind %q", what, left)
	}
}

func testRoundTrip(t *testing.T, s Subject) {
	rows := sinktest.AllTypesRows()
	publish(t, s, sinktest.AllTypes, rows, 1, 3, 2, 4)
	expect(t, s, sinktest.AllTypes, rows, "after a commit")
}

func testManyBatches(t *testing.T, s Subject) {
	rows := sinktest.ManyRows(20_000)
	publish(t, s, sinktest.AllTypes, rows, 4096, 1, 5000, 999)
	expect(t, s, sinktest.AllTypes, rows, "after a commit of many batches")
}

func testEmpty(t *testing.T, s Subject) {
	publish(t, s, sinktest.AllTypes, nil)
	expect(t, s, sinktest.AllTypes, nil, "after a commit of no rows")
}

func testSecondCommit(t *testing.T, s Subject) {
	first := sinktest.ManyRows(300)
	second := sinktest.AllTypesRows()
	publish(t, s, sinktest.AllTypes, first, 128)
	publish(t, s, sinktest.AllTypes, second, 5)
	expect(t, s, sinktest.AllTypes, s.combine(first, second), "after a second commit")
}

func testAbortKeepsPrevious(t *testing.T, s Subject) {
	before := sinktest.AllTypesRows()
	publish(t, s, sinktest.AllTypes, before, 4)
	mem := sinktest.CheckedAlloc(t)
	k, err := s.Open(context.Background(), sinktest.AllTypes, mem)
	if err != nil {
		t.Fatal(err)
	}
	sinktest.WriteBatches(t, k, mem, sinktest.AllTypes, sinktest.ManyRows(5000), 1000)
	if err := k.Abort(context.Background()); err != nil {
		t.Fatalf("abort: %v", err)
	}
	if err := k.Abort(context.Background()); err != nil {
		t.Errorf("a second abort: %v", err)
	}
	expect(t, s, sinktest.AllTypes, before, "after an abort")
}

// otherSchema is a schema no sink of the suite was opened for.
var otherSchema = arrow.NewSchema([]arrow.Field{sinktest.Field("other", arrow.PrimitiveTypes.Int64)}, nil)

func testFailedWriteThenAbort(t *testing.T, s Subject) {
	before := sinktest.AllTypesRows()[:5]
	publish(t, s, sinktest.AllTypes, before, 5)
	ctx := context.Background()
	mem := sinktest.CheckedAlloc(t)
	k, err := s.Open(ctx, sinktest.AllTypes, mem)
	if err != nil {
		t.Fatal(err)
	}
	sinktest.WriteBatches(t, k, mem, sinktest.AllTypes, sinktest.ManyRows(100), 50)
	bad := sinktest.MustBatch(t, mem, otherSchema, [][]any{{int64(1)}})
	err = k.Write(ctx, bad)
	bad.Release()
	if err == nil {
		t.Fatal("a batch of another schema was accepted")
	}
	if err := k.Abort(ctx); err != nil {
		t.Errorf("abort after a failed write: %v", err)
	}
	expect(t, s, sinktest.AllTypes, before, "after a failed write and an abort")
}

// testFailedWriteIsSticky checks that after a failed Write every later
// Write and Commit return that failure, so that no caller can publish the
// rows written around it: the place keeps what it held, with nothing left
// behind.
func testFailedWriteIsSticky(t *testing.T, s Subject) {
	faults := []struct {
		name  string
		write func(ctx context.Context, k sink.Sink, mem memory.Allocator) error
	}{
		{"a batch of another schema", func(ctx context.Context, k sink.Sink, mem memory.Allocator) error {
			bad := sinktest.MustBatch(t, mem, otherSchema, [][]any{{int64(1)}})
			defer bad.Release()
			return k.Write(ctx, bad)
		}},
		{"a canceled context", func(ctx context.Context, k sink.Sink, mem memory.Allocator) error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			rec := sinktest.MustBatch(t, mem, sinktest.AllTypes, sinktest.ManyRows(10))
			defer rec.Release()
			return k.Write(cctx, rec)
		}},
	}
	before := sinktest.AllTypesRows()[:4]
	publish(t, s, sinktest.AllTypes, before, 2)
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			ctx := context.Background()
			mem := sinktest.CheckedAlloc(t)
			k, err := s.Open(ctx, sinktest.AllTypes, mem)
			if err != nil {
				t.Fatal(err)
			}
			sinktest.WriteBatches(t, k, mem, sinktest.AllTypes, sinktest.ManyRows(1500), 500)
			first := f.write(ctx, k, mem)
			if first == nil {
				t.Fatalf("%s was accepted", f.name)
			}
			good := sinktest.MustBatch(t, mem, sinktest.AllTypes, sinktest.ManyRows(20))
			err = k.Write(ctx, good)
			good.Release()
			if !errors.Is(err, first) {
				t.Errorf("a Write after the failed one returned %v, want the first failure (%v)", err, first)
			}
			for i := range 2 {
				res, err := k.Commit(ctx)
				if !errors.Is(err, first) {
					t.Errorf("Commit %d after the failed Write returned %v (result %+v), want the first failure (%v)", i+1, err, res, first)
				}
			}
			if err := k.Abort(ctx); err != nil {
				t.Errorf("abort after a failed commit: %v", err)
			}
			expect(t, s, sinktest.AllTypes, before, "after a failed write and commits")
		})
	}
}

func testCanceledCommit(t *testing.T, s Subject) {
	before := sinktest.AllTypesRows()
	publish(t, s, sinktest.AllTypes, before, 13)
	mem := sinktest.CheckedAlloc(t)
	k, err := s.Open(context.Background(), sinktest.AllTypes, mem)
	if err != nil {
		t.Fatal(err)
	}
	rows := sinktest.ManyRows(2000)
	sinktest.WriteBatches(t, k, mem, sinktest.AllTypes, rows, 700)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = k.Commit(ctx)
	if err != nil {
		_ = k.Abort(context.Background())
		expect(t, s, sinktest.AllTypes, before, "after a commit that failed on a canceled context")
		return
	}
	// A sink may finish a publish it has started whatever the context says
	// (PostgreSQL sends COMMIT): then all of it is published.
	expect(t, s, sinktest.AllTypes, s.combine(before, rows), "after a commit that succeeded on a canceled context")
}

func testAfterCommit(t *testing.T, s Subject) {
	rows := sinktest.AllTypesRows()
	ctx := context.Background()
	mem := sinktest.CheckedAlloc(t)
	k, err := s.Open(ctx, sinktest.AllTypes, mem)
	if err != nil {
		t.Fatal(err)
	}
	sinktest.WriteBatches(t, k, mem, sinktest.AllTypes, rows, 6)
	if _, err := k.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	late := sinktest.MustBatch(t, mem, sinktest.AllTypes, rows[:1])
	err = k.Write(ctx, late)
	late.Release()
	if err == nil {
		t.Error("a Write after Commit succeeded")
	}
	if _, err := k.Commit(ctx); err == nil {
		t.Error("a second Commit succeeded")
	}
	if err := k.Abort(ctx); err != nil {
		t.Errorf("an Abort after Commit: %v", err)
	}
	expect(t, s, sinktest.AllTypes, rows, "after an Abort that followed a Commit")
}

// DecodeFile reads the rows of a published file of the given format
// (parquet or csv) from its bytes; Parquet is read with two independent
// readers that must agree.
func DecodeFile(t *testing.T, format string, data []byte, schema *arrow.Schema) [][]any {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file."+format)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	switch format {
	case "parquet":
		return sinktest.ReadParquet(t, path, schema, memory.NewGoAllocator())
	case "csv":
		return sinktest.ReadCSVFile(t, path, schema)
	}
	t.Fatalf("no reader for %s files", format)
	return nil
}

// FileReader reads a published file of a place by name; ok is false when
// there is none.
type FileReader func(t *testing.T, name string) (data []byte, ok bool)

// ReadSplit reads a split output whose manifest is manifest (a name for
// read): the manifest, then every part it lists, checking each part's
// bytes, SHA-256 and row count against it, and returns the rows of the
// parts in order.
func ReadSplit(t *testing.T, read FileReader, manifest, format string, schema *arrow.Schema) ([][]any, bool) {
	t.Helper()
	data, ok := read(t, manifest)
	if !ok {
		return nil, false
	}
	var m sink.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest %s: %v", manifest, err)
	}
	if m.Format != format {
		t.Errorf("manifest format %q, want %q", m.Format, format)
	}
	dir := filepath.ToSlash(filepath.Dir(filepath.FromSlash(manifest)))
	var rows [][]any
	var total int64
	for _, p := range m.Parts {
		name := p.Path
		if dir != "." {
			name = dir + "/" + p.Path
		}
		pdata, ok := read(t, name)
		if !ok {
			t.Fatalf("part %s listed by the manifest is missing", name)
		}
		if err := checkPart(p, pdata); err != nil {
			t.Error(err)
		}
		prows := DecodeFile(t, format, pdata, schema)
		if int64(len(prows)) != p.Rows {
			t.Errorf("part %s: the manifest says %d rows, the file has %d", name, p.Rows, len(prows))
		}
		rows = append(rows, prows...)
		total += p.Rows
	}
	if total != m.Rows {
		t.Errorf("the manifest says %d rows, its parts %d", m.Rows, total)
	}
	return rows, true
}

func checkPart(p sink.ManifestPart, data []byte) error {
	sum := sinktest.SHA256(data)
	if p.Bytes != int64(len(data)) || p.SHA256 != sum {
		return fmt.Errorf("part %s: the manifest says %d bytes, sha256 %s; the file has %d, %s", p.Path, p.Bytes, p.SHA256, len(data), sum)
	}
	return nil
}
