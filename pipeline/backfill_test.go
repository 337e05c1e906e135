package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/jobfile"
)

// pagedJob is a job paging through the fake's Sales table.
func (f *fixture) pagedJob(t *testing.T, mappingYAML, pageRows string) *jobfile.Job {
	t.Helper()
	text := fmt.Sprintf(`name: paged
%s%s
sinks:
  - parquet: { path: %q }
  - csv: { path: %q }
`, fakeSource("    table: Sales\n    paging: { key: \"Sales[OrderID]\", pageRows: "+pageRows+" }\n", fakeAuth), mappingYAML, filepath.Join(f.dir, "out.parquet"), filepath.Join(f.dir, "out.csv"))
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("paged.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func TestPagedExtractIsCompleteAndOrdered(t *testing.T) {
	if testing.Short() {
		t.Skip("350,000 rows")
	}
	const rows = 350_000
	f := newFixture(t, fakepbi.Options{Tables: []*fakepbi.Table{fakepbi.BenchTable(rows)}})
	job := f.pagedJob(t, fakepbi.BenchMapping, "auto")
	r := f.runner(nil)
	r.BatchRows = 0
	connector(r).Rate = -1
	res := r.Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	if res.Rows != rows || res.Sinks[0].Rows != rows || res.Sinks[1].Rows != rows {
		t.Fatalf("rows read %d, written %d/%d; want %d", res.Rows, res.Sinks[0].Rows, res.Sinks[1].Rows, rows)
	}
	if res.Pages < 4 {
		t.Errorf("%d pages, want at least 4", res.Pages)
	}
	// 90,000-row auto pages of this ~300-byte-a-row table pass the 15 MB
	// cut, which the fake applies silently: every cut page is continued.
	if res.Truncated == 0 {
		t.Errorf("no page was cut by the 15 MB limit; the test no longer covers it")
	}
	if got := f.srv.QueryRequests(); got != res.Pages {
		t.Errorf("the fake saw %d requests, the run reports %d pages", got, res.Pages)
	}
	for _, q := range f.srv.Queries()[1:] {
		if !strings.HasPrefix(q.Query, "EVALUATE TOPN(") || !strings.Contains(q.Query, "FILTER(Sales, Sales[OrderID] > ") || !strings.HasSuffix(q.Query, "ORDER BY Sales[OrderID] ASC") {
			t.Fatalf("page query not in the documented shape: %s", q.Query)
		}
	}
	cols := mustColumns(t, job)
	want := expectedRows(t, f.opts.Tables[0], cols)
	checkOutputs(t, f, cols, want)
}

func TestPageCutAtByteLimitIsRefetchedSmaller(t *testing.T) {
	f := newFixture(t, fakepbi.Options{MaxBytes: 40_000})
	job := f.pagedJob(t, salesMapping, "400")
	r := f.runner(nil)
	connector(r).ResultBytes, connector(r).Rate = 40_000, -1
	res := r.Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	if res.Truncated == 0 {
		t.Fatal("no page was cut")
	}
	qs := f.srv.Queries()
	if !strings.HasPrefix(qs[0].Query, "EVALUATE TOPN(400, Sales,") || !strings.Contains(qs[1].Query, "TOPN(200, FILTER(") {
		t.Errorf("pages after a cut are not halved: %s / %s", qs[0].Query, qs[1].Query)
	}
	if !strings.Contains(f.logs.String(), "page cut by a service limit") {
		t.Error("the cut is not reported")
	}
	cols := mustColumns(t, job)
	checkOutputs(t, f, cols, expectedRows(t, table(t, f.opts.Tables, "Sales"), cols))
}

func TestPagingCatchesDuplicateKeys(t *testing.T) {
	dup := &fakepbi.Table{Name: "Sales", Rows: 10,
		Columns: []fakepbi.Column{{Name: "OrderID", Type: fakepbi.Int64}},
		Value: func(i, c int) any {
			if i == 6 {
				return int64(5) // the key of row 5 again
			}
			return int64(i)
		}}
	f := newFixture(t, fakepbi.Options{Tables: []*fakepbi.Table{dup}})
	job := f.pagedJob(t, `mapping: { columns: [ { from: "Sales[OrderID]", to: id, type: int64 } ] }`, "3")
	publishPrevious(t, f)
	res := f.runner(nil).Run(context.Background(), job)
	if res.Err() == nil || !strings.Contains(res.Err().Error(), "value 5 repeats") {
		t.Fatalf("err = %v, want the repeated key named", res.Err())
	}
	checkPreviousUntouched(t, f)
}

// backfillJob is a daily-partitioned job over the demo Sales table.
func (f *fixture) backfillJob(t *testing.T, extraSink string) *jobfile.Job {
	t.Helper()
	text := fmt.Sprintf(`name: backfill
params:
  day: { type: date, default: yesterday }
partition: { param: day, step: 1d }
%s%s
sinks:
  - parquet: { path: %q }
  - csv: { path: %q }
%s`, fakeSource(queryLine("EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }}) ORDER BY Sales[OrderID]"), fakeAuth), salesMapping, filepath.Join(f.dir, "day={{ .day }}", "sales.parquet"), filepath.Join(f.dir, "day={{ .day }}", "sales.csv"), extraSink)
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("backfill.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func TestBackfillConcurrentUnderOneRateLimit(t *testing.T) {
	// The service's 120 a minute, on a clock 20 times faster.
	f := newFixture(t, fakepbi.Options{RateLimit: 120, RatePer: 3 * time.Second, Latency: 20 * time.Millisecond})
	job := f.backfillJob(t, "")
	r := f.runner(nil)
	r.From, r.To, r.Concurrency = "2024-01-01", "2024-01-30", 4
	connector(r).Rate = 120 * 20
	res := r.Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	if len(res.Partitions) != 30 || res.Throttled != 0 {
		t.Errorf("%d partitions, %d throttled; want 30 and none", len(res.Partitions), res.Throttled)
	}
	var total int64
	for _, p := range res.Partitions {
		total += p.Rows
		if p.Status != Succeeded {
			t.Errorf("partition %s: %s %s", p.Key, p.Status, p.Error)
		}
	}
	if total == 0 || res.Rows != total {
		t.Errorf("rows: %d total, %d in the job", total, res.Rows)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "day=2024-01-30", "sales.parquet")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "day={{ .day }}")); err == nil {
		t.Error("an unrendered path was written")
	}
}

