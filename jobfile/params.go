package jobfile

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/sink"
)

// Date is a date parameter's value. In templates it prints as 2006-01-02 and
// {{ dax .day }} gives DATE(2024, 3, 1); its time.Time methods stay usable,
// e.g. {{ .day.Format "2006/01" }}.
type Date struct{ time.Time }

func (d Date) String() string { return d.Format("2006-01-02") }

// DateTime is a datetime parameter's value, in UTC to the second. In
// templates it prints as 2006-01-02T15:04:05Z and {{ dax .since }} gives
// DATETIME(2024, 3, 1, 13, 45, 30).
type DateTime struct{ time.Time }

func (d DateTime) String() string { return d.UTC().Format(DateTimeLayout) }

// DateTimeLayout is how a datetime value prints, in templates and state
// files.
const DateTimeLayout = "2006-01-02T15:04:05Z"

// Parameter types.
const (
	ParamDate     = "date"
	ParamDateTime = "datetime"
	ParamInt      = "int"
	ParamString   = "string"
)

// RunIDParam is the template value every run sets: the UTC time the run
// started, as RunID formats it. A job cannot declare a parameter of that
// name.
const RunIDParam = "runId"

// RunID formats the start of a run as {{ .runId }} shows it: UTC,
// sortable, and safe in a path: 20240301T134530Z.
func RunID(start time.Time) string { return start.UTC().Format("20060102T150405Z") }

var paramNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var relativeDateRE = regexp.MustCompile(`^(today|yesterday)(?:([+-])(\d+)(d|mo))?$`)

// parseParam parses a parameter value of the given type. Dates are
// YYYY-MM-DD or relative to now (in UTC): today, yesterday, today-7d,
// today+1d, today-1mo.
func parseParam(typ, s string, now time.Time) (any, error) {
	switch typ {
	case ParamString, "":
		return s, nil
	case ParamInt:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n == math.MinInt64 {
			return nil, fmt.Errorf("%q is not an integer from -%d to %d", s, math.MaxInt64, math.MaxInt64)
		}
		return n, nil
	case ParamDate:
		d, err := parseDate(strings.TrimSpace(s), now)
		if err != nil {
			return nil, err
		}
		if y := d.Year(); y < minDAXYear || y > maxDAXYear {
			return nil, fmt.Errorf("%q is %s, outside the years %d to %d that DAX's DATE writes", s, d, minDAXYear, maxDAXYear)
		}
		return d, nil
	case ParamDateTime:
		d, err := parseDateTime(strings.TrimSpace(s), now)
		if err != nil {
			return nil, err
		}
		if y := d.Year(); y < minDAXYear || y > maxDAXYear {
			return nil, fmt.Errorf("%q is %s, outside the years %d to %d that DAX's DATETIME writes", s, d, minDAXYear, maxDAXYear)
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown parameter type %q: use date, datetime, int or string", typ)
}

// timeUnits are the units of relative datetimes and lookbacks.
var timeUnits = map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}

// maxDuration bounds a relative datetime or a lookback (time.Duration
// holds about 292 years).
const maxDuration = 200 * 366 * 24 * time.Hour

var lookbackTimeRE = regexp.MustCompile(`^(\d+)(s|m|h|d)$`)

var relativeTimeRE = regexp.MustCompile(`^now(?:([+-])(\d+)(s|m|h|d))?$`)

// dateTimeLayouts are the ISO 8601 forms a datetime value may take; a
// value without an offset is UTC.
var dateTimeLayouts = []string{
	time.RFC3339,
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
}

// parseDateTime parses an ISO 8601 date-time (an offset is converted to
// UTC; none means UTC), a date (midnight), a date relative to today
// (today-7d: midnight) or a time relative to now (now, now-2h, now-30m,
// now-90s, now-1d), to the second.
func parseDateTime(s string, now time.Time) (DateTime, error) {
	if m := relativeTimeRE.FindStringSubmatch(s); m != nil {
		t := now.UTC().Truncate(time.Second)
		if m[1] != "" {
			n, err := strconv.ParseInt(m[2], 10, 64)
			unit := timeUnits[m[3]]
			if err != nil || n > int64(maxDuration/unit) {
				return DateTime{}, fmt.Errorf("%q: %s is too far from now (200 years at most)", s, m[2]+m[3])
			}
			d := time.Duration(n) * unit
			if m[1] == "-" {
				d = -d
			}
			t = t.Add(d)
		}
		return DateTime{t}, nil
	}
	for _, layout := range dateTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Nanosecond() != 0 {
				return DateTime{}, fmt.Errorf("%q has a fraction of a second, which DAX's DATETIME cannot write: give whole seconds", s)
			}
			return DateTime{t.UTC()}, nil
		}
	}
	if d, err := parseDate(s, now); err == nil {
		return DateTime{d.Time}, nil
	}
	return DateTime{}, fmt.Errorf("%q is not a date-time: write 2024-03-01T13:45:30Z (ISO 8601; without an offset, UTC), 2024-03-01, now, now-2h, now-30m, today or today-7d", s)
}

