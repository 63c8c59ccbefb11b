package produce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

type countAcks struct{ n atomic.Int64 }

func (c *countAcks) Acked(uint64) { c.n.Add(1) }

// deadBroker returns an address where nothing listens.
func deadBroker(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUnreachableKafkaBlocksAtBoundAndNeverAcks(t *testing.T) {
	p, err := New(Config{
		Brokers: []string{deadBroker(t)}, Topic: "mxtrail.raw", Compression: "zstd",
		BatchBytes: 1000, MaxInFlight: 4000, Linger: time.Millisecond,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	acks := &countAcks{}
	line := make([]byte, 100)
	sent := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := p.Send(ctx, InputFile, "mx1", nil, line, acks, uint64(sent))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break // blocked: the in-flight bound holds
		}
		if err != nil {
			t.Fatal(err)
		}
		if sent++; sent > 100 {
			t.Fatalf("accepted %d lines of 100 bytes with max in flight 4000", sent)
		}
	}
	// Blocked at most at the in-flight bound: the batch stuck in the pipeline plus a full
	// filling batch (a batch never outgrows batch bytes) may stop readers before it.
	if sent < 20 || sent > 40 || p.InFlight() != sent*100 {
		t.Fatalf("accepted %d lines, in flight %d; want 20..40 lines (2..4 batches of 1000 bytes, bound 4000) all in flight", sent, p.InFlight())
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Ready() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Ready stayed nil with Kafka unreachable")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with Kafka down = %v, want the drain to time out", err)
	}
	if n := acks.n.Load(); n != 0 {
		t.Fatalf("%d lines acknowledged although Kafka never took them", n)
	}
	if err := p.Send(context.Background(), InputFile, "mx1", nil, line, nil, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v", err)
	}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	c := Config{Compression: "brotli", BatchBytes: 10, MaxInFlight: 5}
	errs := c.Validate()
	if len(errs) != 5 {
		t.Fatalf("want 5 problems (brokers, topic, compression, sizes, durations), got %d: %v", len(errs), errs)
	}
}

type seqAcks struct{ seqs []uint64 }

func (a *seqAcks) Acked(seq uint64) { a.seqs = append(a.seqs, seq) }

type rangeAcks struct {
	seqAcks
	ranges [][2]uint64
}

func (a *rangeAcks) AckedRange(first, last uint64) {
	a.ranges = append(a.ranges, [2]uint64{first, last})
	for s := first; s <= last; s++ {
		a.seqs = append(a.seqs, s)
	}
}

// TestReleaseAcksEveryLineOnceInRuns: runs of one acker with consecutive sequence numbers
// become one AckedRange; gaps, interleaved sources and plain Ackers still get every line once.
func TestReleaseAcksEveryLineOnceInRuns(t *testing.T) {
	p := &Producer{m: NewMetrics(nil), space: make(chan struct{}), free: make(chan *batch, 1)}
	ra, rb, plain := &rangeAcks{}, &rangeAcks{}, &seqAcks{}
	b := &batch{}
	add := func(a Acker, seqs ...uint64) {
		for _, s := range seqs {
			b.entries = append(b.entries, entry{acker: a, seq: s, n: 10})
			b.bytes += 10
		}
	}
	add(ra, 0, 1, 2)
	add(rb, 7, 8)
	add(ra, 3, 4)
	add(ra, 9) // a gap: seqs 5..8 of ra went elsewhere (never happens for files, must not matter)
	add(nil, 0, 0)
	add(plain, 4, 5, 6)
	p.inflight = b.bytes
	p.release(b)
	want := func(name string, got []uint64, w ...uint64) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s acked %v, want %v", name, got, w)
		}
	}
	want("ra", ra.seqs, 0, 1, 2, 3, 4, 9)
	want("rb", rb.seqs, 7, 8)
	want("plain", plain.seqs, 4, 5, 6)
	if fmt.Sprint(ra.ranges) != "[[0 2] [3 4] [9 9]]" || fmt.Sprint(rb.ranges) != "[[7 8]]" {
		t.Errorf("ranges %v and %v", ra.ranges, rb.ranges)
	}
	if p.inflight != 0 {
		t.Errorf("in flight %d after release", p.inflight)
	}
}
