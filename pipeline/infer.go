package pipeline

import (
	"context"
	"sync"

	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/source"
)

// sharedInference lets the partitions of a job without a mapping share one
// set of inferred columns: the first partition to run infers them from its
// first response, the others wait until it has (or has ended without) and
// use them, so that every output of the job has the same schema, and a
// value of a later partition that does not fit fails with the mapping line
// to declare instead of giving that partition other types.
type sharedInference struct {
	mu      sync.Mutex
	cols    []mapping.Column
	from    string
	leading chan struct{} // closed when the inferring partition has decided or ended; nil: none infers
}

// claim fills in req for partition key: the columns inferred by an earlier
// partition, or, when none has yet, makes this partition the one that
// infers. release must be called when the partition has ended.
func (s *sharedInference) claim(ctx context.Context, key string, req *source.Request) (release func(), err error) {
	for {
		s.mu.Lock()
		if s.cols != nil {
			req.Columns, req.InferredFrom = s.cols, s.from
			s.mu.Unlock()
			return func() {}, nil
		}
		if s.leading == nil {
			ch := make(chan struct{})
			s.leading = ch
			s.mu.Unlock()
			var once sync.Once
			release := func() {
				once.Do(func() {
					s.mu.Lock()
					s.leading = nil
					s.mu.Unlock()
					close(ch)
				})
			}
			from := "the first response of partition " + key
			req.OnInferred = func(cols []mapping.Column) {
				s.mu.Lock()
				if s.cols == nil {
					s.cols, s.from = cols, from
				}
				s.mu.Unlock()
				release()
			}
			return release, nil
		}
		ch := s.leading
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
