// Package pipeline loads and validates job files and runs them: the source
// streams rows, the mapping turns them into Arrow record batches, and every
// sink of the job receives the same batches and publishes them atomically.
package pipeline

import (
	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/sink"
)

// Job is a job file as written. Field tags are the YAML field names; the
// loader decodes strictly (unknown fields are errors) and expands ${ENV}
// references in values.
type Job struct {
	Name      string               `yaml:"name" doc:"Job name: [a-z0-9][a-z0-9-]*, used in logs, paths and state."`
	Source    SourceSpec           `yaml:"source" doc:"Where the rows come from: powerbi or file."`
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

// SourceSpec holds exactly one source.
type SourceSpec struct {
	PowerBI *PowerBISpec `yaml:"powerbi" doc:"Query a Power BI semantic model through the executeQueries REST API."`
	File    string       `yaml:"file" doc:"Replay a saved executeQueries response (JSON) instead of calling Power BI."`
}

// PowerBISpec is a query against one Power BI dataset.
type PowerBISpec struct {
	Workspace        string         `yaml:"workspace" doc:"Workspace (group) id."`
	Dataset          string         `yaml:"dataset" doc:"Dataset (semantic model) id."`
	Query            string         `yaml:"query" doc:"DAX query; a Go template over the params, where every value goes through {{ dax .name }}."`
	Table            string         `yaml:"table" doc:"A DAX table expression to extract page by page, instead of query (needs paging)."`
	Paging           *PagingSpec    `yaml:"paging" doc:"Keyset paging over table, past the service's 100,000-row / 1,000,000-value / 15 MB limits."`
	Endpoint         string         `yaml:"endpoint" doc:"REST endpoint; default the cloud's (https://api.powerbi.com)."`
	Cloud            string         `yaml:"cloud" doc:"public (default), usgov or china: sets the Entra ID authority, the Power BI endpoint and scope."`
	ImpersonatedUser string         `yaml:"impersonatedUser" doc:"UPN to impersonate (row-level security); not usable by service principals on RLS models."`
	RefreshBefore    bool           `yaml:"refreshBefore" doc:"Refresh the dataset and wait for the refresh to complete before extracting (up to 2 hours); a failed refresh fails the job before any data moves. Needs the Contributor role on the workspace."`
	Auth             azure.AuthSpec `yaml:"auth" doc:"Service principal credentials."`
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

// PagingSpec is keyset paging on a unique, ordered key.
type PagingSpec struct {
	Key      string `yaml:"key" doc:"The unique key column, as a DAX column reference such as Sales[OrderID]; rows come back ordered by it."`
	PageRows string `yaml:"pageRows" doc:"Rows per page: auto (default: as many as fit the service's limits, with margin) or a number."`
}

// StateSpec says where partition state is kept.
type StateSpec struct {
	Path string `yaml:"path" doc:"The state file; default .pbicopy-state/<job>.json beside the first file sink's output folder."`
}
