package fakepbi

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// DemoRows is the number of rows of DemoModel's Sales table.
const DemoRows = 1000

// DemoModel returns a small deterministic sales model for the demo and for
// tests:
//
//   - Sales (DemoRows rows, sorted by OrderID): OrderID Int64 1..DemoRows;
//     OrderDate DateTime, midnight dates across 2024 (2024-01-01 to
//     2024-12-31, 2024-02-29 included); Customer String, with quotes,
//     commas, newlines, a tab, a control character, a backslash, accents,
//     an emoji and an empty string; Region String; Quantity Int64; UnitPrice
//     and Amount Currency (Amount is Quantity x UnitPrice, negative when
//     Returned); Discount Double, blank on rows 0-2 and every fifth row;
//     Returned Bool.
//   - BigKeys (10 rows, sorted by Key): Key Int64 1..10; Value Int64 with
//     ±2^63 bounds and values beyond 2^53; Amount Currency at its bounds;
//     Ratio Double extremes (1e308, 5e-324, -0); At DateTime with fractional
//     seconds; Note String describing the row. Row 8 and 9 have blanks.
func DemoModel() []*Table {
	return []*Table{demoSales(), demoBigKeys()}
}

var demoCustomers = []string{
	"Contoso Ltd",
	"Fabrikam, Inc.",
	`The "Quoted" Company`,
	"O'Brien & Sons",
	"Line one\nLine two",
	"Café Zoë",
	"Ünïcödé GmbH",
	"Pizza 🍕 Palace",
	`Back\slash Supplies`,
	"Tab\tSeparated Co",
	"Northwind Traders",
	"Carriage\r\nReturn Ltd",
	"Adventure Works",
	"Bell\u0007 Corp",
	"",
	"  Padded  ",
	"Wide World Importers",
	"東京商事",
	"Semi;colon, \"Mixed\" 'Quotes'",
}

var demoRegions = []string{"North", "South", "East", "West", "Central"}

var demoDiscounts = []float64{0.05, 0.1, 0.125, 1.0 / 3, 0.2, 1e-7, 0.15, 0.025}

func demoSales() *Table {
	const n = DemoRows
	price := func(i int) int64 { return int64((i*7919)%2_000_000) + 1 } // 0.0001 .. 200.0000
	returned := func(i int) bool { return i%13 == 7 }
	return &Table{
		Name: "Sales",
		Columns: []Column{
			{"OrderID", Int64},
			{"OrderDate", DateTime},
			{"Customer", String},
			{"Region", String},
			{"Quantity", Int64},
			{"UnitPrice", Currency},
			{"Amount", Currency},
			{"Discount", Double},
			{"Returned", Bool},
		},
		Rows:     n,
		SortedBy: "OrderID",
		Value: func(i, c int) any {
			switch c {
			case 0:
				return int64(i + 1)
			case 1:
				return time.Date(2024, 1, 1+i*366/n, 0, 0, 0, 0, time.UTC)
			case 2:
				return demoCustomers[(i*7)%len(demoCustomers)]
			case 3:
				return demoRegions[(i/3)%len(demoRegions)]
			case 4:
				return int64(1 + (i*7)%20)
			case 5:
				return scaledDecimal(price(i))
			case 6:
				amount := int64(1+(i*7)%20) * price(i)
				if returned(i) {
					amount = -amount
				}
				return scaledDecimal(amount)
			case 7:
				if i < 3 || i%5 == 0 {
					return nil
				}
				return demoDiscounts[i%len(demoDiscounts)]
			case 8:
				return returned(i)
			}
			return nil
		},
	}
}

type bigKeyRow struct {
	value  any // int64 or nil
	amount any // Decimal or nil
	ratio  any // float64 or nil
	at     any // time.Time or nil
	note   string
}

var bigKeyRows = []bigKeyRow{
	{int64(math.MaxInt64), Decimal("922337203685477.5807"), 1e308, time.Date(9999, 12, 31, 23, 59, 59, 999_999_900, time.UTC), "max int64"},
	{int64(math.MinInt64), Decimal("-922337203685477.5808"), -1e308, time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), "min int64"},
	{int64(1<<53 + 1), Decimal("0.0001"), 5e-324, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "2^53+1"},
	{-int64(1<<53 + 1), Decimal("-0.0001"), math.Copysign(0, -1), time.Date(2024, 3, 31, 23, 59, 59, 997_000_000, time.UTC), "-(2^53+1)"},
	{int64(1 << 53), Decimal("12.5000"), 0.1, time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC), "2^53"},
	{int64(1<<62 + 1), Decimal("-3.0000"), math.MaxFloat64, time.Date(2024, 6, 15, 12, 34, 56, 789_000_000, time.UTC), "2^62+1"},
	{int64(1234567890123456789), Decimal("1234567.8900"), 123456789.0, time.Date(2024, 7, 1, 8, 0, 0, 123_456_700, time.UTC), "19 digits"},
	{int64(0), Decimal("0.0000"), nil, nil, "zero, blank ratio and time"},
	{nil, nil, 1e-7, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "blank value and amount"},
	{int64(-1), Decimal("-0.5000"), 1e21, time.Date(2024, 1, 1, 0, 0, 0, 500_000_000, time.UTC), "minus one"},
}

