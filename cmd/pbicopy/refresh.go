package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// tablesFlag collects repeated --table Table[/Partition] flags.
type tablesFlag []powerbi.RefreshObject

func (t *tablesFlag) String() string { return "" }

func (t *tablesFlag) Set(s string) error {
	table, part, _ := strings.Cut(s, "/")
	if strings.TrimSpace(table) == "" {
		return fmt.Errorf("--table %q: write Table or Table/Partition", s)
	}
	*t = append(*t, powerbi.RefreshObject{Table: table, Partition: part})
	return nil
}

func (t *tablesFlag) Type() string { return "Table[/Partition]" }

// refreshFlags are the flags of refresh.
type refreshFlags struct {
	source  sourceFlags
	wait    bool
	timeout time.Duration
	opts    powerbi.RefreshOptions
}

func (a *app) newRefreshCmd() *cobra.Command {
	var f refreshFlags
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Refresh a dataset, and wait for the refresh to end",
		Long: `Refresh starts a refresh of a dataset (an enhanced refresh when any of its
options is given) and, with --wait, waits for it to end: exit 0 when it
completed; 1 when it failed, was cancelled, timed out, or another refresh was
running.`,
		Example: `  pbicopy refresh --workspace W --dataset D --wait --timeout 2h
  pbicopy refresh --job jobs/sales.yaml --wait --table Sales --type dataOnly`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.cmdRefresh(cmd.Context(), &f) },
	}
	fl := cmd.Flags()
	f.source.register(fl, true)
	fl.BoolVar(&f.wait, "wait", false, "wait for the refresh to end")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Hour, "with --wait: how long to wait")
	fl.StringVar(&f.opts.Type, "type", "", "enhanced refresh: full, clearValues, calculate, dataOnly, automatic or defragment")
	fl.StringVar(&f.opts.CommitMode, "commit-mode", "", "enhanced refresh: transactional or partialBatch")
	fl.IntVar(&f.opts.MaxParallelism, "max-parallelism", 0, "enhanced refresh: parallel processing threads")
	fl.IntVar(&f.opts.RetryCount, "retry-count", 0, "enhanced refresh: attempts before failing")
	fl.Var((*tablesFlag)(&f.opts.Objects), "table", "enhanced refresh: refresh only `Table` or Table/Partition (repeatable)")
	return cmd
}

// cmdRefresh starts a dataset refresh and, with --wait, waits for it to
// end: exit 0 when it completed, 1 when it failed, was cancelled, timed out
// or another refresh was running.
func (a *app) cmdRefresh(ctx context.Context, f *refreshFlags) error {
	sf, opts, wait, timeout := &f.source, f.opts, &f.wait, &f.timeout
	if *timeout <= 0 {
		return usagef("--timeout %s: use a positive duration such as 2h", *timeout)
	}
	spec, _, err := sf.source(a, false)
	if err != nil {
		return err
	}
	pb := spec.PowerBI
	rep, err := a.newReporter()
	if err != nil {
		return err
	}
	defer rep.close()
	job := "refresh " + pb.Dataset
	progress := rep.progress()
	var onPoll func(string, time.Duration)
	if progress != nil {
		progress(pipeline.ProgressEvent{Kind: pipeline.ProgressJobStart, Job: job})
		onPoll = func(status string, elapsed time.Duration) {
			progress(pipeline.ProgressEvent{Kind: pipeline.ProgressRefresh, Job: job, Status: status, Elapsed: elapsed})
		}
	}
	start := time.Now()
	ref, st, err := a.connector(rep, 0).RefreshAndWait(ctx, pb, opts, *wait, *timeout, "", onPoll)
	rep.close()
	kind := "standard"
	if opts.Enhanced() {
		kind = "enhanced"
	}
	if err != nil {
		return err
	}
	if !*wait {
		fmt.Fprintf(a.stdout, "%s refresh %s of dataset %s started\n", kind, ref.ID, pb.Dataset)
		return nil
	}
	took := time.Since(start)
	if !st.Start.IsZero() && !st.End.IsZero() && st.End.After(st.Start) {
		took = st.End.Sub(st.Start)
	}
	fmt.Fprintf(a.stdout, "%s refresh %s of dataset %s completed in %s\n", kind, ref.ID, pb.Dataset, took.Round(time.Second))
	return nil
}
