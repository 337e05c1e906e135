package sink

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// Destination is where an encoder's bytes go: a local file now, an Azure
// Blob later. Nothing written is visible at the destination's location until
// Commit succeeds.
//
// Write is called from one goroutine at a time. A failed Write is sticky:
// every later Write and Commit returns an error. Commit publishes everything
// written, atomically, replacing whatever was there, and reports what it
// published (File.Rows is left 0 for the encoder to fill in); after an error
// nothing new is visible and nothing temporary is left behind. Abort discards
// what was written and leaves the location as it was; it is a no-op after
// Commit, whether or not Commit succeeded, and after another Abort. Exactly
// one of Commit or Abort should be called; ctx bounds the call.
//
// A Destination has no Close method on purpose: encoders that close the
// io.Writer they are given must not end it behind the owner's back.
type Destination interface {
	io.Writer
	Commit(ctx context.Context) (File, error)
	Abort(ctx context.Context) error
}

// localBufferSize is the write buffer of a local file: large enough that the
// many small writes of an encoder become few system calls.
const localBufferSize = 1 << 20

// localFile is a Destination writing to a temporary file beside its target
// and renaming it over the target on Commit.
type localFile struct {
	target  string // absolute path of the published file
	tmpName string
	tmp     *os.File
	w       *bufio.Writer
	sum     hash.Hash
	n       int64
	err     error // first write error, returned again by every later call
	done    bool  // committed or aborted
}

var _ Destination = (*localFile)(nil)

// OpenLocal returns a Destination that publishes a file at path. Relative
// paths are taken from the current working directory; File.Location is the
// absolute path.
//
// It creates the parent directories (mode 0777 minus umask) and a temporary
// file named .<name>.tmp-<random> in the target's directory, so that Commit
// can rename it over the target on the same file system. The published file
// has mode 0644 minus the umask, whatever the mode of the file it replaces.
// Commit flushes, fsyncs the file, renames it over the target and fsyncs
// the directory. The SHA-256 and byte count of File are computed while
// writing, without reading the file back.
func OpenLocal(path string) (Destination, error) {
	if path == "" {
		return nil, errors.New("open local file: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open local file %s: %w", path, err)
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("open local file %s: is a directory", abs)
	}
	dir, name := filepath.Split(abs)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("open local file %s: %w", abs, err)
	}
	tmp, err := createTemp(dir, name)
	if err != nil {
		return nil, fmt.Errorf("open local file %s: %w", abs, err)
	}
	return &localFile{
		target:  abs,
		tmpName: tmp.Name(),
		tmp:     tmp,
		w:       bufio.NewWriterSize(tmp, localBufferSize),
		sum:     sha256.New(),
	}, nil
}

// createTemp creates a new file for writing in dir, named after the target.
//
// Unlike os.CreateTemp, which always uses mode 0600, it asks for 0644 and so
// lets the kernel apply the process umask: the published file gets 0644
// minus umask without reading the umask, which can only be done by changing
// it process-wide (racing with other goroutines creating files).
func createTemp(dir, name string) (*os.File, error) {
	// Keep the temporary name within the 255-byte limit of most file systems.
	if len(name) > 200 {
		name = name[:200]
	}
	prefix := filepath.Join(dir, "."+name+".tmp-")
	for range 10000 {
		tmpName := prefix + strconv.FormatUint(rand.Uint64(), 36)
		f, err := os.OpenFile(tmpName, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("create temporary file in %s: too many name collisions", dir)
}

// Write buffers p, adding it to the byte count and the checksum.
func (f *localFile) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.done {
		return 0, fmt.Errorf("write %s: destination already committed or aborted", f.target)
	}
	n, err := f.w.Write(p)
	f.sum.Write(p[:n])
	f.n += int64(n)
	if err != nil {
		f.err = f.wrap("write", err)
		return n, f.err
	}
	return n, nil
}

// Commit publishes the file. On error, the temporary file is removed and the
// target is left as it was, except for an error syncing the directory after
// the rename, which is reported although the new file is in place (its
// durability across a crash is then not guaranteed).
func (f *localFile) Commit(ctx context.Context) (File, error) {
	if f.done {
		return File{}, fmt.Errorf("commit %s: destination already committed or aborted", f.target)
	}
	if err := f.publish(ctx); err != nil {
		f.discard()
		return File{}, err
	}
	f.done = true
	file := File{Location: f.target, Bytes: f.n, SHA256: hex.EncodeToString(f.sum.Sum(nil))}
	if err := syncDir(filepath.Dir(f.target)); err != nil {
		return file, fmt.Errorf("commit %s: renamed, but syncing the directory failed: %w", f.target, err)
	}
	return file, nil
}

// publish flushes, syncs and closes the temporary file and renames it over
// the target. It leaves the temporary file for the caller to remove on error.
func (f *localFile) publish(ctx context.Context) error {
	if f.err != nil {
		return f.err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit %s: %w", f.target, err)
	}
	if err := f.w.Flush(); err != nil {
		return f.wrap("write", err)
	}
	if err := f.tmp.Sync(); err != nil {
		return f.wrap("sync", err)
	}
	err := f.tmp.Close()
	f.tmp = nil
	if err != nil {
		return f.wrap("close", err)
	}
	if err := os.Rename(f.tmpName, f.target); err != nil {
		return f.wrap("rename", err)
	}
	return nil
}

// Abort removes the temporary file; the target is untouched.
func (f *localFile) Abort(context.Context) error {
	if f.done {
		return nil
	}
	return f.discard()
}

// discard closes and removes the temporary file and ends the destination.
func (f *localFile) discard() error {
	f.done = true
	if f.err == nil {
		f.err = fmt.Errorf("write %s: destination already committed or aborted", f.target)
	}
	if f.tmp != nil {
		_ = f.tmp.Close() // the file is being removed: a close error changes nothing
		f.tmp = nil
	}
	if err := os.Remove(f.tmpName); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("abort %s: %w", f.target, err)
	}
	return nil
}

// wrap names the operation and the target in err. A *os.PathError about the
// temporary file is unwrapped: its name is an implementation detail, the
// target is what the user asked for.
func (f *localFile) wrap(op string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Path == f.tmpName {
		err = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	return fmt.Errorf("%s %s: %w", op, f.target, err)
}

// syncDir makes a rename in dir durable. Windows cannot sync directories and
// does not need it.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
