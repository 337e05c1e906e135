package sink

import (
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
// honours the PG* environment variables), begins the transaction, runs
// preSQL, checks the table (it may be missing if createTable allows, or
// lack columns if schemaEvolution: addColumns allows), reports a column
// whose type does not fit before any row is sent, and starts a binary COPY
// that Write feeds.
//
// Locks. No lock that another load waits for is taken before Commit, so a
// load whose source is slow or stalled holds up no other: the COPY goes
// into the table itself (append, replace), into a new table of a private
// name (append, replace of a missing table) or into a temporary table
// (merge, replacePartition, columns to add). Commit then takes a
// transaction-scoped advisory lock keyed by the qualified table name, the
// narrowest that keeps the mode's guarantee, and does the mode's work under
// it:
//   - append into an existing table takes none: appends need no order.
//   - replace takes the table's lock and deletes every row but those its
//     COPY wrote (told apart by xmin). DELETE rather than TRUNCATE or a
//     rename swap: it is the only way that is MVCC-safe for every reader.
//     Readers are never blocked and see the old rows until the commit,
//     then the new ones; a repeatable-read reader whose snapshot predates
//     the commit keeps seeing the old rows, where TRUNCATE or a swapped-in
//     table would show it an empty table. Indexes, grants, triggers,
//     dependent views and foreign keys are untouched. The price: the old
//     rows stay as dead tuples until (auto)vacuum reclaims them, and ON
//     DELETE triggers fire.
//   - a missing table is created under the table's lock at the commit
//     (the private table renamed, or created and filled from the
//     temporary table), as are columns that schemaEvolution adds and,
//     with createSchema, a missing schema (under the schema's lock).
//   - merge checks that the key is never null and unique in the load, then
//     runs INSERT ... ON CONFLICT (key) DO UPDATE under the table's lock.
//     An existing table needs a unique index on exactly the key columns; a
//     table pbicopy creates gets it as its primary key.
//   - replacePartition, when every loaded value of partitionColumn lies in
//     the partition's range, takes the table's lock shared and the range's
//     lock, deletes the range and inserts the load: partitions of one
//     table commit side by side. A load without a range, or with values
//     outside it, deletes the rows whose value occurs in the load too, and
//     takes the table's lock.
//
// Errors of the setup phase that say the server or the network is
// momentarily unavailable (SQLSTATE classes 08, 40, 53, 57P, refused or
// broken connections) are retried with back-off: nothing has been committed
// and no batch consumed yet. Once the COPY has started the batches cannot be
// replayed, so a transient error mid-COPY fails the run; the table is
// unchanged and the job can be run again.
//
// A load waits for a lock (another load's commit, DDL, rows others are
// writing) at most opts.LockTimeout (SET LOCAL lock_timeout); then it
// fails with an error naming the table and the sessions holding the lock.
// The role needs
// INSERT on the table, and also DELETE for replace and replacePartition,
// UPDATE for merge, TEMPORARY on the database for merge,
// replacePartition and a load that adds columns, and CREATE on the schema
// to create the table.
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

	cfg      *pgx.ConnConfig // to look up who holds a lock the load timed out on
	pid      uint32          // the load's backend
	lockKeys []int64         // the advisory locks the commit asked for

	path    pgPath       // where the COPY goes
	private string       // pgNewTable: the table's name until the commit
	state   pgTableState // the table as the setup found it
}

// pgPath is where a load COPYs its rows.
type pgPath uint8

