package powerbi

import (
	"errors"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/mapping"
)

// TestSamplerAgreesWithInferrer: a Sampler infers the columns an Inferrer
// decides for the same rows, and places the Inferrer's notes on the keys
// they are about.
func TestSamplerAgreesWithInferrer(t *testing.T) {
	rows := [][]kv{
		{{`"Sales[Date]"`, `"2024-02-29T00:00:00"`}, {`"Calendar[Date]"`, `"2024-02-29T10:00:00"`}, {`"[Total Sales (EUR)]"`, `12.5`}, {`"[Empty]"`, `null`}, {`"[Mixed]"`, `1`}, {`"T[Flag]"`, `true`}},
		{{`"Sales[Date]"`, `"2024-03-01T00:00:00"`}, {`"Calendar[Date]"`, `null`}, {`"[Total Sales (EUR)]"`, `7`}, {`"[Empty]"`, `null`}, {`"[Mixed]"`, `"x"`}, {`"T[Flag]"`, `false`}},
		{{`"Sales[Date]"`, `null`}, {`"Calendar[Date]"`, `"2024-03-02T00:00:00"`}, {`"[Total Sales (EUR)]"`, `9223372036854775807`}, {`"[Empty]"`, `"x"`}, {`"[Mixed]"`, `2`}, {`"T[Flag]"`, `null`}},
	}
	r := runInferrer(t, 0, 0, rows...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	s := NewSampler()
	if err := feed(s, rows...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows() != 3 || len(got) != len(r.cols) {
		t.Fatalf("rows %d, columns %v, want %v", s.Rows(), got, r.cols)
	}
	notes := 0
	for i, c := range got {
		if c.Column != r.cols[i] {
			t.Errorf("column %d: %+v, the Inferrer chose %+v", i, c.Column, r.cols[i])
		}
		for _, n := range r.notes {
			if strings.HasPrefix(n, "key "+c.From+" ") || strings.HasPrefix(n, "key "+c.From+":") {
				notes++
				if c.Note == "" && !c.Renamed {
					t.Errorf("%s: the Inferrer noted %q, the Sampler nothing", c.From, n)
				}
			}
		}
		if c.Note != "" {
			notes--
		}
		if c.Renamed {
			notes--
		}
	}
	if notes != 0 {
		t.Errorf("notes do not match: Inferrer %q, Sampler %+v", r.notes, got)
	}
	want := map[string]struct {
		to       string
		nonNull  int
		renamed  bool
		hasNote  bool
		typeName string
	}{
		"Sales[Date]":         {"sales_date", 2, true, true, "timestamp"},
		"Calendar[Date]":      {"calendar_date", 2, true, false, "timestamp"},
		"[Total Sales (EUR)]": {"total_sales_eur", 3, false, false, "float64"},
		"[Empty]":             {"empty", 1, false, false, "string"},
		"[Mixed]":             {"mixed", 3, false, true, "string"},
		"T[Flag]":             {"flag", 2, false, false, "bool"},
	}
	for _, c := range got {
		w := want[c.From]
		if c.To != w.to || c.NonNull != w.nonNull || c.Renamed != w.renamed || (c.Note != "") != w.hasNote || c.Type.String() != w.typeName {
			t.Errorf("%s: %+v, want %+v", c.From, c, w)
		}
	}
}

func TestSamplerNoRows(t *testing.T) {
	if _, err := NewSampler().Columns(); !errors.Is(err, ErrNoRowsToInfer) {
		t.Errorf("no rows: %v", err)
	}
}

// TestSamplerAllNull: where an Inferrer refuses a column null in every row,
// a Sampler returns it without a type, with a note, for infer to ask for it.
func TestSamplerAllNull(t *testing.T) {
	s := NewSampler()
	if err := feed(s, []kv{{`"[ID]"`, `1`}, {`"[Empty]"`, `null`}}, []kv{{`"[ID]"`, `2`}}); err != nil {
		t.Fatal(err)
	}
	cols, err := s.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 2 || cols[1].Type != (mapping.Type{}) || cols[1].NonNull != 0 || !strings.Contains(cols[1].Note, "null in every row") {
		t.Fatalf("columns %+v", cols)
	}
}
