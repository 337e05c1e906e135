package fakepbi

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Where the truncation error goes (Options.TruncationSlot).
const (
	SlotTable  = "table"  // in the table object, after "rows"
	SlotResult = "result" // in results[0], after "tables"
	SlotTop    = "top"    // at the top level, after "results"
)

// The credentials and ids a zero Options gets.
const (
	DefaultTenantID     = "f4ce0000-0000-4000-8000-000000000001"
	DefaultClientID     = "f4ce0000-0000-4000-8000-000000000002"
	DefaultClientSecret = "fakepbi-client-secret"
	DefaultWorkspaceID  = "f4ce0000-0000-4000-8000-000000000003"
	DefaultDatasetID    = "f4ce0000-0000-4000-8000-000000000004"
)

// maxRequestBody bounds the executeQueries request bodies the fake reads.
const maxRequestBody = 16 << 20

// Options configures a fake server. The zero value is usable: it serves
// DemoModel with the Default* credentials and ids and the real service's
// limits.
type Options struct {
	// TenantID, ClientID and ClientSecret are the only credentials the token
	// endpoint accepts (empty: the Default* values; ClientSecret stays empty
	// when ClientAssertionCheck is set, and then no secret is accepted).
	TenantID, ClientID, ClientSecret string
	// ClientAssertionCheck, when set, lets the token endpoint accept a
	// client_assertion (client_assertion_type
	// urn:ietf:params:oauth:client-assertion-type:jwt-bearer) in place of
	// the secret: a nil error accepts it, an error rejects it with
	// AADSTS700027 and the error's text. Certificates and workload identity
	// authenticate this way.
	ClientAssertionCheck func(assertion string) error
	// WorkspaceID and DatasetID are the only group and dataset ids that
	// exist (others: 404 PowerBIEntityNotFound). Empty: the Default* values.
	WorkspaceID, DatasetID string
	// Tables is the model (nil: DemoModel()).
	Tables []*Table
	// BOM starts every executeQueries response body with a UTF-8 BOM.
	BOM bool
	// MaxRows, MaxValues and MaxBytes are the truncation limits: zero means
	// the real service's DefaultMaxRows, DefaultMaxValues and
	// DefaultMaxBytes, a negative value means no limit. Beyond MaxRows rows
	// or MaxValues values (rows times columns) the rows stop after the last
	// one that fits and an error says so; once MaxBytes of row JSON is
	// written the current row is completed and the rows stop, with no error.
	MaxRows, MaxValues int
	MaxBytes           int64
	// TruncationSlot is where the truncation error goes: SlotTable (the
	// default), SlotResult or SlotTop.
	TruncationSlot string
	// TokenLifetime is how long issued tokens stay valid (zero: one hour).
	TokenLifetime time.Duration
	// Latency is added before each executeQueries and executeDaxQueries
	// answer: the time the query runs. An executeDaxQueries request whose
	// queryTimeout is shorter is answered with a timeout error rowset.
	Latency time.Duration
	// RateLimit, when positive, lets at most RateLimit executeQueries
	// requests be served in any RatePer window (zero: one minute); the
	// others answer 429 with Retry-After (whole seconds, rounded up) and do
	// not count. The real service allows 120 a minute.
	RateLimit int
	RatePer   time.Duration
	// Secrets are the secrets of a fake Azure Key Vault served at URL()
	// (GET /secrets/{name}[/{version}]), by name. Key Vault's challenge
	// flow is reproduced: an unauthenticated request gets 401 with a
	// WWW-Authenticate challenge naming the tenant and the resource
	// https://vault.azure.net, and only tokens issued for KeyVaultScope
	// are accepted.
	Secrets map[string]string
	// HeaderOnlyErrors answers token and access failures as the live
	// service often does: with an empty body and the error's code in the
	// X-PowerBI-Error-Info header. A missing or unknown token answers 401
	// InvalidToken, an expired one 403 TokenExpired, and a workspace other
	// than WorkspaceID 401 GroupNotAccessible (instead of the JSON bodies
	// PowerBINotAuthorizedException, TokenExpired and a 404
	// PowerBIEntityNotFound).
	HeaderOnlyErrors bool
	// ArrowBatchRows is the most rows of one record batch of an
	// executeDaxQueries answer (zero: DefaultArrowBatchRows).
	ArrowBatchRows int
	// ExecMetrics appends an execution-metrics rowset (schema metadata
	// IsExecMetrics=true) to every executeDaxQueries answer.
	ExecMetrics bool
	// PlainHTTP serves http instead of https, for tests of what a client
	// does with a clear-text endpoint. Entra ID cannot be used then
	// (azidentity refuses an http authority).
	PlainHTTP bool
	// SensitivityLabel, when set, is the Microsoft Purview label of the
	// dataset: every executeQueries response carries it, first, as
	// "informationProtectionLabel": {"id": ..., "name": ...}.
	SensitivityLabel *Label
}

