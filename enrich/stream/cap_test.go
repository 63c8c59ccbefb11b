package stream

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/enrich/session"
)

// TestOpenCapIsPerInstance: three partitions of one enricher share Session.MaxOpen; the
// partition whose line goes over the cap evicts its own least recently active session, and
// the evicted records go out with closed_by=evicted.
func TestOpenCapIsPerInstance(t *testing.T) {
	e := offlineEnricher(t, func(c *Config) { c.Session.MaxOpen = 30 })
	cfg := e.cfg
	var parts []*partition
	for id := 0; id < 3; id++ {
		parts = append(parts, offlinePartition(t, e, id))
	}
	evicted := map[int]int{}
	const perPart = 100
	for i := 0; i < perPart; i++ {
		for id, p := range parts {
			// a smtpf start line: each opens a session that stays open (no end, no timeout)
			line := fmt.Sprintf("Mar  9 12:%02d:%02d gw%d smtpf[100]: x2801T00%d%09d #637 start mx.c.example [192.0.2.3] f=\"\" th=1 cn=1 cs=3",
				i/60, i%60, id, id, i)
			p.handle(&kafka.Message{Topic: "raw", Partition: id, Offset: int64(i), Key: []byte(fmt.Sprintf("gw%d", id)), Value: []byte(line)}, e.cfg.Clock())
			if got := e.open.Load(); got > int64(cfg.Session.MaxOpen) {
				t.Fatalf("line %d of partition %d: %d open in the instance, cap %d", i, id, got, cfg.Session.MaxOpen)
			}
			for _, m := range p.out {
				if m.Topic != "s" {
					continue
				}
				var r record.Session
				if err := json.Unmarshal(m.Value, &r); err != nil {
					t.Fatal(err)
				}
				if r.ClosedBy != record.ClosedByEvicted {
					t.Fatalf("closed by %s", r.ClosedBy)
				}
				evicted[id]++
			}
			p.out = p.out[:0]
		}
	}
	total := 0
	sum := 0
	for id, p := range parts {
		total += p.asm.Open()
		sum += p.openCounted
		if evicted[id] == 0 {
			t.Errorf("partition %d evicted nothing", id)
		}
	}
	if total != cfg.Session.MaxOpen || sum != total || e.open.Load() != int64(total) {
		t.Fatalf("open: assemblers %d, counted %d, instance %d; want the cap %d", total, sum, e.open.Load(), cfg.Session.MaxOpen)
	}
	if n := evicted[0] + evicted[1] + evicted[2]; n != 3*perPart-cfg.Session.MaxOpen {
		t.Fatalf("%d evicted, want %d", n, 3*perPart-cfg.Session.MaxOpen)
	}
	for _, p := range parts {
		p.forget()
	}
	if e.open.Load() != 0 {
		t.Fatalf("%d open after every partition left", e.open.Load())
	}
}

// TestArenaSlicesStayIntact: slices handed out by the arena keep their bytes while later adds
// fill chunks, start new ones and outgrow one (a value larger than a chunk).
func TestArenaSlicesStayIntact(t *testing.T) {
	var a arena
	var got [][]byte
	var want []string
	for i := 0; i < 3000; i++ {
		v := fmt.Sprintf("value %d %s", i, strings.Repeat("x", i%97))
		if i == 1500 {
			v = strings.Repeat("big", arenaChunk) // over a chunk
		}
		got = append(got, a.add(func(b []byte) []byte { return append(b, v...) }))
		want = append(want, v)
	}
	for i := range got {
		if string(got[i]) != want[i] {
			t.Fatalf("slice %d changed: %.40q, want %.40q", i, got[i], want[i])
		}
		if cap(got[i]) != len(got[i]) {
			t.Fatalf("slice %d has room to append over its neighbour: len %d cap %d", i, len(got[i]), cap(got[i]))
		}
	}
}

// TestCommitPointLookback: the commit is held at the first line of closed sessions
// straddling it (transitively) while that stays within the look-back of the open-session
// rule; past it the open-session rule alone decides and the fallback is reported.
func TestCommitPointLookback(t *testing.T) {
	e := offlineEnricher(t, func(c *Config) { c.Session.Lateness = 0 }) // an end line closes its session at once
	p := offlinePartition(t, e, 0)
	start := func(id, s int) string {
		return fmt.Sprintf(`Mar  9 12:00:%02d gw smtpf[100]: x2801T00100000%04d #637 start mx.example [192.0.2.1] f="" th=1 cn=1 cs=1`, s, id)
	}
	end := func(id, s int) string {
		return fmt.Sprintf(`Mar  9 12:00:%02d gw smtpf[100]: x2801T00100000%04d #721 end i=192.0.2.1 p="mx.example" f="quit" h="mx.example" b=0 t=4`, s, id)
	}
	// A: 0..2, B: 1..4, C open since 3; D: 5..6 closed, not straddling anything
	lines := []string{start(1, 0), start(2, 1), end(1, 2), start(3, 3), end(2, 4), start(4, 5), end(4, 6)}
	for i, l := range lines {
		p.handle(&kafka.Message{Topic: "raw", Partition: 0, Offset: int64(i), Key: []byte("gw"), Value: []byte(l)}, e.cfg.Clock())
	}
	if p.asm.Open() != 1 {
		t.Fatalf("%d open, want C", p.asm.Open())
	}
	// open rule: 3 (C); B (1..4) straddles 3, then A (0..2) straddles 1
	if c, straddles := commitPoint(p.asm, p.source, 7, 10); c != 0 || straddles {
		t.Fatalf("within the look-back: %d %v, want 0 false", c, straddles)
	}
	if c, straddles := commitPoint(p.asm, p.source, 7, 2); c != 3 || !straddles {
		t.Fatalf("past the look-back: %d %v, want the open rule's 3, true", c, straddles)
	}
	if c, straddles := commitPoint(p.asm, p.source, 2, 10); c != 0 || straddles {
		t.Fatalf("tracker at 2, inside A: %d %v, want 0 false", c, straddles)
	}
}

// offlineEnricher is an enricher whose partitions are driven through handle, without Kafka:
// brokers never dialled, short topic names, 2021 as the parser's year; tune adjusts the rest.
func offlineEnricher(t *testing.T, tune func(*Config)) *Enricher {
	t.Helper()
	cfg := Defaults()
	cfg.Brokers, cfg.GroupID = []string{"127.0.0.1:1"}, "g"
	cfg.Topics = Topics{Raw: "raw", Sessions: "s", Events: "e", DeadLetter: "d", Alerts: "a"}
	cfg.Parser = parse.Options{DefaultYear: 2021}
	cfg.Session = session.Defaults()
	cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	if tune != nil {
		tune(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// offlinePartition is partition id of e, for calling handle directly.
func offlinePartition(t *testing.T, e *Enricher, id int) *partition {
	t.Helper()
	p, err := e.newPartition(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOutputCompression: Config.Compression reaches the producer of the outputs.
func TestOutputCompression(t *testing.T) {
	for _, c := range []kafka.Compression{0, kafka.Zstd, kafka.Lz4} {
		e := offlineEnricher(t, func(cfg *Config) { cfg.Compression = c })
		if e.w.Compression != c {
			t.Fatalf("producer compression %v, want %v", e.w.Compression, c)
		}
	}
}
