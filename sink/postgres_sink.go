package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgQueueLen is how many batches may wait between Write and the COPY: enough
// to keep the connection busy while the caller builds the next batch, small
// enough to keep memory at a few batches.
const pgQueueLen = 2

// commitTimeout bounds the one request that publishes an output (COMMIT,
// Put Block List), which is not cancelled with the run.
const commitTimeout = 2 * time.Minute

// pgStage is the temporary table merge and replacePartition load into.
const pgStage = "pbicopy_stage"

// pgBackoff says how often and how patiently the setup of a load is retried.
type pgBackoff struct {
	attempts int
	first    time.Duration
	max      time.Duration
}

func pgDefaultBackoff() pgBackoff {
	return pgBackoff{attempts: 5, first: 500 * time.Millisecond, max: 8 * time.Second}
}

// delay is the wait before attempt+1: exponential, capped, with jitter so
// that runs failing together do not retry together.
func (b pgBackoff) delay(attempt int) time.Duration {
	d := b.first << (attempt - 1)
	if d > b.max || d <= 0 {
		d = b.max
	}
	return d/2 + rand.N(d/2+1)
}

// NewPostgres opens a PostgreSQL sink that loads the batches of schema into
// opts.Table.
//
// Everything happens in one transaction on one connection, so a run is all
// or nothing: until Commit returns nil no reader sees any of its rows, and a
// failure anywhere (source, encoding, constraint, network, cancellation)
// leaves the table exactly as it was. NewPostgres connects (pgx.ParseConfig
// honours the PG* environment variables), begins the transaction, takes a
// transaction-scoped advisory lock keyed by the qualified table name (so two
// runs on one table serialise instead of interleaving), runs preSQL, checks
// the table (creating it, or adding columns with schemaEvolution:
// addColumns), and reports a column whose type does not fit before any row
// is sent. It then starts a binary COPY that Write feeds.
//
// The modes:
//   - append COPYs into the table.
//   - replace deletes every row and COPYs the new ones, in the same
//     transaction. DELETE rather than TRUNCATE or a rename swap: it is the
//     only way that is MVCC-safe for every reader. Readers are never blocked
//     and see the old rows until the commit, then the new ones; a
//     repeatable-read reader whose snapshot predates the commit keeps seeing
//     the old rows, where TRUNCATE or a swapped-in table would show it an
//     empty table. Indexes, grants, triggers, dependent views and
//     foreign keys are untouched. The price: the DELETE costs time in
//     proportion to the old rows (about a second per million here), the old
//     rows stay as dead tuples until (auto)vacuum reclaims them, and ON
//     DELETE triggers fire.
//   - merge COPYs into a temporary table, checks that the key is never null
//     and unique in the load, then runs INSERT ... ON CONFLICT (key) DO
//     UPDATE. An existing table needs a unique index on exactly the key
//     columns; a table pbicopy creates gets it as its primary key.
//   - replacePartition COPYs into a temporary table, deletes the rows whose
//     partitionColumn value occurs in the load, then inserts the load.
//
// Errors of the setup phase that say the server or the network is
// momentarily unavailable (SQLSTATE classes 08, 40, 53, 57P, refused or
// broken connections) are retried with back-off: nothing has been committed
// and no batch consumed yet. Once the COPY has started the batches cannot be
// replayed, so a transient error mid-COPY fails the run; the table is
// unchanged and the job can be run again.
//
// A second run on the same table waits for the first to end, however long
// that takes; to bound the wait, set lock_timeout in the DSN
// (options='-c lock_timeout=10min') or PGOPTIONS. The role needs INSERT on
// the table, and also DELETE for replace and replacePartition, UPDATE for
// merge, TEMPORARY on the database for merge and replacePartition, and
// CREATE on the schema to create the table.
//
// Write retains each batch until the COPY has encoded it (at most a few
// batches are held). ctx bounds the setup only; the connection lives until
// Commit or Abort.
// Result: Kind "postgres", Location the qualified table name, Rows the rows
// loaded (merge: inserted plus updated), Bytes 0.
func NewPostgres(ctx context.Context, schema *arrow.Schema, opts PostgresOptions) (Sink, error) {
	return newPostgres(ctx, schema, opts, pgDefaultBackoff())
}

