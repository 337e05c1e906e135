package powerbi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/go-json-experiment/json"

	"github.com/pbicopy/pbicopy/source"
)

// RefreshOptions are the options of a dataset refresh. The zero value asks
// for a standard refresh (any capacity, 8 a day on shared capacity); any
// option set makes it an enhanced refresh, which needs a Premium, PPU or
// Fabric capacity and returns the refresh id at once.
type RefreshOptions struct {
	Type           string // full, clearValues, calculate, dataOnly, automatic or defragment
	CommitMode     string // transactional or partialBatch
	MaxParallelism int
	RetryCount     int
	// Timeout bounds each attempt in the service (whole seconds are sent).
	Timeout time.Duration
	// Objects limits the refresh to tables or partitions.
	Objects []RefreshObject
}

// RefreshObject names a table, or one partition of it, to refresh.
type RefreshObject struct {
	Table     string `json:"table"`
	Partition string `json:"partition,omitzero"`
}

// Enhanced reports whether o asks for an enhanced refresh.
func (o RefreshOptions) Enhanced() bool {
	return o.Type != "" || o.CommitMode != "" || o.MaxParallelism > 0 || o.RetryCount > 0 || o.Timeout > 0 || len(o.Objects) > 0
}

func (o RefreshOptions) body() ([]byte, error) {
	if !o.Enhanced() {
		// Service principals may only ask for NoNotification.
		return []byte(`{"notifyOption":"NoNotification"}`), nil
	}
	var b struct {
		Type           string          `json:"type,omitzero"`
		CommitMode     string          `json:"commitMode,omitzero"`
		MaxParallelism int             `json:"maxParallelism,omitzero"`
		RetryCount     int             `json:"retryCount,omitzero"`
		Timeout        string          `json:"timeout,omitzero"`
		Objects        []RefreshObject `json:"objects,omitzero"`
	}
	b.Type, b.CommitMode, b.MaxParallelism, b.RetryCount, b.Objects = o.Type, o.CommitMode, o.MaxParallelism, o.RetryCount, o.Objects
	if o.Timeout > 0 {
		s := int64(o.Timeout.Round(time.Second) / time.Second)
		b.Timeout = fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return json.Marshal(b)
}

// RefreshOutcome is where a refresh stands.
type RefreshOutcome string

// Refresh outcomes. Every one but RefreshRunning is final.
const (
	RefreshRunning   RefreshOutcome = "running"
	RefreshCompleted RefreshOutcome = "completed"
	RefreshFailed    RefreshOutcome = "failed"
	RefreshCancelled RefreshOutcome = "cancelled"
	RefreshTimedOut  RefreshOutcome = "timedOut"
	RefreshDisabled  RefreshOutcome = "disabled"
)

// RefreshState is a refresh as the service last described it.
type RefreshState struct {
	ID             string // the refresh id (requestId in the history)
	Outcome        RefreshOutcome
	Status         string // status as the service wrote it (Unknown while running)
	ExtendedStatus string // NotStarted, InProgress, Completed, ... when given
	Type           string // refreshType: ViaApi, ViaEnhancedApi, Scheduled, OnDemand, ...
	Start, End     time.Time
	ErrorCode      string // from serviceExceptionJson or messages
	ErrorMessage   string
	RequestID      string // RequestId of the answer that said so
}

// Refresh is a refresh the client started.
type Refresh struct {
	ID        string // refresh id
	Enhanced  bool
	RequestID string // RequestId of the POST
}

// RefreshInProgressError is the service's answer to a refresh request while
// another refresh of the dataset runs (HTTP 400, or 409 in older versions).
type RefreshInProgressError struct {
	Status    int
	Message   string
	RequestID string
}

func (e *RefreshInProgressError) Error() string {
	msg := strings.TrimRight(e.Message, ". ")
	if msg == "" {
		msg = "another refresh is running"
	}
	return fmt.Sprintf("refresh: another refresh of this dataset is already running (HTTP %d: %s): wait for it to end, or cancel it in the Power BI service, then try again (RequestId %s)", e.Status, msg, e.RequestID)
}

// RefreshFailedError is a refresh that ended other than completed.
type RefreshFailedError struct{ State RefreshState }

func (e *RefreshFailedError) Error() string {
	s := e.State
	var b strings.Builder
	fmt.Fprintf(&b, "dataset refresh %s ", s.ID)
	switch s.Outcome {
	case RefreshCancelled:
		b.WriteString("was cancelled")
	case RefreshTimedOut:
		b.WriteString("timed out in the service (the dataset's refresh time limit was reached)")
	case RefreshDisabled:
		b.WriteString("is disabled: the dataset's refresh is switched off, or its capacity is paused")
	default:
		b.WriteString("failed")
	}
	if s.ErrorMessage != "" {
		fmt.Fprintf(&b, ": %s", strings.TrimRight(s.ErrorMessage, ". "))
	}
	if s.ErrorCode != "" {
		fmt.Fprintf(&b, " (code %s)", s.ErrorCode)
	}
	if s.Outcome == RefreshFailed {
		b.WriteString("; see the dataset's refresh history in the Power BI service")
	}
	return b.String()
}

// refreshHint is APIError.Hint for the refresh calls.
func refreshHint(e *APIError) string {
	switch {
	case e.hasCode("ServicePrincipalIsNotAllowedByTenantAdminSwitch"):
		return "A Power BI admin must enable the tenant setting \"Service principals can use Fabric APIs\" for a security group that contains this app"
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return "Refreshing needs write access: give the app the Contributor role (or higher) on the workspace, and check the tenant setting \"Service principals can use Fabric APIs\""
	case e.Status == http.StatusNotFound:
		return "The workspace, dataset or refresh was not found: check the ids, and that the app has a role (Contributor or higher) on the workspace"
	case e.Status == http.StatusTooManyRequests:
		return e.throttled("a shared-capacity dataset allows 8 refreshes a day through the API")
	case e.Status >= 500:
		return "The service failed after every retry; try again later and quote the RequestId to Microsoft support if it persists"
	}
	return ""
}

// refreshesURL is the refreshes collection of a dataset: in My workspace
// when workspace is "".
func (p *Client) refreshesURL(workspace, dataset string) *url.URL {
	if workspace == "" {
		return p.endpoint.JoinPath("v1.0", "myorg", "datasets", url.PathEscape(dataset), "refreshes")
	}
	return p.endpoint.JoinPath("v1.0", "myorg", "groups", url.PathEscape(workspace), "datasets", url.PathEscape(dataset), "refreshes")
}

// StartRefresh asks the service to refresh a dataset. An enhanced refresh
// gives its id at once (Location header); for a standard refresh the id is
// found in the refresh history, comparing it with the history read just
// before the request. A refresh already running is a
// *RefreshInProgressError.
func (p *Client) StartRefresh(ctx context.Context, workspace, dataset string, opts RefreshOptions) (*Refresh, error) {
	body, err := opts.body()
	if err != nil {
		return nil, err
	}
	var previous string
	if !opts.Enhanced() {
		// Errors here show again, better explained, in the POST.
		if st, ok, err := p.LatestRefresh(ctx, workspace, dataset); err == nil && ok {
			previous = st.ID
		}
	}
	st := &attemptStats{}
	resp, err := p.call(context.WithValue(ctx, attemptKey{}, st), http.MethodPost, p.refreshesURL(workspace, dataset), body)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusBadRequest && refreshConflictText(ae.Message+" "+ae.Code)) {
			if st.attempts > 1 && !opts.Enhanced() {
				// An earlier attempt may have started the refresh before its
				// answer was lost: this is then our refresh running.
				if r, ferr := p.findNewRefresh(ctx, workspace, dataset, previous); ferr == nil {
					return r, nil
				}
			}
			return nil, &RefreshInProgressError{Status: ae.Status, Message: ae.Message, RequestID: ae.RequestID}
		}
		return nil, err
	}
	drain(resp)
	r := &Refresh{Enhanced: opts.Enhanced(), RequestID: resp.Header.Get("RequestId")}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("refresh: unexpected HTTP %d (RequestId %s)", resp.StatusCode, r.RequestID)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			r.ID = path.Base(u.Path)
		}
	}
	if r.ID != "" {
		p.log.Debug("refresh started", "refreshId", r.ID, "enhanced", r.Enhanced, "requestId", r.RequestID)
		return r, nil
	}
	found, err := p.findNewRefresh(ctx, workspace, dataset, previous)
	if err != nil {
		return nil, fmt.Errorf("refresh: the service accepted the refresh (RequestId %s) but %w", r.RequestID, err)
	}
	found.Enhanced, found.RequestID = r.Enhanced, r.RequestID
	p.log.Debug("refresh started", "refreshId", found.ID, "enhanced", found.Enhanced, "requestId", found.RequestID)
	return found, nil
}

