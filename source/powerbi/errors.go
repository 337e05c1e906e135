package powerbi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"

	"github.com/pbicopy/pbicopy/internal/azure/credential"
)

// APIError is an HTTP error answered by the Power BI REST API.
type APIError struct {
	Status  int
	Code    string // from the body, e.g. DatasetExecuteQueriesError, PowerBIEntityNotFound
	Message string // the service's message, or the DAX error detail text
	// ASCode is the AnalysisServicesErrorCode of a DAX error: the
	// engine's error number, which Microsoft support asks for.
	ASCode string
	// Info is the X-PowerBI-Error-Info header: the live service answers
	// some token and access failures with it and an empty body
	// (TokenExpired, InvalidToken, GroupNotAccessible, ...).
	Info      string
	RequestID string
	// Op is the call that failed: "" for executeQueries, "refresh" for the
	// refresh calls.
	Op string

	// For a 429: the wait the service asked for (Retry-After), the longest
	// wait the client's retry policy accepts, and the attempts made (0 when
	// unknown). When RetryAfter is beyond MaxWait, the policy stopped
	// without waiting.
	RetryAfter, MaxWait time.Duration
	Attempts            int
}

func (e *APIError) Error() string {
	var b strings.Builder
	op := e.Op
	if op == "" {
		op = "executeQueries"
	}
	fmt.Fprintf(&b, "%s: HTTP %d", op, e.Status)
	code, info := clip(e.Code), clip(e.Info)
	switch {
	case code != "" && info != "" && !strings.EqualFold(info, code):
		fmt.Fprintf(&b, " %s, X-PowerBI-Error-Info: %s", code, info)
	case code != "":
		fmt.Fprintf(&b, " %s", code)
	case info != "":
		fmt.Fprintf(&b, " X-PowerBI-Error-Info: %s", info)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", strings.TrimRight(clip(e.Message), ". "))
	}
	if e.ASCode != "" {
		fmt.Fprintf(&b, " (AnalysisServicesErrorCode %s)", clip(e.ASCode))
	}
	if h := e.Hint(); h != "" {
		fmt.Fprintf(&b, ". %s", h)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (RequestId %s)", e.RequestID)
	}
	return b.String()
}

