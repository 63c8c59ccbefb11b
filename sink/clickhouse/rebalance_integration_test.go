package clickhouse

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// runningSink is a sink running in the background on its own consumer-group source.
type runningSink struct {
	m      *Metrics
	src    *GroupSource
	cancel context.CancelFunc
	done   chan error
}

func startSink(t *testing.T, ctx context.Context, st stream, conn driver.Conn, topics []string) *runningSink {
	t.Helper()
	features := serverFeatures(t, conn)
	m := NewMetrics(nil)
	src := groupSource(t, st, topics, m)
	kinds := map[string]Kind{st.sessions: KindSessions, st.events: KindEvents, st.dead: KindDeadLetter}
	s, err := New(Config{Database: st.db, Topics: kinds, BatchRows: 1000, BatchBytes: 32 << 20,
		BatchAge: 200 * time.Millisecond, MaxInFlight: 2, RetryInitial: 50 * time.Millisecond, RetryMax: time.Second,
		MaxField: 256 << 10}, src, NewWriter(conn, st.db, features, m, 50*time.Millisecond, time.Second),
		m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &runningSink{m: m, src: src, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(rctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop drains the sink like SIGTERM does, then leaves the group; safe to call twice.
func (r *runningSink) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		t.Errorf("sink shutdown: %v", err)
	}
	r.src.Close()
}

func (r *runningSink) partitions(topic string) int { return len(r.src.Assigned()[topic]) }

// Two sinks share a group on a 4-partition topic; one stops while records are still arriving
// and the other takes over its partitions. Every session arrives, and after OPTIMIZE FINAL
// none twice; the group's committed offsets reach the end of every partition.
func TestSinkRebalanceIntegration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	addrs := testenv.ClickHouseAddrs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := newStream(t, ctx, brokers)
	conn := openTest(t, ctx, addrs, st.db)
	topics := []string{st.sessions}

	a := startSink(t, ctx, st, conn, topics)
	b := startSink(t, ctx, st, conn, topics)
	waitFor(t, ctx, "both sinks to hold 2 partitions each", func() bool {
		return a.partitions(st.sessions) == 2 && b.partitions(st.sessions) == 2
	})

	const n, waves = 16000, 16
	msgs := sessionMessages(genSessions(91, n))
	var produced sync.WaitGroup
	wave := make(chan int, waves)
	produced.Add(1)
	go func() { // records keep arriving before, during and after the hand-over
		defer produced.Done()
		defer close(wave)
		w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: st.sessions, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond}
		defer w.Close()
		per := n / waves
		for i := 0; i < waves; i++ {
			if err := w.WriteMessages(ctx, msgs[i*per:(i+1)*per]...); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			wave <- i
			time.Sleep(200 * time.Millisecond)
		}
	}()

	// Stop a mid-stream: once it inserted rows and half the records are produced.
	for i := range wave {
		if i >= waves/2 && counterValue(a.m.Rows.WithLabelValues("sessions")) > 0 {
			break
		}
	}
	a.stop(t)
	aRows := counterValue(a.m.Rows.WithLabelValues("sessions"))
	waitFor(t, ctx, "the remaining sink to take all 4 partitions", func() bool { return b.partitions(st.sessions) == 4 })
	produced.Wait()
	waitFor(t, ctx, "every session in ClickHouse", func() bool {
		return count(t, ctx, conn, "SELECT uniqExact(session_id) FROM "+st.db+".sessions") >= n
	})
	b.stop(t)
	// No goroutine of either sink, its source, its partition readers or its consumer group
	// outlives it (the producer's idle Kafka connections do, for a while: not counted).
	waitFor(t, ctx, "the sinks' goroutines to end", func() bool { return sinkGoroutines() == "" })
	if aRows == 0 || aRows >= n {
		t.Errorf("the first sink inserted %v rows before it stopped: the hand-over was not mid-stream", aRows)
	}
	t.Logf("first sink %v rows, second %v; batches left uncommitted by the rebalance: %v + %v",
		aRows, counterValue(b.m.Rows.WithLabelValues("sessions")), counterValue(a.m.Revoked), counterValue(b.m.Revoked))

	total, distinct := optimizeFinal(t, ctx, conn, st.db, n)
	if total != n || distinct != n {
		t.Errorf("after OPTIMIZE FINAL: %d rows, %d distinct session ids; want %d of each", total, distinct, n)
	}

	// Both drained on stop: the group's commits reach the end of each partition.
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	parts := []int{0, 1, 2, 3}
	ends, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{st.sessions: {
		kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2), kafka.LastOffsetOf(3)}}})
	if err != nil {
		t.Fatal(err)
	}
	com, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: st.group, Topics: map[string][]int{st.sessions: parts}})
	if err != nil {
		t.Fatal(err)
	}
	end := map[int]int64{}
	for _, p := range ends.Topics[st.sessions] {
		end[p.Partition] = p.LastOffset
	}
	for _, p := range com.Topics[st.sessions] {
		if p.Error != nil || p.CommittedOffset != end[p.Partition] {
			t.Errorf("partition %d: committed %d (%v), end %d", p.Partition, p.CommittedOffset, p.Error, end[p.Partition])
		}
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sinkGoroutines returns the stacks of goroutines running the sink, its source or a
// consumer group ("" when there are none).
func sinkGoroutines() string {
	buf := make([]byte, 4<<20)
	var out strings.Builder
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "sinkGoroutines") {
			continue
		}
		for _, mark := range []string{"sink/clickhouse.(*Sink)", "sink/clickhouse.(*GroupSource)", "internal/kafkafetch.",
			"kafka-go.(*ConsumerGroup)", "kafka-go.(*Generation)"} {
			if strings.Contains(g, mark) {
				out.WriteString(g + "\n\n")
				break
			}
		}
	}
	return out.String()
}

// optimizeFinal runs OPTIMIZE TABLE sessions FINAL until the table holds want rows or 30 s
// have passed, and returns its rows and distinct session ids. One OPTIMIZE may do nothing: on
// 18.16 it returns without merging a partition whose parts a background merge is already
// merging (the rebalance test saw 40-50 replayed rows left after one OPTIMIZE in ~1 run of 5).
func optimizeFinal(t *testing.T, ctx context.Context, conn driver.Conn, db string, want uint64) (total, distinct uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for round := 1; ; round++ {
		if round > 1 {
			t.Logf("OPTIMIZE FINAL round %d: %d rows left, want %d", round, total, want)
		}
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+db+".sessions FINAL"); err != nil {
			t.Fatal(err)
		}
		total = count(t, ctx, conn, "SELECT count() FROM "+db+".sessions")
		if total <= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	return total, count(t, ctx, conn, "SELECT uniqExact(session_id) FROM "+db+".sessions")
}
