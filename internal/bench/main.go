// Command bench (pbicopy-bench) measures the whole pipeline end to end: it generates
// a synthetic executeQueries response (the fake Power BI's 10-column sales
// table, about 290 bytes of JSON a row), then runs a job replaying it into
// the chosen sink in a child process, and reports rows/s, MB/s of JSON and
// the child's peak RSS (the process's maximum resident set, from rusage).
//
//	go run ./internal/bench -rows 1000000 -sink parquet
//	go run ./internal/bench -rows 3000000 -sink parquet   # memory must not grow
//	go run ./internal/bench -api executeDaxQueries -sink parquet   # from the fake over HTTPS
//	go run ./internal/bench -api executeQueries -sink parquet      # the same rows as JSON
//	go run ./internal/bench -serve -sink parquet   # serve both; it prints the farm-bench line
//	go run ./internal/bench -sink postgres -pgmode replace  # beside psql \copy
//	go run ./internal/bench -pgparts 4 -rows 25000 -latency 3s -workers 4
//
// The response file is generated once per row count into -dir and reused.
// PBICOPY_BENCH_CPUPROFILE=FILE writes the child's CPU profile to FILE, and
// PBICOPY_BENCH_TRACE=FILE its execution trace (go tool trace).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/sink/azureblob"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

const childEnv = "PBICOPY_BENCH_CHILD"

// Mapping is the declared mapping of the benchmark table.
const Mapping = fakepbi.BenchMapping

