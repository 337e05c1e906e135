package powerbi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/azure/credential"
	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/source"
)

// Connector opens the sources of jobs and the Power BI clients of the
// commands that query a dataset without a job. Use one per process: every
// client it builds draws from one rate limiter, so that the requests of
// every page, partition and job stay under the service's limit together.
// The zero value is usable; it is safe for concurrent use once in use.
type Connector struct {
	// HTTPClient carries Power BI and Entra ID requests; nil means the
	// default. The demo and tests use it to trust a fake's certificate.
	HTTPClient *http.Client
	// Logger receives what the clients report (redirects, renewed tokens,
	// refreshes); nil discards it.
	Logger *slog.Logger
	// Rate is the request rate limit per minute, shared by every request;
	// 0 means DefaultRate, < 0 none.
	Rate float64
	// RetryDelay is the first back-off when the service answers 5xx
	// without a Retry-After, and the first wait between two reads of a
	// refresh's status; 0 means the client's default (2s).
	RetryDelay time.Duration
	// ResultBytes is the service's limit of data per query, past which a
	// response (live or saved) may have been cut silently; 0 means the real
	// 15 MB (MaxResultBytes), < 0 none (for benchmarks replaying synthetic
	// responses larger than the service ever sends).
	ResultBytes int64
	// OnRefresh, when not nil, is told the status of a refresh a job asks
	// for (refreshBefore) each time it is read.
	OnRefresh func(job, status string, elapsed time.Duration)

	limiterOnce sync.Once
	limiter     *Limiter

	mu      sync.Mutex
	clients map[*source.PowerBISpec]*Client
}

var _ source.Opener = (*Connector)(nil)

func (c *Connector) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Limiter is the connector's request limiter.
func (c *Connector) Limiter() *Limiter {
	c.limiterOnce.Do(func() {
		rate := c.Rate
		if rate == 0 {
			rate = DefaultRate
		}
		c.limiter = NewLimiter(rate)
	})
	return c.limiter
}

// Client returns the client of a Power BI source block, building it (and
// its credential) the first time: the block's endpoint, or its cloud's.
func (c *Connector) Client(ctx context.Context, pb *source.PowerBISpec) (*Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[pb]; ok {
		return cl, nil
	}
	cloud, err := azure.LookupCloud(pb.Cloud)
	if err != nil {
		return nil, fmt.Errorf("source.powerbi.cloud: %w", err)
	}
	cred, err := credential.New(ctx, pb.Auth, pb.Cloud, "source.powerbi.auth", c.HTTPClient)
	if err != nil {
		return nil, err
	}
	idle, request := pb.Timeouts.Durations()
	cl, err := NewClient(Config{
		Endpoint: cmp.Or(pb.Endpoint, cloud.PowerBI), Scope: cloud.PowerBIScope, Credential: cred,
		HTTPClient: c.HTTPClient, Logger: c.logger(), RetryDelay: c.RetryDelay, Limiter: c.Limiter(), ResultBytes: c.ResultBytes,
		IdleTimeout: idle, RequestTimeout: request,
	})
	if err != nil {
		return nil, err
	}
	if c.clients == nil {
		c.clients = map[*source.PowerBISpec]*Client{}
	}
	c.clients[pb] = cl
	return cl, nil
}

// Open prepares the source of one partition; it sends no request. This is
// the one place that tells the kinds of source apart.
func (c *Connector) Open(ctx context.Context, req source.Request) (source.Source, error) {
	switch spec := req.Spec; {
	case spec.File != "":
		path, err := filepath.Abs(spec.File)
		if err != nil {
			return nil, err
		}
		return &fileSource{path: path, req: req, resultBytes: c.ResultBytes}, nil
	case spec.PowerBI != nil && spec.PowerBI.DaxQueries():
		return &daxSource{conn: c, req: req}, nil
	case spec.PowerBI != nil && spec.PowerBI.Paging != nil:
		return c.pagedSource(req)
	case spec.PowerBI != nil:
		return &querySource{conn: c, req: req}, nil
	}
	return nil, errors.New("the job has no source")
}

// rowSink turns decoded rows into batches for a source.Receiver.
type rowSink interface {
	rowReceiver
	finish() error
	Release()
}

// newRows returns the rowSink of req for r: a Builder for declared
// columns, whose schema is announced at once, or an Inferrer, which
// announces the schema it infers once it has sampled enough rows.
func newRows(req source.Request, r source.Receiver) (rowSink, error) {
	mem := req.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	emit := func(rec arrow.RecordBatch) error { return r.Batch(rec) }
	if req.Columns != nil {
		if err := r.Schema(mapping.Schema(req.Columns), nil); err != nil {
			return nil, err
		}
		b := NewBuilder(mem, req.Columns, req.Unmapped, req.BatchRows, emit)
		if req.InferredFrom != "" {
			return inferredRows{b, req.InferredFrom}, nil
		}
		return builderRows{b}, nil
	}
	return newInferRows(req, r, mem, emit), nil
}

type builderRows struct{ *Builder }

