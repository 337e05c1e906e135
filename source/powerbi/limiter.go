package powerbi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// DefaultRate is the service's limit: 120 executeQueries requests a minute
// per principal, across all datasets.
const DefaultRate = 120

// Limiter paces requests to at most a rate per minute, evenly spaced, for
// every goroutine that shares it: pages and partitions of a backfill draw
// from one limiter, so together they never exceed the service's limit. A
// 429 that still arrives pushes every later request past its Retry-After.
type Limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
	waited   time.Duration
	// pausedUntil is the end of the last pause a 429 asked for; a request
	// that would wait longer than MaxThrottleWait for it is not sent.
	pausedUntil time.Time
}

// MaxThrottleWait is the longest wait a 429's Retry-After may ask for: the
// retry policy stops instead of waiting longer, and so does the limiter.
const MaxThrottleWait = 2 * time.Minute

// PausedError is a request not sent because the service asked, with a
// 429's Retry-After, that none be sent for longer than MaxThrottleWait: a
// later partition or page would only wait past any sensible schedule, or
// be throttled again.
type PausedError struct {
	Left, Max time.Duration
}

func (e *PausedError) Error() string {
	return fmt.Sprintf("executeQueries: not sent: the service asked (HTTP 429, Retry-After) that no request be sent for another %s, more than the longest wait between retries (%s); run it again later", roundWait(e.Left), roundWait(e.Max))
}

// NonRetriable tells azcore's retry policy not to try again.
func (e *PausedError) NonRetriable() {}

// NewLimiter returns a limiter for perMinute requests a minute; perMinute
// <= 0 means no limit.
func NewLimiter(perMinute float64) *Limiter {
	l := &Limiter{}
	if perMinute > 0 {
		l.interval = time.Duration(float64(time.Minute) / perMinute)
	}
	return l
}

// Interval is the spacing between requests.
func (l *Limiter) Interval() time.Duration { return l.interval }

// Wait blocks until the caller's turn, or ctx is done.
func (l *Limiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	now := time.Now()
	if left := l.pausedUntil.Sub(now); left > MaxThrottleWait {
		l.mu.Unlock()
		return &PausedError{Left: left, Max: MaxThrottleWait}
	}
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.interval)
	d := at.Sub(now)
	l.waited += d
	l.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Penalize makes no request start before d from now.
func (l *Limiter) Penalize(d time.Duration) {
	l.mu.Lock()
	at := time.Now().Add(d)
	if at.After(l.next) {
		l.next = at
	}
	if at.After(l.pausedUntil) {
		l.pausedUntil = at
	}
	l.mu.Unlock()
}

// Waited is the total time requests waited for their turn.
func (l *Limiter) Waited() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waited
}

// queryKey marks the context of a query request: only queries draw from the
// limiter (the service's limit of 120 a minute is on executeQueries; the
// refresh calls have limits of their own).
type queryKey struct{}

// limiterPolicy waits for the limiter before every attempt, retries
// included, and slows it down on a 429.
type limiterPolicy struct{ l *Limiter }

func (p limiterPolicy) Do(req *policy.Request) (*http.Response, error) {
	if req.Raw().Context().Value(queryKey{}) == nil {
		return req.Next() // not a query: the limit is on queries
	}
	if err := p.l.Wait(req.Raw().Context()); err != nil {
		return nil, err
	}
	resp, err := req.Next()
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		d := time.Second
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			d = time.Duration(s) * time.Second
		}
		p.l.Penalize(d)
	}
	return resp, err
}
