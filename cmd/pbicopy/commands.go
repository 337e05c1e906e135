package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/internal/metrics"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/pipeline"
)

// errJobsFailed reports that at least one job failed at run time (exit 1);
// the failures were logged and summarised already.
var errJobsFailed = errors.New("one or more jobs failed")

// invalidJobs reports invalid job files (exit 2); the problems were printed.
type invalidJobs struct{ err *jobfile.InvalidError }

func (e invalidJobs) Error() string { return e.err.Error() }

// paramFlag collects repeated --param name=value flags.
type paramFlag map[string]string

func (p paramFlag) String() string { return "" }

func (p paramFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("--param %q: write name=value", s)
	}
	if _, dup := p[name]; dup {
		return fmt.Errorf("--param %s is given twice", name)
	}
	p[name] = value
	return nil
}

// commonFlags are the flags of run and validate.
type commonFlags struct {
	params    paramFlag
	logFormat string
	verbose   bool
	summary   string
	backfill  backfillFlags
	// metricsPush is the Prometheus Pushgateway the run's figures go to.
	metricsPush string
	// noProgress turns the progress line off on a terminal.
	noProgress bool
}

func newFlagSet(name string, stderr io.Writer, c *commonFlags, withRun bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.params = paramFlag{}
	fs.Var(c.params, "param", "a template value `name=value` (repeatable)")
	fs.StringVar(&c.logFormat, "log-format", "", "log format: text or json (default: text on a terminal, json otherwise)")
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
	if withRun {
		fs.StringVar(&c.summary, "summary", "", "write the run summary as JSON to `FILE`")
		fs.StringVar(&c.metricsPush, "metrics-push", "", "push the run's figures to the Prometheus Pushgateway at `URL`")
		c.backfill.register(fs)
		fs.BoolVar(&c.noProgress, "no-progress", false, "no progress line on the terminal")
	}
	return fs
}

func newLogger(c *commonFlags, stderr io.Writer) (*slog.Logger, error) {
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	format := c.logFormat
	if format == "" {
		format = "json"
		if isTerminal(stderr) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, usagef("--log-format %q: use text or json", format)
}

// loadJobs loads and validates job files, printing every problem and
// warning to stderr.
func loadJobs(loader jobfile.Loader, paths []string, stderr io.Writer) ([]*jobfile.Job, error) {
	jobs, warnings, err := loader.LoadPaths(paths)
	for _, w := range warnings {
		fmt.Fprintln(stderr, w)
	}
	var inv *jobfile.InvalidError
	if errors.As(err, &inv) {
		fmt.Fprintln(stderr, inv.Error())
		fmt.Fprintf(stderr, "pbicopy: %d problem(s); nothing was run\n", len(inv.Problems))
		return nil, invalidJobs{inv}
	}
	return jobs, err
}

func (a *app) cmdRun(ctx context.Context, args []string) error {
	stdout, stderr := a.stdout, a.stderr
	var c commonFlags
	fs := newFlagSet("run", stderr, &c, true)
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return usagef("%v", err)
	}
	if len(paths) == 0 {
		return usagef("run needs at least one job file or folder")
	}
	if c.metricsPush != "" {
		// Before any job runs: a typo must not cost a night's figures.
		if err := metrics.CheckPushURL(c.metricsPush); err != nil {
			return usagef("--metrics-push: %v", err)
		}
	}
	started := time.Now()
	rep, err := a.newReporter(&c)
	if err != nil {
		return err
	}
	defer rep.close()
	jobs, err := loadJobs(jobfile.Loader{}, paths, stderr)
	if err != nil {
		return writeSummaryOf(c.summary, stdout, "run", started, err)
	}
	runner := &pipeline.Runner{Logger: rep.log, Params: c.params, Sources: a.connector(rep, c.backfill.rate), Storage: a.storage(), Progress: rep.progress(), WrapSink: a.wrapSink}
	if err := c.backfill.apply(runner); err != nil {
		return err
	}
	// Parameters, ranges, shards and --resume are checked for every job
	// before any runs: bad usage runs nothing.
	for _, j := range jobs {
		if err := runner.CheckArgs(j); err != nil {
			return usagef("%s: %v", j.File, err)
		}
	}
	return runJobs(ctx, runner, jobs, c.summary, c.metricsPush, stdout, rep)
}

// metricsPushTimeout bounds the push at the end of a run: the figures are
// worth a short wait, not a hung run.
const metricsPushTimeout = 15 * time.Second

// pushRunMetrics pushes the figures of a run to the Pushgateway at url,
// even after an interruption, so that the failure is recorded.
func pushRunMetrics(ctx context.Context, url string, results []*pipeline.JobResult) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), metricsPushTimeout)
	defer cancel()
	if err := metrics.Push(ctx, nil, url, results, ""); err != nil {
		return fmt.Errorf("push metrics: %w", err)
	}
	return nil
}

// withFailure adds more, a failure after the jobs ran, to err, the run's
// outcome. Alone, more is shown and exits 1; after failed jobs it stands
// for errJobsFailed (still exit 1), which would hide it; after an
// interruption both are shown.
func withFailure(err, more error) error {
	switch {
	case more == nil:
		return err
	case err == nil || errors.Is(err, errJobsFailed):
		return more
	}
	return errors.Join(err, more)
}

// cmdSchema prints the JSON Schema of job files.
func cmdSchema(stdout io.Writer, args []string) error {
	if len(args) > 0 {
		return usagef("schema takes no arguments")
	}
	data, err := jobfile.JSONSchema()
	if err != nil {
		return err
	}
	_, err = stdout.Write(data)
	return err
}

func cmdVersion(stdout io.Writer) error {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(stdout, "pbicopy (no build information)")
		return nil
	}
	fmt.Fprintf(stdout, "pbicopy %s (%s)\n", bi.Main.Version, bi.GoVersion)
	for _, d := range bi.Deps {
		for _, key := range []string{"azidentity", "azcore", "azblob", "arrow-go", "pgx", "yaml", "go-json-experiment"} {
			if strings.Contains(d.Path, key) {
				fmt.Fprintf(stdout, "  %s %s\n", d.Path, d.Version)
				break
			}
		}
	}
	return nil
}
