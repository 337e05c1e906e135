package fakepbi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ArrowContentType is the media type of an executeDaxQueries answer.
const ArrowContentType = "application/vnd.apache.arrow.stream"

// DefaultArrowBatchRows is the most rows of one record batch of an
// executeDaxQueries answer, as the service documents it.
const DefaultArrowBatchRows = 100_000

// The schema metadata keys of the special rowsets of executeDaxQueries.
const (
	MetaIsError       = "IsError"
	MetaFaultCode     = "FaultCode"
	MetaFaultString   = "FaultString"
	MetaIsExecMetrics = "IsExecMetrics"
)

type daxRequestBody struct {
	Query                  *string `json:"query"`
	ResultsetRowcountLimit *int    `json:"resultsetRowcountLimit"`
	SchemaOnly             bool    `json:"schemaOnly"`
	QueryTimeout           int     `json:"queryTimeout"`
	ImpersonatedUserName   string  `json:"impersonatedUserName"`
}

// executeDaxQueries serves the Arrow API: the same checks as
// executeQueries, then one Arrow IPC stream (LZ4-compressed buffers) per
// EVALUATE of the query, or a single error rowset (HTTP 200) when the query
// fails. With Options.ExecMetrics an execution-metrics stream follows.
func (s *Server) executeDaxQueries(w http.ResponseWriter, r *http.Request) {
	var req daxRequestBody
	rec, bodyErr := readQueryRequest(w, r, "executeDaxQueries", &req)
	rec.ImpersonatedUserName, rec.SchemaOnly, rec.QueryTimeout = req.ImpersonatedUserName, req.SchemaOnly, req.QueryTimeout
	if req.Query != nil {
		rec.Query, rec.Queries = *req.Query, 1
	}
	if req.ResultsetRowcountLimit != nil {
		rec.RowLimit = *req.ResultsetRowcountLimit
	}
	if !s.intake(w, r, rec) || s.refuseBody(w, bodyErr) {
		return
	}
	switch {
	case strings.TrimSpace(rec.Query) == "":
		s.writeError(w, http.StatusBadRequest, badRequestBody("The Query field is required.", "request.query"))
		return
	case rec.RowLimit < 0:
		s.writeError(w, http.StatusBadRequest, badRequestBody("resultsetRowcountLimit must not be negative.", "request.resultsetRowcountLimit"))
		return
	}
	if rec.QueryTimeout > 0 {
		s.mu.Lock()
		latency := s.opts.Latency
		s.mu.Unlock()
		if latency > time.Duration(rec.QueryTimeout)*time.Second {
			// The query "ran" (Options.Latency) past queryTimeout: the
			// service cancels it and answers with an error rowset. The
			// wording is this fake's.
			qe := &QueryError{Line: 1, Column: 1, Message: fmt.Sprintf("The query was cancelled because it ran longer than its queryTimeout of %ds.", rec.QueryTimeout)}
			s.answer(w, r, ArrowContentType, func(dst io.Writer, _ func()) error { return writeErrorRowset(dst, qe) })
			return
		}
	}
	set := arrowSettings{rowLimit: rec.RowLimit, schemaOnly: rec.SchemaOnly, batchRows: s.opts.ArrowBatchRows, metrics: s.opts.ExecMetrics}
	s.answer(w, r, ArrowContentType, s.replay(bodyKey("executeDaxQueries", rec.Query, set), func(dst io.Writer, flush func()) error {
		return writeArrowBody(dst, flush, s.opts.Tables, rec.Query, set)
	}))
}

// arrowSettings shape one executeDaxQueries answer.
type arrowSettings struct {
	rowLimit   int  // resultsetRowcountLimit; 0: none
	schemaOnly bool // schemas, no rows
	batchRows  int  // 0: DefaultArrowBatchRows
	metrics    bool // an execution-metrics stream after the results
}

// WriteArrowResponse writes to w exactly the executeDaxQueries body the
// server sends for query against tables with opts' ArrowBatchRows and
// ExecMetrics (other options are ignored): an error rowset when the query
// fails. It is meant for benchmarks and fixtures that need no HTTP.
func WriteArrowResponse(w io.Writer, tables []*Table, query string, opts Options) error {
	if err := validateTables(tables); err != nil {
		return fmt.Errorf("fakepbi: %w", err)
	}
	return writeArrowBody(w, nil, tables, query, arrowSettings{batchRows: opts.ArrowBatchRows, metrics: opts.ExecMetrics})
}

func writeArrowBody(w io.Writer, flush func(), tables []*Table, query string, set arrowSettings) error {
	if flush == nil {
		flush = func() {}
	}
	rels, err := planAll(tables, query)
	if err != nil {
		var qe *QueryError
		if !errors.As(err, &qe) {
			return err
		}
		return writeErrorRowset(w, qe)
	}
	for _, rel := range rels {
		if err := writeArrowStream(w, flush, rel, set); err != nil {
			return err
		}
	}
	if set.metrics {
		return writeMetricsStream(w, len(rels))
	}
	return nil
}

