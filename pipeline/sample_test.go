package pipeline

import (
	"testing"

	"github.com/pbicopy/pbicopy/sink"
)

func TestSampleQuery(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"EVALUATE Sales", "EVALUATE TOPN(5, Sales)", true},
		{"evaluate 'Sales Table'", "EVALUATE TOPN(5, 'Sales Table')", true},
		{"EVALUATE Sales ORDER BY Sales[OrderID] ASC", "EVALUATE TOPN(5, Sales)", true},
		{"EVALUATE Sales\nORDER BY Sales[OrderID]\nSTART AT 10", "EVALUATE TOPN(5, Sales)", true},
		{"  -- daily extract\n  EVALUATE\n  FILTER(Sales, Sales[Region] = \"North\") // the north\n  ORDER BY Sales[OrderID]",
			"EVALUATE TOPN(5, FILTER(Sales, Sales[Region] = \"North\"))", true},
		{"EVALUATE SELECTCOLUMNS(Sales, \"order by\", Sales[OrderID], \"x\", [Order By])", "EVALUATE TOPN(5, SELECTCOLUMNS(Sales, \"order by\", Sales[OrderID], \"x\", [Order By]))", true},
		{"EVALUATE FILTER('Order By', 'Order By'[EVALUATE] > 1)", "EVALUATE TOPN(5, FILTER('Order By', 'Order By'[EVALUATE] > 1))", true},
		{"EVALUATE /* ORDER BY */ Sales", "EVALUATE TOPN(5, Sales)", true},
		{"EVALUATE TOPN(100, Sales, Sales[OrderID]) ORDER BY Sales[OrderID]", "EVALUATE TOPN(5, TOPN(100, Sales, Sales[OrderID]))", true},
		{"DEFINE\n  MEASURE Sales[Total] = SUM(Sales[Amount])\n  VAR x = 3\nEVALUATE\n  SUMMARIZECOLUMNS(Sales[Region], \"Total\", [Total])\nORDER BY Sales[Region]",
			"DEFINE\n  MEASURE Sales[Total] = SUM(Sales[Amount])\n  VAR x = 3\nEVALUATE TOPN(5, SUMMARIZECOLUMNS(Sales[Region], \"Total\", [Total]))", true},
		{"// header\nDEFINE VAR t = FILTER(Sales, [Quantity] > 2) EVALUATE t", "DEFINE VAR t = FILTER(Sales, [Quantity] > 2)\nEVALUATE TOPN(5, t)", true},
		{"EVALUATE \"it's\" -- a string, not a name\n", "EVALUATE TOPN(5, \"it's\")", true},
		// Not recognised: left as they are.
		{"EVALUATE Sales EVALUATE Calendar", "EVALUATE Sales EVALUATE Calendar", false},
		{"Sales", "Sales", false},
		{"EVALUATE", "EVALUATE", false},
		{"EVALUATE ORDER BY Sales[X]", "EVALUATE ORDER BY Sales[X]", false},
		{"MEASURE x EVALUATE Sales", "MEASURE x EVALUATE Sales", false},
		{"", "", false},
	} {
		got, ok := SampleQuery(c.in, 5)
		if got != c.want || ok != c.ok {
			t.Errorf("SampleQuery(%q)\n got %q, %v\nwant %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

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
		Source: SourceSpec{PowerBI: &PowerBISpec{Query: `EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }} && Sales[Region] = {{ dax .region }})`}},
		Sinks:  []sink.Spec{{CSV: &sink.CSVOptions{Path: "out/{{ .region }}/{{ .day }}.csv"}}, {Postgres: &sink.PostgresOptions{Table: "t"}}},
	}
	r := &Runner{}
	used, missing := r.TemplateParams(job)
	if len(used) != 2 || used[0] != "day" || used[1] != "region" || len(missing) != 1 || missing[0] != "day" {
		t.Errorf("used %v, missing %v", used, missing)
	}
	if _, err := r.Render(job, false); err == nil {
		t.Error("rendered without a value for day")
	}
	out, err := r.Render(job, true)
	if err != nil || out.Query != `EVALUATE FILTER(Sales, Sales[OrderDate] = DATE(2000, 1, 1) && Sales[Region] = "North")` {
		t.Errorf("placeholders: %+v %v", out, err)
	}
	r.Params = map[string]string{"day": "2024-03-01", "region": "South"}
	out, err = r.Render(job, false)
	if err != nil || out.Query != `EVALUATE FILTER(Sales, Sales[OrderDate] = DATE(2024, 3, 1) && Sales[Region] = "South")` || len(out.Paths) != 2 || out.Paths[1] != "" {
		t.Fatalf("%+v %v", out, err)
	}
	if want := "/out/South/2024-03-01.csv"; len(out.Paths[0]) < len(want) || out.Paths[0][len(out.Paths[0])-len(want):] != want || out.Paths[0][0] != '/' {
		t.Errorf("path %q", out.Paths[0])
	}
}
