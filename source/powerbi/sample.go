package powerbi

import (
	"context"
	"errors"

	"github.com/pbicopy/pbicopy/source"
)

// errSampleFull stops a query once the sample has its rows.
var errSampleFull = errors.New("powerbi: sample complete")

// limitRows passes at most n rows to recv, then stops the response.
type limitRows struct {
	recv rowReceiver
	n    int64
	rows int64
}

func (l *limitRows) Field(key, value []byte) error { return l.recv.Field(key, value) }

func (l *limitRows) EndRow() error {
	if err := l.recv.EndRow(); err != nil {
		return err
	}
	if l.rows++; l.rows >= l.n {
		return errSampleFull
	}
	return nil
}

// Sample runs dax, rewritten by SampleQuery to return at most n rows, and
// passes at most n rows to recv (whatever the query's shape, and even when
// TOPN returns tied rows beyond n). It returns the query as sent, and the
// rows passed on.
func Sample(ctx context.Context, client *Client, q Query, n int, recv rowReceiver) (string, QueryStats, error) {
	q.DAX, _ = source.SampleQuery(q.DAX, n)
	lr := &limitRows{recv: recv, n: int64(n)}
	qs, err := client.ExecuteQuery(ctx, q, lr)
	if errors.Is(err, errSampleFull) {
		err = nil
	}
	qs.Rows = lr.rows
	return q.DAX, qs, err
}

// InferSample samples at most n rows of a query and infers their columns
// as a job without a mapping would, with the notes to review.
func (c *Connector) InferSample(ctx context.Context, pb *source.PowerBISpec, dax string, n int) ([]InferredColumn, QueryStats, error) {
	client, err := c.Client(ctx, pb)
	if err != nil {
		return nil, QueryStats{}, err
	}
	s := NewSampler()
	_, qs, err := Sample(ctx, client, Query{Workspace: pb.Workspace, Dataset: pb.Dataset, DAX: dax, ImpersonatedUser: pb.ImpersonatedUser}, n, s)
	if err != nil {
		return nil, qs, err
	}
	cols, err := s.Columns()
	return cols, qs, err
}
