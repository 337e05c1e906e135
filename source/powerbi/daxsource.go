package powerbi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/source"
)

// daxSource is one executeDaxQueries request: typed Arrow, no row cap.
type daxSource struct {
	conn *Connector
	req  source.Request
}

func (s *daxSource) Read(ctx context.Context, r source.Receiver) (source.Stats, error) {
	pb := s.req.Spec.PowerBI
	client, err := s.conn.Client(ctx, pb)
	if err != nil {
		return source.Stats{}, err
	}
	mem := s.req.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	conv := &arrowMapper{mem: mem, cols: s.req.Columns, unmapped: s.req.Unmapped, out: r, log: s.req.Log, batchRows: s.req.BatchRows}
	qs, err := client.ExecuteDaxQuery(ctx, DaxQuery{
		Workspace: pb.GroupID(), Dataset: pb.Dataset, DAX: s.req.Query,
		ImpersonatedUser: pb.ImpersonatedUser, RowLimit: pb.RowLimit, QueryTimeout: pb.QueryTimeoutSeconds(),
	}, mem, conv)
	st := statsOf(qs)
	st.Pages = 1
	source.ProgressOf(ctx)(0, 1)
	return st, err
}

// ArrowColumns is the mapping of the columns of an executeDaxQueries result
// of schema as: cols when given (each From must name a column of as;
// columns it does not map are an error under mapping.UnmappedError), else
// every column with its natural type (mapping.NaturalType) and its name
// normalised (mapping.TargetNames). It also returns, for each column, the
// index of its Arrow column and the notes on names it had to make unique.
func ArrowColumns(as *arrow.Schema, cols []mapping.Column, unmapped mapping.Unmapped) ([]mapping.Column, []int, []string, error) {
	fields := as.Fields()
	if cols == nil {
		keys := make([]string, len(fields))
		for i, f := range fields {
			keys[i] = f.Name
		}
		names, notes := mapping.TargetNames(keys)
		out := make([]mapping.Column, len(fields))
		idx := make([]int, len(fields))
		var errs []error
		for i, f := range fields {
			t, err := mapping.NaturalType(f.Type)
			if err != nil {
				errs = append(errs, fmt.Errorf("column %s %w: for example\n  mapping:\n    columns:\n      - { from: %q, to: %s, type: string }", f.Name, err, f.Name, names[i]))
			}
			out[i], idx[i] = mapping.Column{From: f.Name, To: names[i], Type: t}, i
		}
		if len(errs) > 0 {
			return nil, nil, nil, permanentError{errors.Join(errs...)}
		}
		return out, idx, notes, nil
	}
	byName := map[string]int{}
	for i, f := range fields {
		byName[f.Name] = i
	}
	used := make([]bool, len(fields))
	idx := make([]int, len(cols))
	var errs []error
	for c, col := range cols {
		i, ok := byName[col.From]
		if !ok {
			for j, f := range fields {
				if strings.EqualFold(f.Name, col.From) { // DAX names ignore case
					i, ok = j, true
					break
				}
			}
		}
		if !ok {
			errs = append(errs, fmt.Errorf("mapping: column %s maps from %q, which the result does not have (its columns: %s)", col.To, col.From, fieldNames(fields)))
			continue
		}
		idx[c], used[i] = i, true
	}
	if unmapped == mapping.UnmappedError {
		for i, f := range fields {
			if !used[i] {
				errs = append(errs, fmt.Errorf("the result has column %q, which the mapping does not map: add it to mapping.columns, or set mapping.unmapped: ignore", f.Name))
			}
		}
	}
	if len(errs) > 0 {
		return nil, nil, nil, permanentError{errors.Join(errs...)}
	}
	return cols, idx, nil, nil
}

