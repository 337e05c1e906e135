//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

// openPTY opens a pseudo-terminal: what the command writes to tty, the
// test reads from the returned buffer once done is called.
func openPTY(t *testing.T) (tty *os.File, done func() string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatalf("unlock the pseudo-terminal: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("pseudo-terminal number: %v", errno)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&buf, master) // ends with EIO once tty is closed
		close(copied)
	}()
	return tty, func() string {
		tty.Close()
		<-copied
		master.Close()
		return buf.String()
	}
}

// progressJob is a job whose answer takes long enough for the progress line
// to be drawn.
func progressJob(t *testing.T) string {
	_, dir := fakeEnv(t, fakepbi.Options{Latency: 700 * time.Millisecond})
	return writeJob(t, dir, "slow", "EVALUATE Sales")
}

func TestProgressLineOnATerminal(t *testing.T) {
	job := progressJob(t)
	tty, done := openPTY(t)
	var stdout bytes.Buffer
	a := &app{stdout: &stdout, stderr: tty, httpClient: testClient}
	code := a.run(context.Background(), []string{"run", job, "-v"})
	out := done()
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if !strings.Contains(out, carriageReturn+"slow: waiting for Power BI") || !strings.Contains(out, clearToEOL) {
		t.Errorf("no progress line on the terminal:\n%q", out)
	}
	// The line is erased before every log record, and at the end.
	for i := strings.Index(out, "time="); i >= 0; {
		if !(i == 0 || strings.HasSuffix(out[:i], "\n") || strings.HasSuffix(out[:i], carriageReturn+clearToEOL)) {
			t.Errorf("a log record is written over the progress line: %q", out[max(0, i-80):i+20])
		}
		next := strings.Index(out[i+1:], "time=")
		if next < 0 {
			break
		}
		i += next + 1
	}
	if !strings.HasSuffix(out, carriageReturn+clearToEOL) && !strings.HasSuffix(out, "\n") {
		t.Errorf("the terminal is left with a progress line: %q", out[max(0, len(out)-120):])
	}
	if !strings.Contains(out, "level=INFO") {
		t.Errorf("logs are not text on a terminal: %q", out)
	}
	if strings.Contains(stdout.String(), clearToEOL) {
		t.Errorf("progress in the summary: %q", stdout.String())
	}

	// --no-progress turns it off.
	tty, done = openPTY(t)
	a = &app{stdout: io.Discard, stderr: tty, httpClient: testClient}
	a.run(context.Background(), []string{"run", job, "--no-progress"})
	if out := done(); strings.Contains(out, clearToEOL) {
		t.Errorf("--no-progress still draws: %q", out)
	}
}

func TestNoProgressLineOffATerminal(t *testing.T) {
	job := progressJob(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var piped bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&piped, r); close(copied) }()
	file, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for name, stderr := range map[string]*os.File{"pipe": w, "file": file, "/dev/null": null} {
		if isTerminal(stderr) {
			t.Errorf("%s is taken for a terminal", name)
		}
		a := &app{stdout: io.Discard, stderr: stderr, httpClient: testClient}
		if code := a.run(context.Background(), []string{"run", job}); code != exitOK {
			t.Fatalf("%s: exit %d", name, code)
		}
	}
	w.Close()
	<-copied
	logged, err := os.ReadFile(file.Name())
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"pipe": piped.String(), "file": string(logged)} {
		if strings.ContainsAny(out, "\r\x1b") || strings.Contains(out, "waiting for Power BI") {
			t.Errorf("%s: progress output where there is no terminal: %q", name, out)
		}
		if !strings.HasPrefix(out, `{"time":`) {
			t.Errorf("%s: logs are not JSON lines off a terminal: %q", name, out)
		}
	}
}
