package azureblob

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/pbicopy/pbicopy/sink"
)

// TestWriteIfVersion: a blob is created only if absent, replaced only at
// the ETag read, and of writers that read one version, one wins.
func TestWriteIfVersion(t *testing.T) {
	ctx := context.Background()
	bc, _, _ := testBlobs(t, sink.BlobOptions{})
	v := bc.Folder("state/").(sink.Versioned)
	if _, _, err := v.ReadVersion(ctx, "s.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read a missing blob: %v", err)
	}
	if err := v.WriteIfVersion(ctx, "s.json", []byte(`{"n":1}`), ""); err != nil {
		t.Fatal(err)
	}
	if err := v.WriteIfVersion(ctx, "s.json", []byte(`{"n":2}`), ""); !errors.Is(err, sink.ErrChanged) {
		t.Errorf("a create over an existing blob: %v", err)
	}
	data, etag, err := v.ReadVersion(ctx, "s.json")
	if err != nil || string(data) != `{"n":1}` || etag == "" {
		t.Fatalf("read: %q %q %v", data, etag, err)
	}
	// The same bytes at a stale version: taken for a retried write of our
	// own, which succeeded.
	if err := v.WriteIfVersion(ctx, "s.json", []byte(`{"n":1}`), `"0x0"`); err != nil {
		t.Errorf("a write equal to the blob: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := v.WriteIfVersion(ctx, "s.json", []byte{'{', '"', 'w', '"', ':', byte('0' + i), '}'}, etag)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case !errors.Is(err, sink.ErrChanged):
				t.Errorf("writer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d writers won, want 1", won)
	}
	data, _, _ = v.ReadVersion(ctx, "s.json")
	if !strings.HasPrefix(string(data), `{"w":`) {
		t.Errorf("content %q", data)
	}
	if loc := bc.Location("state/s.json"); strings.Contains(loc, "?") {
		t.Errorf("location %s", loc)
	}
}
