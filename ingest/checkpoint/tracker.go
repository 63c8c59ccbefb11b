package checkpoint

import "sync"

// Tracker turns acknowledgements that may arrive out of order into the highest offset below
// which every line is acknowledged. Add is called in read order with each line's end offset;
// Ack may come in any order. It is safe for concurrent use.
type Tracker struct {
	mu    sync.Mutex
	base  uint64 // sequence number of pending[0]
	pend  []entry
	head  int // pending entries before head are acknowledged and contiguous (compacted lazily)
	acked int64
}

type entry struct {
	end   int64
	acked bool
}

// NewTracker starts with every byte before start acknowledged.
func NewTracker(start int64) *Tracker { return &Tracker{acked: start} }

// Add registers the next line, ending at end, and returns its sequence number for Ack.
func (t *Tracker) Add(end int64) uint64 {
	t.mu.Lock()
	seq := t.base + uint64(len(t.pend))
	t.pend = append(t.pend, entry{end: end})
	t.mu.Unlock()
	return seq
}

// Ack marks seq acknowledged and returns the contiguous acknowledged offset.
func (t *Tracker) Ack(seq uint64) int64 { return t.AckRange(seq, seq) }

// AckRange marks first..last (inclusive) acknowledged, under one lock, and returns the
// contiguous acknowledged offset. Sequence numbers already folded in or unknown are ignored.
func (t *Tracker) AckRange(first, last uint64) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last < first {
		return t.acked
	}
	if first < t.base {
		first = t.base
	}
	for seq := first; seq <= last; seq++ {
		i := int(seq - t.base)
		if i >= len(t.pend) {
			break
		}
		t.pend[i].acked = true
	}
	for t.head < len(t.pend) && t.pend[t.head].acked {
		t.acked = t.pend[t.head].end
		t.head++
	}
	// Compact once the acknowledged prefix dominates, keeping Add amortised O(1).
	if t.head > 1024 && t.head*2 > len(t.pend) {
		n := copy(t.pend, t.pend[t.head:])
		t.pend = t.pend[:n]
		t.base += uint64(t.head)
		t.head = 0
	}
	return t.acked
}

// Acked returns the contiguous acknowledged offset.
func (t *Tracker) Acked() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.acked
}

// Pending is the number of lines added but not yet folded into Acked.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pend) - t.head
}
