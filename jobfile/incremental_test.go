package jobfile

import (
	"strings"
	"testing"
	"time"
)

// incrementalJob is a valid incremental job; the cases of
// TestIncrementalValidation change one thing in it.
const incrementalJob = `name: sales-incr
source:
  powerbi:
    workspace: ws
    dataset: ds
    query: "EVALUATE FILTER(Sales, Sales[ModifiedOn] > {{ dax .since }})"
    auth: { tenant: t, clientId: c, clientSecret: "${PBI_CLIENT_SECRET}" }
mapping:
  columns:
    - { from: "Sales[OrderID]", to: order_id, type: int64 }
    - { from: "Sales[ModifiedOn]", to: modified_on, type: timestamp }
params:
  since: { type: datetime }
incremental:
  param: since
  column: modified_on
  initial: 2024-01-01T00:00:00Z
  lookback: 2h
state: { path: state/sales.json }
sinks:
  - postgres: { dsn: "host=db", table: analytics.sales, mode: merge, key: [order_id] }
  - parquet: { path: "out/run={{ .runId }}/sales.parquet" }
`

func TestIncrementalValidation(t *testing.T) {
	if _, warnings, err := (Loader{LookupEnv: testEnv}).Load("job.yaml", []byte(incrementalJob)); err != nil || len(warnings) > 0 {
		t.Fatalf("the base job: %v %v", err, warnings)
	}
	for _, c := range []struct {
		name, old, new string
		want           string // the message, with its path; "" for valid
		warning        bool
		more           []string // another old and new
	}{
		{"with partition", "state:", "partition: { param: since, step: 1d }\nstate:",
			"incremental: incremental and partition are distinct modes and a job has one or the other", false, nil},
		{"undeclared param", "param: since", "param: until",
			`incremental.param: "until" is not declared in params: declare it with type date, datetime or int`, false, nil},
		{"string param", "since: { type: datetime }", "since: { type: string }",
			"incremental.param: since is a string parameter: a watermark is a date, datetime or int", false, nil},
		{"missing column", "  column: modified_on\n", "",
			"incremental.column: required: an output column (a mapping to name) whose maximum becomes the next watermark", false, nil},
		{"bad initial", "initial: 2024-01-01T00:00:00Z", "initial: 2024-13-01",
			`incremental.initial: "2024-13-01" is not a date-time: write 2024-03-01T13:45:30Z`, false, nil},
		{"fraction in initial", "initial: 2024-01-01T00:00:00Z", "initial: 2024-01-01T00:00:00.5Z",
			"incremental.initial: \"2024-01-01T00:00:00.5Z\" has a fraction of a second, which DAX's DATETIME cannot write", false, nil},
		{"datetime lookback", "lookback: 2h", "lookback: 2x",
			`incremental.lookback: "2x": for a datetime parameter write Nd, Nh, Nm or Ns`, false, nil},
		{"date lookback", "since: { type: datetime }", "since: { type: date }",
			`incremental.lookback: "2h": for a date parameter write Nd (days), e.g. 2d`, false, nil},
		{"int lookback", "since: { type: datetime }", "since: { type: int }",
			`incremental.lookback: "2h": for an int parameter write a non-negative integer`, false, nil},
		{"column not mapped", "column: modified_on", "column: changed",
			`incremental.column: "changed" is not an output column (the to of a mapped column): use one of order_id, modified_on`, false, nil},
		{"column of another type", "column: modified_on", "column: order_id",
			"incremental.column: order_id is a int64 column, and the watermark is a datetime (since): map it as timestamp or date", false, nil},
		{"query without the watermark", "> {{ dax .since }}", "> DATE(2024, 1, 1)",
			"source.powerbi.query: the watermark filters nothing: the incremental parameter since is not used here", false, nil},
		{"append with lookback", "mode: merge, key: [order_id]", "mode: append",
			"sinks[0].postgres.mode: append with incremental.lookback would load the rows of the lookback again at every run: use mode merge (with key)", false, nil},
		{"replace", "mode: merge, key: [order_id]", "mode: replace",
			"sinks[0].postgres.mode: replace would leave only each run's new rows in the table: use merge (with key)", false, nil},
		{"append without lookback", "  lookback: 2h\n", "",
			"", false, []string{"mode: merge, key: [order_id]", "mode: append"}},
		{"file without runId", "run={{ .runId }}/", "",
			"sinks[1].parquet.path: every run replaces this file with that run's new rows only: put {{ .runId }} in the path", true, nil},
		{"file source", "  powerbi:\n    workspace: ws\n    dataset: ds\n    query: \"EVALUATE FILTER(Sales, Sales[ModifiedOn] > {{ dax .since }})\"\n    auth: { tenant: t, clientId: c, clientSecret: \"${PBI_CLIENT_SECRET}\" }\n", "  file: saved.json\n",
			"incremental: an incremental job reads a powerbi source whose query filters on the watermark; a file source replays the same rows at every run", false, nil},
		{"no state place", "state: { path: state/sales.json }\n", "",
			"", false, nil},
		{"runId declared", "  since: { type: datetime }\n", "  since: { type: datetime }\n  runId: { type: string }\n",
			"params.runId: runId is set by every run ({{ .runId }}, the UTC time it started): give the parameter another name", false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(incrementalJob, c.old) {
				t.Fatalf("%q is not in the job", c.old)
			}
			text := strings.Replace(incrementalJob, c.old, c.new, 1)
			if c.more != nil {
				text = strings.Replace(text, c.more[0], c.more[1], 1)
			}
			_, warnings, err := Loader{LookupEnv: testEnv}.Load("job.yaml", []byte(text))
			var got []string
			if err != nil {
				got = append(got, err.Error())
			}
			for _, w := range warnings {
				got = append(got, w.String())
			}
			all := strings.Join(got, "\n")
			switch {
			case c.want == "" && c.name == "append without lookback":
				if err != nil || !strings.Contains(all, "sinks[0].postgres.mode: append loads a window a second time when a run fails after its commit but before the watermark is saved: prefer merge") {
					t.Errorf("want a warning of append, got %v", all)
				}
			case c.want == "":
				if err != nil {
					t.Errorf("want valid, got %v", all)
				}
			case !strings.Contains(all, c.want):
				t.Errorf("want %q in\n%s", c.want, all)
			case c.warning && err != nil:
				t.Errorf("want a warning only, got an error:\n%s", all)
			case !c.warning && err == nil:
				t.Errorf("want an error, got warnings only:\n%s", all)
			}
		})
	}
}

