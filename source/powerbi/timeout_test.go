package powerbi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/fakepbi"
	"github.com/pbicopy/pbicopy/source"
)

func timeoutClient(t *testing.T, srv *fakepbi.Server, idle, request time.Duration) *Client {
	t.Helper()
	pb, err := NewClient(Config{Endpoint: srv.URL(), Credential: mustCredential(t, srv), HTTPClient: srv.Client(),
		RetryDelay: 10 * time.Millisecond, MaxRetries: 2, IdleTimeout: idle, RequestTimeout: request})
	if err != nil {
		t.Fatal(err)
	}
	return pb
}

// TestStalledServiceTimesOut: a service that stops sending, before its
// headers or in the middle of its body, fails the request after the idle
// timeout with a retryable error naming the phase and the wait; and the
// next request is whole.
func TestStalledServiceTimesOut(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	q := Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}
	pb := timeoutClient(t, srv, 300*time.Millisecond, 20*time.Second)
	cases := []struct {
		name       string
		afterBytes int64
		phase      string
		rows       bool
	}{
		{"no answer at all", -1, "waiting for the response headers", false},
		{"one chunk then silence", 2000, "reading the body", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv.Stall(1, c.afterBytes)
			before := srv.QueryRequests()
			start := time.Now()
			rows := &nopRows{}
			_, err := pb.ExecuteQuery(context.Background(), q, rows)
			took := time.Since(start)
			var se *StallError
			if !errors.As(err, &se) || se.Timeout != "idle" || se.Phase != c.phase || !source.Retryable(err) {
				t.Fatalf("err = %v, want a retryable idle StallError %s", err, c.phase)
			}
			if took < 300*time.Millisecond || took > 5*time.Second {
				t.Errorf("took %s for an idle timeout of 300ms", took)
			}
			if n := srv.QueryRequests() - before; n != 1 {
				t.Errorf("%d requests: a stall is not retried inside the client (the source is read again)", n)
			}
			for _, want := range []string{c.phase, "0.3 seconds", "source.powerbi.timeouts.idle"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message lacks %q: %v", want, err)
				}
			}
			if c.rows && (se.RequestID == "" || se.Rows != int64(rows.rows) || rows.rows == 0 || !strings.Contains(err.Error(), "rows")) {
				t.Errorf("body stall: %+v, %d rows received", se, rows.rows)
			}
			if _, err := pb.ExecuteQuery(context.Background(), q, &nopRows{}); err != nil {
				t.Errorf("the next request: %v", err)
			}
		})
	}
}

// TestRequestTimeoutBoundsTheAttempt: the request timeout ends an attempt
// that the idle timeout would let run.
func TestRequestTimeoutBoundsTheAttempt(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	q := Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}
	pb := timeoutClient(t, srv, 20*time.Second, 400*time.Millisecond)
	for _, c := range []struct {
		afterBytes int64
		phase      string
	}{{-1, "waiting for the response headers"}, {500, "reading the body"}} {
		srv.Stall(1, c.afterBytes)
		start := time.Now()
		_, err := pb.ExecuteQuery(context.Background(), q, &nopRows{})
		var se *StallError
		if !errors.As(err, &se) || se.Timeout != "request" || se.Phase != c.phase || !source.Retryable(err) {
			t.Fatalf("err = %v, want a request StallError %s", err, c.phase)
		}
		if d := time.Since(start); d < 400*time.Millisecond || d > 5*time.Second {
			t.Errorf("took %s for a request timeout of 400ms", d)
		}
		if !strings.Contains(err.Error(), "still "+c.phase+" after 0.4 seconds (source.powerbi.timeouts.request)") {
			t.Errorf("message: %v", err)
		}
	}
	// A normal request is far within both.
	if _, err := pb.ExecuteQuery(context.Background(), q, &nopRows{}); err != nil {
		t.Error(err)
	}
}

// TestCancelledWhileStalledIsNotAStall: the caller's own cancellation is
// reported as such, not as a retryable stall.
func TestCancelledWhileStalledIsNotAStall(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	pb := timeoutClient(t, srv, 10*time.Second, 20*time.Second)
	for _, after := range []int64{-1, 1000} {
		srv.Stall(1, after)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := pb.ExecuteQuery(ctx, Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}, &nopRows{})
		cancel()
		var se *StallError
		if err == nil || errors.As(err, &se) || source.Retryable(err) {
			t.Errorf("stall after %d bytes, caller cancelled: err = %v, want a plain cancellation", after, err)
		}
	}
}

// TestSlowReceiverIsNotAStall: the idle timeout runs only while the body
// is awaited, not while the receiver is busy (a slow sink).
func TestSlowReceiverIsNotAStall(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: fakepbi.DemoModel()})
	o := srv.Options()
	pb := timeoutClient(t, srv, 100*time.Millisecond, 20*time.Second)
	slow := &slowRows{every: 300, pause: 250 * time.Millisecond}
	if _, err := pb.ExecuteQuery(context.Background(), Query{Workspace: o.WorkspaceID, Dataset: o.DatasetID, DAX: "EVALUATE Sales"}, slow); err != nil {
		t.Fatalf("a receiver pausing longer than the idle timeout: %v", err)
	}
	if slow.rows < 600 {
		t.Errorf("%d rows: the test needs pauses", slow.rows)
	}
}

type slowRows struct {
	every, rows int
	pause       time.Duration
}

func (s *slowRows) Field(_, _ []byte) error { return nil }
func (s *slowRows) EndRow() error {
	s.rows++
	if s.rows%s.every == 0 {
		time.Sleep(s.pause)
	}
	return nil
}

// TestTimeoutsReachTheClient: the job's timeouts block is what the
// connector's clients apply, and a paged source continues after its last
// complete row when a page stalls.
func TestTimeoutsReachTheClient(t *testing.T) {
	srv := startFake(t, fakepbi.Options{Tables: []*fakepbi.Table{fakepbi.BenchTable(3000)}})
	o := srv.Options()
	pb := &source.PowerBISpec{Workspace: o.WorkspaceID, Dataset: o.DatasetID, Endpoint: srv.URL(),
		Table: "Sales", Paging: &source.PagingSpec{Key: "Sales[OrderID]", PageRows: "1000"},
		Timeouts: &source.TimeoutsSpec{Idle: "250ms", Request: "30s"}, Auth: fakeAuth(srv)}
	conn := &Connector{HTTPClient: srv.Client(), Rate: -1}
	cl, err := conn.Client(context.Background(), pb)
	if err != nil {
		t.Fatal(err)
	}
	if cl.timeouts.idle != 250*time.Millisecond || cl.timeouts.request != 30*time.Second {
		t.Errorf("client timeouts %+v", cl.timeouts)
	}
	src, err := conn.Open(context.Background(), source.Request{Spec: source.Spec{PowerBI: pb}, Query: "Sales", Columns: benchTableColumns, Mem: checkedMem(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stall(1, 30_000) // the first page stalls after about 100 rows
	r := &recvCounter{}
	st, err := src.Read(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if r.rows != 3000 || st.Rows != 3000 {
		t.Errorf("%d rows received, %d read; want every row once", r.rows, st.Rows)
	}
}

// fakeAuth is the auth block of the fake's Entra ID.
func fakeAuth(srv *fakepbi.Server) azure.AuthSpec {
	o := srv.Options()
	return azure.AuthSpec{Tenant: o.TenantID, ClientID: o.ClientID, ClientSecret: o.ClientSecret, AuthorityHost: srv.AuthorityHost()}
}
