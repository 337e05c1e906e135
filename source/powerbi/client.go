package powerbi

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/go-json-experiment/json"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/internal/units"
	"github.com/pbicopy/pbicopy/source"
)

// DefaultEndpoint is the Power BI REST endpoint of the public cloud.
const DefaultEndpoint = "https://api.powerbi.com"

// Config configures a Power BI client.
type Config struct {
	Endpoint   string // default DefaultEndpoint
	Credential azcore.TokenCredential
	// Scope is the OAuth scope; default PowerBIScope (the public cloud's).
	Scope string
	// HTTPClient carries the requests; nil means a default client. Its
	// redirect policy is replaced: pbicopy follows redirects itself.
	HTTPClient *http.Client
	// MaxRetries for throttling (429) and transient server errors; 0 means 8.
	MaxRetries int
	// ResultBytes is the per-query data limit past which a response may
	// have been cut silently; 0 means MaxResultBytes (the service's 15 MB),
	// < 0 none.
	ResultBytes int64
	// Limiter, when not nil, paces every attempt (shared across clients).
	Limiter *Limiter
	// RetryDelay is the first back-off delay when the service sends no
	// Retry-After; 0 means 2s. Tests shorten it.
	RetryDelay time.Duration
	// IdleTimeout bounds each wait for the next bytes of a response, and
	// RequestTimeout each attempt as a whole (source.powerbi.timeouts); 0
	// means that block's defaults. A request that runs out fails with a
	// *StallError.
	IdleTimeout, RequestTimeout time.Duration
	Logger                      *slog.Logger
}

// Query is one DAX query against one dataset.
type Query struct {
	Workspace        string // group id
	Dataset          string
	DAX              string
	ImpersonatedUser string
	// RefuseLabel fails a response that carries a sensitivity label
	// (*LabelRefusedError) as soon as the label is read.
	RefuseLabel bool
	// OnLabel, when not nil, is told the response's sensitivity label as
	// soon as it is read.
	OnLabel func(*source.Label)
}

// QueryStats describes one executed query.
type QueryStats struct {
	DecodeStats
	RequestID     string        // the RequestId of the answered attempt
	Attempts      int           // HTTP attempts, retries included
	Throttled     int           // attempts answered 429
	ThrottledWait time.Duration // time spent waiting before retrying a 429
	// BackedOff counts the attempts that repeated one that failed
	// otherwise (a server error, a network failure), and
	// BackoffWait the time spent waiting before them.
	BackedOff   int
	BackoffWait time.Duration
}

// Client is a client of the executeQueries REST API. It is safe for
// concurrent use.
type Client struct {
	endpoint *url.URL
	cred     *refreshableCredential
	scope    string
	limiter  *Limiter
	maxBytes int64
	client   *http.Client
	retry    policy.RetryOptions
	timeouts timeoutPolicy
	log      *slog.Logger

	mu sync.Mutex
	pl runtime.Pipeline
}

