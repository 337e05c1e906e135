package mapping

import (
	"fmt"
	"strings"
	"unicode"
)

// SplitKey splits a Power BI row key into its table and column parts:
// "Sales[Order ID]" gives ("Sales", "Order ID"), "[Total]" gives ("", "Total").
// A table name quoted as DAX writes it, such as 'Sales Table', is unquoted
// (a doubled quote inside stands for one). A key without brackets is
// returned whole as the column.
func SplitKey(key string) (table, column string) {
	if strings.HasSuffix(key, "]") {
		if i := strings.IndexByte(key, '['); i >= 0 {
			table = key[:i]
			if len(table) >= 2 && table[0] == '\'' && table[len(table)-1] == '\'' {
				table = strings.ReplaceAll(table[1:len(table)-1], "''", "'")
			}
			return table, key[i+1 : len(key)-1]
		}
	}
	return "", key
}

// SnakeCase normalises a name to lower snake_case: "Order ID" and "OrderID"
// give "order_id", "Total Sales (EUR)" gives "total_sales_eur". Letters,
// digits and combining marks are kept (lowercased), every other run of
// characters becomes one underscore, and a name that would start with a
// digit gets a "c_" prefix.
func SnakeCase(name string) string {
	rs := []rune(name)
	var b strings.Builder
	pendingSep := false
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
			pendingSep = b.Len() > 0
			continue
		}
		if unicode.IsUpper(r) && i > 0 && b.Len() > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) && !pendingSep || unicode.IsUpper(prev) && nextLower {
				pendingSep = true
			}
		}
		if pendingSep {
			b.WriteByte('_')
			pendingSep = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	s := b.String()
	if s == "" {
		return "column"
	}
	if s[0] >= '0' && s[0] <= '9' {
		s = "c_" + s
	}
	return s
}

// TargetNames derives output column names from row keys: the snake_case of
// the column part of each key. Keys whose names collide (Sales[Date] and
// Calendar[Date]) are qualified by their table (sales_date, calendar_date);
// names that still collide get a numeric suffix (_2, _3) in key order. The
// result is deterministic for a given key order; notes describe every
// collision that was resolved.
func TargetNames(keys []string) (names []string, notes []string) {
	names = make([]string, len(keys))
	count := map[string]int{}
	for i, k := range keys {
		_, col := SplitKey(k)
		names[i] = SnakeCase(col)
		count[names[i]]++
	}
	for i, k := range keys {
		if count[names[i]] > 1 {
			if table, col := SplitKey(k); table != "" {
				names[i] = SnakeCase(table + " " + col)
			}
		}
	}
	used := map[string]bool{}
	for i, k := range keys {
		base, n := names[i], 1
		for used[names[i]] {
			n++
			names[i] = fmt.Sprintf("%s_%d", base, n)
		}
		used[names[i]] = true
		if _, col := SplitKey(k); names[i] != SnakeCase(col) {
			notes = append(notes, fmt.Sprintf("key %s is named %s: its column name collides with another key's", k, names[i]))
		}
	}
	return names, notes
}
