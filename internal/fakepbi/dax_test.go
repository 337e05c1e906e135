package fakepbi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// eval runs query with WriteResponse (includeNulls true, no limits) and
// decodes the result.
func eval(t *testing.T, tables []*Table, query string) *result {
	t.Helper()
	var b bytes.Buffer
	if err := WriteResponse(&b, tables, query, true, Options{MaxRows: -1, MaxValues: -1, MaxBytes: -1}); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return decode(t, b.Bytes())
}

// evalErr runs query and returns its DAX error.
func evalErr(t *testing.T, tables []*Table, query string) *QueryError {
	t.Helper()
	var b bytes.Buffer
	err := WriteResponse(&b, tables, query, true, Options{})
	var qe *QueryError
	if !errors.As(err, &qe) {
		t.Fatalf("%s: err %v, want a *QueryError", query, err)
	}
	if !bytes.Equal(b.Bytes(), daxErrorBody(qe.Error())) {
		t.Errorf("%s: body %s is not the DAX error body", query, b.Bytes())
	}
	return qe
}

// scores is an unsorted table with ties and a blank, for TOPN and ORDER BY.
func scores() *Table {
	names := []string{"ann", "Bob", "cid", "Dee", "eve", "Fay", "gus", "Hal", "ivy", "Jon"}
	vals := []any{int64(5), int64(3), int64(9), int64(3), int64(7), int64(9), int64(1), int64(7), int64(7), nil}
	return &Table{
		Name:    "Scores",
		Columns: []Column{{"Name", String}, {"Score", Int64}},
		Rows:    len(names),
		Value: func(i, c int) any {
			if c == 0 {
				return names[i]
			}
			return vals[i]
		},
	}
}

func names(r *result) string {
	var out []string
	for _, row := range r.rows() {
		for k, v := range row {
			if strings.HasSuffix(k, "[Name]") {
				out = append(out, v.(string))
			}
		}
	}
	return strings.Join(out, ",")
}

func TestTOPNTiesAndOrder(t *testing.T) {
	tables := []*Table{scores()}
	cases := []struct{ query, want string }{
		// Ties with the n-th row are all returned; rows keep table order.
		{"EVALUATE TOPN(2, Scores, Scores[Score], DESC)", "cid,Fay"},
		{"EVALUATE TOPN(3, Scores, Scores[Score], DESC)", "cid,eve,Fay,Hal,ivy"},
		{"EVALUATE TOPN(3, Scores, Scores[Score])", "cid,eve,Fay,Hal,ivy"}, // DESC by default
		{"EVALUATE TOPN(1, Scores, Scores[Score], 0)", "cid,Fay"},
		{"EVALUATE TOPN(2, Scores, Scores[Score], ASC)", "gus,Jon"}, // blank sorts first
		{"EVALUATE TOPN(3, Scores, Scores[Score], TRUE())", "Bob,Dee,gus,Jon"},
		{"EVALUATE TOPN(3, Scores, Scores[Score], DESC, Scores[Name], ASC)", "cid,eve,Fay"},
		{"EVALUATE TOPN(0, Scores, Scores[Score])", ""},
		{"EVALUATE TOPN(100, Scores, Scores[Score])", "ann,Bob,cid,Dee,eve,Fay,gus,Hal,ivy,Jon"},
		// Without order keys: n rows, no ties.
		{"EVALUATE TOPN(3, Scores)", "ann,Bob,cid"},
		{"EVALUATE TOPN(1, FILTER(Scores, Scores[Score] < 4))", "Bob"},
		{"EVALUATE TOPN(100, Scores)", "ann,Bob,cid,Dee,eve,Fay,gus,Hal,ivy,Jon"},
		{"EVALUATE TOPN(3, Scores, Scores[Score], DESC) ORDER BY Scores[Score] DESC, Scores[Name] DESC", "Fay,cid,ivy,Hal,eve"},
		// ORDER BY: stable, blanks first, text without case.
		{"EVALUATE Scores ORDER BY Scores[Score]", "Jon,gus,Bob,Dee,ann,eve,Hal,ivy,cid,Fay"},
		{"EVALUATE Scores ORDER BY Scores[Score] DESC, [Name]", "cid,Fay,eve,Hal,ivy,ann,Bob,Dee,gus,Jon"},
		{"EVALUATE Scores ORDER BY Scores[Name] DESC", "Jon,ivy,Hal,gus,Fay,eve,Dee,cid,Bob,ann"},
		// FILTER with DAX blank semantics and text comparison.
		{"EVALUATE FILTER(Scores, Scores[Score] < 4)", "Bob,Dee,gus,Jon"},
		{"EVALUATE FILTER(Scores, Scores[Score] = 0)", "Jon"},
		{"EVALUATE FILTER(Scores, Scores[Score] == BLANK())", "Jon"},
		{"EVALUATE FILTER(Scores, Scores[Score] <> 7 && Scores[Score] >= 5)", "ann,cid,Fay"},
		{"EVALUATE FILTER(Scores, (Scores[Score] = 1 || Scores[Score] = 3) && [Name] <> \"bob\")", "Dee,gus"},
		{"EVALUATE FILTER(Scores, Scores[Name] = \"FAY\")", "Fay"},
		{"EVALUATE FILTER(Scores, \"d\" < Scores[Name])", "Dee,eve,Fay,gus,Hal,ivy,Jon"},
		{"EVALUATE FILTER(Scores, Scores[Name] >= \"h\" && Scores[Name] < \"j\")", "Hal,ivy"},
	}
	for _, c := range cases {
		if got := names(eval(t, tables, c.query)); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.query, got, c.want)
		}
	}
}

