package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Spec is one sink of a job file: exactly one of its fields is set. Its
// methods are the one place that tells the kinds of sink apart: a new kind
// is a field here, an arm of kind, and an implementation of kindOptions.
type Spec struct {
	Parquet  *ParquetOptions  `yaml:"parquet" doc:"Write a Parquet file."`
	CSV      *CSVOptions      `yaml:"csv" doc:"Write a CSV file."`
	Postgres *PostgresOptions `yaml:"postgres" doc:"Load a PostgreSQL table."`
}

// kindOptions is what the options of each kind of sink provide.
type kindOptions interface {
	// Validate checks the option values on their own; each error starts
	// with the field it is about.
	Validate() error
	// target places the sink for one partition.
	target(r Resolver, path string, rng *PartitionRange) (target, error)
}

// fileOptions are the options of a kind of sink that writes files.
type fileOptions interface {
	kindOptions
	path() string
	setPath(p string)
	Output() OutputOptions
	encode(dst Destination, schema *arrow.Schema, mem memory.Allocator) (Sink, error)
}

// kind returns the name and the options of the sink s holds, and how many
// kinds it holds (one, unless the job file is wrong).
func (s Spec) kind() (name string, opts kindOptions, n int) {
	if s.Parquet != nil {
		name, opts, n = "parquet", s.Parquet, n+1
	}
	if s.CSV != nil {
		name, opts, n = "csv", s.CSV, n+1
	}
	if s.Postgres != nil {
		name, opts, n = "postgres", s.Postgres, n+1
	}
	return name, opts, n
}

// Kinds are the kinds of sink, as the job file names them.
var Kinds = []string{"parquet", "csv", "postgres"}

// Kind names the sink s holds: parquet, csv or postgres ("" for none).
func (s Spec) Kind() string {
	name, _, _ := s.kind()
	return name
}

// Validate checks that s holds exactly one sink and its option values (not
// its path, which is a template). An error about the options starts with
// the kind and the field ("csv: lineEnding: ...").
func (s Spec) Validate() error {
	name, opts, n := s.kind()
	if n != 1 {
		return errors.New("each sink holds exactly one of parquet, csv or postgres")
	}
	if err := opts.Validate(); err != nil {
		var errs []error
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("%s: %w", name, e))
		}
		return errors.Join(errs...)
	}
	return nil
}

func unjoin(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		return u.Unwrap()
	}
	return []error{err}
}

// partitionRules is implemented by the options of a kind of sink that has
// rules of its own for partitioned jobs.
type partitionRules interface {
	partitioned() (problem, warning error)
}

// Partitioned checks s for a job that runs one partition per step of a
// parameter: a problem makes the job invalid, a warning is worth a look.
// Each starts with the field it is about.
func (s Spec) Partitioned() (problem, warning error) {
	_, opts, _ := s.kind()
	if r, ok := opts.(partitionRules); ok {
		return r.partitioned()
	}
	return nil, nil
}

// incrementalRules is implemented by the options of a kind of sink that
// has rules of its own for incremental jobs.
type incrementalRules interface {
	incremental(lookback bool) (problem, warning error)
}

// Incremental checks s for an incremental job, which reads again, after a
// failed run or within its lookback, rows an earlier run loaded: a problem
// makes the job invalid, a warning is worth a look. Each starts with the
// field it is about.
func (s Spec) Incremental(lookback bool) (problem, warning error) {
	_, opts, _ := s.kind()
	if r, ok := opts.(incrementalRules); ok {
		return r.incremental(lookback)
	}
	return nil, nil
}

// Path is the output path template of a file sink, as the job writes it;
// "" for a table sink.
func (s Spec) Path() string {
	if f, ok := s.file(); ok {
		return f.path()
	}
	return ""
}

// Output returns the options a file sink's output shares with every file
// output; ok is false for a table sink.
func (s Spec) Output() (out OutputOptions, ok bool) {
	if f, ok := s.file(); ok {
		return f.Output(), true
	}
	return OutputOptions{}, false
}

func (s Spec) file() (fileOptions, bool) {
	_, opts, _ := s.kind()
	f, ok := opts.(fileOptions)
	return f, ok
}

// SetPath replaces the output path of a file sink (the options s points
// to); a table sink is left as it is.
func (s Spec) SetPath(path string) {
	if f, ok := s.file(); ok {
		f.setPath(path)
	}
}

// Location is where the sink writes as its job file says it: the path
// template of a file sink, the table of a table sink.
func (s Spec) Location() string {
	if s.Postgres != nil {
		return s.Postgres.Table
	}
	return s.Path()
}

// Target places s for one partition: path is its output path rendered for
// the partition ("" for a table sink), rng the partition's range of values
// (nil for an unpartitioned job), r where the job's files go. It reads the
// environment but makes no request.
func (s Spec) Target(r Resolver, path string, rng *PartitionRange) (*Target, error) {
	name, opts, n := s.kind()
	if n != 1 {
		return nil, errors.New("each sink holds exactly one of parquet, csv or postgres")
	}
	t, err := opts.target(r, path, rng)
	if err != nil {
		return nil, err
	}
	return &Target{Kind: name, t: t}, nil
}