var _ Sink = (*pgSink)(nil)

// pgSink is a PostgreSQL load in progress.
type pgSink struct {
	opts   PostgresOptions
	schema *arrow.Schema
	fields []pgField
	strs   []int // indexes of the string columns, checked for NUL characters

	schemaName, tableName string
	name                  string // for messages and Result.Location

	conn *pgx.Conn
	tx   pgx.Tx

	batches    chan arrow.RecordBatch
	closed     bool // batches is closed
	copyDone   chan struct{}
	cancelCopy context.CancelFunc
	copyRows   int64 // set before copyDone closes
	copyErr    error // set before copyDone closes

	written  int64 // rows accepted by Write
	err      error // first failure of Write: sticky
	finished bool  // Commit or Abort has run
}

func newPostgres(ctx context.Context, schema *arrow.Schema, opts PostgresOptions, backoff pgBackoff) (Sink, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("postgres sink: %w", err)
	}
	fields, err := pgFields(schema)
	if err != nil {
		return nil, fmt.Errorf("postgres sink for %s: %w", opts.Table, err)
	}
	s := &pgSink{opts: opts, schema: schema, fields: fields}
	s.schemaName, s.tableName, _ = pgParseTable(opts.Table)
	s.name = pgDisplayName(s.schemaName, s.tableName)
	if s.schemaName == "" {
		s.name = pgDisplayName(s.tableName)
	}
	for i, f := range fields {
		if f.kind == pgText {
			s.strs = append(s.strs, i)
		}
	}
	for _, k := range opts.Key {
		if schema.FieldIndices(k) == nil {
			return nil, fmt.Errorf("postgres sink for %s: key column %q is not among the mapped columns", s.name, k)
		}
	}
	if p := opts.PartitionColumn; p != "" && schema.FieldIndices(p) == nil {
		return nil, fmt.Errorf("postgres sink for %s: partitionColumn %q is not among the mapped columns", s.name, p)
	}

	cfg, err := pgx.ParseConfig(opts.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres sink for %s: parse dsn: %s", s.name, pgRedact(err.Error(), opts.DSN))
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "pbicopy"
	}

	attempt := 1
	for ; ; attempt++ {
		err = s.open(ctx, cfg)
		if err == nil {
			return s, nil
		}
		if attempt >= backoff.attempts || !shouldRetryPG(err) {
			break
		}
		t := time.NewTimer(backoff.delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, pgRedactErr(fmt.Errorf("%w (gave up after %d attempts: %w)", pgExplain(err), attempt, context.Cause(ctx)), opts.DSN)
		case <-t.C:
		}
	}
	err = pgExplain(err)
	if attempt > 1 {
		err = fmt.Errorf("%w (after %d attempts)", err, attempt)
	}
	return nil, pgRedactErr(err, opts.DSN)
}

