package jobfile

import (
	"strings"
	"testing"
	"time"
)

func TestPartitionsAndParams(t *testing.T) {
	job := &Job{Name: "j", Params: map[string]ParamSpec{"day": {Type: "date", Default: "yesterday"}, "n": {Type: "int", Default: "7"}},
		Partition: &PartitionSpec{Param: "day", Step: "1mo"}}
	now := time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC)
	parts, err := job.Partitions(nil, "2024-01-31", "2024-04-30", now)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range parts {
		keys = append(keys, p.Key)
	}
	if strings.Join(keys, ",") != "2024-01-31,2024-02-29,2024-03-31,2024-04-30" {
		t.Errorf("monthly partitions: %v", keys)
	}
	one, err := job.Partitions(nil, "", "", now)
	if err != nil || len(one) != 1 || one[0].Key != "2024-03-14" || one[0].Params["n"] != int64(7) {
		t.Fatalf("default partition: %+v %v", one, err)
	}
	if lit, _ := DAXLiteral(one[0].Params["day"]); lit != "DATE(2024, 3, 14)" {
		t.Errorf("dax of a date: %s", lit)
	}
	if _, err := job.Partitions(map[string]string{"nope": "1"}, "", "", now); err == nil {
		t.Error("an undeclared --param was accepted")
	}
	if _, err := job.Partitions(nil, "2024-05-01", "2024-04-01", now); err == nil {
		t.Error("--from after --to was accepted")
	}
	for in, want := range map[string]string{"today": "2024-03-15", "today-7d": "2024-03-08", "today+1d": "2024-03-16", "yesterday-1mo": "2024-02-14"} {
		v, err := parseParam(ParamDate, in, now)
		if err != nil || v.(Date).String() != want {
			t.Errorf("%s = %v, %v; want %s", in, v, err, want)
		}
	}
}

// TestParamRanges refuses values that DAX literals cannot write.
func TestParamRanges(t *testing.T) {
	now := time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct{ typ, in, err string }{
		{ParamInt, "-9223372036854775807", ""},
		{ParamInt, "9223372036854775807", ""},
		{ParamInt, "-9223372036854775808", "is not an integer from -9223372036854775807 to 9223372036854775807"},
		{ParamInt, "9223372036854775808", "is not an integer"},
		{ParamDate, "1900-01-01", ""},
		{ParamDate, "9999-12-31", ""},
		{ParamDate, "1899-12-31", `"1899-12-31" is 1899-12-31, outside the years 1900 to 9999 that DAX's DATE writes`},
		{ParamDate, "0024-03-01", "outside the years 1900 to 9999"},
		{ParamDate, "today-1500000d", "outside the years 1900 to 9999"},
		{ParamDate, "today+99999999999999999999d", "is too far from today"},
		{ParamDate, "today+9223372036854775807mo", "is too far from today"},
	} {
		_, err := parseParam(c.typ, c.in, now)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s %s: %v", c.typ, c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s %s: error %v, want %q", c.typ, c.in, err, c.err)
		}
	}
}
