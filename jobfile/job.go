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
	State     *StateSpec           `yaml:"state" doc:"Where completed partitions are recorded for --resume."`
	Storage   *sink.StorageSpec    `yaml:"storage" doc:"How file sinks with a blob path (az://<container>/<path>) reach Azure Blob Storage: account, credential, upload tuning."`

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
	Type    string `yaml:"type" required:"date, int or string" enum:"date,int,string" doc:"The parameter's type."`
	Default string `yaml:"default" doc:"Value when --param does not give one; dates may be relative: today, yesterday, today-7d, today+1d, today-1mo."`
}

// PartitionSpec splits a run into one partition per step of a parameter.
type PartitionSpec struct {
	Param string `yaml:"param" required:"the date or int parameter to step through" doc:"The parameter that varies; --from and --to give its range."`
	Step  string `yaml:"step" required:"Nd (days) or Nmo (months) for a date parameter, an integer for an int parameter" doc:"Step between partitions: Nd (days) or Nmo (months) for a date parameter, an integer for an int parameter."`
}

// StateSpec says where partition state is kept.
type StateSpec struct {
	Path string `yaml:"path" defaultDoc:".pbicopy-state/<job>.json beside the first file sink's output folder" doc:"The state file, a local path or a blob URL."`
}
