package clickhouse

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// pacedSource is one partition delivered in fetches of per messages, every interval apart,
// caught up (its high watermark reached, as far as it produced) after each hand-over: a
// finite backlog (interval 0), a busy stream or a trickle.
type pacedSource struct {
	*sliceSource
	interval time.Duration
	prog     *progress
}

func newPacedSource(msgs []kafka.Message, per int, interval time.Duration) *pacedSource {
	s := &pacedSource{sliceSource: newSliceSource(), interval: interval, prog: newProgress(1, make(chan struct{}, 1))}
	s.msgs, s.per = msgs, per
	return s
}

func (s *pacedSource) Run(ctx context.Context, out chan<- *Fetch) error {
	pp := &partProgress{p: s.prog}
	for i := 0; i < len(s.msgs); {
		f := &Fetch{Topic: s.msgs[i].Topic, Partition: s.msgs[i].Partition, Lease: s.lease}
		for ; i < len(s.msgs) && len(f.Msgs) < s.per; i++ {
			f.Msgs = append(f.Msgs, s.msgs[i])
		}
		f.refs.Store(1)
		pp.set(false)
		select {
		case out <- f:
		case <-ctx.Done():
			return nil
		}
		pp.set(true)
		if s.interval > 0 {
			select {
			case <-time.After(s.interval):
			case <-ctx.Done():
				return nil
			}
		}
	}
	<-ctx.Done()
	return nil
}

func (s *pacedSource) CaughtUp() bool                  { return s.prog.caughtUp() }
func (s *pacedSource) CaughtUpNotify() <-chan struct{} { return s.prog.wake }

// runPaced runs a sink of batchRows and batchAge on src until offset n is committed (or
// within, the test fails) and returns its batches by what closed them.
func runPaced(t *testing.T, src *pacedSource, n, batchRows int, batchAge, within time.Duration) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, db, features := testDB(t, ctx, "tail")
	m := NewMetrics(nil)
	w := NewWriter(conn, db, features, m, 10*time.Millisecond, 50*time.Millisecond)
	s, err := New(Config{Database: db, Topics: map[string]Kind{"s": KindSessions},
		BatchRows: batchRows, BatchBytes: 32 << 20, BatchAge: batchAge, MaxInFlight: 2,
		RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxField: 256 << 10},
		src, w, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	wctx, wcancel := context.WithTimeout(ctx, within)
	defer wcancel()
	waitFor(t, wctx, fmt.Sprintf("offset %d committed within %s", n, within), func() bool {
		c := src.committed()
		return len(c) > 0 && c[len(c)-1] == int64(n)
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := count(t, ctx, conn, "SELECT uniqExact(session_id) FROM "+db+".sessions"); got != uint64(n) {
		t.Errorf("%d sessions in ClickHouse, want %d", got, n)
	}
	out := map[string]float64{}
	for _, why := range []string{"rows", "bytes", "age", "tail", "lease", "shutdown"} {
		out[why] = counterValue(m.Batches.WithLabelValues(why))
	}
	return out
}

func sessionMsgs(seed uint64, n int) []kafka.Message {
	ss := genSessions(seed, n)
	msgs := make([]kafka.Message, n)
	for i := range ss {
		msgs[i] = kafka.Message{Topic: "s", Offset: int64(i), Value: ss[i].AppendJSON(nil)}
	}
	return msgs
}

// A finite backlog: once every partition is read to its end and nothing more comes, its last
// partial batch ships at once instead of waiting out batch_age (a minute here).
func TestSinkShipsBacklogTailWithoutWaitingIntegration(t *testing.T) {
	const n = 1300
	src := newPacedSource(sessionMsgs(61, n), 100, 0)
	got := runPaced(t, src, n, 500, time.Minute, 20*time.Second)
	if got["rows"] != 2 || got["tail"] != 1 || got["age"] != 0 {
		t.Errorf("batches by what closed them: %v, want 2 full (rows) and the tail", got)
	}
}

// A stream that keeps the sink busy is caught up after nearly every fetch, but fetches come
// sooner than tailQuiet: batches close full, not after each fetch or each full batch.
func TestSinkBusyStreamBatchesFullIntegration(t *testing.T) {
	const n = 3000
	src := newPacedSource(sessionMsgs(62, n), 30, 10*time.Millisecond) // 3,000 rows/s
	got := runPaced(t, src, n, 500, time.Minute, 40*time.Second)
	if got["rows"] != n/500 || got["tail"] > 0 || got["age"] != 0 {
		t.Errorf("batches by what closed them: %v, want %d full (rows) and nothing else", got, n/500)
	}
}

// A trickle (here 100 rows/s in fetches of 10) is caught up after every fetch, yet it gets one
// insert per batch_age, not one per fetch: only the first batch after start-up (which may be
// the tail of a backlog) ships early.
func TestSinkTrickleWaitsBatchAgeIntegration(t *testing.T) {
	const n, age = 300, 800 * time.Millisecond // 3 s of trickle
	src := newPacedSource(sessionMsgs(63, n), 10, 100*time.Millisecond)
	got := runPaced(t, src, n, 100_000, age, 30*time.Second)
	if got["tail"] > 1 {
		t.Errorf("%v tail batches on a trickle, want at most the first: %v", got["tail"], got)
	}
	// 30 fetches over ~3 s: an insert per fetch would be 30; per batch_age ~4.
	if total := got["age"] + got["tail"]; total > 6 || got["age"] < 2 {
		t.Errorf("batches by what closed them: %v, want ~%d by age (one per %s of trickle)", got, int(3*time.Second/age), age)
	}
}

// GroupSource on the real broker: with 3 topics of 4 partitions each (two of them empty) it is
// not caught up while a fetch waits to be handed over, and it is, and wakes the sink, once
// every record was handed over; new records make it not caught up until they are taken too.
func TestGroupSourceCaughtUpIntegration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := newStream(t, ctx, brokers)
	const n = 3000
	st.produce(t, ctx, st.sessions, sessionMessages(genSessions(64, n)))
	src := groupSource(t, st, []string{st.sessions, st.events, st.dead}, nil)
	defer src.Close()
	out := make(chan *Fetch) // unbuffered: a reader keeps its fetch in hand until taken
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Run(rctx, out) }()
	defer func() {
		stop()
		<-done
	}()
	take := func(want int) {
		t.Helper()
		for got := 0; got < want; {
			select {
			case f := <-out:
				got += len(f.Msgs)
				f.release()
			case <-ctx.Done():
				t.Fatalf("took %d of %d records", got, want)
			}
		}
	}
	// Wait for the first fetch to be waiting (the group has joined), then check.
	var first *Fetch
	select {
	case first = <-out:
	case <-ctx.Done():
		t.Fatal("no fetch")
	}
	got := len(first.Msgs)
	first.release()
	if got < n && src.CaughtUp() {
		t.Fatalf("caught up after %d of %d records", got, n)
	}
	take(n - got)
	waitFor(t, ctx, "caught up after every record was taken", src.CaughtUp)
	select {
	case <-src.CaughtUpNotify():
	case <-time.After(5 * time.Second):
		t.Fatal("caught up without a wake-up")
	}
	st.produce(t, ctx, st.sessions, sessionMessages(genSessions(65, 100)))
	waitFor(t, ctx, "not caught up with new records in hand", func() bool { return !src.CaughtUp() })
	take(100)
	waitFor(t, ctx, "caught up again", src.CaughtUp)
}
