package clickhouse

import (
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// A fetch goes back to its partition's pool only when the last batch holding its values lets
// go, and only then are its messages cleared (Batch.Add keeps the values without copying).
func TestFetchRecycledAfterLastHold(t *testing.T) {
	pool := make(chan *Fetch, 1)
	f := &Fetch{Topic: "s", Lease: NewLease(1), pool: pool,
		Msgs: []kafka.Message{{Offset: 7, Value: []byte(`{"session_id":"a"}`)}, {Offset: 8, Value: []byte(`{}`)}}}
	f.refs.Store(1) // the batcher's
	f.hold()        // a batch with its first message
	f.hold()        // the next batch with its second
	f.release()     // the batcher is done with it
	f.release()     // the first batch is reset
	if len(pool) != 0 || string(f.Msgs[0].Value) != `{"session_id":"a"}` {
		t.Fatalf("recycled (pool %d) or cleared (%q) while a batch still holds it", len(pool), f.Msgs[0].Value)
	}
	f.release() // the second batch is reset
	if len(pool) != 1 {
		t.Fatal("not recycled after the last hold")
	}
	if len(f.Msgs) != 0 || f.Msgs[:2][0].Value != nil {
		t.Errorf("recycled with its messages: %d left, first value %q", len(f.Msgs), f.Msgs[:2][0].Value)
	}

	// Without a pool the messages are the source's: left as they are.
	g := &Fetch{Msgs: []kafka.Message{{Value: []byte("x")}}}
	g.refs.Store(1)
	g.release()
	if string(g.Msgs[0].Value) != "x" {
		t.Errorf("a fetch without a pool was cleared")
	}
}

func TestLeaseRevoked(t *testing.T) {
	l := NewLease(3)
	if l.Revoked() {
		t.Fatal("a new lease is revoked")
	}
	l.End()
	l.End() // twice is fine
	if !l.Revoked() {
		t.Fatal("an ended lease is not revoked")
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("Done is open after End")
	}
}

func TestGroupConfigValidateReportsEveryProblem(t *testing.T) {
	c := GroupConfig{StartOffset: 42}
	err := c.Validate()
	if err == nil {
		t.Fatal("an empty config is valid")
	}
	for _, want := range []string{"broker", "group id", "topic", "start offset"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// Config.Validate refuses batches whose arenas could pass the 32-bit offsets (MaxBatchBytes).
func TestConfigValidateBatchBytesMaximum(t *testing.T) {
	c := Config{Database: "d", Topics: map[string]Kind{"t": KindSessions}, BatchRows: 1, BatchBytes: MaxBatchBytes,
		BatchAge: time.Second, MaxInFlight: 1, RetryInitial: time.Second, RetryMax: time.Second, MaxField: 1}
	if err := c.Validate(); err != nil {
		t.Fatalf("batch bytes at the maximum: %v", err)
	}
	c.BatchBytes++
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "exceeds the maximum") {
		t.Fatalf("batch bytes past the maximum: %v", err)
	}
}

// The source is caught up only once every partition of the generation has been read to its
// end with nothing left in hand, and the last partition to get there wakes the sink once.
func TestProgressCaughtUpNeedsEveryPartition(t *testing.T) {
	wake := make(chan struct{}, 1)
	p := newProgress(2, wake)
	a, b := &partProgress{p: p}, &partProgress{p: p}
	woken := func() bool {
		select {
		case <-wake:
			return true
		default:
			return false
		}
	}
	if p.caughtUp() {
		t.Fatal("caught up before any fetch")
	}
	a.set(true)
	a.set(true) // repeated: counted once
	if p.caughtUp() || woken() {
		t.Fatal("caught up with one of two partitions unread")
	}
	b.set(false) // a fetch in hand
	b.set(true)  // handed over, at the end
	if !p.caughtUp() || !woken() {
		t.Fatal("not caught up (or not woken) with both partitions at their ends")
	}
	a.set(false) // new records arrived on a
	if p.caughtUp() {
		t.Fatal("caught up with a fetch in hand")
	}
	a.set(true)
	if !p.caughtUp() || !woken() {
		t.Fatal("not caught up again after the fetch was handed over")
	}
	if woken() {
		t.Fatal("woken twice for one catch-up")
	}
	if !newProgress(0, wake).caughtUp() {
		t.Error("a generation without partitions has nothing to wait for")
	}
}
