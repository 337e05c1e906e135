package source

import (
	"testing"
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
