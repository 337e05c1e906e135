//go:build unix

package credential

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"
)

// TestNewRefusesFIFO gives New a secret file and a certificate that are
// FIFOs no one writes to: each is refused at once instead of blocking.
func TestNewRefusesFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "secret")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, a := range []azure.AuthSpec{
		{Tenant: "t", ClientID: "c", ClientSecretFile: fifo},
		{Tenant: "t", ClientID: "c", Certificate: fifo},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := New(context.Background(), a, "", "storage.auth", nil)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "a named pipe (FIFO), not a regular file") || !strings.HasPrefix(err.Error(), "storage.auth.") {
				t.Errorf("%+v: %v", a, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%+v: New blocked on a FIFO", a)
		}
	}
}
