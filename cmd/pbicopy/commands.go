package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

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

func (p paramFlag) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		parts = append(parts, k+"="+p[k])
	}
	return strings.Join(parts, ",")
}

func (p paramFlag) Type() string { return "name=value" }

func (p paramFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: write name=value", s)
	}
	if _, dup := p[name]; dup {
		return fmt.Errorf("%s is given twice", name)
	}
	p[name] = value
	return nil
}

// addParamFlag registers --param on cmd.
func addParamFlag(cmd *cobra.Command, p paramFlag) {
	cmd.Flags().Var(p, "param", "a template value for queries and output paths (repeatable)")
}

// checkParams refuses a --param that no job takes: a typo must not run a
// job with its default instead.
func checkParams(jobs []*jobfile.Job, params paramFlag) error {
	unused := pipeline.UnusedParams(jobs, params)
	if len(unused) == 0 {
		return nil
	}
	var files, takes []string
	for _, j := range jobs {
		files = append(files, filepath.Base(j.File))
		for _, name := range j.ParamNames() {
			if !slices.Contains(takes, name) {
				takes = append(takes, name)
			}
		}
	}
	slices.Sort(takes)
	if len(files) > 3 {
		files = append(files[:3], fmt.Sprintf("and %d more", len(files)-3))
	}
	known := "it takes no --param"
	if len(jobs) > 1 {
		known = "they take no --param"
	}
	if len(takes) > 0 {
		known = "it takes " + strings.Join(takes, ", ")
		if len(jobs) > 1 {
			known = "they take " + strings.Join(takes, ", ")
		}
	}
	return usagef("--param %s: no job of this run declares or uses it (%s: %s)",
		strings.Join(unused, ", --param "), strings.Join(files, ", "), known)
}

// loadJobs loads and validates job files, reporting every problem,
// warning and note.
func (a *app) loadJobs(loader jobfile.Loader, paths []string) ([]*jobfile.Job, error) {
	jobs, warnings, err := loader.LoadPaths(paths)
	a.reportProblems(warnings)
	var inv *jobfile.InvalidError
	if errors.As(err, &inv) {
		a.reportProblems(inv.Problems)
		a.reportInvalid(len(inv.Problems), "nothing was run")
		return nil, invalidJobs{inv}
	}
	return jobs, err
}

// reportProblems shows the problems of job files on stderr: a line each,
// or a JSON record each when the logs are JSON.
func (a *app) reportProblems(problems []jobfile.Problem) {
	if len(problems) == 0 {
		return
	}
	if !a.jsonLogs() {
		for _, p := range problems {
			fmt.Fprintln(a.stderr, p)
		}
		return
	}
	log := a.plainLogger()
	for _, p := range problems {
		level := slog.LevelError
		switch p.Severity {
		case jobfile.SeverityWarning:
			level = slog.LevelWarn
		case jobfile.SeverityNote:
			level = slog.LevelInfo
		}
		attrs := []any{"file", p.File}
		if p.Line > 0 {
			attrs = append(attrs, "line", p.Line)
		}
		if p.Path != "" {
			attrs = append(attrs, "path", p.Path)
		}
		log.Log(context.Background(), level, p.Message, attrs...)
	}
}

// reportInvalid closes a list of problems: their count and its outcome.
func (a *app) reportInvalid(n int, outcome string) {
	if a.jsonLogs() {
		a.plainLogger().Error("invalid job files", "problems", n, "outcome", outcome)
		return
	}
	fmt.Fprintf(a.stderr, "pbicopy: %d problem(s); %s\n", n, outcome)
}

// runFlags are the flags of run.
type runFlags struct {
	params              paramFlag
	summary             string
	metricsPush         string
	metricsInstance     string
	metricsPushOptional bool
	backfill            backfillFlags
}

