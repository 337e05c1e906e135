package pipeline

import (
	"testing"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

// TestFingerprintNamesEveryOutput checks that the fingerprint --resume
// compares changes with whatever a partition publishes to: a file sink's
// path, and a table sink's table, mode and database.
func TestFingerprintNamesEveryOutput(t *testing.T) {
	job := func(sinks ...sink.Spec) *jobfile.Job {
		return &jobfile.Job{Name: "j", Source: source.Spec{File: "r.json"}, Sinks: sinks}
	}
	table := func(dsn, table, mode string) sink.Spec {
		return sink.Spec{Postgres: &sink.PostgresOptions{DSN: dsn, Table: table, Mode: mode, PartitionColumn: map[string]string{"replacePartition": "day"}[mode]}}
	}
	const dsn = "host=db1 port=5432 dbname=dw user=u password=secret"
	part := jobfile.Partition{Key: "2024-01-01", Params: map[string]any{"day": "2024-01-01"}}
	fp := func(j *jobfile.Job) string {
		t.Helper()
		f, err := fingerprint(j, part)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	base := fp(job(table(dsn, "analytics.sales", "merge")))
	if base != fp(job(table(dsn, "analytics.sales", "merge"))) {
		t.Fatal("the fingerprint is not stable")
	}
	for name, other := range map[string]*jobfile.Job{
		"another table":    job(table(dsn, "analytics.sales2", "merge")),
		"another mode":     job(table(dsn, "analytics.sales", "replacePartition")),
		"another database": job(table("host=db1 port=5432 dbname=dw2 user=u", "analytics.sales", "merge")),
		"another server":   job(table("host=db2 port=5432 dbname=dw user=u", "analytics.sales", "merge")),
		"another sink":     job(table(dsn, "analytics.sales", "merge"), sink.Spec{CSV: &sink.CSVOptions{Path: "out/{{ .day }}.csv"}}),
	} {
		if fp(other) == base {
			t.Errorf("%s: the fingerprint did not change", name)
		}
	}
	if fp(job(table("host=db1 port=5432 dbname=dw user=u password=other", "analytics.sales", "merge"))) != base {
		t.Error("a new password changed the fingerprint: only where the rows go should")
	}
	if fp(job(sink.Spec{CSV: &sink.CSVOptions{Path: "a/{{ .day }}.csv"}})) == fp(job(sink.Spec{CSV: &sink.CSVOptions{Path: "b/{{ .day }}.csv"}})) {
		t.Error("another output path did not change the fingerprint")
	}
}
