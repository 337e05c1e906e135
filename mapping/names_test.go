package mapping

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitKey(t *testing.T) {
	tests := []struct {
		key, table, column string
	}{
		{"Sales[Order ID]", "Sales", "Order ID"},
		{"Sales[OrderID]", "Sales", "OrderID"},
		{"[Total]", "", "Total"},
		{"[Total Sales (EUR)]", "", "Total Sales (EUR)"},
		{"'Sales Table'[Order ID]", "Sales Table", "Order ID"},
		{"'O''Brien'[Name]", "O'Brien", "Name"},
		{"Sales Table[Order ID]", "Sales Table", "Order ID"},
		{"Sales[Amount [EUR]]", "Sales", "Amount [EUR]"},
		{"Total", "", "Total"},
		{"Sales[", "", "Sales["},
		{"]", "", "]"},
		{"[]", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		table, column := SplitKey(tt.key)
		if table != tt.table || column != tt.column {
			t.Errorf("SplitKey(%q) = (%q, %q), want (%q, %q)", tt.key, table, column, tt.table, tt.column)
		}
	}
}

func TestSnakeCase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Order ID", "order_id"},
		{"OrderID", "order_id"},
		{"OrderDate", "order_date"},
		{"orderDate", "order_date"},
		{"Total Sales (EUR)", "total_sales_eur"},
		{"IDNumber", "id_number"},
		{"HTTPServer", "http_server"},
		{"Q1Sales", "q1_sales"},
		{"MP3Player", "mp3_player"},
		{"COVID19Cases", "covid19_cases"},
		{"Top10Products", "top10_products"},
		{"Sales2024", "sales2024"},
		{"2024 Sales", "c_2024_sales"},
		{"2024Q1", "c_2024_q1"},
		{"1", "c_1"},
		{"Straße", "straße"},
		{"Größe", "größe"},
		{"ÄÖÜ", "äöü"},
		{"Café Noir", "café_noir"},
		{"Cafe\u0301 Noir", "cafe\u0301_noir"}, // a combining accent is part of the word
		{"名前", "名前"},
		{"", "column"},
		{"   ", "column"},
		{"%", "column"},
		{"__x__", "x"},
		{"_Order", "order"},
		{"order_id", "order_id"},
		{"Order_ID", "order_id"},
		{"sales__total", "sales_total"},
		{"Total Sales  -  YTD", "total_sales_ytd"},
		{"% Margin", "margin"},
		{"Profit %", "profit"},
		{"Sales Amount.2", "sales_amount_2"},
		{"ABC", "abc"},
		{"A", "a"},
		{"x1", "x1"},
		{"Q1 2024", "q1_2024"},
	}
	for _, tt := range tests {
		if got := SnakeCase(tt.in); got != tt.want {
			t.Errorf("SnakeCase(%q) = %q, want %q", tt.in, got, tt.want)
		}
		// Idempotent: a name already in snake_case stays as it is.
		if got := SnakeCase(tt.want); got != tt.want {
			t.Errorf("SnakeCase(%q) = %q, want it unchanged", tt.want, got)
		}
	}
}

func TestTargetNames(t *testing.T) {
	note := func(key, name string) string {
		return "key " + key + " is named " + name + ": its column name collides with another key's"
	}
	tests := []struct {
		name      string
		keys      []string
		want      []string
		wantNotes []string
	}{
		{"empty", nil, []string{}, nil},
		{
			"no collision",
			[]string{"Sales[Order ID]", "Sales[OrderDate]", "[Total Sales (EUR)]"},
			[]string{"order_id", "order_date", "total_sales_eur"}, nil,
		},
		{
			"tables qualify",
			[]string{"Sales[Date]", "Calendar[Date]", "Sales[Amount]"},
			[]string{"sales_date", "calendar_date", "amount"},
			[]string{note("Sales[Date]", "sales_date"), note("Calendar[Date]", "calendar_date")},
		},
		{
			"quoted table",
			[]string{"'Sales Table'[Date]", "Calendar[Date]"},
			[]string{"sales_table_date", "calendar_date"},
			[]string{note("'Sales Table'[Date]", "sales_table_date"), note("Calendar[Date]", "calendar_date")},
		},
		{
			"measure keeps its name",
			[]string{"Sales[Date]", "[Date]"},
			[]string{"sales_date", "date"},
			[]string{note("Sales[Date]", "sales_date")},
		},
		{
			"measures get suffixes",
			[]string{"[Date]", "[date]", "[DATE]"},
			[]string{"date", "date_2", "date_3"},
			[]string{note("[date]", "date_2"), note("[DATE]", "date_3")},
		},
		{
			"same table, names differing in case",
			[]string{"Sales[Date]", "Sales[date]"},
			[]string{"sales_date", "sales_date_2"},
			[]string{note("Sales[Date]", "sales_date"), note("Sales[date]", "sales_date_2")},
		},
		{
			"suffix skips a taken name",
			[]string{"[x]", "[x_2]", "[X]"},
			[]string{"x", "x_2", "x_3"},
			[]string{note("[X]", "x_3")},
		},
		{
			"qualified name meets a natural one",
			[]string{"Sales[Date]", "Calendar[Date]", "[Sales Date]"},
			[]string{"sales_date", "calendar_date", "sales_date_2"},
			[]string{note("Sales[Date]", "sales_date"), note("Calendar[Date]", "calendar_date"), note("[Sales Date]", "sales_date_2")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, notes := TargetNames(tt.keys)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("TargetNames(%q) = %q, want %q", tt.keys, got, tt.want)
			}
			if !slices.Equal(notes, tt.wantNotes) {
				t.Fatalf("notes:\n got %q\nwant %q", notes, tt.wantNotes)
			}
			// Unique, and the same on every call.
			seen := map[string]bool{}
			for _, n := range got {
				if seen[n] {
					t.Fatalf("name %s given twice", n)
				}
				seen[n] = true
			}
			again, againNotes := TargetNames(tt.keys)
			if !slices.Equal(again, got) || !slices.Equal(againNotes, notes) {
				t.Fatal("TargetNames is not deterministic")
			}
		})
	}
}

// TestTargetNamesMany checks uniqueness on a larger, adversarial set.
func TestTargetNamesMany(t *testing.T) {
	var keys []string
	for _, table := range []string{"Sales", "sales", "Calendar", "'Sales'", ""} {
		for _, col := range []string{"Date", "date", "Sales Date", "Date 2", "Date_2", "2"} {
			keys = append(keys, table+"["+col+"]")
		}
	}
	names, _ := TargetNames(keys)
	seen := map[string]string{}
	for i, n := range names {
		if prev, ok := seen[n]; ok {
			t.Fatalf("keys %s and %s are both named %s", prev, keys[i], n)
		}
		seen[n] = keys[i]
		if n != SnakeCase(n) && !strings.HasPrefix(n, "c_") {
			t.Errorf("name %s is not in snake_case", n)
		}
	}
}
