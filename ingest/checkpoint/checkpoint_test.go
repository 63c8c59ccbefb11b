package checkpoint

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestTrackerContiguous(t *testing.T) {
	tr := NewTracker(100)
	var seqs []uint64
	for i := 1; i <= 5; i++ {
		seqs = append(seqs, tr.Add(int64(100+i*10)))
	}
	// out of order: 2, 3 acked first; nothing may move past the unacked line 0.
	if got := tr.Ack(seqs[2]); got != 100 {
		t.Fatalf("after ack of 2: %d, want 100", got)
	}
	tr.Ack(seqs[1])
	if got := tr.Ack(seqs[0]); got != 130 {
		t.Fatalf("after ack of 0: %d, want 130", got)
	}
	if got := tr.Ack(seqs[4]); got != 130 {
		t.Fatalf("gap at 3 must hold: %d", got)
	}
	if got := tr.Ack(seqs[3]); got != 150 {
		t.Fatalf("all acked: %d, want 150", got)
	}
	if tr.Pending() != 0 {
		t.Fatalf("pending %d", tr.Pending())
	}
	// duplicate ack is harmless
	if got := tr.Ack(seqs[3]); got != 150 {
		t.Fatalf("duplicate ack moved to %d", got)
	}
}

func TestTrackerRandomOrderWithCompaction(t *testing.T) {
	tr := NewTracker(0)
	const n = 10000
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = tr.Add(int64(i+1) * 7)
	}
	order := rand.Perm(n)
	acked := make([]bool, n)
	for _, i := range order {
		acked[i] = true
		got := tr.Ack(seqs[i])
		want := int64(0)
		for j := 0; j < n && acked[j]; j++ {
			want = int64(j+1) * 7
		}
		if got != want {
			t.Fatalf("after acking %d: %d, want %d", i, got, want)
		}
		if i%997 == 0 { // keep adding while compaction happens
			s := tr.Add(int64(n+1) * 7)
			defer func() { _ = s }()
		}
	}
}

func TestTrackerAckRange(t *testing.T) {
	tr := NewTracker(0)
	for i := range 3000 {
		tr.Add(int64(i+1) * 10)
	}
	if got := tr.AckRange(1000, 2999); got != 0 {
		t.Fatalf("range after a gap moved the offset to %d", got)
	}
	if got := tr.AckRange(0, 499); got != 5000 {
		t.Fatalf("after 0..499: %d, want 5000", got)
	}
	if got := tr.AckRange(500, 999); got != 30000 {
		t.Fatalf("after 500..999 (closing the gap): %d, want 30000", got)
	}
	if tr.Pending() != 0 {
		t.Fatalf("pending %d", tr.Pending())
	}
	// Reversed (empty), then reaching past the added lines and over folded ones: only the
	// one pending line counts, nothing panics.
	tr.Add(30010)
	if got := tr.AckRange(3001, 3000); got != 30000 {
		t.Fatalf("empty range moved to %d", got)
	}
	if got := tr.AckRange(2990, 5000); got != 30010 {
		t.Fatalf("range over folded, pending and unknown lines: %d, want 30010", got)
	}
	if tr.Pending() != 0 {
		t.Fatalf("pending %d", tr.Pending())
	}
}

func TestStoreRoundTripAndAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "positions.json")
	s, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	k := Key{Dev: 2049, Ino: 77}
	s.Set(Position{Key: k, Path: "/var/log/maillog", Fingerprint: []byte("Mar  9 11:10:37 h spamdyke"), Offset: 4242})
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s2.Get(k)
	if !ok || got.Offset != 4242 || string(got.Fingerprint) != "Mar  9 11:10:37 h spamdyke" {
		t.Fatalf("round trip: %+v %v", got, ok)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left behind: %v", ents)
	}
	os.WriteFile(p, []byte("{not json"), 0o600)
	if _, err := Open(p); err == nil {
		t.Fatal("corrupt checkpoint must be an error, not an empty store")
	}
}
