package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

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

// cmdRefresh starts a dataset refresh and, with --wait, waits for it to
// end: exit 0 when it completed, 1 when it failed, was cancelled, timed out
// or another refresh was running.
func (a *app) cmdRefresh(ctx context.Context, args []string) error {
	var c commonFlags
	fs := flag.NewFlagSet("refresh", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&c.logFormat, "log-format", "", "log format: text or json (default: text on a terminal, json otherwise)")
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
	fs.BoolVar(&c.noProgress, "no-progress", false, "no progress line on the terminal")
	var sf sourceFlags
	sf.register(fs, true)
	wait := fs.Bool("wait", false, "wait for the refresh to end")
	timeout := fs.Duration("timeout", 2*time.Hour, "with --wait: how long to wait")
	var opts powerbi.RefreshOptions
	fs.StringVar(&opts.Type, "type", "", "enhanced refresh: full, clearValues, calculate, dataOnly, automatic or defragment")
	fs.StringVar(&opts.CommitMode, "commit-mode", "", "enhanced refresh: transactional or partialBatch")
	fs.IntVar(&opts.MaxParallelism, "max-parallelism", 0, "enhanced refresh: parallel processing threads")
	fs.IntVar(&opts.RetryCount, "retry-count", 0, "enhanced refresh: attempts before failing")
	fs.Var((*tablesFlag)(&opts.Objects), "table", "enhanced refresh: refresh only `Table` or Table/Partition (repeatable)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return usagef("%v", err)
	}
	if len(pos) > 0 {
		return usagef("refresh takes no arguments: name the dataset with --workspace and --dataset, or --job FILE")
	}
	if *timeout <= 0 {
		return usagef("--timeout %s: use a positive duration such as 2h", *timeout)
	}
	pb, _, err := sf.source(a)
	if err != nil {
		return err
	}
	rep, err := a.newReporter(&c)
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