// Target is one sink of one partition: where it publishes, and how to open
// it, check it and describe it.
type Target struct {
	Kind string // parquet, csv or postgres
	t    target
}

type target interface {
	rank() int
	repeats() bool
	location() string
	identity() string
	describe() string
	open(ctx context.Context, schema *arrow.Schema, env Env) (Sink, error)
	probe(ctx context.Context, env Env) (string, error)
}

// Env is what opening a sink needs from the run.
type Env struct {
	// Storage reaches blob containers; nil reaches local paths only.
	Storage Storage
	// Mem allocates the buffers of Arrow and Parquet; nil is the Go
	// allocator.
	Mem memory.Allocator
	// Log receives the warnings of committed outputs; nil discards them.
	Log *slog.Logger
	// Metadata, when not nil, gives key-value metadata to record in each
	// Parquet file (its footer), read when the file is finished: a source
	// may learn it while it reads (the sensitivity label of the data).
	Metadata func() map[string]string
}

func (e Env) mem() memory.Allocator {
	if e.Mem == nil {
		return memory.DefaultAllocator
	}
	return e.Mem
}

// CommitRank orders the commits of a partition's sinks, lowest first: the
// commit most likely to fail goes first, so that a failure leaves as few
// outputs published as can be. A PostgreSQL COMMIT can fail on a
// constraint, a serialization failure or a lost connection (0); a blob's
// block-list commit is one request that can fail on the network (1); a
// local rename almost never fails (2). An append goes last of all (3),
// whatever its odds: it is the one load a re-run repeats instead of
// replacing, so it commits only once every other output has, and a
// failure before it leaves only outputs a re-run replaces.
func (t *Target) CommitRank() int { return t.t.rank() }

// Repeats reports whether running the load again adds its rows a second
// time (an append) instead of replacing what the first run published.
func (t *Target) Repeats() bool { return t.t.repeats() }

// Location is where the sink publishes: an absolute path (with PartMarker
// standing for the part number of a split output), a blob URL or a
// schema-qualified table. It holds no secret.
func (t *Target) Location() string { return t.t.location() }

// Identity is what the sink publishes to, for the fingerprint that tells a
// partition already done: its kind and location, and for a table the
// database and the load mode. It holds no secret.
func (t *Target) Identity() string { return t.Kind + " " + t.t.identity() }

// Describe says where the sink publishes and how, for a plan; it never
// shows a secret.
func (t *Target) Describe() string { return t.t.describe() }

// Open opens the sink for batches of schema.
func (t *Target) Open(ctx context.Context, schema *arrow.Schema, env Env) (Sink, error) {
	return t.t.open(ctx, schema, env)
}

// Probe proves, without publishing anything, that the sink could publish,
// and says what it proved: a local folder accepts a file; a blob container
// is reachable with the credential, which may read the target and stage a
// block beside it (never committed); a PostgreSQL table can be loaded
// (checked in a transaction that is rolled back).
func (t *Target) Probe(ctx context.Context, env Env) (string, error) {
	return t.t.probe(ctx, env)
}

// fileSink is a file output of one partition.
type fileSink struct {
	kind string
	opts fileOptions
	*fileTarget
}

func fileTargetOf(kind string, opts fileOptions, r Resolver, path string) (target, error) {
	ft, err := r.file(path, opts.Output())
	if err != nil {
		return nil, err
	}
	return &fileSink{kind: kind, opts: opts, fileTarget: ft}, nil
}

func (f *fileSink) location() string { return f.fileTarget.location }

func (f *fileSink) rank() int {
	if f.blob {
		return 1
	}
	return 2
}
func (f *fileSink) identity() string { return f.fileTarget.location }

func (f *fileSink) repeats() bool { return false }

func (f *fileSink) describe() string {
	t := f.fileTarget
	var b strings.Builder
	b.WriteString(f.kind + " " + t.location)
	if t.out.Split() {
		b.WriteString(" (parts")
		if t.out.MaxRows > 0 {
			fmt.Fprintf(&b, " of at most %d rows", t.out.MaxRows)
		}
		if t.out.MaxBytes > 0 {
			fmt.Fprintf(&b, " of about %d bytes", t.out.MaxBytes)
		}
		b.WriteString(", listed by " + ManifestName + ")")
	}
	if !t.out.Overwrite {
		b.WriteString(" (create only)")
	}
	if t.blob {
		if t.resolveErr != nil {
			b.WriteString(" [" + t.resolveErr.Error() + "]")
		} else {
			fmt.Fprintf(&b, " [%s; blocks of %d bytes, %d at once]", t.method, t.blobOpts.EffectiveBlockSize(), t.blobOpts.EffectiveConcurrency())
		}
	}
	return b.String()
}

