package sink

import (
	"bytes"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestRecycler checks that recycled buffers come back zeroed and sized as
// asked, that small requests are not kept, that no more than maxRecycled
// bytes are held, and that Close gives everything back.
func TestRecycler(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	r := newRecycler(mem)

	b := r.Allocate(100 << 10)
	if len(b) != 100<<10 || cap(b) != 128<<10 {
		t.Fatalf("len %d cap %d, want 100 KiB in 128 KiB", len(b), cap(b))
	}
	for i := range b[:cap(b)] {
		b[:cap(b)][i] = 0xff
	}
	r.Free(b)
	c := r.Allocate(70 << 10) // the same class: the same memory, zeroed
	if &c[0] != &b[0] {
		t.Error("a freed buffer of the class was not reused")
	}
	if i := bytes.IndexFunc(c[:cap(c)], func(r rune) bool { return r != 0 }); i >= 0 {
		t.Errorf("reused buffer not zeroed at %d", i)
	}
	// Growing within the capacity keeps the buffer; past it moves it.
	if g := r.Reallocate(120<<10, c); &g[0] != &c[0] || len(g) != 120<<10 {
		t.Error("reallocation within the capacity moved the buffer")
	}
	g := r.Reallocate(300<<10, c)
	if len(g) != 300<<10 || cap(g) != 512<<10 {
		t.Errorf("reallocated: len %d cap %d", len(g), cap(g))
	}
	r.Free(g)

	small := r.Allocate(100)
	r.Free(small)
	if r.held != 128<<10+512<<10 {
		t.Errorf("holds %d bytes, want the two large buffers only", r.held)
	}

	// Concurrent use, and the cap on what is held.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var bufs [][]byte
			for range 40 {
				bufs = append(bufs, r.Allocate(1<<20+1))
			}
			for _, b := range bufs {
				r.Free(b)
			}
		})
	}
	wg.Wait()
	if r.held > maxRecycled {
		t.Errorf("holds %d bytes, more than %d", r.held, maxRecycled)
	}
	r.Close()
	r.Free(r.Allocate(1 << 20)) // after Close: straight back
	mem.AssertSize(t, 0)
}
