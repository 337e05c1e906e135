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
	"flag"
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

// usageError is bad usage: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

const usage = `pbicopy copies DAX query results from Power BI into Parquet, CSV and PostgreSQL.

Usage:
  pbicopy run JOB.yaml|DIR... [--param name=value]... [flags]   run jobs
  pbicopy validate JOB.yaml|DIR... [--param name=value]...      check job files without calling any service
  pbicopy validate --online JOB.yaml|DIR...                      also get a token, run each query for one row, probe each sink
  pbicopy plan JOB.yaml --from A --to B [flags]                  print the partitions, queries, outputs and duration, calling nothing
  pbicopy infer JOB.yaml [--sample N]                            sample the query and print a mapping block for the job
  pbicopy infer --query 'EVALUATE ...' --workspace W --dataset D  the same for a query outside a job
  pbicopy query --workspace W --dataset D 'EVALUATE ...'         run DAX and show a table (--format csv|json|parquet -o FILE)
  pbicopy refresh --workspace W --dataset D [--wait] [--timeout 2h]  refresh a dataset, and wait for the refresh to end
  pbicopy demo [--out DIR]                                       run the demo job against the built-in fake Power BI
  pbicopy schema                                                 print the JSON Schema of job files (for editors)
  pbicopy version                                                print the version

Flags of run and validate:
  --param name=value   a template value for queries and output paths (repeatable)
  --summary FILE       write the run summary as JSON (run only)
  --metrics-push URL   push the run's figures to a Prometheus Pushgateway (run only)
  --from A --to B      backfill: one partition per step of the job's partition parameter, inclusive
  --concurrency N      partitions in flight (default 1)
  --rate R             requests per minute for all pages and partitions (default 120, the service's limit)
  --resume             skip partitions already recorded as done
  --shard i/n          run only share i of n of the partitions
  --log-format FORMAT  text or json (default: text on a terminal, json otherwise)
  -v                   debug logging
  --no-progress        no progress line on the terminal

Dataset and credentials of query, infer and refresh (or --job FILE to take a job file's):
  --workspace ID --dataset ID    the dataset
  --tenant ID --client-id ID     the service principal (default $AZURE_TENANT_ID, $AZURE_CLIENT_ID)
  --client-secret-env NAME       the variable holding its secret (default AZURE_CLIENT_SECRET, then
                                 PBI_CLIENT_SECRET; never a flag)
  --certificate FILE             or a certificate (--certificate-password-env NAME)
  --auth-method METHOD           or clientSecret, clientCertificate, workloadIdentity, managedIdentity, azureCLI, default
  --endpoint URL --authority-host URL --cloud public|usgov|china

Exit codes: 0 success; 1 a job failed, an online check failed, or a refresh failed or timed out;
2 bad usage or an invalid job file; 130 interrupted.
`

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
	case "plan":
		err = a.cmdPlan(rest)
	case "validate":
		err = a.cmdValidate(ctx, rest)
	case "infer":
		err = a.cmdInfer(ctx, rest)
	case "query":
		err = a.cmdQuery(ctx, rest)
	case "refresh":
		err = a.cmdRefresh(ctx, rest)
	case "demo":
		err = a.cmdDemo(ctx, rest)
	case "schema":
		err = cmdSchema(stdout, rest)
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
	case errors.Is(err, errJobsFailed) || errors.Is(err, errChecksFailed):
		return exitFailed
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "pbicopy: %v\n", err)
		return exitInterrupted
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
