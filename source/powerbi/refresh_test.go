package powerbi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pbicopy/pbicopy/internal/fakepbi"
)

var fastWait = WaitOptions{Interval: time.Millisecond, MaxInterval: 5 * time.Millisecond}

func TestEnhancedRefreshWaitsForCompletion(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	pb := realClient(t, srv)
	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 3})
	ctx := context.Background()
	r, err := pb.StartRefresh(ctx, o.WorkspaceID, o.DatasetID, RefreshOptions{Type: "full", Timeout: 90 * time.Minute, Objects: []RefreshObject{{Table: "Sales"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Enhanced || r.ID == "" || r.RequestID == "" {
		t.Fatalf("refresh %+v", r)
	}
	var polls []RefreshOutcome
	st, err := pb.WaitRefresh(ctx, o.WorkspaceID, o.DatasetID, r.ID, WaitOptions{Interval: time.Millisecond, OnPoll: func(s RefreshState) { polls = append(polls, s.Outcome) }})
	if err != nil {
		t.Fatal(err)
	}
	if st.Outcome != RefreshCompleted || st.ID != r.ID || st.End.IsZero() {
		t.Errorf("final state %+v", st)
	}
	if len(polls) != 4 || polls[0] != RefreshRunning || polls[3] != RefreshCompleted {
		t.Errorf("polls %v, want 3 running then completed", polls)
	}
	recs := srv.Refreshes()
	if len(recs) != 1 || !recs[0].Enhanced || !strings.Contains(recs[0].Body, `"timeout":"01:30:00"`) || !strings.Contains(recs[0].Body, `"objects":[{"table":"Sales"}]`) || strings.Contains(recs[0].Body, "notifyOption") {
		t.Errorf("refresh request %+v", recs)
	}
}

func TestStandardRefreshFindsItsIDInTheHistory(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	pb := realClient(t, srv)
	old := srv.StartScheduledRefresh(fakepbi.RefreshBehavior{})
	if _, _, err := pb.RefreshStatus(context.Background(), o.WorkspaceID, o.DatasetID, old); err != nil { // ends it
		t.Fatal(err)
	}
	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 2})
	r, err := pb.StartRefresh(context.Background(), o.WorkspaceID, o.DatasetID, RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recs := srv.Refreshes()
	if r.Enhanced || len(recs) != 2 || r.ID != recs[1].ID || recs[1].Body != `{"notifyOption":"NoNotification"}` {
		t.Fatalf("refresh %+v, fake saw %+v", r, recs)
	}
	st, err := pb.WaitRefresh(context.Background(), o.WorkspaceID, o.DatasetID, r.ID, fastWait)
	if err != nil || st.Outcome != RefreshCompleted {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestRefreshFailureShowsServiceException(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	pb := realClient(t, srv)
	for _, enhanced := range []bool{false, true} {
		srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 1, Outcome: fakepbi.RefreshFailed, ErrorCode: "DM_GWPipeline_Gateway_DataSourceAccessError", ErrorMessage: "Login failed for user 'etl'."})
		opts := RefreshOptions{}
		if enhanced {
			opts.Type = "full"
		}
		r, err := pb.StartRefresh(context.Background(), o.WorkspaceID, o.DatasetID, opts)
		if err != nil {
			t.Fatal(err)
		}
		st, err := pb.WaitRefresh(context.Background(), o.WorkspaceID, o.DatasetID, r.ID, fastWait)
		var fe *RefreshFailedError
		if !errors.As(err, &fe) || st.Outcome != RefreshFailed {
			t.Fatalf("enhanced=%v: %+v %v", enhanced, st, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "Login failed for user 'etl'") || !strings.Contains(msg, "DM_GWPipeline_Gateway_DataSourceAccessError") || !strings.Contains(msg, r.ID) {
			t.Errorf("enhanced=%v: %s", enhanced, msg)
		}
	}
}

func TestRefreshAlreadyRunning(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	pb := realClient(t, srv)
	srv.StartScheduledRefresh(fakepbi.RefreshBehavior{Polls: -1})
	for _, opts := range []RefreshOptions{{}, {Type: "full"}} {
		_, err := pb.StartRefresh(context.Background(), o.WorkspaceID, o.DatasetID, opts)
		var ip *RefreshInProgressError
		if !errors.As(err, &ip) || ip.Status != http.StatusBadRequest || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), "Another refresh request is already executing") {
			t.Errorf("%+v: %v", opts, err)
		}
	}
}

func TestRefreshWaitTimesOut(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	pb := realClient(t, srv)
	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: -1})
	r, err := pb.StartRefresh(context.Background(), o.WorkspaceID, o.DatasetID, RefreshOptions{Type: "full"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	st, err := pb.WaitRefresh(ctx, o.WorkspaceID, o.DatasetID, r.ID, fastWait)
	if !errors.Is(err, context.DeadlineExceeded) || st.Outcome != RefreshRunning || st.ExtendedStatus != "InProgress" {
		t.Errorf("%+v %v", st, err)
	}
}

func TestRefreshHonoursRetryAfter(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	pb := realClient(t, srv)
	srv.NextRefresh(fakepbi.RefreshBehavior{Polls: 1, RetryAfter: time.Second})
	r, err := pb.StartRefresh(context.Background(), o.WorkspaceID, o.DatasetID, RefreshOptions{Type: "full"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The interval alone would wait an hour; Retry-After says one second.
	st, err := pb.WaitRefresh(context.Background(), o.WorkspaceID, o.DatasetID, r.ID, WaitOptions{Interval: time.Hour})
	if err != nil || st.Outcome != RefreshCompleted {
		t.Fatalf("%+v %v", st, err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 30*time.Second {
		t.Errorf("waited %s, want about the Retry-After of 1s", d)
	}
}

func TestRefreshErrorsNameTheCause(t *testing.T) {
	srv := startFake(t, fakepbi.Options{})
	o := srv.Options()
	pb := realClient(t, srv)
	_, err := pb.StartRefresh(context.Background(), o.WorkspaceID, "no-such-dataset", RefreshOptions{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || !strings.HasPrefix(err.Error(), "refresh: HTTP 404 PowerBIEntityNotFound") || !strings.Contains(err.Error(), "Contributor") {
		t.Errorf("%v", err)
	}
}

// TestRefreshStatusFallsBackToHistory serves a service that knows a
// standard refresh only in its history, and answers 409 to a second
// refresh, as older versions did.
func TestRefreshStatusFallsBackToHistory(t *testing.T) {
	var reads atomic.Int32
	mux := http.NewServeMux()
	base := "/v1.0/myorg/groups/ws/datasets/ds/refreshes"
	mux.HandleFunc("POST "+base, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RequestId", "rid-post")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error":{"code":"Conflict","message":"A refresh is in progress"}}`))
	})
	mux.HandleFunc("GET "+base, func(w http.ResponseWriter, r *http.Request) {
		status := `"status":"Unknown"`
		if reads.Add(1) > 2 {
			status = `"status":"Completed","endTime":"2024-05-01T10:02:00"`
		}
		_, _ = w.Write([]byte("\ufeff" + `{"value":[{"requestId":"abc","id":7,"refreshType":"ViaApi","startTime":"2024-05-01T10:00:00Z",` + status + `}]}`))
	})
	mux.HandleFunc("GET "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"code":"PowerBIEntityNotFound"}}`))
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	pb, err := NewClient(Config{Endpoint: ts.URL, Credential: staticToken("t"), RetryDelay: time.Millisecond, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, err := pb.WaitRefresh(context.Background(), "ws", "ds", "abc", fastWait)
	if err != nil || st.Outcome != RefreshCompleted || st.End.IsZero() || st.Start.IsZero() {
		t.Fatalf("%+v %v", st, err)
	}
	_, err = pb.StartRefresh(context.Background(), "ws", "ds", RefreshOptions{Type: "full"})
	var ip *RefreshInProgressError
	if !errors.As(err, &ip) || ip.Status != http.StatusConflict {
		t.Errorf("409: %v", err)
	}
}

func TestRefreshOutcome(t *testing.T) {
	for _, c := range []struct {
		status, extended string
		want             RefreshOutcome
	}{
		{"Unknown", "", RefreshRunning},
		{"Unknown", "NotStarted", RefreshRunning},
		{"Unknown", "InProgress", RefreshRunning},
		{"Completed", "", RefreshCompleted},
		{"Completed", "Completed", RefreshCompleted},
		{"Failed", "", RefreshFailed},
		{"Failed", "TimedOut", RefreshTimedOut},
		{"Cancelled", "Cancelled", RefreshCancelled},
		{"Disabled", "", RefreshDisabled},
		{"Failed", "SomethingNew", RefreshFailed},
		{"", "", RefreshRunning},
	} {
		if got := refreshOutcome(c.status, c.extended); got != c.want {
			t.Errorf("status %q extended %q: %s, want %s", c.status, c.extended, got, c.want)
		}
	}
}

func TestParseServiceException(t *testing.T) {
	for _, c := range []struct{ in, code, msg string }{
		{`{"errorCode":"ModelRefreshFailed_CredentialsNotSpecified","errorDescription":"The credentials are invalid."}`, "ModelRefreshFailed_CredentialsNotSpecified", "The credentials are invalid."},
		{`{"error":{"code":"DM_GWPipeline_Gateway_DataSourceAccessError","pbi.error":{"code":"DM_GWPipeline_Gateway_DataSourceAccessError","parameters":{},"details":[{"code":"DM_ErrorDetailNameCode_UnderlyingErrorMessage","detail":{"type":1,"value":"Login failed"}}]}}}`, "DM_GWPipeline_Gateway_DataSourceAccessError", "Login failed"},
		{`{"errorCode":"OnlyCode"}`, "OnlyCode", ""},
		{`not json`, "", "not json"},
		{``, "", ""},
	} {
		code, msg := parseServiceException(c.in)
		if code != c.code || msg != c.msg {
			t.Errorf("%s: %q %q", c.in, code, msg)
		}
	}
}
