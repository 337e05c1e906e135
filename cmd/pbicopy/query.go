package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"

	"github.com/pbicopy/pbicopy/internal/units"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// maxCellWidth is the widest a value is shown in the terminal table.
const maxCellWidth = 40

// queryFlags are the flags of query.
type queryFlags struct {
	source  sourceFlags
	format  string
	out     string
	maxRows int
}

func (a *app) newQueryCmd() *cobra.Command {
	var f queryFlags
	cmd := &cobra.Command{
		Use:   "query ['EVALUATE ...']",
		Short: "Run a DAX query and show the result as a table, or write it as CSV, JSON lines or Parquet",
		Long: `Query runs one DAX query against a dataset, named by --workspace and
--dataset (with the credentials flags) or taken from a job file's source with
--job, and shows the first rows as a table, or writes the whole result with
-o FILE: the format follows the file's extension (.csv, .json or .jsonl,
.parquet) unless --format says otherwise. With --job naming a job that
replays a saved response (source.file), it shows or writes that response,
typed as the job would type it without a mapping, and takes no query.`,
		Example: `  pbicopy query --workspace W --dataset D 'EVALUATE TOPN(10, Sales)'
  pbicopy query --job jobs/sales.yaml -o sales.parquet 'EVALUATE Sales'
  pbicopy query --job jobs/sales.yaml --format csv 'EVALUATE Sales' > sales.csv
  pbicopy query --job jobs/saved-response.yaml`,
		Args: func(cmd *cobra.Command, pos []string) error {
			if len(pos) > 1 {
				return usagef("query takes one DAX query: pbicopy query --workspace W --dataset D 'EVALUATE ...'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, pos []string) error {
			dax := ""
			if len(pos) == 1 {
				dax = pos[0]
			}
			return a.cmdQuery(cmd.Context(), &f, dax)
		},
	}
	fl := cmd.Flags()
	f.source.register(fl, true)
	fl.StringVar(&f.format, "format", "", "table, csv, json (one object per line) or parquet (default: from -o's extension, else table)")
	fl.StringVarP(&f.out, "output", "o", "", "write to `FILE` (csv, json, parquet) instead of the terminal")
	fl.IntVar(&f.maxRows, "max-rows", 100, "rows the table shows")
	return cmd
}

// formatOf is the format of an output file, from its extension.
func formatOf(path string) (string, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return "csv", true
	case ".json", ".jsonl", ".ndjson":
		return "json", true
	case ".parquet":
		return "parquet", true
	}
	return "", false
}

// cmdQuery runs an ad-hoc DAX query and shows its result as a table, or
// writes it as CSV, JSON lines or Parquet.
func (a *app) cmdQuery(ctx context.Context, f *queryFlags, dax string) error {
	sf, format, out, maxRows := &f.source, &f.format, &f.out, &f.maxRows
	if *format == "" {
		*format = "table"
		if *out != "" {
			ext, ok := formatOf(*out)
			if !ok {
				return usagef("-o %s: say the format with --format csv, json or parquet (the extension is not one of .csv, .json, .jsonl, .parquet)", *out)
			}
			*format = ext
		}
	}
	switch *format {
	case "table":
		if *out != "" {
			return usagef("-o: the table is for the terminal; use --format csv, json or parquet to write a file")
		}
	case "csv", "json":
	case "parquet":
		if *out == "" {
			return usagef("--format parquet needs -o FILE")
		}
	default:
		return usagef("--format %q: use table, csv, json or parquet", *format)
	}
	if *maxRows < 0 {
		return usagef("--max-rows %d: use 0 or more", *maxRows)
	}
	spec, job, err := sf.source(a, true)
	if err != nil {
		return err
	}
	switch {
	case spec.File != "" && dax != "":
		return usagef("job %s replays a saved response (source.file: %s), which no DAX query can change: leave out the query", job.Name, spec.File)
	case spec.File == "" && dax == "":
		return usagef("query needs one DAX query: pbicopy query --workspace W --dataset D 'EVALUATE ...'")
	}
	rep, err := a.newReporter()
	if err != nil {
		return err
	}
	defer rep.close()
	conn := a.connector(rep, 0)
	runner := &pipeline.Runner{Logger: rep.log, Sources: conn, Storage: a.storage(), Progress: rep.progress()}

	switch *format {
	case "table":
		t := &tableOut{max: *maxRows}
		err := queryBatches(ctx, conn, rep, spec, dax, t)
		rep.close()
		if errors.Is(err, powerbi.ErrNoRowsToInfer) {
			fmt.Fprintln(a.stdout, "(0 rows)")
			return nil
		}
		if err != nil {
			return err
		}
		t.print(a.stdout)
		return nil
	case "json":
		return a.queryJSON(ctx, conn, rep, spec, dax, *out)
	}
	return a.queryFile(ctx, runner, rep, spec, dax, *format, *out)
}

// queryBatches runs dax and streams its result, typed by inference, into
// r: its schema first, then its batches.
func queryBatches(ctx context.Context, conn *powerbi.Connector, rep *reporter, spec source.Spec, dax string, r source.Receiver) error {
	const job = "query"
	// A column null in every row is shown as string: there is no job to
	// give it a type.
	src, err := conn.Open(ctx, source.Request{Job: job, Spec: adhocSpec(spec), Query: dax, Log: rep.log, NullType: mapping.Type{Kind: mapping.String}})
	if err != nil {
		return err
	}
	progress := rep.progress()
	if progress != nil {
		progress(pipeline.ProgressEvent{Kind: pipeline.ProgressJobStart, Job: job})
		ctx = source.WithProgress(ctx, func(bytes int64, _ int) {
			progress(pipeline.ProgressEvent{Kind: pipeline.ProgressBytes, Job: job, Bytes: bytes})
		})
		r = receiverFuncs{r.Schema, func(rec arrow.RecordBatch) error {
			progress(pipeline.ProgressEvent{Kind: pipeline.ProgressRows, Job: job, Rows: rec.NumRows()})
			return r.Batch(rec)
		}}
	}
	_, err = src.Read(ctx, r)
	return err
}

// adhocSpec is the source of an ad-hoc query: the saved response of a
// file source, or the Power BI dataset of a job's source or of the flags,
// queried as it is (not paged, no refresh first).
func adhocSpec(spec source.Spec) source.Spec {
	if spec.File != "" {
		return source.Spec{File: spec.File}
	}
	pb := *spec.PowerBI
	pb.Table, pb.Paging, pb.RefreshBefore = "", nil, false
	return source.Spec{PowerBI: &pb}
}

// receiverFuncs is a source.Receiver made of two functions.
type receiverFuncs struct {
	schema func(*arrow.Schema, []string) error
	batch  func(arrow.RecordBatch) error
}

func (f receiverFuncs) Schema(s *arrow.Schema, notes []string) error { return f.schema(s, notes) }
func (f receiverFuncs) Batch(rec arrow.RecordBatch) error            { return f.batch(rec) }

// queryFile writes the result through the job sinks (csv or parquet), to
// out, or for CSV without -o to stdout.
func (a *app) queryFile(ctx context.Context, runner *pipeline.Runner, rep *reporter, spec source.Spec, dax, format, out string) error {
	path := out
	if path == "" {
		dir, err := os.MkdirTemp("", "pbicopy-query-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "query.csv")
	}
	job := &jobfile.Job{Name: "query", Source: adhocSpec(spec)}
	if pb := job.Source.PowerBI; pb != nil {
		pb.Query = jobfile.EscapeTemplate(dax)
	}
	switch format {
	case "csv":
		job.Sinks = []sink.Spec{{CSV: &sink.CSVOptions{Path: jobfile.EscapeTemplate(path)}}}
	case "parquet":
		job.Sinks = []sink.Spec{{Parquet: &sink.ParquetOptions{Path: jobfile.EscapeTemplate(path), Compression: "zstd"}}}
	}
	res := runner.Run(ctx, job)
	rep.close()
	if res.Status != pipeline.Succeeded {
		return res.Err()
	}
	if out == "" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(a.stdout, f)
		return err
	}
	var bytes int64
	for _, s := range res.Sinks {
		bytes += s.Bytes
	}
	fmt.Fprintf(a.stdout, "%s rows (%s) written to %s\n", groupDigits(res.Rows), units.Bytes(bytes), out)
	return nil
}

// queryJSON writes one JSON object per row, with typed values, to out or
// stdout. A file is written beside out and renamed over it at the end.
func (a *app) queryJSON(ctx context.Context, conn *powerbi.Connector, rep *reporter, spec source.Spec, dax, out string) error {
	var dst io.Writer = a.stdout
	var tmp *os.File
	if out != "" {
		var err error
		if tmp, err = os.CreateTemp(filepath.Dir(out), ".pbicopy-query-*"); err != nil {
			return err
		}
		defer func() {
			tmp.Close()
			os.Remove(tmp.Name())
		}()
		dst = tmp
	}
	bw := bufio.NewWriterSize(dst, 64<<10)
	var names [][]byte
	rows := int64(0)
	onSchema := func(schema *arrow.Schema, _ []string) error {
		for _, f := range schema.Fields() {
			k, err := jsontext.AppendQuote(nil, f.Name)
			if err != nil {
				return err
			}
			names = append(names, k)
		}
		return nil
	}
	var line []byte
	emit := func(rec arrow.RecordBatch) error {
		defer rec.Release()
		for i := range int(rec.NumRows()) {
			line = append(line[:0], '{')
			for j, col := range rec.Columns() {
				if j > 0 {
					line = append(line, ',')
				}
				line = append(line, names[j]...)
				line = append(line, ':')
				line = appendJSONValue(line, col, i)
			}
			line = append(line, '}', '\n')
			if _, err := bw.Write(line); err != nil {
				return err
			}
			rows++
		}
		return nil
	}
	err := queryBatches(ctx, conn, rep, spec, dax, receiverFuncs{onSchema, emit})
	rep.close()
	if errors.Is(err, powerbi.ErrNoRowsToInfer) {
		err = nil // no rows, no lines
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil || tmp == nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s rows written to %s\n", groupDigits(rows), out)
	return nil
}

// appendJSONValue writes value i of col as JSON: numbers as numbers
// (decimals at their scale), dates and timestamps as ISO 8601 strings
// without a zone, null for null.
func appendJSONValue(b []byte, col arrow.Array, i int) []byte {
	if col.IsNull(i) {
		return append(b, "null"...)
	}
	switch c := col.(type) {
	case *array.String, *array.Dictionary, *array.Date32, *array.Timestamp:
		q, err := jsontext.AppendQuote(b, cellText(col, i))
		if err != nil { // invalid UTF-8 cannot come from a JSON response
			return append(b, "null"...)
		}
		return q
	case *array.Float64:
		v := c.Value(i)
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, cellText(col, i)...)
}

// cellText writes value i of col as text: the CSV sink's forms.
func cellText(col arrow.Array, i int) string {
	if col.IsNull(i) {
		return ""
	}
	switch c := col.(type) {
	case *array.String:
		return c.Value(i)
	case *array.Dictionary: // a string column from the Arrow source
		return cellText(c.Dictionary(), c.GetValueIndex(i))
	case *array.Int64:
		return strconv.FormatInt(c.Value(i), 10)
	case *array.Float64:
		return strconv.FormatFloat(c.Value(i), 'g', -1, 64)
	case *array.Decimal128:
		return c.Value(i).ToString(c.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Boolean:
		return strconv.FormatBool(c.Value(i))
	case *array.Date32:
		return c.Value(i).ToTime().Format("2006-01-02")
	case *array.Timestamp:
		return time.UnixMicro(int64(c.Value(i))).UTC().Format("2006-01-02T15:04:05.999999")
	}
	return col.ValueStr(i)
}

// tableOut keeps the first max rows of a result, as text, and counts the
// others.
type tableOut struct {
	max     int
	cols    []arrow.Field
	rows    [][]string
	nulls   [][]bool
	total   int64
	numeric []bool
}

func (t *tableOut) Schema(schema *arrow.Schema, _ []string) error {
	t.cols = schema.Fields()
	for _, f := range t.cols {
		id := f.Type.ID()
		t.numeric = append(t.numeric, id == arrow.INT64 || id == arrow.FLOAT64 || id == arrow.DECIMAL128)
	}
	return nil
}

func (t *tableOut) Batch(rec arrow.RecordBatch) error {
	defer rec.Release()
	for i := range int(rec.NumRows()) {
		t.total++
		if len(t.rows) >= t.max {
			continue
		}
		row := make([]string, rec.NumCols())
		nulls := make([]bool, rec.NumCols())
		for j, col := range rec.Columns() {
			nulls[j] = col.IsNull(i)
			row[j] = cellText(col, i)
		}
		t.rows = append(t.rows, row)
		t.nulls = append(t.nulls, nulls)
	}
	return nil
}

// displayCell makes a value fit one line of the table: control characters
// shown escaped, long values cut with an ellipsis.
func displayCell(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	s = b.String()
	if utf8.RuneCountInString(s) > maxCellWidth {
		s = string([]rune(s)[:maxCellWidth-1]) + "…"
	}
	return s
}

func (t *tableOut) print(w io.Writer) {
	n := len(t.cols)
	header := make([]string, n)
	types := make([]string, n)
	width := make([]int, n)
	for j, c := range t.cols {
		header[j], types[j] = displayCell(c.Name), mapping.TypeName(c.Type)
		width[j] = max(displayWidth(header[j]), displayWidth(types[j]))
	}
	cells := make([][]string, len(t.rows))
	for i, row := range t.rows {
		cells[i] = make([]string, n)
		for j, v := range row {
			if t.nulls[i][j] {
				v = "NULL"
			} else {
				v = displayCell(v)
			}
			cells[i][j] = v
			width[j] = max(width[j], displayWidth(v))
		}
	}
	bw := bufio.NewWriter(w)
	line := func(vals []string, right bool) {
		for j, v := range vals {
			pad := strings.Repeat(" ", width[j]-displayWidth(v))
			if j > 0 {
				bw.WriteString("  ")
			}
			switch {
			case right && t.numeric[j]:
				bw.WriteString(pad + v)
			case j == n-1:
				bw.WriteString(v)
			default:
				bw.WriteString(v + pad)
			}
		}
		bw.WriteString("\n")
	}
	line(header, false)
	line(types, false)
	rule := make([]string, n)
	for j := range rule {
		rule[j] = strings.Repeat("-", width[j])
	}
	line(rule, false)
	for _, row := range cells {
		line(row, true)
	}
	switch {
	case int64(len(t.rows)) < t.total:
		fmt.Fprintf(bw, "(%s of %s rows shown; --max-rows to see more)\n", groupDigits(int64(len(t.rows))), groupDigits(t.total))
	case t.total == 1:
		fmt.Fprintln(bw, "(1 row)")
	default:
		fmt.Fprintf(bw, "(%s rows)\n", groupDigits(t.total))
	}
	bw.Flush()
}
