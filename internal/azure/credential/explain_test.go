package credential

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

// TestExplainEntraRefusals gets tokens from the fake Entra ID with each
// mistake it answers as the real one does: the error is one line naming
// the AADSTS code, its meaning, the tenant and client, and what to do; a
// refusal is permanent, so that a job stops at its first partition.
func TestExplainEntraRefusals(t *testing.T) {
	srv, err := fakepbi.Start(fakepbi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	o := srv.Options()
	for _, c := range []struct {
		name, tenant, client, secret string
		want                         []string
	}{
		{"wrong secret", o.TenantID, o.ClientID, "wrong", []string{"AADSTS7000215: invalid client secret", "not its Secret ID"}},
		{"unknown client", o.TenantID, "00000000-0000-4000-8000-0000000000ff", o.ClientSecret, []string{"AADSTS700016: application not found in the tenant", "check clientId"}},
		{"unknown tenant", "00000000-0000-4000-8000-0000000000ee", o.ClientID, o.ClientSecret, []string{"AADSTS90002: tenant not found", "check tenant"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cred, err := Build(Config{Method: "clientSecret", Tenant: c.tenant, ClientID: c.client, ClientSecret: c.secret, AuthorityHost: srv.AuthorityHost()}, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://analysis.windows.net/powerbi/api/.default"}})
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("GetToken: %v, want an *AuthError", err)
			}
			msg := err.Error()
			for _, w := range append(c.want, "tenant "+c.tenant, "client "+c.client) {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not say %q", msg, w)
				}
			}
			if strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, "{") || strings.Contains(msg, c.secret) {
				t.Errorf("not one clean line: %q", msg)
			}
			if !ae.Permanent() {
				t.Errorf("a %d refusal is not permanent", ae.Status)
			}
		})
	}
}

func TestAuthErrorPermanence(t *testing.T) {
	for status, want := range map[int]bool{400: true, 401: true, 403: true, 408: false, 429: false, 500: false, 503: false, 0: false} {
		if got := (&AuthError{Status: status}).Permanent(); got != want {
			t.Errorf("status %d: permanent %v, want %v", status, got, want)
		}
	}
	if err := Explain(errors.New("no such file"), "workloadIdentity", "", ""); err.Error() != "no such file" {
		t.Errorf("an error Entra did not answer was changed: %v", err)
	}
}

// TestExplainNoAnswer: a token request that got no answer (Entra ID
// unreachable, the request timed out) says so, with the cause, instead of
// calling it a refusal, and is not permanent.
func TestExplainNoAnswer(t *testing.T) {
	t.Parallel() // azidentity tries again for seconds
	srv, err := fakepbi.Start(fakepbi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := srv.Options()
	cred, err := Build(Config{Method: "clientSecret", Tenant: o.TenantID, ClientID: o.ClientID, ClientSecret: o.ClientSecret, AuthorityHost: srv.AuthorityHost()}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	srv.Close() // nothing listens any more
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://analysis.windows.net/powerbi/api/.default"}})
	if err == nil {
		t.Fatal("a token from a closed server")
	}
	msg := err.Error()
	t.Log(msg)
	if strings.Contains(msg, "refused the token request") || !strings.Contains(msg, "connection refused") || !strings.Contains(msg, "client "+o.ClientID) {
		t.Errorf("%q: want no answer, its cause and the client", msg)
	}
	if strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, o.ClientSecret) {
		t.Errorf("not one clean line: %q", msg)
	}
	var ae *AuthError
	if errors.As(err, &ae) && ae.Permanent() {
		t.Error("no answer is permanent")
	}
}
