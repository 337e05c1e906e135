package sink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// pgtSchema has every column type; p and b are the two decimal shapes the
// issue asks for.
var pgtSchema = arrow.NewSchema([]arrow.Field{
	sinktest.Field("id", arrow.PrimitiveTypes.Int64),
	sinktest.Field("s", arrow.BinaryTypes.String),
	sinktest.Field("n", arrow.PrimitiveTypes.Int64),
	sinktest.Field("p", sinktest.Decimal(19, 4)),
	sinktest.Field("b", sinktest.Decimal(38, 10)),
	sinktest.Field("f", arrow.PrimitiveTypes.Float64),
	sinktest.Field("ok", arrow.FixedWidthTypes.Boolean),
	sinktest.Field("d", arrow.FixedWidthTypes.Date32),
	sinktest.Field("ts", sinktest.Timestamp),
}, nil)

// pgtRows are edge values of every type, nulls in every column but id.
func pgtRows() [][]any {
	return [][]any{
		{1, "hello", int64(math.MaxInt64), "123456789012345.6789", "9999999999999999999999999999.9999999999", 1.5, true, "2024-02-29", "2024-03-31T23:59:59.997001"},
		{2, "", int64(math.MinInt64), "-0.0001", "-9999999999999999999999999999.9999999999", math.Copysign(0, -1), false, "1900-01-01", "1900-01-01T00:00:00.000001"},
		{3, nil, nil, nil, nil, nil, nil, nil, nil},
		{4, "ünï ✓ \"q\", comma\nnew line\ttab\\", 0, "0.0000", "0.0000000001", math.MaxFloat64, true, "1970-01-01", "1969-12-31T23:59:59.999999"},
		{5, " ", -1, "12.3400", "-12345678901234567890.1234567890", 5e-324, false, "9999-12-31", "2000-01-01T00:00:00"},
		{6, "'; drop table x; --", 1, "-999999999999999.9999", "0.5000000000", math.Inf(-1), nil, "0001-01-01", "0001-01-01T00:00:00"},
		{7, "x", 2, "999999999999999.9999", "-0.0000000001", math.Inf(1), true, "2000-02-29", "2262-04-11T23:47:16.854775"},
		{8, "y", 3, "1.0000", "1.0000000000", -1e-300, false, "1969-12-31", "1600-02-29T12:00:00.5"},
	}
}

// pgtWant is rows as PostgreSQL gives them back: ints as int64.
func pgtWant(rows [][]any) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = make([]any, len(r))
		for j, v := range r {
			if n, ok := v.(int); ok {
				v = int64(n)
			}
			out[i][j] = v
		}
	}
	return out
}

func TestPostgresAppendIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	opts := pgtOpts(db, "vals", "append")
	rows := pgtRows()

	res := pgtMustLoad(t, mem, opts, pgtSchema, rows, 2, 3)
	want := Result{Kind: "postgres", Location: db.Schema + ".vals", Rows: int64(len(rows))}
	if res.Kind != want.Kind || res.Location != want.Location || res.Rows != want.Rows || res.Bytes != 0 || res.Files != nil {
		t.Errorf("Result = %+v, want %+v", res, want)
	}
	if d := sinktest.DiffRows(pgtWant(rows), db.Rows("vals", pgtSchema, "id")); d != "" {
		t.Fatalf("read back: %s", d)
	}
	var types []string
	r, err := db.Conn.Query(context.Background(), "select format_type(atttypid, atttypmod) || case when attnotnull then ' not null' else '' end from pg_attribute where attrelid = $1::regclass and attnum > 0 order by attnum", db.Table("vals"))
	if err != nil {
		t.Fatal(err)
	}
	types, err = pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{"bigint", "text", "bigint", "numeric(19,4)", "numeric(38,10)", "double precision", "boolean", "date", "timestamp without time zone"}
	if fmt.Sprint(types) != fmt.Sprint(wantTypes) {
		t.Errorf("created column types %q, want %q", types, wantTypes)
	}

	// A second run appends; an empty run changes nothing.
	pgtMustLoad(t, mem, opts, pgtSchema, rows, 100)
	if n := db.Count("vals"); n != int64(2*len(rows)) {
		t.Errorf("after two appends: %d rows, want %d", n, 2*len(rows))
	}
	before := db.Checksum("vals")
	if res := pgtMustLoad(t, mem, opts, pgtSchema, nil); res.Rows != 0 {
		t.Errorf("empty load: Rows = %d", res.Rows)
	}
	if after := db.Checksum("vals"); after != before {
		t.Errorf("an empty append changed the table: %s, was %s", after, before)
	}

	// The Arrow source's dictionary-encoded strings: the same text column,
	// created or appended to, and the same rows.
	dict := sinktest.DictStrings(pgtSchema)
	for range 2 {
		pgtMustLoad(t, mem, pgtOpts(db, "vals_dict", "append"), dict, rows, 2, 3)
	}
	if got, want := db.Checksum("vals_dict"), db.Checksum("vals"); got != want {
		t.Errorf("dictionary-encoded strings: table checksum %s, the utf8 loads' %s", got, want)
	}
}

func TestPostgresUnqualifiedTableIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	opts := PostgresOptions{DSN: db.DSN() + " search_path=" + db.Schema, Table: "plain"}
	res := pgtMustLoad(t, mem, opts, pgtSchema, pgtRows()[:2])
	if res.Location != db.Schema+".plain" {
		t.Errorf("Location = %q, want the schema-qualified name", res.Location)
	}
	if n := db.Count("plain"); n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
}

func TestPostgresReplaceIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	opts := pgtOpts(db, "rep", "replace")
	rows := pgtRows()
	pgtMustLoad(t, mem, opts, pgtSchema, rows[:3])
	// Things replace must keep: an index, a grant, a dependent view.
	db.Exec("create index rep_n on " + db.Table("rep") + " (n)")
	db.Exec("grant select on " + db.Table("rep") + " to public")
	db.Exec("create view " + db.Table("rep_view") + " as select id, s from " + db.Table("rep"))

	var sums []string
	for run := range 3 {
		res := pgtMustLoad(t, mem, opts, pgtSchema, rows[2:], 2)
		if res.Rows != int64(len(rows)-2) {
			t.Errorf("run %d: Rows = %d, want %d", run, res.Rows, len(rows)-2)
		}
		sums = append(sums, db.Checksum("rep"))
	}
	if sums[0] != sums[1] || sums[1] != sums[2] {
		t.Errorf("three replace runs left different tables: %q", sums)
	}
	if d := sinktest.DiffRows(pgtWant(rows[2:]), db.Rows("rep", pgtSchema, "id")); d != "" {
		t.Errorf("read back: %s", d)
	}
	var kept bool
	err := db.Conn.QueryRow(context.Background(), `select exists (select 1 from pg_indexes where schemaname = $1 and indexname = 'rep_n')
		and has_table_privilege('public', $2, 'select')`, db.Schema, db.Table("rep")).Scan(&kept)
	if err != nil || !kept {
		t.Errorf("replace lost the index or the grant (%v)", err)
	}
	if n := db.Count("rep_view"); n != int64(len(rows)-2) {
		t.Errorf("the dependent view shows %d rows, want %d", n, len(rows)-2)
	}
}