// open runs the setup phase once: on failure it closes what it opened, so it
// can be retried.
func (s *pgSink) open(ctx context.Context, cfg *pgx.ConnConfig) (err error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect for %s: %w", s.name, err)
	}
	defer func() {
		if err != nil {
			conn.Close(ctx) // the server rolls back what the session began
		}
	}()
	pgRegisterCodecs(conn.TypeMap())

	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction for %s: %w", s.name, err)
	}
	schemaName := s.schemaName
	if schemaName == "" {
		var cur *string
		if err := tx.QueryRow(ctx, "select current_schema()").Scan(&cur); err != nil {
			return fmt.Errorf("resolve schema of %s: %w", s.name, err)
		}
		if cur == nil {
			return fmt.Errorf("resolve schema of %s: search_path names no existing schema: qualify the table name", s.name)
		}
		schemaName = *cur
	}
	name := pgDisplayName(schemaName, s.tableName)

	if _, err := tx.Exec(ctx, "select pg_advisory_xact_lock($1)", pgLockKey(schemaName, s.tableName)); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	if err := pgExecScript(ctx, conn, s.opts.PreSQL); err != nil {
		return fmt.Errorf("preSQL for %s: %w", name, err)
	}

	table := pgTable{schema: schemaName, name: s.tableName, display: name}
	existed, err := table.prepare(ctx, tx, s.fields, s.opts)
	if err != nil {
		return err
	}

	copyTarget := pgx.Identifier{schemaName, s.tableName}
	switch s.opts.mode() {
	case pgReplace:
		if existed {
			if _, err := tx.Exec(ctx, "delete from "+copyTarget.Sanitize()); err != nil {
				return fmt.Errorf("delete the old rows of %s: %w", name, err)
			}
		}
	case pgMerge, pgReplacePartition:
		if _, err := tx.Exec(ctx, pgCreateStageSQL(s.fields)); err != nil {
			return fmt.Errorf("create staging table for %s: %w", name, err)
		}
		copyTarget = pgx.Identifier{"pg_temp", pgStage}
	}

	s.schemaName, s.name, s.conn, s.tx = schemaName, name, conn, tx
	s.startCopy(ctx, copyTarget)
	return nil
}

// startCopy runs the COPY on its own goroutine: pgx pulls rows from a
// CopyFromSource, and Write pushes batches, so a channel joins the two.
func (s *pgSink) startCopy(ctx context.Context, target pgx.Identifier) {
	copyCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancelCopy = cancel
	s.batches = make(chan arrow.RecordBatch, pgQueueLen)
	s.copyDone = make(chan struct{})
	src := newPGCopySource(copyCtx, s.batches, s.fields, s.opts.StripNul)
	cols := make([]string, len(s.fields))
	for i, f := range s.fields {
		cols[i] = f.name
	}
	go func() {
		defer close(s.copyDone)
		n, err := s.conn.CopyFrom(copyCtx, target, cols, src)
		src.release()
		if src.err != nil {
			// The source's own error says more than the server's "COPY
			// from stdin failed" that it caused.
			err = src.err
		}
		s.copyRows, s.copyErr = n, err
	}()
}

// Write queues rec for the COPY. It returns the COPY's error if the COPY has
// already failed, and refuses a string holding a NUL character unless the
// sink strips them. Write retains rec until the COPY has consumed it. A
// failed Write is sticky: every later Write and Commit returns its error,
// and Commit rolls back.
func (s *pgSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if s.err != nil {
		return s.err
	}
	if err := s.write(ctx, rec); err != nil {
		s.err = err
		return err
	}
	return nil
}

func (s *pgSink) write(ctx context.Context, rec arrow.RecordBatch) error {
	if s.finished || s.closed {
		return fmt.Errorf("write to %s: the sink is already committed or aborted", s.name)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write to %s: %w", s.name, context.Cause(ctx))
	}
	if !s.schema.Equal(rec.Schema()) {
		return fmt.Errorf("write to %s: the batch's schema %s differs from the sink's %s", s.name, rec.Schema(), s.schema)
	}
	if rec.NumRows() == 0 {
		return nil
	}
	if !s.opts.StripNul {
		for _, i := range s.strs {
			if r, ok := pgFindNul(rec.Column(i).(*array.String)); ok {
				return fmt.Errorf("write to %s: row %d, column %q: the string holds a NUL character, which PostgreSQL text cannot store (set stripNul: true to drop NUL characters)",
					s.name, s.written+int64(r)+1, s.fields[i].name)
			}
		}
	}
	select {
	case <-s.copyDone:
		return s.copyFailure()
	default:
	}
	rec.Retain()
	select {
	case s.batches <- rec:
		s.written += rec.NumRows()
		return nil
	case <-s.copyDone:
		rec.Release()
		return s.copyFailure()
	case <-ctx.Done():
		rec.Release()
		return fmt.Errorf("write to %s: %w", s.name, context.Cause(ctx))
	}
}

