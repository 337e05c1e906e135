// Package faults makes a sink fail, or an action run, at a chosen point of
// its life: when it opens, at its first or last write, at its commit. The
// fault matrix of the pipeline and the command's signal and secret tests
// reach with it the phases no real fault reaches on demand; the sink it
// wraps is the real one, which otherwise behaves as in production.
package faults

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pbicopy/pbicopy/sink"
)

// Point is where a fault happens.
type Point string

const (
	Open       Point = "open"      // as the sink opens
	FirstWrite Point = "write1"    // before its first batch is written
	LastWrite  Point = "writeLast" // before the batch that reaches Plan.Rows
	Commit     Point = "commit"    // before its commit
	// Committed is after its commit succeeded: the plan's Act runs there
	// (a kill between the commits and the state's write); without an Act
	// nothing happens, as what is published cannot fail any more.
	Committed Point = "committed"
)

// ErrInjected is the failure a Plan without an action returns.
var ErrInjected = errors.New("injected failure")

// Plan is one fault: at Point of the sink at Index, run Act (and carry on)
// or, without Act, fail with ErrInjected.
type Plan struct {
	Index int
	At    Point
	// Act, when set, runs in place of the failure: an interruption, a
	// terminated session, a folder turned read-only.
	Act func()
	// Rows is the number of rows each run of the sink receives, for
	// LastWrite.
	Rows int64
}

// Parse reads a plan written "point:index[:rows]", as tests hand it to a
// child process (PBICOPY_TEST_FAULT).
func Parse(s string) (*Plan, error) {
	f := strings.Split(s, ":")
	if len(f) < 2 || len(f) > 3 {
		return nil, fmt.Errorf("fault %q: want point:index[:rows]", s)
	}
	p := &Plan{At: Point(f[0])}
	switch p.At {
	case Open, FirstWrite, LastWrite, Commit, Committed:
	default:
		return nil, fmt.Errorf("fault %q: unknown point %q", s, f[0])
	}
	var err error
	if p.Index, err = strconv.Atoi(f[1]); err != nil {
		return nil, fmt.Errorf("fault %q: %w", s, err)
	}
	if len(f) == 3 {
		if p.Rows, err = strconv.ParseInt(f[2], 10, 64); err != nil {
			return nil, fmt.Errorf("fault %q: %w", s, err)
		}
	}
	return p, nil
}

// Wrap is a pipeline.Runner WrapSink function: it wraps the sink the plan
// names, and leaves the others as they are.
func (p *Plan) Wrap(i int, s sink.Sink) (sink.Sink, error) {
	if i != p.Index {
		return s, nil
	}
	if p.At == Open {
		if err := p.fire(); err != nil {
			return nil, err
		}
	}
	return &faulty{Sink: s, p: p}, nil
}

func (p *Plan) fire() error {
	if p.Act != nil {
		p.Act()
		return nil
	}
	return ErrInjected
}

// faulty fails on its plan; otherwise it is the sink it wraps.
type faulty struct {
	sink.Sink
	p       *Plan
	batches int
	rows    int64
	fired   bool // the write fault happened: it happens once
}

func (s *faulty) Write(ctx context.Context, rec arrow.RecordBatch) error {
	s.batches++
	s.rows += rec.NumRows()
	if !s.fired && (s.p.At == FirstWrite || s.p.At == LastWrite && s.rows >= s.p.Rows) {
		s.fired = true
		if err := s.p.fire(); err != nil {
			return err
		}
	}
	return s.Sink.Write(ctx, rec)
}

func (s *faulty) Commit(ctx context.Context) (sink.Result, error) {
	if s.p.At == Commit {
		if err := s.p.fire(); err != nil {
			// A failed Commit leaves nothing behind: the contract.
			return sink.Result{}, errors.Join(err, s.Sink.Abort(ctx))
		}
	}
	res, err := s.Sink.Commit(ctx)
	if err == nil && s.p.At == Committed && s.p.Act != nil {
		s.p.Act()
	}
	return res, err
}
