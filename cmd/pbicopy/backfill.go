package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/source/powerbi"
)

// backfillFlags are the flags of partitioned runs, shared by run and plan.
type backfillFlags struct {
	from, to    string
	concurrency int
	rate        float64
	resume      bool
	shard       string
	reset       bool
}

func (b *backfillFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&b.from, "from", "", "first value of the partition parameter (a date or an integer)")
	fs.StringVar(&b.to, "to", "", "last value of the partition parameter, inclusive")
	fs.IntVar(&b.concurrency, "concurrency", 1, "partitions in flight at once")
	fs.Float64Var(&b.rate, "rate", powerbi.DefaultRate, "executeQueries requests per minute, shared by every page and partition (split it between shards of one principal)")
	fs.BoolVar(&b.resume, "resume", false, "skip the partitions the state file records as done by the last run")
	fs.StringVar(&b.shard, "shard", "", "run only share `i/n` of the partitions, those whose index modulo n is i; auto/n takes i from $JOB_COMPLETION_INDEX, as Kubernetes sets it in an Indexed Job (unset, not an integer, or not below n: exit 2)")
	fs.BoolVar(&b.reset, "reset-watermark", false, "incremental jobs: forget the stored watermark and read from incremental.initial")
}

func (b *backfillFlags) apply(r *pipeline.Runner) error {
	if b.concurrency < 1 {
		return usagef("--concurrency %d: use 1 or more", b.concurrency)
	}
	if b.rate <= 0 {
		return usagef("--rate %g: use a positive number of requests per minute", b.rate)
	}
	r.From, r.To, r.Concurrency, r.Resume, r.ResetWatermark = b.from, b.to, b.concurrency, b.resume, b.reset
	if b.shard != "" {
		s, err := pipeline.ParseShard(b.shard, os.LookupEnv)
		if err != nil {
			return usagef("%v", err)
		}
		r.Shard = s
	}
	return nil
}

// planFlags are the flags of plan.
type planFlags struct {
	params   paramFlag
	backfill backfillFlags
}

func (a *app) newPlanCmd() *cobra.Command {
	f := planFlags{params: paramFlag{}}
	cmd := &cobra.Command{
		Use:   "plan JOB.yaml|DIR...",
		Short: "Print what a run would do: partitions, queries, outputs, duration; calling nothing",
		Example: `  pbicopy plan jobs/sales.yaml --from 2024-01-01 --to 2024-12-31
  pbicopy plan jobs/sales.yaml --from 2024-01-01 --to 2024-12-31 --resume --shard 1/4`,
		Args: atLeastOneJob,
		RunE: func(cmd *cobra.Command, paths []string) error { return a.cmdPlan(f, paths) },
	}
	addParamFlag(cmd, f.params)
	f.backfill.register(cmd.Flags())
	return cmd
}

// cmdPlan prints what a run would do, without calling anything.
func (a *app) cmdPlan(f planFlags, paths []string) error {
	r := &pipeline.Runner{Params: f.params, Storage: a.storage()}
	if err := f.backfill.apply(r); err != nil {
		return err
	}
	jobs, err := a.loadJobs(jobfile.Loader{}, paths)
	if err != nil {
		return err
	}
	if err := checkParams(jobs, f.params); err != nil {
		return err
	}
	for _, j := range jobs {
		if err := r.CheckArgs(j); err != nil {
			return usagef("%s: %v", j.File, err)
		}
	}
	for _, j := range jobs {
		p, err := r.Plan(j)
		if err != nil {
			return fmt.Errorf("job %s: %w", j.Name, err)
		}
		printPlan(a.stdout, p, r, f.backfill.rate)
	}
	return nil
}

func printPlan(w io.Writer, p *pipeline.RunPlan, r *pipeline.Runner, rate float64) {
	fmt.Fprintf(w, "job %s: %d partition(s)", p.Job, len(p.Partitions))
	if p.Skipped > 0 {
		fmt.Fprintf(w, ", %d already done (--resume)", p.Skipped)
	}
	fmt.Fprintln(w)
	if wm := p.Watermark; wm != nil {
		fmt.Fprintf(w, "  watermark %s = %s (%s), kept in %s\n", wm.Param, wm.From, watermarkOrigin(wm), wm.State)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, pp := range p.Partitions {
		key := pp.Key
		if key == "" {
			key = "(single)"
		}
		status := ""
		if pp.Done {
			status = "done, skipped"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", key, oneLine(pp.FirstQuery), status)
		for _, o := range pp.Outputs {
			fmt.Fprintf(tw, "  \t-> %s\t\n", o)
		}
	}
	tw.Flush()
	d := time.Duration(float64(p.MinRequests) / rate * float64(time.Minute))
	fmt.Fprintf(w, "at least %d request(s) at %g/min with %d in flight: at least %s", p.MinRequests, rate, max(1, r.Concurrency), d.Round(time.Second))
	if p.Paged {
		fmt.Fprint(w, " plus one request per further page")
	}
	fmt.Fprintln(w)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// watermarkOrigin says where the watermark of a plan comes from.
func watermarkOrigin(wm *pipeline.WatermarkResult) string {
	switch {
	case wm.Source == "--param":
		return "from --param, for this run"
	case wm.Source == "state" && wm.From == wm.Old:
		return "stored"
	case wm.Source == "state":
		return "stored " + wm.Old + " minus the lookback"
	case wm.Old != "":
		return "incremental.initial: --reset-watermark forgets the stored " + wm.Old
	}
	return "incremental.initial: no watermark stored yet"
}
