// Package jobfile is the job file: its types, read strictly from YAML with
// a line for every problem, validated section by section, its parameters
// and partitions, its templates (the query and the output paths), and the
// JSON Schema and the reference generated from the same types. A job's
// source and sinks are declared by the types of packages source and sink,
// which hold their own rules.
package jobfile

import (
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

// Job is a job file as written. Field tags are the YAML field names; the
// loader decodes strictly (unknown fields are errors) and expands ${ENV}
// references in values.
type Job struct {
	Name      string               `yaml:"name" required:"a job name such as sales-daily" pattern:"^[a-z0-9][a-z0-9-]*$" maxLength:"63" patternDoc:"a valid job name: lowercase letters, digits and -, starting with a letter or digit, at most 63 characters" doc:"Job name, used in logs, paths and state."`
	Source    source.Spec          `yaml:"source" required:"powerbi (a query) or file (a saved response)" doc:"Where the rows come from: powerbi or file."`
	Mapping   *MappingSpec         `yaml:"mapping" defaultDoc:"columns inferred from the data" doc:"Column mapping; omitted, columns are inferred from the data."`
	Sinks     []sink.Spec          `yaml:"sinks" required:"at least one sink (parquet, csv or postgres)" minItems:"1" doc:"Where the rows go; every sink receives every row."`
	Params    map[string]ParamSpec `yaml:"params" keys:"^[A-Za-z_][A-Za-z0-9_]*$" keysDoc:"names of letters, digits and _, not starting with a digit" doc:"Typed template parameters for the query and output paths, by name."`
	Partition *PartitionSpec       `yaml:"partition" doc:"Run one partition per step of a parameter (backfills with --from/--to)."`
	// Incremental and Partition are distinct modes: a job has one or the
	// other.
	Incremental *IncrementalSpec  `yaml:"incremental" doc:"Read only what is new since the last run: a watermark, kept in the state file, fills a parameter of the query and advances to the maximum of a column once every sink has committed. Not with partition."`
	State       *StateSpec        `yaml:"state" doc:"Where completed partitions (for --resume) and an incremental job's watermark are recorded."`
	Storage     *sink.StorageSpec `yaml:"storage" doc:"How file sinks with a blob path (az://<container>/<path>) reach Azure Blob Storage: account, credential, upload tuning."`

	// File is the path the job was loaded from ("" for an embedded job).
	File  string `yaml:"-"`
	lines lineIndex
	unset map[string]bool // paths of values with an unset variable (Loader.SkipEnv)
}

// MappingSpec maps row keys to typed columns.
type MappingSpec struct {
	Columns  []ColumnSpec `yaml:"columns" required:"list the columns, or omit mapping to infer them from the data" minItems:"1" doc:"Output columns, in order."`
	Unmapped string       `yaml:"unmapped" enum:"error,ignore" default:"error" doc:"What to do with a row key no column maps."`
}

// ColumnSpec maps one row key to one typed column.
type ColumnSpec struct {
	From string `yaml:"from" required:"the row key, e.g. Sales[OrderID] or [Total]" doc:"Row key as Power BI sends it: Table[Column] or [Name]."`
	To   string `yaml:"to" required:"the output column name" doc:"Output column name."`
	Type string `yaml:"type" required:"string, int64, float64, bool, date, timestamp or decimal(P,S)" enum:"@columnType" pattern:"^decimal *\\( *[0-9]+ *, *[0-9]+ *\\)$" patternDoc:"decimal(P,S): precision 1 to 38, scale 0 to P" doc:"The column's type."`
}

// ParamSpec declares a template parameter.
type ParamSpec struct {
	Type    string `yaml:"type" required:"date, datetime, int or string" enum:"date,datetime,int,string" doc:"The parameter's type. A datetime is UTC to the second: {{ dax .p }} writes DATETIME(y, m, d, h, mi, s)."`
	Default string `yaml:"default" doc:"Value when --param does not give one; dates may be relative: today, yesterday, today-7d, today+1d, today-1mo; datetimes are ISO 8601 (2024-03-01T13:45:30Z, UTC without an offset) or relative: now, now-2h, now-30m, today-1d."`
}

// PartitionSpec splits a run into one partition per step of a parameter.
type PartitionSpec struct {
	Param string `yaml:"param" required:"the date or int parameter to step through" doc:"The parameter that varies; --from and --to give its range."`
	Step  string `yaml:"step" required:"Nd (days) or Nmo (months) for a date parameter, an integer for an int parameter" doc:"Step between partitions: Nd (days) or Nmo (months) for a date parameter, an integer for an int parameter."`
}

// IncrementalSpec makes a job incremental: each run reads from a watermark
// kept in the state file, and advances it to the maximum of a column once
// every sink has committed.
type IncrementalSpec struct {
	Param    string `yaml:"param" required:"the date, datetime or int parameter that carries the watermark into the query" doc:"The parameter that carries the watermark into templates: {{ dax .since }} in the query's filter."`
	Column   string `yaml:"column" required:"an output column (a mapping to name) whose maximum becomes the next watermark" doc:"The output column (a mapping's to name) whose maximum over the rows read becomes the next watermark."`
	Initial  string `yaml:"initial" required:"the first run's watermark, e.g. 2024-01-01" doc:"The watermark of the first run (no state yet), in the parameter's type; may be relative (today-30d, now-2h)."`
	Lookback string `yaml:"lookback" doc:"Re-read this much before the stored watermark, for rows that arrive late: Nd for a date; Nd, Nh, Nm or Ns for a datetime; an integer for an int. Needs sinks that replace what they read again (merge, not append)."`
}

// StateSpec says where partition state is kept.
type StateSpec struct {
	Path string `yaml:"path" defaultDoc:".pbicopy-state/<job>.json beside the first file sink's output folder" doc:"The state file, a local path or a blob URL."`
}
