package mapping

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestParseType(t *testing.T) {
	tests := []struct {
		in   string
		want Type
	}{
		{"string", Type{Kind: String}},
		{"int64", Type{Kind: Int64}},
		{"float64", Type{Kind: Float64}},
		{"bool", Type{Kind: Bool}},
		{"date", Type{Kind: Date}},
		{"timestamp", Type{Kind: Timestamp}},
		{"decimal(19,4)", Type{Kind: Decimal, Precision: 19, Scale: 4}},
		{"decimal(1,0)", Type{Kind: Decimal, Precision: 1, Scale: 0}},
		{"decimal(1,1)", Type{Kind: Decimal, Precision: 1, Scale: 1}},
		{"decimal(38,0)", Type{Kind: Decimal, Precision: 38, Scale: 0}},
		{"decimal(38,38)", Type{Kind: Decimal, Precision: 38, Scale: 38}},
		{"decimal(38,10)", Type{Kind: Decimal, Precision: 38, Scale: 10}},
		// Case and spaces are forgiven.
		{"STRING", Type{Kind: String}},
		{"  Int64\t", Type{Kind: Int64}},
		{"Float64", Type{Kind: Float64}},
		{"BOOL ", Type{Kind: Bool}},
		{"Date", Type{Kind: Date}},
		{"TimeStamp", Type{Kind: Timestamp}},
		{"DECIMAL(19,4)", Type{Kind: Decimal, Precision: 19, Scale: 4}},
		{" decimal( 19 , 4 ) ", Type{Kind: Decimal, Precision: 19, Scale: 4}},
		{"Decimal (10, 2)", Type{Kind: Decimal, Precision: 10, Scale: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseType(tt.in)
			if err != nil {
				t.Fatalf("ParseType(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseType(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			// String round-trips through ParseType.
			back, err := ParseType(got.String())
			if err != nil || back != got {
				t.Fatalf("ParseType(%q.String() = %q) = %+v, %v", tt.in, got.String(), back, err)
			}
		})
	}
}

func TestParseTypeErrors(t *testing.T) {
	const unknown = `: use string, int64, float64, bool, date, timestamp, decimal(P,S)`
	const bad = `: write decimal(P,S), for example decimal(19,4)`
	tests := []struct {
		in      string
		wantErr string // the whole message
	}{
		{"", `unknown type ""` + unknown},
		{"int", `unknown type "int"` + unknown},
		{"integer", `unknown type "integer"` + unknown},
		{"varchar", `unknown type "varchar"` + unknown},
		{"int 64", `unknown type "int 64"` + unknown},
		{"Numeric(19,4)", `unknown type "Numeric(19,4)"` + unknown},
		{"decimal", `bad decimal type "decimal"` + bad},
		{"decimal()", `bad decimal type "decimal()"` + bad},
		{"decimal(19)", `bad decimal type "decimal(19)"` + bad},
		{"decimal(19,4", `bad decimal type "decimal(19,4"` + bad},
		{"decimal19,4)", `bad decimal type "decimal19,4)"` + bad},
		{"decimal(a,b)", `bad decimal type "decimal(a,b)"` + bad},
		{"decimal(19,4,2)", `bad decimal type "decimal(19,4,2)"` + bad},
		{"decimal(19.5,4)", `bad decimal type "decimal(19.5,4)"` + bad},
		{"Decimal(1 9,4)", `bad decimal type "Decimal(1 9,4)"` + bad},
		{"decimal(0,0)", `decimal precision 0 is out of range: use 1 to 38`},
		{"decimal(39,0)", `decimal precision 39 is out of range: use 1 to 38`},
		{"decimal(-1,0)", `decimal precision -1 is out of range: use 1 to 38`},
		{"decimal(10,11)", `decimal scale 11 is out of range: use 0 to the precision (10)`},
		{"decimal(10,-1)", `decimal scale -1 is out of range: use 0 to the precision (10)`},
		{"decimal(38,39)", `decimal scale 39 is out of range: use 0 to the precision (38)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseType(tt.in)
			if err == nil {
				t.Fatalf("ParseType(%q) = %+v, want an error", tt.in, got)
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("ParseType(%q) error:\n got %s\nwant %s", tt.in, err, tt.wantErr)
			}
			if got != (Type{}) {
				t.Fatalf("ParseType(%q) returned %+v with its error, want the zero Type", tt.in, got)
			}
		})
	}
}

func TestTypeString(t *testing.T) {
	tests := []struct {
		t    Type
		want string
	}{
		{Type{Kind: String}, "string"},
		{Type{Kind: Int64}, "int64"},
		{Type{Kind: Float64}, "float64"},
		{Type{Kind: Decimal, Precision: 19, Scale: 4}, "decimal(19,4)"},
		{Type{Kind: Bool}, "bool"},
		{Type{Kind: Date}, "date"},
		{Type{Kind: Timestamp}, "timestamp"},
		{Type{}, "invalid"},
		{Type{Kind: 99}, "invalid"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestArrowType(t *testing.T) {
	tests := []struct {
		t    Type
		want arrow.DataType
	}{
		{Type{Kind: String}, arrow.BinaryTypes.String},
		{Type{Kind: Int64}, arrow.PrimitiveTypes.Int64},
		{Type{Kind: Float64}, arrow.PrimitiveTypes.Float64},
		{Type{Kind: Decimal, Precision: 19, Scale: 4}, &arrow.Decimal128Type{Precision: 19, Scale: 4}},
		{Type{Kind: Bool}, arrow.FixedWidthTypes.Boolean},
		{Type{Kind: Date}, arrow.FixedWidthTypes.Date32},
		{Type{Kind: Timestamp}, &arrow.TimestampType{Unit: arrow.Microsecond}},
	}
	for _, tt := range tests {
		got := tt.t.ArrowType()
		if !arrow.TypeEqual(got, tt.want) {
			t.Errorf("%s.ArrowType() = %s, want %s", tt.t, got, tt.want)
		}
	}
	// Timestamps are wall-clock time: no zone.
	if ts := (Type{Kind: Timestamp}).ArrowType().(*arrow.TimestampType); ts.TimeZone != "" {
		t.Errorf("timestamp has time zone %q, want none", ts.TimeZone)
	}
}

func TestArrowTypeInvalidPanics(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "invalid type") {
			t.Fatalf("ArrowType of the zero Type: recovered %v, want a panic naming the invalid type", r)
		}
	}()
	Type{}.ArrowType()
}

func TestSchema(t *testing.T) {
	cols := []Column{
		{From: "Sales[OrderID]", To: "order_id", Type: Type{Kind: Int64}},
		{From: "[Total]", To: "total", Type: Type{Kind: Decimal, Precision: 19, Scale: 4}},
		{From: "Sales[Date]", To: "date", Type: Type{Kind: Date}},
	}
	got := Schema(cols)
	want := arrow.NewSchema([]arrow.Field{
		{Name: "order_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "total", Type: &arrow.Decimal128Type{Precision: 19, Scale: 4}, Nullable: true},
		{Name: "date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	}, nil)
	if !got.Equal(want) {
		t.Fatalf("Schema:\n got %s\nwant %s", got, want)
	}
	if n := Schema(nil).NumFields(); n != 0 {
		t.Fatalf("Schema(nil) has %d fields", n)
	}
}
