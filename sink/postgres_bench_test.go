package sink

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"

	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// BenchmarkPostgresSink loads the 1,000,000 rows of the file sinks'
// benchmark (benchBatches: 10 columns, batches of 16,384 rows, prebuilt)
// into an empty PostgreSQL table with append, from NewPostgres to a
// returned Commit, and in the same run loads the same rows as CSV with
// psql's \copy into an identical table. Reported: rows/s (pbicopy),
// psql_rows/s, and the process's peak RSS over the timed loop.
func BenchmarkPostgresSink(b *testing.B) {
	db := pgtOpen(b)
	psql, err := exec.LookPath("psql")
	if err != nil {
		sinktest.SkipOrFail(b, "psql is not installed: %v", err)
	}
	const total, batchRows = 1_000_000, 16_384
	mem := memory.NewGoAllocator()
	batches := benchBatches(mem, batchRows, 4)
	defer func() {
		for _, r := range batches {
			r.Release()
		}
	}()
	last := batches[0].NewSlice(0, total%batchRows)
	defer last.Release()
	load := func(s Sink) error {
		ctx := context.Background()
		for i := 0; i < total/batchRows; i++ {
			if err := s.Write(ctx, batches[i%len(batches)]); err != nil {
				return err
			}
		}
		return s.Write(ctx, last)
	}

	// The same rows as CSV, written by the CSV sink.
	csvPath := filepath.Join(b.TempDir(), "bench.csv")
	dst, err := OpenLocal(csvPath)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := NewCSV(dst, benchSchema, CSVOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := load(cs); err != nil {
		b.Fatal(err)
	}
	if _, err := cs.Commit(context.Background()); err != nil {
		b.Fatal(err)
	}

	fields, err := pgFields(benchSchema)
	if err != nil {
		b.Fatal(err)
	}
	db.Exec(pgCreateTableSQL(db.Table("bench_pbicopy"), fields, nil))
	db.Exec(pgCreateTableSQL(db.Table("bench_psql"), fields, nil))
	cfg, err := pgx.ParseConfig(sinktest.PGDSN())
	if err != nil {
		b.Fatal(err)
	}
	psqlArgs := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User, "-d", cfg.Database,
		"-c", fmt.Sprintf(`\copy %s from '%s' csv header`, db.Table("bench_psql"), csvPath)}
	psqlEnv := os.Environ()
	if cfg.Password != "" {
		psqlEnv = append(psqlEnv, "PGPASSWORD="+cfg.Password)
	}
	// Each load starts from an empty table and a fresh checkpoint.
	reset := func(table string) {
		db.Exec("truncate " + db.Table(table))
		db.Exec("checkpoint")
	}
	opts := pgtOpts(db, "bench_pbicopy", pgAppend)

	pgtResetPeakRSS()
	var ours, theirs time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		reset("bench_pbicopy")
		b.StartTimer()
		start := time.Now()
		s, err := NewPostgres(context.Background(), benchSchema, opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := load(s); err != nil {
			b.Fatal(err)
		}
		res, err := s.Commit(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		b.StopTimer()
		if res.Rows != total {
			b.Fatalf("%d rows loaded, want %d", res.Rows, total)
		}

		reset("bench_psql")
		cmd := exec.Command(psql, psqlArgs...)
		cmd.Env = psqlEnv
		start = time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("psql: %v: %s", err, out)
		}
		theirs += time.Since(start)
		if n := db.Count("bench_psql"); n != total {
			b.Fatalf("psql loaded %d rows, want %d", n, total)
		}
		b.StartTimer()
	}
	b.StopTimer()
	var differ int64
	if err := db.Conn.QueryRow(context.Background(), fmt.Sprintf("select count(*) from ((select * from %[1]s except all select * from %[2]s) union all (select * from %[2]s except all select * from %[1]s)) d",
		db.Table("bench_pbicopy"), db.Table("bench_psql"))).Scan(&differ); err != nil || differ != 0 {
		b.Errorf("the two loads differ in %d rows (%v)", differ, err)
	}
	b.ReportMetric(float64(total)*float64(b.N)/ours.Seconds(), "rows/s")
	b.ReportMetric(float64(total)*float64(b.N)/theirs.Seconds(), "psql_rows/s")
	if rss := pgtPeakRSS(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peak_RSS_MB")
	}
}

// pgtResetPeakRSS resets the kernel's record of the process's peak RSS
// (Linux; elsewhere a no-op).
func pgtResetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// pgtPeakRSS is the process's peak RSS in bytes since the last reset, or 0
// where /proc does not tell.
func pgtPeakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