// NewClient returns a client for cfg.
func NewClient(cfg Config) (*Client, error) {
	ep := cfg.Endpoint
	if ep == "" {
		ep = DefaultEndpoint
	}
	if err := source.CheckEndpoint(ep); err != nil {
		return nil, fmt.Errorf("power bi endpoint: %w", err)
	}
	u, err := url.Parse(strings.TrimRight(ep, "/"))
	if err != nil {
		return nil, fmt.Errorf("power bi endpoint: %w", err)
	}
	if cfg.Credential == nil {
		return nil, errors.New("power bi: no credential")
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p := &Client{
		endpoint: u,
		cred:     &refreshableCredential{cred: cfg.Credential},
		scope:    cmp.Or(cfg.Scope, azure.PowerBIScope),
		limiter:  cfg.Limiter,
		maxBytes: cfg.ResultBytes,
		client:   hc,
		log:      cfg.Logger,
		retry: policy.RetryOptions{
			MaxRetries:    8,
			RetryDelay:    2 * time.Second,
			MaxRetryDelay: MaxThrottleWait,
		},
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.timeouts.idle, p.timeouts.request = (*source.TimeoutsSpec)(nil).Durations()
	if cfg.IdleTimeout > 0 {
		p.timeouts.idle = cfg.IdleTimeout
	}
	if cfg.RequestTimeout > 0 {
		p.timeouts.request = cfg.RequestTimeout
	}
	if cfg.MaxRetries > 0 {
		p.retry.MaxRetries = int32(cfg.MaxRetries)
	}
	if cfg.RetryDelay > 0 {
		p.retry.RetryDelay = cfg.RetryDelay
		p.retry.MaxRetryDelay = max(p.retry.MaxRetryDelay, cfg.RetryDelay)
	}
	p.pl = p.newPipeline()
	return p, nil
}

func (p *Client) newPipeline() runtime.Pipeline {
	bearer := runtime.NewBearerTokenPolicy(p.cred, []string{p.scope}, &policy.BearerTokenOptions{
		InsecureAllowCredentialWithHTTP: p.endpoint.Scheme == "http",
	})
	// The timeouts come last, so that they time the service alone, not the
	// rate limiter or the issuing of a token.
	perRetry := []policy.Policy{bearer, attemptPolicy{}, p.timeouts}
	if p.limiter != nil {
		perRetry = append([]policy.Policy{limiterPolicy{p.limiter}}, perRetry...)
	}
	return runtime.NewPipeline("pbicopy", "v1", runtime.PipelineOptions{
		PerRetry: perRetry,
	}, &policy.ClientOptions{
		Transport: p.client,
		Retry:     p.retry,
		Telemetry: policy.TelemetryOptions{ApplicationID: "pbicopy"},
		Logging:   policy.LogOptions{AllowedHeaders: []string{"RequestId"}},
	})
}

func (p *Client) pipeline() runtime.Pipeline {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pl
}

// renewToken makes the next request use a freshly issued token.
func (p *Client) renewToken() {
	p.cred.forceRefresh()
	p.mu.Lock()
	p.pl = p.newPipeline()
	p.mu.Unlock()
}

// attemptStats is carried in the request context so that attemptPolicy can
// count what happens inside azcore's retry loop.
type attemptStats struct {
	attempts, throttled, backedOff int
	throttledWait, backoffWait     time.Duration
	lastEnd                        time.Time
	last                           attemptOutcome // of the attempt before
	requestID                      string
}

// attemptOutcome is how an attempt ended, which names the wait before the
// next one.
type attemptOutcome uint8

const (
	attemptAnswered  attemptOutcome = iota // an answer to act on (200, a redirect, a 4xx)
	attemptThrottled                       // 429
	attemptFailed                          // a server error or no answer
)

type attemptKey struct{}

// attemptPolicy runs once per attempt, inside the retry policy.
type attemptPolicy struct{}

func (attemptPolicy) Do(req *policy.Request) (*http.Response, error) {
	st, _ := req.Raw().Context().Value(attemptKey{}).(*attemptStats)
	if st != nil {
		if !st.lastEnd.IsZero() {
			wait := time.Since(st.lastEnd)
			switch st.last {
			case attemptThrottled:
				st.throttledWait += wait
			case attemptFailed:
				st.backoffWait += wait
				st.backedOff++
			}
		}
		st.attempts++
	}
	resp, err := req.Next()
	if st != nil {
		st.lastEnd = time.Now()
		st.last = attemptFailed
		if resp != nil {
			st.requestID = resp.Header.Get("RequestId")
			switch {
			case resp.StatusCode == http.StatusTooManyRequests:
				st.throttled++
				st.last = attemptThrottled
			case resp.StatusCode < 500:
				st.last = attemptAnswered
			}
		}
	}
	return resp, err
}

type executeQueriesRequest struct {
	Queries            []queryText        `json:"queries"`
	SerializerSettings serializerSettings `json:"serializerSettings"`
	ImpersonatedUser   string             `json:"impersonatedUserName,omitempty"`
}
type queryText struct {
	Query string `json:"query"`
}
type serializerSettings struct {
	IncludeNulls bool `json:"includeNulls"`
}

const maxRedirects = 5

// ExecuteQuery runs q and streams the rows of its result into recv. Nothing
// of the body is held in memory beyond the decoder's buffer. It returns a
// *ServiceError when the service reported an error inside an HTTP 200 (a
// truncated result among them), a *LimitError for a response that reached
// the per-query limit, a *StreamError for a body that broke off, a
// *StallError for a service that stopped answering (the client's
// timeouts), and an *APIError for any other HTTP status. Throttling (429)
// and transient server errors are retried with back-off, honouring
// Retry-After; a TokenExpired (in the body or the X-PowerBI-Error-Info
// header) is retried once with a new token.
func (p *Client) ExecuteQuery(ctx context.Context, q Query, recv rowReceiver) (QueryStats, error) {
	body, err := json.Marshal(executeQueriesRequest{
		Queries:            []queryText{{Query: q.DAX}},
		SerializerSettings: serializerSettings{IncludeNulls: true},
		ImpersonatedUser:   q.ImpersonatedUser,
	})
	if err != nil {
		return QueryStats{}, err
	}
	target := p.queryURL(q.Workspace, q.Dataset, "executeQueries")
	st := &attemptStats{}
	ctx = context.WithValue(context.WithValue(ctx, attemptKey{}, st), queryKey{}, true)
	resp, err := p.send(ctx, "", target, body, "application/json")
	if err != nil {
		return p.stats(st, DecodeStats{}), err
	}
	p.log.Debug("executeQueries answered", "requestId", st.requestID, "attempts", st.attempts)
	lim := limitsFor(p.maxBytes)
	lim.refuseLabel, lim.onLabel = q.RefuseLabel, q.OnLabel
	ds, err := decode(progressBody(ctx, resp.Body), recv, lim)
	resp.Body.Close()
	if err != nil {
		var se *ServiceError
		var le *LimitError
		var stall *StallError
		switch {
		case ctx.Err() != nil:
			// The caller gave up (a context deadline passes for a
			// network timeout): not a body that broke off.
		case errors.As(err, &le):
			le.RequestID = st.requestID
		case errors.As(err, &stall):
			err = &StallError{Phase: stall.Phase, Timeout: stall.Timeout, Waited: stall.Waited, Rows: ds.Rows, RequestID: st.requestID}
		case errors.As(err, &se):
			err = fmt.Errorf("%w (RequestId %s)", err, st.requestID)
		case isStreamCut(err):
			err = &StreamError{Err: err, RequestID: st.requestID}
		}
	}
	return p.stats(st, ds), err
}

// queryURL is the URL of a query API (executeQueries, executeDaxQueries) on
// a dataset: in workspace ws, or in My workspace when ws is empty.
func (p *Client) queryURL(ws, ds, api string) *url.URL {
	if ws == "" {
		return p.endpoint.JoinPath("v1.0", "myorg", "datasets", url.PathEscape(ds), api)
	}
	return p.endpoint.JoinPath("v1.0", "myorg", "groups", url.PathEscape(ws), "datasets", url.PathEscape(ds), api)
}

// send posts a query request to target and returns the HTTP 200 answer,
// whose body the caller reads and closes. It follows redirects (to Power
// BI hosts only) and renews a token the service took for expired, once;
// throttling and transient server errors are retried by the pipeline. op
// names the API in errors ("" for executeQueries). ctx carries the
// attempt stats and marks a query (queryKey) for the rate limiter.
func (p *Client) send(ctx context.Context, op string, target *url.URL, body []byte, accept string) (*http.Response, error) {
	name := cmp.Or(op, "executeQueries")
	renewed := false
	redirects := 0
	for {
		resp, err := p.post(ctx, target.String(), body, accept)
		if err != nil {
			return nil, requestError(name, err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return resp, nil
		case resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect:
			loc, rerr := p.redirectTarget(name, target, resp)
			drain(resp)
			if rerr != nil {
				return nil, rerr
			}
			if redirects++; redirects > maxRedirects {
				return nil, fmt.Errorf("%s: more than %d redirects", name, maxRedirects)
			}
			p.log.Debug(name+" redirected", "location", loc.Redacted())
			target = loc
			continue
		}
		apiErr := p.apiError(ctx, resp, op)
		if apiErr.tokenExpired() && !renewed {
			renewed = true
			p.log.Info("access token expired at the service; retrying once with a new token", "requestId", apiErr.RequestID)
			p.renewToken()
			continue
		}
		return nil, apiErr
	}
}

func (p *Client) stats(st *attemptStats, ds DecodeStats) QueryStats {
	return QueryStats{DecodeStats: ds, RequestID: st.requestID, Attempts: st.attempts, Throttled: st.throttled, ThrottledWait: st.throttledWait,
		BackedOff: st.backedOff, BackoffWait: st.backoffWait}
}

func (p *Client) post(ctx context.Context, target string, body []byte, accept string) (*http.Response, error) {
	req, err := runtime.NewRequest(ctx, http.MethodPost, target)
	if err != nil {
		return nil, err
	}
	req.Raw().Header.Set("Accept", accept)
	if err := req.SetBody(streamingNopCloser(bytes.NewReader(body)), "application/json"); err != nil {
		return nil, err
	}
	runtime.SkipBodyDownload(req)
	return p.pipeline().Do(req)
}

func streamingNopCloser(r *bytes.Reader) io.ReadSeekCloser {
	return struct {
		io.ReadSeeker
		io.Closer
	}{r, io.NopCloser(nil)}
}

// redirectTarget validates a redirect: only to https (http from loopback to
// loopback) on the endpoint's host, a Power BI host, or loopback when the
// endpoint is itself on loopback. The bearer token goes with the request, so
// it must never follow a redirect anywhere else.
func (p *Client) redirectTarget(op string, from *url.URL, resp *http.Response) (*url.URL, error) {
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("%s: redirect %d without a usable Location: %w", op, resp.StatusCode, err)
	}
	if loc.Scheme != "https" && !(loc.Scheme == "http" && azure.IsLoopback(loc.Hostname()) && azure.IsLoopback(p.endpoint.Hostname())) {
		return nil, fmt.Errorf("%s: refusing a redirect to %s: not https", op, loc.Redacted())
	}
	if !trustedRedirectHost(p.endpoint.Hostname(), loc.Hostname()) {
		return nil, fmt.Errorf("%s: refusing a redirect to %s: not a Power BI host", op, loc.Host)
	}
	return loc, nil
}

var powerBIHostSuffixes = []string{
	".powerbi.com", ".powerbigov.us", ".powerbi.cn", ".analysis.windows.net",
	".pbidedicated.windows.net", ".analysis.usgovcloudapi.net", ".analysis.chinacloudapi.cn", ".fabric.microsoft.com",
}

func trustedRedirectHost(endpointHost, host string) bool {
	host = strings.ToLower(host)
	if host == strings.ToLower(endpointHost) {
		return true
	}
	for _, s := range powerBIHostSuffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return azure.IsLoopback(endpointHost) && azure.IsLoopback(host)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// MaxResultBytes is the service's limit of data per query (15 MB). When a
// result reaches it the service completes the current row and stops, and it
// may say nothing about it.
//
// It is taken as 15,000,000 bytes of response, below the 15 MiB reading
// (15,728,640), so that a cut is caught whichever way the service counts.
const MaxResultBytes = 15_000_000

// LimitError reports a response that reached MaxResultBytes: it may have
// been cut without an error, so nothing is published. The rows before it
// are a correct prefix of the result (a pager continues after them).
type LimitError struct {
	Bytes, Rows int64 // bytes read, complete rows received
	RequestID   string
	Limit       int64 // the limit applied (MaxResultBytes unless configured)
	// Overrun is set when the response went on further than the service
	// ever sends past its limit: reading stopped there.
	Overrun bool
	// Value, when not 0, is the bound a single value passed: reading
	// stopped there.
	Value int64
}

func (e *LimitError) Error() string {
	var what string
	switch {
	case e.Value > 0:
		what = fmt.Sprintf("a single name or value larger than %d bytes came after %d rows, so the response passes the service's 15 MB per-query limit; reading stopped there (%s read)",
			e.Value, e.Rows, units.Bytes(e.Bytes))
	case e.Overrun:
		what = fmt.Sprintf("the response went on past the service's 15 MB per-query limit further than the service ever sends (it completes the row that crosses the limit, then stops); reading stopped after %d rows (%s)",
			e.Rows, units.Bytes(e.Bytes))
	default:
		what = fmt.Sprintf("the response reached the service's 15 MB per-query limit (%d rows, %s) and may be silently incomplete", e.Rows, units.Bytes(e.Bytes))
	}
	return what + ", so nothing was published: narrow the query (for example one query per day or month) or page it" + requestIDNote(e.RequestID)
}

// requestIDNote is " (RequestId id)", or "" without an id (a saved
// response).
func requestIDNote(id string) string {
	if id == "" {
		return ""
	}
	return " (RequestId " + id + ")"
}

// StreamError is a response body that broke off after HTTP 200: the
// connection dropped or the body ended early. executeQueries only reads, so
// running the query again is safe.
type StreamError struct {
	Err       error
	RequestID string
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("the response broke off: %v (RequestId %s)", e.Err, e.RequestID)
}

func (e *StreamError) Unwrap() error { return e.Err }

// Retryable reports that running the query again may succeed.
func (e *StreamError) Retryable() bool { return true }

// isStreamCut reports whether the body itself broke off (never an error of
// the receiver, whose values could hold any text).
func isStreamCut(err error) bool {
	var be *BodyError
	if !errors.As(err, &be) {
		return false
	}
	var ne net.Error
	return errors.Is(be, io.ErrUnexpectedEOF) || errors.As(be, &ne) ||
		strings.Contains(be.Error(), "connection reset") || strings.Contains(be.Error(), "INTERNAL_ERROR")
}

// refreshableCredential wraps a credential so that the next token can be
// forced to be newly issued rather than served from a cache.
type refreshableCredential struct {
	cred  azcore.TokenCredential
	mu    sync.Mutex
	force bool
}

func (r *refreshableCredential) forceRefresh() {
	r.mu.Lock()
	r.force = true
	r.mu.Unlock()
}

func (r *refreshableCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	r.mu.Lock()
	force := r.force
	r.force = false
	r.mu.Unlock()
	if force && opts.Claims == "" {
		// A claims challenge makes azidentity bypass its token cache.
		opts.Claims = fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, time.Now().Unix())
	}
	return r.cred.GetToken(ctx, opts)
}

// Token gets an access token for the API, proving that the credential
// works.
func (p *Client) Token(ctx context.Context) error {
	_, err := p.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{p.scope}})
	return err
}
