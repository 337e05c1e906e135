package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/jobfile"
)

// readingsRows is the size of the Readings table: within one response of
// the service (100,000 rows, 1,000,000 values, 15 MB).
const readingsRows = 60_000

// readingsTable reproduces what broke scheduled jobs when inference looked
// at the first 1,000 values: a Double whose values have at most 4 decimals
// until 6.666666666666667, a DateTime at midnight until a 09:15, a column
// null for the first 50,000 rows, and a measure that returns numbers, then
// "N/A". Day takes 3 values, 20,000 rows each, for partitions. With keep,
// the table has only those columns.
func readingsTable(keep ...string) *fakepbi.Table {
	midnight := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	all := []fakepbi.Column{
		{Name: "ID", Type: fakepbi.Int64}, {Name: "Day", Type: fakepbi.DateTime},
		{Name: "Ratio", Type: fakepbi.Double}, {Name: "At", Type: fakepbi.DateTime},
		{Name: "Late", Type: fakepbi.Int64}, {Name: "Status", Type: fakepbi.Variant},
	}
	value := func(i int, name string) any {
		switch name {
		case "ID":
			return int64(i + 1)
		case "Day":
			return midnight.AddDate(0, 0, i/(readingsRows/3))
		case "Ratio":
			if i == readingsRows-10 {
				return 20.0 / 3
			}
			return float64(i%1000) / 8 // at most 3 decimals
		case "At":
			if i == readingsRows-9 {
				return midnight.Add(9*time.Hour + 15*time.Minute)
			}
			return midnight.AddDate(0, 0, i%300)
		case "Late":
			if i < 50_000 {
				return nil
			}
			return int64(i)
		case "Status":
			if i == readingsRows-1 {
				return "N/A"
			}
			return int64(i % 7)
		}
		return nil
	}
	cols := all
	if len(keep) > 0 {
		cols = nil
		for _, c := range all {
			if slices.Contains(keep, c.Name) {
				cols = append(cols, c)
			}
		}
	}
	return &fakepbi.Table{
		Name: "Readings", Columns: cols, Rows: readingsRows, SortedBy: "ID",
		Value: func(i, c int) any { return value(i, cols[c].Name) },
	}
}