// Label is a sensitivity label.
type Label struct {
	ID, Name string
}

// QueryRequest is an executeQueries request as the fake received it.
type QueryRequest struct {
	// API is the endpoint called: executeQueries or executeDaxQueries.
	API string
	// Query is the text of the first query of the body ("" if none).
	Query string
	// Queries is the number of queries in the body.
	Queries int
	// IncludeNulls is serializerSettings.includeNulls, nil when absent.
	IncludeNulls *bool
	// ImpersonatedUserName is as sent ("" if absent).
	ImpersonatedUserName string
	// Authorization is the Authorization header ("" if absent).
	Authorization string
	// Accept is the Accept header ("" if absent).
	Accept string
	// executeDaxQueries only: resultsetRowcountLimit (0 if absent),
	// schemaOnly and queryTimeout (seconds, 0 if absent) as sent.
	RowLimit     int
	SchemaOnly   bool
	QueryTimeout int
	// Host is the host the request was sent to: 127.0.0.1:PORT, or
	// localhost:PORT after a Redirect.
	Host string
	// Path is the request path.
	Path string
	// RequestID is the RequestId header of the answer.
	RequestID string
	// Received is when the request arrived.
	Received time.Time
}

// Server is a running fake of the Power BI executeQueries API and of the
// Entra ID token endpoint, on one TLS listener on 127.0.0.1. Its methods are
// safe for concurrent use.
type Server struct {
	ts   *httptest.Server
	opts Options
	pool *x509.CertPool

	mu            sync.Mutex
	tokens        map[string]issuedToken // access token -> what it is for
	queries       []QueryRequest
	nTokens       int
	redirects     int
	redirectBase  string
	throttles     int
	throttleAfter time.Duration
	fails         int
	failStatus    int
	failInfo      string
	cuts          int
	cutAfter      int64
	stalls        int
	stallAfter    int64
	closing       chan struct{} // closed by Close: stalled answers give up
	window        []time.Time   // times of the requests served in the rate window
	refresh       refreshState
	bodies        map[string][]byte // prerendered answers, by bodyKey
}

