// Package jobs holds the example job files. demo.yaml is embedded in the
// binary: `pbicopy demo` runs it against the built-in fake Power BI.
package jobs

import _ "embed"

// Demo is the job file run by `pbicopy demo`.
//
//go:embed demo.yaml
var Demo []byte

// DemoFile is the name Demo is reported under.
const DemoFile = "jobs/demo.yaml"
