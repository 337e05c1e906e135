package sink

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// pgtGate is an advisory lock a test holds on its own connection. A load
// whose postSQL asks for the same lock parks in its commit, after its
// mode's work and holding its locks, until the test opens the gate: the
// tests see what other loads can do meanwhile, without timing.
type pgtGate struct {
	tx  pgx.Tx
	key int64
}

func pgtCloseGate(t *testing.T) *pgtGate {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, sinktest.PGDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := &pgtGate{tx: tx, key: rand.Int64()}
	if _, err := tx.Exec(ctx, "select pg_advisory_xact_lock($1)", g.key); err != nil {
		t.Fatal(err)
	}
	return g
}

// postSQL is the statement that parks a load at the gate.
func (g *pgtGate) postSQL() string {
	return fmt.Sprintf("select pg_advisory_xact_lock_shared(%d)", g.key)
}

func (g *pgtGate) open(t *testing.T) {
	t.Helper()
	if err := g.tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// pgtWaiters counts the test's sessions waiting for an advisory lock:
// those parked at the gate when atGate, the others otherwise.
func pgtWaiters(t *testing.T, db *sinktest.PG, g *pgtGate, atGate bool) int {
	t.Helper()
	var n int
	err := db.Conn.QueryRow(context.Background(), `select count(*) from pg_stat_activity
		where application_name like $1 || '%' and wait_event_type = 'Lock' and wait_event = 'advisory'
		and (strpos(query, $2) > 0) = $3`, db.App, fmt.Sprint(g.key), atGate).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type pgtCommitted struct {
	res Result
	err error
}

func pgtCommitAsync(s Sink) <-chan pgtCommitted {
	done := make(chan pgtCommitted, 1)
	go func() {
		res, err := s.Commit(context.Background())
		done <- pgtCommitted{res, err}
	}()
	return done
}

// pgtOpenNow opens a load that must not wait for any other: a load
// blocked at its opening fails the test instead of hanging it.
func pgtOpenNow(t *testing.T, schema *arrow.Schema, opts PostgresOptions) Sink {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := NewPostgres(ctx, schema, opts)
	if err != nil {
		t.Fatalf("open a second load while the first is in progress: %v", err)
	}
	t.Cleanup(func() { s.Abort(context.Background()) })
	return s
}

// TestPostgresReplaceCommitsSerialiseIntegration: two replace loads of one
// table run side by side until their commits, which take the table's lock
// one after the other, so the table holds one load's rows whole, never a
// mix: the second load to commit wins.
func TestPostgresReplaceCommitsSerialiseIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64), sinktest.Field("run", arrow.BinaryTypes.String)}, nil)
	opts := pgtOpts(db, "shared", pgReplace)
	rowsOf := func(run string) [][]any {
		var r [][]any
		for i := range 100 {
			r = append(r, []any{i, run})
		}
		return r
	}
	pgtMustLoad(t, mem, opts, schema, rowsOf("old"))

	gate := pgtCloseGate(t)
	aOpts := opts
	aOpts.PostSQL = gate.postSQL()
	a := pgtOpenNow(t, schema, aOpts)
	if err := pgtWrite(t, ctx, a, mem, schema, rowsOf("A")[:50]); err != nil {
		t.Fatal(err)
	}
	// A waits for its source; B loads and commits meanwhile.
	b := pgtOpenNow(t, schema, opts)
	if err := pgtWrite(t, ctx, b, mem, schema, rowsOf("B")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); err != nil {
		t.Fatalf("B's commit while A is loading: %v", err)
	}
	if got := db.Checksum("shared"); got != pgtChecksumOf(t, db, schema, rowsOf("B")) {
		t.Fatalf("after B: %s, want B's rows", got)
	}

	// A commits and parks at the gate holding the table's lock; C's commit
	// waits for it.
	if err := pgtWrite(t, ctx, a, mem, schema, rowsOf("A")[50:]); err != nil {
		t.Fatal(err)
	}
	aDone := pgtCommitAsync(a)
	pgtWaitFor(t, "A to park at the gate", func() bool { return pgtWaiters(t, db, gate, true) == 1 })
	c := pgtOpenNow(t, schema, opts)
	if err := pgtWrite(t, ctx, c, mem, schema, rowsOf("C")); err != nil {
		t.Fatal(err)
	}
	cDone := pgtCommitAsync(c)
	pgtWaitFor(t, "C to wait for the table's lock", func() bool { return pgtWaiters(t, db, gate, false) == 1 })
	select {
	case r := <-cDone:
		t.Fatalf("C committed while A held the table's lock (err %v)", r.err)
	default:
	}
	gate.open(t)
	if r := <-aDone; r.err != nil {
		t.Fatal(r.err)
	}
	if r := <-cDone; r.err != nil || r.res.Rows != 100 {
		t.Fatalf("C: %+v", r)
	}
	var runs string
	if err := db.Conn.QueryRow(ctx, "select string_agg(distinct run, ',') || ':' || count(*) from "+db.Table("shared")).Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != "C:100" {
		t.Errorf("table holds %q, want only the last commit's 100 rows (C:100)", runs)
	}
}

