package powerbi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// The phases of one request a stall names.
const (
	phaseHeaders = "waiting for the response headers"
	phaseBody    = "reading the body"
)

// StallError is a request the service stopped answering: nothing arrived
// for the idle timeout, or the whole request outlasted the request timeout
// (source.powerbi.timeouts). Like a body that breaks off, it is worth
// reading again: executeQueries only reads.
type StallError struct {
	Phase   string        // phaseHeaders or phaseBody
	Timeout string        // "idle" or "request": the timeout that ran out
	Waited  time.Duration // that timeout
	// Rows is the number of complete rows received before it (body phase).
	Rows      int64
	RequestID string
}

func (e *StallError) Error() string {
	var s string
	if e.Timeout == "idle" {
		s = fmt.Sprintf("the service sent nothing for %s seconds while %s (source.powerbi.timeouts.idle)", seconds(e.Waited), e.Phase)
	} else {
		s = fmt.Sprintf("the request was still %s after %s seconds (source.powerbi.timeouts.request)", e.Phase, seconds(e.Waited))
	}
	if e.Phase == phaseBody {
		s += fmt.Sprintf(", after %d rows", e.Rows)
	}
	return s + requestIDNote(e.RequestID)
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// Retryable reports that reading the source again may succeed.
func (e *StallError) Retryable() bool { return true }

// NonRetriable keeps azcore's retry policy from repeating a stalled attempt
// itself (up to 8 times, each as long as the timeout): the source is read
// again instead, as after a body that broke off, which a paged source
// continues after its last complete row.
func (e *StallError) NonRetriable() {}

// timeoutPolicy bounds each attempt, as the last per-attempt policy of the
// pipeline: idle bounds every wait for the next bytes of the response (its
// headers, then each read of its body), request the whole attempt, until
// its body is closed. When one runs out, the attempt's context is cancelled
// with a *StallError as its cause, and the failing call returns that error.
//
// The idle timer runs only while a read of the body waits, never while the
// caller is busy between reads (a slow sink holds the decoder back).
type timeoutPolicy struct {
	idle, request time.Duration
}

func (t timeoutPolicy) Do(req *policy.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Raw().Context())
	w := &watch{cancel: cancel, idle: t.idle}
	w.phase.Store(phaseHeaders)
	w.idleTimer = time.AfterFunc(t.idle, func() { w.stall("idle", t.idle) })
	requestTimer := time.AfterFunc(t.request, func() { w.stall("request", t.request) })
	resp, err := req.Clone(ctx).Next()
	w.idleTimer.Stop()
	if err != nil {
		requestTimer.Stop()
		defer cancel(nil)
		if se := stallOf(ctx); se != nil {
			return nil, se
		}
		return nil, err
	}
	w.phase.Store(phaseBody)
	resp.Body = &watchedBody{body: resp.Body, ctx: ctx, w: w, done: func() {
		requestTimer.Stop()
		w.idleTimer.Stop()
		cancel(nil)
	}}
	return resp, nil
}

// watch is the state the timers of one attempt share.
type watch struct {
	cancel    context.CancelCauseFunc
	idle      time.Duration
	idleTimer *time.Timer
	phase     atomic.Value // string: phaseHeaders, then phaseBody
}

func (w *watch) stall(timeout string, waited time.Duration) {
	w.cancel(&StallError{Phase: w.phase.Load().(string), Timeout: timeout, Waited: waited})
}

// stallOf returns the *StallError that cancelled ctx, if one did.
func stallOf(ctx context.Context) *StallError {
	var se *StallError
	if errors.As(context.Cause(ctx), &se) {
		return se
	}
	return nil
}

// watchedBody times the reads of a response body against the idle timeout
// and ends the attempt's timers when closed.
type watchedBody struct {
	body   io.ReadCloser
	ctx    context.Context
	w      *watch
	done   func()
	closed atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.w.idleTimer.Reset(b.w.idle)
	n, err := b.body.Read(p)
	b.w.idleTimer.Stop()
	if err != nil && err != io.EOF {
		if se := stallOf(b.ctx); se != nil {
			return n, se
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.body.Close()
	if b.closed.CompareAndSwap(false, true) {
		b.done()
	}
	return err
}
