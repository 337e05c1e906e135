package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/jobfile"
)

// dailyJob is a partitioned job over the Sales table, a partition a day.
func (f *fixture) dailyJob(t *testing.T, query string) *jobfile.Job {
	t.Helper()
	text := fmt.Sprintf(`name: daily
params:
  day: { type: date }
partition: { param: day, step: 1d }
%s%s
sinks:
  - csv: { path: %q }
`, fakeSource(queryLine(query), fakeAuth), salesMapping, filepath.Join(f.dir, "out", "{{ .day }}.csv"))
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("daily.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// TestFailFast: an error every partition would meet (the token refused,
// the query invalid, access denied) stops the job at the first partition,
// the others are "not run", and --resume is not suggested; an error a
// retry may cure (the service failing) is met by each partition, and
// --resume is.
func TestFailFast(t *testing.T) {
	const days = 5
	for _, c := range []struct {
		name     string
		query    string
		setup    func(f *fixture)
		failFast bool
		want     string
	}{
		{"token refused", `EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }})`, func(f *fixture) { f.env["SECRET"] = "wrong" }, true, "AADSTS7000215: invalid client secret"},
		{"invalid query", `EVALUATE FILTER(Salez, Salez[OrderDate] = {{ dax .day }})`, nil, true, "DatasetExecuteQueriesError"},
		{"access denied", `EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }})`, func(f *fixture) { f.srv.FailWith(1000, 403) }, true, "HTTP 403"},
		{"service failing", `EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }})`, func(f *fixture) { f.srv.FailWith(1000, 500) }, false, "HTTP 500"},
	} {
		t.Run(c.name, func(t *testing.T) {
			days, to := days, "2024-01-05"
			if !c.failFast {
				if testing.Short() {
					t.Skip("each partition spends its retries")
				}
				days, to = 2, "2024-01-02"
			}
			f := newFixture(t, fakepbi.Options{})
			if c.setup != nil {
				c.setup(f)
			}
			r := f.runner(nil)
			r.From, r.To = "2024-01-01", to
			res := r.Run(context.Background(), f.dailyJob(t, c.query))
			if res.Status != Failed || !strings.Contains(res.Error, c.want) || strings.ContainsAny(res.Error, "\r\n") {
				t.Fatalf("status %s, error %q", res.Status, res.Error)
			}
			counts := map[Status]int{}
			for _, p := range res.Partitions {
				counts[p.Status]++
			}
			resume := strings.Contains(res.Error, "--resume")
			if c.failFast {
				if counts[Failed] != 1 || counts[NotRun] != days-1 || resume || !strings.Contains(res.Error, fmt.Sprintf("%d of %d partitions not run", days-1, days)) {
					t.Errorf("partitions %v, error %q: want the first failed, the others not run, no --resume", counts, res.Error)
				}
				if n := f.srv.TokenRequests(); n > 1 {
					t.Errorf("%d token requests, want 1", n)
				}
			} else if counts[Failed] != days || !resume {
				t.Errorf("partitions %v, error %q: want each failed, and --resume suggested", counts, res.Error)
			}
		})
	}
}
