package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/jobfile"
)

// readingsTable: 12,000 rows whose Late column is null through the first
// page of a paged job (10,000 rows), a midnight-only Day, a Double with at
// most 3 decimals and a measure that returns numbers and "N/A".
func readingsTable() *fakepbi.Table {
	midnight := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return &fakepbi.Table{
		Name: "Readings",
		Columns: []fakepbi.Column{
			{Name: "ID", Type: fakepbi.Int64}, {Name: "Day", Type: fakepbi.DateTime},
			{Name: "Ratio", Type: fakepbi.Double}, {Name: "Late", Type: fakepbi.Int64},
			{Name: "Status", Type: fakepbi.Variant},
		},
		Rows: 12_000, SortedBy: "ID",
		Value: func(i, c int) any {
			switch c {
			case 0:
				return int64(i + 1)
			case 1:
				return midnight.AddDate(0, 0, i%100)
			case 2:
				return float64(i%1000) / 8
			case 3:
				if i < 10_000 {
					return nil
				}
				return int64(i)
			case 4:
				if i%500 == 499 {
					return "N/A"
				}
				return int64(i % 7)
			}
			return nil
		},
	}
}

// TestInferCommentsAmbiguousColumns: infer on a paged job reads its first
// page, as a run does, and comments every choice to review; a column null
// in every row is written commented out, with TYPE to fill in. A response
// cut by the service's limits still gives a mapping, with a warning.
func TestInferCommentsAmbiguousColumns(t *testing.T) {
	srv, dir := fakeEnv(t, fakepbi.Options{Tables: []*fakepbi.Table{readingsTable()}})
	paged := strings.NewReplacer(`    query: "EVALUATE Readings"`, "    table: Readings\n    paging: { key: \"Readings[ID]\" }")
	p := writeFile(t, filepath.Join(dir, "paged.yaml"), "name: paged\n"+sourceBlock("EVALUATE Readings", paged)+"sinks:\n  - csv: { path: out.csv }\n")
	code, stdout, stderr := runApp(t, context.Background(), "infer", p)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	golden(t, "infer-paged.txt", stdout)
	if q := srv.Queries(); len(q) != 1 || q[0].Query != "EVALUATE TOPN(10000, Readings, Readings[ID], ASC) ORDER BY Readings[ID] ASC" {
		t.Errorf("infer sent %+v", q)
	}
	// The block loads: the all-null column is left out, commented.
	job, _, err := jobfile.Loader{}.Load("x.yaml", []byte("name: x\n"+sourceBlock("EVALUATE Readings", nil)+stdout+"sinks:\n  - csv: { path: x.csv }\n"))
	if err != nil {
		t.Fatalf("the printed block does not load: %v", err)
	}
	if c := job.Mapping.Columns; len(c) != 4 || c[3].From != "Readings[Status]" || c[3].Type != "string" {
		t.Errorf("columns read back: %+v", c)
	}

	cut, dir2 := fakeEnv(t, fakepbi.Options{Tables: []*fakepbi.Table{readingsTable()}, MaxRows: 600})
	p = writeFile(t, filepath.Join(dir2, "cut.yaml"), "name: cut\n"+sourceBlock("EVALUATE Readings", nil)+"sinks:\n  - csv: { path: out.csv }\n")
	code, stdout, stderr = runApp(t, context.Background(), "infer", p)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "# Inferred by pbicopy infer from the first response (600 rows) of:\n#   EVALUATE Readings\n# The response was cut after 600 rows by the service's limits: a run of this query fails; page it or narrow it.\n") ||
		!strings.Contains(stdout, "# Readings[Status]: mixes numbers (first in row 1) and text (first in row 500)") {
		t.Errorf("cut response:\n%s", stdout)
	}
	if len(cut.Queries()) != 1 {
		t.Errorf("%d queries", len(cut.Queries()))
	}
}

