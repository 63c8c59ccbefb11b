package kafkafetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// fill writes recs to topic (one partition) through kafka-go's Writer with codec.
func fill(t testing.TB, brokers []string, dialer *kafka.Dialer, topic string, codec kafka.Compression, recs []testRecord) {
	t.Helper()
	tr := &kafka.Transport{}
	if dialer != nil {
		tr = &kafka.Transport{TLS: dialer.TLS, SASL: dialer.SASLMechanism}
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchSize: 97,
		BatchBytes: 4 << 20, BatchTimeout: 2 * time.Millisecond, Compression: codec, Transport: tr}
	defer w.Close()
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafka.Message{Key: r.key, Value: r.value, Headers: r.headers}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// readAll drains n records from offset 0 with f (small fetches when maxBytes is small).
func readAll(t *testing.T, f *Fetcher, n int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, buf []kafka.Message
	next := int64(0)
	for len(out) < n {
		var res Result
		var err error
		buf, res, err = f.Fetch(ctx, next, buf[:0])
		if err != nil {
			t.Fatalf("fetch from %d: %v", next, err)
		}
		out = append(out, buf...)
		next = res.Next
	}
	return out
}

func sameMessages(t *testing.T, what string, got, want []kafka.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := &got[i], &want[i]
		if g.Offset != w.Offset || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || !g.Time.Equal(w.Time) ||
			g.Partition != w.Partition || g.Topic != w.Topic || len(g.Headers) != len(w.Headers) {
			t.Fatalf("%s: record %d: offset %d key %q value %d bytes time %v headers %d; want offset %d key %q value %d bytes time %v headers %d",
				what, i, g.Offset, g.Key, len(g.Value), g.Time, len(g.Headers), w.Offset, w.Key, len(w.Value), w.Time, len(w.Headers))
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(g.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("%s: record %d: headers %v, want %v", what, i, g.Headers, w.Headers)
			}
		}
	}
}

// TestFetchCodecsIntegration: on the real broker, topics written with every codec (records
// with null keys, empty and 300 KB values, 0-3 headers) read the same through the fetch-v4
// decoder as through kafka-go's reader (the Fetcher's fall-back), with small and large
// fetches.
func TestFetchCodecsIntegration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	r := mrand.New(mrand.NewPCG(11, 12))
	for _, codec := range []kafka.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd} {
		name := "none"
		if codec != 0 {
			name = codec.String()
		}
		t.Run(name, func(t *testing.T) {
			recs := randomRecords(r, 600)
			tp := topic(t, brokers, 0)
			fill(t, brokers, nil, tp, codec, recs)
			slow := New(Config{Brokers: brokers, Topic: tp})
			slow.dial(context.Background())
			slow.raw = nil // kafka-go's reader
			defer slow.Close()
			want := readAll(t, slow, len(recs))
			for i := range want {
				if !bytes.Equal(want[i].Value, recs[i].value) {
					t.Fatalf("kafka-go read record %d differently from what was written", i)
				}
			}
			for _, maxBytes := range []int{64 << 10, 16 << 20} {
				fast := New(Config{Brokers: brokers, Topic: tp, MaxBytes: maxBytes})
				got := readAll(t, fast, len(recs))
				if fast.raw == nil {
					t.Fatal("the broker was read through kafka-go, not the fetch-v4 decoder")
				}
				fast.Close()
				sameMessages(t, fmt.Sprintf("max bytes %d", maxBytes), got, want)
			}
			readPooled(t, brokers, tp, want, codec == 0 || codec == kafka.Zstd)
		})
	}
}

