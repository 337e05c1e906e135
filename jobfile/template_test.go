package jobfile

import (
	"strings"
	"testing"
	"time"
)

func TestDAXLiteral(t *testing.T) {
	for _, c := range []struct {
		v         any
		want, err string
	}{
		{`it's "x"`, `"it's ""x"""`, ""},
		{int64(5), "5", ""},
		{int64(-5), "(-5)", ""},
		{-7, "(-7)", ""},
		{int64(-9223372036854775807), "(-9223372036854775807)", ""},
		{int64(-9223372036854775807 - 1), "", "beyond DAX's whole numbers"},
		{mustDate(t, "2024-02-29"), "DATE(2024, 2, 29)", ""},
		{mustDate(t, "1900-01-01"), "DATE(1900, 1, 1)", ""},
		{mustDate(t, "1899-12-31"), "", "outside the years DAX's DATE can write (1900 to 9999)"},
		{mustDate(t, "0024-03-01"), "", "outside the years"},
		{mustDate(t, "2024-03-01").Add(13*3600e9 + 5e9), "DATETIME(2024, 3, 1, 13, 0, 5)", ""},
		{mustDate(t, "2024-03-01").Add(1), "", "a fraction of a second"},
		{nil, "BLANK()", ""},
		{1.5, "", "cannot render a float64"},
	} {
		got, err := DAXLiteral(c.v)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("DAXLiteral(%v) = %q, %v; want error %q", c.v, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("DAXLiteral(%v) = %q, %v; want %q", c.v, got, err, c.want)
		}
	}
}

func mustDate(t *testing.T, s string) Date {
	t.Helper()
	v, err := parseDate(s, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
