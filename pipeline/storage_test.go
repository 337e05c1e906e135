package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// TestLocalSplitRun runs a job whose local output is split into parts and
// checks the manifest against the parts.
func TestLocalSplitRun(t *testing.T) {
	dir := t.TempDir()
	resp := writeDemoResponse(t, dir)
	text := fmt.Sprintf("name: split-job\nsource: { file: %q }\n%s\nsinks:\n  - csv: { path: %q, maxRowsPerFile: 300 }\n",
		resp, salesMapping, filepath.Join(dir, "out", "part-{{ .part }}.csv"))
	job, _, err := jobfile.Loader{}.Load("split.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	res := (&Runner{Sources: &powerbi.Connector{}, BatchRows: 128}).Run(context.Background(), job)
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", sink.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m sink.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Job != "split-job" || m.Format != "csv" || m.Rows != res.Rows || len(m.Parts) < 2 || m.Parts[0].Path != "part-00000-g1.csv" || m.Parts[0].Rows != 300 {
		t.Errorf("manifest %s", data)
	}
	if len(res.Sinks) != 1 || res.Sinks[0].Location != filepath.Join(dir, "out", sink.ManifestName) || len(res.Sinks[0].Files) != len(m.Parts) {
		t.Errorf("result %+v", res.Sinks)
	}
}
