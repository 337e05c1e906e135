package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/jobfile"
)

// pgSchema makes a scratch schema for one test and drops it at the end.
func pgSchema(t *testing.T) (*pgx.Conn, string) {
	t.Helper()
	db := sinktest.OpenPG(t)
	return db.Conn, db.Schema
}

// pgJob is a job from the fake Power BI into one PostgreSQL table.
func (f *fixture) pgJob(t *testing.T, query, sinkYAML string) *jobfile.Job {
	t.Helper()
	text := fmt.Sprintf(`name: pg-job
%s%s
sinks:
  - postgres: %s
`, fakeSource(queryLine(query), fakeAuth), salesMapping, sinkYAML)
	f.env["PG_DSN"] = sinktest.PGDSN()
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("pg.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// tableRows reads a table back in the normalised form of sinktest.
func tableRows(t *testing.T, conn *pgx.Conn, table string) [][]any {
	t.Helper()
	rows, err := conn.Query(context.Background(), `select order_id, to_char(order_date, 'YYYY-MM-DD'), customer, region, quantity,
		unit_price::text, amount::text, discount, returned from `+table+` order by order_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checksum(t *testing.T, conn *pgx.Conn, table string) (int64, string) {
	t.Helper()
	var n int64
	var sum *string
	err := conn.QueryRow(context.Background(), `select count(*), md5(string_agg(t::text, '|' order by t::text)) from `+table+` t`).Scan(&n, &sum)
	if err != nil {
		t.Fatal(err)
	}
	if sum == nil {
		return n, ""
	}
	return n, *sum
}

func TestPostgresModesEndToEndIntegration(t *testing.T) {
	f := newFixture(t, fakepbi.Options{})
	conn, schema := pgSchema(t)
	tb := table(t, f.opts.Tables, "Sales")
	cols := mustColumns(t, f.pgJob(t, "EVALUATE Sales", `{ dsn: "${PG_DSN}", table: x.y }`))
	want := expectedRows(t, tb, cols)
	for _, mode := range []string{"append", "replace", "merge"} {
		t.Run(mode, func(t *testing.T) {
			table := schema + "." + mode + "_sales"
			sinkYAML := fmt.Sprintf(`{ dsn: "${PG_DSN}", table: %s, mode: %s, key: [order_id] }`, table, mode)
			if mode != "merge" {
				sinkYAML = fmt.Sprintf(`{ dsn: "${PG_DSN}", table: %s, mode: %s }`, table, mode)
			}
			job := f.pgJob(t, "EVALUATE Sales", sinkYAML)
			var first string
			for run := 1; run <= 3; run++ {
				res := f.runner(nil).Run(context.Background(), job)
				if res.Err() != nil {
					t.Fatalf("run %d: %v", run, res.Err())
				}
				n, sum := checksum(t, conn, table)
				switch {
				case mode == "append":
					if n != int64(run*tb.Rows) {
						t.Errorf("append run %d: %d rows", run, n)
					}
				case run == 1:
					first = sum
					if d := sinktest.DiffRows(want, tableRows(t, conn, table)); d != "" {
						t.Errorf("values: %s", d)
					}
				case sum != first || n != int64(tb.Rows):
					t.Errorf("%s run %d changed the table: %d rows, checksum %s, first %s", mode, run, n, sum, first)
				}
				if res.Sinks[0].Rows != int64(tb.Rows) || res.Sinks[0].Location != table {
					t.Errorf("summary: %+v", res.Sinks[0])
				}
			}
		})
	}
}

func TestPostgresFailureLeavesTableUnchangedIntegration(t *testing.T) {
	conn, schema := pgSchema(t)
	table := schema + ".sales"
	for _, c := range []struct {
		name  string
		opts  fakepbi.Options
		setup func(*fakepbi.Server)
	}{
		{"truncated result", fakepbi.Options{MaxRows: 600}, nil},
		{"body cut mid-stream", fakepbi.Options{}, func(s *fakepbi.Server) { s.CutBody(5, 150_000) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.opts)
			good := newFixture(t, fakepbi.Options{})
			good.dir = f.dir
			seed := good.pgJob(t, "EVALUATE Sales", fmt.Sprintf(`{ dsn: "${PG_DSN}", table: %s, mode: replace }`, table))
			if res := good.runner(nil).Run(context.Background(), seed); res.Err() != nil {
				t.Fatal(res.Err())
			}
			n0, sum0 := checksum(t, conn, table)
			if c.setup != nil {
				c.setup(f.srv)
			}
			job := f.pgJob(t, "EVALUATE Sales", fmt.Sprintf(`{ dsn: "${PG_DSN}", table: %s, mode: replace }`, table))
			r := f.runner(nil)
			r.BatchRows = 50 // rows reach the COPY before the failure
			res := r.Run(context.Background(), job)
			if res.Err() == nil {
				t.Fatal("the run succeeded")
			}
			if n, sum := checksum(t, conn, table); n != n0 || sum != sum0 {
				t.Errorf("the table changed: %d rows (%s), before %d (%s)", n, sum, n0, sum0)
			}
		})
	}
}

// TestPostgresAndFilesTogetherIntegration runs one job into Parquet, CSV and
// PostgreSQL at once: every sink gets the same rows.
func TestPostgresAndFilesTogetherIntegration(t *testing.T) {
	f := newFixture(t, fakepbi.Options{})
	conn, schema := pgSchema(t)
	tableName := schema + ".sales"
	f.env["PG_DSN"] = sinktest.PGDSN()
	text := strings.Replace(fmt.Sprintf(`name: all-sinks
%s%s
sinks:
  - parquet: { path: %q }
  - csv: { path: %q }
  - postgres: { dsn: "${PG_DSN}", table: %s, mode: replace }
`, fakeSource(queryLine("EVALUATE Sales"), fakeAuth), salesMapping, filepath.Join(f.dir, "out.parquet"), filepath.Join(f.dir, "out.csv"), tableName), "\t", "  ", -1)
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("all.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := f.runner(nil).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	cols := mustColumns(t, job)
	want := expectedRows(t, table(t, f.opts.Tables, "Sales"), cols)
	checkOutputs(t, f, cols, want)
	if d := sinktest.DiffRows(want, tableRows(t, conn, tableName)); d != "" {
		t.Errorf("postgres: %s", d)
	}
	t.Logf("three sinks in %s", time.Since(start))
}
