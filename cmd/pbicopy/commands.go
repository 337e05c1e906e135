package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pbicopy/pbicopy/pipeline"
)

// errJobsFailed reports that at least one job failed at run time (exit 1);
// the failures were logged and summarised already.
var errJobsFailed = errors.New("one or more jobs failed")

// invalidJobs reports invalid job files (exit 2); the problems were printed.
type invalidJobs struct{ err *pipeline.InvalidError }

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
	}
	return fs
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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
func loadJobs(loader pipeline.Loader, paths []string, stderr io.Writer) ([]*pipeline.Job, error) {
	jobs, warnings, err := loader.LoadPaths(paths)
	for _, w := range warnings {
		fmt.Fprintln(stderr, w)
	}
	var inv *pipeline.InvalidError
	if errors.As(err, &inv) {
		fmt.Fprintln(stderr, inv.Error())
		fmt.Fprintf(stderr, "pbicopy: %d problem(s); nothing was run\n", len(inv.Problems))
		return nil, invalidJobs{inv}
	}
	return jobs, err
}

func (a *app) cmdValidate(args []string) error {
	stdout, stderr := a.stdout, a.stderr
	var c commonFlags
	fs := newFlagSet("validate", stderr, &c, false)
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return usagef("%v", err)
	}
	if len(paths) == 0 {
		return usagef("validate needs at least one job file or folder")
	}
	jobs, err := loadJobs(pipeline.Loader{}, paths, stderr)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		fmt.Fprintf(stdout, "%s: ok (job %s)\n", j.File, j.Name)
	}
	return nil
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
	log, err := newLogger(&c, stderr)
	if err != nil {
		return err
	}
	jobs, err := loadJobs(pipeline.Loader{}, paths, stderr)
	if err != nil {
		return err
	}
	runner := &pipeline.Runner{Logger: log, Params: c.params, HTTPClient: a.httpClient}
	return runJobs(ctx, runner, jobs, c.summary, stdout)
}

// runJobs runs jobs one after another (a failed job does not stop the next
// ones), prints the summary, and writes it as JSON when asked.
func runJobs(ctx context.Context, runner *pipeline.Runner, jobs []*pipeline.Job, summaryPath string, stdout io.Writer) error {
	var results []*pipeline.JobResult
	failed := 0
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		r := runner.Run(ctx, j)
		results = append(results, r)
		if r.Status != pipeline.Succeeded {
			failed++
		}
	}
	printSummary(stdout, results)
	if summaryPath != "" {
		if err := writeSummary(summaryPath, results); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if failed > 0 {
		return errJobsFailed
	}
	return nil
}

func writeSummary(path string, results []*pipeline.JobResult) error {
	data, err := json.MarshalIndent(struct {
		Jobs []*pipeline.JobResult `json:"jobs"`
	}{results}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

func printSummary(w io.Writer, results []*pipeline.JobResult) {
	for _, r := range results {
		fmt.Fprintf(w, "job %s: %s in %s, %d rows read (%s", r.Job, r.Status, r.Duration.Round(time.Millisecond), r.Rows, humanBytes(r.Bytes))
		if r.Requests > 0 {
			fmt.Fprintf(w, ", %d request(s)", r.Requests)
		}
		if r.Throttle > 0 {
			fmt.Fprintf(w, ", %d throttled", r.Throttle)
		}
		fmt.Fprintln(w, ")")
		if r.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", r.Error)
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, s := range r.Sinks {
			fmt.Fprintf(tw, "  %s\t%s\t%d rows\t%s\t%s\n", s.Kind, s.Location, s.Rows, humanBytes(s.Bytes), s.Status)
		}
		tw.Flush()
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
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