// pgtChecksumOf is db.Checksum of a table holding rows.
func pgtChecksumOf(t *testing.T, db *sinktest.PG, schema *arrow.Schema, rows [][]any) string {
	t.Helper()
	name := fmt.Sprintf("want_%08x", rand.Uint32())
	pgtMustLoad(t, pgtAlloc(t), pgtOpts(db, name, pgAppend), schema, rows)
	return db.Checksum(name)
}

// TestPostgresPartitionsLoadSideBySideIntegration: replacePartition loads
// of different ranges of one table neither wait for each other's source
// nor for each other's commit; two loads of one range commit one after the
// other.
func TestPostgresPartitionsLoadSideBySideIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("day", arrow.FixedWidthTypes.Date32), sinktest.Field("v", arrow.BinaryTypes.String)}, nil)
	var old [][]any
	for d := 1; d <= 4; d++ {
		old = append(old, []any{fmt.Sprintf("2024-01-0%d", d), "old"}, []any{fmt.Sprintf("2024-01-0%d", d), "old"})
	}
	pgtMustLoad(t, mem, pgtOpts(db, "parts", pgAppend), schema, old)
	day := func(d int) PostgresOptions {
		o := pgtOpts(db, "parts", pgReplacePartition)
		o.PartitionColumn = "day"
		o.Partition = &PartitionRange{From: time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 1, d+1, 0, 0, 0, 0, time.UTC)}
		return o
	}
	rowsOf := func(d int, v string) [][]any {
		return [][]any{{fmt.Sprintf("2024-01-0%d", d), v + "1"}, {fmt.Sprintf("2024-01-0%d", d), v + "2"}, {fmt.Sprintf("2024-01-0%d", d), v + "3"}}
	}

	gate := pgtCloseGate(t)
	aOpts := day(1)
	aOpts.PostSQL = gate.postSQL()
	a := pgtOpenNow(t, schema, aOpts)
	if err := pgtWrite(t, ctx, a, mem, schema, rowsOf(1, "a")[:1]); err != nil {
		t.Fatal(err)
	}
	// A is stalled mid-source: B (day 2) loads and commits.
	b := pgtOpenNow(t, schema, day(2))
	if err := pgtWrite(t, ctx, b, mem, schema, rowsOf(2, "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); err != nil {
		t.Fatalf("B (day 2) while A (day 1) is mid-source: %v", err)
	}

	// A commits and parks at the gate holding its locks: C (day 3) commits
	// meanwhile, D (day 1 again) waits for A.
	if err := pgtWrite(t, ctx, a, mem, schema, rowsOf(1, "a")[1:]); err != nil {
		t.Fatal(err)
	}
	aDone := pgtCommitAsync(a)
	pgtWaitFor(t, "A to park at the gate", func() bool { return pgtWaiters(t, db, gate, true) == 1 })
	c := pgtOpenNow(t, schema, day(3))
	if err := pgtWrite(t, ctx, c, mem, schema, rowsOf(3, "c")); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := c.Commit(cctx); err != nil {
		t.Fatalf("C (day 3) while A (day 1) holds its locks: %v", err)
	}
	d := pgtOpenNow(t, schema, day(1))
	if err := pgtWrite(t, ctx, d, mem, schema, rowsOf(1, "d")); err != nil {
		t.Fatal(err)
	}
	dDone := pgtCommitAsync(d)
	pgtWaitFor(t, "D (day 1) to wait for A's range", func() bool { return pgtWaiters(t, db, gate, false) == 1 })
	select {
	case r := <-dDone:
		t.Fatalf("D committed while A held the lock of the same range (err %v)", r.err)
	default:
	}
	gate.open(t)
	if r := <-aDone; r.err != nil {
		t.Fatal(r.err)
	}
	if r := <-dDone; r.err != nil {
		t.Fatal(r.err)
	}
	want := append(append(append(rowsOf(1, "d"), rowsOf(2, "b")...), rowsOf(3, "c")...), old[6:]...)
	got := db.Rows("parts", schema, "day")
	if d := sinktest.DiffRows(want, pgtSortRows(got)); d != "" {
		t.Errorf("read back: %s", d)
	}
}