// Permanent reports whether the same request would be refused again:
// 400 (an invalid query), 401, 403 and 404 (access, a wrong id). A 429, a
// 408 and the 5xx are not.
func (e *APIError) Permanent() bool {
	switch e.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// requestError is the failure of a request that got no answer from the
// service: a token refused (which says so itself: no prefix of the call
// it was for), or a network error of the call op.
func requestError(op string, err error) error {
	var ae *credential.AuthError
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// maxMessageBytes bounds the text of the service that a message quotes.
// The service's messages are one line, a few hundred bytes at most (a DAX
// syntax error quotes the query, which the user has anyway); an endpoint
// that sends megabytes of message must not flood the logs with them.
const maxMessageBytes = 2000

// clip shortens s to maxMessageBytes, at a character boundary, saying how
// long it was.
func clip(s string) string {
	if len(s) <= maxMessageBytes {
		return s
	}
	cut := maxMessageBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", s[:cut], len(s))
}

// hasCode reports whether the service gave code, in the body or in the
// X-PowerBI-Error-Info header.
func (e *APIError) hasCode(code string) bool {
	return strings.EqualFold(e.Code, code) || strings.EqualFold(e.Info, code)
}

// tokenExpired reports a token the service takes for expired: a new one
// may be accepted.
func (e *APIError) tokenExpired() bool { return e.hasCode("TokenExpired") }

// tokenRefused reports a 401 or 403 about the token itself (InvalidToken,
// TokenExpired, ...), not about what its identity may do.
func (e *APIError) tokenRefused() bool {
	if e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden {
		return false
	}
	for _, c := range []string{e.Code, e.Info} {
		if strings.Contains(strings.ToLower(c), "token") {
			return true
		}
	}
	return false
}

// Hint names the likely cause of the error and what to do, in one sentence.
func (e *APIError) Hint() string {
	switch {
	case e.tokenExpired() && e.tokenRefused():
		return "The service took the access token for expired, and a newly issued one too: check the clock of this machine (tokens are checked against the time they were issued)"
	case e.tokenRefused():
		return "The service refused the access token itself, not the app's permissions: check that auth gets a token from the tenant of the workspace, for the Power BI scope of source.powerbi.cloud, and that the clock of this machine is right"
	case e.hasCode("GroupNotAccessible"):
		return "The workspace is not accessible to the app: check source.powerbi.workspace, and add the service principal (or a security group it is in) to the workspace with the Viewer role or higher"
	case e.Op == "refresh":
		return refreshHint(e)
	case strings.Contains(strings.ToLower(e.Message), "xmla endpoint"):
		return "executeDaxQueries needs the workspace on a capacity (Premium, Fabric or Embedded) and the tenant setting \"Allow XMLA endpoints and Analyze in Excel with on-premises semantic models\" on: ask a Power BI admin, or use api: executeQueries"
	case e.Code == "DatasetExecuteQueriesError":
		return "The DAX query failed: fix the query (test it in DAX Studio or Power BI Desktop)"
	case e.hasCode("ServicePrincipalIsNotAllowedByTenantAdminSwitch"):
		return "A Power BI admin must enable the tenant setting \"Service principals can use Fabric APIs\" for a security group that contains this app"
	case e.Status == http.StatusUnauthorized:
		return "The service principal is not authorized: check the tenant settings \"Service principals can use Fabric APIs\" and \"Dataset Execute Queries REST API\", and that the app has a role (Viewer or higher) on the workspace"
	case e.Status == http.StatusForbidden && strings.Contains(strings.ToLower(e.Message), "not accessible for application"):
		return "An app identity (service principal, managed identity) has no My workspace and must use the workspace (groups) path: give the workspace id in source.powerbi.workspace instead of me"
	case e.Status == http.StatusForbidden:
		return "Access was refused: the app needs a workspace role (Viewer or higher) and Build permission on the dataset; models with row-level security or SSO cannot be queried by a service principal"
	case e.Status == http.StatusNotFound:
		return "The workspace or dataset was not found: check the ids, and that the app has Read and Build permission on the dataset (a missing permission looks the same as a wrong id)"
	case e.Status == http.StatusTooManyRequests:
		return e.throttled("the service allows 120 queries per minute per principal, across all datasets")
	case e.Status >= 500:
		return "The service failed after every retry; try again later and quote the RequestId to Microsoft support if it persists"
	}
	return ""
}

// throttled says why a 429 was the last answer, and then why.
func (e *APIError) throttled(why string) string {
	if e.MaxWait > 0 && e.RetryAfter > e.MaxWait {
		return fmt.Sprintf("The service asked to wait %s before the next request, %s more than the longest wait between retries (%s), so pbicopy stopped without waiting: %s; run it again later",
			roundWait(e.RetryAfter), roundWait(e.RetryAfter-e.MaxWait), roundWait(e.MaxWait), why)
	}
	if e.Attempts > 0 {
		return fmt.Sprintf("Still throttled after %d attempts: %s", e.Attempts, why)
	}
	return "Still throttled after every retry: " + why
}

// roundWait rounds a wait for a message: whole seconds, or milliseconds
// under a second.
func roundWait(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// retryAfter is the wait a response asks for, read as azcore's retry policy
// reads it: retry-after-ms, x-ms-retry-after-ms, then Retry-After in
// seconds or as an HTTP date. 0 when none.
func retryAfter(resp *http.Response) time.Duration {
	for _, h := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if v := resp.Header.Get(h); v != "" {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
				return time.Duration(ms) * time.Millisecond
			}
		}
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		return max(time.Duration(secs)*time.Second, 0)
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// apiError reads the error answer resp to a request sent under ctx, with
// what the retry policy did when it was throttled.
func (p *Client) apiError(ctx context.Context, resp *http.Response, op string) *APIError {
	e := readAPIError(resp)
	e.Op = op
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter, e.MaxWait = retryAfter(resp), p.retry.MaxRetryDelay
		if st, ok := ctx.Value(attemptKey{}).(*attemptStats); ok {
			e.Attempts = st.attempts
		}
	}
	return e
}

// readAPIError reads an error response (at most 1 MiB of it) and closes it.
func readAPIError(resp *http.Response) *APIError {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("RequestId"), Info: strings.TrimSpace(resp.Header.Get("X-PowerBI-Error-Info"))}
	if len(bytes.TrimSpace(trimBOM(raw))) == 0 {
		return e // a header-only answer: the code is in Info
	}
	var body struct {
		Error *serviceErrorBody `json:"error"`
		// Some endpoints answer {"code": "...", "message": "..."} at the top.
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	raw = trimBOM(raw)
	if err := json.Unmarshal(raw, &body, json.RejectUnknownMembers(false)); err != nil {
		e.Message = strings.TrimSpace(string(raw))
		if len(e.Message) > 300 {
			e.Message = e.Message[:300] + "…"
		}
		return e
	}
	if body.Error != nil {
		e.Code = body.Error.Code
		if e.Code == "" && body.Error.PBIError != nil {
			e.Code = body.Error.PBIError.Code
		}
		e.Message, e.ASCode = body.Error.details()
		if e.Message == "" {
			e.Message = body.Error.Message
		}
	} else {
		e.Code, e.Message = body.Code, body.Message
	}
	return e
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return b[3:]
	}
	return b
}
