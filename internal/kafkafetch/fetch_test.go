package kafkafetch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// topic creates a one-partition topic holding n records (key k<i>, value v<i>, a header) and
// returns its name.
func topic(t testing.TB, brokers []string, n int) string {
	t.Helper()
	name := fmt.Sprintf("kafkafetch-%d", rand.Uint32())
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	resp, err := c.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: name, NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Errors[name]; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{name}}) })
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: name, RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i)),
			Headers: []kafka.Header{{Key: "host", Value: []byte("h" + strconv.Itoa(i%3))}}})
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	return name
}

// drain fetches from offset until want records came, checking order and content.
func drain(t *testing.T, f *Fetcher, offset int64, want int) (int64, int) {
	t.Helper()
	var buf []kafka.Message
	got := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := offset
	for got < want {
		var res Result
		var err error
		buf, res, err = f.Fetch(ctx, next, buf[:0])
		for i := range buf {
			m := &buf[i]
			o := m.Offset
			if next >= 0 && o != next+int64(i) {
				t.Fatalf("record %d has offset %d, want %d", i, o, next+int64(i))
			}
			if string(m.Key) != "k"+strconv.FormatInt(o, 10) || string(m.Value) != "v"+strconv.FormatInt(o, 10) ||
				len(m.Headers) != 1 || string(m.Headers[0].Value) != "h"+strconv.FormatInt(o%3, 10) {
				t.Fatalf("offset %d: key %q value %q headers %v", o, m.Key, m.Value, m.Headers)
			}
			got++
		}
		if err != nil {
			t.Fatalf("fetch from %d: %v", next, err)
		}
		if res.HighWaterMark < res.Next {
			t.Fatalf("high water mark %d below next %d", res.HighWaterMark, res.Next)
		}
		next = res.Next
	}
	return next, got
}

func TestFetchIntegration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	const n = 5000
	tp := topic(t, brokers, n)
	// small fetches: many round trips, batches that start before the asked offset
	f := New(Config{Brokers: brokers, Topic: tp, MaxBytes: 4 << 10, MaxWait: 200 * time.Millisecond})
	defer f.Close()

	next, got := drain(t, f, kafka.FirstOffset, n)
	if next != n || got != n {
		t.Fatalf("read %d records, next %d; want %d", got, next, n)
	}
	// from the middle of a record batch
	if next, got = drain(t, f, 1234, n-1234); next != n || got != n-1234 {
		t.Fatalf("from 1234: read %d records, next %d; want %d and %d", got, next, n-1234, n)
	}

	// at the end: an empty fetch after MaxWait, no error
	buf, res, err := f.Fetch(context.Background(), n, nil)
	if err != nil || len(buf) != 0 || res.Next != n || res.HighWaterMark != n {
		t.Fatalf("at the end: %d records, %+v, %v", len(buf), res, err)
	}

	// past the end: an out-of-range error, Next unchanged
	_, res, err = f.Fetch(context.Background(), n+100, nil)
	var oe *OutOfRangeError
	if !errors.As(err, &oe) || !errors.Is(err, kafka.OffsetOutOfRange) || res.Next != n+100 || oe.Last != n {
		t.Fatalf("past the end: %+v, %v", res, err)
	}

	// a broken connection: the next call reconnects and reads on
	f.conn.Close()
	recovered := false
	for i := 0; i < 5 && !recovered; i++ {
		buf, res, err = f.Fetch(context.Background(), 10, buf[:0])
		recovered = err == nil && len(buf) > 0 && buf[0].Offset == 10
	}
	if !recovered {
		t.Fatalf("no recovery after a broken connection: %v", err)
	}

	// cancellation interrupts a long poll at the end of the partition
	slow := New(Config{Brokers: brokers, Topic: tp, MaxWait: 20 * time.Second})
	defer slow.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	t0 := time.Now()
	_, _, err = slow.Fetch(ctx, n, nil)
	if !errors.Is(err, context.Canceled) || time.Since(t0) > 5*time.Second {
		t.Fatalf("cancelled fetch returned %v after %s", err, time.Since(t0))
	}
	// and the fetcher still works afterwards
	slow.cfg.MaxWait = 200 * time.Millisecond
	if _, got := drain(t, slow, n-10, 10); got != 10 {
		t.Fatalf("after cancellation: %d records", got)
	}
}