// open opens a file output: one file, or a split output, locally or in a
// blob container.
func (f *fileSink) open(ctx context.Context, schema *arrow.Schema, env Env) (Sink, error) {
	t := *f.fileTarget
	t.blobOpts.Metadata = env.Metadata
	folder, err := t.folder(ctx, env.Storage)
	if err != nil {
		return nil, err
	}
	encoder := func(dst Destination) (Sink, error) {
		s, err := f.opts.encode(dst, schema, env.mem())
		if p, ok := s.(*parquetSink); ok {
			p.meta = env.Metadata
		}
		return s, err
	}
	var s Sink
	if t.out.Split() {
		s, err = NewSplit(ctx, SplitConfig{Folder: folder, Pattern: t.name, Encoder: encoder, Format: f.kind, Job: t.job, Output: t.out, Metadata: env.Metadata})
		if err != nil {
			return nil, err
		}
	} else {
		dst, err := folder.Open(ctx, t.name, t.out.Overwrite)
		if err != nil {
			return nil, err
		}
		if s, err = encoder(dst); err != nil {
			_ = dst.Abort(ctx)
			return nil, err
		}
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &warningSink{Sink: s, log: log.With("sink", f.kind)}, nil
}

func (f *fileSink) probe(ctx context.Context, env Env) (string, error) {
	t := f.fileTarget
	if !t.blob {
		path := PartName(t.location, 0)
		dir, create, err := ProbeLocal(path)
		if err != nil {
			return "", err
		}
		msg := "folder " + dir + " is writable"
		if create {
			msg += "; the folders of " + path + " will be created"
		}
		return msg, nil
	}
	folder, err := t.folder(ctx, env.Storage)
	if err != nil {
		return "", err
	}
	p, ok := folder.(Prober)
	if !ok {
		return "", fmt.Errorf("%s: the folder cannot be probed", t.location)
	}
	name := PartName(t.name, 0)
	exists, err := p.Probe(ctx, name)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("%s: reachable with %s, which may read and write there", folder.Location(name), t.method)
	switch {
	case exists && !t.out.Overwrite:
		return "", fmt.Errorf("%s exists and overwrite is false: the run would fail", folder.Location(name))
	case exists:
		msg += "; the blob exists and will be replaced"
	}
	return msg, nil
}

// warningSink logs the warnings of a committed output.
type warningSink struct {
	Sink
	log *slog.Logger
}

func (w *warningSink) Commit(ctx context.Context) (Result, error) {
	res, err := w.Sink.Commit(ctx)
	for _, msg := range res.Warnings {
		w.log.Warn(msg, "location", res.Location)
	}
	return res, err
}

// The options of each kind of sink.

func (o *ParquetOptions) target(r Resolver, path string, _ *PartitionRange) (target, error) {
	return fileTargetOf("parquet", o, r, path)
}

func (o *ParquetOptions) path() string     { return o.Path }
func (o *ParquetOptions) setPath(p string) { o.Path = p }

func (o *ParquetOptions) encode(dst Destination, schema *arrow.Schema, mem memory.Allocator) (Sink, error) {
	return NewParquet(dst, schema, *o, mem)
}

func (o *CSVOptions) target(r Resolver, path string, _ *PartitionRange) (target, error) {
	return fileTargetOf("csv", o, r, path)
}

func (o *CSVOptions) path() string     { return o.Path }
func (o *CSVOptions) setPath(p string) { o.Path = p }

func (o *CSVOptions) encode(dst Destination, schema *arrow.Schema, _ memory.Allocator) (Sink, error) {
	return NewCSV(dst, schema, *o)
}

// tableSink is a PostgreSQL table loaded by one partition.
type tableSink struct {
	opts PostgresOptions
}

func (o *PostgresOptions) target(_ Resolver, _ string, rng *PartitionRange) (target, error) {
	opts := *o
	if opts.mode() == pgReplacePartition && rng != nil {
		opts.Partition = rng
	}
	return &tableSink{opts: opts}, nil
}

func (t *tableSink) location() string { return t.opts.Table }

func (t *tableSink) rank() int {
	if t.opts.mode() == pgAppend {
		return 3
	}
	return 0
}

func (t *tableSink) repeats() bool { return t.opts.mode() == pgAppend }

func (t *tableSink) identity() string {
	return t.opts.database() + " " + t.opts.Table + " " + t.opts.mode()
}

func (t *tableSink) describe() string {
	return "postgres " + t.opts.Table + " (" + t.opts.mode() + ")"
}

func (t *tableSink) open(ctx context.Context, schema *arrow.Schema, _ Env) (Sink, error) {
	return NewPostgres(ctx, schema, t.opts)
}

func (t *tableSink) probe(ctx context.Context, _ Env) (string, error) {
	return ProbePostgres(ctx, t.opts)
}
