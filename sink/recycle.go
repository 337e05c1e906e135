package sink

import (
	"math/bits"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// recycler is the memory.Allocator of one Parquet encoder. pqarrow takes
// and drops large scratch buffers for every column of every batch (the
// decimal staging area alone is 2 MiB per column for a batch of 16,384
// rows) and its encoders grow buffers by doubling; from a plain allocator
// each of those is fresh memory that the runtime must zero and fault in,
// which cost a third of the encoder's time in profiles. The recycler keeps
// buffers of at least minRecycled bytes that were freed, rounded up to a
// power of two, and hands them out again, zeroed, as a fresh allocation
// would be. It holds at most maxRecycled bytes; Close gives back what it
// holds. Smaller requests go straight to the underlying allocator.
//
// It is safe for concurrent use.
type recycler struct {
	mem  memory.Allocator
	mu   sync.Mutex
	free [bits.UintSize][][]byte // by log2 of the capacity
	held int
	shut bool // closed: frees go straight to mem
}

const (
	minRecycled = 64 << 10
	maxRecycled = 64 << 20
)

var _ memory.Allocator = (*recycler)(nil)

func newRecycler(mem memory.Allocator) *recycler { return &recycler{mem: mem} }

// class is the size class of a request of n bytes: the log2 of the
// capacity given for it, or -1 when it is not recycled.
func class(n int) int {
	if n < minRecycled {
		return -1
	}
	return bits.Len(uint(n - 1))
}

func (r *recycler) Allocate(size int) []byte {
	c := class(size)
	if c < 0 {
		return r.mem.Allocate(size)
	}
	r.mu.Lock()
	if l := r.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		r.free[c] = l[:len(l)-1]
		r.held -= cap(b)
		r.mu.Unlock()
		clear(b[:cap(b)])
		return b[:size]
	}
	r.mu.Unlock()
	return r.mem.Allocate(1 << c)[:size]
}

func (r *recycler) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		return b[:size]
	}
	nb := r.Allocate(size)
	copy(nb, b)
	r.Free(b)
	return nb
}

func (r *recycler) Free(b []byte) {
	n := cap(b)
	c := class(n)
	if c < 0 || n != 1<<c {
		r.mem.Free(b)
		return
	}
	b = b[:n] // as allocated: a checked allocator counts len
	r.mu.Lock()
	if r.shut || r.held+n > maxRecycled {
		r.mu.Unlock()
		r.mem.Free(b)
		return
	}
	r.free[c] = append(r.free[c], b)
	r.held += n
	r.mu.Unlock()
}

// Close gives every buffer held back to the underlying allocator; buffers
// freed later go straight back to it.
func (r *recycler) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shut = true
	for c, l := range r.free {
		for _, b := range l {
			r.mem.Free(b)
		}
		r.free[c] = nil
	}
	r.held = 0
}