// outputs reads every output file under dir into a map from relative path
// to rows.
func outputs(t *testing.T, dir string) map[string][][]any {
	t.Helper()
	out := map[string][][]any{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, ".pbicopy-state") {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch filepath.Ext(p) {
		case ".parquet":
			rows, err := sinktest.ReadParquetXitongsys(p)
			if err != nil {
				return err
			}
			out[rel] = rows
		case ".csv":
			recs, err := sinktest.ReadCSV(p)
			if err != nil {
				return err
			}
			rows := make([][]any, len(recs))
			for i, r := range recs {
				for _, v := range r {
					rows[i] = append(rows[i], v)
				}
			}
			out[rel] = rows
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestShardsTogetherEqualOneRun(t *testing.T) {
	whole := newFixture(t, fakepbi.Options{})
	r := whole.runner(nil)
	r.From, r.To = "2024-02-01", "2024-02-10"
	connector(r).Rate = -1
	if res := r.Run(context.Background(), whole.backfillJob(t, "")); res.Err() != nil {
		t.Fatal(res.Err())
	}
	sharded := newFixture(t, fakepbi.Options{})
	var keys []string
	for i := range 2 {
		r := sharded.runner(nil)
		r.From, r.To, r.Shard = "2024-02-01", "2024-02-10", Shard{I: i, N: 2}
		connector(r).Rate = -1
		res := r.Run(context.Background(), sharded.backfillJob(t, ""))
		if res.Err() != nil {
			t.Fatal(res.Err())
		}
		for _, p := range res.Partitions {
			keys = append(keys, p.Key)
		}
	}
	slices.Sort(keys)
	if len(keys) != 10 || slices.Compact(keys) != nil && len(slices.Compact(keys)) != 10 {
		t.Errorf("shards ran %v", keys)
	}
	a, b := outputs(t, whole.dir), outputs(t, sharded.dir)
	if len(a) != 20 || len(a) != len(b) {
		t.Fatalf("%d files unsharded, %d sharded", len(a), len(b))
	}
	for name, rows := range a {
		if d := sinktest.DiffRows(rows, b[name]); d != "" {
			t.Errorf("%s: %s", name, d)
		}
	}
}

func TestResumeSkipsDonePartitions(t *testing.T) {
	f := newFixture(t, fakepbi.Options{})
	job := f.backfillJob(t, "")
	r := f.runner(nil)
	r.From, r.To = "2024-03-01", "2024-03-05"
	connector(r).Rate = -1
	if res := r.Run(context.Background(), job); res.Err() != nil {
		t.Fatal(res.Err())
	}
	before := f.srv.QueryRequests()
	// Lose one partition's record, as if the process died before writing it.
	statePath, _ := StatePath(job)
	data, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil || len(st.Partitions) != 5 {
		t.Fatalf("state: %v\n%s", err, data)
	}
	delete(st.Partitions, "2024-03-04")
	data, _ = json.Marshal(st)
	if err := os.WriteFile(statePath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r.To = "2024-03-07"
	r.Resume = true
	res := r.Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	var ran, skipped []string
	for _, p := range res.Partitions {
		if p.Status == Skipped {
			skipped = append(skipped, p.Key)
		} else {
			ran = append(ran, p.Key)
		}
	}
	if strings.Join(ran, ",") != "2024-03-04,2024-03-06,2024-03-07" || len(skipped) != 4 || f.srv.QueryRequests()-before != 3 {
		t.Errorf("ran %v, skipped %v, requests %d", ran, skipped, f.srv.QueryRequests()-before)
	}
}

func TestShardSelectsItsShare(t *testing.T) {
	job := &jobfile.Job{Name: "j", Params: map[string]jobfile.ParamSpec{"day": {Type: "date"}},
		Partition: &jobfile.PartitionSpec{Param: "day", Step: "1mo"}}
	parts, err := job.Partitions(nil, "2024-01-31", "2024-04-30", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseShard("1/3", noEnv)
	if err != nil || len(s.Select(parts)) != 1 || s.Select(parts)[0].Key != "2024-02-29" {
		t.Errorf("shard: %v %v", s, err)
	}
	if _, err := ParseShard("3/3", noEnv); err == nil {
		t.Error("shard 3/3 accepted")
	}
}

func noEnv(string) (string, bool) { return "", false }

// TestParseShard covers i/n and auto/n, whose index is the completion
// index Kubernetes gives each pod of an Indexed Job.
func TestParseShard(t *testing.T) {
	env := func(v string) func(string) (string, bool) {
		return func(name string) (string, bool) {
			if name != "JOB_COMPLETION_INDEX" {
				return "", false
			}
			return v, true
		}
	}
	for _, c := range []struct {
		in      string
		env     func(string) (string, bool)
		want    Shard
		wantErr string // a part of the error; "" for none
	}{
		{"0/1", noEnv, Shard{0, 1}, ""},
		{"3/4", noEnv, Shard{3, 4}, ""},
		{"auto/4", env("0"), Shard{0, 4}, ""},
		{"auto/4", env("3"), Shard{3, 4}, ""},
		{"auto/1", env("0"), Shard{0, 1}, ""},
		{"4/4", noEnv, Shard{}, `--shard "4/4": write i/n with 0 <= i < n`},
		{"-1/4", noEnv, Shard{}, "write i/n"},
		{"1/0", noEnv, Shard{}, "write i/n"},
		{"1", noEnv, Shard{}, "write i/n"},
		{"auto", noEnv, Shard{}, "or auto/n to take i from $JOB_COMPLETION_INDEX"},
		{"auto/0", env("0"), Shard{}, "write i/n"},
		{"auto/x", env("0"), Shard{}, "write i/n"},
		{"Auto/4", env("0"), Shard{}, "write i/n"},
		{"auto/4", noEnv, Shard{}, "--shard auto/4: JOB_COMPLETION_INDEX is not set: auto takes the shard index from it"},
		{"auto/4", env(""), Shard{}, "JOB_COMPLETION_INDEX is not set"},
		{"auto/4", env("one"), Shard{}, `--shard auto/4: JOB_COMPLETION_INDEX="one" is not a shard index: want an integer from 0 to 3`},
		{"auto/4", env("-1"), Shard{}, `JOB_COMPLETION_INDEX="-1" is not a shard index`},
		{"auto/4", env(" 1"), Shard{}, "is not a shard index"},
		{"auto/4", env("4"), Shard{}, "--shard auto/4: JOB_COMPLETION_INDEX=4 is not below 4: give the Indexed Job as many completions as shards (completions: 4)"},
	} {
		got, err := ParseShard(c.in, c.env)
		switch {
		case c.wantErr == "" && (err != nil || got != c.want):
			t.Errorf("%s: %v, %v; want %v", c.in, got, err, c.want)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want one with %q", c.in, err, c.wantErr)
		}
	}
}

func TestResumeDoesNotSkipOtherParameters(t *testing.T) {
	f := newFixture(t, fakepbi.Options{})
	job := f.backfillJob(t, "")
	job.Params["region"] = jobfile.ParamSpec{Type: jobfile.ParamString}
	job.Source.PowerBI.Query = "EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }} && Sales[Region] = {{ dax .region }})"
	r := f.runner(nil)
	r.From, r.To, r.Params = "2024-03-01", "2024-03-02", map[string]string{"region": "North"}
	connector(r).Rate = -1
	if res := r.Run(context.Background(), job); res.Err() != nil {
		t.Fatal(res.Err())
	}
	r.Params, r.Resume = map[string]string{"region": "South"}, true
	res := r.Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	for _, p := range res.Partitions {
		if p.Status == Skipped {
			t.Errorf("partition %s of region South was skipped as done by the North run", p.Key)
		}
	}
}

func TestPartitionsWritingOneFileAreRefused(t *testing.T) {
	f := newFixture(t, fakepbi.Options{})
	job := f.backfillJob(t, "")
	job.Sinks[0].Parquet.Path = filepath.Join(f.dir, `{{ .day.Format "2006-01" }}`, "sales.parquet")
	r := f.runner(nil)
	r.From, r.To = "2024-03-01", "2024-03-02"
	connector(r).Rate = -1
	res := r.Run(context.Background(), job)
	if res.Err() == nil || !strings.Contains(res.Err().Error(), "would both write") {
		t.Fatalf("err = %v", res.Err())
	}
	if f.srv.QueryRequests() != 0 {
		t.Error("the run queried before refusing")
	}
}
