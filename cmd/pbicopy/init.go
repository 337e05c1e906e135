package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pbicopy/pbicopy/mapping"
)

// jobNameRE is the job-name rule of the job file (jobfile.Job.Name).
var jobNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// initFlags are the flags of init.
type initFlags struct {
	out, sourceFile string
	force           bool
}

func (a *app) newInitCmd() *cobra.Command {
	var f initFlags
	cmd := &cobra.Command{
		Use:   "init NAME",
		Short: "Write a commented job skeleton that validates, to start a new job from",
		Long: `Init writes NAME.yaml: a job named NAME with a Power BI source whose ids and
credentials come from the environment (PBI_WORKSPACE_ID, PBI_DATASET_ID,
AZURE_TENANT_ID, AZURE_CLIENT_ID, and AZURE_CLIENT_SECRET or PBI_CLIENT_SECRET),
a query to replace, and a Parquet and a CSV output under out/NAME/. Every line
says what to change; 'pbicopy validate --skip-env NAME.yaml' passes as written.

With --source-file, the job replays a saved executeQueries response instead
(the demo writes one: demo-out/response.json), so the whole walk from infer to
run works offline before the job is pointed at Power BI.`,
		Example: `  pbicopy init sales-daily
  pbicopy init first-job --source-file demo-out/response.json
  pbicopy init sales-daily -o - > jobs/sales-daily.yaml`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, pos []string) error { return a.cmdInit(f, pos[0]) },
	}
	cmd.Flags().StringVarP(&f.out, "output", "o", "", "write to `FILE` (- for stdout; default NAME.yaml)")
	cmd.Flags().StringVar(&f.sourceFile, "source-file", "", "replay the saved executeQueries response `FILE` instead of querying Power BI")
	cmd.Flags().BoolVar(&f.force, "force", false, "overwrite the output file if it exists")
	return cmd
}

func (a *app) cmdInit(f initFlags, name string) error {
	if !jobNameRE.MatchString(name) {
		return usagef("%q is not a job name: use lowercase letters, digits and -, starting with a letter or digit, at most 63 characters", name)
	}
	text := jobSkeleton(name, f.sourceFile)
	if f.out == "-" {
		_, err := fmt.Fprint(a.stdout, text)
		return err
	}
	out := f.out
	if out == "" {
		out = name + ".yaml"
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if f.force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	file, err := os.OpenFile(out, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return usagef("%s exists: choose another -o, or --force to overwrite it", out)
	}
	if err != nil {
		return err
	}
	if _, err := file.WriteString(text); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "wrote %s. Next:\n", out)
	if f.sourceFile == "" {
		fmt.Fprintf(a.stdout, "  pbicopy validate --skip-env %s     # the structure, without credentials\n", out)
		fmt.Fprintf(a.stdout, "  export PBI_WORKSPACE_ID=... PBI_DATASET_ID=... AZURE_TENANT_ID=... AZURE_CLIENT_ID=... AZURE_CLIENT_SECRET=...\n")
		fmt.Fprintf(a.stdout, "  pbicopy validate --online %s       # the token, a one-row query, a probe of each output\n", out)
	} else {
		fmt.Fprintf(a.stdout, "  pbicopy validate %s\n", out)
	}
	fmt.Fprintf(a.stdout, "  pbicopy infer %s                   # a mapping: block with the column types, to paste in\n", out)
	fmt.Fprintf(a.stdout, "  pbicopy plan %s && pbicopy run %s\n", out, out)
	return nil
}

// jobSkeleton is the job init writes for name: every line a newcomer must
// look at carries a comment.
func jobSkeleton(name, sourceFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Job %[1]s, written by pbicopy init. Every field: docs/job-reference.md
# (pbicopy schema > job.schema.json gives an editor completion; point a
# "# yaml-language-server: $schema=job.schema.json" first line at it).
name: %[1]s
`, name)
	if sourceFile != "" {
		fmt.Fprintf(&b, `source:
  # A saved executeQueries response, replayed exactly as a live one is read.
  # To query Power BI instead, replace this line with a powerbi: block
  # (pbicopy init %[1]s -o - prints one).
  file: %[2]s
`, name, mapping.YAMLString(sourceFile))
	} else {
		b.WriteString(`source:
  powerbi:
    # The ids are in the dataset's URL: .../groups/<workspace>/datasets/<dataset>/...
    workspace: ${PBI_WORKSPACE_ID}
    dataset: ${PBI_DATASET_ID}
    # One EVALUATE. A value that changes per run is a parameter: declare it
    # under params: and write {{ dax .name }} (docs/backfills.md).
    query: |
      EVALUATE
      TOPN(1000, 'Sales')
    # A service principal with at least Viewer on the workspace. Its secret
    # is read from AZURE_CLIENT_SECRET, then PBI_CLIENT_SECRET; for other
    # credentials (certificate, workload identity, az login) see docs/sources.md.
    auth:
      tenant: ${AZURE_TENANT_ID}
      clientId: ${AZURE_CLIENT_ID}
`)
	}
	fmt.Fprintf(&b, `# Without a mapping: block the column types are inferred from the data at
# every run. For a scheduled job, paste the block pbicopy infer prints here:
# the types are then reviewed once, and a later day's values cannot change them.
sinks:
  - parquet: { path: out/%[1]s/%[1]s.parquet, compression: zstd }
  - csv: { path: out/%[1]s/%[1]s.csv }
  # - postgres: { dsn: "${PG_DSN}", table: analytics.%[2]s, mode: replace }
`, name, strings.ReplaceAll(name, "-", "_"))
	return b.String()
}