// copyFailure is the error of a COPY that ended before Commit.
func (s *pgSink) copyFailure() error {
	if s.copyErr == nil {
		return fmt.Errorf("copy into %s: the copy ended early", s.name)
	}
	return pgExplain(fmt.Errorf("copy into %s: %w", s.name, s.copyErr))
}

// pgFindNul returns the first row of a whose value holds a NUL byte.
func pgFindNul(a *array.String) (int, bool) {
	if bytes.IndexByte(a.ValueBytes(), 0) < 0 {
		return 0, false
	}
	for r := 0; r < a.Len(); r++ {
		if a.IsValid(r) && strings.IndexByte(a.Value(r), 0) >= 0 {
			return r, true
		}
	}
	return 0, false
}

// Commit ends the COPY, finishes the mode's work (merge, partition delete),
// runs postSQL and commits. On failure the transaction is rolled back.
func (s *pgSink) Commit(ctx context.Context) (Result, error) {
	if s.err != nil {
		return Result{}, errors.Join(s.err, s.Abort(ctx))
	}
	if s.finished {
		return Result{}, fmt.Errorf("commit %s: the sink is already committed or aborted", s.name)
	}
	s.finished = true
	s.closeBatches()
	select {
	case <-s.copyDone:
	case <-ctx.Done():
		s.cancelCopy()
		<-s.copyDone
	}
	s.cancelCopy()
	s.drain()
	rows, err := s.finish(ctx)
	if err != nil {
		s.rollback(ctx)
		return Result{}, pgExplain(err)
	}
	_ = s.conn.Close(ctx) // committed already: an error here changes nothing
	return Result{Kind: "postgres", Location: s.name, Rows: rows}, nil
}

func (s *pgSink) finish(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("commit %s: %w", s.name, context.Cause(ctx))
	}
	if s.copyErr != nil {
		return 0, fmt.Errorf("copy into %s: %w", s.name, s.copyErr)
	}
	if s.copyRows != s.written {
		return 0, fmt.Errorf("copy into %s: %d rows sent but the server counted %d", s.name, s.written, s.copyRows)
	}
	rows := s.copyRows
	table := pgTable{schema: s.schemaName, name: s.tableName, display: s.name}
	var err error
	switch s.opts.mode() {
	case pgMerge:
		rows, err = table.merge(ctx, s.tx, s.fields, s.opts.Key)
	case pgReplacePartition:
		rows, err = table.replacePartition(ctx, s.tx, s.fields, s.opts.PartitionColumn, s.opts.Partition)
	}
	if err != nil {
		return 0, err
	}
	if err := pgExecScript(ctx, s.conn, s.opts.PostSQL); err != nil {
		return 0, fmt.Errorf("postSQL for %s: %w", s.name, err)
	}
	// Once the load is complete, COMMIT is sent whatever happens to ctx: a
	// cancellation racing it would drop the connection without saying
	// whether the server committed.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := s.tx.Commit(cctx); err != nil {
		return 0, fmt.Errorf("commit %s: %w", s.name, err)
	}
	return rows, nil
}

// Abort stops the COPY and rolls the transaction back. It is a no-op after
// Commit, successful or not.
func (s *pgSink) Abort(ctx context.Context) error {
	if s.finished {
		return nil
	}
	s.finished = true
	s.cancelCopy()
	s.closeBatches()
	<-s.copyDone
	s.drain()
	return s.rollback(ctx)
}

func (s *pgSink) closeBatches() {
	if !s.closed {
		s.closed = true
		close(s.batches)
	}
}

// drain releases the batches the COPY did not consume. Call it after the COPY
// goroutine has ended and batches is closed.
func (s *pgSink) drain() {
	for rec := range s.batches {
		rec.Release()
	}
}