// Lookback is how far before the stored watermark an incremental run
// starts reading: days for a date, a duration for a datetime, a number for
// an int.
type Lookback struct {
	Days int
	Dur  time.Duration
	N    int64
}

// ParseLookback parses an incremental block's lookback for a parameter of
// type typ: Nd for a date; Nd, Nh, Nm or Ns for a datetime; a non-negative
// integer for an int. "" is no lookback.
func ParseLookback(typ, s string) (Lookback, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Lookback{}, nil
	}
	switch typ {
	case ParamDate:
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n < 0 || !strings.HasSuffix(s, "d") || n > 10000*366 {
			return Lookback{}, fmt.Errorf("%q: for a date parameter write Nd (days), e.g. 2d", s)
		}
		return Lookback{Days: n}, nil
	case ParamDateTime:
		m := lookbackTimeRE.FindStringSubmatch(s)
		if m == nil {
			return Lookback{}, fmt.Errorf("%q: for a datetime parameter write Nd, Nh, Nm or Ns (days, hours, minutes, seconds), e.g. 2h", s)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		unit := timeUnits[m[2]]
		if err != nil || n > int64(maxDuration/unit) {
			return Lookback{}, fmt.Errorf("%q is too long (200 years at most)", s)
		}
		return Lookback{Dur: time.Duration(n) * unit}, nil
	case ParamInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return Lookback{}, fmt.Errorf("%q: for an int parameter write a non-negative integer, e.g. 1000", s)
		}
		return Lookback{N: n}, nil
	}
	return Lookback{}, fmt.Errorf("an incremental parameter is a date, datetime or int, not %s", cmpOr(typ, ParamString))
}

// Before returns v (a Date, DateTime or int64) moved back by the lookback.
func (l Lookback) Before(v any) any {
	switch x := v.(type) {
	case Date:
		return Date{x.AddDate(0, 0, -l.Days)}
	case DateTime:
		return DateTime{x.Add(-l.Dur)}
	case int64:
		if x < math.MinInt64+1+l.N {
			return int64(math.MinInt64 + 1)
		}
		return x - l.N
	}
	return v
}

// IsZero reports whether there is no lookback.
func (l Lookback) IsZero() bool { return l == Lookback{} }

// parseDate parses YYYY-MM-DD or a date relative to now.
func parseDate(s string, now time.Time) (Date, error) {
	m := relativeDateRE.FindStringSubmatch(s)
	if m == nil {
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return Date{}, fmt.Errorf("%q is not a date: write YYYY-MM-DD, or today, yesterday, today-7d, today-1mo", s)
		}
		return Date{t}, nil
	}
	y, mo, d := now.UTC().Date()
	t := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	if m[1] == "yesterday" {
		t = t.AddDate(0, 0, -1)
	}
	if m[2] != "" {
		// Ten thousand years of days at most: beyond, time.Date would
		// overflow into a date in range.
		n, err := strconv.Atoi(m[3])
		if err != nil || n > 10000*366 {
			return Date{}, fmt.Errorf("%q: %s is too far from today", s, m[3]+m[4])
		}
		if m[2] == "-" {
			n = -n
		}
		if m[4] == "d" {
			t = t.AddDate(0, 0, n)
		} else {
			t = t.AddDate(0, n, 0)
		}
	}
	return Date{t}, nil
}

// step is a partition step: days or months for dates, a number for ints.
type step struct {
	days, months int
	n            int64
}

func parseStep(typ, s string) (step, error) {
	s = strings.TrimSpace(s)
	switch typ {
	case ParamDate:
		var st step
		var num string
		switch {
		case strings.HasSuffix(s, "mo"):
			num = strings.TrimSuffix(s, "mo")
			n, err := strconv.Atoi(num)
			if err != nil || n < 1 {
				break
			}
			st.months = n
			return st, nil
		case strings.HasSuffix(s, "d"):
			num = strings.TrimSuffix(s, "d")
			n, err := strconv.Atoi(num)
			if err != nil || n < 1 {
				break
			}
			st.days = n
			return st, nil
		}
		return step{}, fmt.Errorf("step %q: for a date parameter write Nd (days) or Nmo (months), e.g. 1d or 1mo", s)
	case ParamInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return step{}, fmt.Errorf("step %q: for an int parameter write a positive integer", s)
		}
		return step{n: n}, nil
	}
	return step{}, fmt.Errorf("a partition needs a date or int parameter, not %s", cmpOr(typ, ParamString))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// nth is the i-th value from lo. Months are counted from lo, not from the
