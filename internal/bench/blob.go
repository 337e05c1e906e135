package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/sink/azureblob"
)

// blobCompare measures the Parquet output uploaded to Azure Blob Storage
// (Azurite, started here unless AZURE_STORAGE_CONNECTION_STRING names an
// account) against the same output written to a local file, each in a
// child process running the job as `pbicopy run` does, and reports both
// throughputs, their ratio and each child's peak RSS.
//
//	go run ./internal/bench -rows 1000000 -sink blobparquet
func blobCompare(rows int, dir string, runs int, blockSize int64, concurrency, streamMB int) error {
	resp, err := Response(dir, rows)
	if err != nil {
		return fmt.Errorf("generate the response: %w", err)
	}
	conn := os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
	where := "the account of AZURE_STORAGE_CONNECTION_STRING"
	if conn == "" {
		az, err := sinktest.LaunchAzurite(context.Background())
		if err != nil {
			return err
		}
		defer az.Stop()
		conn, where = az.ConnectionString, "Azurite (in memory, on this machine) at "+az.Endpoint
	}
	cc, err := container.NewClientFromConnectionString(conn, "pbicopy-bench", nil)
	if err != nil {
		return err
	}
	if _, err := cc.Create(context.Background(), nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("create container pbicopy-bench: %w", err)
	}
	storage := ""
	if blockSize != 0 || concurrency != 0 {
		storage = fmt.Sprintf("storage: { blockSize: %d, concurrency: %d }\n", blockSize, concurrency)
	}
	local := filepath.Join(dir, "out.parquet")
	type result struct {
		name  string
		secs  float64
		rss   int64
		bytes int64
	}
	var results []result
	for _, c := range []struct{ name, path string }{{"local file", local}, {"blob", "az://pbicopy-bench/out.parquet"}} {
		job := filepath.Join(dir, "bench-blob.yaml")
		text := fmt.Sprintf("name: bench\nsource: { file: %q }\n%s%ssinks:\n  - parquet: { path: %q }\n", resp, Mapping, storage, c.path)
		if err := os.WriteFile(job, []byte(text), 0o644); err != nil {
			return err
		}
		d, rss, _, err := runChild(job, []string{"AZURE_STORAGE_CONNECTION_STRING=" + conn}, runs)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		var size int64
		if c.path == local {
			st, err := os.Stat(local)
			if err != nil {
				return err
			}
			size = st.Size()
		} else {
			props, err := cc.NewBlobClient("out.parquet").GetProperties(context.Background(), nil)
			if err != nil {
				return err
			}
			size = *props.ContentLength
		}
		results = append(results, result{c.name, d.Seconds(), rss, size})
	}
	fmt.Printf("1 Parquet output of %d rows, %.1f MB; blob: %s; block %d bytes x %d (0: defaults); best of %d runs\n",
		rows, float64(results[0].bytes)/1e6, where, blockSize, concurrency, runs)
	for _, r := range results {
		fmt.Printf("  %-10s %6.2fs  %8.0f rows/s  %6.1f MB/s of Parquet  peak RSS %6.1f MB\n",
			r.name, r.secs, float64(rows)/r.secs, float64(r.bytes)/1e6/r.secs, float64(r.rss)/1e6)
	}
	fmt.Printf("  blob/local throughput ratio: %.2f\n", results[0].secs/results[1].secs)

	// The destinations alone, with an incompressible stream large enough
	// to keep every upload slot busy.
	if streamMB <= 0 {
		return nil
	}
	fmt.Printf("%d MB of random bytes streamed through each destination, in 256 KiB writes (as the CSV encoder makes):\n", streamMB)
	var secs [2]float64
	for i, to := range []string{filepath.Join(dir, "stream.bin"), "az://pbicopy-bench/stream.bin"} {
		env := []string{"AZURE_STORAGE_CONNECTION_STRING=" + conn, streamEnv + "=" + to, streamMBEnv + "=" + fmt.Sprint(streamMB),
			"PBICOPY_BENCH_BLOCKSIZE=" + fmt.Sprint(blockSize), "PBICOPY_BENCH_CONCURRENCY=" + fmt.Sprint(concurrency)}
		d, rss, cpu, err := runChild("", env, runs)
		if err != nil {
			return fmt.Errorf("stream to %s: %w", to, err)
		}
		secs[i] = d.Seconds()
		fmt.Printf("  %-10s %6.2fs  %7.1f MB/s  peak RSS %6.1f MB  pbicopy CPU %5.2fs\n", []string{"local file", "blob"}[i], secs[i], float64(streamMB)/secs[i], float64(rss)/1e6, cpu.Seconds())
	}
	fmt.Printf("  blob/local throughput ratio: %.2f\n", secs[0]/secs[1])
	_ = os.Remove(filepath.Join(dir, "stream.bin"))
	return nil
}

// The environment of a stream child: where to stream to, and how many MB.
const (
	streamEnv   = "PBICOPY_BENCH_STREAM"
	streamMBEnv = "PBICOPY_BENCH_STREAM_MB"
)

// streamChild writes pseudo-random bytes through one destination, a local
// file or a blob (az://<container>/<name> in the account of
// AZURE_STORAGE_CONNECTION_STRING), under the memory limit pbicopy sets.
func streamChild(to string) int {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(pipeline.DefaultMemoryLimit)
	}
	if err := stream(to); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func stream(to string) error {
	mb, err := strconv.Atoi(os.Getenv(streamMBEnv))
	if err != nil {
		return err
	}
	ctx := context.Background()
	var dst sink.Destination
	if rest, ok := strings.CutPrefix(to, "az://"); ok {
		cname, name, _ := strings.Cut(rest, "/")
		bs, _ := strconv.ParseInt(os.Getenv("PBICOPY_BENCH_BLOCKSIZE"), 10, 64)
		conc, _ := strconv.Atoi(os.Getenv("PBICOPY_BENCH_CONCURRENCY"))
		c, err := azureblob.OpenContainer(sink.BlobAccount{ConnectionString: os.Getenv("AZURE_STORAGE_CONNECTION_STRING")}, cname, sink.BlobOptions{BlockSize: bs, Concurrency: conc, Job: "bench"}, nil, nil)
		if err != nil {
			return err
		}
		if dst, err = c.Open(ctx, name, true); err != nil {
			return err
		}
	} else if dst, err = sink.OpenLocal(to); err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 256<<10)
	for range mb * 4 {
		_, _ = rng.Read(buf)
		if _, err := dst.Write(buf); err != nil {
			_ = dst.Abort(ctx)
			return err
		}
	}
	_, err = dst.Commit(ctx, 0)
	return err
}

// runChild runs the job (or, with job empty, what env says) in a child
// process runs times, with env added to the environment, and returns the
// best time, the largest peak RSS and the CPU time of the best run.
func runChild(job string, env []string, runs int) (best time.Duration, rss int64, cpu time.Duration, err error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, 0, err
	}
	for range max(runs, 1) {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), env...)
		if job != "" {
			cmd.Env = append(cmd.Env, childEnv+"="+job)
		}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		t0 := time.Now()
		r, err := runMeasured(cmd)
		if err != nil {
			return 0, 0, 0, err
		}
		if d := time.Since(t0); best == 0 || d < best {
			best, cpu = d, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()
		}
		rss = max(rss, r)
	}
	return best, rss, cpu, nil
}
