package main

import (
	"errors"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/source"
)

// The ad-hoc commands read the client secret from the first of
// azure.SecretEnv that is set (AZURE_CLIENT_SECRET, then PBI_CLIENT_SECRET),
// or from the variable --client-secret-env names. A secret is never
// accepted as a flag value: it would show in the process list.

// sourceFlags name a dataset and the credentials to reach it, for the
// commands that run without a job file (query, infer, refresh).
type sourceFlags struct {
	job                            string
	workspace, dataset             string
	endpoint, cloud, impersonate   string
	tenant, clientID, method       string
	secretEnv, certificate         string
	authorityHost, certPasswordEnv string
}

func (s *sourceFlags) register(fs *pflag.FlagSet, withJob bool) {
	if withJob {
		fs.StringVar(&s.job, "job", "", "take the dataset and credentials from job `FILE`")
	}
	fs.StringVar(&s.workspace, "workspace", "", "workspace (group) `id`")
	fs.StringVar(&s.dataset, "dataset", "", "dataset (semantic model) `id`")
	fs.StringVar(&s.tenant, "tenant", "", "Entra ID tenant `id` (default $AZURE_TENANT_ID)")
	fs.StringVar(&s.clientID, "client-id", "", "app registration (client) `id` (default $AZURE_CLIENT_ID)")
	fs.StringVar(&s.secretEnv, "client-secret-env", "", "environment variable `NAME` holding the client secret (default "+strings.Join(azure.SecretEnv, ", then ")+")")
	fs.StringVar(&s.certificate, "certificate", "", "PEM or PFX `FILE` with the app's certificate and key (clientCertificate)")
	fs.StringVar(&s.certPasswordEnv, "certificate-password-env", "", "environment variable `NAME` holding the certificate's password")
	fs.StringVar(&s.method, "auth-method", "", "how to get a token: "+strings.Join(azure.Methods, ", ")+" (default clientSecret when the secret variable is set)")
	fs.StringVar(&s.authorityHost, "authority-host", "", "Entra ID authority `URL` (default the cloud's)")
	fs.StringVar(&s.endpoint, "endpoint", "", "Power BI REST endpoint `URL` (default the cloud's)")
	fs.StringVar(&s.cloud, "cloud", "", "public (default), usgov or china")
	fs.StringVar(&s.impersonate, "impersonate", "", "`UPN` to impersonate (row-level security)")
}

// adhocFlagsGiven reports whether any dataset or credential flag is set.
func (s *sourceFlags) adhocFlagsGiven() bool {
	for _, v := range []string{s.workspace, s.dataset, s.endpoint, s.cloud, s.impersonate, s.tenant, s.clientID, s.method, s.secretEnv, s.certificate, s.authorityHost, s.certPasswordEnv} {
		if v != "" {
			return true
		}
	}
	return false
}

// spec builds the source block the flags describe, reading the secret from
// the environment.
func (s *sourceFlags) spec() (*source.PowerBISpec, error) {
	if s.workspace == "" || s.dataset == "" {
		return nil, usagef("give --workspace and --dataset (or --job FILE)")
	}
	a := azure.AuthSpec{
		Method:        s.method,
		Tenant:        s.tenant,
		ClientID:      s.clientID,
		AuthorityHost: s.authorityHost,
	}
	if a.Tenant == "" {
		a.Tenant = os.Getenv("AZURE_TENANT_ID")
	}
	if a.ClientID == "" && a.Method != azure.MethodManagedIdentity {
		a.ClientID = os.Getenv("AZURE_CLIENT_ID")
	}
	secretEnv := s.secretEnv
	secret, secretSet := os.LookupEnv(secretEnv)
	if secretEnv == "" {
		secretEnv = strings.Join(azure.SecretEnv, " or ")
		for _, name := range azure.SecretEnv {
			if v := os.Getenv(name); v != "" {
				secret = v
				break
			}
		}
	}
	if s.secretEnv != "" && !secretSet {
		return nil, usagef("--client-secret-env %s: the variable is not set", s.secretEnv)
	}
	if s.certificate != "" {
		a.Certificate = s.certificate
		if s.certPasswordEnv != "" {
			pw, ok := os.LookupEnv(s.certPasswordEnv)
			if !ok {
				return nil, usagef("--certificate-password-env %s: the variable is not set", s.certPasswordEnv)
			}
			a.CertificatePassword = pw
		}
	}
	switch {
	case a.Method == "" && s.certificate != "":
		a.Method = azure.MethodClientCertificate
	case a.Method == "" && secret != "":
		a.Method = azure.MethodClientSecret
	case a.Method == "" && a.ClientID != "":
		return nil, usagef("no client secret: set %s (or name another variable with --client-secret-env), give --certificate, or choose --auth-method", secretEnv)
	case a.Method == "":
		a.Method = azure.MethodDefault
	}
	if a.Method == azure.MethodClientSecret {
		if secret == "" {
			return nil, usagef("--auth-method clientSecret: set %s (or name another variable with --client-secret-env)", secretEnv)
		}
		a.ClientSecret = secret
	}
	return &source.PowerBISpec{
		Workspace: s.workspace, Dataset: s.dataset, Endpoint: s.endpoint, Cloud: s.cloud,
		ImpersonatedUser: s.impersonate, Auth: a,
	}, nil
}

// jobSource loads a job file for its source block alone: the variables of
// the other sections (a sink's DSN, a storage key) need not be set, for a
// command that uses none of them. A job reading a saved response
// (source.file) is refused unless allowFile.
func (a *app) jobSource(path string, allowFile bool) (*jobfile.Job, error) {
	jobs, notes, err := jobfile.Loader{SkipEnv: true}.LoadPaths([]string{path})
	var inv *jobfile.InvalidError
	if errors.As(err, &inv) {
		a.reportProblems(inv.Problems)
		a.reportInvalid(len(inv.Problems), "nothing was run")
		return nil, invalidJobs{inv}
	}
	if err != nil {
		return nil, err
	}
	if len(jobs) != 1 {
		return nil, usagef("%s: give one job file, not a folder", path)
	}
	job := jobs[0]
	if job.Source.PowerBI == nil && !allowFile {
		return nil, usagef("job %s reads a saved response (source.file), not Power BI", job.Name)
	}
	// The source's own values must be there.
	var unset, warnings []jobfile.Problem
	for _, n := range notes {
		switch {
		case n.Severity == jobfile.SeverityWarning:
			warnings = append(warnings, n)
		case n.Severity == jobfile.SeverityNote && strings.HasPrefix(n.Path, "source."):
			n.Severity = jobfile.SeverityError
			unset = append(unset, n)
		}
	}
	a.reportProblems(warnings)
	if len(unset) > 0 {
		a.reportProblems(unset)
		a.reportInvalid(len(unset), "the source block needs them")
		return nil, invalidJobs{&jobfile.InvalidError{Problems: unset}}
	}
	return job, nil
}

// source resolves the source of an ad-hoc command: the job's, or the
// flags' Power BI dataset. A job reading a saved response (source.file) is
// refused unless allowFile.
func (s *sourceFlags) source(a *app, allowFile bool) (source.Spec, *jobfile.Job, error) {
	if s.job != "" {
		if s.adhocFlagsGiven() {
			return source.Spec{}, nil, usagef("--job takes the dataset and credentials from the job file: leave out the other dataset and credential flags")
		}
		job, err := a.jobSource(s.job, allowFile)
		if err != nil {
			return source.Spec{}, nil, err
		}
		return job.Source, job, nil
	}
	pb, err := s.spec()
	return source.Spec{PowerBI: pb}, nil, err
}
