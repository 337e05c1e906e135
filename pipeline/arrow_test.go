package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/mapping"
)

// arrowLines are the fields of a source reading the fake through the
// executeDaxQueries API.
func arrowLines(query string) string {
	return queryLine(query) + "    api: executeDaxQueries\n"
}

// arrowJob is f.job through the Arrow API.
func (f *fixture) arrowJob(t *testing.T, query, mappingYAML string) *jobfile.Job {
	t.Helper()
	return f.jobOf(t, "arrow", arrowLines(query), mappingYAML)
}

// TestArrowRunEndToEnd: with a mapping, the Arrow API writes exactly what
// the JSON API writes; without one, every column keeps the model's type
// (the DateTime as timestamp), with no sampling.
func TestArrowRunEndToEnd(t *testing.T) {
	f := newFixture(t, fakepbi.Options{ArrowBatchRows: 250}) // sliced into batches of 100
	job := f.arrowJob(t, "EVALUATE Sales", salesMapping)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	res := f.runner(mem).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v\nlogs:\n%s", res.Err(), f.logs)
	}
	mem.AssertSize(t, 0)
	cols := mustColumns(t, job)
	tb := table(t, f.opts.Tables, "Sales")
	checkOutputs(t, f, cols, expectedRows(t, tb, cols))
	if res.Rows != int64(tb.Rows) {
		t.Errorf("rows %d, want %d", res.Rows, tb.Rows)
	}
	q := f.srv.Queries()
	if len(q) != 1 || q[0].API != "executeDaxQueries" || q[0].Accept != "application/vnd.apache.arrow.stream" || !strings.HasPrefix(q[0].Authorization, "Bearer ") {
		t.Errorf("requests %+v", q)
	}
	noTempFiles(t, f.dir, "out.csv", "out.parquet")

	job = f.arrowJob(t, "EVALUATE Sales", "")
	res = f.runner(mem).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	mem.AssertSize(t, 0)
	want := []string{"order_id int64", "order_date timestamp", "customer string", "region string", "quantity int64",
		"unit_price decimal(19,4)", "amount decimal(19,4)", "discount float64", "returned bool"}
	if strings.Join(res.Columns, ", ") != strings.Join(want, ", ") {
		t.Errorf("columns:\n got %v\nwant %v", res.Columns, want)
	}
	cols[1].Type = mapping.Type{Kind: mapping.Timestamp}
	checkOutputs(t, f, cols, expectedRows(t, tb, cols))
}

// TestArrowAllNullColumnKeepsItsType: a column blank on every row of the
// result keeps the model's type, where the JSON API would need a mapping.
func TestArrowAllNullColumnKeepsItsType(t *testing.T) {
	f := newFixture(t, fakepbi.Options{})
	// Discount is blank on row 0 alone (the demo model): TOPN 1 of it is
	// all null.
	job := f.arrowJob(t, `EVALUATE TOPN(1, SELECTCOLUMNS(Sales, "OrderID", Sales[OrderID], "Discount", Sales[Discount]), [OrderID], ASC)`, "")
	res := f.runner(nil).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	if strings.Join(res.Columns, ", ") != "order_id int64, discount float64" {
		t.Errorf("columns %v", res.Columns)
	}
	_, rows, err := sinktest.ReadParquetArrow(filepath.Join(f.dir, "out.parquet"), memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0][1] != nil {
		t.Errorf("rows %v, want one with a null discount", rows)
	}
}

