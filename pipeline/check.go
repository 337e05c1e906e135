package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/source"
)

// Check is the outcome of one online check of a job.
type Check struct {
	Name string // "params", "auth", "query", "source.file", "sinks[0] csv", ...
	OK   bool
	// Message says what was proven or, for a failed check, what is wrong
	// and what to do.
	Message string
}

// SinkCheckTimeout bounds the online check of one sink.
const SinkCheckTimeout = 30 * time.Second

// CheckOnline proves that job could run, without moving any data: it gets
// a token, runs the query sampled to one row (SampleQuery) and decodes that
// row with the job's mapping, and checks that each sink could be written
// (a probe file created and removed in the output folder; for PostgreSQL a
// transaction that checks the schema, the table and the role's privileges,
// then rolls back; for a blob, the container is reached with the
// credential and a block staged, never committed). The templates are rendered with r.Params and the
// declared defaults. Checks that depend on a failed one are left out.
func (r *Runner) CheckOnline(ctx context.Context, job *Job) []Check {
	var checks []Check
	add := func(name string, err error, okMsg string) bool {
		c := Check{Name: name, OK: err == nil, Message: okMsg}
		if err != nil {
			c.Message = err.Error()
		}
		checks = append(checks, c)
		return err == nil
	}
	rendered, rerr := r.Render(job, false)
	if rerr != nil {
		add("params", rerr, "")
	}

	switch src := job.Source; {
	case src.File != "":
		f, err := os.Open(src.File)
		if err == nil {
			f.Close()
		}
		add("source.file", err, "readable: "+src.File)
	case src.PowerBI != nil:
		r.checkPowerBI(ctx, job, rendered.Query, rerr == nil, add)
	}

	env := sink.Env{Storage: r.Storage, Mem: r.mem(), Log: r.logger()}
	for i, s := range job.Sinks {
		if rerr != nil || i >= len(rendered.sinks) {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, SinkCheckTimeout)
		msg, err := rendered.sinks[i].target.Probe(pctx, env)
		cancel()
		if err != nil && s.Path() != "" {
			err = fmt.Errorf("%w: fix sinks[%d].%s.path, or give the identity running pbicopy write access there", err, i, s.Kind())
		}
		add(fmt.Sprintf("sinks[%d] %s", i, s.Kind()), err, msg)
	}
	return checks
}

func (r *Runner) checkPowerBI(ctx context.Context, job *Job, dax string, rendered bool, add func(string, error, string) bool) {
	pb := job.Source.PowerBI
	cloud, err := azure.LookupCloud(pb.Cloud)
	if err != nil {
		add("auth", err, "")
		return
	}
	cred, err := r.credential(ctx, pb.Auth, pb.Cloud, "source.powerbi.auth")
	if err == nil {
		_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{cloud.PowerBIScope}})
		if err != nil {
			err = explainAuthError(err, pb.Auth)
		}
	}
	who := "a token was issued"
	if pb.Auth.ClientID != "" {
		who += " to app " + pb.Auth.ClientID
	}
	if pb.Auth.Tenant != "" {
		who += " in tenant " + pb.Auth.Tenant
	}
	if !add("auth", err, who) || !rendered {
		return
	}
	client, err := source.NewPowerBI(source.PowerBIConfig{
		Endpoint: cmp.Or(pb.Endpoint, cloud.PowerBI), Scope: cloud.PowerBIScope, Credential: cred,
		HTTPClient: r.HTTPClient, Logger: r.logger(), RetryDelay: r.RetryDelay,
	})
	if err != nil {
		add("query", err, "")
		return
	}
	var recv source.RowReceiver
	var finish func() error
	var cols int
	if m := job.Mapping; m != nil {
		var columns []mapping.Column
		for _, c := range m.Columns {
			t, err := mapping.ParseType(c.Type)
			if err != nil {
				add("query", fmt.Errorf("mapping: %s: %w", c.From, err), "")
				return
			}
			columns = append(columns, mapping.Column{From: c.From, To: c.To, Type: t})
		}
		unmapped := mapping.UnmappedError
		if m.Unmapped == "ignore" {
			unmapped = mapping.UnmappedIgnore
		}
		b := mapping.NewBuilder(r.mem(), columns, unmapped, 0, func(rec arrow.RecordBatch) error {
			rec.Release()
			return nil
		})
		defer b.Release()
		recv, finish, cols = b, b.Flush, len(columns)
	} else {
		s := mapping.NewSampler()
		recv = s
		finish = func() error {
			if s.Rows() == 0 {
				return nil
			}
			c, err := s.Columns()
			cols = len(c)
			return err
		}
	}
	q := source.Query{Workspace: pb.Workspace, Dataset: pb.Dataset, DAX: dax, ImpersonatedUser: pb.ImpersonatedUser}
	rr := &recordingReceiver{recv: recv}
	sent, qs, err := Sample(ctx, client, q, 1, rr)
	if err == nil {
		err = finish()
	}
	if err != nil && (rr.err != nil || qs.Rows > 0) {
		err = fmt.Errorf("the first row does not fit the mapping: %w: fix mapping.columns (pbicopy infer prints a mapping that fits)", err)
	}
	var msg string
	switch {
	case qs.Rows == 0:
		msg = fmt.Sprintf("%s answered with no rows, so the columns were not checked", oneLine(sent))
		if job.Mapping == nil {
			msg += "; without a mapping, a run that gets no rows fails: declare mapping.columns"
		}
	default:
		msg = fmt.Sprintf("%s answered; its first row decoded into %d column(s)", oneLine(sent), cols)
	}
	if qs.RequestID != "" {
		msg += " (RequestId " + qs.RequestID + ")"
	}
	add("query", err, msg)
}

