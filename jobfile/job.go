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
	Name      string               `yaml:"name" doc:"Job name: [a-z0-9][a-z0-9-]*, used in logs, paths and state."`
	Source    source.Spec          `yaml:"source" doc:"Where the rows come from: powerbi or file."`
	Mapping   *MappingSpec         `yaml:"mapping" doc:"Column mapping; omitted, columns are inferred from the data."`
	Sinks     []sink.Spec          `yaml:"sinks" doc:"Where the rows go; every sink receives every row."`
	Params    map[string]ParamSpec `yaml:"params" doc:"Typed template parameters for the query and output paths, by name."`
	Partition *PartitionSpec       `yaml:"partition" doc:"Run one partition per step of a parameter (backfills with --from/--to)."`
	State     *StateSpec           `yaml:"state" doc:"Where completed partitions are recorded for --resume."`
	Storage   *sink.StorageSpec    `yaml:"storage" doc:"How file sinks with a blob path (az://<container>/<path>) reach Azure Blob Storage: account, credential, upload tuning."`

	// File is the path the job was loaded from ("" for an embedded job).
	File  string `yaml:"-"`
	lines lineIndex
}

// MappingSpec maps row keys to typed columns.
type MappingSpec struct {
	Columns  []ColumnSpec `yaml:"columns" doc:"Output columns, in order."`
	Unmapped string       `yaml:"unmapped" doc:"error (default) or ignore: what to do with a row key no column maps."`
}

// ColumnSpec maps one row key to one typed column.
type ColumnSpec struct {
	From string `yaml:"from" doc:"Row key as Power BI sends it: Table[Column] or [Name]."`
	To   string `yaml:"to" doc:"Output column name."`
	Type string `yaml:"type" doc:"string, int64, float64, decimal(P,S), bool, date or timestamp."`
}

// ParamSpec declares a template parameter.
type ParamSpec struct {
	Type    string `yaml:"type" doc:"date, int or string."`
	Default string `yaml:"default" doc:"Value when --param does not give one; dates may be relative: today, yesterday, today-7d, today+1d, today-1mo."`
}

// PartitionSpec splits a run into one partition per step of a parameter.
type PartitionSpec struct {
	Param string `yaml:"param" doc:"The parameter that varies; --from and --to give its range."`
	Step  string `yaml:"step" doc:"Step between partitions: Nd (days) or Nmo (months) for a date parameter, an integer for an int parameter."`
}

// StateSpec says where partition state is kept.
type StateSpec struct {
	Path string `yaml:"path" doc:"The state file; default .pbicopy-state/<job>.json beside the first file sink's output folder."`
}
