package powerbi

import (
	"context"
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
}

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
	if at := time.Now().Add(d); at.After(l.next) {
		l.next = at
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