// pgtSortRows orders rows by their text form, for tables without a key.
func pgtSortRows(rows [][]any) [][]any {
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b []any) int { return strings.Compare(fmt.Sprint(a...), fmt.Sprint(b...)) })
	return out
}

// TestPostgresStalledLoadHoldsNoLockIntegration: in every mode, a load
// that has sent some rows and waits for more holds no advisory lock and no
// lock on the table stronger than ROW EXCLUSIVE (pg_locks), and a second
// load of the same table (and range) runs to its commit meanwhile.
func TestPostgresStalledLoadHoldsNoLockIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64), sinktest.Field("day", arrow.FixedWidthTypes.Date32)}, nil)
	rows := [][]any{{1, "2024-01-01"}, {2, "2024-01-01"}, {3, "2024-01-01"}}
	for _, mode := range []string{pgAppend, pgReplace, pgMerge, pgReplacePartition} {
		t.Run(mode, func(t *testing.T) {
			opts := pgtOpts(db, "stall_"+mode, mode)
			switch mode {
			case pgMerge:
				opts.Key = []string{"id"}
			case pgReplacePartition:
				opts.PartitionColumn = "day"
				opts.Partition = &PartitionRange{From: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}
			}
			pgtMustLoad(t, mem, opts, schema, rows)
			stalled := opts
			app := db.App + "_stalled"
			stalled.DSN += " application_name=" + app
			a := pgtOpenNow(t, schema, stalled)
			if err := pgtWrite(t, ctx, a, mem, schema, rows[:1]); err != nil {
				t.Fatal(err)
			}
			var held []string
			r, err := db.Conn.Query(ctx, `select l.locktype || ' ' || l.mode from pg_locks l join pg_stat_activity s using (pid)
				where s.application_name = $1 and (l.locktype = 'advisory'
					or l.locktype = 'relation' and l.relation = $2::regclass and l.mode not in ('AccessShareLock', 'RowExclusiveLock'))`,
				app, db.Table("stall_"+mode))
			if err != nil {
				t.Fatal(err)
			}
			if held, err = pgx.CollectRows(r, pgx.RowTo[string]); err != nil {
				t.Fatal(err)
			}
			if len(held) > 0 {
				t.Errorf("the stalled load holds %s", strings.Join(held, ", "))
			}
			b := pgtOpenNow(t, schema, opts)
			if err := pgtWrite(t, ctx, b, mem, schema, rows); err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if _, err := b.Commit(cctx); err != nil {
				t.Fatalf("a second load while the first is stalled: %v", err)
			}
			if err := a.Abort(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPostgresNewTableIntegration: loads of a table that does not exist
// yet COPY into tables of their own, so none waits for another; the first
// commit creates the table, the next ones add their rows (append) or
// replace them, and a failed load leaves neither table nor private table.
func TestPostgresNewTableIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64), sinktest.Field("run", arrow.BinaryTypes.String)}, nil)
	for _, mode := range []string{pgAppend, pgReplace} {
		t.Run(mode, func(t *testing.T) {
			table := "new_" + mode
			opts := pgtOpts(db, table, mode)
			a := pgtOpenNow(t, schema, opts)
			if err := pgtWrite(t, ctx, a, mem, schema, [][]any{{1, "a"}, {2, "a"}}); err != nil {
				t.Fatal(err)
			}
			b := pgtOpenNow(t, schema, opts)
			if err := pgtWrite(t, ctx, b, mem, schema, [][]any{{3, "b"}}); err != nil {
				t.Fatal(err)
			}
			failed := pgtOpenNow(t, schema, opts)
			if err := pgtWrite(t, ctx, failed, mem, schema, [][]any{{4, "failed"}}); err != nil {
				t.Fatal(err)
			}
			if db.Exists(table) {
				t.Fatal("the table is visible before any load committed")
			}
			if res, err := b.Commit(ctx); err != nil || res.Rows != 1 {
				t.Fatalf("B: %+v, %v", res, err)
			}
			if res, err := a.Commit(ctx); err != nil || res.Rows != 2 {
				t.Fatalf("A: %+v, %v", res, err)
			}
			if err := failed.Abort(ctx); err != nil {
				t.Fatal(err)
			}
			want := [][]any{{int64(1), "a"}, {int64(2), "a"}, {int64(3), "b"}}
			if mode == pgReplace {
				want = want[:2]
			}
			if d := sinktest.DiffRows(want, db.Rows(table, schema, "id")); d != "" {
				t.Errorf("read back: %s", d)
			}
			var private int
			if err := db.Conn.QueryRow(ctx, "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname like 'pbicopy_new_%'", db.Schema).Scan(&private); err != nil || private != 0 {
				t.Errorf("%d private tables left (%v)", private, err)
			}
		})
	}
}

