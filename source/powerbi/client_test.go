package powerbi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/pbicopy/pbicopy/internal/azure/credential"
	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

// staticToken is a credential that always presents the same token.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func startFake(t *testing.T, opts fakepbi.Options) *fakepbi.Server {
	t.Helper()
	srv, err := fakepbi.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func realClient(t *testing.T, srv *fakepbi.Server) *Client {
	t.Helper()
	o := srv.Options()
	cred, err := credential.Build(credential.Config{Tenant: o.TenantID, ClientID: o.ClientID, ClientSecret: o.ClientSecret, AuthorityHost: srv.AuthorityHost()}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, srv, cred)
}

func newClient(t *testing.T, srv *fakepbi.Server, cred azcore.TokenCredential) *Client {
	t.Helper()
	pb, err := NewClient(Config{Endpoint: srv.URL(), Credential: cred, HTTPClient: srv.Client(), RetryDelay: 10 * time.Millisecond, MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	return pb
}

type nopRows struct{ rows int }

func (n *nopRows) Field(_, _ []byte) error { return nil }
func (n *nopRows) EndRow() error           { n.rows++; return nil }

func TestAPIErrorsNameTheCause(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	good := Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}
	cases := []struct {
		name   string
		client *Client
		q      Query
		status int
		want   []string
	}{
		{"unknown token", newClient(t, srv, staticToken("not-a-token")), good, 401,
			[]string{"PowerBINotAuthorizedException", "tenant settings", "role"}},
		{"unknown dataset", realClient(t, srv), Query{Workspace: o.WorkspaceID, Dataset: "nope", DAX: "EVALUATE Sales"}, 404,
			[]string{"PowerBIEntityNotFound", "Build permission"}},
		{"DAX error", realClient(t, srv), Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Nope"}, 400,
			[]string{"DatasetExecuteQueriesError", "Nope", "fix the query", "(AnalysisServicesErrorCode 3239575574)"}},
		{"throttled past every retry", realClient(t, srv), good, 429,
			[]string{"120 queries per minute"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.status == 429 {
				srv.Throttle(10, time.Second)
			}
			_, err := c.client.ExecuteQuery(context.Background(), c.q, &nopRows{})
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an APIError", err)
			}
			if ae.Status != c.status || ae.RequestID == "" {
				t.Errorf("status %d request id %q", ae.Status, ae.RequestID)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if c.status == 400 && ae.ASCode != "3239575574" {
				t.Errorf("AnalysisServicesErrorCode %q, want the engine's error number", ae.ASCode)
			}
		})
	}
}

func TestRedirectHosts(t *testing.T) {
	cases := []struct {
		endpoint, host string
		ok             bool
	}{
		{"api.powerbi.com", "api.powerbi.com", true},
		{"api.powerbi.com", "wabi-west-europe-redirect.analysis.windows.net", true},
		{"api.powerbi.com", "evil.example.com", false},
		{"api.powerbi.com", "api.powerbi.com.evil.example", false},
		{"api.powerbi.com", "127.0.0.1", false},
		{"127.0.0.1", "localhost", true},
		{"api.powerbigov.us", "x.powerbigov.us", true},
	}
	for _, c := range cases {
		if got := trustedRedirectHost(c.endpoint, c.host); got != c.ok {
			t.Errorf("redirect from %s to %s: trusted = %v, want %v", c.endpoint, c.host, got, c.ok)
		}
	}
}

func TestRequestCarriesIncludeNullsAndImpersonation(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	rows := &nopRows{}
	st, err := realClient(t, srv).ExecuteQuery(context.Background(), Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales", ImpersonatedUser: "someone@contoso.com"}, rows)
	if err != nil {
		t.Fatal(err)
	}
	q := srv.Queries()[0]
	if q.IncludeNulls == nil || !*q.IncludeNulls || q.ImpersonatedUserName != "someone@contoso.com" || q.Queries != 1 {
		t.Errorf("request: %+v", q)
	}
	if !strings.Contains(q.Path, "/groups/"+o.WorkspaceID+"/datasets/"+o.DatasetID+"/executeQueries") {
		t.Errorf("path %s does not use the groups path service principals need", q.Path)
	}
	if st.Rows != int64(rows.rows) || st.RequestID != q.RequestID || st.Attempts != 1 {
		t.Errorf("stats %+v, rows %d, request %s", st, rows.rows, q.RequestID)
	}
}

func TestLimiterSpacesRequests(t *testing.T) {
	l := NewLimiter(600) // one every 100 ms
	start := time.Now()
	for range 5 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 390*time.Millisecond || d > 2*time.Second {
		t.Errorf("5 requests at 600/min took %s, want about 400ms", d)
	}
	l.Penalize(300 * time.Millisecond)
	t0 := time.Now()
	_ = l.Wait(context.Background())
	if d := time.Since(t0); d < 250*time.Millisecond {
		t.Errorf("a 429's Retry-After did not hold the next request back (%s)", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewLimiter(1).Wait(ctx); err == nil {
		// The first slot is free; the second waits a minute and must
		// give up on the cancelled context.
		if err := l.Wait(ctx); err == nil {
			t.Error("Wait ignored a cancelled context")
		}
	}
}

// TestThrottlePastTheCapStopsEveryRequest: a 429 asking for a wait past
// MaxThrottleWait fails that request at once (azcore's retry policy does
// not wait), and the limiter then fails the next ones at once too, without
// sending them, rather than hold them for the whole pause.
func TestThrottlePastTheCapStopsEveryRequest(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: fakepbi.DemoModel()})
	o := srv.Options()
	cred, err := credential.Build(credential.Config{Tenant: o.TenantID, ClientID: o.ClientID, ClientSecret: o.ClientSecret, AuthorityHost: srv.AuthorityHost()}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	pb, err := NewClient(Config{Endpoint: srv.URL(), Credential: cred, HTTPClient: srv.Client(), RetryDelay: 10 * time.Millisecond, Limiter: NewLimiter(-1)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Throttle(1, 10*time.Minute)
	q := Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}
	start := time.Now()
	_, err = pb.ExecuteQuery(context.Background(), q, &nopRows{})
	var api *APIError
	if !errors.As(err, &api) || api.Status != http.StatusTooManyRequests || !strings.Contains(err.Error(), "asked to wait 10m0s") {
		t.Fatalf("first request: %v", err)
	}
	_, err = pb.ExecuteQuery(context.Background(), q, &nopRows{})
	var paused *PausedError
	if !errors.As(err, &paused) || !strings.Contains(err.Error(), "not sent") || paused.Left < 9*time.Minute {
		t.Fatalf("second request: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the two requests took %s: they waited for the pause", d)
	}
	if n := srv.QueryRequests(); n != 1 {
		t.Errorf("the fake saw %d query requests, want 1: the second must not be sent", n)
	}
}

func TestLimiterPauseWithinTheCap(t *testing.T) {
	l := NewLimiter(-1)
	l.Penalize(MaxThrottleWait + time.Minute)
	var paused *PausedError
	if err := l.Wait(context.Background()); !errors.As(err, &paused) {
		t.Fatalf("a pause past the cap: %v", err)
	}
	l = NewLimiter(-1)
	l.Penalize(200 * time.Millisecond)
	t0 := time.Now()
	if err := l.Wait(context.Background()); err != nil || time.Since(t0) < 150*time.Millisecond {
		t.Errorf("a pause within the cap: %v after %s", err, time.Since(t0))
	}
}

func TestExpiredTokenIsRenewedOnce(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: fakepbi.DemoModel()})
	pb := realClient(t, srv)
	o := srv.Options()
	q := Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}
	count := func() *nopRows { return &nopRows{} }
	if _, err := pb.ExecuteQuery(context.Background(), q, count()); err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens()
	c := count()
	if _, err := pb.ExecuteQuery(context.Background(), q, c); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	if srv.TokenRequests() != 2 || c.rows == 0 {
		t.Errorf("token requests = %d, rows = %d; want 2 tokens and the rows", srv.TokenRequests(), c.rows)
	}
}

func TestClientRefusesClearTextEndpoints(t *testing.T) {
	for _, c := range []struct {
		endpoint string
		ok       bool
	}{
		{"https://api.powerbi.com", true},
		{"http://127.0.0.1:8080", true},
		{"http://localhost:8080", true},
		{"http://api.powerbi.com", false},
		{"http://192.168.1.20", false},
		{"ftp://api.powerbi.com", false},
	} {
		_, err := NewClient(Config{Endpoint: c.endpoint, Credential: staticToken("tok")})
		if (err == nil) != c.ok {
			t.Errorf("endpoint %s: err = %v, want ok %v", c.endpoint, err, c.ok)
		}
		if !c.ok && err != nil && !strings.Contains(err.Error(), "http") {
			t.Errorf("endpoint %s: message %q does not say why", c.endpoint, err)
		}
	}
}

func TestRedirectToClearTextIsRefused(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	pb := realClient(t, srv)
	q := Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}
	for _, base := range []string{"http://api.powerbi.com", "http://wabi-west-europe-redirect.analysis.windows.net"} {
		srv.RedirectTo(1, base)
		before := srv.QueryRequests()
		_, err := pb.ExecuteQuery(context.Background(), q, &nopRows{})
		if err == nil || !strings.Contains(err.Error(), "not https") {
			t.Errorf("redirect to %s: err = %v, want a refusal", base, err)
		}
		if n := srv.QueryRequests() - before; n != 1 {
			t.Errorf("redirect to %s: %d requests reached the fake, want only the first", base, n)
		}
	}
	// A redirect to https on a Power BI host is followed (here the fake's
	// other loopback name).
	srv.Redirect(1)
	if _, err := pb.ExecuteQuery(context.Background(), q, &nopRows{}); err != nil {
		t.Errorf("https redirect: %v", err)
	}
}

// TestClearTextLoopbackStaysOnLoopback: an http endpoint is accepted on
// loopback only, and a redirect from it never takes the token to an http
// host elsewhere, even a Power BI one.
func TestClearTextLoopbackStaysOnLoopback(t *testing.T) {
	srv := startFake(t, fakepbi.Options{PlainHTTP: true})
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Fatalf("fake at %s, want plain http on loopback", srv.URL())
	}
	o := srv.Options()
	pb, err := NewClient(Config{Endpoint: srv.URL(), Credential: staticToken("tok"), HTTPClient: srv.Client(), MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	q := Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}
	srv.RedirectTo(1, "http://api.powerbi.com")
	if _, err := pb.ExecuteQuery(context.Background(), q, &nopRows{}); err == nil || !strings.Contains(err.Error(), "not https") {
		t.Errorf("redirect from http loopback to http Power BI host: err = %v, want a refusal", err)
	}
	// The request itself reached the fake over http, token and all.
	qs := srv.Queries()
	if len(qs) != 1 || qs[0].Authorization != "Bearer tok" {
		t.Errorf("requests %+v", qs)
	}
}
