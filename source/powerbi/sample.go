package powerbi

import (
	"context"
	"errors"
	"path/filepath"

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

// InferResult is what Connector.Infer read and inferred.
type InferResult struct {
	Columns []InferredColumn
	// Query is the query sent; "" for a saved response.
	Query string
	// Read says what the rows were: "the first response", "the first
	// page", "a sample" (sample > 0), "the saved response /path".
	Read string
	Rows int
	// Cut, when not nil, is the service's notice that the response was cut
	// at one of its limits: the columns come from the rows before it.
	Cut error
	QueryStats
}

// Infer reads what a job without a mapping infers its columns from, and
// infers them with the same rules: the whole first response of query, or
// for a paged source (query is then its table expression) the first page,
// or the saved response of a file source. sample > 0 reads only the first
// sample rows (the query rewritten by source.SampleQuery). A response cut
// by the service's limits still gives columns, from the rows before the
// cut (InferResult.Cut says so).
func (c *Connector) Infer(ctx context.Context, spec source.Spec, query string, sample int) (InferResult, error) {
	s := NewSampler()
	var res InferResult
	var recv rowReceiver = s
	var lr *limitRows
	if sample > 0 {
		lr = &limitRows{recv: s, n: int64(sample)}
		recv = lr
	}
	var err error
	switch pb := spec.PowerBI; {
	case spec.File != "":
		path, aerr := filepath.Abs(spec.File)
		if aerr != nil {
			return res, aerr
		}
		res.Read = "the saved response " + path
		var ds DecodeStats
		ds, err = readFile(ctx, path, recv, limitsFor(c.ResultBytes))
		res.Bytes = ds.Bytes
	case pb != nil:
		client, cerr := c.Client(ctx, pb)
		if cerr != nil {
			return res, cerr
		}
		q := Query{Workspace: pb.GroupID(), Dataset: pb.Dataset, DAX: query, ImpersonatedUser: pb.ImpersonatedUser}
		switch {
		case pb.Paging != nil:
			n := source.FirstPageRows
			if sample > 0 {
				n = min(n, sample)
			}
			q.DAX = source.FirstPageQuery(n, query, pb.Paging.Key)
			res.Read = "the first page"
		case sample > 0:
			q.DAX, _ = source.SampleQuery(query, sample)
		default:
			res.Read = "the first response"
		}
		res.Query = q.DAX
		res.QueryStats, err = client.ExecuteQuery(ctx, q, recv)
	default:
		return res, errors.New("the job has no source")
	}
	if sample > 0 {
		if errors.Is(err, errSampleFull) {
			err = nil
		}
		res.Read = "a sample"
		if spec.File != "" {
			res.Read = "a sample of " + filepath.Clean(spec.File)
		}
	}
	var se *ServiceError
	var le *LimitError
	if err != nil && s.Rows() > 0 && (errors.As(err, &se) && se.Truncated() || errors.As(err, &le)) {
		res.Cut, err = err, nil
	}
	res.Rows = s.Rows()
	if err != nil {
		return res, err
	}
	res.Columns, err = s.Columns()
	return res, err
}
