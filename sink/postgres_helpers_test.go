package sink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

func pgtOpen(t testing.TB) *sinktest.PG { return sinktest.OpenPG(t) }

// pgtOpts are the options of a sink loading table of the test's schema.
func pgtOpts(db *sinktest.PG, table, mode string) PostgresOptions {
	return PostgresOptions{DSN: db.DSN(), Table: db.Table(table), Mode: mode}
}

// pgtAlloc is a checked allocator that fails t if a batch is still held
// when the test ends.
func pgtAlloc(t testing.TB) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// pgtLoad runs one load: it opens a sink, writes rows in batches of the
// given sizes (the last size repeated; odd batches are slices at an offset)
// and commits. The first error of any step is returned, after Abort.
func pgtLoad(t testing.TB, mem memory.Allocator, opts PostgresOptions, schema *arrow.Schema, rows [][]any, sizes ...int) (Result, error) {
	t.Helper()
	ctx := context.Background()
	s, err := NewPostgres(ctx, schema, opts)
	if err != nil {
		return Result{}, err
	}
	if err := pgtWrite(t, ctx, s, mem, schema, rows, sizes...); err != nil {
		if aerr := s.Abort(ctx); aerr != nil {
			t.Errorf("abort: %v", aerr)
		}
		return Result{}, err
	}
	res, err := s.Commit(ctx)
	if err != nil {
		if aerr := s.Abort(ctx); aerr != nil {
			t.Errorf("abort after a failed commit: %v", aerr)
		}
	}
	return res, err
}

func pgtWrite(t testing.TB, ctx context.Context, s Sink, mem memory.Allocator, schema *arrow.Schema, rows [][]any, sizes ...int) error {
	t.Helper()
	if len(sizes) == 0 {
		sizes = []int{len(rows)}
	}
	for i, k := 0, 0; i < len(rows); k++ {
		n := min(sizes[min(k, len(sizes)-1)], len(rows)-i)
		var rec arrow.RecordBatch
		if k%2 == 1 {
			// Arrays that start at an offset into their buffers.
			whole := sinktest.MustBatch(t, mem, schema, rows[i-1:i+n])
			rec = whole.NewSlice(1, int64(n+1))
			whole.Release()
		} else {
			rec = sinktest.MustBatch(t, mem, schema, rows[i:i+n])
		}
		err := s.Write(ctx, rec)
		rec.Release()
		if err != nil {
			return err
		}
		i += n
	}
	return nil
}

func pgtMustLoad(t testing.TB, mem memory.Allocator, opts PostgresOptions, schema *arrow.Schema, rows [][]any, sizes ...int) Result {
	t.Helper()
	res, err := pgtLoad(t, mem, opts, schema, rows, sizes...)
	if err != nil {
		t.Fatalf("load into %s (%s): %v", opts.Table, opts.mode(), err)
	}
	return res
}

func pgtWantError(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// pgtWaitFor polls cond until it holds or the time is up.
func pgtWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
