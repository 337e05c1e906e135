package fakepbi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The dataset refresh API, as the service answers it:
//
//	POST   /v1.0/myorg/groups/{ws}/datasets/{ds}/refreshes         start a refresh
//	GET    /v1.0/myorg/groups/{ws}/datasets/{ds}/refreshes?$top=n  the history, newest first
//	GET    /v1.0/myorg/groups/{ws}/datasets/{ds}/refreshes/{id}    one refresh
//	DELETE /v1.0/myorg/groups/{ws}/datasets/{ds}/refreshes/{id}    cancel an enhanced refresh
//
// A POST whose body holds only notifyOption (or nothing) starts a standard
// refresh: 202 without a Location. Any other field makes it an enhanced
// refresh: 202 with Location .../refreshes/{id}. While a refresh runs,
// another POST answers 400 InvalidRequest "Another refresh request is
// already executing". GET of one refresh answers 202 while it runs and 200
// once it has ended; the history marks a running refresh with status
// Unknown, and a failed one with serviceExceptionJson. Each read of a
// refresh (by id, or as an entry of a history answer) brings it one step
// closer to its end, as RefreshBehavior.Polls says.

// Refresh end states (RefreshBehavior.Outcome).
const (
	RefreshCompleted = "Completed"
	RefreshFailed    = "Failed"
	RefreshCancelled = "Cancelled"
	RefreshTimedOut  = "TimedOut"
	RefreshDisabled  = "Disabled"
)

// RefreshBehavior says how a refresh plays out.
type RefreshBehavior struct {
	// Polls is how many reads of the refresh answer "in progress" before it
	// ends; a negative value means it never ends.
	Polls int
	// Outcome is how it ends: RefreshCompleted (when empty), RefreshFailed,
	// RefreshCancelled, RefreshTimedOut or RefreshDisabled.
	Outcome string
	// ErrorCode and ErrorMessage are the serviceExceptionJson of a refresh
	// that does not complete (defaults are filled in for RefreshFailed).
	ErrorCode, ErrorMessage string
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up) with the 202 answers of a running refresh.
	RetryAfter time.Duration
}

// RefreshRecord is a refresh the fake knows of.
type RefreshRecord struct {
	ID       string
	Type     string // ViaApi, ViaEnhancedApi or Scheduled
	Enhanced bool
	Body     string // the POST body ("" for a scheduled refresh)
	Status   string // Unknown while running, then the outcome
}

type refreshState struct {
	next  *RefreshBehavior
	list  []*fakeRefresh // oldest first
	posts int
	reads int
}

type fakeRefresh struct {
	RefreshRecord
	num        int64
	b          RefreshBehavior
	left       int // reads left before it ends
	start, end time.Time
	extended   bool
}

// NextRefresh sets how the next refresh started through the API plays out
// (by default it completes at the first read).
func (s *Server) NextRefresh(b RefreshBehavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh.next = &b
}

// StartScheduledRefresh starts a refresh as the dataset's schedule would,
// so that a refresh requested while it runs is refused. It returns its id.
func (s *Server) StartScheduledRefresh(b RefreshBehavior) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addRefresh(b, "Scheduled", false, "").ID
}

// Refreshes returns the refreshes the fake knows of, oldest first.
func (s *Server) Refreshes() []RefreshRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RefreshRecord, len(s.refresh.list))
	for i, r := range s.refresh.list {
		out[i] = r.RefreshRecord
	}
	return out
}

// RefreshRequests returns the number of refresh requests (POST) received.
func (s *Server) RefreshRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh.posts
}

// addRefresh records a new running refresh; s.mu is held.
func (s *Server) addRefresh(b RefreshBehavior, typ string, enhanced bool, body string) *fakeRefresh {
	if b.Outcome == "" {
		b.Outcome = RefreshCompleted
	}
	if b.Outcome == RefreshFailed && b.ErrorCode == "" && b.ErrorMessage == "" {
		b.ErrorCode = "ModelRefreshFailed_CredentialsNotSpecified"
		b.ErrorMessage = "The credentials provided for the data source are invalid."
	}
	r := &fakeRefresh{
		RefreshRecord: RefreshRecord{ID: newUUID(), Type: typ, Enhanced: enhanced, Body: body, Status: "Unknown"},
		num:           int64(len(s.refresh.list) + 1),
		b:             b,
		left:          b.Polls,
		start:         time.Now().UTC(),
		extended:      enhanced,
	}
	s.refresh.list = append(s.refresh.list, r)
	return r
}

