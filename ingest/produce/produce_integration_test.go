package produce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// hostAcks records the sequence numbers acknowledged for one host, in the order they came.
type hostAcks struct {
	mu   sync.Mutex
	seqs []uint64
}

func (a *hostAcks) Acked(seq uint64) { a.AckedRange(seq, seq) }

func (a *hostAcks) AckedRange(first, last uint64) {
	a.mu.Lock()
	for s := first; s <= last; s++ {
		a.seqs = append(a.seqs, s)
	}
	a.mu.Unlock()
}

func createTestTopic(t *testing.T, broker string, partitions int) string {
	t.Helper()
	topic := fmt.Sprintf("mxtrail.test.produce.%d.%08x", time.Now().UnixNano(), rand.Uint32())
	c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 15 * time.Second}
	if _, err := c.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}}) })
	return topic
}

// TestProducerIntegration produces interleaved lines of many hosts through the real broker
// with small batches (many batches and several partitions in flight at once) for every
// compression, then reads every partition back and checks, per host: every line exactly
// once (nothing failed, so nothing was re-sent), in order, with its value and headers byte
// for byte, on the partition kafka.Writer with kafka.Murmur2Balancer puts the host's key
// (measured by writing a marker with such a Writer into the same topic); and that each line
// was acknowledged once, in order.
func TestProducerIntegration(t *testing.T) {
	broker := testenv.KafkaBrokers(t)[0]
	const partitions = 4
	for _, tc := range []struct {
		compression  string
		hosts, lines int
	}{
		{"zstd", 16, 1000},
		{"none", 8, 200},
		{"gzip", 8, 200},
		{"snappy", 8, 200},
		{"lz4", 8, 200},
	} {
		t.Run(tc.compression, func(t *testing.T) {
			topic := createTestTopic(t, broker, partitions)
			p, err := New(Config{
				Brokers: []string{broker}, Topic: topic, Compression: tc.compression,
				BatchBytes: 64 << 10, MaxInFlight: 256 << 10, Linger: 5 * time.Millisecond,
				MaxMessageBytes: 16 << 10, // several record sets per partition and batch
				BackoffMin:      50 * time.Millisecond, BackoffMax: time.Second, WriteTimeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			hosts := make([]string, tc.hosts)
			headers := map[string][]kafka.Header{}
			acks := map[string]*hostAcks{}
			for i := range hosts {
				h := fmt.Sprintf("mx%02d.example.net", i)
				hosts[i] = h
				headers[h] = []kafka.Header{
					{Key: "host", Value: []byte(h)},
					{Key: "source", Value: []byte("file")},
					{Key: "dialect", Value: []byte{}},
					{Key: "ingest_time", Value: []byte("2026-11-23T16:04:05.123456789Z")},
				}
				acks[h] = &hostAcks{}
			}
			value := func(h string, seq int) []byte {
				v := append(realisticLine(seq), " host="...)
				return append(v, h...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			for seq := range tc.lines {
				for _, h := range hosts {
					if err := p.Send(ctx, InputFile, h, headers[h], value(h, seq), acks[h], uint64(seq)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatalf("close: %v", err)
			}
			for _, h := range hosts {
				a := acks[h]
				if len(a.seqs) != tc.lines {
					t.Fatalf("host %s: %d acks, want %d", h, len(a.seqs), tc.lines)
				}
				for i, s := range a.seqs {
					if s != uint64(i) {
						t.Fatalf("host %s: ack %d is seq %d", h, i, s)
					}
				}
			}

			// Where kafka.Writer with the Murmur2Balancer puts each key.
			w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
			var markers []kafka.Message
			for _, h := range hosts {
				markers = append(markers, kafka.Message{Key: []byte(h), Value: []byte("marker")})
			}
			if err := w.WriteMessages(ctx, markers...); err != nil {
				t.Fatal(err)
			}
			w.Close()

			ends := map[int]int64{}
			c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
			req := map[string][]kafka.OffsetRequest{}
			for i := range partitions {
				req[topic] = append(req[topic], kafka.LastOffsetOf(i))
			}
			res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
			if err != nil {
				t.Fatal(err)
			}
			for _, po := range res.Topics[topic] {
				ends[po.Partition] = po.LastOffset
			}
			next := map[string]int{}
			producedOn, markerOn := map[string]int{}, map[string]int{}
			for part := range partitions {
				for off := int64(0); off < ends[part]; {
					res, err := c.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: part, Offset: off, MinBytes: 1, MaxBytes: 8 << 20, MaxWait: time.Second})
					if err == nil {
						err = res.Error
					}
					if err != nil {
						t.Fatalf("fetch partition %d at %d: %v", part, off, err)
					}
					for {
						r, err := res.Records.ReadRecord()
						if errors.Is(err, io.EOF) {
							break
						}
						if err != nil {
							t.Fatalf("read partition %d at %d: %v", part, off, err)
						}
						if r.Offset < off {
							continue // a fetch returns whole record batches
						}
						off = r.Offset + 1
						k, _ := protocol.ReadAll(r.Key)
						v, _ := protocol.ReadAll(r.Value)
						h := string(k)
						if string(v) == "marker" {
							markerOn[h] = part
							continue
						}
						if q, ok := producedOn[h]; ok && q != part {
							t.Fatalf("host %s on partitions %d and %d", h, q, part)
						}
						producedOn[h] = part
						if want := value(h, next[h]); !bytes.Equal(v, want) {
							t.Fatalf("partition %d offset %d: value %q, want line %d of %s: %q", part, r.Offset, v, next[h], h, want)
						}
						next[h]++
						if fmt.Sprint(r.Headers) != fmt.Sprint(headers[h]) {
							t.Fatalf("headers %v, want %v", r.Headers, headers[h])
						}
					}
				}
			}
			used := map[int]bool{}
			for _, h := range hosts {
				if next[h] != tc.lines {
					t.Errorf("host %s: %d lines read back, want %d", h, next[h], tc.lines)
				}
				if producedOn[h] != markerOn[h] {
					t.Errorf("host %s produced to partition %d, kafka.Writer (Murmur2Balancer) puts it on %d", h, producedOn[h], markerOn[h])
				}
				used[producedOn[h]] = true
			}
			if tc.hosts >= 8 && len(used) < 2 {
				t.Errorf("%d hosts all on one partition: partitioning is not by key", tc.hosts)
			}
		})
	}
}

// TestProducerTopicLimitIntegration: a topic whose max.message.bytes is far below the
// configured max_message_bytes still gets every line, because the producer reads the topic's
// limit and splits record sets to fit; without that the broker rejects every set and the
// lines could only be retried forever.
func TestProducerTopicLimitIntegration(t *testing.T) {
	broker := testenv.KafkaBrokers(t)[0]
	topic := fmt.Sprintf("mxtrail.test.produce.limit.%d.%08x", time.Now().UnixNano(), rand.Uint32())
	c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 15 * time.Second}
	if _, err := c.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "20000"}},
	}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}}) })
	p, err := New(Config{
		Brokers: []string{broker}, Topic: topic, Compression: "none",
		BatchBytes: 256 << 10, MaxInFlight: 1 << 20, Linger: 5 * time.Millisecond, MaxMessageBytes: 1 << 20,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, WriteTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000 // ~600 KiB: record sets of up to 256 KiB unless split
	acks := &hostAcks{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range n {
		if err := p.Send(ctx, InputFile, "mx1", nil, realisticLine(i), acks, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close: %v (%d of %d lines acknowledged)", err, len(acks.seqs), n)
	}
	if len(acks.seqs) != n {
		t.Fatalf("%d of %d lines acknowledged", len(acks.seqs), n)
	}
	res, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	if end := res.Topics[topic][0].LastOffset; end != n {
		t.Fatalf("topic holds %d records, want %d", end, n)
	}
}
