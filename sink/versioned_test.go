package sink

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestVersionedLocalFolder: the conditional write of a local folder.
func TestVersionedLocalFolder(t *testing.T) {
	ctx := context.Background()
	f, err := LocalFolder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v := f.(Versioned)
	if _, _, err := v.ReadVersion(ctx, "s.json"); !os.IsNotExist(err) {
		t.Fatalf("read a missing file: %v", err)
	}
	if err := v.WriteIfVersion(ctx, "s.json", []byte("one"), ""); err != nil {
		t.Fatal(err)
	}
	if err := v.WriteIfVersion(ctx, "s.json", []byte("two"), ""); err == nil || !strings.Contains(err.Error(), ErrChanged.Error()) {
		t.Errorf("a create over an existing file: %v", err)
	}
	data, ver, err := v.ReadVersion(ctx, "s.json")
	if err != nil || string(data) != "one" {
		t.Fatal(data, err)
	}
	if err := v.WriteIfVersion(ctx, "s.json", []byte("two"), ver); err != nil {
		t.Fatal(err)
	}
	if err := v.WriteIfVersion(ctx, "s.json", []byte("three"), ver); err == nil {
		t.Error("a write at a stale version succeeded")
	}
	if data, _, _ := v.ReadVersion(ctx, "s.json"); string(data) != "two" {
		t.Errorf("content %q", data)
	}
}

// TestVersionedLocalFolderRace: of writers that all read one version, one
// wins and the others are refused.
func TestVersionedLocalFolderRace(t *testing.T) {
	ctx := context.Background()
	f, err := LocalFolder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v := f.(Versioned)
	if err := v.WriteIfVersion(ctx, "s.json", []byte("start"), ""); err != nil {
		t.Fatal(err)
	}
	_, ver, err := v.ReadVersion(ctx, "s.json")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v.WriteIfVersion(ctx, "s.json", []byte{byte('a' + i)}, ver) == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d writers won, want 1", won)
	}
	entries, _ := os.ReadDir(f.Location(""))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
