package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocalCommit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "out.txt")
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target exists before Commit: %v", err)
	}
	var want []byte
	for i := range 3000 {
		// Writes both smaller and larger than the buffer.
		p := []byte(strings.Repeat(string(rune('a'+i%26)), 1+i*i%(3<<20)/100))
		want = append(want, p...)
		if n, err := dst.Write(p); err != nil || n != len(p) {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if names := tempFiles(t, filepath.Dir(path)); len(names) != 1 || !strings.HasPrefix(names[0], ".out.txt.tmp-") {
		t.Errorf("while writing the directory holds %q, want one .out.txt.tmp-* file", names)
	}
	f, err := dst.Commit(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(want)
	if f != (File{Location: path, Bytes: int64(len(want)), SHA256: hex.EncodeToString(sum[:])}) {
		t.Errorf("Commit returned %+v", f)
	}
	if got := readFile(t, path); got != string(want) {
		t.Errorf("published %d bytes, want %d", len(got), len(want))
	}
	if names := tempFiles(t, filepath.Dir(path), "out.txt"); len(names) > 0 {
		t.Errorf("files left: %q", names)
	}
	if err := dst.Abort(context.Background()); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Abort after Commit removed the file: %v", err)
	}
	if _, err := dst.Write([]byte("x")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if _, err := dst.Commit(context.Background(), 0); err == nil {
		t.Error("second Commit succeeded")
	}
}

func TestLocalRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	dst, err := OpenLocal(filepath.Join("rel", "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := dst.Commit(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "rel", "out.txt"); f.Location != want {
		t.Errorf("Location %q, want %q", f.Location, want)
	}
	if f.Bytes != 0 || f.SHA256 != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty file reported as %+v", f)
	}
}

func TestLocalAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	writeFile(t, path, "previous")
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Write([]byte(strings.Repeat("new", 1<<20))); err != nil {
		t.Fatal(err)
	}
	if err := dst.Abort(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "previous" {
		t.Errorf("after Abort the file holds %.20q", got)
	}
	if names := tempFiles(t, dir, "out.txt"); len(names) > 0 {
		t.Errorf("files left: %q", names)
	}
	if err := dst.Abort(context.Background()); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if _, err := dst.Commit(context.Background(), 0); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if got := readFile(t, path); got != "previous" {
		t.Errorf("after Commit following Abort the file holds %.20q", got)
	}
}

// TestLocalFailedRename makes the rename fail (the target became a
// directory) and checks that nothing is left and the error names the target.
func TestLocalFailedRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = dst.Commit(context.Background(), 0)
	if err == nil || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("Commit over a directory: %v", err)
	}
	if names := tempFiles(t, dir, "out.txt"); len(names) > 0 {
		t.Errorf("files left: %q", names)
	}
	if err := dst.Abort(context.Background()); err != nil {
		t.Errorf("Abort after a failed Commit: %v", err)
	}
}

// TestLocalFailedWriteIsSticky fails a write of the temporary file (its
// descriptor closed underneath): every later Write and Commit return that
// failure, the previous file stays and no temporary file is left.
func TestLocalFailedWriteIsSticky(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	if err := os.WriteFile(path, []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.(*localFile).tmp.Close(); err != nil {
		t.Fatal(err)
	}
	_, first := dst.Write(make([]byte, 2*localBufferSize))
	if first == nil {
		t.Fatal("a write to a closed file succeeded")
	}
	if _, err := dst.Write([]byte("more")); !errors.Is(err, first) {
		t.Errorf("Write after a failed one: %v, want %v", err, first)
	}
	for i := range 2 {
		if _, err := dst.Commit(context.Background(), 1); !errors.Is(err, first) {
			t.Errorf("Commit %d after a failed Write: %v, want %v", i+1, err, first)
		}
	}
	if err := dst.Abort(context.Background()); err != nil {
		t.Errorf("Abort: %v", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "before" {
		t.Errorf("target holds %q (%v), want the previous content", data, err)
	}
	if names := tempFiles(t, dir, "out.txt"); len(names) > 0 {
		t.Errorf("files left: %q", names)
	}
}

func TestLocalCanceledCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	writeFile(t, path, "previous")
	dst, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := dst.Commit(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a canceled context: %v", err)
	}
	if got := readFile(t, path); got != "previous" {
		t.Errorf("file holds %q", got)
	}
	if names := tempFiles(t, dir, "out.txt"); len(names) > 0 {
		t.Errorf("files left: %q", names)
	}
}

func TestOpenLocalErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenLocal(""); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := OpenLocal(dir); err == nil {
		t.Error("a directory accepted as the target")
	}
	// A parent that is a file.
	writeFile(t, filepath.Join(dir, "file"), "x")
	if _, err := OpenLocal(filepath.Join(dir, "file", "out.txt")); err == nil {
		t.Error("a path under a regular file accepted")
	}
	if names := tempFiles(t, dir, "file"); len(names) > 0 {
		t.Errorf("files left: %q", names)
	}
}

func TestLocalLongName(t *testing.T) {
	dir := t.TempDir()
	name := strings.Repeat("n", 250)
	dst, err := OpenLocal(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Commit(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		t.Error(err)
	}
}
