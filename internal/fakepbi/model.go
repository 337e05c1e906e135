package fakepbi

import (
	"errors"
	"fmt"
	"strings"
)

// ColumnType is the data type of a column of the fake model, as the
// Analysis Services engine behind Power BI knows it.
type ColumnType int

// The column types of the fake model.
const (
	// Int64 is a whole number; values are int64.
	Int64 ColumnType = iota + 1
	// Double is a floating-point number; values are float64 (never NaN or
	// ±Inf).
	Double
	// Currency is a fixed decimal with 4 fractional digits; values are
	// Decimal.
	Currency
	// String is text; values are string.
	String
	// Bool is true/false; values are bool.
	Bool
	// DateTime is a date and time of day without a time zone; values are
	// time.Time, of which only the wall clock is used.
	DateTime
	// Variant is what a measure returning values of several types (a
	// number, or "N/A" when there is none) gives: each value is one of the
	// values of the types above.
	Variant
)

// String returns the name of t as DAX error messages spell it.
func (t ColumnType) String() string {
	switch t {
	case Int64:
		return "Integer"
	case Double:
		return "Number"
	case Currency:
		return "Currency"
	case String:
		return "Text"
	case Bool:
		return "True/False"
	case DateTime:
		return "Date"
	case Variant:
		return "Variant"
	}
	return fmt.Sprintf("ColumnType(%d)", int(t))
}

// Decimal is the value of a Currency column: the exact decimal literal, with
// an optional minus sign and at most 4 fractional digits, such as "12.5000",
// "-3" or "0.0001". The fake writes it as a JSON number without trailing
// zeros (12.5, -3, 0.0001).
type Decimal string

// Column is a column of a Table.
type Column struct {
	Name string
	Type ColumnType
}

// Table is a table of the fake model. Rows are generated on demand, never
// stored (a 3,000,000-row table costs no memory).
type Table struct {
	// Name is the table name as DAX spells it (without quotes).
	Name string
	// Columns lists the columns in model order, which is also the key order
	// of the rows of EVALUATE Name.
	Columns []Column
	// Rows is the number of rows.
	Rows int
	// SortedBy names a column whose values are non-blank and strictly
	// increasing with the row index, under DAX comparison (a key the table
	// is generated in order of), or is empty. Generated tables should be
	// generated in key order and declare it: FILTER on that column then
	// costs a binary search instead of a scan, and TOPN and ORDER BY on it
	// (ascending or descending) stream in O(1) memory. Without it, ORDER BY
	// sorts row indices in memory (8 bytes a row: fine for small tables).
	SortedBy string
	// Value returns the value of column c in row i (both 0-based): nil for
	// a blank (null) value, else int64 (Int64), float64 (Double), Decimal
	// (Currency), string (String), bool (Bool) or time.Time (DateTime,
	// wall clock: written without zone). It must be deterministic and safe
	// for concurrent use: the server calls it from many requests at once and
	// may call it more than once for the same cell.
	Value func(i, c int) any
}

// column returns the index of the column named name (case-insensitive, as
// DAX names are), or -1.
func (t *Table) column(name string) int {
	for i, c := range t.Columns {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

// validateTables reports every problem with tables at once.
func validateTables(tables []*Table) error {
	var errs []error
	seen := map[string]bool{}
	for ti, t := range tables {
		if t == nil {
			errs = append(errs, fmt.Errorf("table %d is nil", ti))
			continue
		}
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("table %d has no name", ti))
		}
		if seen[strings.ToLower(t.Name)] {
			errs = append(errs, fmt.Errorf("table %q is defined twice", t.Name))
		}
		seen[strings.ToLower(t.Name)] = true
		if len(t.Columns) == 0 {
			errs = append(errs, fmt.Errorf("table %q has no columns", t.Name))
		}
		if t.Rows < 0 {
			errs = append(errs, fmt.Errorf("table %q has %d rows", t.Name, t.Rows))
		}
		if t.Value == nil {
			errs = append(errs, fmt.Errorf("table %q has no Value function", t.Name))
		}
		cols := map[string]bool{}
		for _, c := range t.Columns {
			if c.Name == "" {
				errs = append(errs, fmt.Errorf("table %q has a column without a name", t.Name))
			}
			if cols[strings.ToLower(c.Name)] {
				errs = append(errs, fmt.Errorf("table %q has column %q twice", t.Name, c.Name))
			}
			cols[strings.ToLower(c.Name)] = true
			if c.Type < Int64 || c.Type > Variant {
				errs = append(errs, fmt.Errorf("table %q column %q has invalid type %d", t.Name, c.Name, int(c.Type)))
			}
		}
		if t.SortedBy != "" && t.column(t.SortedBy) < 0 {
			errs = append(errs, fmt.Errorf("table %q is sorted by %q, which is not one of its columns", t.Name, t.SortedBy))
		}
	}
	return errors.Join(errs...)
}
