package powerbi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

// TestHeaderOnlyTokenExpiredIsRenewedOnce: the live service may answer an
// expired token with an empty body and X-PowerBI-Error-Info: TokenExpired;
// the client renews the token once, exactly as for the JSON answer.
func TestHeaderOnlyTokenExpiredIsRenewedOnce(t *testing.T) {
	srv := startFake(t, fakepbi.Options{HeaderOnlyErrors: true})
	pb := realClient(t, srv)
	o := srv.Options()
	q := Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}
	if _, err := pb.ExecuteQuery(context.Background(), q, &nopRows{}); err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens()
	rows := &nopRows{}
	if _, err := pb.ExecuteQuery(context.Background(), q, rows); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	if srv.TokenRequests() != 2 || rows.rows == 0 {
		t.Errorf("token requests = %d, rows = %d; want 2 tokens and the rows", srv.TokenRequests(), rows.rows)
	}

	// Twice in a row: renewed once, then the error, about the token.
	srv.FailWithInfo(2, 403, "TokenExpired")
	_, err := pb.ExecuteQuery(context.Background(), q, &nopRows{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Info != "TokenExpired" {
		t.Fatalf("err = %v, want a 403 with X-PowerBI-Error-Info TokenExpired", err)
	}
	if srv.TokenRequests() != 3 {
		t.Errorf("token requests = %d, want one more (renewed once)", srv.TokenRequests())
	}
	for _, want := range []string{"X-PowerBI-Error-Info: TokenExpired", "clock", "RequestId"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "Viewer") || strings.Contains(err.Error(), "role") {
		t.Errorf("a token problem blamed on roles: %v", err)
	}

	// The refresh calls renew it the same way.
	srv.ExpireTokens()
	if _, err := pb.StartRefresh(context.Background(), o.WorkspaceID, o.DatasetID, RefreshOptions{Type: "full"}); err != nil {
		t.Errorf("refresh after the token expired (header only): %v", err)
	}
	if srv.TokenRequests() != 4 {
		t.Errorf("token requests = %d, want 4", srv.TokenRequests())
	}
}

// TestHeaderOnlyErrorsNameTheCause: every 401 and 403 shows the code of
// X-PowerBI-Error-Info, and a hint that fits it.
func TestHeaderOnlyErrorsNameTheCause(t *testing.T) {
	srv := startFake(t, fakepbi.Options{HeaderOnlyErrors: true})
	o := srv.Options()
	good := Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}
	cases := []struct {
		name    string
		client  *Client
		q       Query
		inject  func()
		status  int
		want    []string
		notWant []string
	}{
		{"unknown token", newClient(t, srv, staticToken("not-a-token")), good, nil, 401,
			[]string{"X-PowerBI-Error-Info: InvalidToken", "access token", "tenant", "clock"}, []string{"Viewer", "role"}},
		{"other workspace", realClient(t, srv), Query{Workspace: "f4ce0000-0000-4000-8000-00000000dead", Dataset: o.DatasetID, DAX: "EVALUATE Sales"}, nil, 401,
			[]string{"X-PowerBI-Error-Info: GroupNotAccessible", "source.powerbi.workspace", "Viewer"}, nil},
		{"tenant switch", realClient(t, srv), good, func() { srv.FailWithInfo(1, 401, "ServicePrincipalIsNotAllowedByTenantAdminSwitch") }, 401,
			[]string{"X-PowerBI-Error-Info: ServicePrincipalIsNotAllowedByTenantAdminSwitch", "Service principals can use Fabric APIs"}, nil},
		{"other 403", realClient(t, srv), good, func() { srv.FailWithInfo(1, 403, "SomethingElse") }, 403,
			[]string{"X-PowerBI-Error-Info: SomethingElse", "Build permission"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.inject != nil {
				c.inject()
			}
			_, err := c.client.ExecuteQuery(context.Background(), c.q, &nopRows{})
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != c.status || ae.RequestID == "" {
				t.Fatalf("err = %v, want an APIError %d with a RequestId", err, c.status)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q: %v", w, err)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("message has %q: %v", w, err)
				}
			}
		})
	}
}

// TestAPIErrorShowsBothCodes: a body code and a different header code are
// both shown.
func TestAPIErrorShowsBothCodes(t *testing.T) {
	e := &APIError{Status: 401, Code: "PowerBINotAuthorizedException", Info: "InvalidToken", RequestID: "r"}
	if got := e.Error(); !strings.Contains(got, "HTTP 401 PowerBINotAuthorizedException, X-PowerBI-Error-Info: InvalidToken") || !strings.Contains(got, "access token") {
		t.Errorf("message: %s", got)
	}
	e = &APIError{Status: 403, Code: "TokenExpired", Info: "TokenExpired"}
	if got := e.Error(); strings.Count(got, "TokenExpired") != 1 {
		t.Errorf("the same code twice: %s", got)
	}
}

// TestThrottledBeyondTheCap: a Retry-After longer than the retry policy's
// longest wait is not waited for, and the message says so, with how much
// longer it was, instead of claiming that every retry was made.
func TestThrottledBeyondTheCap(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	pb := realClient(t, srv) // retries at most 2 times, waits at most 2 minutes
	q := Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}

	srv.Throttle(1, 5*time.Minute)
	start := time.Now()
	_, err := pb.ExecuteQuery(context.Background(), q, &nopRows{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 429 {
		t.Fatalf("err = %v, want a 429", err)
	}
	if time.Since(start) > 30*time.Second || srv.QueryRequests() != 1 {
		t.Errorf("%d requests in %s: want one, without waiting", srv.QueryRequests(), time.Since(start))
	}
	for _, want := range []string{"asked to wait 5m0s", "3m0s more than", "(2m0s)", "120 queries per minute"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "every retry") || strings.Contains(err.Error(), "Still throttled") {
		t.Errorf("message claims retries that were not made: %v", err)
	}

	// Within the cap, the retries are made and counted.
	srv.Throttle(3, time.Second)
	_, err = pb.ExecuteQuery(context.Background(), q, &nopRows{})
	if err == nil || !strings.Contains(err.Error(), "Still throttled after 3 attempts") {
		t.Errorf("throttled within the cap: %v", err)
	}
}

// TestLimitErrorSaysMiB: the size is computed in MiB and says so.
func TestLimitErrorSaysMiB(t *testing.T) {
	e := &LimitError{Bytes: 15_100_000, Rows: 99_488, RequestID: "r"}
	if got := e.Error(); !strings.Contains(got, "14.4 MiB") || strings.Contains(got, " MB)") {
		t.Errorf("message: %s", got)
	}
}
