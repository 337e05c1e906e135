package powerbi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/source"
)

// Check proves, moving no data, that the source of req could be read: for
// Power BI, a token is issued and the query (req.Query; "" when its
// template could not be rendered, which leaves the query out), sampled to
// one row, answers and its first row decodes with the mapping; for a saved
// response, the file can be read.
func (c *Connector) Check(ctx context.Context, req source.Request) []source.Check {
	src, err := c.Open(ctx, req)
	if err != nil {
		return []source.Check{{Name: "source", Message: err.Error()}}
	}
	return src.(checker).check(ctx)
}

// checker is a source that can check itself.
type checker interface {
	check(ctx context.Context) []source.Check
}

var (
	_ checker = (*querySource)(nil)
	_ checker = (*pagedSource)(nil)
	_ checker = (*fileSource)(nil)
	_ checker = (*daxSource)(nil)
)

func (s *fileSource) check(context.Context) []source.Check {
	f, err := os.Open(s.path)
	if err != nil {
		return []source.Check{{Name: "source.file", Message: err.Error()}}
	}
	f.Close()
	return []source.Check{{Name: "source.file", OK: true, Message: "readable: " + s.req.Spec.File}}
}

func (s *querySource) check(ctx context.Context) []source.Check {
	return s.conn.checkPowerBI(ctx, s.req, s.req.Query)
}

func (s *pagedSource) check(ctx context.Context) []source.Check {
	dax := s.req.Query
	if dax != "" {
		dax = "EVALUATE " + dax
	}
	return s.conn.checkPowerBI(ctx, s.req, dax)
}

// check proves the token and the query with a schemaOnly request: the
// result's columns must fit the mapping (or have a type of their own).
func (s *daxSource) check(ctx context.Context) []source.Check {
	checks, client := s.conn.checkAuth(ctx, s.req.Spec.PowerBI)
	if client == nil || s.req.Query == "" {
		return checks
	}
	pb := s.req.Spec.PowerBI
	m := &arrowMapper{mem: memory.DefaultAllocator, cols: s.req.Columns, unmapped: s.req.Unmapped, out: discardReceiver{}}
	qs, err := client.ExecuteDaxQuery(ctx, DaxQuery{
		Workspace: pb.GroupID(), Dataset: pb.Dataset, DAX: s.req.Query, ImpersonatedUser: pb.ImpersonatedUser, SchemaOnly: true,
	}, memory.DefaultAllocator, m)
	ch := source.Check{Name: "query", OK: err == nil}
	if err != nil {
		ch.Message = err.Error()
	} else {
		ch.Message = fmt.Sprintf("%s answered with its schema (schemaOnly): %d column(s), each fits its column type%s", oneLine(s.req.Query), len(m.mapped), requestIDNote(qs.RequestID))
	}
	return append(checks, ch)
}

// discardReceiver takes a source's result and keeps nothing.
type discardReceiver struct{}

func (discardReceiver) Schema(*arrow.Schema, []string) error { return nil }
func (discardReceiver) Batch(rec arrow.RecordBatch) error {
	rec.Release()
	return nil
}

// checkAuth checks that a token is issued for pb; it returns the client
// when it is.
func (c *Connector) checkAuth(ctx context.Context, pb *source.PowerBISpec) ([]source.Check, *Client) {
	client, err := c.Client(ctx, pb)
	if err == nil {
		if err = client.Token(ctx); err != nil {
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
	if err != nil {
		return []source.Check{{Name: "auth", Message: err.Error()}}, nil
	}
	return []source.Check{{Name: "auth", OK: true, Message: who}}, client
}

func (c *Connector) checkPowerBI(ctx context.Context, req source.Request, dax string) []source.Check {
	var checks []source.Check
	add := func(name string, err error, okMsg string) bool {
		ch := source.Check{Name: name, OK: err == nil, Message: okMsg}
		if err != nil {
			ch.Message = err.Error()
		}
		checks = append(checks, ch)
		return err == nil
	}
	pb := req.Spec.PowerBI
	checks, client := c.checkAuth(ctx, pb)
	if client == nil || dax == "" {
		return checks
	}
	var recv rowReceiver
	var finish func() error
	var cols int
	if req.Columns != nil {
		b := NewBuilder(memory.DefaultAllocator, req.Columns, req.Unmapped, 0, func(rec arrow.RecordBatch) error {
			rec.Release()
			return nil
		})
		defer b.Release()
		recv, finish, cols = b, b.Flush, len(req.Columns)
	} else {
		s := NewSampler()
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
	q := Query{Workspace: pb.GroupID(), Dataset: pb.Dataset, DAX: dax, ImpersonatedUser: pb.ImpersonatedUser}
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
		if req.Columns == nil {
			msg += "; without a mapping, a run that gets no rows fails: declare mapping.columns"
		}
	default:
		msg = fmt.Sprintf("%s answered; its first row decoded into %d column(s)", oneLine(sent), cols)
	}
	if qs.RequestID != "" {
		msg += " (RequestId " + qs.RequestID + ")"
	}
	add("query", err, msg)
	return checks
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
	recv rowReceiver
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
