//go:build !linux

package sinktest

import "os/exec"

// setParentDeathSignal does nothing where the kernel cannot tie a child's
// life to its parent's; StopAzurite stops it.
func setParentDeathSignal(*exec.Cmd) {}