// findNewRefresh reads the top of the refresh history until a refresh other
// than previous shows.
func (p *Client) findNewRefresh(ctx context.Context, workspace, dataset, previous string) (*Refresh, error) {
	delay := 500 * time.Millisecond
	for i := 0; ; i++ {
		st, ok, err := p.LatestRefresh(ctx, workspace, dataset)
		if err != nil {
			return nil, fmt.Errorf("reading the refresh history failed: %w", err)
		}
		if ok && st.ID != "" && st.ID != previous {
			return &Refresh{ID: st.ID}, nil
		}
		if i == 5 {
			return nil, errors.New("it does not show in the refresh history: check the dataset's refresh history in the Power BI service")
		}
		if err := sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay *= 2
	}
}

// LatestRefresh returns the newest entry of the dataset's refresh history
// (GET .../refreshes?$top=1); ok is false when the history is empty.
func (p *Client) LatestRefresh(ctx context.Context, workspace, dataset string) (RefreshState, bool, error) {
	list, err := p.refreshHistory(ctx, workspace, dataset, 1)
	if err != nil || len(list) == 0 {
		return RefreshState{}, false, err
	}
	return list[0], true, nil
}

func (p *Client) refreshHistory(ctx context.Context, workspace, dataset string, top int) ([]RefreshState, error) {
	u := p.refreshesURL(workspace, dataset)
	u.RawQuery = "$top=" + strconv.Itoa(top)
	resp, err := p.call(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("refresh history: %w", err)
	}
	var body struct {
		Value []refreshBody `json:"value"`
	}
	if err := json.Unmarshal(trimBOM(raw), &body, json.RejectUnknownMembers(false)); err != nil {
		return nil, fmt.Errorf("refresh history: decode the answer: %w", err)
	}
	out := make([]RefreshState, len(body.Value))
	for i, b := range body.Value {
		out[i] = b.state(http.StatusOK, resp.Header.Get("RequestId"))
	}
	return out, nil
}