// TestPostgresReplaceReadersIntegration: while replace loads, readers are
// not blocked and see the old rows; afterwards they see the new rows; a
// repeatable-read reader whose snapshot predates the commit keeps seeing
// the old rows. Never an empty or a partial table.
func TestPostgresReplaceReadersIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64)}, nil)
	rowsOf := func(n, from int) [][]any {
		r := make([][]any, n)
		for i := range r {
			r[i] = []any{from + i}
		}
		return r
	}
	opts := pgtOpts(db, "live", "replace")
	pgtMustLoad(t, mem, opts, schema, rowsOf(1000, 0))

	reader, err := pgx.Connect(ctx, sinktest.PGDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	old, err := reader.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback(ctx)
	if _, err := old.Exec(ctx, "set transaction isolation level repeatable read"); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(ctx, "select 1"); err != nil { // takes the snapshot
		t.Fatal(err)
	}

	type seen struct{ n, sum int64 }
	oldState, newState := seen{1000, 999 * 1000 / 2}, seen{1500, (1000 + 2499) * 1500 / 2}
	var reads, readsDuringLoad atomic.Int64
	var loading atomic.Bool
	stop := make(chan struct{})
	bad := make(chan seen, 1)
	done := make(chan error, 1)
	go func() {
		conn, err := pgx.Connect(ctx, sinktest.PGDSN())
		if err != nil {
			done <- err
			return
		}
		defer conn.Close(ctx)
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			var s seen
			if err := conn.QueryRow(ctx, "select count(*), coalesce(sum(id), 0) from "+db.Table("live")).Scan(&s.n, &s.sum); err != nil {
				done <- err
				return
			}
			reads.Add(1)
			if loading.Load() {
				readsDuringLoad.Add(1)
			}
			if s != oldState && s != newState {
				select {
				case bad <- s:
				default:
				}
			}
		}
	}()

	s, err := NewPostgres(ctx, schema, opts)
	if err != nil {
		t.Fatal(err)
	}
	loading.Store(true)
	for b := range 5 {
		rec := sinktest.MustBatch(t, mem, schema, rowsOf(300, 1000+300*b))
		err := s.Write(ctx, rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	loading.Store(false)
	if _, err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	committed := reads.Load()
	pgtWaitFor(t, "reads after the commit", func() bool { return reads.Load() >= committed+3 })
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-bad:
		t.Errorf("a reader saw %d rows summing to %d: neither the old nor the new table", s.n, s.sum)
	default:
	}
	if n := readsDuringLoad.Load(); n < 5 {
		t.Errorf("readers completed only %d queries during the load: were they blocked?", n)
	}
	var n int64
	if err := old.QueryRow(ctx, "select count(*) from "+db.Table("live")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != oldState.n {
		t.Errorf("a repeatable-read reader with a snapshot from before the commit sees %d rows, want the old %d", n, oldState.n)
	}
	if n := db.Count("live"); n != newState.n {
		t.Errorf("after the commit: %d rows, want %d", n, newState.n)
	}
}

func TestPostgresMergeIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	opts := pgtOpts(db, "m", "merge")
	opts.Key = []string{"id"}
	rows := pgtRows()
	first := rows[:5]
	res := pgtMustLoad(t, mem, opts, pgtSchema, first)
	if res.Rows != 5 {
		t.Errorf("first merge: Rows = %d, want 5", res.Rows)
	}
	var pk string
	if err := db.Conn.QueryRow(context.Background(), "select pg_get_constraintdef(oid) from pg_constraint where conrelid = $1::regclass and contype = 'p'", db.Table("m")).Scan(&pk); err != nil || pk != "PRIMARY KEY (id)" {
		t.Errorf("created table's primary key = %q (%v), want PRIMARY KEY (id)", pk, err)
	}

	// Rows 4 and 5 change, 6 to 8 are new.
	second := pgtWant(rows[3:])
	second[0][1], second[1][3] = "changed", "-42.4200"
	var sums []string
	for run := range 3 {
		res := pgtMustLoad(t, mem, opts, pgtSchema, second, 2)
		if res.Rows != int64(len(second)) {
			t.Errorf("run %d: Rows = %d, want %d (inserted + updated)", run, res.Rows, len(second))
		}
		sums = append(sums, db.Checksum("m"))
	}
	if sums[0] != sums[1] || sums[1] != sums[2] {
		t.Errorf("three merge runs left different tables: %q", sums)
	}
	want := append(pgtWant(rows[:3]), second...)
	if d := sinktest.DiffRows(want, db.Rows("m", pgtSchema, "id")); d != "" {
		t.Errorf("read back: %s", d)
	}
}

func TestPostgresMergeCompositeKeyIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	schema := arrow.NewSchema([]arrow.Field{
		sinktest.Field("day", arrow.FixedWidthTypes.Date32),
		sinktest.Field("shop", arrow.BinaryTypes.String),
		sinktest.Field("qty", arrow.PrimitiveTypes.Int64),
	}, nil)
	// An existing table with a unique index on the key in another order.
	db.Exec("create table " + db.Table("c") + " (shop text, day date, qty bigint, note text default 'n')")
	db.Exec("create unique index on " + db.Table("c") + " (shop, day)")
	db.Exec("insert into " + db.Table("c") + " values ('a', '2024-01-01', 1, 'kept')")
	opts := pgtOpts(db, "c", "merge")
	opts.Key = []string{"day", "shop"}
	res := pgtMustLoad(t, mem, opts, schema, [][]any{{"2024-01-01", "a", 10}, {"2024-01-01", "b", 20}})
	if res.Rows != 2 {
		t.Errorf("Rows = %d, want 2", res.Rows)
	}
	var got string
	if err := db.Conn.QueryRow(context.Background(), "select string_agg(format('%s/%s/%s/%s', shop, day, qty, note), ' ' order by shop) from "+db.Table("c")).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "a/2024-01-01/10/kept b/2024-01-01/20/n"; got != want {
		t.Errorf("table = %q, want %q", got, want)
	}
}

func TestPostgresMergeRejectsIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	opts := pgtOpts(db, "m", "merge")
	opts.Key = []string{"id"}
	rows := pgtRows()
	pgtMustLoad(t, mem, opts, pgtSchema, rows[:3])
	before := db.Checksum("m")

	t.Run("duplicate key", func(t *testing.T) {
		dup := append(pgtWant(rows[3:6]), pgtWant(rows[4:5])...)
		_, err := pgtLoad(t, mem, opts, pgtSchema, dup, 2)
		pgtWantError(t, err, "merge into "+db.Schema+".m", "key (id) is not unique in the load", "(5) appears 2 times")
	})
	t.Run("null key", func(t *testing.T) {
		nullKey := pgtWant(rows[3:5])
		nullKey[1][0] = nil
		_, err := pgtLoad(t, mem, opts, pgtSchema, nullKey)
		pgtWantError(t, err, "merge into "+db.Schema+".m", "1 loaded rows have a null in the key (id)")
	})
	t.Run("no unique index", func(t *testing.T) {
		db.Exec("create table " + db.Table("nokey") + " as select * from " + db.Table("m"))
		o := pgtOpts(db, "nokey", "merge")
		o.Key = []string{"id"}
		_, err := pgtLoad(t, mem, o, pgtSchema, rows[3:])
		pgtWantError(t, err, db.Schema+".nokey", "merge needs a unique index on exactly (id)",
			fmt.Sprintf(`CREATE UNIQUE INDEX ON "%s"."nokey" ("id")`, db.Schema))
	})
	t.Run("key not mapped", func(t *testing.T) {
		o := opts
		o.Key = []string{"nope"}
		_, err := pgtLoad(t, mem, o, pgtSchema, rows[3:])
		pgtWantError(t, err, `key column "nope" is not among the mapped columns`)
	})
	if after := db.Checksum("m"); after != before {
		t.Errorf("a rejected merge changed the table: %s, was %s", after, before)
	}
}

func TestPostgresReplacePartitionIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	schema := arrow.NewSchema([]arrow.Field{
		sinktest.Field("day", arrow.FixedWidthTypes.Date32),
		sinktest.Field("v", arrow.BinaryTypes.String),
	}, nil)
	pgtMustLoad(t, mem, pgtOpts(db, "part", "append"), schema, [][]any{
		{"2024-01-01", "old1"}, {"2024-01-02", "old2a"}, {"2024-01-02", "old2b"}, {"2024-01-03", "old3"}, {nil, "oldnull"},
	})
	opts := pgtOpts(db, "part", "replacePartition")
	opts.PartitionColumn = "day"
	load := [][]any{{"2024-01-02", "new2"}, {"2024-01-04", "new4"}, {nil, "newnull"}}
	for run := range 3 {
		res := pgtMustLoad(t, mem, opts, schema, load)
		if res.Rows != 3 {
			t.Errorf("run %d: Rows = %d, want 3", run, res.Rows)
		}
	}
	want := [][]any{{"2024-01-01", "old1"}, {"2024-01-02", "new2"}, {"2024-01-03", "old3"}, {"2024-01-04", "new4"}, {nil, "newnull"}}
	if d := sinktest.DiffRows(want, db.Rows("part", schema, "day")); d != "" {
		t.Errorf("read back: %s", d)
	}
}

