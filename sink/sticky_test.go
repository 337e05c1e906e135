package sink

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// TestPostgresFailedWriteIsStickyIntegration refuses a batch holding a NUL
// character in replace mode: a clean batch after it and every Commit return
// that refusal, and the table keeps its previous rows.
func TestPostgresFailedWriteIsStickyIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64), sinktest.Field("s", arrow.BinaryTypes.String)}, nil)
	before := [][]any{{int64(1), "one"}, {int64(2), "two"}}
	opts := pgtOpts(db, "sticky", "replace")
	pgtMustLoad(t, mem, opts, schema, before)

	s, err := NewPostgres(ctx, schema, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := pgtWrite(t, ctx, s, mem, schema, [][]any{{int64(3), "three"}}); err != nil {
		t.Fatal(err)
	}
	first := pgtWrite(t, ctx, s, mem, schema, [][]any{{int64(4), "a\x00b"}})
	pgtWantError(t, first, "NUL character")
	if err := pgtWrite(t, ctx, s, mem, schema, [][]any{{int64(5), "five"}}); !errors.Is(err, first) {
		t.Errorf("Write after a failed one: %v, want %v", err, first)
	}
	for i := range 2 {
		if res, err := s.Commit(ctx); !errors.Is(err, first) {
			t.Errorf("Commit %d after a failed Write: %v (result %+v), want %v", i+1, err, res, first)
		}
	}
	if err := s.Abort(ctx); err != nil {
		t.Errorf("Abort: %v", err)
	}
	if d := sinktest.DiffRows(before, db.Rows("sticky", schema, "id")); d != "" {
		t.Errorf("table after the failed load: %s", d)
	}
}
