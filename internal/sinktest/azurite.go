package sinktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// AzuriteEnv names the azurite-blob executable to run, overriding the
// search of FindAzurite.
const AzuriteEnv = "AZURITE_BLOB"

// The well-known development account of Azurite, published by Microsoft:
// not a secret.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a running Azurite Blob service, holding its data in memory.
type Azurite struct {
	// Endpoint is the Blob service URL: http://127.0.0.1:<port>/devstoreaccount1.
	Endpoint string
	// ConnectionString reaches Endpoint with the development account key.
	ConnectionString string

	cmd  *exec.Cmd
	out  *bytes.Buffer
	dir  string
	done chan struct{}
}

// FindAzurite returns the azurite-blob executable: $AZURITE_BLOB if set,
// else .ci/azurite/node_modules/.bin/azurite-blob under the module root
// (where `npm ci --prefix .ci/azurite` installs it), else azurite-blob on
// the PATH.
func FindAzurite() (string, error) {
	if p := os.Getenv(AzuriteEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", AzuriteEnv, p, err)
		}
		return p, nil
	}
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, ".ci", "azurite", "node_modules", ".bin", "azurite-blob")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("azurite-blob")
	if err != nil {
		return "", errors.New("azurite-blob not found: run `npm ci --prefix .ci/azurite` in the repository, put azurite-blob on the PATH, or set " + AzuriteEnv)
	}
	return p, nil
}

// moduleRoot is the nearest folder above the working directory holding a
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// LaunchAzurite starts an Azurite Blob service on a free loopback port,
// in memory, and waits until it answers. The caller must Stop it.
func LaunchAzurite(ctx context.Context) (*Azurite, error) {
	bin, err := FindAzurite()
	if err != nil {
		return nil, err
	}
	var errs []error
	// Another process may take the free port before Azurite binds it.
	for range 3 {
		a, err := launchAzurite(ctx, bin)
		if err == nil {
			return a, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func launchAzurite(ctx context.Context, bin string) (*Azurite, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// Azurite refuses --location with --inMemoryPersistence; it runs in a
	// folder of its own in case a version writes anything there.
	dir, err := os.MkdirTemp("", "pbicopy-azurite-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--inMemoryPersistence", "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry")
	cmd.Dir = dir
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: out}, &lockedWriter{w: out}
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	a := &Azurite{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d/%s", port, AzuriteAccount),
		cmd:      cmd, out: out, dir: dir, done: make(chan struct{}),
	}
	a.ConnectionString = fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", AzuriteAccount, AzuriteKey, a.Endpoint)
	go func() {
		_ = cmd.Wait()
		close(a.done)
	}()
	if err := a.waitReady(ctx, 30*time.Second); err != nil {
		a.Stop()
		return nil, fmt.Errorf("azurite (%s) on port %d: %w; its output:\n%s", bin, port, err, a.output())
	}
	return a, nil
}

// waitReady polls the service until it answers any HTTP request.
func (a *Azurite) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.Endpoint+"?comp=list", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-a.done:
			return errors.New("it exited")
		case <-ctx.Done():
			return fmt.Errorf("it did not answer within %s", timeout)
		case <-tick.C:
		}
	}
}

func (a *Azurite) output() string {
	return a.cmd.Stdout.(*lockedWriter).String()
}

// Stop kills the service and waits for it to exit.
func (a *Azurite) Stop() {
	_ = a.cmd.Process.Kill()
	<-a.done
	os.RemoveAll(a.dir)
}

// freePort returns a loopback TCP port nobody listens on, for now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedWriter serialises the writes of the child's two output pipes.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// shared is the Azurite of this test binary.
var shared struct {
	mu  sync.Mutex
	az  *Azurite
	err error
}

// StartAzurite returns the Azurite of this test binary, starting it on the
// first call; tests share it and keep apart by using containers of their
// own (NewContainer). If Azurite cannot be found or started, t is skipped,
// or failed when RequireEnv is set. The package's TestMain must call
// StopAzurite after m.Run.
//
// Under go test -short the test is skipped (unless RequireEnv is set):
// starting Azurite and going through its HTTP stack costs most of the short
// run's time, and the short run is for the edit-test loop.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	if testing.Short() && os.Getenv(RequireEnv) == "" {
		t.Skip("Azure Blob test on Azurite: runs without -short")
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.az == nil && shared.err == nil {
		shared.az, shared.err = LaunchAzurite(context.Background())
	}
	if shared.err != nil {
		SkipOrFail(t, "no Azurite: %v", shared.err)
	}
	return shared.az
}

// StopAzurite stops the Azurite StartAzurite started, if any.
func StopAzurite() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.az != nil {
		shared.az.Stop()
		shared.az = nil
	}
}