// rollback discards the transaction and closes the connection. A connection
// that is already closed (a cancelled COPY closes it) needs no rollback: the
// server discards the transaction of a session that ends.
func (s *pgSink) rollback(ctx context.Context) error {
	if s.conn.IsClosed() {
		return nil
	}
	err := s.tx.Rollback(ctx)
	s.conn.Close(ctx)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("roll back %s: %w", s.name, err)
	}
	return nil
}

// pgLockKey is the advisory lock key of a table: a hash of its qualified
// name, prefixed so that it is unlikely to meet another application's keys.
func pgLockKey(schema, table string) int64 {
	h := fnv.New64a()
	h.Write([]byte("pbicopy\x00" + schema + "\x00" + table))
	return int64(h.Sum64())
}

// pgExecScript runs user SQL, possibly several statements, with the simple
// protocol, and checks that it left the transaction open.
func pgExecScript(ctx context.Context, conn *pgx.Conn, script string) error {
	if strings.TrimSpace(script) == "" {
		return nil
	}
	if _, err := conn.PgConn().Exec(ctx, script).ReadAll(); err != nil {
		return err
	}
	if st := conn.PgConn().TxStatus(); st != 'T' {
		return errors.New("the statements ended the load's transaction: remove COMMIT, ROLLBACK or END")
	}
	return nil
}

// shouldRetryPG reports whether err says the server or the network was
// momentarily unavailable, so that the same work may succeed later:
// SQLSTATE classes 08 (connection exception), 40 (transaction rollback:
// serialization failure, deadlock), 53 (insufficient resources) and 57P
// (operator intervention: shutdown, cannot connect now), and network errors
// without a SQLSTATE. Everything else, constraint and data errors included,
// is permanent, as is a cancelled or expired context.
func shouldRetryPG(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		c := pgErr.Code
		return strings.HasPrefix(c, "08") || strings.HasPrefix(c, "40") || strings.HasPrefix(c, "53") || strings.HasPrefix(c, "57P")
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}

var pgPasswordRE = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// pgRedact removes the DSN's password from text. pgx already redacts the
// passwords it recognises; this also covers the malformed strings where it
// cannot.
func pgRedact(text, dsn string) string {
	var secrets []string
	for _, m := range pgPasswordRE.FindAllStringSubmatch(dsn, -1) {
		secrets = append(secrets, m[1], strings.Trim(m[1], "'"))
	}
	if _, rest, ok := strings.Cut(dsn, "://"); ok {
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				secrets = append(secrets, pw)
				if u, err := url.PathUnescape(pw); err == nil {
					secrets = append(secrets, u)
				}
			}
		}
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw)
		}
	}
	for _, p := range secrets {
		if p != "" {
			text = strings.ReplaceAll(text, p, "xxxxx")
		}
	}
	return text
}

// pgRedactErr returns err unchanged if its text holds no password, and
// otherwise an error with the redacted text that still wraps err for
// errors.Is and errors.As.
func pgRedactErr(err error, dsn string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := pgRedact(msg, dsn); red != msg {
		return &pgMessageError{msg: red, err: err}
	}
	return err
}

// pgExplain adds to err's text what the server said beyond its message, if
// err holds a server error: the detail ("Key (id)=(5) already exists."),
// the hint, and where it happened (for a COPY, the line, which is the row
// number, and the column).
func pgExplain(err error) error {
	var pe *pgconn.PgError
	var done *pgMessageError
	if !errors.As(err, &pe) || errors.As(err, &done) {
		return err
	}
	var extra []string
	if pe.Detail != "" {
		extra = append(extra, pe.Detail)
	}
	if pe.Hint != "" {
		extra = append(extra, "hint: "+pe.Hint)
	}
	if pe.Where != "" {
		extra = append(extra, "at "+pe.Where)
	}
	if len(extra) == 0 {
		return err
	}
	return &pgMessageError{msg: err.Error() + " (" + strings.Join(extra, "; ") + ")", err: err}
}

// pgMessageError replaces the text of the error it wraps.
type pgMessageError struct {
	msg string
	err error
}

func (e *pgMessageError) Error() string { return e.msg }
func (e *pgMessageError) Unwrap() error { return e.err }
