package kafkafetch

import "sync"

// Pool recycles the buffers fetches are read and decompressed into. Without one each
// response and each decompressed batch is a fresh allocation: reading into memory the
// process has not touched yet cost ~0.75 µs per KiB more than reading into reused memory on
// the 2-core box (page faults and zeroing; 400 MB over loopback: 0.41-0.43 s of CPU fresh,
// 0.11-0.16 s reused), about a sixth of the sink's CPU per 1 KB session record.
//
// With Config.Pool set, Result.Bufs lists the buffers a fetch's records alias. They are the
// caller's: once no record of that fetch (key, value or header value) is referenced any
// more, the caller hands them back with Put; until then they are never reused. A caller that
// cannot tell when that is must not set a Pool. Safe for concurrent use.
type Pool struct {
	mu       sync.Mutex
	free     [][]byte
	bytes    int // capacity held in free
	maxBytes int
}

// NewPool returns a pool keeping at most maxBytes of free buffers (more are dropped for the
// garbage collector). Size it to the fetch bytes in flight at once.
func NewPool(maxBytes int) *Pool { return &Pool{maxBytes: maxBytes} }

// get returns a buffer of length n: a free one large enough (the smallest of the last few
// freed that fits), or a new one.
func (p *Pool) get(n int) []byte {
	p.mu.Lock()
	best := -1
	for i := len(p.free) - 1; i >= 0 && i >= len(p.free)-16; i-- {
		if c := cap(p.free[i]); c >= n && (best < 0 || c < cap(p.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := p.free[best]
		last := len(p.free) - 1
		p.free[best] = p.free[last]
		p.free[last] = nil
		p.free = p.free[:last]
		p.bytes -= cap(b)
		p.mu.Unlock()
		return b[:n]
	}
	p.mu.Unlock()
	// Rounded up so that a buffer fits the next response of about the same size.
	return make([]byte, n, (n+64<<10-1)&^(64<<10-1))
}

// Put hands back buffers from Result.Bufs whose records are no longer referenced, and
// returns bufs emptied (its references cleared) for the caller to reuse. A nil Pool keeps
// nothing.
func (p *Pool) Put(bufs [][]byte) [][]byte {
	if p != nil && len(bufs) > 0 {
		p.mu.Lock()
		for _, b := range bufs {
			if cap(b) == 0 || p.bytes+cap(b) > p.maxBytes {
				continue
			}
			p.free = append(p.free, b[:0])
			p.bytes += cap(b)
		}
		p.mu.Unlock()
	}
	clear(bufs)
	return bufs[:0]
}
