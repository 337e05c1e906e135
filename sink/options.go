package sink

import (
	"cmp"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/pbicopy/pbicopy/internal/spec"
)

// DefaultRowGroupBytes is the row group size of a Parquet file when
// ParquetOptions.RowGroupBytes is 0: 16 MiB of encoded, compressed pages.
//
// A row group is buffered in memory until it is cut. Measured on 3 million
// rows of the 10-column benchmark result with random values (44 bytes a row
// once compressed), the live heap of the Parquet sink peaks near 60 MiB with
// 16 MiB row groups, 85 MiB with 32 MiB and 130 MiB with 64 MiB: the
// buffers grow by doubling and the dictionaries, hash tables and pages being
// built come on top. 16 MiB leaves the whole pipeline room under its 150 MB
// RSS budget (and its 100 MiB soft memory limit) without making the garbage
// collector run constantly. Repetitive data reaches DefaultRowGroupRows
// long before 16 MiB.
const DefaultRowGroupBytes int64 = 16 << 20

// DefaultRowGroupRows is the most rows in a row group of a Parquet file when
// ParquetOptions.RowGroupRows is 0: 128Ki rows, about DuckDB's default
// (122,880).
//
// The byte limit alone lets a row group of repetitive data hold millions of
// rows (the 10-column benchmark table compresses to 13 bytes a row: 1.3
// million rows to 16 MiB), and a row group is encoded into memory and only
// written out when it is cut: a typical nightly extract was one row group,
// written at the end, after the download, on one core, with the encoder's
// buffers grown to the whole file. Measured on 1,000,000 rows of the
// benchmark table, the row limit took the run from the Arrow source from
// 1.08 s to 0.88 s (its CPU from 1.63 s to 1.28 s), and from the JSON
// source from 2.80 s to 2.59 s, for a file 7% larger (each row group has its own
// dictionaries and statistics). Row groups are also what readers such as
// DuckDB, Spark and Polars read in parallel: a file of one row group is
// read by one thread.
const DefaultRowGroupRows int64 = 128 << 10

// MaxRowGroupBytes is the largest RowGroupBytes a job may ask for: the row
// group is held in memory until it is cut, at up to about twice its size.
const MaxRowGroupBytes int64 = 1 << 30

// ParquetOptions configures a Parquet output. The job-file loader decodes it
// from YAML; the zero value of every field but Path selects the default.
//
// Path is not checked by Validate: it is a template, which the job file
// checks. RowGroupBytes is cut between batches, on the encoded size as of
// three batches before (so that the cut depends on the data alone, not on
// how the columns' goroutines ran), so a row group may exceed it by a few
// batches (RowGroupRows is exact: a batch is sliced), and each column also holds its page being built
// (up to 1 MiB) and its dictionary (up to 1 MiB) in memory until they are
// flushed into the row group; a dictionary-encoded string column from the
// Arrow source is held until the cut as 4 bytes a row and its distinct
// values, and counts for the byte limit by an estimate of its encoded size.
// MaxRowsPerFile and MaxBytesPerFile split the output into parts (see
// NewSplit).
type ParquetOptions struct {
	Path            string `yaml:"path" required:"the output file, e.g. out/sales.parquet" doc:"Output file, relative to the working directory; a Go template over the params, e.g. out/day={{ .day }}/sales.parquet."`
	Compression     string `yaml:"compression" enum:"snappy,zstd,gzip,none" default:"snappy" doc:"Codec of every column."`
	RowGroupBytes   int64  `yaml:"rowGroupBytes" min:"0" max:"1073741824" default:"16777216" doc:"Cut a row group once this many bytes of compressed pages are buffered for it; 0 means the default. A row group is held in memory until it is cut."`
	RowGroupRows    int64  `yaml:"rowGroupRows" min:"0" max:"67108864" default:"131072" doc:"Cut a row group once it holds this many rows (whichever of rowGroupBytes and rowGroupRows comes first); 0 means the default."`
	Overwrite       *bool  `yaml:"overwrite" default:"true" doc:"true: replace an existing file or blob, so re-runs are idempotent; false: fail the run if one exists (a blob is created with If-None-Match: *)."`
	MaxRowsPerFile  int64  `yaml:"maxRowsPerFile" min:"0" default:"0" doc:"Split the output into parts of at most this many rows, listed by a _manifest.json written last; the path must then contain {{ .part }}. 0: no limit."`
	MaxBytesPerFile int64  `yaml:"maxBytesPerFile" min:"0" default:"0" doc:"Start a new part once a part holds this many bytes, 65536 or more (cut between batches, so a part can exceed it by one batch); the path must then contain {{ .part }}. 0: no limit."`
}

