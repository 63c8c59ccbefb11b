package smoke

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

func createTopic(t *testing.T, ctx context.Context, addr, topic string, partitions int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatalf("create topic %q: %v", topic, err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatalf("create topic %q: %v", topic, err)
	}
}

// A 6-partition topic, 10k keyed messages, two readers in one consumer group: every message is
// read at least once, both readers take part, and the committed offsets survive a reopen.
func TestKafkaSmokeIntegration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	suffix := strconv.FormatUint(rand.Uint64(), 36)
	topic, group := "smoke-"+suffix, "smoke-group-"+suffix
	createTopic(t, ctx, brokers[0], topic, 6)

	const n = 10000
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1000,
		BatchTimeout: 10 * time.Millisecond,
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Key:   []byte(fmt.Sprintf("mx%02d.example.net", i%37)),
			Value: []byte(fmt.Sprintf("%07d Mar  9 12:43:51 mx%02d spamdyke[%d]: ALLOWED from: a@b.example to: c@d.example", i, i%37, 1000+i)),
		}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write %d messages: %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	seen := make([]int, n)
	var mu sync.Mutex
	total := 0
	perReader := [2]int{}
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	var wg sync.WaitGroup
	readers := make([]*kafka.Reader, 2)
	for r := range readers {
		readers[r] = kafka.NewReader(kafka.ReaderConfig{
			Brokers:           brokers,
			GroupID:           group,
			Topic:             topic,
			HeartbeatInterval: 200 * time.Millisecond,
			SessionTimeout:    6 * time.Second,
			RebalanceTimeout:  5 * time.Second,
			QueueCapacity:     100,
			MaxWait:           time.Second,
			StartOffset:       kafka.FirstOffset,
		})
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for {
				m, err := readers[r].FetchMessage(readCtx)
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("reader %d: %v", r, err)
					}
					return
				}
				i, err := strconv.Atoi(string(m.Value[:7]))
				if err != nil {
					t.Errorf("reader %d: bad value %q", r, m.Value)
					return
				}
				if err := readers[r].CommitMessages(readCtx, m); err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("reader %d: commit: %v", r, err)
					return
				}
				mu.Lock()
				if seen[i] == 0 {
					total++
				}
				seen[i]++
				perReader[r]++
				done := total == n
				mu.Unlock()
				if done {
					stopReading()
				}
			}
		}(r)
	}
	wg.Wait()
	for _, r := range readers {
		if err := r.Close(); err != nil {
			t.Errorf("close reader: %v", err)
		}
	}
	if total != n {
		t.Fatalf("read %d distinct messages of %d", total, n)
	}
	if perReader[0] == 0 || perReader[1] == 0 {
		t.Errorf("one reader got nothing: %v (the group did not split the partitions)", perReader)
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("read %d messages (%d re-deliveries), per reader %v", n, dups, perReader)

	// Committed offsets must equal the end of every partition.
	client := &kafka.Client{Addr: kafka.TCP(brokers[0]), Timeout: 10 * time.Second}
	parts := []int{0, 1, 2, 3, 4, 5}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	reqs := make([]kafka.OffsetRequest, len(parts))
	for i, p := range parts {
		reqs[i] = kafka.LastOffsetOf(p)
	}
	ends, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	end := map[int]int64{}
	var sum int64
	for _, po := range ends.Topics[topic] {
		end[po.Partition] = po.LastOffset
		sum += po.LastOffset
	}
	if sum != n {
		t.Fatalf("partition ends add up to %d, want %d", sum, n)
	}
	for _, po := range committed.Topics[topic] {
		if po.CommittedOffset != end[po.Partition] {
			t.Errorf("partition %d: committed %d, end %d", po.Partition, po.CommittedOffset, end[po.Partition])
		}
	}

	// A reader reopened in the same group starts at the committed offsets: nothing is left.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: group, Topic: topic,
		HeartbeatInterval: 200 * time.Millisecond, MaxWait: time.Second})
	defer r.Close()
	shortCtx, cancelShort := context.WithTimeout(ctx, 8*time.Second)
	defer cancelShort()
	if m, err := r.FetchMessage(shortCtx); err == nil {
		t.Fatalf("reopened reader got partition %d offset %d: offsets were not committed", m.Partition, m.Offset)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reopened reader: %v", err)
	}
}

// The private broker fault tests rely on keeps its data across a stop and a start.
func TestPrivateKafkaStopStartIntegration(t *testing.T) {
	testenv.KafkaBrokers(t) // the shared stack also provides the jar cache
	k := testenv.PrivateKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	createTopic(t, ctx, k.Addr, "private", 1)
	w := &kafka.Writer{Addr: kafka.TCP(k.Addr), Topic: "private", RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("before stop")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	k.Stop(t)
	k.Start(t)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{k.Addr}, Topic: "private", MaxWait: time.Second})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil || string(m.Value) != "before stop" {
		t.Fatalf("after restart: %q, %v", m.Value, err)
	}
}