func (b builderRows) finish() error { return b.Flush() }

type inferRows struct{ *Inferrer }

func (i inferRows) finish() error { return i.Finish() }

// statsOf converts the stats of one query.
func statsOf(qs QueryStats) source.Stats {
	return source.Stats{
		Rows: qs.Rows, Bytes: qs.Bytes, Requests: qs.Attempts, Retries: max(qs.Attempts-1, 0),
		Throttled: qs.Throttled, ThrottledWait: qs.ThrottledWait, BackedOff: qs.BackedOff, BackoffWait: qs.BackoffWait,
		RequestID: qs.RequestID, Label: qs.Label,
	}
}

// querySource is one executeQueries request.
type querySource struct {
	conn *Connector
	req  source.Request
}

func (s *querySource) Read(ctx context.Context, r source.Receiver) (source.Stats, error) {
	return s.conn.read(ctx, s.req, r, func(exec execFunc, rows rowReceiver) (source.Stats, error) {
		qs, err := exec(ctx, s.req.Query, rows)
		st := statsOf(qs)
		if err == nil { // read in full: a page
			st.Pages = 1
			source.ProgressOf(ctx)(0, 1)
		}
		return st, err
	})
}

// execFunc runs one query of a source's dataset into recv.
type execFunc func(ctx context.Context, dax string, recv rowReceiver) (QueryStats, error)

// read runs a Power BI source: query sends its queries through exec into
// rows, which turn them into batches for r.
func (c *Connector) read(ctx context.Context, req source.Request, r source.Receiver, query func(exec execFunc, rows rowReceiver) (source.Stats, error)) (source.Stats, error) {
	pb := req.Spec.PowerBI
	client, err := c.Client(ctx, pb)
	if err != nil {
		return source.Stats{}, err
	}
	rows, err := newRows(req, r)
	if err != nil {
		return source.Stats{}, err
	}
	defer rows.Release()
	exec := func(ctx context.Context, dax string, recv rowReceiver) (QueryStats, error) {
		return client.ExecuteQuery(ctx, Query{Workspace: pb.GroupID(), Dataset: pb.Dataset, DAX: dax, ImpersonatedUser: pb.ImpersonatedUser,
			RefuseLabel: pb.SensitivityLabels == "refuse", OnLabel: req.OnLabel}, recv)
	}
	st, err := query(exec, rows)
	logLabel(req, st.Label)
	if err == nil {
		err = rows.finish()
	}
	return st, err
}

// pagedSource is a keyset-paged extract of a table expression.
type pagedSource struct {
	conn *Connector
	req  source.Request
	pg   *pager
}

func (c *Connector) pagedSource(req source.Request) (source.Source, error) {
	paging := req.Spec.PowerBI.Paging
	pg := &pager{table: req.Query, key: paging.Key, columns: len(req.Columns), log: req.Log}
	if pg.log == nil {
		pg.log = slog.New(slog.DiscardHandler)
	}
	for _, col := range req.Columns {
		if col.From == paging.Key {
			pg.keyType = col.Type
		}
	}
	if rows := paging.PageRows; rows == "" || rows == "auto" {
		pg.auto = true
	} else {
		n, err := strconv.Atoi(rows)
		if err != nil {
			return nil, fmt.Errorf("source.powerbi.paging.pageRows: %w", err)
		}
		pg.n = n
	}
	return &pagedSource{conn: c, req: req, pg: pg}, nil
}

func (s *pagedSource) Read(ctx context.Context, r source.Receiver) (source.Stats, error) {
	return s.conn.read(ctx, s.req, r, func(exec execFunc, rows rowReceiver) (source.Stats, error) {
		pg := *s.pg
		pg.exec = exec
		progress := source.ProgressOf(ctx)
		pg.progress = func(int, int64) { progress(0, 1) }
		ps, err := pg.run(ctx, rows)
		st := statsOf(ps.QueryStats)
		st.Pages, st.Truncated, st.Retries, st.BackedOff = ps.Pages, ps.Truncated, ps.Retries, ps.BackedOff
		return st, err
	})
}

// fileSource replays a saved executeQueries response.
type fileSource struct {
	path        string
	req         source.Request
	resultBytes int64 // Connector.ResultBytes
}

func (s *fileSource) Read(ctx context.Context, r source.Receiver) (source.Stats, error) {
	rows, err := newRows(s.req, r)
	if err != nil {
		return source.Stats{}, err
	}
	defer rows.Release()
	lim := limitsFor(s.resultBytes)
	lim.onLabel = s.req.OnLabel
	ds, err := readFile(ctx, s.path, rows, lim)
	if err == nil {
		err = rows.finish()
	}
	logLabel(s.req, ds.Label)
	return source.Stats{Rows: ds.Rows, Bytes: ds.Bytes, Label: ds.Label}, err
}

// logLabel reports the sensitivity label the data of req carries, if any.
func logLabel(req source.Request, l *source.Label) {
	if l != nil && req.Log != nil {
		req.Log.Info("the data carries a sensitivity label", "label", l.Name, "labelId", l.ID)
	}
}