// TestPostgresFailureLeavesTableUnchangedIntegration injects a failure at
// every stage of a load, in every mode, and checks that the table is
// exactly as before: row count and checksum.
func TestPostgresFailureLeavesTableUnchangedIntegration(t *testing.T) {
	t.Parallel()
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	rows := pgtRows()
	// 24 rows in batches of 4: the failures strike in batch 3.
	var load [][]any
	for i := range 3 {
		for _, r := range pgtWant(rows) {
			r = append([]any(nil), r...)
			r[0] = r[0].(int64) + int64(100*i)
			load = append(load, r)
		}
	}
	modes := []string{pgAppend, pgReplace, pgMerge, pgReplacePartition}
	failures := []struct {
		name string
		// run drives the sink and returns the error that ended the run.
		run  func(t *testing.T, s Sink, opts PostgresOptions) error
		want string
	}{
		{"source fails after two batches", func(t *testing.T, s Sink, _ PostgresOptions) error {
			if err := pgtWrite(t, ctx, s, mem, pgtSchema, load[:8], 4); err != nil {
				return err
			}
			return errors.New("source: the response ended early")
		}, "the response ended early"},
		{"context cancelled mid-copy", func(t *testing.T, s Sink, _ PostgresOptions) error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if err := pgtWrite(t, cctx, s, mem, pgtSchema, load[:8], 4); err != nil {
				return err
			}
			cancel()
			if err := pgtWrite(t, cctx, s, mem, pgtSchema, load[8:], 4); err != nil {
				return err
			}
			_, err := s.Commit(cctx)
			return err
		}, "context canceled"},
		{"NUL in batch 3", func(t *testing.T, s Sink, _ PostgresOptions) error {
			bad := pgtWant(load)
			bad[9][1] = "nul\x00here"
			return pgtWrite(t, ctx, s, mem, pgtSchema, bad, 4)
		}, `row 10, column "s": the string holds a NUL character`},
		{"server rejects a row in batch 3", func(t *testing.T, s Sink, _ PostgresOptions) error {
			bad := pgtWant(load)
			bad[9][2] = int64(-42) // violates the table's CHECK constraint
			if err := pgtWrite(t, ctx, s, mem, pgtSchema, bad, 4); err != nil {
				return err
			}
			_, err := s.Commit(ctx)
			return err
		}, "no_minus_42"},
		{"connection killed mid-copy", func(t *testing.T, s Sink, opts PostgresOptions) error {
			if err := pgtWrite(t, ctx, s, mem, pgtSchema, load[:8], 4); err != nil {
				return err
			}
			// The sessions of earlier subtests may not have ended yet:
			// killing them too is harmless.
			var killed int
			if err := db.Conn.QueryRow(ctx, "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = $1", db.App).Scan(&killed); err != nil || killed < 1 {
				t.Fatalf("killed %d sessions (%v), want the sink's", killed, err)
			}
			if err := pgtWrite(t, ctx, s, mem, pgtSchema, load[8:], 4); err != nil {
				return err
			}
			_, err := s.Commit(ctx)
			return err
		}, "copy into"},
		{"postSQL fails", func(t *testing.T, s Sink, opts PostgresOptions) error {
			if err := pgtWrite(t, ctx, s, mem, pgtSchema, load, 4); err != nil {
				return err
			}
			_, err := s.Commit(ctx)
			return err
		}, "postSQL for"},
	}
	for _, mode := range modes {
		for _, f := range failures {
			t.Run(mode+"/"+f.name, func(t *testing.T) {
				table := "t_" + mode
				opts := pgtOpts(db, table, mode)
				switch mode {
				case pgMerge:
					opts.Key = []string{"id"}
				case pgReplacePartition:
					opts.PartitionColumn = "ok"
				}
				if pgtCount0(db, table) < 0 {
					pgtMustLoad(t, mem, opts, pgtSchema, rows)
					db.Exec("alter table " + db.Table(table) + " add constraint no_minus_42 check (n is distinct from -42)")
				}
				if f.name == "postSQL fails" {
					opts.PostSQL = "select 1/0"
				}
				before := db.Checksum(table)
				s, err := NewPostgres(ctx, pgtSchema, opts)
				if err != nil {
					t.Fatal(err)
				}
				err = f.run(t, s, opts)
				if aerr := s.Abort(ctx); aerr != nil {
					t.Errorf("Abort: %v", aerr)
				}
				pgtWantError(t, err, f.want)
				if after := db.Checksum(table); after != before {
					t.Errorf("the failed run changed the table: %s, was %s", after, before)
				}
			})
		}
	}
}

// pgtCount0 is the row count of table, or -1 if it does not exist.
func pgtCount0(db *sinktest.PG, table string) int64 {
	if !db.Exists(table) {
		return -1
	}
	return db.Count(table)
}

func TestPostgresHostileIdentifiersIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	const hostile = `x"; DROP TABLE y; --`
	db.Exec("create table " + db.Table("y") + " (v int)")
	schema := arrow.NewSchema([]arrow.Field{
		sinktest.Field(`a"; DROP TABLE y; --`, arrow.PrimitiveTypes.Int64),
		sinktest.Field("Mixed Case", arrow.BinaryTypes.String),
		sinktest.Field("select", arrow.FixedWidthTypes.Boolean),
		sinktest.Field("with.dot", sinktest.Decimal(10, 2)),
		sinktest.Field("ünï'code", arrow.FixedWidthTypes.Date32),
	}, nil)
	rows := [][]any{{1, "a", true, "1.50", "2024-02-29"}, {2, nil, false, "-2.25", nil}}
	for _, mode := range []string{pgAppend, pgReplace, pgMerge, pgReplacePartition} {
		opts := pgtOpts(db, hostile, mode)
		switch mode {
		case pgMerge:
			opts.Key = []string{`a"; DROP TABLE y; --`}
			db.Exec("create unique index on " + db.Table(hostile) + ` ("a""; DROP TABLE y; --")`)
		case pgReplacePartition:
			opts.PartitionColumn = "Mixed Case"
		}
		if mode == pgAppend {
			opts.Table = fmt.Sprintf(`%s."x""; DROP TABLE y; --"`, db.Schema) // as a job file would write it
		}
		pgtMustLoad(t, mem, opts, schema, rows)
		if d := sinktest.DiffRows(pgtWant(rows), db.Rows(hostile, schema, `a"; DROP TABLE y; --`)); d != "" {
			t.Errorf("%s: read back: %s", mode, d)
		}
	}
	if pgtCount0(db, "y") != 0 {
		t.Error("table y is gone: an identifier was spliced into SQL")
	}
	_, err := pgtLoad(t, mem, pgtOpts(db, hostile, pgAppend), arrow.NewSchema([]arrow.Field{sinktest.Field(`b"; DROP TABLE y; --`, arrow.PrimitiveTypes.Int64)}, nil), [][]any{{1}})
	pgtWantError(t, err, `"x""; DROP TABLE y; --"`, `column "b\"; DROP TABLE y; --" is missing`)
}

func TestPostgresTypeMismatchIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	db.Exec("create table " + db.Table("old") + ` (id integer, s varchar(20), n bigint, p numeric(10,2), f double precision,
		ok boolean, d date, ts timestamptz, z text not null, extra text)`)
	db.Exec("insert into " + db.Table("old") + " (id, z) values (1, 'z')")
	before := db.Checksum("old")
	_, err := pgtLoad(t, mem, pgtOpts(db, "old", "append"), pgtSchema, pgtRows())
	pgtWantError(t, err,
		"check table "+db.Schema+".old: the table does not match the mapping",
		`column "id": expected bigint, found integer`,
		`column "p": expected numeric(19,4) (or a numeric with at least as many digits before and after the point), found numeric(10,2)`,
		`column "b" is missing (expected numeric(38,10); set schemaEvolution: addColumns to add it)`,
		`column "ts": expected timestamp without time zone, found timestamp with time zone`,
		`column "z" is NOT NULL without a default and is not mapped`)
	for _, ok := range []string{`"s"`, `"n"`, `"f"`, `"ok"`, `"d"`, `"extra"`} {
		if strings.Contains(err.Error(), ok) {
			t.Errorf("the report blames the compatible column %s: %v", ok, err)
		}
	}
	if after := db.Checksum("old"); after != before {
		t.Errorf("the rejected load changed the table: %s, was %s", after, before)
	}

	t.Run("addColumns", func(t *testing.T) {
		db.Exec("create table " + db.Table("grow") + " (id bigint, s text, legacy int)")
		db.Exec("insert into " + db.Table("grow") + " values (0, 'before', 7)")
		opts := pgtOpts(db, "grow", "append")
		opts.SchemaEvolution = pgAddColumns
		rows := pgtRows()
		pgtMustLoad(t, mem, opts, pgtSchema, rows)
		got := db.Rows("grow", pgtSchema, "id")
		want := append([][]any{{int64(0), "before", nil, nil, nil, nil, nil, nil, nil}}, pgtWant(rows)...)
		if d := sinktest.DiffRows(want, got); d != "" {
			t.Errorf("read back: %s", d)
		}
	})
	t.Run("addColumns rolled back with a failed load", func(t *testing.T) {
		db.Exec("create table " + db.Table("grow2") + " (id bigint)")
		opts := pgtOpts(db, "grow2", "append")
		opts.SchemaEvolution = pgAddColumns
		opts.PostSQL = "select 1/0"
		_, err := pgtLoad(t, mem, opts, pgtSchema, pgtRows())
		pgtWantError(t, err, "division by zero")
		var cols int
		if err := db.Conn.QueryRow(context.Background(), "select count(*) from pg_attribute where attrelid = $1::regclass and attnum > 0", db.Table("grow2")).Scan(&cols); err != nil || cols != 1 {
			t.Errorf("table has %d columns (%v), want the 1 it had", cols, err)
		}
	})
	t.Run("missing table", func(t *testing.T) {
		no := false
		opts := pgtOpts(db, "absent", "append")
		opts.CreateTable = &no
		_, err := pgtLoad(t, mem, opts, pgtSchema, pgtRows())
		pgtWantError(t, err, db.Schema+".absent", "the table does not exist and createTable is false")
		opts = PostgresOptions{DSN: db.DSN(), Table: db.Schema + "_nope.t"}
		_, err = pgtLoad(t, mem, opts, pgtSchema, pgtRows())
		pgtWantError(t, err, "schema "+db.Schema+"_nope does not exist")
	})
	t.Run("view", func(t *testing.T) {
		db.Exec("create view " + db.Table("v") + " as select 1 as id")
		_, err := pgtLoad(t, mem, pgtOpts(db, "v", "append"), pgtSchema, pgtRows())
		pgtWantError(t, err, db.Schema+".v: it is a view, not a table")
	})
}

func TestPostgresStripNulIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	plain := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64), sinktest.Field("s", arrow.BinaryTypes.String)}, nil)
	rows := [][]any{{1, "clean"}, {2, nil}, {3, ""}, {4, "a\x00b"}, {5, "\x00\x00"}, {6, "x\x00"}}
	// Strings as utf8, and dictionary-encoded as the Arrow source hands them
	// on (a NUL in the dictionary is found in the row that uses it).
	for _, schema := range []*arrow.Schema{plain, sinktest.DictStrings(plain)} {
		table := "nul"
		if schema.Field(1).Type.ID() == arrow.DICTIONARY {
			table = "nul_dict"
		}
		_, err := pgtLoad(t, mem, pgtOpts(db, table, "append"), schema, rows, 2)
		pgtWantError(t, err, "write to "+db.Schema+"."+table, `row 4, column "s": the string holds a NUL character`, "stripNul: true")
		if pgtCount0(db, table) != -1 {
			t.Error("the failed load left a table behind")
		}

		opts := pgtOpts(db, table, "append")
		opts.StripNul = true
		pgtMustLoad(t, mem, opts, schema, rows, 2)
		want := [][]any{{int64(1), "clean"}, {int64(2), nil}, {int64(3), ""}, {int64(4), "ab"}, {int64(5), ""}, {int64(6), "x"}}
		if d := sinktest.DiffRows(want, db.Rows(table, plain, "id")); d != "" {
			t.Errorf("%s: read back: %s", schema.Field(1).Type, d)
		}
	}
}

func TestPostgresPrePostSQLIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64)}, nil)
	opts := pgtOpts(db, "pp", "append")
	log := db.Table("log")
	// preSQL may create the table itself (here with a default column).
	opts.PreSQL = "create table if not exists " + log + " (what text, n bigint); create table if not exists " + db.Table("pp") + " (id bigint, at text default 'x'); set local work_mem = '8MB'"
	opts.PostSQL = "insert into " + log + " select current_setting('work_mem'), count(*) from " + db.Table("pp") + "; analyze " + db.Table("pp")
	pgtMustLoad(t, mem, opts, schema, [][]any{{1}, {2}})
	var got string
	if err := db.Conn.QueryRow(ctx, "select what || ':' || n from "+log).Scan(&got); err != nil || got != "8MB:2" {
		t.Errorf("log = %q (%v), want 8MB:2: postSQL ran in the load's transaction after the rows", got, err)
	}

	opts.PostSQL = "commit"
	_, err := pgtLoad(t, mem, opts, schema, [][]any{{3}})
	pgtWantError(t, err, "postSQL for "+db.Schema+".pp: the statements ended the load's transaction")
	opts.PostSQL = ""
	opts.PreSQL = "rollback"
	_, err = pgtLoad(t, mem, opts, schema, [][]any{{3}})
	pgtWantError(t, err, "preSQL for "+db.Schema+".pp: the statements ended the load's transaction")
}