// salesRef is the demo Sales table read directly, for brute-force checks.
type salesRow struct {
	id       int64
	date     time.Time
	customer string
	region   string
	qty      int64
	price    int64 // scaled
	discount any
	returned bool
}

func salesRef() []salesRow {
	s := DemoModel()[0]
	rows := make([]salesRow, s.Rows)
	for i := range rows {
		p, _ := parseScaled(string(s.Value(i, 5).(Decimal)))
		rows[i] = salesRow{s.Value(i, 0).(int64), s.Value(i, 1).(time.Time), s.Value(i, 2).(string), s.Value(i, 3).(string),
			s.Value(i, 4).(int64), p, s.Value(i, 7), s.Value(i, 8).(bool)}
	}
	return rows
}

func ids(rows []salesRow, keep func(salesRow) bool) []int64 {
	var out []int64
	for _, r := range rows {
		if keep(r) {
			out = append(out, r.id)
		}
	}
	return out
}

func TestFilterMatchesBruteForce(t *testing.T) {
	tables := DemoModel()
	ref := salesRef()
	feb29 := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	type check struct {
		query string
		keep  func(salesRow) bool
	}
	var cases []check
	// Conditions on the key narrow the scan by binary search: compare them
	// with a plain scan at the edges.
	for _, k := range []int64{-5, 0, 1, 2, 500, 999, 1000, 1001} {
		cases = append(cases,
			check{fmt.Sprintf("EVALUATE FILTER(Sales, Sales[OrderID] > %d)", k), func(r salesRow) bool { return r.id > k }},
			check{fmt.Sprintf("EVALUATE FILTER(Sales, Sales[OrderID] >= %d)", k), func(r salesRow) bool { return r.id >= k }},
			check{fmt.Sprintf("EVALUATE FILTER(Sales, Sales[OrderID] < %d)", k), func(r salesRow) bool { return r.id < k }},
			check{fmt.Sprintf("EVALUATE FILTER(Sales, Sales[OrderID] <= %d)", k), func(r salesRow) bool { return r.id <= k }},
			check{fmt.Sprintf("EVALUATE FILTER(Sales, Sales[OrderID] = %d)", k), func(r salesRow) bool { return r.id == k }},
			check{fmt.Sprintf("EVALUATE FILTER(Sales, %d < Sales[OrderID])", k), func(r salesRow) bool { return k < r.id }},
			check{fmt.Sprintf("EVALUATE FILTER(Sales, Sales[OrderID] > %d.5 && Sales[OrderID] < %d && [Quantity] > 10)", k, k+40),
				func(r salesRow) bool { return float64(r.id) > float64(k)+0.5 && r.id < k+40 && r.qty > 10 }},
		)
	}
	cases = append(cases,
		check{"EVALUATE FILTER(Sales, Sales[OrderDate] = DATE(2024, 2, 29))", func(r salesRow) bool { return r.date.Equal(feb29) }},
		check{"EVALUATE FILTER(Sales, Sales[OrderDate] >= DATETIME(2024, 12, 30, 0, 0, 0))", func(r salesRow) bool { return !r.date.Before(time.Date(2024, 12, 30, 0, 0, 0, 0, time.UTC)) }},
		check{`EVALUATE FILTER(Sales, Sales[OrderDate] < dt"2024-01-03")`, func(r salesRow) bool { return r.date.Before(time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)) }},
		check{"EVALUATE FILTER(Sales, Sales[Returned] = TRUE())", func(r salesRow) bool { return r.returned }},
		check{"EVALUATE FILTER(Sales, Sales[Returned] = FALSE)", func(r salesRow) bool { return !r.returned }},
		check{"EVALUATE FILTER(Sales, Sales[UnitPrice] > 100.5)", func(r salesRow) bool { return r.price > 1_005_000 }},
		check{"EVALUATE FILTER(Sales, Sales[UnitPrice] <= 0.0001)", func(r salesRow) bool { return r.price <= 1 }},
		check{"EVALUATE FILTER(Sales, Sales[UnitPrice] = 12.5)", func(r salesRow) bool { return r.price == 125_000 }},
		check{"EVALUATE FILTER(Sales, Sales[Discount] < 0.01)", func(r salesRow) bool { return r.discount == nil || r.discount.(float64) < 0.01 }},
		check{"EVALUATE FILTER(Sales, Sales[Discount] == BLANK())", func(r salesRow) bool { return r.discount == nil }},
		check{"EVALUATE FILTER(Sales, Sales[Region] = \"north\")", func(r salesRow) bool { return r.region == "North" }},
		check{"EVALUATE FILTER(Sales, Sales[Customer] = \"The \"\"Quoted\"\" Company\")", func(r salesRow) bool { return r.customer == `The "Quoted" Company` }},
		check{"EVALUATE FILTER(Sales, Sales[Customer] = \"\")", func(r salesRow) bool { return r.customer == "" }},
	)
	for _, c := range cases {
		got := eval(t, tables, c.query).ints(t, "Sales[OrderID]")
		if want := ids(ref, c.keep); !slices.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", c.query, got, want)
		}
	}
}

