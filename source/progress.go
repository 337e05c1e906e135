package source

import (
	"context"
	"io"
)

type progressKey struct{}

// WithByteProgress returns a context under which ExecuteQuery tells fn how
// many response bytes it has read, as they arrive (deltas, from the
// goroutine that decodes). fn must be cheap and safe for concurrent use.
func WithByteProgress(ctx context.Context, fn func(n int64)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// progressBody reports the bytes read through body to ctx's byte progress
// function, if any.
func progressBody(ctx context.Context, body io.Reader) io.Reader {
	fn, _ := ctx.Value(progressKey{}).(func(int64))
	if fn == nil {
		return body
	}
	return &progressReader{r: body, fn: fn}
}

type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}