func fieldNames(fields []arrow.Field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// arrowMapper turns the batches of an executeDaxQueries result into batches
// of the job's columns: a column whose Arrow type is already the column's
// goes through as it is (retained, no per-value work); the others are cast
// (mapping.NewCast).
type arrowMapper struct {
	mem      memory.Allocator
	cols     []mapping.Column // the job's mapping; nil: natural types
	unmapped mapping.Unmapped
	out      source.Receiver
	log      *slog.Logger
	// batchRows is the most rows of a batch handed on; 0 is
	// mapping.DefaultBatchRows.
	batchRows int

	schema *arrow.Schema
	mapped []mapping.Column
	index  []int
	casts  []mapping.Cast
	rows   int64 // rows passed on so far
}

func (m *arrowMapper) Schema(as *arrow.Schema) error {
	cols, idx, notes, err := ArrowColumns(as, m.cols, m.unmapped)
	if err != nil {
		return err
	}
	m.mapped, m.index = cols, idx
	m.casts = make([]mapping.Cast, len(cols))
	var errs []error
	for c, col := range cols {
		f := as.Field(idx[c])
		cast, err := mapping.NewCast(f.Type, col.Type)
		if err != nil {
			errs = append(errs, fmt.Errorf("column %s (from %s) %v: map it as %s", col.To, col.From, err, suggestType(f.Type)))
			continue
		}
		m.casts[c] = cast
	}
	if len(errs) > 0 {
		return permanentError{errors.Join(errs...)}
	}
	if m.log != nil {
		for _, n := range notes {
			m.log.Warn("mapping: " + n)
		}
	}
	fields := mapping.Schema(cols).Fields()
	for c, col := range cols {
		// The service's dictionary-encoded strings go on as they are.
		fields[c].Type = mapping.ArrowType(as.Field(idx[c]).Type, col.Type)
	}
	m.schema = arrow.NewSchema(fields, nil)
	return m.out.Schema(m.schema, notes)
}

// suggestType is the column type to suggest for an Arrow type.
func suggestType(t arrow.DataType) string {
	if typ, err := mapping.NaturalType(t); err == nil {
		return typ.String()
	}
	return "string"
}

func (m *arrowMapper) Batch(rec arrow.RecordBatch) error {
	// The service's batches hold up to 100,000 rows; the sinks work best on
	// batches of batchRows (the Parquet writer's buffers and dictionary
	// tables grow with the batch): each is cut into zero-copy slices, and
	// each slice is mapped and handed on before the next is mapped, so that
	// the sinks start on the first slice while the rest is mapped.
	n := rec.NumRows()
	step := int64(cmp.Or(m.batchRows, mapping.DefaultBatchRows))
	for off := int64(0); off < n; off += step {
		part := rec
		if off > 0 || n > step {
			part = rec.NewSlice(off, min(off+step, n))
		}
		err := m.slice(part)
		if part != rec {
			part.Release()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// slice maps the rows of rec and hands them to the output.
func (m *arrowMapper) slice(rec arrow.RecordBatch) error {
	cols := make([]arrow.Array, len(m.casts))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for c, cast := range m.casts {
		out, err := cast(m.mem, rec.Column(m.index[c]))
		if err != nil {
			var ce *mapping.CastError
			if errors.As(err, &ce) {
				col := m.mapped[c]
				return &ValueError{Row: m.rows + int64(ce.Index) + 1, Column: col.To, From: col.From, Type: col.Type, Value: ce.Value, Reason: ce.Reason}
			}
			return err
		}
		cols[c] = out
	}
	out := array.NewRecordBatch(m.schema, cols, rec.NumRows())
	m.rows += rec.NumRows()
	return m.out.Batch(out)
}

// InferArrow asks the executeDaxQueries API for the schema of a query
// (schemaOnly: no rows move) and returns the columns a job without a
// mapping writes. A column with no type of its own (a Variant, binary) is
// given type string with a note saying why.
func (c *Connector) InferArrow(ctx context.Context, pb *source.PowerBISpec, dax string) ([]InferredColumn, QueryStats, error) {
	client, err := c.Client(ctx, pb)
	if err != nil {
		return nil, QueryStats{}, err
	}
	sr := &schemaRecv{}
	qs, err := client.ExecuteDaxQuery(ctx, DaxQuery{
		Workspace: pb.GroupID(), Dataset: pb.Dataset, DAX: dax, ImpersonatedUser: pb.ImpersonatedUser, SchemaOnly: true,
	}, memory.DefaultAllocator, sr)
	if err != nil {
		return nil, qs, err
	}
	fields := sr.schema.Fields()
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.Name
	}
	names, _ := mapping.TargetNames(keys)
	cols := make([]InferredColumn, len(fields))
	for i, f := range fields {
		col := InferredColumn{Column: mapping.Column{From: f.Name, To: names[i]}}
		_, part := mapping.SplitKey(f.Name)
		col.Renamed = names[i] != mapping.SnakeCase(part)
		t, err := mapping.NaturalType(f.Type)
		if err != nil {
			t = mapping.Type{Kind: mapping.String}
			switch f.Type.ID() {
			case arrow.DENSE_UNION, arrow.SPARSE_UNION:
				col.Note = "a Variant (values of mixed types): string writes each value as text"
			case arrow.BINARY, arrow.LARGE_BINARY:
				col.Note = "binary: string writes it as base64"
			default:
				col.Note = fmt.Sprintf("Arrow %s has no column type of its own: string writes it as text", f.Type)
			}
		}
		col.Type = t
		cols[i] = col
	}
	return cols, qs, nil
}

// schemaRecv keeps the schema of a result and no batch.
type schemaRecv struct{ schema *arrow.Schema }

func (s *schemaRecv) Schema(as *arrow.Schema) error {
	s.schema = as
	return nil
}
func (s *schemaRecv) Batch(arrow.RecordBatch) error { return nil }