// planAll plans each EVALUATE statement of query.
func planAll(tables []*Table, query string) ([]*relation, error) {
	var rels []*relation
	for _, q := range splitEvaluates(query) {
		rel, err := plan(tables, q)
		if err != nil {
			return nil, err
		}
		rels = append(rels, rel)
	}
	return rels, nil
}

// splitEvaluates splits query before each EVALUATE keyword after the first
// token; a query that does not lex is returned whole (plan reports it).
func splitEvaluates(query string) []string {
	toks, err := lex(query)
	if err != nil {
		return []string{query}
	}
	var cuts []int
	for i, t := range toks {
		if i > 0 && t.kind == tIdent && strings.EqualFold(t.text, "EVALUATE") {
			cuts = append(cuts, byteOffset(query, t.at))
		}
	}
	var out []string
	start := 0
	for _, c := range cuts {
		out = append(out, query[start:c])
		start = c
	}
	return append(out, query[start:])
}

// byteOffset is the byte offset of p in src (lines split at '\n', columns
// counted in characters, as the lexer counts them).
func byteOffset(src string, p pos) int {
	line, col := 1, 1
	for off, r := range src {
		if line == p.line && col == p.col {
			return off
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return len(src)
}

// arrowType is the Arrow type the service sends for a column type.
func arrowType(t ColumnType) arrow.DataType {
	switch t {
	case Int64:
		return arrow.PrimitiveTypes.Int64
	case Double:
		return arrow.PrimitiveTypes.Float64
	case Currency:
		return &arrow.Decimal128Type{Precision: 19, Scale: 4}
	case String:
		return &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	case DateTime:
		return arrow.FixedWidthTypes.Date64
	case Variant:
		return variantArrowType
	}
	panic("fakepbi: no Arrow type for " + t.String())
}

// variantArrowType is the dense union a Variant column comes as: a child
// per type a value can have, in the order of variantChildren (the child
// names and order are this fake's; strings are plain utf8 inside it). A
// blank is a null in the first child: a union has no validity of its own.
var variantArrowType = arrow.DenseUnionOf([]arrow.Field{
	{Name: "Integer", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "Double", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "Currency", Type: &arrow.Decimal128Type{Precision: 19, Scale: 4}, Nullable: true},
	{Name: "String", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "Boolean", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "DateTime", Type: arrow.FixedWidthTypes.Date64, Nullable: true},
}, []arrow.UnionTypeCode{0, 1, 2, 3, 4, 5})

// variantChildren are the column types of variantArrowType's children.
var variantChildren = []ColumnType{Int64, Double, Currency, String, Bool, DateTime}

// writeArrowStream writes one data rowset: rel's rows in batches of up to
// set.batchRows, LZ4-compressed, flushed after each batch.
func writeArrowStream(w io.Writer, flush func(), rel *relation, set arrowSettings) (err error) {
	defer recoverValueError(&err)
	t := rel.base
	fields := make([]arrow.Field, len(rel.cols))
	for i, c := range rel.cols {
		fields[i] = arrow.Field{Name: c.key(), Type: arrowType(t.Columns[c.base].Type), Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	mem := memory.DefaultAllocator
	wr := ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithLZ4(), ipc.WithAllocator(mem))
	defer func() {
		if cerr := wr.Close(); err == nil {
			err = cerr
		}
	}()
	if set.schemaOnly {
		return nil
	}
	batchRows := set.batchRows
	if batchRows <= 0 {
		batchRows = DefaultArrowBatchRows
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	appenders := make([]func(row int), len(rel.cols))
	for i, c := range rel.cols {
		appenders[i] = cellAppender(t, c.base, b.Field(i))
	}
	emit := func() error {
		rec := b.NewRecordBatch()
		defer rec.Release()
		for i := range rel.cols {
			if d, ok := b.Field(i).(array.DictionaryBuilder); ok {
				d.ResetFull() // each batch has a dictionary of its own
			}
		}
		if err := wr.Write(rec); err != nil {
			return err
		}
		flush()
		return nil
	}
	it := rel.src.open()
	rows, inBatch := 0, 0
	for set.rowLimit <= 0 || rows < set.rowLimit {
		row, ok := it.next()
		if !ok {
			break
		}
		for _, app := range appenders {
			app(row)
		}
		rows++
		if inBatch++; inBatch == batchRows {
			if err := emit(); err != nil {
				return err
			}
			inBatch = 0
		}
	}
	if inBatch > 0 {
		return emit()
	}
	return nil
}

// cellAppender returns the function that appends column col of a row of t
// to fb. A value of the wrong type panics with a valueError.
func cellAppender(t *Table, col int, fb array.Builder) func(row int) {
	typ := t.Columns[col].Type
	return func(row int) {
		v := t.Value(row, col)
		if typ == Variant {
			ub := fb.(*array.DenseUnionBuilder)
			if v == nil {
				ub.Append(0)
				ub.Child(0).AppendNull()
				return
			}
			vt, ok := variantType(v)
			if !ok {
				panic(badValue(t, row, col, v))
			}
			code := slices.Index(variantChildren, vt)
			ub.Append(arrow.UnionTypeCode(code))
			if !appendCell(t, row, col, vt, ub.Child(code), v) {
				panic(badValue(t, row, col, v))
			}
			return
		}
		if v == nil {
			fb.AppendNull()
			return
		}
		if !appendCell(t, row, col, typ, fb, v) {
			panic(badValue(t, row, col, v))
		}
	}
}

// appendCell appends v, a value of type typ in row of column col of t, to
// fb, and reports whether v is of that type.
func appendCell(t *Table, row, col int, typ ColumnType, fb array.Builder, v any) bool {
	switch typ {
	case Int64:
		if x, ok := v.(int64); ok {
			fb.(*array.Int64Builder).Append(x)
			return true
		}
	case Double:
		if x, ok := v.(float64); ok {
			fb.(*array.Float64Builder).Append(x)
			return true
		}
	case Currency:
		if _, ok := v.(Decimal); ok {
			c := cellOf(t, row, col, Currency, v) // parses and checks the literal: i is the value times 10^4
			fb.(*array.Decimal128Builder).Append(decimal128.FromI64(c.i))
			return true
		}
	case String:
		if x, ok := v.(string); ok {
			if !utf8.ValidString(x) {
				panic(valueError{fmt.Errorf("fakepbi: table %s row %d column %s: %q is not UTF-8", t.Name, row, t.Columns[col].Name, x)})
			}
			switch b := fb.(type) {
			case *array.BinaryDictionaryBuilder:
				if err := b.AppendString(x); err != nil {
					panic(valueError{err})
				}
			case *array.StringBuilder:
				b.Append(x)
			}
			return true
		}
	case Bool:
		if x, ok := v.(bool); ok {
			fb.(*array.BooleanBuilder).Append(x)
			return true
		}
	case DateTime:
		if x, ok := v.(time.Time); ok {
			c := timeVal(x) // the wall clock, read as UTC
			fb.(*array.Date64Builder).Append(arrow.Date64(c.i*1000 + int64(c.n)/1_000_000))
			return true
		}
	}
	return false
}

// writeErrorRowset writes the rowset the service answers a failed query
// with (HTTP 200): schema metadata IsError, FaultCode and FaultString, and
// one row of ErrorCode, ErrorMessage, ErrorDescription and the position
// (the names of the position fields are this fake's).
func writeErrorRowset(w io.Writer, qe *QueryError) error {
	code := fmt.Sprintf("0x%08X", uint32(3239575574))
	md := arrow.NewMetadata([]string{MetaIsError, MetaFaultCode, MetaFaultString}, []string{"true", code, qe.Error()})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "ErrorCode", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ErrorMessage", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ErrorDescription", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ErrorLine", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "ErrorColumn", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, &md)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(analysisServicesErrorCode)
	b.Field(1).(*array.StringBuilder).Append(qe.Message)
	b.Field(2).(*array.StringBuilder).Append(qe.Error())
	b.Field(3).(*array.Int64Builder).Append(int64(qe.Line))
	b.Field(4).(*array.Int64Builder).Append(int64(qe.Column))
	return writeOneBatch(w, schema, b)
}

// writeMetricsStream writes an execution-metrics rowset (schema metadata
// IsExecMetrics=true), as the service may append one to an answer.
func writeMetricsStream(w io.Writer, results int) error {
	md := arrow.NewMetadata([]string{MetaIsExecMetrics}, []string{"true"})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "Name", Type: arrow.BinaryTypes.String},
		{Name: "Value", Type: arrow.BinaryTypes.String},
	}, &md)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, kv := range [][2]string{{"durationMs", "12"}, {"resultsets", fmt.Sprint(results)}} {
		b.Field(0).(*array.StringBuilder).Append(kv[0])
		b.Field(1).(*array.StringBuilder).Append(kv[1])
	}
	return writeOneBatch(w, schema, b)
}

func writeOneBatch(w io.Writer, schema *arrow.Schema, b *array.RecordBuilder) error {
	rec := b.NewRecordBatch()
	defer rec.Release()
	wr := ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithLZ4())
	if err := wr.Write(rec); err != nil {
		_ = wr.Close()
		return err
	}
	return wr.Close()
}
