package sinktest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5"
)

// PGDSNEnv overrides the server the PostgreSQL integration tests use.
const PGDSNEnv = "PBICOPY_TEST_PG_DSN"

// PGDSN is the DSN of the test server: PGDSNEnv, else the local server of
// the development machine and of CI.
func PGDSN() string {
	if dsn := os.Getenv(PGDSNEnv); dsn != "" {
		return dsn
	}
	return "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable connect_timeout=5"
}

var pgPasswordRE = regexp.MustCompile(`(password\s*=\s*|://[^:/@]*:)[^\s@]+`)

// PG is a test's own schema on the test server, dropped when the test
// ends, and a connection to read it.
type PG struct {
	t      testing.TB
	Conn   *pgx.Conn
	Schema string
	App    string // application_name of the test's sinks
}

// OpenPG creates the test's schema, or skips the test (fails it, with
// PBICOPY_REQUIRE_INTEGRATION set) when no server answers.
func OpenPG(t testing.TB) *PG {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, PGDSN())
	if err != nil {
		SkipOrFail(t, "no PostgreSQL server at %q (set %s to use another): %s", pgPasswordRE.ReplaceAllString(PGDSN(), "${1}xxx"), PGDSNEnv, pgPasswordRE.ReplaceAllString(err.Error(), "${1}xxx"))
	}
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	db := &PG{t: t, Conn: conn, Schema: "pbicopy_test_" + suffix, App: "pbicopy_test_" + suffix}
	db.Exec("create schema " + pgx.Identifier{db.Schema}.Sanitize())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "drop schema "+pgx.Identifier{db.Schema}.Sanitize()+" cascade"); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
		conn.Close(ctx)
	})
	return db
}

// DSN is the DSN the test's sinks use: the test server, tagged with the
// test's application_name so that the test can find their sessions.
func (db *PG) DSN() string {
	return PGDSN() + " application_name=" + db.App
}

// Table is the schema-qualified name of table name in the test's schema.
func (db *PG) Table(name string) string {
	return pgx.Identifier{db.Schema, name}.Sanitize()
}

// Exec runs sql, failing the test on error.
func (db *PG) Exec(sql string, args ...any) {
	db.t.Helper()
	if _, err := db.Conn.Exec(context.Background(), sql, args...); err != nil {
		db.t.Fatalf("%s: %v", sql, err)
	}
}

// Checksum is the row count of a table and a digest of its rows, in an
// order that does not depend on how they were stored.
func (db *PG) Checksum(table string) string {
	db.t.Helper()
	var n int64
	var sum string
	err := db.Conn.QueryRow(context.Background(),
		"select count(*), coalesce(md5(string_agg(t::text, ',' order by t::text)), '') from "+db.Table(table)+" t").Scan(&n, &sum)
	if err != nil {
		db.t.Fatalf("checksum of %s: %v", table, err)
	}
	return fmt.Sprintf("%d rows, md5 %s", n, sum)
}

// Count is the number of rows of a table.
func (db *PG) Count(table string) int64 {
	db.t.Helper()
	var n int64
	if err := db.Conn.QueryRow(context.Background(), "select count(*) from "+db.Table(table)).Scan(&n); err != nil {
		db.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// Exists reports whether the test's schema has a table name.
func (db *PG) Exists(table string) bool {
	db.t.Helper()
	var ok bool
	if err := db.Conn.QueryRow(context.Background(), "select to_regclass($1) is not null", db.Table(table)).Scan(&ok); err != nil {
		db.t.Fatalf("look up %s: %v", table, err)
	}
	return ok
}

// Rows reads a table back in the normalised form, ordered by orderBy.
func (db *PG) Rows(table string, schema *arrow.Schema, orderBy string) [][]any {
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
	rows, err := db.Conn.Query(context.Background(), "select "+strings.Join(sel, ", ")+" from "+db.Table(table)+" order by "+pgx.Identifier{orderBy}.Sanitize())
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