func demoBigKeys() *Table {
	return &Table{
		Name: "BigKeys",
		Columns: []Column{
			{"Key", Int64},
			{"Value", Int64},
			{"Amount", Currency},
			{"Ratio", Double},
			{"At", DateTime},
			{"Note", String},
		},
		Rows:     len(bigKeyRows),
		SortedBy: "Key",
		Value: func(i, c int) any {
			r := bigKeyRows[i]
			switch c {
			case 0:
				return int64(i + 1)
			case 1:
				return r.value
			case 2:
				return r.amount
			case 3:
				return r.ratio
			case 4:
				return r.at
			case 5:
				return r.note
			}
			return nil
		},
	}
}

// scaledDecimal formats v/10^4 with 4 fractional digits.
func scaledDecimal(v int64) Decimal {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
	}
	b := make([]byte, 0, 24)
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, u/10000, 10)
	f := u % 10000
	b = append(b, '.', byte('0'+f/1000), byte('0'+f/100%10), byte('0'+f/10%10), byte('0'+f%10))
	return Decimal(b)
}

// BenchMapping is the mapping: block of a job file that declares every
// column of BenchTable with its type, for benchmarks and tests.
const BenchMapping = `mapping:
  columns:
    - { from: "Sales[OrderID]", to: order_id, type: int64 }
    - { from: "Sales[OrderDate]", to: order_date, type: date }
    - { from: "Sales[ShippedAt]", to: shipped_at, type: timestamp }
    - { from: "Sales[Customer]", to: customer, type: string }
    - { from: "Sales[Product]", to: product, type: string }
    - { from: "Sales[Quantity]", to: quantity, type: int64 }
    - { from: "Sales[UnitPrice]", to: unit_price, type: "decimal(19,4)" }
    - { from: "Sales[Amount]", to: amount, type: "decimal(19,4)" }
    - { from: "Sales[Discount]", to: discount, type: float64 }
    - { from: "Sales[Returned]", to: returned, type: bool }
`

// BenchTable returns the 10-column benchmark table "Sales" with rows rows,
// sorted by OrderID: OrderID Int64 1..rows; OrderDate DateTime (midnight,
// increasing across 2024); ShippedAt DateTime with milliseconds (blank on
// every 11th row); Customer and Product String; Quantity Int64; UnitPrice
// and Amount Currency; Discount Double (blank on every 7th row); Returned
// Bool. A row is about 290 bytes of JSON. Values are deterministic and
// mostly drawn from pools built once per call, so generating them costs
// little next to encoding them.
func BenchTable(rows int) *Table {
	const (
		nCustomers = 5003
		nProducts  = 997
		nPrices    = 1009
		maxQty     = 20
	)
	colors := []string{"Blue", "Red", "Green", "Black", "White", "Silver", "Yellow"}
	kinds := []string{"Widget", "Gadget", "Sprocket", "Gizmo", "Doohickey"}
	customers := make([]any, nCustomers)
	for i := range customers {
		customers[i] = fmt.Sprintf("Customer %05d", i*7919%100000)
	}
	products := make([]any, nProducts)
	for i := range products {
		products[i] = fmt.Sprintf("%s %s %04d", colors[i%len(colors)], kinds[i%len(kinds)], i)
	}
	prices := make([]int64, nPrices)
	priceVals := make([]any, nPrices)
	amounts := make([]any, nPrices*maxQty)
	for i := range prices {
		prices[i] = int64(i*104729%9_999_999) + 100 // 0.0100 .. 1000.0098
		priceVals[i] = scaledDecimal(prices[i])
		for q := 1; q <= maxQty; q++ {
			amounts[i*maxQty+q-1] = scaledDecimal(prices[i] * int64(q))
		}
	}
	discounts := make([]any, len(demoDiscounts))
	for i, d := range demoDiscounts {
		discounts[i] = d
	}
	dates := make([]any, 366)
	for i := range dates {
		dates[i] = time.Date(2024, 1, 1+i, 0, 0, 0, 0, time.UTC)
	}
	day := func(i int) int {
		if rows <= 0 {
			return 0
		}
		return int(int64(i) * 366 / int64(rows))
	}
	return &Table{
		Name: "Sales",
		Columns: []Column{
			{"OrderID", Int64},
			{"OrderDate", DateTime},
			{"ShippedAt", DateTime},
			{"Customer", String},
			{"Product", String},
			{"Quantity", Int64},
			{"UnitPrice", Currency},
			{"Amount", Currency},
			{"Discount", Double},
			{"Returned", Bool},
		},
		Rows:     rows,
		SortedBy: "OrderID",
		Value: func(i, c int) any {
			switch c {
			case 0:
				return int64(i + 1)
			case 1:
				return dates[day(i)]
			case 2:
				if i%11 == 3 {
					return nil
				}
				ms := (int64(i) * 7919 * 1013) % (4 * 86_400_000)
				return time.Date(2024, 1, 2+day(i), 0, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
			case 3:
				return customers[i*7%nCustomers]
			case 4:
				return products[i*13%nProducts]
			case 5:
				return int64(1 + i*31%maxQty)
			case 6:
				return priceVals[i%nPrices]
			case 7:
				return amounts[i%nPrices*maxQty+i*31%maxQty]
			case 8:
				if i%7 == 0 {
					return nil
				}
				return discounts[i%len(discounts)]
			case 9:
				return i%23 == 0
			}
			return nil
		},
	}
}