// Start starts a fake server on a free port of 127.0.0.1, with a fresh
// self-signed certificate for 127.0.0.1, ::1 and localhost.
func Start(opts Options) (*Server, error) {
	if opts.TenantID == "" {
		opts.TenantID = DefaultTenantID
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" && opts.ClientAssertionCheck == nil {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.WorkspaceID == "" {
		opts.WorkspaceID = DefaultWorkspaceID
	}
	if opts.DatasetID == "" {
		opts.DatasetID = DefaultDatasetID
	}
	if opts.Tables == nil {
		opts.Tables = DemoModel()
	}
	if opts.TruncationSlot == "" {
		opts.TruncationSlot = SlotTable
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.RateLimit > 0 && opts.RatePer <= 0 {
		opts.RatePer = time.Minute
	}
	if err := errors.Join(validateTables(opts.Tables), validateSlot(opts.TruncationSlot)); err != nil {
		return nil, fmt.Errorf("fakepbi: %w", err)
	}
	cert, pool, err := newCertificate()
	if err != nil {
		return nil, fmt.Errorf("fakepbi: make certificate: %w", err)
	}
	s := &Server{opts: opts, pool: pool, tokens: map[string]issuedToken{}, closing: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.openIDConfiguration)
	mux.HandleFunc("/{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("/v1.0/myorg/groups/{ws}/datasets/{ds}/executeQueries", s.executeQueries)
	mux.HandleFunc("/v1.0/myorg/datasets/{ds}/executeQueries", s.executeQueries)
	mux.HandleFunc("/v1.0/myorg/groups/{ws}/datasets/{ds}/executeDaxQueries", s.executeDaxQueries)
	mux.HandleFunc("/v1.0/myorg/datasets/{ds}/executeDaxQueries", s.executeDaxQueries)
	mux.HandleFunc("GET /secrets/{name}", s.keyVaultSecret)
	mux.HandleFunc("GET /secrets/{name}/{$}", s.keyVaultSecret)
	mux.HandleFunc("GET /secrets/{name}/{version}", s.keyVaultSecret)
	mux.HandleFunc("/v1.0/myorg/groups/{ws}/datasets/{ds}/refreshes", s.refreshes)
	mux.HandleFunc("/v1.0/myorg/groups/{ws}/datasets/{ds}/refreshes/{id}", s.refreshByID)
	mux.HandleFunc("/v1.0/myorg/datasets/{ds}/refreshes", s.refreshes)
	mux.HandleFunc("/v1.0/myorg/datasets/{ds}/refreshes/{id}", s.refreshByID)
	s.ts = httptest.NewUnstartedServer(mux)
	if opts.PlainHTTP {
		s.ts.Start()
		return s, nil
	}
	s.ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.ts.StartTLS()
	return s, nil
}

func validateSlot(slot string) error {
	switch slot {
	case "", SlotTable, SlotResult, SlotTop:
		return nil
	}
	return fmt.Errorf("fakepbi: truncation slot %q: use %q, %q or %q", slot, SlotTable, SlotResult, SlotTop)
}

// URL returns the Power BI endpoint base, such as https://127.0.0.1:PORT
// (http with Options.PlainHTTP):
// executeQueries is at URL()+"/v1.0/myorg/groups/{ws}/datasets/{ds}/executeQueries".
func (s *Server) URL() string { return s.ts.URL }

// AuthorityHost returns the Entra authority host to give azidentity
// (ClientOptions.Cloud.ActiveDirectoryAuthorityHost), such as
// https://127.0.0.1:PORT/.
func (s *Server) AuthorityHost() string { return s.ts.URL + "/" }

// Client returns an http.Client that trusts the server's certificate. Its
// transport is closed by Close.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// CertPool returns a pool holding the server's self-signed certificate.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// Options returns the options in effect, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// Close stops the server, cutting responses still in progress (stalled
// ones included).
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	s.mu.Unlock()
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// Throttle makes the next n executeQueries calls answer 429 with a
// Retry-After of retryAfter (whole seconds, rounded up) and the real error
// body.
//
// Injected failures come before authentication and are taken one per call,
// in this order: Redirect (RedirectTo), Throttle, FailWith (FailWithInfo);
// CutBody and Stall apply to calls that would otherwise answer 200.
func (s *Server) Throttle(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttles, s.throttleAfter = n, retryAfter
}

// SetLatency changes Options.Latency from the next call on.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Latency = d
}

// FailWith makes the next n executeQueries calls answer status (such as 500
// or 503) with a realistic error body.
func (s *Server) FailWith(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails, s.failStatus, s.failInfo = n, status, ""
}

// FailWithInfo makes the next n executeQueries calls answer status with an
// empty body and code in the X-PowerBI-Error-Info header, as the live
// service answers some token and access failures (TokenExpired,
// InvalidToken, GroupNotAccessible,
// ServicePrincipalIsNotAllowedByTenantAdminSwitch).
func (s *Server) FailWithInfo(n int, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails, s.failStatus, s.failInfo = n, status, code
}

// CutBody makes the next n executeQueries calls that would answer 200 send
// the status and the first afterBytes bytes of the body, then abort the
// connection, as a network failure mid-response does. A body shorter than
// afterBytes is sent whole, and the connection is still aborted before the
// response ends.
func (s *Server) CutBody(n int, afterBytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cuts, s.cutAfter = n, afterBytes
}

// Stall makes the next n executeQueries calls that would answer 200 go
// silent, as a stalled service does: with afterBytes < 0 they send nothing
// at all, not even the status line; otherwise they send the status, the
// headers and the first afterBytes bytes of the body (a body shorter than
// that is sent whole, but the response never ends). Then nothing more comes until
// the client gives up or the server is closed; the connection is then
// aborted.
func (s *Server) Stall(n int, afterBytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalls, s.stallAfter = n, afterBytes
}

// Redirect makes the next n executeQueries calls answer 307 with a Location
// naming the same request on the other loopback name (127.0.0.1 <->
// localhost), as cross-cluster routing does. Go's http.Client drops the
// Authorization header when it follows it, so the redirected call then
// answers 401 unless the client adds the token again.
func (s *Server) Redirect(n int) {
	s.RedirectTo(n, "")
}

// RedirectTo makes the next n executeQueries calls answer 307 with a
// Location naming the same path and query under base (such as
// http://api.powerbi.com): a redirect a client must refuse to follow with
// its token when base is not https. An empty base is Redirect's other
// loopback name.
func (s *Server) RedirectTo(n int, base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirects, s.redirectBase = n, base
}

// ExpireTokens makes every token issued so far expired: executeQueries
// answers 403 TokenExpired for them.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for tok, it := range s.tokens {
		if it.expires.After(now) {
			it.expires = now
			s.tokens[tok] = it
		}
	}
}