const (
	// pgDirect: into the table (append and replace of an existing table).
	pgDirect pgPath = iota + 1
	// pgNewTable: into a new table of a private name, renamed at the commit
	// (append and replace of a table that does not exist yet).
	pgNewTable
	// pgStaged: into a temporary table, moved at the commit (merge,
	// replacePartition, and columns or a table to create otherwise).
	pgStaged
)

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

	s.cfg = cfg
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
			return nil, pgRedactErr(fmt.Errorf("%w (gave up after %d attempts: %w)", s.explain(err), attempt, context.Cause(ctx)), opts.DSN)
		case <-t.C:
		}
	}
	err = s.explain(err)
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
	s.pid = conn.PgConn().PID()

	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction for %s: %w", s.name, err)
	}
	// lockTimeout bounds every wait for a lock in the load's transaction:
	// the commit's advisory lock, and table and row locks held by others.
	if _, err := tx.Exec(ctx, fmt.Sprintf("set local lock_timeout = %d", max(1, s.opts.lockTimeout().Milliseconds()))); err != nil {
		return fmt.Errorf("set lockTimeout for %s: %w", s.name, err)
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

	if err := pgExecScript(ctx, conn, s.opts.PreSQL); err != nil {
		return fmt.Errorf("preSQL for %s: %w", name, err)
	}

	table := pgTable{schema: schemaName, name: s.tableName, display: name}
	st, err := table.inspect(ctx, tx, s.fields, s.opts)
	if err != nil {
		return err
	}

	// Where the COPY goes decides which lock the commit needs; none is
	// taken before the commit, so a load waiting for its source holds
	// nothing another load waits for.
	copyTarget := pgx.Identifier{schemaName, s.tableName}
	mode := s.opts.mode()
	switch {
	case (mode == pgAppend || mode == pgReplace) && st.exists && len(st.missing) == 0:
		s.path = pgDirect
	case (mode == pgAppend || mode == pgReplace) && !st.exists && st.schemaExists:
		// A table of its own, invisible to others until the commit renames
		// it: creating the target now would make every other load of it
		// wait for this one.
		s.path = pgNewTable
		s.private = fmt.Sprintf("pbicopy_new_%016x", rand.Uint64())
		copyTarget = pgx.Identifier{schemaName, s.private}
		if _, err := tx.Exec(ctx, pgCreateTableSQL(copyTarget.Sanitize(), s.fields, nil)); err != nil {
			return fmt.Errorf("create table %s: %w", name, err)
		}
	default:
		s.path = pgStaged
		if _, err := tx.Exec(ctx, pgCreateStageSQL(s.fields)); err != nil {
			return fmt.Errorf("create staging table for %s: %w", name, err)
		}
		copyTarget = pgx.Identifier{"pg_temp", pgStage}
	}

	s.schemaName, s.name, s.conn, s.tx, s.state = schemaName, name, conn, tx, st
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
			if r, ok := pgFindNul(rec.Column(i)); ok {
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
	return s.explain(fmt.Errorf("copy into %s: %w", s.name, s.copyErr))
}

// pgFindNul returns the first row of a, a string column, whose value holds
// a NUL byte.
func pgFindNul(a arrow.Array) (int, bool) {
	c := stringsOf(a)
	if !c.mayHoldByte(0) {
		return 0, false
	}
	for r := 0; r < a.Len(); r++ {
		if a.IsValid(r) && strings.IndexByte(c.Value(r), 0) >= 0 {
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
		return Result{}, s.explain(err)
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
	rows, err := s.publish(ctx)
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

// publish does the work of the commit that needs a lock: it takes the
// narrowest lock that keeps the mode's guarantee, and moves the loaded rows
// into place. It returns the rows loaded.
func (s *pgSink) publish(ctx context.Context) (int64, error) {
	table := pgTable{schema: s.schemaName, name: s.tableName, display: s.name}
	mode := s.opts.mode()
	switch s.path {
	case pgDirect:
		if mode == pgAppend {
			return s.copyRows, nil // appends need no order among themselves
		}
		if err := s.lock(ctx, table, pgLockTable); err != nil {
			return 0, err
		}
		return s.copyRows, s.deleteOthers(ctx, table)

	case pgNewTable:
		if err := s.lock(ctx, table, pgLockTable); err != nil {
			return 0, err
		}
		private := pgx.Identifier{s.schemaName, s.private}.Sanitize()
		st, err := table.inspect(ctx, s.tx, s.fields, s.opts)
		if err != nil {
			return 0, err
		}
		if !st.exists {
			if _, err := s.tx.Exec(ctx, "alter table "+private+" rename to "+pgx.Identifier{s.tableName}.Sanitize()); err != nil {
				return 0, fmt.Errorf("create table %s: %w", s.name, err)
			}
			return s.copyRows, nil
		}
		// Another load created the table meanwhile.
		n, err := s.insertStaged(ctx, table, private)
		if err != nil {
			return 0, err
		}
		if _, err := s.tx.Exec(ctx, "drop table "+private); err != nil {
			return 0, fmt.Errorf("load %s: %w", s.name, err)
		}
		return n, nil
	}

	// Staged: merge, replacePartition, or a table or columns to create.
	kind := pgLockTable
	inRange := false
	if mode == pgReplacePartition {
		strays, err := table.strays(ctx, s.tx, s.opts.PartitionColumn, s.opts.Partition)
		if err != nil {
			return 0, err
		}
		inRange = !strays
		if inRange && s.state.exists && len(s.state.missing) == 0 {
			kind = pgLockRange
		}
	}
	if !s.state.schemaExists {
		if err := s.createSchema(ctx, table); err != nil {
			return 0, err
		}
	}
	if err := s.lock(ctx, table, kind); err != nil {
		return 0, err
	}
	switch mode {
	case pgMerge:
		if _, err := table.prepare(ctx, s.tx, s.fields, s.opts); err != nil {
			return 0, err
		}
		return table.merge(ctx, s.tx, s.fields, s.opts.Key)
	case pgReplacePartition:
		if kind == pgLockTable {
			if _, err := table.prepare(ctx, s.tx, s.fields, s.opts); err != nil {
				return 0, err
			}
		}
		return table.replacePartition(ctx, s.tx, s.fields, s.opts.PartitionColumn, s.opts.Partition, inRange)
	}
	return s.insertStaged(ctx, table, pgStageIdent)
}

// insertStaged prepares the table (creating it or adding columns) and
// inserts the rows of from, first deleting the old rows for replace.
func (s *pgSink) insertStaged(ctx context.Context, table pgTable, from string) (int64, error) {
	existed, err := table.prepare(ctx, s.tx, s.fields, s.opts)
	if err != nil {
		return 0, err
	}
	if existed && s.opts.mode() == pgReplace {
		if _, err := s.tx.Exec(ctx, "delete from "+table.ident()); err != nil {
			return 0, fmt.Errorf("delete the old rows of %s: %w", s.name, err)
		}
	}
	n, err := table.insertFrom(ctx, s.tx, s.fields, from)
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", s.name, err)
	}
	return n, nil
}

// deleteOthers deletes, for replace, every row of the table but those this
// transaction wrote: the COPY went straight into the table, so its rows
// are told apart by their xmin. Under the table's lock, the DELETE's
// snapshot holds every load committed before, so the last replace wins
// whole.
func (s *pgSink) deleteOthers(ctx context.Context, table pgTable) error {
	if _, err := s.tx.Exec(ctx, "delete from "+table.ident()+" where xmin <> pg_current_xact_id()::xid"); err != nil {
		return fmt.Errorf("delete the old rows of %s: %w", s.name, err)
	}
	// A transaction id is 32 bits in a row: once the cluster has used
	// 2^32 of them, a frozen old row may carry this transaction's number.
	// Count what is left then, so that such a row fails the load instead
	// of staying.
	var wrapped bool
	if err := s.tx.QueryRow(ctx, "select pg_current_xact_id()::text::numeric >= 4294967296").Scan(&wrapped); err != nil {
		return fmt.Errorf("delete the old rows of %s: %w", s.name, err)
	}
	if !wrapped {
		return nil
	}
	var left int64
	if err := s.tx.QueryRow(ctx, "select count(*) from "+table.ident()).Scan(&left); err != nil {
		return fmt.Errorf("delete the old rows of %s: %w", s.name, err)
	}
	if left != s.copyRows {
		return fmt.Errorf("delete the old rows of %s: %d rows would remain beside the %d loaded; nothing was changed", s.name, left-s.copyRows, s.copyRows)
	}
	return nil
}

// createSchema creates the table's schema (createSchema: true) under the
// schema's lock, taken before any table's lock, so that loads of the
// tables of a new schema do not race to create it.
func (s *pgSink) createSchema(ctx context.Context, table pgTable) error {
	key := pgSchemaLockKey(table.schema)
	s.lockKeys = []int64{key}
	if _, err := s.tx.Exec(ctx, "select pg_advisory_xact_lock($1)", key); err != nil {
		return fmt.Errorf("lock schema %s: %w", pgDisplayName(table.schema), err)
	}
	if _, err := s.tx.Exec(ctx, "create schema if not exists "+pgx.Identifier{table.schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", pgDisplayName(table.schema), err)
	}
	return nil
}

// The locks a commit takes, all transaction-scoped advisory locks keyed by
// the qualified table name (and the partition's range).
const (
	// pgLockTable is the table's lock, exclusive: the load has the table
	// to itself for its commit.
	pgLockTable = iota
	// pgLockRange is the table's lock shared and the partition range's
	// lock exclusive: loads of other ranges commit at the same time.
	pgLockRange
)

// lock takes the commit's lock.
func (s *pgSink) lock(ctx context.Context, table pgTable, kind int) error {
	key := pgLockKey(table.schema, table.name)
	var err error
	switch kind {
	case pgLockTable:
		s.lockKeys = []int64{key}
		_, err = s.tx.Exec(ctx, "select pg_advisory_xact_lock($1)", key)
	case pgLockRange:
		rk := pgRangeLockKey(table.schema, table.name, s.opts.Partition)
		s.lockKeys = []int64{key, rk}
		_, err = s.tx.Exec(ctx, "select pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2)", key, rk)
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", s.name, err)
	}
	return nil
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

// pgSchemaLockKey is the advisory lock key of a schema pbicopy creates.
func pgSchemaLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("pbicopy\x00schema\x00" + schema))
	return int64(h.Sum64())
}

// pgRangeLockKey is the advisory lock key of one partition range of a
// table. Two ranges that collide only wait for each other.
func pgRangeLockKey(schema, table string, rng *PartitionRange) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "pbicopy\x00%s\x00%s\x00range\x00%v\x00%v", schema, table, pgRangeText(rng.From), pgRangeText(rng.To))
	return int64(h.Sum64())
}

func pgRangeText(v any) string {
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
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

// explain is pgExplain, naming the table where the server names the
// table the COPY went into ("at COPY pbicopy_stage, line 2"), and saying
// who held the lock a load timed out on.
func (s *pgSink) explain(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == pgLockNotAvailable {
		return &pgMessageError{msg: s.lockTimeoutText(pe), err: err}
	}
	err = pgExplain(err)
	var me *pgMessageError
	if !errors.As(err, &me) || me != err {
		return err
	}
	for _, n := range []string{s.private, pgStage} {
		if n != "" {
			me.msg = strings.ReplaceAll(me.msg, "at COPY "+n+",", "at COPY "+s.tableName+",")
		}
	}
	return me
}

// pgLockNotAvailable is the SQLSTATE of a lock wait that lock_timeout
// ended.
const pgLockNotAvailable = "55P03"

// lockTimeoutText describes a lock wait that lockTimeout ended: the table,
// the time waited, and the sessions holding the lock, looked up on a
// connection of their own (the load's transaction has failed).
func (s *pgSink) lockTimeoutText(pe *pgconn.PgError) string {
	msg := fmt.Sprintf("lock %s: waited %s (lockTimeout) for a lock", s.name, s.opts.lockTimeout())
	holders, herr := s.lockHolders()
	switch {
	case herr != nil:
		msg += fmt.Sprintf(" (the session holding it could not be looked up: %v)", herr)
	case len(holders) == 0:
		msg += " whose holder has let it go since: run the job again"
	default:
		texts := make([]string, len(holders))
		for i, h := range holders {
			texts[i] = h.String()
		}
		msg += fmt.Sprintf(" held by %s: let it finish, end it (SELECT pg_terminate_backend(%d)), or raise lockTimeout",
			strings.Join(texts, ", "), holders[0].pid)
	}
	return msg + " (" + pe.Message + ", SQLSTATE " + pe.Code + ")"
}

// ident is the table's name as far as the setup resolved it.
func (s *pgSink) ident() pgx.Identifier {
	if s.schemaName == "" {
		return pgx.Identifier{s.tableName}
	}
	return pgx.Identifier{s.schemaName, s.tableName}
}

// pgHolder is a session holding a lock.
type pgHolder struct {
	pid        uint32
	app, state string
	since      *time.Time // the start of its transaction
}

func (h pgHolder) String() string {
	var parts []string
	if h.app != "" {
		parts = append(parts, h.app)
	}
	if h.state != "" {
		parts = append(parts, h.state)
	}
	if h.since != nil {
		parts = append(parts, "transaction started "+h.since.UTC().Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("pid %d", h.pid)
	}
	return fmt.Sprintf("pid %d (%s)", h.pid, strings.Join(parts, ", "))
}

// lockHolders lists the other sessions that hold the advisory locks the
// commit asked for or, when the wait was elsewhere, a lock on the table
// that stops writes.
func (s *pgSink) lockHolders() ([]pgHolder, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	keys := s.lockKeys
	if keys == nil {
		keys = []int64{}
	}
	rows, err := conn.Query(ctx, `select distinct on (l.pid) l.pid, coalesce(a.application_name, ''), coalesce(a.state, ''), a.xact_start
		from pg_locks l left join pg_stat_activity a on a.pid = l.pid
		where l.granted and l.pid <> $1 and (
			l.locktype = 'advisory' and l.objsubid = 1 and l.database = (select oid from pg_database where datname = current_database())
				and ((l.classid::int8 << 32) | l.objid::int8) = any($2)
			or cardinality($2) = 0 and l.locktype = 'relation' and l.relation = to_regclass($3)
				and l.mode not in ('AccessShareLock', 'RowShareLock'))
		order by l.pid limit 5`, s.pid, keys, s.ident().Sanitize())
	if err != nil {
		return nil, err
	}
	var out []pgHolder
	var h pgHolder
	_, err = pgx.ForEachRow(rows, []any{&h.pid, &h.app, &h.state, &h.since}, func() error {
		out = append(out, h)
		return nil
	})
	return out, err
}

// pgMessageError replaces the text of the error it wraps.
type pgMessageError struct {
	msg string
	err error
}

func (e *pgMessageError) Error() string { return e.msg }
func (e *pgMessageError) Unwrap() error { return e.err }
