// Package smallfile reads whole the small files a job names: the job file
// itself, a client secret, a certificate. Each read is bounded: a file past
// its limit is refused instead of filling memory, and anything but a
// regular file (a directory, a named pipe, a device, a socket) is refused
// without being read, so that a path such as /dev/zero or a FIFO with no
// writer neither grows nor blocks the process.
package smallfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Limits of the files pbicopy reads whole.
const (
	// JobFile bounds a job file. A real one is a few KiB; decoding YAML
	// costs about 150 bytes of allocation per byte of input at worst, so
	// 1 MiB keeps the worst case near 150 MB.
	JobFile = 1 << 20
	// Secret bounds a client secret file (an Entra ID secret is about 40
	// characters).
	Secret = 16 << 10
	// Certificate bounds a PEM or PFX certificate file with its private key
	// and chain.
	Certificate = 1 << 20
)

// Read returns the contents of the regular file name, which must hold at
// most limit bytes. It refuses anything that is not a regular file,
// without blocking: the file is opened non-blocking (on Unix) and checked
// before it is read. Its errors are *fs.PathError values naming the file.
func Read(name string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(name, openFlags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) error {
		return &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf(format, args...)}
	}
	if !st.Mode().IsRegular() {
		return nil, fail("%s, not a regular file", kind(st.Mode()))
	}
	if st.Size() > limit {
		return nil, fail("the file holds more than the %s allowed", Size(limit))
	}
	// The size may change while the file is read (or be reported as 0, as
	// for files under /proc): the read itself is bounded too.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: unwrapPath(err)}
	}
	if int64(len(data)) > limit {
		return nil, fail("the file holds more than the %s allowed", Size(limit))
	}
	return data, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// kind names the type of a file that is not a regular file.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0, m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}

// Size writes a byte count in the largest binary unit that divides it
// into a number of at least 1: 512 bytes, 16 KiB, 1 MiB, 1.5 MiB.
func Size(n int64) string {
	switch {
	case n >= 1<<20:
		return trim(float64(n)/(1<<20)) + " MiB"
	case n >= 1<<10:
		return trim(float64(n)/(1<<10)) + " KiB"
	}
	return fmt.Sprintf("%d bytes", n)
}

func trim(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}