// RefreshStatus reads one refresh (GET .../refreshes/{id}). retryAfter is
// the service's Retry-After, 0 when it sent none.
func (p *Client) RefreshStatus(ctx context.Context, workspace, dataset, id string) (st RefreshState, retryAfter time.Duration, err error) {
	resp, err := p.call(ctx, http.MethodGet, p.refreshesURL(workspace, dataset).JoinPath(url.PathEscape(id)), nil)
	if err != nil {
		return RefreshState{}, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return RefreshState{}, 0, fmt.Errorf("refresh status: %w", err)
	}
	var b refreshBody
	if len(bytes.TrimSpace(trimBOM(raw))) > 0 {
		if err := json.Unmarshal(trimBOM(raw), &b, json.RejectUnknownMembers(false)); err != nil {
			return RefreshState{}, 0, fmt.Errorf("refresh status: decode the answer: %w", err)
		}
	}
	st = b.state(resp.StatusCode, resp.Header.Get("RequestId"))
	if st.ID == "" {
		st.ID = id
	}
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s >= 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return st, retryAfter, nil
}

// WaitOptions pace WaitRefresh.
type WaitOptions struct {
	// Interval is the first wait between two reads (default 5s); it grows
	// by half each time up to MaxInterval (default 1 min). A Retry-After
	// from the service replaces it.
	Interval, MaxInterval time.Duration
	// OnPoll, when set, is told every state read.
	OnPoll func(RefreshState)
}

// WaitRefresh reads the refresh until it ends or ctx is done. It returns
// the last state read, and a *RefreshFailedError when the refresh ended
// other than completed, or ctx's error (the refresh goes on in the
// service). It reads GET .../refreshes/{id}; if the service does not know
// the id there (a standard refresh), it reads the refresh history instead.
func (p *Client) WaitRefresh(ctx context.Context, workspace, dataset, id string, opts WaitOptions) (RefreshState, error) {
	interval := opts.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	maxInterval := max(opts.MaxInterval, interval)
	if opts.MaxInterval <= 0 {
		maxInterval = max(time.Minute, interval)
	}
	useHistory := false
	var last RefreshState
	for {
		var st RefreshState
		var retryAfter time.Duration
		var err error
		if !useHistory {
			st, retryAfter, err = p.RefreshStatus(ctx, workspace, dataset, id)
			var ae *APIError
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				p.log.Debug("refresh not readable by id; reading the refresh history", "refreshId", id)
				useHistory = true
				continue
			}
		} else {
			st, err = p.historyEntry(ctx, workspace, dataset, id)
		}
		if err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return last, err
		}
		last = st
		if opts.OnPoll != nil {
			opts.OnPoll(st)
		}
		switch st.Outcome {
		case RefreshCompleted:
			return st, nil
		case RefreshRunning:
		default:
			return st, &RefreshFailedError{State: st}
		}
		wait := interval
		if retryAfter > 0 {
			wait = retryAfter
		}
		p.log.Debug("refresh running", "refreshId", id, "status", cmpOr(st.ExtendedStatus, st.Status), "next", wait)
		if err := sleep(ctx, wait); err != nil {
			return last, err
		}
		interval = min(interval+interval/2, maxInterval)
	}
}

