package stream

import (
	"math/rand/v2"
	"testing"
)

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestTrackerCommitsHighestContiguousAckedAndNeverPastOpenSessions(t *testing.T) {
	tr := NewTracker(100)
	if c, _ := tr.CommitOffset(0, false); c != 100 {
		t.Fatalf("nothing consumed: commit %d, want 100", c)
	}
	mustNil(t, tr.Consumed(100, 1)) // closes a session -> 1 output
	mustNil(t, tr.Consumed(101, 0)) // line of an open session
	mustNil(t, tr.Consumed(103, 2)) // gap at 102 (compaction); 2 outputs
	mustNil(t, tr.Consumed(104, 0))
	if c, _ := tr.CommitOffset(0, false); c != 100 {
		t.Fatalf("nothing acked: commit %d, want 100", c)
	}
	mustNil(t, tr.Acked(103)) // out of order ack: still blocked by 100
	if c, _ := tr.CommitOffset(0, false); c != 100 {
		t.Fatalf("100 unacked: commit %d, want 100", c)
	}
	mustNil(t, tr.Acked(100))
	if c, _ := tr.CommitOffset(0, false); c != 103 {
		t.Fatalf("103 half acked: commit %d, want 103", c)
	}
	mustNil(t, tr.Acked(103))
	if c, _ := tr.CommitOffset(0, false); c != 105 {
		t.Fatalf("all acked: commit %d, want 105", c)
	}
	// A session that opened at 101 and is still open holds the commit back.
	if c, _ := tr.CommitOffset(101, true); c != 101 {
		t.Fatalf("open session at 101: commit %d, want 101", c)
	}
	tr.Revoke()
	if _, ok := tr.CommitOffset(0, false); ok {
		t.Fatal("commit allowed after revocation")
	}
}

func TestTrackerRejectsMisuse(t *testing.T) {
	tr := NewTracker(0)
	mustNil(t, tr.Consumed(5, 1))
	if err := tr.Consumed(5, 0); err == nil {
		t.Fatal("offset consumed twice accepted")
	}
	if err := tr.Acked(4); err == nil {
		t.Fatal("ack for an offset with no outputs accepted")
	}
	mustNil(t, tr.Acked(5))
	if err := tr.Acked(5); err == nil {
		t.Fatal("second ack for a single output accepted")
	}
	if err := tr.AddOutputs(9, 1); err == nil {
		t.Fatal("outputs for an unconsumed offset accepted")
	}
}

func TestTrackerAddOutputsReopensADoneOffset(t *testing.T) {
	tr := NewTracker(0)
	for o := int64(0); o < 5; o++ {
		mustNil(t, tr.Consumed(o, 0))
	}
	mustNil(t, tr.AddOutputs(2, 1)) // an expiry attributed to offset 2
	if c, _ := tr.CommitOffset(0, false); c != 2 {
		t.Fatalf("commit %d, want 2", c)
	}
	mustNil(t, tr.Acked(2))
	if c, _ := tr.CommitOffset(0, false); c != 5 {
		t.Fatalf("commit %d, want 5", c)
	}
}

// Against a simple model: random outputs per offset, acks in random order; after every step
// the commit offset equals the model's first not-fully-acked offset.
func TestTrackerAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		tr := NewTracker(0)
		outstanding := map[int64]int{}
		var offsets []int64
		var acks []int64
		next := int64(0)
		for step := 0; step < 3000; step++ {
			if r.IntN(3) > 0 {
				next += 1 + int64(r.IntN(2)) // sometimes a gap
				n := r.IntN(3)
				mustNil(t, tr.Consumed(next, n))
				offsets = append(offsets, next)
				outstanding[next] = n
				for i := 0; i < n; i++ {
					acks = append(acks, next)
				}
			} else if len(acks) > 0 {
				i := r.IntN(len(acks))
				o := acks[i]
				acks[i] = acks[len(acks)-1]
				acks = acks[:len(acks)-1]
				mustNil(t, tr.Acked(o))
				outstanding[o]--
			}
			want := next + 1
			for _, o := range offsets {
				if outstanding[o] > 0 {
					want = o
					break
				}
			}
			if len(offsets) == 0 {
				want = 0
			}
			if got := tr.DoneUpTo(); got != want {
				t.Fatalf("round %d step %d: DoneUpTo %d, model %d", round, step, got, want)
			}
		}
	}
}

func BenchmarkTrackerConsumeAck(b *testing.B) {
	tr := NewTracker(0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		o := int64(i)
		_ = tr.Consumed(o, 1)
		if i >= 64 {
			_ = tr.Acked(o - 64)
		}
		if i%1000 == 0 {
			tr.CommitOffset(0, false)
		}
	}
}