func main() {
	if job := os.Getenv(childEnv); job != "" {
		code := child(job)
		reportHWM()
		os.Exit(code)
	}
	if to := os.Getenv(streamEnv); to != "" {
		code := streamChild(to)
		reportHWM()
		os.Exit(code)
	}
	rows := flag.Int("rows", 1_000_000, "rows in the synthetic response")
	sinks := flag.String("sink", "parquet", "sinks to write: parquet, csv, postgres, or a comma-separated list")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "pbicopy-bench"), "folder for the response and the outputs")
	pgDSN := flag.String("pg", "host=127.0.0.1 user=postgres dbname=postgres", "PostgreSQL DSN for -sink postgres")
	runs := flag.Int("runs", 1, "runs (the best is reported)")
	pagedMode := flag.Bool("paged", false, "measure a keyset-paged extract against the fake Power BI (request rate vs the limit, overhead per page)")
	latency := flag.Duration("latency", 300*time.Millisecond, "with -paged: the fake's latency per query")
	rate := flag.Float64("rate", 120, "with -paged: requests per minute (the fake enforces it too)")
	blockSize := flag.Int64("blocksize", 0, "with -sink blobparquet: storage.blockSize (0: the default)")
	blobConc := flag.Int("concurrency", 0, "with -sink blobparquet: storage.concurrency (0: the default)")
	streamMB := flag.Int("stream", 1024, "with -sink blobparquet: also stream this many MB of random bytes through each destination alone (0: not)")
	prerender := flag.Bool("prerender", true, "with -api: the fake renders its answer before the run and replays the bytes (false: it renders while it sends, on the same cores)")
	serveMode := flag.Bool("serve", false, "serve the benchmark table from the fake (prerendered, both APIs), write a job for each, and wait: for timing whole processes with farm-bench")
	api := flag.String("api", "", "query the fake Power BI over HTTPS through this API (executeQueries or executeDaxQueries) instead of replaying a saved response")
	pgMode := flag.String("pgmode", "append", "with -sink postgres: the sink's mode (append or replace)")
	pgKeep := flag.Bool("pgkeep", false, "with -sink postgres: load over the rows of the previous run instead of into a new table")
	withPSQL := flag.Bool("psql", true, "with -sink postgres: also time psql \\copy of the same rows")
	pgParts := flag.Int("pgparts", 0, "measure a replacePartition backfill of this many partitions of -rows rows each into one PostgreSQL table, with -latency a query")
	workers := flag.Int("workers", 1, "with -pgparts: partitions at a time (--concurrency)")
	flag.Parse()
	if *serveMode {
		if err := serve(*rows, *sinks, *dir, *pgDSN); err != nil {
			fmt.Fprintln(os.Stderr, "pbicopy-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *api != "" {
		if err := overHTTPS(*rows, *api, *sinks, *dir, *pgDSN, *prerender); err != nil {
			fmt.Fprintln(os.Stderr, "pbicopy-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *pgParts > 0 {
		if err := pgPartitions(*pgParts, *rows, *workers, *latency, *pgDSN, *dir); err != nil {
			fmt.Fprintln(os.Stderr, "pbicopy-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *sinks == "blobparquet" {
		// Parquet to Azure Blob (Azurite) against the same output to a local file.
		if err := blobCompare(*rows, *dir, *runs, *blockSize, *blobConc, *streamMB); err != nil {
			fmt.Fprintln(os.Stderr, "pbicopy-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *pagedMode {
		if err := paged(*rows, *dir, *latency, *rate); err != nil {
			fmt.Fprintln(os.Stderr, "pbicopy-bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := parent(*rows, *sinks, *dir, *pgDSN, *pgMode, *pgKeep, *withPSQL, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "pbicopy-bench:", err)
		os.Exit(1)
	}
}

// Response generates (once) the synthetic response of rows rows and returns
// its path.
func Response(dir string, rows int) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("response-%d.json", rows))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	opts := fakepbi.Options{MaxRows: -1, MaxValues: -1, MaxBytes: -1}
	if err := fakepbi.WriteResponse(w, []*fakepbi.Table{fakepbi.BenchTable(rows)}, "EVALUATE Sales", true, opts); err != nil {
		f.Close()
		return "", err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

func parent(rows int, sinks, dir, pgDSN, pgMode string, pgKeep, withPSQL bool, runs int) error {
	start := time.Now()
	resp, err := Response(dir, rows)
	if err != nil {
		return fmt.Errorf("generate the response: %w", err)
	}
	st, err := os.Stat(resp)
	if err != nil {
		return err
	}
	fmt.Printf("response: %s, %d rows, %.1f MB (ready in %s)\n", resp, rows, float64(st.Size())/1e6, time.Since(start).Round(time.Millisecond))
	sinkYAML, err := sinkBlock(sinks, dir, pgDSN, pgMode)
	if err != nil {
		return err
	}
	job := filepath.Join(dir, "bench.yaml")
	text := fmt.Sprintf("name: bench\nsource: { file: %q }\n%ssinks:\n%s", resp, Mapping, sinkYAML)
	if err := os.WriteFile(job, []byte(text), 0o644); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	best := time.Duration(0)
	var bestRSS int64
	for range runs {
		if strings.Contains(sinks, "postgres") {
			// Both loads start from an empty table after a checkpoint
			// (-pgkeep: pbicopy's holds the rows of the previous run).
			if err := dropBenchTable(pgDSN, pgKeep); err != nil {
				return err
			}
		}
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), childEnv+"="+job)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		t0 := time.Now()
		rss, err := runMeasured(cmd)
		if err != nil {
			return err
		}
		d := time.Since(t0)
		if best == 0 || d < best {
			best = d
		}
		bestRSS = max(bestRSS, rss)
	}
	secs := best.Seconds()
	fmt.Printf("sink %s: %d rows in %.2fs = %.0f rows/s, %.1f MB/s of JSON, peak RSS %.1f MB (GOMAXPROCS default, GOMEMLIMIT %s)\n",
		sinks, rows, secs, float64(rows)/secs, float64(st.Size())/1e6/secs, float64(bestRSS)/1e6, memLimitText())
	if strings.Contains(sinks, "postgres") && withPSQL {
		return psqlCopy(self, dir, resp, pgDSN, rows, secs)
	}
	return nil
}

// psqlCopy measures, in the same run, psql's \copy of the equivalent CSV
// into an identical table: the yardstick for the PostgreSQL sink.
func psqlCopy(self, dir, resp, pgDSN string, rows int, pbicopySecs float64) error {
	csvPath := filepath.Join(dir, "out.csv")
	job := filepath.Join(dir, "bench-csv.yaml")
	text := fmt.Sprintf("name: bench-csv\nsource: { file: %q }\n%ssinks:\n  - csv: { path: %q }\n", resp, Mapping, csvPath)
	if err := os.WriteFile(job, []byte(text), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"="+job)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("write the CSV: %w", err)
	}
	psql := func(sql string) *exec.Cmd {
		c := exec.Command("psql", pgDSN, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql)
		c.Stderr = os.Stderr
		return c
	}
	if err := psql("drop table if exists public.pbicopy_bench_psql").Run(); err != nil {
		return fmt.Errorf("psql: %w", err)
	}
	if err := psql("create table public.pbicopy_bench_psql (like public.pbicopy_bench)").Run(); err != nil {
		return fmt.Errorf("psql: %w", err)
	}
	if err := psql("checkpoint").Run(); err != nil {
		return fmt.Errorf("psql: %w", err)
	}
	t0 := time.Now()
	if err := psql(fmt.Sprintf(`\copy public.pbicopy_bench_psql from '%s' csv header`, csvPath)).Run(); err != nil {
		return fmt.Errorf("psql \\copy: %w", err)
	}
	d := time.Since(t0).Seconds()
	fmt.Printf("psql \\copy of the equivalent CSV: %.2fs = %.0f rows/s; pbicopy rows/s (rows committed) / psql rows/s = %.2fx\n",
		d, float64(rows)/d, d/pbicopySecs)
	return psql("drop table public.pbicopy_bench_psql").Run()
}

func memLimitText() string {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return v
	}
	return fmt.Sprintf("%d MiB (pbicopy default)", pipeline.DefaultMemoryLimit>>20)
}

// child runs the job as `pbicopy run` does, except for the service's 15 MB
// limit: the synthetic responses it replays are far larger than any the
// service sends, and a saved response is held to that limit like a live one.
func child(jobPath string) int {
	for _, r := range []struct {
		env   string
		start func(io.Writer) error
		stop  func()
	}{
		{"PBICOPY_BENCH_CPUPROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile},
		{"PBICOPY_BENCH_TRACE", trace.Start, trace.Stop},
	} {
		path := os.Getenv(r.env)
		if path == "" {
			continue
		}
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		if err := r.start(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer r.stop()
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(pipeline.DefaultMemoryLimit)
	}
	jobs, _, err := jobfile.Loader{}.LoadPaths([]string{jobPath})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r := &pipeline.Runner{Sources: &powerbi.Connector{ResultBytes: -1}, Storage: azureblob.Storage{}, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	res := r.Run(context.Background(), jobs[0])
	if res.Err() != nil {
		fmt.Fprintln(os.Stderr, res.Err())
		return 1
	}
	return 0
}