// TestIncrementalNeedsAStatePlace refuses an incremental job whose state
// file has no place: no state.path and no file sink beside which to keep it.
func TestIncrementalNeedsAStatePlace(t *testing.T) {
	text := strings.Replace(incrementalJob, "state: { path: state/sales.json }\n", "", 1)
	text = strings.Replace(text, `  - parquet: { path: "out/run={{ .runId }}/sales.parquet" }`+"\n", "", 1)
	_, _, err := Loader{LookupEnv: testEnv}.Load("job.yaml", []byte(text))
	if err == nil || !strings.Contains(err.Error(), "incremental: the watermark is kept in a state file, and without a file sink it has no default place: set state.path") {
		t.Errorf("got %v", err)
	}
}

func TestDateTimeParam(t *testing.T) {
	now := time.Date(2024, 3, 15, 10, 20, 30, 500, time.UTC)
	for in, want := range map[string]string{
		"2024-03-01T13:45:30Z":      "2024-03-01T13:45:30Z",
		"2024-03-01T13:45:30+02:00": "2024-03-01T11:45:30Z",
		"2024-03-01T13:45:30":       "2024-03-01T13:45:30Z",
		"2024-03-01 13:45:30":       "2024-03-01T13:45:30Z",
		"2024-03-01 13:45":          "2024-03-01T13:45:00Z",
		"2024-03-01":                "2024-03-01T00:00:00Z",
		"now":                       "2024-03-15T10:20:30Z",
		"now-2h":                    "2024-03-15T08:20:30Z",
		"now-30m":                   "2024-03-15T09:50:30Z",
		"now+90s":                   "2024-03-15T10:22:00Z",
		"now-1d":                    "2024-03-14T10:20:30Z",
		"today-1d":                  "2024-03-14T00:00:00Z",
		"yesterday":                 "2024-03-14T00:00:00Z",
	} {
		v, err := parseParam(ParamDateTime, in, now)
		if err != nil || v.(DateTime).String() != want {
			t.Errorf("%s = %v, %v; want %s", in, v, err, want)
		}
	}
	for in, want := range map[string]string{
		"2024-03-01T13:45:30.25Z": "has a fraction of a second",
		"1899-12-31T00:00:00Z":    "outside the years 1900 to 9999 that DAX's DATETIME writes",
		"now-99999999999999d":     "is too far from now",
		"now-2w":                  "is not a date-time",
		"":                        "is not a date-time",
	} {
		if _, err := parseParam(ParamDateTime, in, now); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
	for v, want := range map[any]string{
		DateTime{time.Date(2024, 3, 1, 13, 45, 30, 0, time.UTC)}: "DATETIME(2024, 3, 1, 13, 45, 30)",
		DateTime{time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}:    "DATETIME(2024, 3, 1, 0, 0, 0)",
	} {
		if got, err := DAXLiteral(v); err != nil || got != want {
			t.Errorf("dax %v = %s, %v; want %s", v, got, err, want)
		}
	}
}

func TestLookback(t *testing.T) {
	for _, c := range []struct {
		typ, in string
		v, want any
	}{
		{ParamDate, "2d", Date{time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}, Date{time.Date(2024, 2, 28, 0, 0, 0, 0, time.UTC)}},
		{ParamDate, "0d", Date{time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}, Date{time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}},
		{ParamDateTime, "90m", DateTime{time.Date(2024, 3, 1, 1, 0, 0, 0, time.UTC)}, DateTime{time.Date(2024, 2, 29, 23, 30, 0, 0, time.UTC)}},
		{ParamDateTime, "1d", DateTime{time.Date(2024, 3, 1, 1, 0, 0, 0, time.UTC)}, DateTime{time.Date(2024, 2, 29, 1, 0, 0, 0, time.UTC)}},
		{ParamInt, "100", int64(1000), int64(900)},
		{ParamInt, "", int64(1000), int64(1000)},
		{ParamInt, "10", int64(-9223372036854775800), int64(-9223372036854775807)},
	} {
		l, err := ParseLookback(c.typ, c.in)
		if err != nil {
			t.Errorf("%s %s: %v", c.typ, c.in, err)
			continue
		}
		if got := l.Before(c.v); got != c.want {
			t.Errorf("%s %s before %v = %v, want %v", c.typ, c.in, c.v, got, c.want)
		}
	}
	for _, c := range []struct{ typ, in string }{{ParamDate, "-1d"}, {ParamDate, "1mo"}, {ParamInt, "-5"}, {ParamDateTime, "1w"}, {ParamString, "1"}} {
		if _, err := ParseLookback(c.typ, c.in); err == nil {
			t.Errorf("%s %s was accepted", c.typ, c.in)
		}
	}
}

func TestRunIDAndInitial(t *testing.T) {
	job, _, err := Loader{LookupEnv: testEnv}.Load("job.yaml", []byte(incrementalJob))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 3, 15, 10, 20, 30, 0, time.UTC)
	parts, err := job.Partitions(nil, "", "", now)
	if err != nil {
		t.Fatal(err)
	}
	p := parts[0]
	if p.Params["runId"] != "20240315T102030Z" || p.Params["since"] != (DateTime{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}) {
		t.Errorf("params: %v", p.Params)
	}
	targets, err := job.Targets(p)
	if err != nil || !strings.HasSuffix(targets[1].Location(), "out/run=20240315T102030Z/sales.parquet") {
		t.Errorf("path: %v %v", targets[1].Location(), err)
	}
	if _, err := (&Job{Name: "j"}).Partitions(map[string]string{"runId": "x"}, "", "", now); err == nil || !strings.Contains(err.Error(), "set by every run") {
		t.Errorf("--param runId: %v", err)
	}
	if used, missing := job.TemplateParams(nil); strings.Join(used, ",") != "since" || len(missing) > 0 {
		t.Errorf("template params: used %v, missing %v", used, missing)
	}
	if job.Takes("runId") {
		t.Error("a job takes --param runId")
	}
}
