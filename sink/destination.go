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

// Destination is where an encoder's bytes go: a local file (OpenLocal) or an
// Azure block blob (BlobContainer.Open). Nothing written is visible at the
// destination's location until Commit succeeds.
//
// Write is called from one goroutine at a time. A failed Write is sticky:
// every later Write and Commit returns an error. Commit publishes everything
// written, atomically, replacing whatever was there (unless the destination
// was opened not to overwrite), and reports what it published; rows is the
// number of rows the bytes hold, which the destination reports in File.Rows
// and may record beside the data (a blob keeps it in its metadata). After a
// Commit error nothing new is visible and nothing temporary is left behind.
// Abort discards what was written and leaves the location as it was; it is a
// no-op after Commit, whether or not Commit succeeded, and after another
// Abort. Exactly one of Commit or Abort should be called; ctx bounds the call.
//
// A Destination has no Close method on purpose: encoders that close the
// io.Writer they are given must not end it behind the owner's back.
type Destination interface {
	io.Writer
	Commit(ctx context.Context, rows int64) (File, error)
	Abort(ctx context.Context) error
}

// Finisher is a Destination that can complete its work before Commit: a
// local file is flushed, synced and closed; a blob has every block staged.
// After Finish only the publishing step is left for Commit, and the
// destination holds no buffer and no file descriptor, so a split output can
// keep many finished parts until it publishes them together. A failed
// Finish is sticky, like a failed Write.
type Finisher interface {
	Finish(ctx context.Context) error
}

// localBufferSize is the write buffer of a local file: large enough that the
// many small writes of an encoder become few system calls.
const localBufferSize = 1 << 20

// localFile is a Destination writing to a temporary file beside its target
// and renaming (or, not to overwrite, linking) it over the target on Commit.
type localFile struct {
	target    string // absolute path of the published file
	exclusive bool   // fail rather than replace an existing target
	tmpName   string
	tmp       *os.File
	w         *bufio.Writer
	sum       hash.Hash
	n         int64
	err       error // first failure, returned again by every later call
	finished  bool  // the temporary file is complete and closed
	done      bool  // committed or aborted
}

var _ Destination = (*localFile)(nil)
var _ Finisher = (*localFile)(nil)

// OpenLocal returns a Destination that publishes a file at path, replacing
// any file there. Relative paths are taken from the current working
// directory; File.Location is the absolute path.
//
// It creates the parent directories (mode 0777 minus umask) and a temporary
// file named .<name>.tmp-<pid>-<host>-<random> in the target's directory, so
// that Commit can rename it over the target on the same file system. The
// first open in a directory removes there the temporary files of killed
// runs (see sweepTemps). The published file
// has mode 0644 minus the umask, whatever the mode of the file it replaces.
// Commit flushes, fsyncs the file, renames it over the target and fsyncs
// the directory. The SHA-256 and byte count of File are computed while
// writing, without reading the file back.
func OpenLocal(path string) (Destination, error) {
	return openLocal(path, false)
}

// OpenLocalNew is OpenLocal for a file that must not exist: it fails if
// path exists, and Commit, which hard-links the temporary file to path
// instead of renaming it, fails and leaves the file alone if one appeared
// meanwhile. It needs a file system with hard links (all the usual ones).
func OpenLocalNew(path string) (Destination, error) {
	return openLocal(path, true)
}

func openLocal(path string, exclusive bool) (Destination, error) {
	if path == "" {
		return nil, errors.New("open local file: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open local file %s: %w", path, err)
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("open local file %s: is a directory", abs)
	} else if err == nil && exclusive {
		return nil, fmt.Errorf("open local file %s: %w", abs, ErrExists)
	}
	dir, name := filepath.Split(abs)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("open local file %s: %w", abs, err)
	}
	sweepTemps(filepath.Clean(dir))
	tmp, err := createTemp(dir, name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the temporary name is an implementation detail
		}
		return nil, fmt.Errorf("open local file %s: %w", abs, err)
	}
	return &localFile{
		target:    abs,
		exclusive: exclusive,
		tmpName:   tmp.Name(),
		tmp:       tmp,
		w:         bufio.NewWriterSize(tmp, localBufferSize),
		sum:       sha256.New(),
	}, nil
}

// ErrExists is the cause of a refusal to replace an existing file or blob
// when overwriting is off; errors.Is finds it in the error returned.
var ErrExists = errors.New("it already exists and overwrite is false: remove it, or set overwrite: true")

// createTemp creates a new file for writing in dir, named after the target.
//
// Unlike os.CreateTemp, which always uses mode 0600, it asks for 0644 and so
// lets the kernel apply the process umask: the published file gets 0644
// minus umask without reading the umask, which can only be done by changing
// it process-wide (racing with other goroutines creating files).
func createTemp(dir, name string) (*os.File, error) {
	prefix := tempPrefix(dir, name)
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
	if f.done || f.finished {
		return 0, fmt.Errorf("write %s: destination already finished, committed or aborted", f.target)
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

// Finish flushes, syncs and closes the temporary file.
func (f *localFile) Finish(ctx context.Context) error {
	if f.err != nil {
		return f.err
	}
	if f.done {
		return fmt.Errorf("commit %s: destination already committed or aborted", f.target)
	}
	if f.finished {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit %s: %w", f.target, err)
	}
	err := f.w.Flush()
	if err == nil {
		err = f.tmp.Sync()
	}
	if cerr := f.tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	f.tmp = nil
	if err != nil {
		f.err = f.wrap("write", err)
		return f.err
	}
	f.finished = true
	return nil
}

// Commit publishes the file. On error, the temporary file is removed and the
// target is left as it was, except for an error syncing the directory after
// the rename, which is reported although the new file is in place (its
// durability across a crash is then not guaranteed).
func (f *localFile) Commit(ctx context.Context, rows int64) (File, error) {
	if f.err != nil {
		// A failed Write or Finish is sticky: nothing is published.
		_ = f.discard()
		return File{}, f.err
	}
	if f.done {
		return File{}, fmt.Errorf("commit %s: destination already committed or aborted", f.target)
	}
	if err := f.publish(ctx); err != nil {
		f.discard()
		return File{}, err
	}
	f.done = true
	file := File{Location: f.target, Rows: rows, Bytes: f.n, SHA256: hex.EncodeToString(f.sum.Sum(nil))}
	if err := syncDir(filepath.Dir(f.target)); err != nil {
		return file, fmt.Errorf("commit %s: published, but syncing the directory failed: %w", f.target, err)
	}
	return file, nil
}

// publish finishes the temporary file and moves it to the target. It leaves
// the temporary file for the caller to remove on error.
func (f *localFile) publish(ctx context.Context) error {
	if err := f.Finish(ctx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit %s: %w", f.target, err)
	}
	if !f.exclusive {
		if err := os.Rename(f.tmpName, f.target); err != nil {
			return f.wrap("rename", err)
		}
		return nil
	}
	// A hard link fails if the target exists, where a rename would replace
	// it; the temporary name is then removed.
	if err := os.Link(f.tmpName, f.target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("commit %s: %w", f.target, ErrExists)
		}
		return f.wrap("link", err)
	}
	if err := os.Remove(f.tmpName); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return f.wrap("remove temporary file", err)
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