func (p *Client) historyEntry(ctx context.Context, workspace, dataset, id string) (RefreshState, error) {
	list, err := p.refreshHistory(ctx, workspace, dataset, 20)
	if err != nil {
		return RefreshState{}, err
	}
	for _, st := range list {
		if strings.EqualFold(st.ID, id) {
			return st, nil
		}
	}
	return RefreshState{}, fmt.Errorf("refresh %s is neither readable by id nor in the last 20 entries of the refresh history", id)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// refreshBody is a refresh as GET .../refreshes/{id} and the history
// describe it; every field is optional.
type refreshBody struct {
	RequestID            string `json:"requestId"`
	RefreshType          string `json:"refreshType"`
	Type                 string `json:"type"`
	StartTime            string `json:"startTime"`
	EndTime              string `json:"endTime"`
	Status               string `json:"status"`
	ExtendedStatus       string `json:"extendedStatus"`
	ServiceExceptionJSON string `json:"serviceExceptionJson"`
	Messages             []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"messages"`
}

func (b refreshBody) state(httpStatus int, requestID string) RefreshState {
	st := RefreshState{
		ID: b.RequestID, Status: b.Status, ExtendedStatus: b.ExtendedStatus, Type: cmpOr(b.RefreshType, b.Type),
		Start: parseServiceTime(b.StartTime), End: parseServiceTime(b.EndTime), RequestID: requestID,
	}
	st.Outcome = refreshOutcome(b.Status, b.ExtendedStatus)
	if httpStatus == http.StatusAccepted {
		st.Outcome = RefreshRunning
	}
	st.ErrorCode, st.ErrorMessage = parseServiceException(b.ServiceExceptionJSON)
	for _, m := range b.Messages {
		if st.ErrorMessage == "" && !strings.EqualFold(m.Type, "Warning") && m.Message != "" {
			st.ErrorCode, st.ErrorMessage = m.Code, m.Message
		}
	}
	return st
}

// refreshOutcome maps the service's words to an outcome: extendedStatus
// first, when it says something known, then status. Unknown means running.
func refreshOutcome(status, extended string) RefreshOutcome {
	for _, s := range []string{extended, status} {
		switch strings.ToLower(s) {
		case "completed":
			return RefreshCompleted
		case "failed":
			return RefreshFailed
		case "cancelled", "canceled":
			return RefreshCancelled
		case "timedout":
			return RefreshTimedOut
		case "disabled":
			return RefreshDisabled
		case "notstarted", "inprogress", "unknown":
			return RefreshRunning
		}
	}
	return RefreshRunning
}

// parseServiceException reads serviceExceptionJson, a JSON document inside
// a string, in either shape the service uses:
// {"errorCode":"...","errorDescription":"..."} or the pbi.error envelope.
func parseServiceException(s string) (code, message string) {
	if strings.TrimSpace(s) == "" {
		return "", ""
	}
	var b struct {
		ErrorCode        string            `json:"errorCode"`
		ErrorDescription string            `json:"errorDescription"`
		Error            *serviceErrorBody `json:"error"`
	}
	if err := json.Unmarshal([]byte(s), &b, json.RejectUnknownMembers(false)); err != nil {
		return "", s
	}
	code, message = b.ErrorCode, b.ErrorDescription
	if b.Error != nil {
		code = cmpOr(code, b.Error.Code)
		if code == "" && b.Error.PBIError != nil {
			code = b.Error.PBIError.Code
		}
		details, asCode := b.Error.details()
		if asCode != "" {
			details = strings.TrimSpace(details + " (AnalysisServicesErrorCode " + asCode + ")")
		}
		message = cmpOr(message, cmpOr(details, b.Error.Message))
	}
	return code, message
}

// parseServiceTime reads a timestamp written with or without a zone (the
// service does both); without one it is UTC.
func parseServiceTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t
	}
	return time.Time{}
}

func refreshConflictText(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "already") || strings.Contains(s, "in progress") || strings.Contains(s, "conflict")
}

// call sends one REST request through the client's pipeline (retries,
// Retry-After, bearer token), following redirects to Power BI hosts and
// renewing an expired token once. An answer of 400 or more is returned as an
// *APIError; any other answer is the caller's to read and close.
func (p *Client) call(ctx context.Context, method string, target *url.URL, body []byte) (*http.Response, error) {
	op := "refresh"
	renewed := false
	for redirects := 0; ; {
		req, err := runtime.NewRequest(ctx, method, target.String())
		if err != nil {
			return nil, err
		}
		req.Raw().Header.Set("Accept", "application/json")
		if body != nil {
			if err := req.SetBody(streamingNopCloser(bytes.NewReader(body)), "application/json"); err != nil {
				return nil, err
			}
		}
		resp, err := p.pipeline().Do(req)
		if err != nil {
			return nil, requestError(op, err)
		}
		switch {
		case resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect:
			loc, rerr := p.redirectTarget(op, target, resp)
			drain(resp)
			if rerr != nil {
				return nil, rerr
			}
			if redirects++; redirects > maxRedirects {
				return nil, fmt.Errorf("%s: more than %d redirects", op, maxRedirects)
			}
			target = loc
			continue
		case resp.StatusCode < 400:
			return resp, nil
		}
		apiErr := p.apiError(ctx, resp, op)
		if apiErr.tokenExpired() && !renewed {
			renewed = true
			p.renewToken()
			continue
		}
		return nil, apiErr
	}
}

// RefreshTimeout bounds the wait for a refresh a job asks for
// (source.powerbi.refreshBefore).
const RefreshTimeout = 2 * time.Hour

// RefreshTimeoutError is a refresh that was still running when the wait for
// it ended. The refresh goes on in the service.
type RefreshTimeoutError struct {
	State   RefreshState
	Timeout time.Duration
}

func (e *RefreshTimeoutError) Error() string {
	status := e.State.ExtendedStatus
	if status == "" {
		status = e.State.Status
	}
	if status == "" {
		status = "running"
	}
	return fmt.Sprintf("dataset refresh %s did not end within %s (last status %s); it goes on in the service: check it there, or wait longer", e.State.ID, e.Timeout, status)
}

// RefreshAndWait starts a refresh of the source's dataset and, with wait,
// reads its status until it ends or timeout passes. It returns the last
// state read; the error is a *RefreshFailedError when the refresh did not
// complete, a *RefreshTimeoutError when it was still running at the
// timeout, and a *RefreshInProgressError when another refresh was running
// already. Every state read goes to onPoll, when not nil.
func (c *Connector) RefreshAndWait(ctx context.Context, pb *source.PowerBISpec, opts RefreshOptions, wait bool, timeout time.Duration, job string, onPoll func(status string, elapsed time.Duration)) (*Refresh, RefreshState, error) {
	client, err := c.Client(ctx, pb)
	if err != nil {
		return nil, RefreshState{}, err
	}
	log := c.logger()
	if job != "" {
		log = log.With("job", job)
	}
	ref, err := client.StartRefresh(ctx, pb.GroupID(), pb.Dataset, opts)
	if err != nil {
		return nil, RefreshState{}, err
	}
	log.Info("dataset refresh started", "refreshId", ref.ID, "enhanced", ref.Enhanced, "requestId", ref.RequestID)
	if !wait {
		return ref, RefreshState{ID: ref.ID, Outcome: RefreshRunning}, nil
	}
	start := time.Now()
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	st, err := client.WaitRefresh(wctx, pb.GroupID(), pb.Dataset, ref.ID, WaitOptions{
		Interval: c.RetryDelay,
		OnPoll: func(st RefreshState) {
			if onPoll != nil {
				onPoll(cmpOr(st.ExtendedStatus, st.Status), time.Since(start))
			}
		},
	})
	if st.ID == "" {
		st.ID = ref.ID
	}
	switch {
	case err == nil:
		log.Info("dataset refresh completed", "refreshId", ref.ID, "duration", time.Since(start).Round(time.Second))
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		err = &RefreshTimeoutError{State: st, Timeout: timeout}
	}
	return ref, st, err
}

// Prepare refreshes the job's dataset and waits for the refresh to
// complete, when the job asks for it (source.powerbi.refreshBefore). A
// refresh that fails or does not end within RefreshTimeout fails the job
// before any data moves.
func (c *Connector) Prepare(ctx context.Context, spec source.Spec, job string) error {
	pb := spec.PowerBI
	if pb == nil || !pb.RefreshBefore {
		return nil
	}
	c.logger().Info("refreshing the dataset before extracting (source.powerbi.refreshBefore)", "job", job)
	onPoll := func(status string, elapsed time.Duration) {
		if c.OnRefresh != nil {
			c.OnRefresh(job, status, elapsed)
		}
	}
	if _, _, err := c.RefreshAndWait(ctx, pb, RefreshOptions{}, true, RefreshTimeout, job, onPoll); err != nil {
		return fmt.Errorf("refreshBefore: %w; nothing was extracted", err)
	}
	return nil
}
