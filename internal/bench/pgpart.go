package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// pgPartitions measures a partitioned backfill into one PostgreSQL table
// (mode replacePartition on order_date): parts partitions of perPart rows
// each, one day apart, extracted from the fake Power BI with latency per
// query, workers partitions at a time (--concurrency). The table exists
// and already holds the rows (the steady state of a backfill re-run), so
// the wall time shows how far partitions of one table overlap: with no
// contention it approaches one partition's time, fully serialised it is
// the sum.
func pgPartitions(parts, perPart, workers int, latency time.Duration, pgDSN, dir string) error {
	tbl := fakepbi.BenchTable(parts * perPart)
	value := tbl.Value
	tbl.Value = func(i, c int) any {
		if c == 1 { // OrderDate: perPart rows a day from 2024-01-01
			return time.Date(2024, 1, 1+i/perPart, 0, 0, 0, 0, time.UTC)
		}
		return value(i, c)
	}
	srv, err := fakepbi.Start(fakepbi.Options{Tables: []*fakepbi.Table{tbl}, Latency: latency, MaxRows: -1, MaxValues: -1, MaxBytes: -1})
	if err != nil {
		return err
	}
	defer srv.Close()
	o := srv.Options()
	env := map[string]string{"WS": o.WorkspaceID, "DS": o.DatasetID, "EP": srv.URL(), "AUTH": srv.AuthorityHost(),
		"TENANT": o.TenantID, "CLIENT": o.ClientID, "SECRET": o.ClientSecret, "PG": pgDSN,
		"STATE": filepath.Join(dir, "pgparts-state.json")}
	text := `name: pg-partitions-bench
params:
  day: { type: date }
partition: { param: day, step: 1d }
state: { path: "${STATE}" }
source:
  powerbi:
    workspace: ${WS}
    dataset: ${DS}
    endpoint: ${EP}
    query: "EVALUATE FILTER(Sales, Sales[OrderDate] = {{ dax .day }})"
    auth: { tenant: "${TENANT}", clientId: "${CLIENT}", clientSecret: "${SECRET}", authorityHost: "${AUTH}" }
` + Mapping + `sinks:
  - postgres: { dsn: "${PG}", table: public.pbicopy_bench_parts, mode: replacePartition, partitionColumn: order_date }
`
	job, _, err := jobfile.Loader{LookupEnv: func(n string) (string, bool) { v, ok := env[n]; return v, ok }}.Load("pgpart.yaml", []byte(text))
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	run := func(concurrency int) (time.Duration, *pipeline.JobResult) {
		r := &pipeline.Runner{Sources: &powerbi.Connector{HTTPClient: srv.Client(), Rate: -1, Logger: log}, Logger: log,
			Concurrency: concurrency, From: "2024-01-01", To: time.Date(2024, 1, parts, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)}
		start := time.Now()
		res := r.Run(context.Background(), job)
		return time.Since(start), res
	}
	// The first run creates and fills the table, unmeasured.
	c := exec.Command("psql", pgDSN, "-q", "-c", "drop table if exists public.pbicopy_bench_parts")
	c.Stderr = os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("psql: %w", err)
	}
	srv.SetLatency(0)
	if _, res := run(1); res.Err() != nil {
		return res.Err()
	}
	srv.SetLatency(latency)
	wall, res := run(workers)
	if res.Err() != nil {
		return res.Err()
	}
	fmt.Printf("replacePartition backfill: %d partitions x %d rows, latency %s a query, --concurrency %d: %s wall (%d rows)\n",
		parts, perPart, latency, workers, wall.Round(time.Millisecond), res.Rows)
	return nil
}
