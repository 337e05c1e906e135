package mapping

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pbicopy/pbicopy/internal/spec"
)

// Kind is the family of a column type.
type Kind uint8

// The column kinds a job can declare.
const (
	String Kind = iota + 1
	Int64
	Float64
	Decimal
	Bool
	Date
	Timestamp
)

// Type is a column type as written in a job file: one of string, int64,
// float64, decimal(P,S), bool, date or timestamp. The zero Type is invalid.
type Type struct {
	Kind      Kind
	Precision int32 // decimal only: 1..38
	Scale     int32 // decimal only: 0..Precision
}

// TypeNames are the column types a job file may name without parameters, in
// the order the documentation gives them; decimal(P,S) is the one with
// parameters.
var TypeNames = spec.Set("columnType")

// MaxDecimalPrecision is the largest precision a decimal column may declare.
const MaxDecimalPrecision = 38

// ParseType parses a type name as written in a job file.
func ParseType(s string) (Type, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "string":
		return Type{Kind: String}, nil
	case "int64":
		return Type{Kind: Int64}, nil
	case "float64":
		return Type{Kind: Float64}, nil
	case "bool":
		return Type{Kind: Bool}, nil
	case "date":
		return Type{Kind: Date}, nil
	case "timestamp":
		return Type{Kind: Timestamp}, nil
	}
	if rest, ok := strings.CutPrefix(t, "decimal"); ok {
		rest, open := strings.CutPrefix(strings.TrimSpace(rest), "(")
		if args, ok := strings.CutSuffix(rest, ")"); open && ok {
			ps, ss, ok := strings.Cut(args, ",")
			if ok {
				p, perr := strconv.Atoi(strings.TrimSpace(ps))
				sc, serr := strconv.Atoi(strings.TrimSpace(ss))
				if perr == nil && serr == nil {
					if p < 1 || p > MaxDecimalPrecision {
						return Type{}, fmt.Errorf("decimal precision %d is out of range: use 1 to %d", p, MaxDecimalPrecision)
					}
					if sc < 0 || sc > p {
						return Type{}, fmt.Errorf("decimal scale %d is out of range: use 0 to the precision (%d)", sc, p)
					}
					return Type{Kind: Decimal, Precision: int32(p), Scale: int32(sc)}, nil
				}
			}
		}
		return Type{}, fmt.Errorf("bad decimal type %q: write decimal(P,S), for example decimal(19,4)", s)
	}
	return Type{}, fmt.Errorf("unknown type %q: use %s, decimal(P,S)", s, strings.Join(TypeNames, ", "))
}

// String returns the type as a job file writes it.
func (t Type) String() string {
	switch t.Kind {
	case String:
		return "string"
	case Int64:
		return "int64"
	case Float64:
		return "float64"
	case Decimal:
		return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	case Bool:
		return "bool"
	case Date:
		return "date"
	case Timestamp:
		return "timestamp"
	}
	return "invalid"
}

// ArrowType is the Arrow type that carries values of t between stages:
// utf8, int64, float64, decimal128(P,S), bool, date32, and timestamp[us]
// without a time zone (wall-clock time).
func (t Type) ArrowType() arrow.DataType {
	switch t.Kind {
	case String:
		return arrow.BinaryTypes.String
	case Int64:
		return arrow.PrimitiveTypes.Int64
	case Float64:
		return arrow.PrimitiveTypes.Float64
	case Decimal:
		return &arrow.Decimal128Type{Precision: t.Precision, Scale: t.Scale}
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	case Date:
		return arrow.FixedWidthTypes.Date32
	case Timestamp:
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	}
	panic("mapping: ArrowType of invalid type")
}

// Column maps one key of the result rows to one typed output column.
type Column struct {
	From string // the row key as Power BI sends it, e.g. Sales[OrderID] or [Total]
	To   string // the output column name
	Type Type
}

// Schema is the Arrow schema of batches built for cols: one nullable field
// per column, in order, named by To.
func Schema(cols []Column) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.To, Type: c.Type.ArrowType(), Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// Unmapped says what to do with a row key that no column maps.
type Unmapped uint8

const (
	// UnmappedError fails the run on the first unmapped key: a new column in
	// the model is news the data engineer must see.
	UnmappedError Unmapped = iota
	// UnmappedIgnore drops unmapped keys.
	UnmappedIgnore
)

// DefaultBatchRows is the number of rows per record batch: large enough to
// amortise per-batch costs, small enough that a few batches in flight stay
// within a few megabytes.
const DefaultBatchRows = 16384

// TypeName names an Arrow type as a job file names a column type (int64,
// decimal(19,4), timestamp, ...), or as Arrow does when no column type
// carries it.
func TypeName(t arrow.DataType) string {
	switch t.ID() {
	case arrow.STRING:
		return "string"
	case arrow.DICTIONARY:
		if IsStringArrow(t) {
			return "string"
		}
	case arrow.INT64:
		return "int64"
	case arrow.FLOAT64:
		return "float64"
	case arrow.DECIMAL128:
		d := t.(*arrow.Decimal128Type)
		return fmt.Sprintf("decimal(%d,%d)", d.Precision, d.Scale)
	case arrow.BOOL:
		return "bool"
	case arrow.DATE32:
		return "date"
	case arrow.TIMESTAMP:
		return "timestamp"
	}
	return t.String()
}