// TestTOPNMatchesBruteForce compares TOPN on a non-key column (heap path)
// with sorting everything.
func TestTOPNMatchesBruteForce(t *testing.T) {
	tables := DemoModel()
	ref := salesRef()
	for _, n := range []int{1, 7, 50, 333, 999, 1000, 1500} {
		for _, desc := range []bool{false, true} {
			order := "ASC"
			if desc {
				order = "DESC"
			}
			sorted := slices.Clone(ref)
			slices.SortStableFunc(sorted, func(a, b salesRow) int {
				if desc {
					a, b = b, a
				}
				return int(a.qty - b.qty)
			})
			var limit int64
			if n <= len(sorted) {
				limit = sorted[n-1].qty
			}
			want := ids(ref, func(r salesRow) bool {
				return n > len(ref) || (!desc && r.qty <= limit) || (desc && r.qty >= limit)
			})
			q := fmt.Sprintf("EVALUATE TOPN(%d, Sales, Sales[Quantity], %s)", n, order)
			if got := eval(t, tables, q).ints(t, "Sales[OrderID]"); !slices.Equal(got, want) {
				t.Errorf("%s: got %d rows, want %d", q, len(got), len(want))
			}
		}
	}
}

// counting wraps a table and counts calls of Value.
func counting(tb *Table) (*Table, *atomic.Int64) {
	var n atomic.Int64
	c := *tb
	c.Value = func(i, col int) any {
		n.Add(1)
		return tb.Value(i, col)
	}
	return &c, &n
}

