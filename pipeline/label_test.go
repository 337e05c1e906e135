package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

var confidential = &fakepbi.Label{ID: "87ba5c36-b7cf-4793-bbc2-bd5b3a9f95ca", Name: "Confidential"}

// labelJob is the Sales job with extra source lines.
func (f *fixture) labelJob(t *testing.T, lines string) *jobfile.Job {
	t.Helper()
	text := fmt.Sprintf(`name: labelled
%s%s
sinks:
  - parquet: { path: %q }
  - csv: { path: %q }
`, fakeSource(queryLine("EVALUATE Sales")+lines, fakeAuth), salesMapping, filepath.Join(f.dir, "out.parquet"), filepath.Join(f.dir, "out.csv"))
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("labelled.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// TestSensitivityLabelCarried: the label the service sends with the data
// reaches the log, the summary and the Parquet file's key-value metadata.
func TestSensitivityLabelCarried(t *testing.T) {
	f := newFixture(t, fakepbi.Options{SensitivityLabel: confidential})
	res := f.runner(nil).Run(context.Background(), f.labelJob(t, ""))
	if res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	want := source.Label{ID: confidential.ID, Name: confidential.Name}
	if res.Label == nil || *res.Label != want {
		t.Fatalf("label in the result: %+v", res.Label)
	}
	summary, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(summary), `"sensitivityLabel":{"id":"87ba5c36-b7cf-4793-bbc2-bd5b3a9f95ca","name":"Confidential"}`) {
		t.Errorf("summary: %s", summary)
	}
	if !strings.Contains(f.logs.String(), `msg="the data carries a sensitivity label" job=labelled label=Confidential labelId=87ba5c36-b7cf-4793-bbc2-bd5b3a9f95ca`) {
		t.Errorf("logs:\n%s", f.logs)
	}
	rdr, err := file.OpenParquetFile(filepath.Join(f.dir, "out.parquet"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	kv := rdr.MetaData().KeyValueMetadata()
	if id, name := kv.FindValue("sensitivity_label_id"), kv.FindValue("sensitivity_label_name"); id == nil || *id != confidential.ID || name == nil || *name != "Confidential" {
		t.Errorf("parquet key-value metadata: %v", kv)
	}

	// Without a label: none anywhere.
	plain := newFixture(t, fakepbi.Options{})
	res = plain.runner(nil).Run(context.Background(), plain.labelJob(t, ""))
	if res.Err() != nil || res.Label != nil {
		t.Fatalf("run without a label: %v, label %+v", res.Err(), res.Label)
	}
	rdr2, err := file.OpenParquetFile(filepath.Join(plain.dir, "out.parquet"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr2.Close()
	if v := rdr2.MetaData().KeyValueMetadata().FindValue("sensitivity_label_id"); v != nil {
		t.Errorf("a label in an unlabelled file: %s", *v)
	}
}

// TestSensitivityLabelRefused: sensitivityLabels: refuse fails a job whose
// data carries a label, with a clear message, before anything is published;
// the partitions not started are not run (every one would meet it).
func TestSensitivityLabelRefused(t *testing.T) {
	f := newFixture(t, fakepbi.Options{SensitivityLabel: confidential})
	publishPrevious(t, f)
	res := f.runner(nil).Run(context.Background(), f.labelJob(t, "    sensitivityLabels: refuse\n"))
	want := "the data carries the sensitivity label Confidential (id 87ba5c36-b7cf-4793-bbc2-bd5b3a9f95ca) and source.powerbi.sensitivityLabels is refuse: nothing was published"
	if res.Err() == nil || !strings.Contains(res.Err().Error(), want) || res.Status != Failed {
		t.Fatalf("run: %s %v\nwant %s", res.Status, res.Err(), want)
	}
	if !source.Permanent(res.Err()) {
		t.Error("a refused label is not permanent")
	}
	checkPreviousUntouched(t, f)

	// The same job on unlabelled data runs.
	plain := newFixture(t, fakepbi.Options{})
	if res := plain.runner(nil).Run(context.Background(), plain.labelJob(t, "    sensitivityLabels: refuse\n")); res.Err() != nil {
		t.Fatalf("refuse without a label: %v", res.Err())
	}
}

// TestSensitivityLabelInSplitParts: every part of a split Parquet output,
// the first ones finished while the response is still being read included,
// has the label in its footer, and the manifest records it.
func TestSensitivityLabelInSplitParts(t *testing.T) {
	t.Parallel() // its own fake, folder and outputs
	f := newFixture(t, fakepbi.Options{SensitivityLabel: confidential})
	text := fmt.Sprintf(`name: labelled
%s%s
sinks:
  - parquet: { path: %q, maxRowsPerFile: 2 }
`, fakeSource(queryLine("EVALUATE Sales"), fakeAuth), salesMapping, filepath.Join(f.dir, "part-{{ .part }}.parquet"))
	job, _, err := jobfile.Loader{LookupEnv: f.lookup}.Load("split.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	r := f.runner(nil)
	r.BatchRows = 1 // parts finish while rows still arrive
	if res := r.Run(context.Background(), job); res.Err() != nil {
		t.Fatalf("run: %v", res.Err())
	}
	data, err := os.ReadFile(filepath.Join(f.dir, sink.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m sink.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Parts) < 3 || m.Metadata["sensitivity_label_name"] != "Confidential" || m.Metadata["sensitivity_label_id"] != confidential.ID {
		t.Fatalf("manifest: %s", data)
	}
	for _, p := range m.Parts {
		rdr, err := file.OpenParquetFile(filepath.Join(f.dir, p.Path), false)
		if err != nil {
			t.Fatal(err)
		}
		if v := rdr.MetaData().KeyValueMetadata().FindValue("sensitivity_label_name"); v == nil || *v != "Confidential" {
			t.Errorf("part %s: no label in its footer", p.Path)
		}
		rdr.Close()
	}
}
