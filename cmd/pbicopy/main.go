// Command pbicopy copies the results of DAX queries on Power BI semantic
// models into Parquet, CSV and PostgreSQL, as declared in YAML job files.
//
// Exit codes: 0 every job succeeded; 1 a job failed at run time; 2 bad usage
// or an invalid job file (nothing ran).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/pbicopy/pbicopy/pipeline"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitInvalid = 2
)

// usageError is bad usage: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

const usage = `pbicopy copies DAX query results from Power BI into Parquet, CSV and PostgreSQL.

Usage:
  pbicopy run JOB.yaml|DIR... [--param name=value]... [flags]   run jobs
  pbicopy validate JOB.yaml|DIR... [--param name=value]...      check job files without calling any service
  pbicopy demo [--out DIR]                                       run the demo job against the built-in fake Power BI
  pbicopy version                                                print the version

Flags of run and validate:
  --param name=value   a template value for queries and output paths (repeatable)
  --summary FILE       write the run summary as JSON (run only)
  --log-format FORMAT  text or json (default: text on a terminal, json otherwise)
  -v                   debug logging

Exit codes: 0 all jobs succeeded, 1 a job failed, 2 bad usage or an invalid job file.
`

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit keeps the GC from letting the heap double between
		// cycles; the live heap of a run is well under it.
		debug.SetMemoryLimit(pipeline.DefaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := (&app{stdout: os.Stdout, stderr: os.Stderr}).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// app is the command with its outputs.
type app struct {
	stdout, stderr io.Writer
	// httpClient carries Power BI and Entra ID requests; nil means the
	// default. Tests set it to trust a fake service's certificate.
	httpClient *http.Client
}

// run is the whole command; it returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	stdout, stderr := a.stdout, a.stderr
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitInvalid
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		err = a.cmdRun(ctx, rest)
	case "validate":
		err = a.cmdValidate(rest)
	case "demo":
		err = a.cmdDemo(ctx, rest)
	case "version", "--version":
		err = cmdVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		err = usagef("unknown command %q", cmd)
	}
	var ue usageError
	var ie invalidJobs
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "pbicopy: %s\n\n%s", ue.msg, usage)
		return exitInvalid
	case errors.As(err, &ie):
		return exitInvalid
	case errors.Is(err, errJobsFailed):
		return exitFailed
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	fmt.Fprintf(stderr, "pbicopy: %v\n", err)
	return exitFailed
}

// parseInterleaved parses flags wherever they stand among the positional
// arguments (pbicopy run job.yaml --param a=b).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