// oneLine shortens a query for a one-line message.
func oneLine(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 80 {
		q = q[:77] + "..."
	}
	return q
}

var aadstsRE = regexp.MustCompile(`AADSTS(\d+)`)

// explainAuthError turns an Entra ID error into one sentence saying what is
// wrong and what to do.
func explainAuthError(err error, a azure.AuthSpec) error {
	code := ""
	if m := aadstsRE.FindStringSubmatch(err.Error()); m != nil {
		code = m[1]
	}
	var msg string
	switch code {
	case "7000215":
		msg = "the client secret is wrong (AADSTS7000215): use the secret's Value, not its Secret ID, from the app registration's Certificates & secrets page, or create a new secret"
	case "7000222":
		msg = "the client secret has expired (AADSTS7000222): create a new secret in the app registration and give it to the job"
	case "7000216":
		msg = "no client secret or certificate was sent (AADSTS7000216): check source.powerbi.auth"
	case "700016":
		msg = fmt.Sprintf("app %s was not found in tenant %s (AADSTS700016): check auth.clientId (the Application (client) ID) and auth.tenant; the app must be registered in, or consented to, that tenant", a.ClientID, a.Tenant)
	case "90002":
		msg = fmt.Sprintf("tenant %s was not found (AADSTS90002): check auth.tenant (the Directory (tenant) ID or a verified domain) and source.powerbi.cloud", a.Tenant)
	case "700027":
		msg = "the certificate or federated credential was refused (AADSTS700027): upload the certificate to the app registration (or add the federated credential), and check that it has not expired"
	case "70011":
		msg = "the scope was refused (AADSTS70011): check source.powerbi.cloud"
	case "50034", "50126":
		msg = "the sign-in was refused (AADSTS" + code + "): check the identity the credential uses"
	}
	if msg == "" {
		first, _, _ := strings.Cut(err.Error(), "\n")
		var ae *azcore.ResponseError
		if errors.As(err, &ae) {
			first = ae.Error()
			first, _, _ = strings.Cut(first, "\n")
		}
		msg = "getting a token failed: " + strings.TrimSpace(first) + ": check source.powerbi.auth"
	}
	return errors.New(msg)
}

// recordingReceiver remembers the first error of the receiver it wraps, to
// tell a row that does not fit the mapping from a failed request.
type recordingReceiver struct {
	recv source.RowReceiver
	err  error
}

func (r *recordingReceiver) Field(key, value []byte) error {
	err := r.recv.Field(key, value)
	if err != nil && r.err == nil {
		r.err = err
	}
	return err
}

func (r *recordingReceiver) EndRow() error {
	err := r.recv.EndRow()
	if err != nil && r.err == nil {
		r.err = err
	}
	return err
}
