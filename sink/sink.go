// Package sink writes Arrow record batches to their destinations: Parquet and
// CSV files (local or in Azure Blob Storage) and PostgreSQL tables.
//
// A sink is opened for one output with a fixed schema, receives batches, and
// then either commits (publishes everything, all or nothing) or aborts (leaves
// whatever was published before untouched).
package sink

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
)

// Sink receives the batches of one output.
//
// Write is called from one goroutine at a time, with batches whose schema is
// the one given when the sink was opened. The caller owns rec and releases it
// after Write returns; a sink that needs rec longer must Retain it. A failed
// Write is sticky: every later Write and Commit returns that error (Commit
// after aborting), so nothing written around a failure can be published.
//
// Commit publishes everything written, atomically: after it returns nil the
// output is visible in full; after it returns an error nothing new is visible.
// Abort discards what was written; it is safe to call after a failed Write or
// a failed Commit and is a no-op after a successful Commit. Exactly one of
// Commit or Abort is called; ctx bounds the call.
type Sink interface {
	Write(ctx context.Context, rec arrow.RecordBatch) error
	Commit(ctx context.Context) (Result, error)
	Abort(ctx context.Context) error
}

// Result describes what a committed sink published.
type Result struct {
	Kind     string // "parquet", "csv", "postgres"
	Location string // absolute path, URL, or schema-qualified table
	Rows     int64  // rows published
	Bytes    int64  // bytes published (0 where it has no meaning)
	Files    []File // files published (file sinks)
	// Warnings are things the caller should log although the output was
	// published, such as a previous part that could not be removed.
	Warnings []string `json:",omitempty"`
}

// File is one published file.
type File struct {
	Location string
	Rows     int64
	Bytes    int64
	SHA256   string // hex
}