// TestFileJob: infer and query work on a job that replays a saved
// executeQueries response (source.file), with the rules of a run; query
// takes no DAX for it, and refresh refuses it.
func TestFileJob(t *testing.T) {
	dir := t.TempDir()
	saved, err := os.ReadFile(filepath.Join("testdata", "saved-response.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp := writeFile(t, filepath.Join(dir, "response.json"), string(saved))
	job := writeFile(t, filepath.Join(dir, "saved.yaml"), "name: saved\nsource:\n  file: "+resp+"\nsinks:\n  - csv: { path: out.csv }\n")

	code, stdout, stderr := runApp(t, context.Background(), "infer", job)
	if code != exitOK {
		t.Fatalf("infer: exit %d\n%s\n%s", code, stdout, stderr)
	}
	golden(t, "infer-file.txt", normalize(stdout, dir))

	code, stdout, stderr = runApp(t, context.Background(), "query", "--job", job)
	if code != exitOK {
		t.Fatalf("query: exit %d\n%s\n%s", code, stdout, stderr)
	}
	golden(t, "query-file.txt", stdout)
	code, stdout, stderr = runApp(t, context.Background(), "query", "--job", job, "--format", "json")
	if code != exitOK || !strings.HasPrefix(stdout, `{"order_id":1,"order_date":"2024-03-01T00:00:00","amount":12.5,"comment":null,"margin":"0.25"}`) {
		t.Fatalf("query --format json: exit %d\n%s\n%s", code, stdout, stderr)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"query", "--job", job, "EVALUATE Sales"}, "job saved replays a saved response (source.file: " + resp + "), which no DAX query can change: leave out the query"},
		{[]string{"refresh", "--job", job}, "job saved reads a saved response (source.file), not Power BI"},
		{[]string{"query", "--job", job, "EVALUATE A", "EVALUATE B"}, "query takes one DAX query"},
	} {
		code, stdout, stderr := runApp(t, context.Background(), tc.args...)
		if code != exitInvalid || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d\n%s\n%s\nwant exit 2 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}

// TestRunVerboseLogsInferredMapping: run -v of a job without a mapping logs
// the mapping it inferred as a block ready to paste (raw in text logs, a
// string in JSON ones); without -v it does not.
func TestRunVerboseLogsInferredMapping(t *testing.T) {
	dir := t.TempDir()
	resp := writeFile(t, filepath.Join(dir, "response.json"),
		`{"results":[{"tables":[{"rows":[{"Sales[OrderID]":1,"Sales[OrderDate]":"2024-03-01T00:00:00","[Margin %]":0.25},{"Sales[OrderID]":2,"Sales[OrderDate]":"2024-03-02T00:00:00","[Margin %]":"N/A"}]}]}]}`)
	job := writeFile(t, filepath.Join(dir, "saved.yaml"), "name: saved\nsource:\n  file: "+resp+"\nsinks:\n  - csv: { path: "+filepath.Join(dir, "out.csv")+" }\n")
	block := `mapping:
  columns:
    - { from: "Sales[OrderID]", to: order_id, type: int64 }
    - { from: "Sales[OrderDate]", to: order_date, type: timestamp }
    - { from: "[Margin %]", to: margin, type: string }
  unmapped: error
`
	code, stdout, stderr := runApp(t, context.Background(), "run", "-v", "--log-format", "text", job)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "level=DEBUG msg=\"inferred mapping: add this block to the job file to keep these types (pbicopy infer comments the choices to review)\" job=saved\n"+block) {
		t.Errorf("text logs:\n%s\nwant the block\n%s", stderr, block)
	}
	// The block pasted into the job runs.
	withMapping := writeFile(t, filepath.Join(dir, "mapped.yaml"), "name: mapped\nsource:\n  file: "+resp+"\n"+block+"sinks:\n  - csv: { path: "+filepath.Join(dir, "mapped.csv")+" }\n")
	if code, stdout, stderr := runApp(t, context.Background(), "run", withMapping); code != exitOK {
		t.Fatalf("the logged block: exit %d\n%s\n%s", code, stdout, stderr)
	}

	code, _, stderr = runApp(t, context.Background(), "run", "-v", "--log-format", "json", job)
	quoted, _ := json.Marshal(block)
	if code != exitOK || !strings.Contains(stderr, `"mapping":`+string(quoted)) {
		t.Errorf("json logs: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runApp(t, context.Background(), "run", "--log-format", "text", job)
	if code != exitOK || strings.Contains(stderr, "inferred mapping: add this block") || strings.Contains(stderr, "  columns:") {
		t.Errorf("without -v: exit %d\n%s", code, stderr)
	}
}