// readPooled reads want's records again in small fetches with a Pool, checking each fetch's
// records before its buffers go back: fetches into recycled (dirty) buffers read the same,
// and Result.Bufs holds what the records alias (pooled: the responses and zstd outputs; the
// other codecs decompress into fresh buffers).
func readPooled(t *testing.T, brokers []string, tp string, want []kafka.Message, pooled bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool := NewPool(64 << 20)
	f := New(Config{Brokers: brokers, Topic: tp, MaxBytes: 64 << 10, Pool: pool})
	defer f.Close()
	seen := map[*byte]bool{}
	reused, fetches := 0, 0
	var buf []kafka.Message
	next, i := int64(0), 0
	for i < len(want) {
		var res Result
		var err error
		buf, res, err = f.Fetch(ctx, next, buf[:0])
		if err != nil {
			t.Fatalf("pooled fetch from %d: %v", next, err)
		}
		if len(buf) > 0 && len(res.Bufs) == 0 {
			t.Fatal("records without the buffers they alias in Result.Bufs")
		}
		sameMessages(t, fmt.Sprintf("pooled, records %d-", i), buf, want[i:min(i+len(buf), len(want))])
		for _, m := range buf {
			inside := len(m.Value) == 0
			for _, b := range res.Bufs {
				if inBuf(b, m.Value) {
					inside = true
				}
			}
			if !inside && pooled {
				t.Fatalf("record at offset %d aliases none of Result.Bufs", m.Offset)
			}
		}
		for _, b := range res.Bufs {
			if cap(b) > 0 {
				p := &b[:1][0]
				if seen[p] {
					reused++
				}
				seen[p] = true
			}
		}
		i += len(buf)
		next = res.Next
		clear(buf)
		pool.Put(res.Bufs)
		fetches++
	}
	if reused == 0 && fetches > 3 {
		t.Fatalf("no buffer was reused in %d fetches", fetches)
	}
	t.Logf("pooled: %d fetches, %d buffers reused", fetches, reused)
}

// inBuf reports whether v lies within b's array.
func inBuf(b, v []byte) bool {
	if cap(b) == 0 || len(v) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(&b[:1][0]))
	p := uintptr(unsafe.Pointer(&v[0]))
	return p >= lo && p < lo+uintptr(cap(b))
}

// TestFetchTLSSCRAM: the decoder's socket is the one kafka-go authenticated, over TLS with
// SCRAM, against franz-go's kfake (the local broker has neither listener). Also the embedded
// broker of `make run` speaks fetch v4.
func TestFetchTLSSCRAM(t *testing.T) {
	srvTLS, pool, _ := testenv.SelfSignedTLS(t, t.TempDir())
	const tp = "kafkafetch.auth"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(srvTLS), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "enricher", "scram-secret"), kfake.SeedTopics(1, tp))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	mech, err := scram.Mechanism(scram.SHA512, "enricher", "scram-secret")
	if err != nil {
		t.Fatal(err)
	}
	d := &kafka.Dialer{Timeout: 10 * time.Second, TLS: &tls.Config{RootCAs: pool, ServerName: "kafka.test"}, SASLMechanism: mech}
	recs := randomRecords(mrand.New(mrand.NewPCG(13, 14)), 300)
	fill(t, cluster.ListenAddrs(), d, tp, kafka.Snappy, recs)

	f := New(Config{Brokers: cluster.ListenAddrs(), Topic: tp, Dialer: d, MaxBytes: 256 << 10})
	defer f.Close()
	got := readAll(t, f, len(recs))
	if f.raw == nil {
		t.Fatal("kfake was read through kafka-go, not the fetch-v4 decoder")
	}
	for i := range recs {
		if got[i].Offset != int64(i) || !bytes.Equal(got[i].Value, recs[i].value) || !bytes.Equal(got[i].Key, recs[i].key) {
			t.Fatalf("record %d: offset %d value %d bytes, want %d bytes", i, got[i].Offset, len(got[i].Value), len(recs[i].value))
		}
	}

	bad := New(Config{Brokers: cluster.ListenAddrs(), Topic: tp, Dialer: &kafka.Dialer{Timeout: 5 * time.Second, TLS: &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "kafka.test"}, SASLMechanism: mech}})
	defer bad.Close()
	if _, _, err := bad.Fetch(context.Background(), 0, nil); err == nil {
		t.Fatal("a broker whose certificate the CA pool does not hold was read")
	}
}