// parquetCodecs are the codecs a ParquetOptions.Compression names (its
// enum tag lists them; a test checks both agree).
var parquetCodecs = map[string]compress.Compression{
	"snappy": compress.Codecs.Snappy,
	"zstd":   compress.Codecs.Zstd,
	"gzip":   compress.Codecs.Gzip,
	"none":   compress.Codecs.Uncompressed,
}

// Validate reports every invalid option value (not the path), each error
// naming the field as a job file spells it and the values it allows.
func (o ParquetOptions) Validate() error {
	errs := []error{spec.CheckExcept(o, "path")}
	errs = append(errs, o.Output().validate()...)
	return errors.Join(errs...)
}

// Output returns the options every file output shares.
func (o ParquetOptions) Output() OutputOptions {
	return OutputOptions{Overwrite: o.Overwrite == nil || *o.Overwrite, MaxRows: o.MaxRowsPerFile, MaxBytes: o.MaxBytesPerFile}
}

func (o ParquetOptions) codec() compress.Compression {
	return parquetCodecs[cmp.Or(o.Compression, spec.Default[ParquetOptions]("compression"))]
}

func (o ParquetOptions) rowGroupRows() int64 {
	if o.RowGroupRows == 0 {
		return DefaultRowGroupRows
	}
	return o.RowGroupRows
}

func (o ParquetOptions) rowGroupBytes() int64 {
	if o.RowGroupBytes == 0 {
		return DefaultRowGroupBytes
	}
	return o.RowGroupBytes
}

// CSVOptions configures a CSV output. The job-file loader decodes it from
// YAML; the zero value of every field but Path selects the default. Path is
// not checked by Validate: it is a template, which the job file checks.
type CSVOptions struct {
	Path            string `yaml:"path" required:"the output file, e.g. out/sales.csv" doc:"Output file, relative to the working directory; a Go template over the params, e.g. out/day={{ .day }}/sales.csv."`
	LineEnding      string `yaml:"lineEnding" enum:"lf,crlf" default:"lf" doc:"End of every record."`
	Header          *bool  `yaml:"header" default:"true" doc:"Write the column names as the first record."`
	Overwrite       *bool  `yaml:"overwrite" default:"true" doc:"true: replace an existing file or blob, so re-runs are idempotent; false: fail the run if one exists (a blob is created with If-None-Match: *)."`
	MaxRowsPerFile  int64  `yaml:"maxRowsPerFile" min:"0" default:"0" doc:"Split the output into parts of at most this many rows, listed by a _manifest.json written last; the path must then contain {{ .part }}. 0: no limit."`
	MaxBytesPerFile int64  `yaml:"maxBytesPerFile" min:"0" default:"0" doc:"Start a new part once a part holds this many bytes, 65536 or more (cut between batches, so a part can exceed it by one batch); the path must then contain {{ .part }}. 0: no limit."`
}

// Validate reports every invalid option value (not the path), each error
// naming the field as a job file spells it and the values it allows.
func (o CSVOptions) Validate() error {
	errs := []error{spec.CheckExcept(o, "path")}
	errs = append(errs, o.Output().validate()...)
	return errors.Join(errs...)
}

// Output returns the options every file output shares.
func (o CSVOptions) Output() OutputOptions {
	return OutputOptions{Overwrite: o.Overwrite == nil || *o.Overwrite, MaxRows: o.MaxRowsPerFile, MaxBytes: o.MaxBytesPerFile}
}

// OutputOptions are the options of a file output that do not depend on its
// format, with their defaults applied.
type OutputOptions struct {
	Overwrite bool  // replace an existing file or blob
	MaxRows   int64 // rows per part; 0: no limit
	MaxBytes  int64 // encoded bytes per part; 0: no limit
}

// Split reports whether the output is written as parts with a manifest.
func (o OutputOptions) Split() bool { return o.MaxRows > 0 || o.MaxBytes > 0 }

// MinBytesPerFile is the smallest MaxBytesPerFile allowed: smaller parts
// would be mostly Parquet footers and request overhead.
const MinBytesPerFile = 64 << 10

func (o OutputOptions) validate() []error {
	var errs []error
	if o.MaxBytes > 0 && o.MaxBytes < MinBytesPerFile {
		errs = append(errs, fmt.Errorf("maxBytesPerFile: %d is out of range: use 0 (no limit) or at least %d (64 KiB)", o.MaxBytes, MinBytesPerFile))
	}
	return errs
}

func (o CSVOptions) eol() string {
	if o.LineEnding == "crlf" {
		return "\r\n"
	}
	return "\n"
}

func (o CSVOptions) header() bool { return o.Header == nil || *o.Header }
