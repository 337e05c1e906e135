package powerbi

import (
	"context"
	"fmt"
	"io"
	"os"
)

// ReadFile streams a saved executeQueries response (for example one saved
// from Postman) into recv, exactly as a live response would be decoded,
// with the same checks: a saved response that reached the service's 15 MB
// limit may have been cut by it and is refused (*LimitError).
func ReadFile(ctx context.Context, path string, recv rowReceiver) (DecodeStats, error) {
	return readFile(ctx, path, recv, limitsFor(0))
}

func readFile(ctx context.Context, path string, recv rowReceiver, lim limits) (DecodeStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return DecodeStats{}, fmt.Errorf("source file: %w", err)
	}
	defer f.Close()
	st, err := decode(ctxReader{ctx: ctx, r: f}, recv, lim)
	if err != nil {
		return st, fmt.Errorf("source file %s: %w", path, err)
	}
	return st, nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
