package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// errChecksFailed reports that an online check failed (exit 1); the
// failures were printed.
var errChecksFailed = errors.New("one or more online checks failed")

// validateFlags are the flags of validate.
type validateFlags struct {
	params  paramFlag
	online  bool
	skipEnv bool
}

func (a *app) newValidateCmd() *cobra.Command {
	f := validateFlags{params: paramFlag{}}
	cmd := &cobra.Command{
		Use:   "validate JOB.yaml|DIR...",
		Short: "Check job files without calling any service (--online: also the token, the query, the sinks)",
		Long: `Validate checks job files as run would, all problems at once, each with its
file, line and field path, calling nothing: the schema, types, templates
(query and paths), the parameters, the environment variables.

--skip-env checks the structure alone, for authoring without the secrets: an
unset ${NAME} is a note, not a problem. --online also gets a token, runs each
query for one row and probes each sink, moving no data.`,
		Example: `  pbicopy validate jobs/
  pbicopy validate --skip-env jobs/          # in a fresh checkout, without the secrets
  pbicopy validate --online jobs/sales.yaml`,
		Args: atLeastOneJob,
		RunE: func(cmd *cobra.Command, paths []string) error { return a.cmdValidate(cmd.Context(), f, paths) },
	}
	addParamFlag(cmd, f.params)
	cmd.Flags().BoolVar(&f.online, "online", false, "also get a token, run each query sampled to one row, and probe each sink, moving no data")
	cmd.Flags().BoolVar(&f.skipEnv, "skip-env", false, "check the structure without the environment: an unset ${NAME} is a note")
	return cmd
}

// cmdValidate checks job files: statically (schema, types, templates,
// paths, environment variables; literal secrets warned), and with --online
// also against the services, without moving data.
func (a *app) cmdValidate(ctx context.Context, f validateFlags, paths []string) error {
	stdout := a.stdout
	if f.online && f.skipEnv {
		return usagef("--online needs the environment that --skip-env leaves out: give one of them")
	}
	jobs, err := a.loadJobs(jobfile.Loader{SkipEnv: f.skipEnv}, paths)
	if err != nil {
		return err
	}
	runner := &pipeline.Runner{Params: f.params, Storage: a.storage()}
	// Templates rendered with --param, the defaults, and placeholders for
	// values given only at run time.
	var problems []jobfile.Problem
	notes := map[*jobfile.Job]string{}
	for _, j := range jobs {
		if _, err := j.Render(f.params, true); err != nil {
			problems = append(problems, jobfile.Problem{File: j.File, Message: err.Error()})
			continue
		}
		if _, missing := j.TemplateParams(f.params); len(missing) > 0 {
			var give []string
			for _, m := range missing {
				give = append(give, "--param "+m+"=...")
			}
			notes[j] = "; needs " + strings.Join(give, " ") + " at run time"
		}
	}
	if len(problems) > 0 {
		a.reportProblems(problems)
		a.reportInvalid(len(problems), "the jobs are invalid")
		return invalidJobs{&jobfile.InvalidError{Problems: problems}}
	}
	if !f.online {
		for _, j := range jobs {
			fmt.Fprintf(stdout, "%s: ok (job %s%s)\n", j.File, j.Name, notes[j])
		}
		return nil
	}
	log, err := a.newLogger()
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