// read advances r by one read; s.mu is held.
func (r *fakeRefresh) read() {
	if r.Status != "Unknown" {
		return
	}
	if r.left != 0 {
		if r.left > 0 {
			r.left--
		}
		return
	}
	r.Status = r.b.Outcome
	r.end = time.Now().UTC()
}

func (r *fakeRefresh) running() bool { return r.Status == "Unknown" }

// serviceException is the serviceExceptionJson of r, "" unless it failed.
func (r *fakeRefresh) serviceException() string {
	if r.running() || r.Status == RefreshCompleted || r.b.ErrorCode == "" && r.b.ErrorMessage == "" {
		return ""
	}
	b, _ := json.Marshal(map[string]string{"errorCode": r.b.ErrorCode, "errorDescription": r.b.ErrorMessage})
	return string(b)
}

func (r *fakeRefresh) extendedStatus() string {
	if r.running() {
		return "InProgress"
	}
	return r.Status
}

// historyEntry is r as GET .../refreshes lists it. The service writes
// startTime with a zone and endTime without one; clients must read both.
func (r *fakeRefresh) historyEntry() map[string]any {
	e := map[string]any{
		"requestId":   r.ID,
		"id":          r.num,
		"refreshType": r.Type,
		"startTime":   r.start.Format("2006-01-02T15:04:05.000Z"),
		"status":      r.Status,
	}
	if !r.running() {
		e["endTime"] = r.end.Format("2006-01-02T15:04:05.000")
	}
	if r.extended {
		e["extendedStatus"] = r.extendedStatus()
	}
	if se := r.serviceException(); se != "" {
		e["serviceExceptionJson"] = se
	}
	attempt := map[string]any{"attemptId": 1, "startTime": e["startTime"], "type": "Data"}
	if end, ok := e["endTime"]; ok {
		attempt["endTime"] = end
	}
	if se := r.serviceException(); se != "" {
		attempt["serviceExceptionJson"] = se
	}
	e["refreshAttempts"] = []any{attempt}
	return e
}

// details is r as GET .../refreshes/{id} describes it.
func (r *fakeRefresh) details() map[string]any {
	e := map[string]any{
		"startTime":          r.start.Format("2006-01-02T15:04:05.000Z"),
		"type":               "full",
		"commitMode":         "transactional",
		"status":             r.Status,
		"extendedStatus":     r.extendedStatus(),
		"currentRefreshType": "full",
		"numberOfAttempts":   1,
		"objects":            []any{},
	}
	if !r.running() {
		e["endTime"] = r.end.Format("2006-01-02T15:04:05.000Z")
	}
	if !r.running() && r.Status != RefreshCompleted {
		e["messages"] = []any{map[string]any{"code": r.b.ErrorCode, "message": r.b.ErrorMessage, "type": "Error"}}
	}
	return e
}

// refreshAuth checks the token and the ids, answering the error if one is
// wrong.
func (s *Server) refreshAuth(w http.ResponseWriter, r *http.Request) bool {
	if s.refuseToken(w, r.Header.Get("Authorization")) {
		return false
	}
	ws, ok := s.myWorkspace(w, r)
	return ok && !s.refuseEntity(w, ws, r.PathValue("ds"))
}