// TestKeysetPagingStreams checks the paging query on a 3,000,000-row table:
// the right rows, and a cost that does not depend on the table size.
func TestKeysetPagingStreams(t *testing.T) {
	big, calls := counting(BenchTable(3_000_000))
	tables := []*Table{big}
	q := "EVALUATE TOPN(500, FILTER(Sales, Sales[OrderID] > 2999000), Sales[OrderID], ASC) ORDER BY Sales[OrderID] ASC"
	got := eval(t, tables, q).ints(t, "Sales[OrderID]")
	if len(got) != 500 || got[0] != 2999001 || got[499] != 2999500 {
		t.Errorf("page: %d rows from %v", len(got), got[:min(len(got), 3)])
	}
	if n := calls.Load(); n > 500*10+200 {
		t.Errorf("%d Value calls for a 500-row page: the query does not stream", n)
	}

	calls.Store(0)
	q = "EVALUATE TOPN(3, Sales, Sales[OrderID], DESC) ORDER BY Sales[OrderID] DESC"
	if got := eval(t, tables, q).ints(t, "Sales[OrderID]"); !slices.Equal(got, []int64{3_000_000, 2_999_999, 2_999_998}) {
		t.Errorf("last rows: %v", got)
	}
	calls.Store(0)
	q = "EVALUATE FILTER(Sales, Sales[OrderID] <= 3) ORDER BY Sales[OrderID] DESC"
	if got := eval(t, tables, q).ints(t, "Sales[OrderID]"); !slices.Equal(got, []int64{3, 2, 1}) {
		t.Errorf("reverse: %v", got)
	}
	if n := calls.Load(); n > 100 {
		t.Errorf("%d Value calls for 3 rows", n)
	}
}

func TestPagingCoversTable(t *testing.T) {
	tables := DemoModel()
	var all []int64
	last := int64(0)
	for pages := 0; ; pages++ {
		if pages > DemoRows/97+1 {
			t.Fatalf("paging does not end: last key %d", last)
		}
		q := fmt.Sprintf("EVALUATE TOPN(97, FILTER('Sales', 'Sales'[OrderID] > %d), 'Sales'[OrderID], ASC) ORDER BY 'Sales'[OrderID] ASC", last)
		page := eval(t, tables, q).ints(t, "Sales[OrderID]")
		if len(page) > 97 {
			t.Fatalf("page of %d rows", len(page))
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		last = page[len(page)-1]
	}
	if len(all) != DemoRows || !slices.IsSorted(all) || all[0] != 1 || all[DemoRows-1] != DemoRows {
		t.Errorf("paging read %d rows", len(all))
	}
}

func TestQuerySyntax(t *testing.T) {
	tables := append(DemoModel(), &Table{
		Name: "Sales Data", Columns: []Column{{"Order ID", Int64}, {"Weird]Name", String}}, Rows: 3, SortedBy: "Order ID",
		Value: func(i, c int) any {
			if c == 0 {
				return int64(i)
			}
			return "x"
		},
	})
	cases := []struct {
		query string
		rows  int
		key   string
	}{
		{"// a comment\nevaluate\n  'Sales' -- another\n", DemoRows, "Sales[OrderID]"},
		{"/* block */ EVALUATE\r\n\tBigKeys", 10, "BigKeys[Key]"},
		{"EVALUATE 'Sales Data'", 3, "Sales Data[Order ID]"},
		{"EVALUATE FILTER('Sales Data', 'Sales Data'[Order ID] >= 1)", 2, "Sales Data[Order ID]"},
		{`EVALUATE SELECTCOLUMNS('Sales Data', "w", [Weird]]Name])`, 3, "[w]"},
		{"EVALUATE FILTER(Sales, Sales[OrderID] > -1e3)", DemoRows, "Sales[OrderID]"},
		{"EVALUATE TOPN(5, Sales, Sales[OrderID], 1) ORDER BY Sales[OrderID] ASC, Sales[Amount] DESC", 5, "Sales[OrderID]"},
		{"EVALUATE FILTER(Sales, Sales[OrderID] > 995) order by Sales[OrderID] desc", 5, "Sales[OrderID]"},
	}
	for _, c := range cases {
		r := eval(t, tables, c.query)
		if len(r.rows()) != c.rows {
			t.Errorf("%q: %d rows, want %d", c.query, len(r.rows()), c.rows)
			continue
		}
		if _, ok := r.rows()[0][c.key]; !ok {
			t.Errorf("%q: no key %s in %v", c.query, c.key, r.rows()[0])
		}
	}
}

func TestQueryErrors(t *testing.T) {
	tables := DemoModel()
	cases := []struct{ query, want string }{
		{"EVALUATE Salez", "Query (1, 10) Failed to resolve name 'Salez'. It is not a valid table, variable, or function name."},
		{"EVALUATE\n  'No Such'", "Query (2, 3) Failed to resolve name 'No Such'. It is not a valid table, variable, or function name."},
		{"EVALUATE SUMMARIZECOLUMNS(Sales[Region])", "Query (1, 10) Failed to resolve name 'SUMMARIZECOLUMNS'. It is not a valid table, variable, or function name."},
		{"EVALUATE FILTER(Sales, Sales[Nope] > 1)", "Query (1, 24) Column 'Nope' in table 'Sales' cannot be found or may not be used in this expression."},
		{"EVALUATE FILTER(Sales, Salez[OrderID] > 1)", "Query (1, 24) Cannot find table 'Salez'."},
		{"EVALUATE FILTER(Sales, [Nope] > 1)", "Query (1, 24) Cannot find name '[Nope]'."},
		{`EVALUATE FILTER(SELECTCOLUMNS(Sales, "ID", Sales[OrderID]), Sales[OrderID] > 1)`, "Query (1, 61) Column 'OrderID' in table 'Sales' cannot be found or may not be used in this expression."},
		{`EVALUATE FILTER(Sales, Sales[Region] > 5)`, "Query (1, 38) DAX comparison operations do not support comparing values of type Text with values of type Integer. Consider using the VALUE or FORMAT function to convert one of the values."},
		{`EVALUATE SELECTCOLUMNS(Sales, "a", [OrderID], "A", [Amount])`, `Query (1, 47) Function 'SELECTCOLUMNS' cannot add column [A] since it already exists.`},
		{"EVALUATE TOPN(5, Sales,)", "Query (1, 24) The syntax for ')' is incorrect. (EVALUATE TOPN(5, Sales,))"},
		{"EVALUATE Sales ORDER BY", "Query (1, 24) The end of the input was reached."},
		{"Sales", "Query (1, 1) The syntax for 'Sales' is incorrect. (Sales)"},
		{"EVALUATE Sales EVALUATE Sales", "Query (1, 16) The syntax for 'EVALUATE' is incorrect. (EVALUATE Sales EVALUATE Sales)"},
		{`EVALUATE FILTER(Sales, Sales[Region] = "north)`, "Query (1, 40) The string literal is not terminated."},
		{"", "Query (1, 1) The end of the input was reached."},
	}
	for _, c := range cases {
		if got := evalErr(t, tables, c.query).Error(); got != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.query, got, c.want)
		}
	}
}

