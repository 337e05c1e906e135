package jobfile

import (
	"testing"

	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

func TestEscapeTemplate(t *testing.T) {
	for _, s := range []string{"EVALUATE Sales", `EVALUATE FILTER(T, T[x] = "{{ .a }}")`, "{{{", "a}}b", "{{"} {
		tm, err := parseTemplate("q", EscapeTemplate(s))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		got, err := render(tm, nil)
		if err != nil || got != s {
			t.Errorf("%q renders as %q, %v", s, got, err)
		}
	}
}

func TestTemplateParamsAndRender(t *testing.T) {
	job := &Job{
		Name:   "j",
		Params: map[string]ParamSpec{"day": {Type: ParamDate}, "region": {Type: ParamString, Default: "North"}},
		Source: source.Spec{PowerBI: &source.PowerBISpec{Query: `EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }} && Sales[Region] = {{ dax .region }})`}},
		Sinks:  []sink.Spec{{CSV: &sink.CSVOptions{Path: "out/{{ .region }}/{{ .day }}.csv"}}, {Postgres: &sink.PostgresOptions{Table: "t"}}},
	}
	used, missing := job.TemplateParams(nil)
	if len(used) != 2 || used[0] != "day" || used[1] != "region" || len(missing) != 1 || missing[0] != "day" {
		t.Errorf("used %v, missing %v", used, missing)
	}
	if _, err := job.Render(nil, false); err == nil {
		t.Error("rendered without a value for day")
	}
	out, err := job.Render(nil, true)
	if err != nil || out.Query != `EVALUATE FILTER(Sales, Sales[OrderDate] = DATE(2000, 1, 1) && Sales[Region] = "North")` {
		t.Errorf("placeholders: %+v %v", out, err)
	}
	out, err = job.Render(map[string]string{"day": "2024-03-01", "region": "South"}, false)
	if err != nil || out.Query != `EVALUATE FILTER(Sales, Sales[OrderDate] = DATE(2024, 3, 1) && Sales[Region] = "South")` || len(out.Paths) != 2 || out.Paths[1] != "" {
		t.Fatalf("%+v %v", out, err)
	}
	if want := "/out/South/2024-03-01.csv"; len(out.Paths[0]) < len(want) || out.Paths[0][len(out.Paths[0])-len(want):] != want || out.Paths[0][0] != '/' {
		t.Errorf("path %q", out.Paths[0])
	}
}