// refreshes serves POST (start) and GET (history) on .../refreshes.
func (s *Server) refreshes(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("RequestId", newUUID())
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		s.writeError(w, http.StatusMethodNotAllowed, codeMessageBody("MethodNotAllowed", "The requested resource does not support http method '"+r.Method+"'."))
		return
	}
	if r.Method == http.MethodPost {
		s.mu.Lock()
		s.refresh.posts++
		s.mu.Unlock()
	}
	if !s.refreshAuth(w, r) {
		return
	}
	if r.Method == http.MethodGet {
		s.refreshHistory(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	fields := map[string]json.RawMessage{}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &fields); err != nil {
			s.writeError(w, http.StatusBadRequest, badRequestBody("The request body is not valid JSON: "+err.Error(), "requestParameters"))
			return
		}
	}
	enhanced := false
	for k := range fields {
		if k != "notifyOption" {
			enhanced = true
		}
	}
	if n, ok := fields["notifyOption"]; ok && !enhanced {
		var v string
		if json.Unmarshal(n, &v) != nil || v != "NoNotification" && v != "MailOnFailure" && v != "MailOnCompletion" {
			s.writeError(w, http.StatusBadRequest, badRequestBody("The notifyOption value is not valid.", "requestParameters.notifyOption"))
			return
		}
		if v != "NoNotification" {
			// Service principals cannot be mailed.
			s.writeError(w, http.StatusBadRequest, codeMessageBody("InvalidRequest", "Invalid NotifyOption value '"+v+"' for app only owner requests"))
			return
		}
	}
	s.mu.Lock()
	for _, f := range s.refresh.list {
		if f.running() {
			s.mu.Unlock()
			s.writeError(w, http.StatusBadRequest, codeMessageBody("InvalidRequest", "Invalid dataset refresh request. Another refresh request is already executing"))
			return
		}
	}
	b := RefreshBehavior{}
	if s.refresh.next != nil {
		b = *s.refresh.next
		s.refresh.next = nil
	}
	typ := "ViaApi"
	if enhanced {
		typ = "ViaEnhancedApi"
	}
	f := s.addRefresh(b, typ, enhanced, string(body))
	s.mu.Unlock()
	if enhanced {
		w.Header().Set("Location", "https://"+r.Host+r.URL.Path+"/"+f.ID)
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) refreshHistory(w http.ResponseWriter, r *http.Request) {
	top := -1
	if v := r.URL.Query().Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.writeError(w, http.StatusBadRequest, badRequestBody(fmt.Sprintf("The value '%s' is not valid for $top.", v), "$top"))
			return
		}
		top = n
	}
	s.mu.Lock()
	s.refresh.reads++
	var entries []any
	for i := len(s.refresh.list) - 1; i >= 0 && (top < 0 || len(entries) < top); i-- {
		f := s.refresh.list[i]
		f.read()
		entries = append(entries, f.historyEntry())
	}
	s.mu.Unlock()
	if entries == nil {
		entries = []any{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://" + r.Host + "/v1.0/myorg/groups/" + r.PathValue("ws") + "/$metadata#refreshes",
		"value":          entries,
	})
}

// refreshByID serves GET (details) and DELETE (cancel) on .../refreshes/{id}.
func (s *Server) refreshByID(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("RequestId", newUUID())
	if r.Method != http.MethodGet && r.Method != http.MethodDelete {
		w.Header().Set("Allow", "GET, DELETE")
		s.writeError(w, http.StatusMethodNotAllowed, codeMessageBody("MethodNotAllowed", "The requested resource does not support http method '"+r.Method+"'."))
		return
	}
	if !s.refreshAuth(w, r) {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	s.refresh.reads++
	var f *fakeRefresh
	for _, c := range s.refresh.list {
		if strings.EqualFold(c.ID, id) {
			f = c
		}
	}
	if f == nil || !f.Enhanced && r.Method == http.MethodDelete {
		s.mu.Unlock()
		s.writeError(w, http.StatusNotFound, pbiErrorBody("PowerBIEntityNotFound"))
		return
	}
	if r.Method == http.MethodDelete {
		if f.running() {
			f.Status, f.end = RefreshCancelled, time.Now().UTC()
			f.b.ErrorCode, f.b.ErrorMessage = "", ""
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	f.read()
	details, running, retryAfter := f.details(), f.running(), f.b.RetryAfter
	s.mu.Unlock()
	status := http.StatusOK
	if running {
		status = http.StatusAccepted
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
		}
	}
	s.writeJSON(w, status, details)
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	s.writeError(w, status, b)
}