// TestExactValues checks the JSON of every value type, int64 beyond 2^53
// included, decoded with json.Number.
func TestExactValues(t *testing.T) {
	r := eval(t, DemoModel(), "EVALUATE BigKeys")
	want := [][]string{
		{"9223372036854775807", "922337203685477.5807", "1e+308", "9999-12-31T23:59:59.9999999"},
		{"-9223372036854775808", "-922337203685477.5808", "-1e+308", "1900-01-01T00:00:00"},
		{"9007199254740993", "0.0001", "5e-324", "2024-02-29T00:00:00"},
		{"-9007199254740993", "-0.0001", "-0", "2024-03-31T23:59:59.997"},
		{"9007199254740992", "12.5", "0.1", "2024-12-31T00:00:00"},
		{"4611686018427387905", "-3", "1.7976931348623157e+308", "2024-06-15T12:34:56.789"},
		{"1234567890123456789", "1234567.89", "1.23456789e+08", "2024-07-01T08:00:00.1234567"},
		{"0", "0", "<nil>", "<nil>"},
		{"<nil>", "<nil>", "1e-07", "2024-01-01T00:00:00"},
		{"-1", "-0.5", "1e+21", "2024-01-01T00:00:00.5"},
	}
	for i, row := range r.rows() {
		got := []string{fmt.Sprint(row["BigKeys[Value]"]), fmt.Sprint(row["BigKeys[Amount]"]), fmt.Sprint(row["BigKeys[Ratio]"]), fmt.Sprint(row["BigKeys[At]"])}
		if !slices.Equal(got, want[i]) {
			t.Errorf("row %d: %q, want %q", i, got, want[i])
		}
	}
	if n, _ := r.rows()[0]["BigKeys[Value]"].(json.Number).Int64(); n != 1<<63-1 {
		t.Errorf("max int64 decoded as %d", n)
	}
}

