// Command pbicopy copies the results of DAX queries on Power BI semantic
// models into Parquet, CSV and PostgreSQL, as declared in YAML job files.
//
// Exit codes: 0 every job succeeded; 1 a job failed at run time, an online
// check failed, or a refresh did not complete; 2 bad usage or an invalid job
// file (nothing ran); 130 interrupted (SIGINT or SIGTERM).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/sink"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitInvalid = 2
	// exitInterrupted is the shell's code for a command ended by SIGINT.
	exitInterrupted = 130
)

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit keeps the GC from letting the heap double between
		// cycles; the live heap of a run is well under it.
		debug.SetMemoryLimit(pipeline.DefaultMemoryLimit)
	}
	os.Exit(runInterruptible(&app{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// runInterruptible runs the command until SIGINT or SIGTERM, which cancel
// it: a commit phase under way finishes, the rest stops, the exit code is
// 130. A second signal stops the process at once (its default action);
// the next run cleans up what it left, as after a SIGKILL.
func runInterruptible(a *app, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	return a.run(ctx, args)
}

// app is the command with its outputs.
type app struct {
	stdout, stderr io.Writer
	// httpClient carries Power BI and Entra ID requests; nil means the
	// default. Tests set it to trust a fake service's certificate.
	httpClient *http.Client
	// pollInterval is the first wait between two reads of a refresh's
	// status; 0 means the client's default. Tests shorten it.
	pollInterval time.Duration
	// wrapSink, set by tests, wraps the sinks of run (internal/faults).
	wrapSink func(i int, s sink.Sink) (sink.Sink, error)

	logs logFlags // set by the flags of the invocation
}

// run is the whole command; it returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.newRoot()
	root.SetArgs(args)
	cmd, err := root, unknownCommand(root, args)
	if err == nil {
		cmd, err = root.ExecuteContextC(ctx)
	}
	var ue usageError
	var ie invalidJobs
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		a.printError(err, fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath()))
		return exitInvalid
	case errors.As(err, &ie):
		return exitInvalid
	case errors.Is(err, errJobsFailed) || errors.Is(err, errChecksFailed):
		return exitFailed
	case errors.Is(err, context.Canceled):
		a.printError(err, "")
		return exitInterrupted
	}
	a.printError(err, "")
	return exitFailed
}

// printError shows the error that ends the command, with a hint: a line
// of text, or a JSON record when the logs are JSON.
func (a *app) printError(err error, hint string) {
	if a.jsonLogs() {
		attrs := []any{"error", oneLineError(err)}
		if hint != "" {
			attrs = append(attrs, "hint", hint)
		}
		a.plainLogger().Error("pbicopy stopped", attrs...)
		return
	}
	fmt.Fprintf(a.stderr, "pbicopy: %s\n", oneLineError(err))
	if hint != "" {
		fmt.Fprintln(a.stderr, hint)
	}
}