// QueryRequests returns the number of executeQueries calls received.
func (s *Server) QueryRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queries)
}

// TokenRequests returns the number of calls to the token endpoint.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nTokens
}

// Queries returns the executeQueries requests received so far, in order.
func (s *Server) Queries() []QueryRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]QueryRequest, len(s.queries))
	copy(out, s.queries)
	return out
}

// injection is the failure chosen for one call.
type injection int

const (
	injectNone injection = iota
	injectRedirect
	injectThrottle
	injectFail
)

type requestBody struct {
	Queries []struct {
		Query *string `json:"query"`
	} `json:"queries"`
	SerializerSettings *struct {
		IncludeNulls *bool `json:"includeNulls"`
	} `json:"serializerSettings"`
	ImpersonatedUserName string `json:"impersonatedUserName"`
}

func (s *Server) executeQueries(w http.ResponseWriter, r *http.Request) {
	var req requestBody
	rec, bodyErr := readQueryRequest(w, r, "executeQueries", &req)
	rec.Queries, rec.ImpersonatedUserName = len(req.Queries), req.ImpersonatedUserName
	if len(req.Queries) > 0 && req.Queries[0].Query != nil {
		rec.Query = *req.Queries[0].Query
	}
	if req.SerializerSettings != nil {
		rec.IncludeNulls = req.SerializerSettings.IncludeNulls
	}
	if !s.intake(w, r, rec) || s.refuseBody(w, bodyErr) {
		return
	}
	switch {
	case len(req.Queries) != 1:
		s.writeError(w, http.StatusBadRequest, badRequestBody(fmt.Sprintf("Exactly one query is supported per request; the request has %d.", len(req.Queries)), "request.queries"))
		return
	case rec.Query == "":
		s.writeError(w, http.StatusBadRequest, badRequestBody("The Query field is required.", "request.queries[0].query"))
		return
	}
	rel, err := plan(s.opts.Tables, rec.Query)
	if err != nil {
		var qe *QueryError
		if !errors.As(err, &qe) {
			panic(err)
		}
		s.writeError(w, http.StatusBadRequest, daxErrorBody(qe.Error()))
		return
	}
	includeNulls := rec.IncludeNulls != nil && *rec.IncludeNulls
	s.answer(w, r, "application/json; charset=utf-8", s.replay(bodyKey("executeQueries", rec.Query, includeNulls), func(dst io.Writer, flush func()) error {
		return writeBody(dst, flush, rel, includeNulls, s.opts.BOM, s.opts.limits())
	}))
}

