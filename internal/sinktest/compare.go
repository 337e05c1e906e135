package sinktest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// DiffRows describes the first difference between two sets of rows in the
// normalised form, or returns "" when they are equal. Floats are compared
// bit for bit, so -0 differs from 0 and NaN equals NaN.
func DiffRows(want, got [][]any) string {
	for r := 0; r < len(want) && r < len(got); r++ {
		if len(want[r]) != len(got[r]) {
			return fmt.Sprintf("row %d: %d values, want %d", r, len(got[r]), len(want[r]))
		}
		for c := range want[r] {
			if !sameValue(want[r][c], got[r][c]) {
				return fmt.Sprintf("row %d, column %d: got %#v (%T), want %#v (%T)", r, c, got[r][c], got[r][c], want[r][c], want[r][c])
			}
		}
	}
	if len(want) != len(got) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	return ""
}

func sameValue(a, b any) bool {
	if x, ok := a.(int); ok {
		a = int64(x)
	}
	if x, ok := b.(int); ok {
		b = int64(x)
	}
	if x, ok := a.(float64); ok {
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	}
	return a == b
}

// RecordRows returns the rows of a record batch in the normalised form.
func RecordRows(rec arrow.RecordBatch) ([][]any, error) {
	rows := make([][]any, rec.NumRows())
	for r := range rows {
		rows[r] = make([]any, rec.NumCols())
		for c, col := range rec.Columns() {
			v, err := arrowValue(col, r)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", rec.ColumnName(c), err)
			}
			rows[r][c] = v
		}
	}
	return rows, nil
}

// SortRows sorts rows by their printed form, for outputs such as tables
// that keep no order.
func SortRows(rows [][]any) [][]any {
	out := slices.Clone(rows)
	slices.SortStableFunc(out, func(a, b []any) int { return strings.Compare(fmt.Sprint(a...), fmt.Sprint(b...)) })
	return out
}

// SHA256 is the hex SHA-256 of data.
func SHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
