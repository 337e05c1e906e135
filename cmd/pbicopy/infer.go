package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pbicopy/pbicopy/source"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// defaultSample is the number of rows infer samples.
const defaultSample = 1000

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
		Short: "Sample a job's query (or --query) and print a mapping: block for it",
		Example: `  pbicopy infer jobs/new.yaml > mapping.yaml
  pbicopy infer --workspace W --dataset D --query 'EVALUATE TOPN(100, Sales)'`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, pos []string) error { return a.cmdInfer(cmd.Context(), f, pos) },
	}
	addParamFlag(cmd, f.params)
	f.source.register(cmd.Flags(), false)
	cmd.Flags().StringVar(&f.query, "query", "", "the DAX `query` to sample (instead of a job file's)")
	cmd.Flags().IntVar(&f.sample, "sample", defaultSample, "rows to sample")
	return cmd
}

// cmdInfer samples a query and prints a mapping block for a job file.
func (a *app) cmdInfer(ctx context.Context, f inferFlags, pos []string) error {
	if f.sample < 1 {
		return usagef("--sample %d: use 1 or more", f.sample)
	}
	sf := &f.source
	var pb *source.PowerBISpec
	var dax string
	switch {
	case len(pos) == 1 && f.query == "":
		if sf.adhocFlagsGiven() {
			return usagef("infer JOB takes the dataset and credentials from the job file: leave out the dataset and credential flags")
		}
		job, err := a.jobSource(pos[0])
		if err != nil {
			return err
		}
		rendered, err := job.Render(f.params, false)
		if err != nil {
			return usagef("job %s: %v", job.Name, err)
		}
		pb, dax = job.Source.PowerBI, rendered.Query
	case len(pos) == 0 && f.query != "":
		var err error
		if pb, err = sf.spec(); err != nil {
			return err
		}
		dax = f.query
	default:
		return usagef("infer needs a job file, or --query 'EVALUATE ...' with --workspace and --dataset")
	}
	rep, err := a.newReporter()
	if err != nil {
		return err
	}
	defer rep.close()
	if pb.DaxQueries() {
		// The Arrow API says the types: its schema alone, no rows.
		cols, _, err := a.connector(rep, 0).InferArrow(ctx, pb, dax)
		rep.close()
		if err != nil {
			return err
		}
		printMapping(a.stdout, cols, -1, dax)
		return nil
	}
	cols, qs, err := a.connector(rep, 0).InferSample(ctx, pb, dax, f.sample)
	rep.close()
	if err != nil {
		return err
	}
	sampled, _ := source.SampleQuery(dax, f.sample)
	printMapping(a.stdout, cols, int(qs.Rows), sampled)
	return nil
}

// printMapping writes a mapping block ready to paste into a job file, with
// a comment on every column the data engineer should look at. rows < 0
// says the columns come from the result's Arrow schema (executeDaxQueries),
// not from sampled rows.
func printMapping(w io.Writer, cols []powerbi.InferredColumn, rows int, query string) {
	if rows < 0 {
		fmt.Fprintln(w, "# Inferred by pbicopy infer from the Arrow schema of the result (executeDaxQueries, schemaOnly: no rows read) of:")
	} else {
		fmt.Fprintf(w, "# Inferred by pbicopy infer from %d sampled row(s) of:\n", rows)
	}
	for _, l := range strings.Split(strings.TrimSpace(query), "\n") {
		fmt.Fprintf(w, "#   %s\n", strings.TrimRight(l, " \t\r"))
	}
	if rows < 0 {
		fmt.Fprintln(w, "# The types are the model's own; change one to cast (date keeps the day of a midnight date-time).")
	} else {
		fmt.Fprintln(w, "# Review the types: a sample may not show every value the model holds.")
	}
	fmt.Fprintln(w, "mapping:")
	fmt.Fprintln(w, "  columns:")
	for _, c := range cols {
		if c.Renamed {
			fmt.Fprintf(w, "    # %s is named %s: its column name collides with another key's\n", c.From, c.To)
		}
		if c.Note != "" {
			fmt.Fprintf(w, "    # %s: %s\n", c.From, c.Note)
		} else if c.NonNull < rows {
			fmt.Fprintf(w, "    # %s: null in %d of %d sampled rows\n", c.From, rows-c.NonNull, rows)
		}
		fmt.Fprintf(w, "    - { from: %s, to: %s, type: %s }\n", yamlString(c.From), yamlName(c.To), yamlName(c.Type.String()))
	}
	fmt.Fprintln(w, "  unmapped: error")
}

// yamlString quotes s as a YAML double-quoted scalar: Go's escapes (\n,
// \t, \", \\, \xNN, \uNNNN, \UNNNNNNNN) are all YAML escapes too.
func yamlString(s string) string { return strconv.Quote(s) }

var plainNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// yamlReserved are the plain scalars a YAML reader may take for something
// other than a string.
var yamlReserved = map[string]bool{"null": true, "true": true, "false": true, "yes": true, "no": true, "on": true, "off": true, "y": true, "n": true}

// yamlName writes a column name or type plain when YAML reads it back as
// that string, and quoted otherwise.
func yamlName(s string) string {
	if plainNameRE.MatchString(s) && !yamlReserved[s] {
		return s
	}
	return yamlString(s)
}
