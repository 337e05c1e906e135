package sink_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/internal/sinktest/contract"
	"github.com/pbicopy/pbicopy/sink"
)

// memoryStore is where a toy in-memory sink publishes: the rows of its last
// commit. It shows what a new kind of sink implements to join the contract
// suite, without touching anything outside this test file.
type memoryStore struct {
	mu        sync.Mutex
	published bool
	rows      [][]any
}

// memorySink keeps the rows written to it until Commit swaps them in.
type memorySink struct {
	store   *memoryStore
	schema  *arrow.Schema
	pending [][]any
	err     error // sticky: the first failure, or the end of the sink
}

var _ sink.Sink = (*memorySink)(nil)

var errMemoryEnded = errors.New("memory sink: already committed or aborted")

func (s *memorySink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if s.err != nil {
		return s.err
	}
	if err := ctx.Err(); err != nil {
		s.err = err
		return err
	}
	if !rec.Schema().Equal(s.schema) {
		s.err = fmt.Errorf("memory sink: batch schema %s is not the sink's %s", rec.Schema(), s.schema)
		return s.err
	}
	rows, err := sinktest.RecordRows(rec) // copies the values: the caller keeps rec
	if err != nil {
		s.err = err
		return err
	}
	s.pending = append(s.pending, rows...)
	return nil
}

func (s *memorySink) Commit(ctx context.Context) (sink.Result, error) {
	if s.err != nil {
		return sink.Result{}, s.err
	}
	if err := ctx.Err(); err != nil {
		s.err = err
		return sink.Result{}, err
	}
	s.store.mu.Lock()
	s.store.published, s.store.rows = true, s.pending
	s.store.mu.Unlock()
	s.err = errMemoryEnded
	return sink.Result{Kind: "memory", Location: "memory", Rows: int64(len(s.pending))}, nil
}

func (s *memorySink) Abort(context.Context) error {
	s.pending, s.err = nil, errMemoryEnded
	return nil
}

func TestToySinkKeepsTheContract(t *testing.T) {
	contract.Run(t, func(t *testing.T) contract.Subject {
		store := &memoryStore{}
		return contract.Subject{
			Kind: "memory",
			Open: func(_ context.Context, schema *arrow.Schema, _ memory.Allocator) (sink.Sink, error) {
				return &memorySink{store: store, schema: schema}, nil
			},
			Read: func(*testing.T, *arrow.Schema) ([][]any, bool) {
				store.mu.Lock()
				defer store.mu.Unlock()
				return store.rows, store.published
			},
		}
	})
}
