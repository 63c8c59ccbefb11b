package stream

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"weak"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/alert"
	"github.com/mxtrail/mxtrail/enrich/gen"
)

// TestPartitionKeepsNoFetchBuffer: once a partition has handled a fetch, nothing it keeps
// (open sessions, alert windows, the decoder, the last input) points into the fetch's
// buffer, so the buffer is freed while the next fetch is handled. kafkafetch slices keys,
// values and header values out of one buffer per response (or decompressed batch): one
// kept view of a few bytes would hold megabytes, per partition, for as long as it lives.
func TestPartitionKeepsNoFetchBuffer(t *testing.T) {
	opts := gen.Defaults()
	opts.Seed, opts.Hosts, opts.Lines, opts.GarbageRate = 5, 5, 8000, 0.02
	var files map[string]*bytes.Buffer
	opts.Create, files = gen.InMemory()
	sum, err := gen.Generate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e := offlineEnricher(t, func(c *Config) {
		ac := alert.Defaults()
		c.Alerts = &ac
	})
	p := offlinePartition(t, e, 0)
	// One fetch: every line of every file sliced out of one buffer, with the shipper's
	// headers (values in the buffer too) shared by runs of 40 lines as kafkafetch shares them.
	var buf []byte
	type span struct{ off, n int }
	type rec struct {
		key, value span
		hdrs       []span // host, source, dialect, ingest_time values
	}
	var recs []rec
	add := func(b []byte) span { buf = append(buf, b...); return span{len(buf) - len(b), len(b)} }
	for _, f := range sum.Files {
		var hdrs []span
		for i, l := range bytes.Split(bytes.TrimSuffix(files[f.Name].Bytes(), []byte("\n")), []byte("\n")) {
			if i%40 == 0 {
				hdrs = []span{add([]byte(f.Host)), add([]byte("file")), add([]byte(f.Dialect)), add([]byte(fmt.Sprintf("2021-03-09T%02d:00:00Z", i%24)))}
			}
			recs = append(recs, rec{key: add([]byte(f.Host)), value: add(l), hdrs: hdrs})
		}
	}
	if len(recs) < 8000 {
		t.Fatalf("%d lines generated", len(recs))
	}
	gone := weak.Make(&buf[0])
	msgs := make([]kafka.Message, len(recs))
	var shared []kafka.Header
	for i, r := range recs {
		if i == 0 || &r.hdrs[0] != &recs[i-1].hdrs[0] {
			shared = nil
			for j, k := range []string{"host", "source", "dialect", "ingest_time"} {
				s := r.hdrs[j]
				shared = append(shared, kafka.Header{Key: k, Value: buf[s.off : s.off+s.n : s.off+s.n]})
			}
		}
		msgs[i] = kafka.Message{Topic: "raw", Offset: int64(i), Key: buf[r.key.off : r.key.off+r.key.n], Value: buf[r.value.off : r.value.off+r.value.n], Headers: shared}
	}
	buf, shared = nil, nil
	now := e.cfg.Clock()
	var outs, dead int
	for i := range msgs {
		p.handle(&msgs[i], now)
		for _, m := range p.out { // the producer's part: it keeps only its own copies
			outs++
			if m.Topic == "d" {
				dead++
			}
		}
		clear(p.out)
		p.out = p.out[:0]
	}
	if outs == 0 || dead == 0 || p.asm.Open() == 0 {
		t.Fatalf("%d outputs, %d dead letters, %d sessions open: the fetch did not exercise the partition", outs, dead, p.asm.Open())
	}
	clear(msgs)
	p.dropFetch()
	runtime.GC()
	runtime.GC()
	if gone.Value() != nil {
		t.Fatal("the partition still points into the fetch it handled")
	}
	runtime.KeepAlive(p)
}
