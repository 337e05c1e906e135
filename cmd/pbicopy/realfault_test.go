package main

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/internal/sinktest"
)

// TestRealFaultsIntegration makes real file system faults under a local
// Parquet output, in a child process: a read-only file system and a full
// disk, each on a small tmpfs mounted for the test (it needs root; mount -t
// tmpfs). Each time: exit 1 without a panic, the summary names the phase
// and the sink, the previous output and the state are byte for byte as
// they were, no temporary file is left, and once the fault is cleared a
// run publishes exactly the new rows.
func TestRealFaultsIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command in child processes")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	az := sinktest.StartAzurite(t)
	kind := killKind{"parquet", `  - parquet: { path: "%[1]s/day={{ .day }}/facts.parquet" }`}
	for _, fault := range []struct {
		name  string
		make  func(t *testing.T, out string) (clear func())
		phase string
	}{
		{"read-only file system", func(t *testing.T, out string) func() {
			mount(t, "-o", "remount,ro", out)
			return func() { mount(t, "-o", "remount,rw", out) }
		}, "open sinks[0] (parquet)"},
		{"full disk", func(t *testing.T, out string) func() {
			filler := filepath.Join(out, "filler")
			fill(t, filler)
			return func() {
				if err := os.Remove(filler); err != nil {
					t.Fatal(err)
				}
			}
		}, "sinks[0] (parquet)"},
	} {
		t.Run(fault.name, func(t *testing.T) {
			w := newKillWorld(t, kind, az, "")
			out := filepath.Join(w.dir, "out")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			mount(t, "-t", "tmpfs", "-o", "size=1m", "tmpfs", out)
			t.Cleanup(func() { _ = exec.Command("umount", out).Run() })

			w.facts.Set(1, fakepbi.NoPoison, -1)
			w.rerun(t, 1)
			before, state := tree(t, out), readOrEmpty(w.state)

			w.facts.Set(2, fakepbi.NoPoison, -1)
			clear := fault.make(t, out)
			summary := filepath.Join(t.TempDir(), "summary.json")
			c, stderr := w.command()
			c.Args = append(c.Args, "--summary", summary)
			code := exitCode(t, c.Run())
			if code != 1 || strings.Contains(stderr.String(), "panic:") {
				t.Errorf("exit %d, want 1:\n%s", code, stderr)
			}
			s := readRunSummary(t, summary)
			job := s.Jobs[0]
			if job.Status != "failed" || !strings.Contains(job.Phase, fault.phase) || job.Error == "" {
				t.Errorf("summary: status %q, phase %q, error %q; want failed in %q", job.Status, job.Phase, job.Error, fault.phase)
			}
			t.Logf("error: %s", job.Error)
			after := tree(t, out)
			delete(after, "filler")
			if !maps.Equal(before, after) {
				t.Errorf("the output folder holds %q, want as before: %q", slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before)))
			}
			// A run without --resume first drops the record of the
			// partition it runs; a failed one records nothing.
			if got := readOrEmpty(w.state); bytes.Contains(got, []byte(`"finishedAt"`)) || len(state) == 0 {
				t.Errorf("the state records the failed partition:\n%s", got)
			}

			clear()
			w.rerun(t, 2)
		})
	}
}

// mount runs mount with args.
func mount(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Skipf("mount %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// fill writes path until its file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// tree reads every file under dir by relative path.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readOrEmpty(path string) []byte {
	data, _ := os.ReadFile(path)
	return data
}

// TestAzuriteStoppedMidUploadIntegration stops Azure Blob Storage under a
// blob Parquet output when the first block is being uploaded: a proxy in
// front of Azurite drops that request and every later one (a service gone
// away; the client's retries then take about a minute). Exit 1, the summary
// names the phase and the sink, the blob keeps its previous content and no
// block is committed; with the service back, a run publishes exactly the
// new rows (and its commit discards the blocks staged before the fault).
func TestAzuriteStoppedMidUploadIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("the client retries for about a minute")
	}
	az := sinktest.StartAzurite(t)
	target, err := url.Parse(az.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var armed, stopped atomic.Bool // armed: stop at the next block upload
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if armed.Load() && r.URL.Query().Get("comp") == "block" && stopped.CompareAndSwap(false, true) {
			t.Logf("stopping the service at %s %s", r.Method, r.URL.Path)
		}
		if stopped.Load() {
			if h, ok := rw.(http.Hijacker); ok {
				if conn, _, err := h.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(proxy.Close)
	via := &sinktest.Azurite{Endpoint: proxy.URL + target.Path}
	via.ConnectionString = strings.Replace(az.ConnectionString, az.Endpoint, via.Endpoint, 1)

	w := newKillWorld(t, killKind{"blob parquet", `  - parquet: { path: "az://%[2]s/out/day={{ .day }}/facts.parquet" }`}, via, "")
	const name = "out/day=2024-01-01/facts.parquet"
	w.facts.Set(1, fakepbi.NoPoison, -1)
	w.rerun(t, 1)
	before, _ := sinktest.ReadBlob(t, w.cc, name)

	w.facts.Set(2, fakepbi.NoPoison, -1)
	summary := filepath.Join(t.TempDir(), "summary.json")
	c, stderr := w.command()
	c.Args = append(c.Args, "--summary", summary)
	armed.Store(true)
	code := exitCode(t, c.Run())
	if !stopped.Load() {
		t.Error("no block upload reached the proxy")
	}
	armed.Store(false)
	stopped.Store(false) // the service is back
	if code != 1 || strings.Contains(stderr.String(), "panic:") {
		t.Errorf("exit %d, want 1:\n%s", code, stderr)
	}
	job := readRunSummary(t, summary).Jobs[0]
	if job.Status != "failed" || !strings.Contains(job.Phase, "sinks[0] (parquet)") {
		t.Errorf("summary: status %q, phase %q; want failed in sinks[0] (parquet)", job.Status, job.Phase)
	}
	t.Logf("error: %s", job.Error)
	after, ok := sinktest.ReadBlob(t, w.cc, name)
	if !ok || !bytes.Equal(after.Data, before.Data) || !slices.Equal(after.Blocks, before.Blocks) || !maps.Equal(after.Metadata, before.Metadata) {
		t.Errorf("the blob changed: %d bytes, blocks %q; was %d bytes, blocks %q", len(after.Data), after.Blocks, len(before.Data), before.Blocks)
	}
	if names := sinktest.ListBlobs(t, w.cc); !slices.Equal(names, []string{name}) {
		t.Errorf("blobs %q, want only %s", names, name)
	}
	w.rerun(t, 2)
}
