package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pbicopy/pbicopy/source"
)

// RefreshTimeout bounds the wait for a refresh a job asks for
// (source.powerbi.refreshBefore).
const RefreshTimeout = 2 * time.Hour

// RefreshTimeoutError is a refresh that was still running when the wait for
// it ended. The refresh goes on in the service.
type RefreshTimeoutError struct {
	State   source.RefreshState
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
// state read; the error is a *source.RefreshFailedError when the refresh
// did not complete, a *RefreshTimeoutError when it was still running at the
// timeout, and a *source.RefreshInProgressError when another refresh was
// running already. Every state read goes to the Progress function.
func (r *Runner) RefreshAndWait(ctx context.Context, pb *PowerBISpec, opts source.RefreshOptions, wait bool, timeout time.Duration, job string) (*source.Refresh, source.RefreshState, error) {
	client, err := r.PowerBIClient(ctx, pb)
	if err != nil {
		return nil, source.RefreshState{}, err
	}
	log := r.logger()
	if job != "" {
		log = log.With("job", job)
	}
	ref, err := client.StartRefresh(ctx, pb.Workspace, pb.Dataset, opts)
	if err != nil {
		return nil, source.RefreshState{}, err
	}
	log.Info("dataset refresh started", "refreshId", ref.ID, "enhanced", ref.Enhanced, "requestId", ref.RequestID)
	if !wait {
		return ref, source.RefreshState{ID: ref.ID, Outcome: source.RefreshRunning}, nil
	}
	start := time.Now()
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	st, err := client.WaitRefresh(wctx, pb.Workspace, pb.Dataset, ref.ID, source.WaitOptions{
		Interval: r.RetryDelay,
		OnPoll: func(st source.RefreshState) {
			status := st.ExtendedStatus
			if status == "" {
				status = st.Status
			}
			r.progress(ProgressEvent{Kind: ProgressRefresh, Job: job, Status: status, Elapsed: time.Since(start)})
		},
	})
	if st.ID == "" {
		st.ID = ref.ID
	}
	switch {
	case err == nil:
		log.Info("dataset refresh completed", "refreshId", ref.ID, "duration", time.Since(start).Round(time.Second).String())
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		err = &RefreshTimeoutError{State: st, Timeout: timeout}
	}
	return ref, st, err
}

// refreshBefore refreshes the job's dataset and waits for the refresh to
// complete, when the job asks for it (source.powerbi.refreshBefore). A
// refresh that fails or does not end within RefreshTimeout fails the job
// before any data moves.
func (r *Runner) refreshBefore(ctx context.Context, job *Job, log *slog.Logger) error {
	pb := job.Source.PowerBI
	if pb == nil || !pb.RefreshBefore {
		return nil
	}
	log.Info("refreshing the dataset before extracting (source.powerbi.refreshBefore)")
	_, _, err := r.RefreshAndWait(ctx, pb, source.RefreshOptions{}, true, RefreshTimeout, job.Name)
	if err != nil {
		return fmt.Errorf("refreshBefore: %w; nothing was extracted", err)
	}
	return nil
}