func TestArrowRunFailuresPublishNothing(t *testing.T) {
	t.Parallel() // its own fake, folder and outputs
	cases := []struct {
		name    string
		query   string
		mapping string
		setup   func(*fakepbi.Server)
		want    []string
	}{
		{name: "DAX error rowset", query: "EVALUATE Salez",
			want: []string{"executeDaxQueries: the query failed", "Salez", "FaultCode", "RequestId"}},
		{name: "two EVALUATEs", query: "EVALUATE Sales EVALUATE Sales", want: []string{"returned 2 results"}},
		{name: "body cut every time", query: "EVALUATE Sales",
			setup: func(s *fakepbi.Server) { s.CutBody(10, 1500) }, want: []string{"broke off"}},
		{name: "lossy cast", query: "EVALUATE Sales", mapping: strings.Replace(salesMapping, "to: discount, type: float64", "to: discount, type: int64", 1),
			want: []string{"column discount", "is not a whole number"}},
		{name: "wrong dataset", query: "EVALUATE Sales",
			setup: func(s *fakepbi.Server) {}, want: []string{"executeDaxQueries: HTTP 404"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fakepbi.Options{})
			if c.name == "wrong dataset" {
				f.env["DS"] = "f4ce0000-0000-4000-8000-00000000dead"
			}
			if c.setup != nil {
				c.setup(f.srv)
			}
			publishPrevious(t, f)
			res := f.runner(nil).Run(context.Background(), f.arrowJob(t, c.query, c.mapping))
			err := res.Err()
			if err == nil {
				t.Fatal("the run succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			checkPreviousUntouched(t, f)
		})
	}
}

func TestArrowRunRecoversFromACut(t *testing.T) {
	t.Parallel() // its own fake, folder and outputs
	f := newFixture(t, fakepbi.Options{ArrowBatchRows: 50})
	f.srv.CutBody(1, 2500)
	f.srv.Throttle(1, 0)
	job := f.arrowJob(t, "EVALUATE Sales", salesMapping)
	res := f.runner(nil).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	cols := mustColumns(t, job)
	checkOutputs(t, f, cols, expectedRows(t, table(t, f.opts.Tables, "Sales"), cols))
	if n := f.srv.QueryRequests(); n != 3 {
		t.Errorf("%d requests, want 3 (throttled, cut, whole)", n)
	}
}

// TestArrowRunToPostgres: the Arrow API into PostgreSQL writes the rows the
// JSON API writes, and without a mapping creates the columns with the
// model's types.
func TestArrowRunToPostgres(t *testing.T) {
	f := newFixture(t, fakepbi.Options{ArrowBatchRows: 250})
	conn, schema := pgSchema(t)
	f.env["PG_DSN"] = sinktest.PGDSN()
	load := func(lines, mappingYAML, table string) {
		t.Helper()
		text := fmt.Sprintf("name: pg\n%s%s\nsinks:\n  - postgres: { dsn: \"${PG_DSN}\", table: %s.%s }\n", fakeSource(lines, fakeAuth), mappingYAML, schema, table)
		job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("pg.yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if res := f.runner(nil).Run(context.Background(), job); res.Err() != nil {
			t.Fatalf("%s: %v", table, res.Err())
		}
	}
	load(arrowLines("EVALUATE Sales"), salesMapping, "by_arrow")
	load(queryLine("EVALUATE Sales"), salesMapping, "by_json")
	a, j := tableRows(t, conn, schema+".by_arrow"), tableRows(t, conn, schema+".by_json")
	if len(a) != table(t, f.opts.Tables, "Sales").Rows {
		t.Fatalf("%d rows", len(a))
	}
	if d := sinktest.DiffRows(j, a); d != "" {
		t.Errorf("Arrow and JSON loads differ: %s", d)
	}

	load(arrowLines("EVALUATE Sales"), "", "natural")
	rows, err := conn.Query(context.Background(), `select column_name, data_type, coalesce(numeric_precision::text, ''), coalesce(numeric_scale::text, '')
		from information_schema.columns where table_schema = $1 and table_name = 'natural' order by ordinal_position`, schema)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var name, typ, p, s string
		if err := rows.Scan(&name, &typ, &p, &s); err != nil {
			t.Fatal(err)
		}
		if typ == "numeric" {
			typ += "(" + p + "," + s + ")"
		}
		got = append(got, name+" "+typ)
	}
	rows.Close()
	want := "order_id bigint, order_date timestamp without time zone, customer text, region text, quantity bigint, " +
		"unit_price numeric(19,4), amount numeric(19,4), discount double precision, returned boolean"
	if strings.Join(got, ", ") != want {
		t.Errorf("columns\n got %s\nwant %s", strings.Join(got, ", "), want)
	}
	var n int
	if err := conn.QueryRow(context.Background(), "select count(*) from "+schema+".natural").Scan(&n); err != nil || n != len(a) {
		t.Errorf("natural: %d rows, %v", n, err)
	}
}
