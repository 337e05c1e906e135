package sink

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// pgtDSNEnv overrides the server the PostgreSQL integration tests use.
const pgtDSNEnv = "PBICOPY_TEST_PG_DSN"

func pgtDSN() string {
	if dsn := os.Getenv(pgtDSNEnv); dsn != "" {
		return dsn
	}
	return "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable connect_timeout=5"
}

// pgtDB is a test's own schema on the test server, dropped when the test
// ends.
type pgtDB struct {
	t      testing.TB
	conn   *pgx.Conn
	schema string
	app    string // application_name of the test's sinks
}

func pgtOpen(t testing.TB) *pgtDB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtDSN())
	if err != nil {
		sinktest.SkipOrFail(t, "no PostgreSQL server at %q (set %s to use another): %s", pgRedact(pgtDSN(), pgtDSN()), pgtDSNEnv, pgRedact(err.Error(), pgtDSN()))
	}
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	db := &pgtDB{t: t, conn: conn, schema: "pbicopy_test_" + suffix, app: "pbicopy_test_" + suffix}
	db.exec("create schema " + pgx.Identifier{db.schema}.Sanitize())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "drop schema "+pgx.Identifier{db.schema}.Sanitize()+" cascade"); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
		conn.Close(ctx)
	})
	return db
}

// dsn is the DSN the test's sinks use: the test server, tagged with the
// test's application_name so that the test can find their sessions.
func (db *pgtDB) dsn() string {
	return pgtDSN() + " application_name=" + db.app
}

// table is the table option for name in the test's schema.
func (db *pgtDB) table(name string) string {
	return pgx.Identifier{db.schema, name}.Sanitize()
}

func (db *pgtDB) opts(table, mode string) PostgresOptions {
	return PostgresOptions{DSN: db.dsn(), Table: db.table(table), Mode: mode}
}

func (db *pgtDB) exec(sql string, args ...any) {
	db.t.Helper()
	if _, err := db.conn.Exec(context.Background(), sql, args...); err != nil {
		db.t.Fatalf("%s: %v", sql, err)
	}
}

// checksum is the row count of a table and a digest of its rows, in an
// order that does not depend on how they were stored.
func (db *pgtDB) checksum(table string) string {
	db.t.Helper()
	var n int64
	var sum string
	err := db.conn.QueryRow(context.Background(),
		"select count(*), coalesce(md5(string_agg(t::text, ',' order by t::text)), '') from "+db.table(table)+" t").Scan(&n, &sum)
	if err != nil {
		db.t.Fatalf("checksum of %s: %v", table, err)
	}
	return fmt.Sprintf("%d rows, md5 %s", n, sum)
}

func (db *pgtDB) count(table string) int64 {
	db.t.Helper()
	var n int64
	if err := db.conn.QueryRow(context.Background(), "select count(*) from "+db.table(table)).Scan(&n); err != nil {
		db.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// rows reads a table back in the normalised form of package sinktest,
// ordered by orderBy.
func (db *pgtDB) rows(table string, schema *arrow.Schema, orderBy string) [][]any {
	db.t.Helper()
	sel := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		q := pgx.Identifier{f.Name}.Sanitize()
		switch f.Type.ID() {
		case arrow.DECIMAL128, arrow.DATE32:
			sel[i] = q + "::text"
		case arrow.TIMESTAMP:
			sel[i] = "replace(" + q + "::text, ' ', 'T')"
		default:
			sel[i] = q
		}
	}
	rows, err := db.conn.Query(context.Background(), "select "+strings.Join(sel, ", ")+" from "+db.table(table)+" order by "+pgx.Identifier{orderBy}.Sanitize())
	if err != nil {
		db.t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			db.t.Fatalf("read %s: %v", table, err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		db.t.Fatalf("read %s: %v", table, err)
	}
	return out
}

// pgtAlloc is a checked allocator that fails t if a batch is still held
// when the test ends.
func pgtAlloc(t testing.TB) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// pgtLoad runs one load: it opens a sink, writes rows in batches of the
// given sizes (the last size repeated; odd batches are slices at an offset)
// and commits. The first error of any step is returned, after Abort.
func pgtLoad(t testing.TB, mem memory.Allocator, opts PostgresOptions, schema *arrow.Schema, rows [][]any, sizes ...int) (Result, error) {
	t.Helper()
	ctx := context.Background()
	s, err := NewPostgres(ctx, schema, opts)
	if err != nil {
		return Result{}, err
	}
	if err := pgtWrite(t, ctx, s, mem, schema, rows, sizes...); err != nil {
		if aerr := s.Abort(ctx); aerr != nil {
			t.Errorf("abort: %v", aerr)
		}
		return Result{}, err
	}
	res, err := s.Commit(ctx)
	if err != nil {
		if aerr := s.Abort(ctx); aerr != nil {
			t.Errorf("abort after a failed commit: %v", aerr)
		}
	}
	return res, err
}

func pgtWrite(t testing.TB, ctx context.Context, s Sink, mem memory.Allocator, schema *arrow.Schema, rows [][]any, sizes ...int) error {
	t.Helper()
	if len(sizes) == 0 {
		sizes = []int{len(rows)}
	}
	for i, k := 0, 0; i < len(rows); k++ {
		n := min(sizes[min(k, len(sizes)-1)], len(rows)-i)
		var rec arrow.RecordBatch
		if k%2 == 1 {
			// Arrays that start at an offset into their buffers.
			whole := sinktest.MustBatch(t, mem, schema, rows[i-1:i+n])
			rec = whole.NewSlice(1, int64(n+1))
			whole.Release()
		} else {
			rec = sinktest.MustBatch(t, mem, schema, rows[i:i+n])
		}
		err := s.Write(ctx, rec)
		rec.Release()
		if err != nil {
			return err
		}
		i += n
	}
	return nil
}

func pgtMustLoad(t testing.TB, mem memory.Allocator, opts PostgresOptions, schema *arrow.Schema, rows [][]any, sizes ...int) Result {
	t.Helper()
	res, err := pgtLoad(t, mem, opts, schema, rows, sizes...)
	if err != nil {
		t.Fatalf("load into %s (%s): %v", opts.Table, opts.mode(), err)
	}
	return res
}

func pgtWantError(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// pgtWaitFor polls cond until it holds or the time is up.
func pgtWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