// Prerender renders the successful answer of api (executeQueries or
// executeDaxQueries) to query, with default request options, and serves
// its bytes to every later such request instead of rendering it again.
// Benchmarks use it so that the figures measure the client, not the fake:
// the real service renders its answers on other machines. Injected cuts,
// stalls and failures still apply to a replayed answer.
func (s *Server) Prerender(api, query string) error {
	var (
		buf   bytes.Buffer
		err   error
		extra any
	)
	switch api {
	case "executeQueries":
		var rel *relation
		if rel, err = plan(s.opts.Tables, query); err == nil {
			err = writeBody(&buf, func() {}, rel, false, s.opts.BOM, s.opts.limits())
		}
		extra = false
	case "executeDaxQueries":
		set := arrowSettings{batchRows: s.opts.ArrowBatchRows, metrics: s.opts.ExecMetrics}
		err = writeArrowBody(&buf, func() {}, s.opts.Tables, query, set)
		extra = set
	default:
		err = fmt.Errorf("unknown API %q", api)
	}
	if err != nil {
		return fmt.Errorf("prerender %s: %w", api, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bodies == nil {
		s.bodies = map[string][]byte{}
	}
	s.bodies[bodyKey(api, query, extra)] = buf.Bytes()
	return nil
}

// bodyKey names an answer of api to query with the request options that
// shape it.
func bodyKey(api, query string, options any) string {
	return fmt.Sprintf("%s\x00%v\x00%s", api, options, query)
}

// replay returns a writer of the answer prerendered under key, in pieces
// flushed as they go like a rendered answer, or write when there is none.
func (s *Server) replay(key string, write func(dst io.Writer, flush func()) error) func(dst io.Writer, flush func()) error {
	s.mu.Lock()
	body, ok := s.bodies[key]
	s.mu.Unlock()
	if !ok {
		return write
	}
	return func(dst io.Writer, flush func()) error {
		for len(body) > 0 {
			n := min(len(body), 256<<10)
			if _, err := dst.Write(body[:n]); err != nil {
				return err
			}
			flush()
			body = body[n:]
		}
		return nil
	}
}

// errBodyUnreadable is a request body that could not be read, or is too
// large.
var errBodyUnreadable = errors.New("unreadable body")

// readQueryRequest starts a query request of api: it gives it a RequestId,
// decodes its body (at most maxRequestBody bytes) into req, and returns the
// record of what every API has, with the body's failure, which the handler
// answers (refuseBody) once intake has let the request on, as the service
// checks the token before the body.
func readQueryRequest(w http.ResponseWriter, r *http.Request, api string, req any) (QueryRequest, error) {
	rid := newUUID()
	w.Header().Set("RequestId", rid)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil || len(body) > maxRequestBody {
		err = errBodyUnreadable
	} else {
		err = json.Unmarshal(body, req)
	}
	return QueryRequest{
		API:           api,
		Authorization: r.Header.Get("Authorization"),
		Accept:        r.Header.Get("Accept"),
		Host:          r.Host,
		Path:          r.URL.Path,
		RequestID:     rid,
		Received:      time.Now(),
	}, err
}

// refuseBody answers the 400 of a body readQueryRequest failed on, and
// reports whether it did.
func (s *Server) refuseBody(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, errBodyUnreadable):
		s.writeError(w, http.StatusBadRequest, badRequestBody("The request body could not be read or is too large.", "request"))
	default:
		s.writeError(w, http.StatusBadRequest, badRequestBody("The request body is not valid JSON: "+err.Error(), "request"))
	}
	return true
}

// intake records a query request and applies what comes before its body
// is looked at, in the service's order: injected failures, latency, the
// method, the token, the workspace path, the rate limit and the ids. It
// reports whether the request may go on; when not, it has answered it.
func (s *Server) intake(w http.ResponseWriter, r *http.Request, rec QueryRequest) bool {
	s.mu.Lock()
	s.queries = append(s.queries, rec)
	inj, retryAfter, status, info, redirectBase := injectNone, s.throttleAfter, s.failStatus, s.failInfo, s.redirectBase
	switch {
	case s.redirects > 0:
		s.redirects--
		inj = injectRedirect
	case s.throttles > 0:
		s.throttles--
		inj = injectThrottle
	case s.fails > 0:
		s.fails--
		inj = injectFail
	}
	latency := s.opts.Latency
	s.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeError(w, http.StatusMethodNotAllowed, codeMessageBody("MethodNotAllowed", "The requested resource does not support http method '"+r.Method+"'."))
		return false
	}

	switch inj {
	case injectRedirect:
		base := redirectBase
		if base == "" {
			base = "https://" + otherLoopback(r.Host)
		}
		w.Header().Set("Location", strings.TrimRight(base, "/")+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
		return false
	case injectThrottle:
		s.tooMany(w, retryAfter)
		return false
	case injectFail:
		if info != "" {
			writeInfo(w, status, info)
			return false
		}
		s.writeError(w, status, statusErrorBody(status))
		return false
	}

	if s.refuseToken(w, r.Header.Get("Authorization")) {
		return false
	}
	ws, ok := s.myWorkspace(w, r)
	if !ok {
		return false
	}
	if wait, ok := s.admit(time.Now()); !ok {
		s.tooMany(w, wait)
		return false
	}
	return !s.refuseEntity(w, ws, r.PathValue("ds"))
}

