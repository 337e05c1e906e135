package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The command line is spf13/cobra with pflag, as kubectl, helm and gh have
// it: `pbicopy <command> --help` and `pbicopy help <command>` print that
// command's help on stdout; a usage error is one line and a hint, exit 2;
// every flag can also be set as PBICOPY_<FLAG> in the environment (a flag
// given on the command line wins).

// version is stamped by release builds and the image:
// go build -ldflags "-X main.version=v1.2.3" ./cmd/pbicopy
var version string

// envPrefix starts the environment variable of every flag.
const envPrefix = "PBICOPY_"

// logFlags are the flags every command takes.
type logFlags struct {
	format     string
	verbose    bool
	noProgress bool
}

// usageError is bad usage: exit code 2, the message and a hint to the
// command's help.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

const rootLong = `pbicopy copies the results of DAX queries on Power BI semantic models into
Parquet and CSV files (local or Azure Blob Storage) and PostgreSQL tables, as
declared in YAML job files. It streams the response and writes it in batches.

Exit codes: 0 every job succeeded; 1 a job failed at run time, an online check
failed, or a refresh did not complete; 2 bad usage or an invalid job file
(nothing ran); 130 interrupted (SIGINT or SIGTERM).

Every flag can also be set in the environment as PBICOPY_<FLAG>, for example
PBICOPY_LOG_FORMAT=json or PBICOPY_SHARD=auto/4; a flag on the command line
wins. Secrets are never flags: they come from the environment or files.`

// newRoot builds the command tree of one invocation.
func (a *app) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "pbicopy",
		Short:         "Copy DAX query results from Power BI into Parquet, CSV and PostgreSQL",
		Long:          rootLong,
		Version:       versionLine(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		// Without a command: the help, as kubectl and gh do.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return fromEnv(cmd.Flags())
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&a.logs.format, "log-format", "", "log format: text or json (default text on a terminal, json otherwise)")
	pf.BoolVarP(&a.logs.verbose, "verbose", "v", false, "debug logging")
	pf.BoolVar(&a.logs.noProgress, "no-progress", false, "no progress line on the terminal")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err.Error()} })
	root.AddGroup(&cobra.Group{ID: "jobs", Title: "Jobs:"}, &cobra.Group{ID: "adhoc", Title: "Without a job file:"})
	for _, c := range []*cobra.Command{a.newRunCmd(), a.newPlanCmd(), a.newValidateCmd(), a.newInferCmd(), a.newInitCmd()} {
		c.GroupID = "jobs"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.newQueryCmd(), a.newRefreshCmd(), a.newDemoCmd()} {
		c.GroupID = "adhoc"
		root.AddCommand(c)
	}
	root.AddCommand(newSchemaCmd(), newVersionCmd())
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	// Cobra adds these at Execute; now, so that unknownCommand knows them
	// (and after SetOut: completion takes its writer when it is made).
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.SuggestionsMinimumDistance = 2
	return root
}

// args checks a command's positional arguments, as a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err.Error()}
		}
		return nil
	}
}

// atLeastOneJob is the positional check of the commands that take job
// files and folders.
func atLeastOneJob(cmd *cobra.Command, a []string) error {
	if len(a) == 0 {
		return usagef("%s needs at least one job file or folder", cmd.Name())
	}
	return nil
}

// envName is the environment variable of a flag: PBICOPY_LOG_FORMAT for
// --log-format.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// fromEnv sets every flag not given on the command line from its
// environment variable, if set. A bad value is a usage error naming the
// variable.
func fromEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" || f.Name == "version" {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, usagef("%s=%q: %v", envName(f.Name), v, err))
		}
	})
	return errors.Join(errs...)
}

// unknownCommand returns the usage error of args that start with a word
// that names no command, with the commands it may have meant; nil when the
// first word is a command, a flag, or absent.
func unknownCommand(root *cobra.Command, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return nil
	}
	for _, c := range root.Commands() {
		if c.Name() == args[0] || slices.Contains(c.Aliases, args[0]) {
			return nil
		}
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := root.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return usageError{msg}
}

// versionLine is what `pbicopy version` and --version print first: the
// stamped version, else the module's; the VCS revision when Go embedded
// one; the Go version.
func versionLine() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v == "" {
			v = "(unknown)"
		}
		return "pbicopy " + v
	}
	if v == "" {
		v = bi.Main.Version
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	line := "pbicopy " + v
	if rev != "" {
		line += fmt.Sprintf(" (revision %.12s%s)", rev, modified)
	}
	return line + " " + bi.GoVersion
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, and those of the main libraries",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, versionLine())
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, d := range bi.Deps {
					for _, key := range []string{"azidentity", "azcore", "azblob", "arrow-go", "pgx", "yaml", "go-json-experiment"} {
						if strings.Contains(d.Path, key) {
							fmt.Fprintf(w, "  %s %s\n", d.Path, d.Version)
							break
						}
					}
				}
			}
			return nil
		},
	}
}
