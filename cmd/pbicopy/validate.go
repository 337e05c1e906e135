package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// errChecksFailed reports that an online check failed (exit 1); the
// failures were printed.
var errChecksFailed = errors.New("one or more online checks failed")

// cmdValidate checks job files: statically (schema, types, templates,
// paths, environment variables; literal secrets warned), and with --online
// also against the services, without moving data.
func (a *app) cmdValidate(ctx context.Context, args []string) error {
	stdout, stderr := a.stdout, a.stderr
	var c commonFlags
	fs := newFlagSet("validate", stderr, &c, false)
	online := fs.Bool("online", false, "also get a token, run each query sampled to one row, and probe each sink, moving no data")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return usagef("%v", err)
	}
	if len(paths) == 0 {
		return usagef("validate needs at least one job file or folder")
	}
	jobs, err := loadJobs(jobfile.Loader{}, paths, stderr)
	if err != nil {
		return err
	}
	runner := &pipeline.Runner{Params: c.params, Storage: a.storage()}
	// Templates rendered with --param, the defaults, and placeholders for
	// values given only at run time.
	var problems []jobfile.Problem
	notes := map[*jobfile.Job]string{}
	for _, j := range jobs {
		if _, err := j.Render(c.params, true); err != nil {
			problems = append(problems, jobfile.Problem{File: j.File, Message: err.Error()})
			continue
		}
		if _, missing := j.TemplateParams(c.params); len(missing) > 0 {
			var give []string
			for _, m := range missing {
				give = append(give, "--param "+m+"=...")
			}
			notes[j] = "; needs " + strings.Join(give, " ") + " at run time"
		}
	}
	if len(problems) > 0 {
		inv := &jobfile.InvalidError{Problems: problems}
		fmt.Fprintln(stderr, inv.Error())
		fmt.Fprintf(stderr, "pbicopy: %d problem(s)\n", len(problems))
		return invalidJobs{inv}
	}
	if !*online {
		for _, j := range jobs {
			fmt.Fprintf(stdout, "%s: ok (job %s%s)\n", j.File, j.Name, notes[j])
		}
		return nil
	}
	log, err := newLogger(&c, stderr)
	if err != nil {
		return err
	}
	runner.Logger = log
	runner.Sources = &powerbi.Connector{HTTPClient: a.httpClient, Logger: log, RetryDelay: a.pollInterval}
	failed := 0
	for _, j := range jobs {
		fmt.Fprintf(stdout, "%s (job %s):\n", j.File, j.Name)
		for _, ch := range runner.CheckOnline(ctx, j) {
			mark := "ok  "
			if !ch.OK {
				mark = "FAIL"
				failed++
			}
			fmt.Fprintf(stdout, "  %s  %s: %s\n", mark, ch.Name, ch.Message)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d check(s) failed\n", failed)
		return errChecksFailed
	}
	fmt.Fprintln(stdout, "all checks passed")
	return nil
}