// previous value, and a day past the end of a month is that month's last
// day: 2024-01-31 steps to 2024-02-29, 2024-03-31, 2024-04-30.
func (s step) nth(lo any, i int) any {
	switch x := lo.(type) {
	case Date:
		if s.months == 0 {
			return Date{x.AddDate(0, 0, i*s.days)}
		}
		y, m, d := x.Date()
		first := time.Date(y, m+time.Month(i*s.months), 1, 0, 0, 0, 0, time.UTC)
		last := first.AddDate(0, 1, -1).Day()
		return Date{time.Date(first.Year(), first.Month(), min(d, last), 0, 0, 0, 0, time.UTC)}
	case int64:
		return x + int64(i)*s.n
	}
	return lo
}

// Partition is one unit of a run: one query (or one paged extract), one
// output per sink, one PostgreSQL transaction, one line of state.
type Partition struct {
	Index  int            // position in the full list, before sharding
	Key    string         // the partition value as text ("" for an unpartitioned job)
	Params map[string]any // template values
	Range  *sink.PartitionRange
}

// maxPartitions bounds a backfill, so that a typo in --to cannot plan a
// million queries.
const maxPartitions = 100_000

// Partitions lists the partitions of a run of j: one, or one per step of
// the partition parameter from from to to (inclusive). given are the
// --param values; now resolves relative dates.
func (j *Job) Partitions(given map[string]string, from, to string, now time.Time) ([]Partition, error) {
	base := map[string]any{}
	if len(j.Params) == 0 {
		for k, v := range given {
			base[k] = v
		}
	} else {
		for name := range given {
			if _, ok := j.Params[name]; !ok {
				return nil, fmt.Errorf("--param %s: the job declares no such parameter (it has %s)", name, strings.Join(sortedKeys(j.Params), ", "))
			}
		}
		for name, p := range j.Params {
			raw, ok := given[name]
			if !ok && j.Incremental != nil && name == j.Incremental.Param {
				// The first run's watermark: the runner replaces it with
				// the stored one.
				raw, ok = j.Incremental.Initial, true
			}
			if !ok {
				if p.Default == "" {
					continue // a missing value is reported where a template uses it
				}
				raw = p.Default
			}
			v, err := parseParam(p.Type, raw, now)
			if err != nil {
				return nil, fmt.Errorf("parameter %s: %w", name, err)
			}
			base[name] = v
		}
	}
	if _, ok := given[RunIDParam]; ok {
		return nil, fmt.Errorf("--param %s: {{ .%s }} is set by every run (the UTC time it started)", RunIDParam, RunIDParam)
	}
	base[RunIDParam] = RunID(now)
	if j.Partition == nil {
		if from != "" || to != "" {
			return nil, fmt.Errorf("--from/--to: job %s has no partition block to step through", j.Name)
		}
		return []Partition{{Params: base}}, nil
	}
	pp := j.Partition.Param
	typ := j.Params[pp].Type
	st, err := parseStep(typ, j.Partition.Step)
	if err != nil {
		return nil, err
	}
	if from == "" && to == "" {
		v, ok := base[pp]
		if !ok {
			return nil, fmt.Errorf("parameter %s has no value: pass --param %s=..., or --from and --to", pp, pp)
		}
		return []Partition{partition(0, pp, v, st.nth(v, 1), base)}, nil
	}
	if from == "" || to == "" {
		return nil, fmt.Errorf("give both --from and --to (the range of %s, inclusive)", pp)
	}
	lo, err := parseParam(typ, from, now)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	hi, err := parseParam(typ, to, now)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if _, ok := given[pp]; ok {
		return nil, fmt.Errorf("--param %s cannot be combined with --from/--to, which set it", pp)
	}
	var parts []Partition
	for i, v := 0, lo; !after(v, hi); i, v = i+1, st.nth(lo, i+1) {
		if len(parts) == maxPartitions {
			return nil, fmt.Errorf("--from %s --to %s makes more than %d partitions", from, to, maxPartitions)
		}
		parts = append(parts, partition(len(parts), pp, v, st.nth(lo, i+1), base))
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("--from %s is after --to %s", from, to)
	}
	return parts, nil
}

func partition(i int, name string, v, next any, base map[string]any) Partition {
	params := make(map[string]any, len(base)+1)
	for k, x := range base {
		params[k] = x
	}
	params[name] = v
	rng := &sink.PartitionRange{To: nil}
	switch x := v.(type) {
	case Date:
		rng.From, rng.To = x.Time, next.(Date).Time
	case int64:
		rng.From, rng.To = x, next
	}
	return Partition{Index: i, Key: fmt.Sprint(v), Params: params, Range: rng}
}

func after(a, b any) bool {
	switch x := a.(type) {
	case Date:
		return x.After(b.(Date).Time)
	case int64:
		return x > b.(int64)
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ParseParam parses a value of a parameter of type typ as --param does:
// a Date, a DateTime, an int64 or a string; now resolves relative dates.
func ParseParam(typ, s string, now time.Time) (any, error) { return parseParam(typ, s, now) }