// TestPostgresReplacePartitionOutsideRangeIntegration: a partition's load
// with values outside its range (or null) deletes, beside its range, the
// rows of the values it holds, under the table's lock.
func TestPostgresReplacePartitionOutsideRangeIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("day", arrow.FixedWidthTypes.Date32), sinktest.Field("v", arrow.BinaryTypes.String)}, nil)
	pgtMustLoad(t, mem, pgtOpts(db, "p", pgAppend), schema, [][]any{
		{"2024-01-01", "old1"}, {"2024-01-02", "old2"}, {"2024-01-03", "old3"}, {"2024-01-04", "old4"}, {nil, "oldnull"},
	})
	opts := pgtOpts(db, "p", pgReplacePartition)
	opts.PartitionColumn = "day"
	opts.Partition = &PartitionRange{From: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)}
	pgtMustLoad(t, mem, opts, schema, [][]any{{"2024-01-04", "new4"}, {nil, "newnull"}})
	want := [][]any{{"2024-01-01", "old1"}, {"2024-01-03", "old3"}, {"2024-01-04", "new4"}, {nil, "newnull"}}
	if d := sinktest.DiffRows(want, db.Rows("p", schema, "day")); d != "" {
		t.Errorf("read back: %s", d)
	}
	// In range only: the other rows stay.
	pgtMustLoad(t, mem, opts, schema, [][]any{{"2024-01-02", "new2"}})
	want = [][]any{{"2024-01-01", "old1"}, {"2024-01-02", "new2"}, {"2024-01-03", "old3"}, {"2024-01-04", "new4"}, {nil, "newnull"}}
	if d := sinktest.DiffRows(want, db.Rows("p", schema, "day")); d != "" {
		t.Errorf("read back: %s", d)
	}
}

