package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// hwmEnv names the file a child writes its peak RSS to.
const hwmEnv = "PBICOPY_BENCH_HWM"

// runMeasured runs cmd, a child of this program, and returns its peak RSS in
// bytes: the VmHWM of its own memory that the child reports as it exits.
// The rusage maximum is a fallback only: Linux starts a child's ru_maxrss
// at the RSS its parent had when the child exec'd from a vfork (as Go's
// os/exec does), so a parent holding a large prerendered answer would be
// counted in the child.
func runMeasured(cmd *exec.Cmd) (int64, error) {
	f, err := os.CreateTemp("", "pbicopy-bench-hwm-*")
	if err != nil {
		return 0, err
	}
	f.Close()
	defer os.Remove(f.Name())
	cmd.Env = append(cmd.Env, hwmEnv+"="+f.Name())
	if cmd.Env[0] == hwmEnv+"="+f.Name() { // cmd.Env was nil: keep the environment
		cmd.Env = append(os.Environ(), cmd.Env...)
	}
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("run: %w", err)
	}
	if b, err := os.ReadFile(f.Name()); err == nil && len(b) > 0 {
		return strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	}
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024, nil
}

// reportHWM writes this process's peak RSS (VmHWM, in bytes) to the file
// hwmEnv names, where the parent's runMeasured reads it.
func reportHWM() {
	path := os.Getenv(hwmEnv)
	if path == "" {
		return
	}
	f, err := os.Open(filepath.Join("/proc", "self", "status"))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kb, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			kb = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(kb), []byte("kB")))
			if n, err := strconv.ParseInt(string(kb), 10, 64); err == nil {
				_ = os.WriteFile(path, []byte(strconv.FormatInt(n*1024, 10)), 0o600)
			}
			return
		}
	}
}
