//go:build unix

package smallfile

import (
	"os"
	"syscall"
)

// openFlags open a FIFO without waiting for a writer, and a terminal
// without making it the controlling one; a regular file reads the same.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY
