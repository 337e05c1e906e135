package sinktest

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel kill Azurite if the test binary dies
// without stopping it (a panic, a timeout, a kill).
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
