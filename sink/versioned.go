package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Versioned is a Folder that replaces a small file only if it has not
// changed since it was read: the state of an incremental job, which two
// runs that overlap must not both advance. A local folder and a blob
// container are Versioned.
type Versioned interface {
	// ReadVersion returns the content of the named file and its version
	// (an opaque string), or an error wrapping fs.ErrNotExist.
	ReadVersion(ctx context.Context, name string) (data []byte, version string, err error)
	// WriteIfVersion replaces the named file with data, atomically, if its
	// version is still version; with version "", if it does not exist.
	// Otherwise it fails with an error wrapping ErrChanged and changes
	// nothing.
	WriteIfVersion(ctx context.Context, name string, data []byte, version string) error
}

// ErrChanged is the cause of a conditional write refused because the file
// changed (or appeared) since it was read.
var ErrChanged = errors.New("it changed since it was read")

var _ Versioned = localFolder{}

// ReadVersion reads the named file; its version is the SHA-256 of its
// content.
func (l localFolder) ReadVersion(_ context.Context, name string) ([]byte, string, error) {
	data, err := os.ReadFile(l.Location(name))
	if err != nil {
		return nil, "", err
	}
	return data, contentVersion(data), nil
}

func contentVersion(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// WriteIfVersion writes a temporary file beside the named one and, holding
// an exclusive lock on a lock file beside it (.<name>.lock, flock on Unix;
// the operating system releases it when the process dies), checks that the
// file is still at version and renames the temporary file over it. Other
// runs take the same lock, so the check and the rename are one step for
// them; elsewhere than Unix there is no lock, and two writes in the same
// instant could both pass the check.
func (l localFolder) WriteIfVersion(ctx context.Context, name string, data []byte, version string) error {
	target := l.Location(name)
	dst, err := OpenLocal(target)
	if err != nil {
		return err
	}
	if _, err := dst.Write(data); err != nil {
		_ = dst.Abort(ctx)
		return err
	}
	if err := dst.(Finisher).Finish(ctx); err != nil {
		_ = dst.Abort(ctx)
		return err
	}
	unlock, err := lockFile(filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".lock"))
	if err != nil {
		_ = dst.Abort(ctx)
		return fmt.Errorf("lock %s: %w", target, err)
	}
	defer unlock()
	cur, err := os.ReadFile(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if version != "" {
			_ = dst.Abort(ctx)
			return fmt.Errorf("write %s: %w (it was removed)", target, ErrChanged)
		}
	case err != nil:
		_ = dst.Abort(ctx)
		return fmt.Errorf("write %s: %w", target, err)
	case version == "" || contentVersion(cur) != version:
		_ = dst.Abort(ctx)
		return fmt.Errorf("write %s: %w", target, ErrChanged)
	}
	_, err = dst.Commit(ctx, 0)
	return err
}