// answer sends HTTP 200 with the body write produces, applying CutBody and
// Stall. write gets the writer and a function that flushes what was
// written to the client. A body that fails (or is cut) aborts the
// connection, so that the client sees a failed response.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, contentType string, write func(dst io.Writer, flush func()) error) {
	s.mu.Lock()
	cut, cutAfter := s.cuts > 0, s.cutAfter
	if cut {
		s.cuts--
	}
	stall, stallAfter := s.stalls > 0, s.stallAfter
	if stall {
		s.stalls--
	}
	s.mu.Unlock()

	silence := func() {
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
	}
	if stall && stallAfter < 0 {
		silence()
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	flush := func() { _ = rc.Flush() }
	var dst io.Writer = w
	switch {
	case stall:
		flush() // the status and headers, at least
		dst = &cutWriter{w: w, left: stallAfter, flush: flush, then: silence}
	case cut:
		dst = &cutWriter{w: w, left: cutAfter, flush: flush}
	}
	err := write(dst, flush)
	if err == nil && (cut || stall) {
		// The body was shorter than the cut: it still must not end well.
		if stall {
			silence()
		}
		err = errCut
	}
	if err != nil {
		// A Table bug must be seen; a client gone or a cut is expected.
		var ve valueError
		if errors.As(err, &ve) {
			s.logf("fakepbi: %s: %v", r.URL.Path, err)
		}
		// Abort the connection: the client must see a failed response, not
		// a short one that ends cleanly.
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) logf(format string, args ...any) {
	if l := s.ts.Config.ErrorLog; l != nil {
		l.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

var errCut = errors.New("fakepbi: body cut as requested by CutBody")

// cutWriter passes through the first left bytes, then (after then, when
// not nil) fails.
type cutWriter struct {
	w     io.Writer
	left  int64
	flush func()
	then  func()
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= c.left {
		n, err := c.w.Write(p)
		c.left -= int64(n)
		return n, err
	}
	n, err := c.w.Write(p[:c.left])
	c.left -= int64(n)
	c.flush()
	if err != nil {
		return n, err
	}
	if c.then != nil {
		c.then()
	}
	return n, errCut
}

func (s *Server) writeError(w http.ResponseWriter, status int, body []byte) {
	if s.opts.BOM {
		body = append([]byte(bom), body...)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeInfo answers status with an empty body and code in the
// X-PowerBI-Error-Info header.
func writeInfo(w http.ResponseWriter, status int, code string) {
	w.Header().Set("X-PowerBI-Error-Info", code)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

// refuseToken answers a missing, unknown or expired bearer token, and
// reports whether it did.
func (s *Server) refuseToken(w http.ResponseWriter, authorization string) bool {
	switch s.checkToken(authorization) {
	case tokenMissing:
		if s.opts.HeaderOnlyErrors {
			writeInfo(w, http.StatusUnauthorized, "InvalidToken")
		} else {
			s.writeError(w, http.StatusUnauthorized, pbiErrorBody("PowerBINotAuthorizedException"))
		}
		return true
	case tokenExpired:
		if s.opts.HeaderOnlyErrors {
			writeInfo(w, http.StatusForbidden, "TokenExpired")
		} else {
			s.writeError(w, http.StatusForbidden, codeMessageBody("TokenExpired", "Access token has expired, resubmit with a new access token"))
		}
		return true
	}
	return false
}

// refuseEntity answers a workspace or dataset other than the fake's, and
// reports whether it did.
func (s *Server) refuseEntity(w http.ResponseWriter, ws, ds string) bool {
	switch {
	case s.opts.HeaderOnlyErrors && !strings.EqualFold(ws, s.opts.WorkspaceID):
		writeInfo(w, http.StatusUnauthorized, "GroupNotAccessible")
	case !strings.EqualFold(ws, s.opts.WorkspaceID) || !strings.EqualFold(ds, s.opts.DatasetID):
		s.writeError(w, http.StatusNotFound, pbiErrorBody("PowerBIEntityNotFound"))
	default:
		return false
	}
	return true
}

func (s *Server) tooMany(w http.ResponseWriter, wait time.Duration) {
	secs := int64(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 0), 10))
	s.writeError(w, http.StatusTooManyRequests, codeMessageBody("TooManyRequests",
		fmt.Sprintf("You have exceeded the amount of requests allowed in the current time frame and further requests will fail. Retry in %d seconds.", max(secs, 0))))
}

// admit applies the rate limit at now: it reports whether the request may
// be served and, if not, how long until it could.
func (s *Server) admit(now time.Time) (time.Duration, bool) {
	if s.opts.RateLimit <= 0 {
		return 0, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := now.Add(-s.opts.RatePer)
	drop := 0
	for drop < len(s.window) && !s.window[drop].After(cutoff) {
		drop++
	}
	s.window = append(s.window[:0], s.window[drop:]...)
	if len(s.window) >= s.opts.RateLimit {
		return max(s.window[0].Add(s.opts.RatePer).Sub(now), time.Second), false
	}
	s.window = append(s.window, now)
	return 0, true
}

type tokenState int

const (
	tokenValid tokenState = iota
	tokenMissing
	tokenExpired
)

// issuedToken is an access token the fake issued.
type issuedToken struct {
	expires time.Time
	scope   string // the resource scope it was issued for
	user    string // a signed-in user's UPN; "" for an app (service principal)
}

// UserToken issues a Power BI token for the signed-in user upn, as the
// Azure CLI hands one out (az account get-access-token): the only kind of
// token the My-workspace paths (without groups/{id}) accept, serving the
// fake's one dataset. App tokens from the token endpoint are refused there,
// as the service refuses service principals.
func (s *Server) UserToken(upn string) string {
	tok := "fakepbi-user." + rand.Text() + rand.Text()
	lifetime := s.opts.TokenLifetime
	s.mu.Lock()
	s.tokens[tok] = issuedToken{expires: time.Now().Add(lifetime), scope: PowerBIScope, user: upn}
	s.mu.Unlock()
	return tok
}

// myWorkspace checks a request on a My-workspace path (ws is ""): only a
// user's token may use it, for the fake's workspace. It reports whether
// the request may go on; when not, it has answered it.
func (s *Server) myWorkspace(w http.ResponseWriter, r *http.Request) (ws string, ok bool) {
	if ws = r.PathValue("ws"); ws != "" {
		return ws, true
	}
	_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	s.mu.Lock()
	it := s.tokens[strings.TrimSpace(tok)]
	s.mu.Unlock()
	if it.user == "" {
		// Service principals must use the /groups/ path.
		s.writeError(w, http.StatusForbidden, codeMessageBody("Unauthorized", "API is not accessible for application"))
		return "", false
	}
	return s.opts.WorkspaceID, true
}

// checkToken checks a bearer token for the Power BI scope.
func (s *Server) checkToken(authorization string) tokenState {
	return s.checkTokenFor(authorization, PowerBIScope)
}

// checkTokenFor checks a bearer token: known, issued for scope, and not
// expired.
func (s *Server) checkTokenFor(authorization, scope string) tokenState {
	scheme, tok, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return tokenMissing
	}
	s.mu.Lock()
	it, known := s.tokens[strings.TrimSpace(tok)]
	s.mu.Unlock()
	switch {
	case !known || it.scope != scope:
		return tokenMissing
	case !time.Now().Before(it.expires):
		return tokenExpired
	}
	return tokenValid
}

// otherLoopback swaps 127.0.0.1 and localhost in host:port.
func otherLoopback(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	other := "localhost"
	if strings.EqualFold(host, "localhost") {
		other = "127.0.0.1"
	}
	if port == "" {
		return other
	}
	return net.JoinHostPort(other, port)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// CertificatePEM returns the server's self-signed certificate in PEM form,
// for a process that must trust it through SSL_CERT_FILE.
func (s *Server) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw})
}
