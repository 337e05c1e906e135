package powerbi

import (
	"context"
	"io"

	"github.com/pbicopy/pbicopy/source"
)

// progressBody reports the bytes read through body to ctx's progress
// function (source.WithProgress), if any.
func progressBody(ctx context.Context, body io.Reader) io.Reader {
	return &progressReader{r: body, fn: source.ProgressOf(ctx)}
}

type progressReader struct {
	r  io.Reader
	fn source.Progress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n), 0)
	}
	return n, err
}
