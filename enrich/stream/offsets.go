package stream

import (
	"fmt"
	"sort"
)

// Tracker decides, for one partition, the offset the enricher may commit. A consumed record
// is "done" once every output derived from it (session records, events, dead letters) has been
// acknowledged by Kafka; a record that produced nothing is done at once. The commit point is
//
//	min(first offset not yet done, first offset of any session still open)
//
// because a record whose session is still open would have to be replayed after a crash to
// rebuild that session. Kafka's committed offset is the next offset to read, so every value
// here is "the offset replay starts from".
//
// Tracker is not safe for concurrent use: the partition's goroutine owns it and acks are
// delivered to that goroutine.
type Tracker struct {
	// pending holds consumed offsets in increasing order with their outstanding outputs.
	// Offsets may have gaps (compaction, transaction markers).
	pending []pend
	head    int   // pending[head:] is live; the prefix is reclaimed lazily
	next    int64 // one past the highest consumed offset (-1 before the first)
	revoked bool
}

type pend struct {
	offset      int64
	outstanding int
}

// NewTracker returns a tracker for a partition whose consumption starts at start.
func NewTracker(start int64) *Tracker { return &Tracker{next: start} }

// Consumed registers offset with its number of outputs still to be acknowledged. Offsets must
// increase.
func (t *Tracker) Consumed(offset int64, outputs int) error {
	if offset < t.next {
		return fmt.Errorf("offset %d consumed after %d: offsets must increase", offset, t.next-1)
	}
	t.next = offset + 1
	if outputs > 0 {
		t.pending = append(t.pending, pend{offset: offset, outstanding: outputs})
	}
	return nil
}

// AddOutputs registers n more outputs for an already consumed offset (a session closed later
// by a watermark is attributed to the record whose processing closed it).
func (t *Tracker) AddOutputs(offset int64, n int) error {
	if n <= 0 {
		return nil
	}
	i := t.find(offset)
	if i < 0 {
		if offset >= t.next {
			return fmt.Errorf("outputs added to offset %d, which was not consumed yet", offset)
		}
		// The record was done; it is pending again. Insert keeping order.
		j := t.head + sort.Search(len(t.pending)-t.head, func(k int) bool { return t.pending[t.head+k].offset > offset })
		t.pending = append(t.pending, pend{})
		copy(t.pending[j+1:], t.pending[j:])
		t.pending[j] = pend{offset: offset, outstanding: n}
		return nil
	}
	t.pending[i].outstanding += n
	return nil
}

// Acked records that one output derived from offset was acknowledged.
func (t *Tracker) Acked(offset int64) error {
	i := t.find(offset)
	if i < 0 || t.pending[i].outstanding == 0 {
		return fmt.Errorf("ack for offset %d that has no outstanding output", offset)
	}
	t.pending[i].outstanding--
	for t.head < len(t.pending) && t.pending[t.head].outstanding == 0 {
		t.head++
	}
	if t.head > 1024 && t.head*2 > len(t.pending) {
		n := copy(t.pending, t.pending[t.head:])
		t.pending = t.pending[:n]
		t.head = 0
	}
	return nil
}

func (t *Tracker) find(offset int64) int {
	live := t.pending[t.head:]
	k := sort.Search(len(live), func(i int) bool { return live[i].offset >= offset })
	if k < len(live) && live[k].offset == offset {
		return t.head + k
	}
	return -1
}

// DoneUpTo returns the first offset whose outputs are not all acknowledged: every offset
// before it is done. With nothing outstanding it is one past the last consumed offset.
func (t *Tracker) DoneUpTo() int64 {
	for i := t.head; i < len(t.pending); i++ {
		if t.pending[i].outstanding > 0 {
			return t.pending[i].offset
		}
	}
	return t.next
}

// Outstanding is the number of outputs not yet acknowledged.
func (t *Tracker) Outstanding() int {
	n := 0
	for i := t.head; i < len(t.pending); i++ {
		n += t.pending[i].outstanding
	}
	return n
}

// CommitOffset returns the offset to commit given the first offset of the oldest session still
// open on this partition (ok=false when none is open), and whether a commit is allowed at all:
// after revocation nothing may be committed.
func (t *Tracker) CommitOffset(oldestOpen int64, anyOpen bool) (int64, bool) {
	if t.revoked {
		return 0, false
	}
	c := t.DoneUpTo()
	if anyOpen && oldestOpen < c {
		c = oldestOpen
	}
	return c, true
}

// Revoke marks the partition as taken away: CommitOffset refuses from now on.
func (t *Tracker) Revoke() { t.revoked = true }
