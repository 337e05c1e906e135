package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/source"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// inferFlags are the flags of infer.
type inferFlags struct {
	params paramFlag
	source sourceFlags
	query  string
	sample int
}

func (a *app) newInferCmd() *cobra.Command {
	f := inferFlags{params: paramFlag{}}
	cmd := &cobra.Command{
		Use:   "infer [JOB.yaml]",
		Short: "Read a job's first response (or --query's) and print a mapping: block for it",
		Long: `Infer reads what a job without a mapping infers its columns from (the whole
first response of its query, the first page of a paged job, or the saved
response of a source.file job) and prints the mapping: block of the columns
it infers, with a comment on every choice to review.`,
		Example: `  pbicopy infer jobs/new.yaml > mapping.yaml
  pbicopy infer --workspace W --dataset D --query 'EVALUATE TOPN(100, Sales)'`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, pos []string) error { return a.cmdInfer(cmd.Context(), f, pos) },
	}
	addParamFlag(cmd, f.params)
	f.source.register(cmd.Flags(), false)
	cmd.Flags().StringVar(&f.query, "query", "", "the DAX `query` to read (instead of a job file's)")
	cmd.Flags().IntVar(&f.sample, "sample", 0, "read only the first `N` rows (default: the whole first response, as a run does)")
	return cmd
}

// cmdInfer reads a query's first response and prints a mapping block for
// a job file.
func (a *app) cmdInfer(ctx context.Context, f inferFlags, pos []string) error {
	if f.sample < 0 {
		return usagef("--sample %d: use 1 or more (0: the whole first response)", f.sample)
	}
	sf := &f.source
	var spec source.Spec
	var query string
	switch {
	case len(pos) == 1 && f.query == "":
		if sf.adhocFlagsGiven() {
			return usagef("infer JOB takes the dataset and credentials from the job file: leave out the dataset and credential flags")
		}
		job, err := a.jobSource(pos[0], true)
		if err != nil {
			return err
		}
		rendered, err := job.Render(f.params, false)
		if err != nil {
			return usagef("job %s: %v", job.Name, err)
		}
		spec, query = job.Source, rendered.Query
		if pb := spec.PowerBI; pb != nil && pb.Paging != nil {
			query = rendered.Source // the table expression
		}
	case len(pos) == 0 && f.query != "":
		pb, err := sf.spec()
		if err != nil {
			return err
		}
		spec, query = source.Spec{PowerBI: pb}, f.query
	default:
		return usagef("infer needs a job file, or --query 'EVALUATE ...' with --workspace and --dataset")
	}
	rep, err := a.newReporter()
	if err != nil {
		return err
	}
	defer rep.close()
	var res powerbi.InferResult
	if pb := spec.PowerBI; pb != nil && pb.DaxQueries() {
		// The Arrow API says the types: its schema alone, no rows.
		var cols []powerbi.InferredColumn
		cols, res.QueryStats, err = a.connector(rep, 0).InferArrow(ctx, pb, query)
		res.Columns, res.Query, res.Rows = cols, query, -1
		res.Read = "the Arrow schema of the result (executeDaxQueries, schemaOnly: no rows read)"
	} else {
		res, err = a.connector(rep, 0).Infer(ctx, spec, query, f.sample)
	}
	rep.close()
	if err != nil {
		return err
	}
	printMapping(a.stdout, res)
	return nil
}

// printMapping writes a mapping block ready to paste into a job file, with
// a comment on every column the data engineer should look at. A column
// null in every row is written commented out, for its type to be filled
// in: no type can be inferred for it. Rows < 0 says the columns come from
// the result's Arrow schema (executeDaxQueries), not from rows.
func printMapping(w io.Writer, res powerbi.InferResult) {
	rows := res.Rows
	if rows < 0 {
		fmt.Fprintf(w, "# Inferred by pbicopy infer from %s of:\n", res.Read)
		for _, l := range strings.Split(strings.TrimSpace(res.Query), "\n") {
			fmt.Fprintf(w, "#   %s\n", strings.TrimRight(l, " \t\r"))
		}
		fmt.Fprintln(w, "# The types are the model's own; change one to cast (date keeps the day of a midnight date-time).")
		fmt.Fprintln(w, "mapping:")
		fmt.Fprintln(w, "  columns:")
		for _, c := range res.Columns {
			if c.Note != "" {
				fmt.Fprintf(w, "    # %s: %s\n", c.From, c.Note)
			}
			fmt.Fprintf(w, "    %s\n", c.Line())
		}
		fmt.Fprintln(w, "  unmapped: error")
		return
	}
	if res.Query != "" {
		fmt.Fprintf(w, "# Inferred by pbicopy infer from %s (%d rows) of:\n", res.Read, rows)
		for _, l := range strings.Split(strings.TrimSpace(res.Query), "\n") {
			fmt.Fprintf(w, "#   %s\n", strings.TrimRight(l, " \t\r"))
		}
	} else {
		fmt.Fprintf(w, "# Inferred by pbicopy infer from %s (%d rows).\n", res.Read, rows)
	}
	if res.Cut != nil {
		fmt.Fprintf(w, "# The response was cut after %d rows by the service's limits: a run of this query fails; page it or narrow it.\n", rows)
	}
	fmt.Fprintln(w, "# These are the types a run without a mapping infers; review the commented columns.")
	fmt.Fprintln(w, "mapping:")
	fmt.Fprintln(w, "  columns:")
	for _, c := range res.Columns {
		if c.Renamed {
			fmt.Fprintf(w, "    # %s is named %s: its column name collides with another key's\n", c.From, c.To)
		}
		if c.NonNull == 0 {
			fmt.Fprintf(w, "    # %s: null in all %d rows: no type can be inferred; write its type and uncomment the line\n", c.From, rows)
			fmt.Fprintf(w, "    # - { from: %s, to: %s, type: TYPE }\n", mapping.YAMLString(c.From), mapping.YAMLName(c.To))
			continue
		}
		if c.Note != "" {
			fmt.Fprintf(w, "    # %s: %s\n", c.From, c.Note)
		} else if c.NonNull < rows {
			fmt.Fprintf(w, "    # %s: null in %d of %d rows\n", c.From, rows-c.NonNull, rows)
		}
		fmt.Fprintf(w, "    %s\n", c.Line())
	}
	fmt.Fprintln(w, "  unmapped: error")
}