// TestPostgresWriteAfterFailureIntegration: once the COPY has failed, Write
// reports it instead of queueing, and no batch stays retained.
func TestPostgresWriteAfterFailureIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64)}, nil)
	db.Exec("create table " + db.Table("w") + " (id bigint check (id < 5000))")
	s, err := NewPostgres(ctx, schema, pgtOpts(db, "w", "append"))
	if err != nil {
		t.Fatal(err)
	}
	// pgx sends the COPY in 64 KiB chunks, so the server sees the bad row
	// (in batch 6) a few batches later, and Write reports it soon after.
	batch := func(b int) error {
		rows := make([][]any, 1000)
		for i := range rows {
			rows[i] = []any{b*1000 + i}
		}
		rec := sinktest.MustBatch(t, mem, schema, rows)
		defer rec.Release()
		return s.Write(ctx, rec)
	}
	// How soon depends on the scheduling of the COPY goroutine and the
	// server: keep writing (every later row is bad too) until Write says
	// so, for up to a minute on a loaded machine.
	var werr error
	deadline := time.Now().Add(time.Minute)
	for b := 0; werr == nil && time.Now().Before(deadline); b++ {
		werr = batch(b)
	}
	pgtWantError(t, werr, "copy into "+db.Schema+".w", "check constraint")
	if err := batch(0); err == nil {
		t.Error("Write after a failure succeeded")
	}
	if err := s.Abort(ctx); err != nil {
		t.Errorf("Abort: %v", err)
	}
	if _, err := s.Commit(ctx); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if err := s.Abort(ctx); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if n := db.Count("w"); n != 0 {
		t.Errorf("%d rows in the table, want 0", n)
	}
}

// TestPostgresSetupRetryIntegration: a transient error of the setup phase
// (here a serialization failure raised by preSQL on its first run) is
// retried on a new connection; a permanent one is not.
func TestPostgresSetupRetryIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{sinktest.Field("id", arrow.PrimitiveTypes.Int64)}, nil)
	seq := db.Table("attempts")
	db.Exec("create sequence " + seq)
	fast := pgBackoff{attempts: 3, first: 10 * time.Millisecond, max: 10 * time.Millisecond}
	attempts := func() int64 {
		var n int64
		if err := db.Conn.QueryRow(ctx, "select last_value from "+seq).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	opts := pgtOpts(db, "r", "append")
	// Sequences ignore rollbacks, so the second attempt gets 2.
	opts.PreSQL = fmt.Sprintf(`do $$ begin if nextval('%s') = 1 then raise exception 'try again' using errcode = 'serialization_failure'; end if; end $$`, seq)
	s, err := newPostgres(ctx, schema, opts, fast)
	if err != nil {
		t.Fatal(err)
	}
	if err := pgtWrite(t, ctx, s, mem, schema, [][]any{{1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := attempts(); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}

	opts.PreSQL = fmt.Sprintf("select nextval('%s') / 0", seq)
	_, err = newPostgres(ctx, schema, opts, fast)
	pgtWantError(t, err, "preSQL for "+db.Schema+".r", "division by zero")
	if n := attempts(); n != 3 {
		t.Errorf("a permanent error was retried: %d attempts in all, want 3", n)
	}
}

// TestPostgresOutOfRangeIntegration: dates and timestamps PostgreSQL cannot
// store fail the run, naming the row and the column, whether pbicopy or the
// server notices.
func TestPostgresOutOfRangeIntegration(t *testing.T) {
	db := pgtOpen(t)
	mem := pgtAlloc(t)
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{
		sinktest.Field("d", arrow.FixedWidthTypes.Date32),
		sinktest.Field("ts", sinktest.Timestamp),
	}, nil)
	cases := []struct {
		name string
		d    arrow.Date32
		ts   arrow.Timestamp
		want []string
	}{
		{"date that means -infinity", math.MinInt32 + pgEpochDays, 0, []string{`row 2, column "d": date`, "out of PostgreSQL's range"}},
		{"timestamp before int64 allows", 0, math.MinInt64, []string{`row 2, column "ts": timestamp`, "out of PostgreSQL's range"}},
		{"date after 5874897 AD", math.MaxInt32, 0, []string{"date out of range", "at COPY range, line 2, column d"}},
		{"timestamp before 4713 BC", 0, -9e18, []string{"timestamp out of range", "at COPY range, line 2, column ts"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := array.NewRecordBuilder(mem, schema)
			defer b.Release()
			b.Field(0).(*array.Date32Builder).AppendValues([]arrow.Date32{0, c.d}, nil)
			b.Field(1).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{0, c.ts}, nil)
			rec := b.NewRecordBatch()
			defer rec.Release()
			s, err := NewPostgres(ctx, schema, pgtOpts(db, "range", pgAppend))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Write(ctx, rec)
			if err == nil {
				_, err = s.Commit(ctx)
			}
			if aerr := s.Abort(ctx); aerr != nil {
				t.Errorf("Abort: %v", aerr)
			}
			pgtWantError(t, err, append([]string{"copy into " + db.Schema + ".range"}, c.want...)...)
		})
	}
	if n := pgtCount0(db, "range"); n != -1 {
		t.Errorf("the failed loads left a table with %d rows", n)
	}
}
