package embedkafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// kafka-go writes keyed messages, a group reader commits them, and after a restart on the same
// data dir the records and the committed offsets are still there.
func TestEmbeddedBrokerPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Start(Options{DataDir: dir, Topics: []string{"mxtrail.raw"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "mxtrail.raw", Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	const n = 500
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("mx%d", i%5)), Value: []byte(fmt.Sprintf("line %d", i))}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	read := func(addr string, want int) int {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: "g", Topic: "mxtrail.raw",
			HeartbeatInterval: 200 * time.Millisecond, MaxWait: 200 * time.Millisecond})
		defer r.Close()
		got := 0
		for got < want {
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			m, err := r.FetchMessage(rctx)
			rcancel()
			if err != nil {
				break
			}
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatal(err)
			}
			got++
		}
		return got
	}
	if got := read(addr, n); got != n {
		t.Fatalf("read %d of %d", got, n)
	}
	b.Close()

	b2, err := Start(Options{DataDir: dir, Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	// Everything was committed: a reader in the same group finds nothing new.
	if got := read(b2.Addrs()[0], 1); got != 0 {
		t.Fatalf("after restart the group re-read %d messages: offsets were lost", got)
	}
	// The records themselves survived.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b2.Addrs(), Topic: "mxtrail.raw", Partition: 0, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	if _, err := r.ReadMessage(ctx); err != nil {
		t.Fatalf("read a persisted record: %v", err)
	}
}
