package sink

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/parquet/compress"
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
// RSS budget (and a 120 MiB soft memory limit) without making the garbage
// collector run constantly, while each row group still holds several
// hundred thousand rows (over a million for repetitive data), plenty for
// readers to scan efficiently.
const DefaultRowGroupBytes int64 = 16 << 20

// MaxRowGroupBytes is the largest RowGroupBytes a job may ask for: the row
// group is held in memory until it is cut, at up to about twice its size.
const MaxRowGroupBytes int64 = 1 << 30

// ParquetOptions configures a Parquet output. The job-file loader decodes it
// from YAML; the zero value of every field but Path selects the default.
type ParquetOptions struct {
	// Path is where the file is published. Relative paths are relative to
	// the current working directory. It is not checked by Validate.
	Path string `yaml:"path" doc:"Output file, relative to the working directory; a Go template over the params, e.g. out/day={{ .day }}/sales.parquet."`
	// Compression is the codec of every column: snappy (the default when
	// empty), zstd, gzip or none.
	Compression string `yaml:"compression" doc:"Codec of every column: snappy (default), zstd, gzip or none."`
	// RowGroupBytes cuts a row group once this many bytes of encoded,
	// compressed data pages are buffered for it; 0 selects
	// DefaultRowGroupBytes. The row group is cut between batches, so it may
	// exceed the figure by up to one batch, and each column also holds its
	// page being built (up to 1 MiB) and its dictionary (up to 1 MiB) in
	// memory until they are flushed into the row group.
	RowGroupBytes int64 `yaml:"rowGroupBytes" doc:"Cut a row group once this many bytes of compressed pages are buffered for it; 0 means 16 MiB. A row group is held in memory until it is cut."`
	// Overwrite, nil meaning true, replaces an existing file or blob at Path;
	// false makes the run fail if one exists.
	Overwrite *bool `yaml:"overwrite" doc:"true (default): replace an existing file or blob, so re-runs are idempotent; false: fail the run if one exists (a blob is created with If-None-Match: *)."`
	// MaxRowsPerFile and MaxBytesPerFile split the output into numbered
	// parts listed by a manifest (see NewSplit).
	MaxRowsPerFile  int64 `yaml:"maxRowsPerFile" doc:"Split the output into parts of at most this many rows, listed by a _manifest.json written last; the path must then contain {{ .part }}. 0: no limit."`
	MaxBytesPerFile int64 `yaml:"maxBytesPerFile" doc:"Start a new part once a part holds this many bytes (cut between batches, so a part can exceed it by one batch); the path must then contain {{ .part }}. 0: no limit."`
}

// The codecs a ParquetOptions.Compression may name.
var parquetCodecs = map[string]compress.Compression{
	"":       compress.Codecs.Snappy,
	"snappy": compress.Codecs.Snappy,
	"zstd":   compress.Codecs.Zstd,
	"gzip":   compress.Codecs.Gzip,
	"none":   compress.Codecs.Uncompressed,
}

// Validate reports every invalid option value (not the path), each error
// naming the field as a job file spells it and the values it allows.
func (o ParquetOptions) Validate() error {
	var errs []error
	if _, ok := parquetCodecs[o.Compression]; !ok {
		errs = append(errs, fmt.Errorf("compression: unknown codec %q: use snappy (the default), zstd, gzip or none", o.Compression))
	}
	if o.RowGroupBytes < 0 || o.RowGroupBytes > MaxRowGroupBytes {
		errs = append(errs, fmt.Errorf("rowGroupBytes: %d is out of range: use 0 for the default (%d) or 1 to %d", o.RowGroupBytes, DefaultRowGroupBytes, MaxRowGroupBytes))
	}
	errs = append(errs, o.Output().validate()...)
	return errors.Join(errs...)
}

// Output returns the options every file output shares.
func (o ParquetOptions) Output() OutputOptions {
	return OutputOptions{Overwrite: o.Overwrite == nil || *o.Overwrite, MaxRows: o.MaxRowsPerFile, MaxBytes: o.MaxBytesPerFile}
}

func (o ParquetOptions) codec() compress.Compression { return parquetCodecs[o.Compression] }

func (o ParquetOptions) rowGroupBytes() int64 {
	if o.RowGroupBytes == 0 {
		return DefaultRowGroupBytes
	}
	return o.RowGroupBytes
}

// CSVOptions configures a CSV output. The job-file loader decodes it from
// YAML; the zero value of every field but Path selects the default.
type CSVOptions struct {
	// Path is where the file is published. Relative paths are relative to
	// the current working directory. It is not checked by Validate.
	Path string `yaml:"path" doc:"Output file, relative to the working directory; a Go template over the params, e.g. out/day={{ .day }}/sales.csv."`
	// LineEnding ends every record: lf (the default when empty) or crlf.
	LineEnding string `yaml:"lineEnding" doc:"End of every record: lf (default) or crlf."`
	// Header writes the column names as the first record; nil means true.
	Header *bool `yaml:"header" doc:"Write the column names as the first record (default true)."`
	// Overwrite, nil meaning true, replaces an existing file or blob at Path;
	// false makes the run fail if one exists.
	Overwrite *bool `yaml:"overwrite" doc:"true (default): replace an existing file or blob, so re-runs are idempotent; false: fail the run if one exists (a blob is created with If-None-Match: *)."`
	// MaxRowsPerFile and MaxBytesPerFile split the output into numbered
	// parts listed by a manifest (see NewSplit).
	MaxRowsPerFile  int64 `yaml:"maxRowsPerFile" doc:"Split the output into parts of at most this many rows, listed by a _manifest.json written last; the path must then contain {{ .part }}. 0: no limit."`
	MaxBytesPerFile int64 `yaml:"maxBytesPerFile" doc:"Start a new part once a part holds this many bytes (cut between batches, so a part can exceed it by one batch); the path must then contain {{ .part }}. 0: no limit."`
}

// Validate reports every invalid option value (not the path), each error
// naming the field as a job file spells it and the values it allows.
func (o CSVOptions) Validate() error {
	var errs []error
	switch o.LineEnding {
	case "", "lf", "crlf":
	default:
		errs = append(errs, fmt.Errorf("lineEnding: unknown value %q: use lf (the default) or crlf", o.LineEnding))
	}
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
	if o.MaxRows < 0 {
		errs = append(errs, fmt.Errorf("maxRowsPerFile: %d is negative: use 0 (no limit) or a number of rows", o.MaxRows))
	}
	if o.MaxBytes < 0 || o.MaxBytes > 0 && o.MaxBytes < MinBytesPerFile {
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
