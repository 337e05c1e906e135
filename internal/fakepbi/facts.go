package fakepbi

import (
	"fmt"
	"sync"
	"time"
)

// Facts is a table whose content a test changes between runs: its version
// shows in a column, so that a failed run over a published one shows
// whether anything new was published; a poison makes one row carry a value
// a fault needs. Facts[Id] counts from 1, Facts[Day] spreads the rows over
// Days days from 2024-01-01 (row i on day i mod Days), Facts[Label] is
// "v<version> row <id>", Facts[Qty] a small whole number.
type Facts struct {
	Rows, Days int

	mu        sync.Mutex
	version   int
	poison    Poison
	poisonRow int
}

// Poison is a value one row of Facts can carry.
type Poison string

const (
	NoPoison Poison = ""
	// NUL puts a NUL character in the row's Label: PostgreSQL refuses it.
	NUL Poison = "nul"
	// Fraction makes the row's Qty 2.5: a mapping to int64 refuses it.
	Fraction Poison = "fraction"
)

// Set changes what the table serves from the next request on.
func (f *Facts) Set(version int, poison Poison, row int) {
	f.mu.Lock()
	f.version, f.poison, f.poisonRow = version, poison, row
	f.mu.Unlock()
}

// Table is the table to serve (Options.Tables).
func (f *Facts) Table() *Table {
	day0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	days := max(f.Days, 1)
	return &Table{
		Name:     "Facts",
		SortedBy: "Id",
		Rows:     f.Rows,
		Columns:  []Column{{Name: "Id", Type: Int64}, {Name: "Day", Type: DateTime}, {Name: "Label", Type: String}, {Name: "Qty", Type: Double}},
		Value: func(i, c int) any {
			f.mu.Lock()
			version, poison, row := f.version, f.poison, f.poisonRow
			f.mu.Unlock()
			poisoned := poison != NoPoison && i == row
			switch c {
			case 0:
				return int64(i + 1)
			case 1:
				return day0.AddDate(0, 0, i%days)
			case 2:
				if poisoned && poison == NUL {
					return "bad\x00value"
				}
				return fmt.Sprintf("v%d row %d", version, i+1)
			}
			if poisoned && poison == Fraction {
				return 2.5
			}
			return float64(i % 17)
		},
	}
}

// FactsMapping is the mapping: block of a job reading Facts.
const FactsMapping = `mapping:
  columns:
    - { from: "Facts[Id]", to: id, type: int64 }
    - { from: "Facts[Day]", to: day, type: date }
    - { from: "Facts[Label]", to: label, type: string }
    - { from: "Facts[Qty]", to: qty, type: int64 }
`
