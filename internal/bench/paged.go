package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// paged measures a keyset-paged extract against the fake Power BI over
// HTTPS with a per-query latency and the service's request limit: the
// request rate achieved as a fraction of the limit, and the local overhead
// per page (measured in a second run without the limit).
func paged(rows int, dir string, latency time.Duration, rate float64) error {
	for _, limited := range []bool{true, false} {
		opts := fakepbi.Options{Tables: []*fakepbi.Table{fakepbi.BenchTable(rows)}, Latency: latency}
		if limited {
			opts.RateLimit, opts.RatePer = int(rate), time.Minute
		}
		srv, err := fakepbi.Start(opts)
		if err != nil {
			return err
		}
		o := srv.Options()
		env := map[string]string{"WS": o.WorkspaceID, "DS": o.DatasetID, "EP": srv.URL(), "AUTH": srv.AuthorityHost(),
			"TENANT": o.TenantID, "CLIENT": o.ClientID, "SECRET": o.ClientSecret}
		text := fmt.Sprintf(`name: paged-bench
source:
  powerbi:
    workspace: ${WS}
    dataset: ${DS}
    endpoint: ${EP}
    table: Sales
    paging: { key: "Sales[OrderID]" }
    auth: { tenant: "${TENANT}", clientId: "${CLIENT}", clientSecret: "${SECRET}", authorityHost: "${AUTH}" }
%ssinks:
  - parquet: { path: %q }
`, Mapping, filepath.Join(dir, "paged.parquet"))
		job, _, err := jobfile.Loader{LookupEnv: func(n string) (string, bool) { v, ok := env[n]; return v, ok }}.Load("paged.yaml", []byte(text))
		if err != nil {
			srv.Close()
			return err
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		conn := &powerbi.Connector{HTTPClient: srv.Client(), Rate: rate, Logger: log}
		if !limited {
			conn.Rate = -1
		}
		r := &pipeline.Runner{Sources: conn, Logger: log}
		start := time.Now()
		res := r.Run(context.Background(), job)
		wall := time.Since(start)
		qs := srv.Queries()
		srv.Close()
		if res.Err() != nil {
			return res.Err()
		}
		if limited {
			span := qs[len(qs)-1].Received.Sub(qs[0].Received)
			steady := float64(len(qs)-1) / span.Minutes()
			fmt.Printf("paged extract: %d rows in %d pages (%d cut by the 15 MB limit and continued), %s wall, latency %s\n",
				res.Rows, res.Pages, res.Truncated, wall.Round(time.Millisecond), latency)
			fmt.Printf("  request rate between the first and the last request: %.1f/min = %.0f%% of the %g/min limit; %d throttled\n",
				steady, 100*steady/rate, rate, res.Throttled)
		} else {
			overhead := (wall - time.Duration(len(qs))*latency) / time.Duration(len(qs))
			fmt.Printf("  without the limit: %s wall for %d pages; local overhead per page (wall - latency) = %s (%.0f rows/s through decode, mapping and Parquet)\n",
				wall.Round(time.Millisecond), len(qs), overhead.Round(time.Millisecond), float64(res.Rows)/(wall-time.Duration(len(qs))*latency).Seconds())
		}
	}
	return nil
}
