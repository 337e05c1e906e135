// Package source is the contract between the runner and what it reads: a
// Source yields the result of one query as Arrow record batches, in a
// schema it announces before the first batch. The job file's source block
// (Spec) and the DAX the runner shows in plans live here too; package
// source/powerbi implements the sources (the Power BI executeQueries API,
// and the replay of a saved response) behind one Opener.
package source

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/mapping"
)

// Source is one partition's query, ready to be read.
//
// Read runs the query and streams its result into r: r.Schema once, before
// any batch, then r.Batch for each batch. It returns what it did, on error
// too. When the error is Retryable, reading again from the start may
// succeed: Read may then be called again, with a fresh Receiver. An error of
// the Receiver stops the read and is returned as it is.
type Source interface {
	Read(ctx context.Context, r Receiver) (Stats, error)
}

// Receiver takes the result of a Source.
type Receiver interface {
	// Schema announces the schema of every batch to come, before the
	// first (also when no batch comes). notes are choices the user should
	// review, such as inferred types.
	Schema(schema *arrow.Schema, notes []string) error
	// Batch takes one batch of that schema and its reference: the
	// receiver releases it (or hands it on to someone who does).
	Batch(rec arrow.RecordBatch) error
}

// Stats is what reading a source did.
type Stats struct {
	Rows     int64 `json:"rowsRead"`  // rows handed to the receiver
	Bytes    int64 `json:"bytesRead"` // bytes of response read
	Requests int   `json:"requests"`  // query requests sent, retries included
	// Retries are the requests that repeated a failed one: after a 429,
	// a server error or a network failure (HTTP retries), or a response
	// body that broke off (read again, or continued after its last row).
	Retries   int `json:"retries"`
	Throttled int `json:"throttled"` // requests answered 429
	// ThrottledWait is the time spent waiting before retrying a 429.
	ThrottledWait time.Duration `json:"throttledWait"`
	// BackedOff counts the retries after anything but a 429: a server
	// error, a network failure, a body that broke off; BackoffWait is the
	// time spent waiting before them.
	BackedOff   int           `json:"backedOff"`
	BackoffWait time.Duration `json:"backoffWait"`
	// Pages are the queries read in full (one per page of a paged source;
	// a body that broke off and was read again counts once, its re-read
	// being a retry).
	Pages     int    `json:"pages"`
	Truncated int    `json:"truncatedPages"` // pages cut by a service limit and continued smaller
	RequestID string `json:"requestId,omitempty"`
	// Label is the sensitivity (information protection) label the data
	// carries, nil when none.
	Label *Label `json:"sensitivityLabel,omitempty"`
}

// Label is a Microsoft Purview sensitivity label, as Power BI gives it with
// the data (informationProtectionLabel).
type Label struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// String is the label's name and id, for messages.
func (l *Label) String() string {
	switch {
	case l.Name == "":
		return "id " + l.ID
	case l.ID == "":
		return l.Name
	}
	return l.Name + " (id " + l.ID + ")"
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.Rows += o.Rows
	s.Bytes += o.Bytes
	s.Requests += o.Requests
	s.Retries += o.Retries
	s.Throttled += o.Throttled
	s.ThrottledWait += o.ThrottledWait
	s.BackedOff += o.BackedOff
	s.BackoffWait += o.BackoffWait
	s.Pages += o.Pages
	s.Truncated += o.Truncated
	if o.RequestID != "" {
		s.RequestID = o.RequestID
	}
	if o.Label != nil {
		s.Label = o.Label
	}
}

// Request is what opening the source of one partition needs.
type Request struct {
	Job  string
	Spec Spec // the job's source block
	// Query is the partition's query with its templates rendered; for a
	// paged source, the table expression to page through.
	Query string
	// Columns are the job's mapping; nil infers them from the data.
	Columns []mapping.Column
	// InferredFrom, set with Columns, says that they were inferred from
	// other data (it names which, for messages): a value that does not fit
	// them fails with the mapping line to declare.
	InferredFrom string
	// NullType, when set, is the type inferred for a column null in every
	// row read (with a note), for commands that show a result; zero: such
	// a column is an error asking for its type.
	NullType mapping.Type
	// OnLabel, when not nil, is told the sensitivity label of the data as
	// soon as the source reads it (Stats.Label has it at the end).
	OnLabel func(l *Label)
	// OnInferred, when not nil, is told the columns a source inferred
	// (Columns nil), once it has decided them, before the first batch.
	OnInferred func(cols []mapping.Column)
	Unmapped   mapping.Unmapped
	// BatchRows is the number of rows per batch; 0 is
	// mapping.DefaultBatchRows.
	BatchRows int
	// Mem allocates the batches; nil is the Go allocator.
	Mem memory.Allocator
	// Log receives what the source reports as it reads; nil discards it.
	Log *slog.Logger
}

// Opener opens the sources of jobs. Package source/powerbi implements it:
// one Connector per process, so that every request of every job shares one
// rate limit.
type Opener interface {
	// Open prepares the source of one partition; it sends no query.
	Open(ctx context.Context, req Request) (Source, error)
	// Prepare does what a job's source asks for before its first
	// partition is read: a refresh of the dataset (refreshBefore). It is
	// called once per run of a job.
	Prepare(ctx context.Context, spec Spec, job string) error
	// Check proves, moving no data, that the source of req could be read,
	// and says what it proved: a token is issued, the query answers, its
	// first row decodes with the mapping.
	Check(ctx context.Context, req Request) []Check
}

// Check is the outcome of one online check.
type Check struct {
	Name string // auth, query, source.file
	OK   bool
	// Message says what was proven or, for a failed check, what is wrong
	// and what to do.
	Message string
}

// Retryable reports whether reading a source again from the start may
// succeed after err: the response broke off mid-stream. Errors the service
// answered, errors of the data and errors of the receiver are not.
func Retryable(err error) bool {
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}

// Permanent reports whether err would recur for every partition of a job
// and every try: the token refused, access denied, the query invalid, a
// column of the response the mapping does not know. The runner stops the
// job at the first such failure instead of meeting it once per partition,
// and does not suggest --resume, which cannot cure it.
func Permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// Progress is told of a source's progress as it reads, in deltas: bytes of
// response and completed pages. It is called from the goroutine that
// reads and must be quick and safe for concurrent use.
type Progress func(bytes int64, pages int)

type progressKey struct{}

// WithProgress returns a context under which sources report their
// progress to fn.
func WithProgress(ctx context.Context, fn Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ProgressOf returns the progress function of ctx, or one that does nothing.
func ProgressOf(ctx context.Context) Progress {
	if fn, ok := ctx.Value(progressKey{}).(Progress); ok && fn != nil {
		return fn
	}
	return func(int64, int) {}
}