func (a *app) newRunCmd() *cobra.Command {
	f := runFlags{params: paramFlag{}}
	cmd := &cobra.Command{
		Use:   "run JOB.yaml|DIR...",
		Short: "Run jobs: query, map, write every sink, publish",
		Long: `Run runs every job named: a job file, or every *.yaml of a folder. Every job is
validated first; if any is invalid, none runs. Jobs then run one after
another; a failed job does not stop the next. A job publishes nothing unless
its whole response was read; its sinks then commit one after another. The
summary ends every run.`,
		Example: `  pbicopy run jobs/sales.yaml
  pbicopy run jobs/                                   # every job of the folder
  pbicopy run jobs/sales.yaml --param day=2024-03-01
  pbicopy run jobs/sales.yaml --from 2024-01-01 --to 2024-12-31 --concurrency 4
  pbicopy run jobs/sales.yaml --from 2024-01-01 --to 2024-12-31 --resume
  pbicopy run jobs/orders-incremental.yaml --param since=2024-03-01   # re-read from a date, once
  pbicopy run jobs/ --summary - > summary.json        # the JSON summary on stdout`,
		Args: atLeastOneJob,
		RunE: func(cmd *cobra.Command, paths []string) error { return a.cmdRun(cmd.Context(), f, paths) },
	}
	addParamFlag(cmd, f.params)
	fl := cmd.Flags()
	fl.StringVar(&f.summary, "summary", "", "write the run summary as JSON to `FILE` (- for standard output)")
	fl.StringVar(&f.metricsPush, "metrics-push", "", "push the run's figures to the Prometheus Pushgateway at `URL`")
	fl.StringVar(&f.metricsInstance, "metrics-instance", "", "the instance grouping label of the pushed figures (default: the host name; a --shard adds a shard label)")
	fl.BoolVar(&f.metricsPushOptional, "metrics-push-optional", false, "a failed push is a warning, not a failure of the run")
	f.backfill.register(fl)
	return cmd
}

func (a *app) cmdRun(ctx context.Context, f runFlags, paths []string) error {
	if f.metricsPush != "" {
		// Before any job runs: a typo must not cost a night's figures.
		if err := metrics.CheckPushURL(f.metricsPush); err != nil {
			return usagef("--metrics-push: %v", err)
		}
	}
	started := time.Now()
	rep, err := a.newReporter()
	if err != nil {
		return err
	}
	defer rep.close()
	jobs, err := a.loadJobs(jobfile.Loader{}, paths)
	if err != nil {
		return writeSummaryOf(f.summary, a.stdout, "run", started, err)
	}
	runner := &pipeline.Runner{Logger: rep.log, Params: f.params, Sources: a.connector(rep, f.backfill.rate), Storage: a.storage(), Progress: rep.progress(), WrapSink: a.wrapSink}
	if err := f.backfill.apply(runner); err != nil {
		return err
	}
	// Parameters, ranges, shards and --resume are checked for every job
	// before any runs: bad usage runs nothing.
	if err := checkParams(jobs, f.params); err != nil {
		return err
	}
	for _, j := range jobs {
		if err := runner.CheckArgs(j); err != nil {
			return usagef("%s: %v", j.File, err)
		}
	}
	return runJobs(ctx, runner, jobs, f, a.stdout, rep)
}

// metricsPushTimeout bounds the push at the end of a run: the figures are
// worth a short wait, not a hung run.
const metricsPushTimeout = 15 * time.Second

// pushRunMetrics pushes the figures of a run to the Pushgateway of
// --metrics-push, even after an interruption, so that the failure is
// recorded. Each job's group is keyed by the instance (--metrics-instance,
// else the host name) and the shard, if any.
func pushRunMetrics(ctx context.Context, f runFlags, shard pipeline.Shard, results []*pipeline.JobResult) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), metricsPushTimeout)
	defer cancel()
	if err := metrics.Push(ctx, f.metricsPush, results, metrics.Options{Instance: f.metricsInstance, Shard: shard}); err != nil {
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

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of job files (for editors)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := jobfile.JSONSchema()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
}
