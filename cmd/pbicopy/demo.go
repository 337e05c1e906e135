package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/jobs"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/source"
)

// cmdDemo starts the built-in fake Power BI and Entra ID on loopback, and
// runs the embedded demo job against it through the real client-credentials
// flow and the real executeQueries client, then again through the
// executeDaxQueries (Arrow) client.
func (a *app) newDemoCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the demo job against the built-in fake Power BI (no account needed)",
		Long: `Demo starts a fake Power BI and Entra ID on loopback, with a 1,000-row Sales
table, and runs the embedded demo job against it through the real
client-credentials flow and the real executeQueries client, writing Parquet
and CSV into --out; then the same job through the executeDaxQueries (Apache
Arrow) API, into sales-arrow.parquet and sales-arrow.csv.`,
		Example: `  pbicopy demo
  pbicopy demo --out /tmp/demo`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.cmdDemo(cmd.Context(), out) },
	}
	cmd.Flags().StringVar(&out, "out", "demo-out", "folder the demo writes into")
	return cmd
}

func (a *app) cmdDemo(ctx context.Context, out string) error {
	stdout := a.stdout
	rep, err := a.newReporter()
	if err != nil {
		return err
	}
	defer rep.close()
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	opts := fakepbi.Options{
		TenantID:     "00000000-0000-0000-0000-00000000d3m0",
		ClientID:     "11111111-1111-1111-1111-111111111111",
		ClientSecret: hex.EncodeToString(secret),
		WorkspaceID:  "22222222-2222-2222-2222-222222222222",
		DatasetID:    "33333333-3333-3333-3333-333333333333",
		Tables:       fakepbi.DemoModel(),
	}
	srv, err := fakepbi.Start(opts)
	if err != nil {
		return fmt.Errorf("start the fake Power BI: %w", err)
	}
	defer srv.Close()
	env := map[string]string{
		"PBICOPY_DEMO_WORKSPACE":     opts.WorkspaceID,
		"PBICOPY_DEMO_DATASET":       opts.DatasetID,
		"PBICOPY_DEMO_ENDPOINT":      srv.URL(),
		"PBICOPY_DEMO_AUTHORITY":     srv.AuthorityHost(),
		"PBICOPY_DEMO_TENANT":        opts.TenantID,
		"PBICOPY_DEMO_CLIENT_ID":     opts.ClientID,
		"PBICOPY_DEMO_CLIENT_SECRET": opts.ClientSecret,
	}
	loader := jobfile.Loader{LookupEnv: func(name string) (string, bool) {
		if v, ok := env[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}}
	job, warnings, err := loader.Load(jobs.DemoFile, jobs.Demo)
	a.reportProblems(warnings)
	if err != nil {
		return err
	}
	// The same job through the executeDaxQueries (Arrow) API, into files of
	// its own: the two outputs hold the same rows.
	arrowJob, _, err := loader.Load(jobs.DemoFile, jobs.Demo)
	if err != nil {
		return err
	}
	arrowJob.Name = job.Name + "-arrow"
	arrowJob.Source.PowerBI.API = source.APIExecuteDaxQueries
	for _, s := range job.Sinks {
		if p := s.Path(); p != "" {
			s.SetPath(filepath.Join(out, filepath.Base(p)))
		}
	}
	for _, s := range arrowJob.Sinks {
		if p := s.Path(); p != "" {
			ext := filepath.Ext(p)
			s.SetPath(filepath.Join(out, strings.TrimSuffix(filepath.Base(p), ext)+"-arrow"+ext))
		}
	}
	fmt.Fprintf(stdout, "fake Power BI listening on %s; running %s (job %s, and %s through the Arrow API)\n", srv.URL(), jobs.DemoFile, job.Name, arrowJob.Name)
	a.httpClient = srv.Client()
	runner := &pipeline.Runner{Logger: rep.log, Sources: a.connector(rep, 0), Storage: a.storage(), Progress: rep.progress()}
	if err := runJobs(ctx, runner, []*jobfile.Job{job, arrowJob}, runFlags{}, stdout, rep); err != nil {
		return err
	}
	// A saved response of the same query, for the first-job walk of the
	// README (pbicopy init --source-file): a job developed offline reads it
	// exactly as a live response.
	saved := filepath.Join(out, "response.json")
	if err := saveResponse(saved, opts, job.Source.PowerBI.Query); err != nil {
		return err
	}
	var jsonQueries, arrowQueries int
	for _, q := range srv.Queries() {
		if q.API == "executeDaxQueries" {
			arrowQueries++
		} else {
			jsonQueries++
		}
	}
	fmt.Fprintf(stdout, "done: %d executeQueries and %d executeDaxQueries request(s), %d token request(s). Look at the files in %s/\n",
		jsonQueries, arrowQueries, srv.TokenRequests(), out)
	fmt.Fprintf(stdout, "%s is the response the fake sent, saved: pbicopy init first-job --source-file %s starts a job from it\n", saved, saved)
	return nil
}

// saveResponse writes the body the fake sends for query to path, through a
// temporary file so that a half-written response is never left.
func saveResponse(path string, opts fakepbi.Options, query string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".response-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fakepbi.WriteResponse(tmp, opts.Tables, query, false, opts); err != nil {
		tmp.Close()
		return fmt.Errorf("save the demo response: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