// TestPostgresLockTimeoutIntegration: a load that waits for a lock longer
// than lockTimeout fails, naming the table and the session holding the
// lock, and leaves the table unchanged; once the holder is gone, the same
// load succeeds.
func TestPostgresLockTimeoutIntegration(t *testing.T) {
	t.Parallel()
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64)}, nil)
	cases := []struct {
		name, mode string
		hold       func(table string) string // the holder's statement
	}{
		{"another load's commit", pgReplace, func(table string) string {
			return fmt.Sprintf("select pg_advisory_xact_lock(%d)", pgLockKey(db.Schema, table))
		}},
		{"a table lock", pgAppend, func(table string) string {
			return "lock table " + db.Table(table) + " in share mode"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := "lt_" + c.mode
			opts := pgtOpts(db, table, c.mode)
			pgtMustLoad(t, mem, opts, schema, [][]any{{1}, {2}})
			before := db.Checksum(table)

			holder, err := pgx.Connect(ctx, sinktest.PGDSN()+" application_name=lock_holder")
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close(ctx)
			tx, err := holder.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, c.hold(table)); err != nil {
				t.Fatal(err)
			}
			opts.LockTimeout = "300ms"
			_, err = pgtLoad(t, mem, opts, schema, [][]any{{3}})
			pgtWantError(t, err, "lock "+db.Schema+"."+table+": waited 300ms (lockTimeout)",
				fmt.Sprintf("held by pid %d (lock_holder, ", holder.PgConn().PID()),
				fmt.Sprintf("SELECT pg_terminate_backend(%d)", holder.PgConn().PID()), "raise lockTimeout")
			if got := db.Checksum(table); got != before {
				t.Errorf("the timed-out load changed the table: %s, was %s", got, before)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			pgtMustLoad(t, mem, opts, schema, [][]any{{3}})
		})
	}
}

// TestPostgresCreateSchemaIntegration: a missing schema is an error unless
// createSchema is true; then the load creates it in its transaction (a
// failed load leaves no schema), and concurrent loads of two tables of one
// new schema both commit.
func TestPostgresCreateSchemaIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64)}, nil)
	newSchema := db.Schema + "_new"
	t.Cleanup(func() { db.Exec("drop schema if exists " + pgx.Identifier{newSchema}.Sanitize() + " cascade") })
	schemaExists := func() bool {
		var ok bool
		if err := db.Conn.QueryRow(ctx, "select exists (select 1 from pg_namespace where nspname = $1)", newSchema).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	opts := func(table, mode string) PostgresOptions {
		return PostgresOptions{DSN: db.DSN(), Table: pgx.Identifier{newSchema, table}.Sanitize(), Mode: mode}
	}

	// The default: a clear error, nothing created; the probe says the same.
	_, err := pgtLoad(t, mem, opts("a", pgAppend), schema, [][]any{{1}})
	pgtWantError(t, err, "schema "+newSchema+" does not exist: create it first, or set createSchema: true")
	_, err = ProbePostgres(ctx, opts("a", pgAppend))
	pgtWantError(t, err, "schema "+newSchema+" does not exist", "set createSchema: true")

	withSchema := func(table, mode string) PostgresOptions {
		o := opts(table, mode)
		o.CreateSchema = true
		return o
	}
	desc, err := ProbePostgres(ctx, withSchema("a", pgAppend))
	if err != nil || !strings.Contains(desc, "schema "+newSchema+" and table "+newSchema+".a will be created") {
		t.Errorf("probe = %q, %v", desc, err)
	}
	// A failed load leaves no schema.
	s, err := NewPostgres(ctx, schema, withSchema("a", pgAppend))
	if err != nil {
		t.Fatal(err)
	}
	if err := pgtWrite(t, ctx, s, mem, schema, [][]any{{1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if schemaExists() {
		t.Fatal("an aborted load left the schema behind")
	}

	// Two loads into two tables of the new schema, in every staging mode.
	a := pgtOpenNow(t, schema, withSchema("a", pgAppend))
	mOpts := withSchema("m", pgMerge)
	mOpts.Key = []string{"id"}
	m := pgtOpenNow(t, schema, mOpts)
	for _, s := range []Sink{a, m} {
		if err := pgtWrite(t, ctx, s, mem, schema, [][]any{{1}, {2}}); err != nil {
			t.Fatal(err)
		}
	}
	mDone := pgtCommitAsync(m)
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-mDone; r.err != nil {
		t.Fatal(r.err)
	}
	for _, table := range []string{"a", "m"} {
		var n int64
		if err := db.Conn.QueryRow(ctx, "select count(*) from "+pgx.Identifier{newSchema, table}.Sanitize()).Scan(&n); err != nil || n != 2 {
			t.Errorf("%s: %d rows (%v), want 2", table, n, err)
		}
	}
	// With the schema there, createSchema changes nothing.
	pgtMustLoad(t, mem, withSchema("a", pgReplace), schema, [][]any{{3}})
}