// readingsJob is a job without a mapping over Readings: source is the
// source block's lines after the endpoint, partition a partition: line or "".
func (f *fixture) readingsJob(t *testing.T, source, partition, outName string) *jobfile.Job {
	t.Helper()
	text := fmt.Sprintf(`name: readings
%s%s
sinks:
  - parquet: { path: %q }
  - csv: { path: %q }
`, partition, fakeSource(source, fakeAuth), filepath.Join(f.dir, outName+".parquet"), filepath.Join(f.dir, outName+".csv"))
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("readings.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// TestInferWholeFirstResponse: inference reads the whole first response,
// so the late 6.666666666666667, 09:15, numbers after 50,000 nulls and
// "N/A" are all typed by it; the run writes every value.
func TestInferWholeFirstResponse(t *testing.T) {
	f := newFixture(t, fakepbi.Options{Tables: []*fakepbi.Table{readingsTable()}})
	job := f.readingsJob(t, queryLine("EVALUATE Readings"), "", "out")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	r := f.runner(mem)
	r.BatchRows = 0
	res := r.Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	mem.AssertSize(t, 0)
	want := "id int64, day timestamp, ratio float64, at timestamp, late int64, status string"
	if got := strings.Join(res.Columns, ", "); got != want {
		t.Fatalf("columns\n got %s\nwant %s", got, want)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, n := range []string{
		"key Readings[Day]: every value is at midnight: inferred as timestamp; write date if this is a Date column",
		"key Readings[Status]: mixes numbers (first in row 1) and text (first in row 60000): inferred as string",
	} {
		if !strings.Contains(notes, n) {
			t.Errorf("notes %q\nwant %q", res.Notes, n)
		}
	}
	if strings.Contains(notes, "Readings[At]") || strings.Contains(notes, "Readings[Ratio]") {
		t.Errorf("a note on At, which has a 09:15, or on Ratio, which has 6.666666666666667: %q", res.Notes)
	}
	_, rows, err := sinktest.ReadParquetArrow(filepath.Join(f.dir, "out.parquet"), memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != readingsRows {
		t.Fatalf("%d rows, want %d", len(rows), readingsRows)
	}
	for _, c := range []struct {
		row, col int
		want     any
	}{
		{readingsRows - 10, 2, 20.0 / 3},
		{readingsRows - 9, 3, "2024-01-01T09:15:00"},
		{0, 4, nil}, {49_999, 4, nil}, {50_000, 4, int64(50_000)},
		{0, 5, "0"}, {readingsRows - 1, 5, "N/A"},
	} {
		if got := rows[c.row][c.col]; got != c.want {
			t.Errorf("row %d column %d = %v (%T), want %v", c.row+1, c.col, got, got, c.want)
		}
	}
}

// TestInferFirstPage: a paged job infers from its first page, and a later
// page's value that does not fit fails with the row, both types and the
// mapping line; a column null through the first page asks for its type.
// Nothing is published either way.
func TestInferFirstPage(t *testing.T) {
	paged := "    table: Readings\n    paging: { key: \"Readings[ID]\", pageRows: 10000 }\n"
	tests := []struct {
		name string
		keep []string
		want string
	}{
		{"types hold in later pages", []string{"ID", "Ratio", "At"}, ""},
		{"N/A in a later page", []string{"ID", "Status"},
			`page 6: row 60000, column status (from Readings[Status]): value "N/A" does not fit the type int64 inferred from the 10000 rows of the first page (it is a string, not a number): it needs string; give the job a mapping: block (pbicopy infer prints one, run -v logs the inferred one) with the line  - { from: "Readings[Status]", to: status, type: string }`},
		{"null through the first page", []string{"ID", "Late"},
			`key Readings[Late] is null in all 10000 rows of the first page, so no type can be inferred: give the job a mapping: block (pbicopy infer prints one) with - { from: "Readings[Late]", to: late, type: TYPE }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fakepbi.Options{Tables: []*fakepbi.Table{readingsTable(tt.keep...)}})
			job := f.readingsJob(t, paged, "", "out")
			r := f.runner(nil)
			connector(r).Rate = -1
			if tt.want != "" {
				publishPrevious(t, f)
			}
			res := r.Run(context.Background(), job)
			if tt.want == "" {
				if res.Err() != nil {
					t.Fatalf("run: %v", res.Err())
				}
				if res.Rows != readingsRows || res.Pages != 7 {
					t.Fatalf("%d rows in %d pages", res.Rows, res.Pages)
				}
				if got := strings.Join(res.Columns, ", "); got != "id int64, ratio float64, at timestamp" {
					t.Fatalf("columns %s", got)
				}
				return
			}
			if res.Err() == nil || !strings.Contains(res.Err().Error(), tt.want) {
				t.Fatalf("error\n%v\nwant it to contain\n%s", res.Err(), tt.want)
			}
			checkPreviousUntouched(t, f)
		})
	}
}

// TestInferSharedByPartitions: the first partition infers the columns and
// the others use them (every output has the same schema); a later
// partition's value that does not fit fails with the mapping line, naming
// the partition the types came from.
func TestInferSharedByPartitions(t *testing.T) {
	t.Parallel() // its own fake, folder and outputs
	for _, concurrency := range []int{1, 3} {
		t.Run(fmt.Sprintf("concurrency %d", concurrency), func(t *testing.T) {
			f := newFixture(t, fakepbi.Options{Tables: []*fakepbi.Table{readingsTable("ID", "Day", "Status")}})
			part := "params:\n  day: { type: date }\npartition: { param: day, step: 1d }\n"
			query := queryLine(`EVALUATE SELECTCOLUMNS(FILTER(Readings, Readings[Day] = {{ dax .day }}), "ID", Readings[ID], "Status", Readings[Status]) ORDER BY [ID]`)
			job := f.readingsJob(t, query, part, "day={{ .day }}/out")
			r := f.runner(nil)
			r.From, r.To, r.Concurrency = "2024-01-01", "2024-01-03", concurrency
			res := r.Run(context.Background(), job)
			if len(res.Partitions) != 3 {
				t.Fatalf("%d partitions", len(res.Partitions))
			}
			// Every partition that succeeded has the same columns: those
			// its leader inferred.
			var cols string
			for _, p := range res.Partitions {
				if p.Status != Succeeded {
					continue
				}
				if got := strings.Join(p.Columns, ", "); cols == "" {
					cols = got
				} else if got != cols {
					t.Errorf("partition %s columns %s, another's %s", p.Key, got, cols)
				}
			}
			last := res.Partitions[2]
			if concurrency > 1 && last.Status == Succeeded {
				// The last day ran first and inferred string: every
				// partition then writes its numbers as text.
				if cols != "id int64, status string" {
					t.Fatalf("columns %s, want status as string", cols)
				}
				return
			}
			want := `row 20000, column status (from [Status]): value "N/A" does not fit the type int64 inferred from the first response of partition 2024-01-0`
			if last.Status != Failed || !strings.Contains(last.Error, want) || !strings.Contains(last.Error, `- { from: "[Status]", to: status, type: string }`) {
				t.Fatalf("last partition: %s %s\nwant %s", last.Status, last.Error, want)
			}
			if cols != "id int64, status int64" || concurrency == 1 && (res.Partitions[0].Status != Succeeded || res.Partitions[1].Status != Succeeded) {
				t.Fatalf("partitions %+v %+v, columns %s", res.Partitions[0], res.Partitions[1], cols)
			}
		})
	}
}
