package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pbicopy/pbicopy/internal/faults"
)

// testChild is the command a test runs in a child process (TestMain, with
// PBICOPY_TEST_MAIN=1). PBICOPY_TEST_FAULT=point:index[:rows] makes that
// sink fail there (internal/faults); with PBICOPY_TEST_SIGNAL=INT or TERM
// the process sends itself that signal there instead, as an operator
// would at that moment, and with KILL it kills itself with SIGKILL.
func testChild() *app {
	a := &app{stdout: os.Stdout, stderr: os.Stderr}
	spec := os.Getenv("PBICOPY_TEST_FAULT")
	if spec == "" {
		return a
	}
	plan, err := faults.Parse(spec)
	if err != nil {
		panic(err)
	}
	if os.Getenv("PBICOPY_TEST_SIGNAL") == "KILL" {
		// As the kernel's OOM killer or a node's loss would: no handler
		// runs, nothing is cleaned up.
		plan.Act = func() {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	} else if name := os.Getenv("PBICOPY_TEST_SIGNAL"); name != "" {
		sig := map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM}[name]
		plan.Act = func() {
			got := make(chan os.Signal, 1)
			signal.Notify(got, sig)
			defer signal.Stop(got)
			_ = syscall.Kill(os.Getpid(), sig)
			<-got
			// The command's own handler cancels the run on the same
			// delivery; leave it the moment to.
			time.Sleep(50 * time.Millisecond)
		}
	}
	a.wrapSink = plan.Wrap
	return a
}
