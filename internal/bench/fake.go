package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

// overHTTPS runs the benchmark job against the fake Power BI over HTTPS, in
// a child process, through api (executeQueries or executeDaxQueries): the
// fake serves the rows of the benchmark table in one response with its
// limits lifted (the JSON API's 100,000-row / 15 MB caps would otherwise
// cut it), so that both APIs move the same rows with the same mapping into
// the same sinks. The fake runs in this process; the figures are the
// child's (wall from start to exit, peak RSS from rusage). With prerender
// the fake renders the answer before the child starts and replays its
// bytes, so that its own work (as much CPU as the client's, on a machine
// with two cores) stays out of the figures, as the real service's does.
func overHTTPS(rows int, api, sinks, dir, pgDSN string, prerender bool) error {
	srv, err := startBenchFake(rows, dir)
	if err != nil {
		return err
	}
	defer srv.Close()
	if prerender {
		if err := srv.Prerender(api, benchQuery); err != nil {
			return err
		}
	}
	cert, err := writeCert(srv, dir)
	if err != nil {
		return err
	}
	job, err := writeBenchJob(srv, api, sinks, dir, pgDSN)
	if err != nil {
		return err
	}
	if strings.Contains(sinks, "postgres") {
		if err := dropBenchTable(pgDSN, false); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"="+job, "SSL_CERT_FILE="+cert)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	t0 := time.Now()
	rss, err := runMeasured(cmd)
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	fmt.Printf("%s over HTTPS -> %s: %d rows in %.2fs = %.0f rows/s; child CPU %.2fs = %.0f rows per CPU-second; child peak RSS %.1f MB (GOMEMLIMIT %s)\n",
		api, sinks, rows, secs, float64(rows)/secs, cpu, float64(rows)/cpu, float64(rss)/1e6, memLimitText())
	if strings.Contains(sinks, "postgres") {
		resp, err := Response(dir, rows)
		if err != nil {
			return err
		}
		return psqlCopy(self, dir, resp, pgDSN, rows, secs)
	}
	return nil
}

// startBenchFake makes dir and starts the fake with the benchmark table of
// rows rows, in one answer (the JSON API's caps lifted).
func startBenchFake(rows int, dir string) (*fakepbi.Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return fakepbi.Start(fakepbi.Options{Tables: []*fakepbi.Table{fakepbi.BenchTable(rows)}, MaxRows: -1, MaxValues: -1, MaxBytes: -1})
}

// writeCert writes the fake's certificate into dir, for SSL_CERT_FILE.
func writeCert(srv *fakepbi.Server, dir string) (string, error) {
	cert := filepath.Join(dir, "fake-cert.pem")
	return cert, os.WriteFile(cert, srv.CertificatePEM(), 0o644)
}

// writeBenchJob writes the benchmark job for api against srv into dir and
// returns its path.
func writeBenchJob(srv *fakepbi.Server, api, sinks, dir, pgDSN string) (string, error) {
	sinkYAML, err := sinkBlock(sinks, dir, pgDSN, "append")
	if err != nil {
		return "", err
	}
	o := srv.Options()
	text := fmt.Sprintf(`name: bench-%s
source:
  powerbi:
    api: %s
    workspace: %s
    dataset: %s
    endpoint: %s
    query: %s
    auth: { tenant: %q, clientId: %q, clientSecret: %q, authorityHost: %q }
%ssinks:
%s`, strings.ToLower(api), api, o.WorkspaceID, o.DatasetID, srv.URL(), benchQuery, o.TenantID, o.ClientID, o.ClientSecret, srv.AuthorityHost(), Mapping, sinkYAML)
	job := filepath.Join(dir, "bench-"+api+".yaml")
	return job, os.WriteFile(job, []byte(text), 0o644)
}

// serve starts the fake with the benchmark table, prerenders its answer
// through both APIs, writes a job for each (to sinks, in dir) and the
// certificate, prints how to time them, and serves until interrupted. The
// jobs run in this program's child mode, the pipeline as pbicopy run runs
// it but for the service's 15 MB guard, which the JSON job's one 1M-row
// answer passes (the real service would cut it).
func serve(rows int, sinks, dir, pgDSN string) error {
	srv, err := startBenchFake(rows, dir)
	if err != nil {
		return err
	}
	defer srv.Close()
	cert, err := writeCert(srv, dir)
	if err != nil {
		return err
	}
	var jobs []string
	for _, api := range []string{"executeDaxQueries", "executeQueries"} {
		if err := srv.Prerender(api, benchQuery); err != nil {
			return err
		}
		job, err := writeBenchJob(srv, api, sinks, dir, pgDSN)
		if err != nil {
			return err
		}
		jobs = append(jobs, job)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	run := func(job string) string {
		return fmt.Sprintf("env %s=%s SSL_CERT_FILE=%s %s", childEnv, job, cert, self)
	}
	fmt.Printf("serving %d rows at %s; time the Arrow job against the JSON job with:\n  farm-bench --vs '%s' -- %s\n",
		rows, srv.URL(), run(jobs[1]), run(jobs[0]))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// benchQuery is the query of the benchmark jobs.
const benchQuery = "EVALUATE Sales"

// sinkBlock is the sinks: list of a benchmark job.
func sinkBlock(sinks, dir, pgDSN, pgMode string) (string, error) {
	var sb strings.Builder
	for _, s := range strings.Split(sinks, ",") {
		switch s {
		case "parquet":
			fmt.Fprintf(&sb, "  - parquet: { path: %q }\n", filepath.Join(dir, "out.parquet"))
		case "csv":
			fmt.Fprintf(&sb, "  - csv: { path: %q }\n", filepath.Join(dir, "out.csv"))
		case "postgres":
			fmt.Fprintf(&sb, "  - postgres: { dsn: %q, table: public.pbicopy_bench, mode: %s }\n", pgDSN, pgMode)
		default:
			return "", fmt.Errorf("unknown sink %q", s)
		}
	}
	return sb.String(), nil
}

// dropBenchTable starts a PostgreSQL load from an empty table after a
// checkpoint; keep keeps the rows of the previous run.
func dropBenchTable(pgDSN string, keep bool) error {
	drop := "drop table if exists public.pbicopy_bench"
	if keep {
		drop = "select 1"
	}
	c := exec.Command("psql", pgDSN, "-q", "-c", drop, "-c", "checkpoint")
	c.Stderr = os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("psql: %w", err)
	}
	return nil
}