func TestDemoModel(t *testing.T) {
	r := eval(t, DemoModel(), "EVALUATE Sales")
	rows := r.rows()
	if len(rows) != DemoRows {
		t.Fatalf("%d rows", len(rows))
	}
	dates := map[string]bool{}
	customers := map[string]bool{}
	blanks := 0
	for _, row := range rows {
		dates[row["Sales[OrderDate]"].(string)] = true
		customers[row["Sales[Customer]"].(string)] = true
		if row["Sales[Discount]"] == nil {
			blanks++
		}
	}
	for _, d := range []string{"2024-01-01T00:00:00", "2024-02-29T00:00:00", "2024-12-31T00:00:00"} {
		if !dates[d] {
			t.Errorf("no order on %s", d)
		}
	}
	for _, c := range demoCustomers {
		if !customers[c] {
			t.Errorf("customer %q does not round-trip", c)
		}
	}
	if rows[0]["Sales[Discount]"] != nil || blanks < 100 {
		t.Errorf("Discount: first row %v, %d blanks", rows[0]["Sales[Discount]"], blanks)
	}
	// Amount is Quantity x UnitPrice, negative when returned.
	for i, row := range rows[:50] {
		q, _ := row["Sales[Quantity]"].(json.Number).Int64()
		p, _ := parseScaled(row["Sales[UnitPrice]"].(json.Number).String())
		a, _ := parseScaled(row["Sales[Amount]"].(json.Number).String())
		if row["Sales[Returned]"] == true {
			a = -a
		}
		if a != q*p {
			t.Errorf("row %d: Amount %v != %d x %v", i, row["Sales[Amount]"], q, row["Sales[UnitPrice]"])
		}
	}
}

func TestBenchTable(t *testing.T) {
	var b bytes.Buffer
	const n = 20_000
	if err := WriteResponse(&b, []*Table{BenchTable(n)}, "EVALUATE Sales", true, Options{MaxBytes: -1}); err != nil {
		t.Fatal(err)
	}
	perRow := b.Len() / n
	if perRow < 270 || perRow > 320 {
		t.Errorf("%d bytes a row, want about 290", perRow)
	}
	r := decode(t, b.Bytes())
	if r.count() != n || len(r.rows()[1]) != 10 || r.Results[0].Tables[0].Error != nil {
		t.Errorf("%d rows, %d keys in row 1", r.count(), len(r.rows()[1]))
	}
	ids := r.ints(t, "Sales[OrderID]")
	if !slices.IsSorted(ids) || ids[0] != 1 {
		t.Errorf("OrderID not sorted from 1")
	}
	var again bytes.Buffer
	if err := WriteResponse(&again, []*Table{BenchTable(n)}, "EVALUATE Sales", true, Options{MaxBytes: -1}); err != nil || !bytes.Equal(b.Bytes(), again.Bytes()) {
		t.Errorf("BenchTable is not deterministic")
	}
}

func TestWriteResponseValueErrors(t *testing.T) {
	bad := func(typ ColumnType, v any) *Table {
		return &Table{Name: "T", Columns: []Column{{"C", typ}}, Rows: 1, Value: func(int, int) any { return v }}
	}
	cases := []*Table{
		bad(Int64, 1),
		bad(Double, float32(1)),
		bad(Double, 0.0/zero()),
		bad(Currency, Decimal("1.23456")),
		bad(Currency, "1.5"),
		bad(String, []byte("x")),
		bad(DateTime, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)),
	}
	for _, tb := range cases {
		var b bytes.Buffer
		err := WriteResponse(&b, []*Table{tb}, "EVALUATE T", true, Options{})
		var qe *QueryError
		if err == nil || errors.As(err, &qe) || !strings.Contains(err.Error(), "table T row 0 column C") {
			t.Errorf("%T %v: err %v", tb.Value(0, 0), tb.Value(0, 0), err)
		}
	}
	// FILTER reads values too.
	if err := WriteResponse(&bytes.Buffer{}, []*Table{bad(Int64, "x")}, "EVALUATE FILTER(T, T[C] > 1)", true, Options{}); err == nil {
		t.Errorf("FILTER on a bad value: no error")
	}
}

func zero() float64 { return 0 }

func TestInvalidOptions(t *testing.T) {
	if _, err := Start(Options{TruncationSlot: "middle"}); err == nil {
		t.Errorf("Start accepted truncation slot %q", "middle")
	}
	dup := []*Table{narrowTable("A", 1), narrowTable("a", 1), {Name: "B", Columns: []Column{{"X", Int64}}, SortedBy: "Y"}}
	_, err := Start(Options{Tables: dup})
	if err == nil || !strings.Contains(err.Error(), `"a" is defined twice`) || !strings.Contains(err.Error(), "no Value function") || !strings.Contains(err.Error(), `sorted by "Y"`) {
		t.Errorf("Start with bad tables: %v", err)
	}
}
