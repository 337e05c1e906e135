//go:build unix

package sink

import (
	"errors"
	"syscall"
)

// processGone reports whether no process with the id pid runs (in this
// process's pid namespace). A process that exists but belongs to another
// user counts as running.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
