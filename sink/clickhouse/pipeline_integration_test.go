package clickhouse

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

// sliceSource hands out msgs in fetches of up to per messages (one topic and partition each),
// then waits for the context; it records every commit.
type sliceSource struct {
	msgs    []kafka.Message
	per     int
	lease   *Lease
	mu      sync.Mutex
	commits []int64 // committed next offsets of partition 0, in commit order
	// prepare, when set, sees each fetch just before it is handed out.
	prepare func(*Fetch)
}

func newSliceSource() *sliceSource { return &sliceSource{per: 64, lease: NewLease(1)} }

func (s *sliceSource) Run(ctx context.Context, out chan<- *Fetch) error {
	for i := 0; i < len(s.msgs); {
		f := &Fetch{Topic: s.msgs[i].Topic, Partition: s.msgs[i].Partition, Lease: s.lease}
		for ; i < len(s.msgs) && len(f.Msgs) < s.per && s.msgs[i].Topic == f.Topic && s.msgs[i].Partition == f.Partition; i++ {
			f.Msgs = append(f.Msgs, s.msgs[i])
		}
		if s.prepare != nil {
			s.prepare(f)
		}
		f.refs.Store(1)
		select {
		case out <- f:
		case <-ctx.Done():
			return nil
		}
	}
	<-ctx.Done()
	return nil
}

func (s *sliceSource) Commit(_ context.Context, lease *Lease, offsets map[string]map[int]int64) error {
	if lease.Revoked() {
		return ErrRevoked
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, parts := range offsets {
		for p, off := range parts {
			if p != 0 {
				return fmt.Errorf("commit of %s/%d, only partition 0 was fetched", topic, p)
			}
			s.commits = append(s.commits, off)
		}
	}
	return nil
}

func (s *sliceSource) committed() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.commits...)
}

// pipelineSink runs batches of 500 records with up to three inserts at once.
func pipelineSink(t *testing.T, w *Writer, db string, f Source, m *Metrics) *Sink {
	t.Helper()
	s, err := New(Config{Database: db, Topics: map[string]Kind{"s": KindSessions, "e": KindEvents},
		BatchRows: 500, BatchBytes: 32 << 20, BatchAge: time.Minute, MaxInFlight: 3,
		RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxField: 256 << 10},
		f, w, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// With several inserts in flight, offsets are still committed in the order the batches were
// filled, and only up to what ClickHouse holds.
func TestSinkCommitsInOrderWithInsertsInFlightIntegration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, db, features := testDB(t, ctx, "pipe")
	const n = 6000
	ss := genSessions(51, n)
	f := newSliceSource()
	for i := range ss {
		f.msgs = append(f.msgs, kafka.Message{Topic: "s", Offset: int64(i), Value: ss[i].AppendJSON(nil)})
	}
	m := NewMetrics(nil)
	s := pipelineSink(t, NewWriter(conn, db, features, m, 10*time.Millisecond, 50*time.Millisecond), db, f, m)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	for {
		c := f.committed()
		if len(c) > 0 && c[len(c)-1] == n {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("sink stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("offset %d never committed; commits %v", n, c)
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	c := f.committed()
	if len(c) != n/500 {
		t.Errorf("%d commits, want one per batch (%d): %v", len(c), n/500, c)
	}
	for i := range c {
		if want := int64(500 * (i + 1)); c[i] != want {
			t.Fatalf("commit %d is offset %d, want %d (in order, one per batch): %v", i, c[i], want, c)
		}
	}
	if got := count(t, ctx, conn, "SELECT uniqExact(session_id) FROM "+db+".sessions"); got != n {
		t.Errorf("%d sessions in ClickHouse, want %d", got, n)
	}
}

// An insert that fails for good (here the events table is gone) stops the sink with the error,
// and neither its batch nor any later one is committed, although later batches were inserted
// concurrently.
func TestSinkStopsUncommittedWhenAnInsertFailsIntegration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, db, features := testDB(t, ctx, "pipefail")
	if err := conn.Exec(ctx, "DROP TABLE "+db+".events"); err != nil {
		t.Fatal(err)
	}
	ss := genSessions(53, 4000)
	ev := genEvents(53, 1)[0]
	f := newSliceSource()
	for i := range ss {
		f.msgs = append(f.msgs, kafka.Message{Topic: "s", Offset: int64(len(f.msgs)), Value: ss[i].AppendJSON(nil)})
		if i == 1200 { // in the third batch, offsets 1000..1499
			f.msgs = append(f.msgs, kafka.Message{Topic: "e", Offset: int64(len(f.msgs)), Value: ev.AppendJSON(nil)})
		}
	}
	m := NewMetrics(nil)
	s := pipelineSink(t, NewWriter(conn, db, features, m, 10*time.Millisecond, 50*time.Millisecond), db, f, m)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatal("the sink kept running after an insert failed for good")
	}
	if err == nil || !strings.Contains(err.Error(), "events") {
		t.Fatalf("want the events insert's error, got %v", err)
	}
	c := f.committed()
	for _, off := range c {
		if off > 1000 {
			t.Fatalf("offset %d committed at or past the failed batch (1000..1500): %v", off, c)
		}
	}
	if len(c) > 0 && c[len(c)-1] != 1000 && c[len(c)-1] != 500 {
		t.Errorf("commits %v do not end at a batch boundary before the failure", c)
	}
}

// handoverSource delivers offsets [0, revokeAt) under a first lease, ends it (a rebalance),
// and delivers the whole partition again under a second lease, as the partition's next owner
// would from the last commit (none). It records every commit call.
type handoverSource struct {
	msgs     []kafka.Message
	revokeAt int
	mu       sync.Mutex
	calls    []handoverCommit
}

type handoverCommit struct {
	lease  int64
	offset int64
	ok     bool
}

func (s *handoverSource) Run(ctx context.Context, out chan<- *Fetch) error {
	send := func(l *Lease, from, to int) bool {
		for i := from; i < to; i += 100 {
			f := &Fetch{Topic: "s", Lease: l, Msgs: s.msgs[i:min(i+100, to)]}
			f.refs.Store(1)
			select {
			case out <- f:
			case <-ctx.Done():
				return false
			}
		}
		return true
	}
	first := NewLease(1)
	if !send(first, 0, s.revokeAt) {
		return nil
	}
	first.End()
	if !send(NewLease(2), 0, len(s.msgs)) {
		return nil
	}
	<-ctx.Done()
	return nil
}

func (s *handoverSource) Commit(_ context.Context, lease *Lease, offsets map[string]map[int]int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := !lease.Revoked()
	s.calls = append(s.calls, handoverCommit{lease.ID, offsets["s"][0], ok})
	if !ok {
		return ErrRevoked
	}
	return nil
}

func (s *handoverSource) commits() []handoverCommit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]handoverCommit(nil), s.calls...)
}

// A rebalance in the middle of a batch: the batch in hand is dropped, not inserted (its
// messages' new owner reads them again), no batch mixes the two leases, commits after the
// hand-over go through the new lease in order, and every session arrives.
func TestSinkDropsRevokedBatchIntegration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, db, features := testDB(t, ctx, "handover")
	const n, revokeAt = 3000, 1250 // batches of 500: the third holds 1000..1249 at the hand-over
	ss := genSessions(57, n)
	src := &handoverSource{revokeAt: revokeAt}
	for i := range ss {
		src.msgs = append(src.msgs, kafka.Message{Topic: "s", Offset: int64(i), Value: ss[i].AppendJSON(nil)})
	}
	m := NewMetrics(nil)
	s := pipelineSink(t, NewWriter(conn, db, features, m, 10*time.Millisecond, 50*time.Millisecond), db, src, m)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	waitFor(t, ctx, "offset 3000 committed", func() bool {
		c := src.commits()
		return len(c) > 0 && c[len(c)-1] == handoverCommit{2, n, true}
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	var last int64
	for _, c := range src.commits() {
		switch {
		case c.lease == 1 && c.offset > revokeAt:
			t.Errorf("lease 1 committed offset %d, past what it delivered (%d): a batch mixed the leases", c.offset, revokeAt)
		case c.lease == 1 && c.offset%500 != 0:
			t.Errorf("lease 1 committed offset %d: the batch in hand at the hand-over was inserted and committed", c.offset)
		case c.lease == 2 && c.offset <= last:
			t.Errorf("lease 2 commits out of order: %v", src.commits())
		}
		if c.lease == 2 {
			last = c.offset
		}
	}
	if got := counterValue(m.Revoked); got < 1 {
		t.Errorf("%v batches counted as revoked, want the one in hand at least", got)
	}
	if got := count(t, ctx, conn, "SELECT uniqExact(session_id) FROM "+db+".sessions"); got != n {
		t.Errorf("%d sessions in ClickHouse, want %d", got, n)
	}
	// The dropped batch was not inserted: at most the two full batches of lease 1 went in twice.
	if got := count(t, ctx, conn, "SELECT count() FROM "+db+".sessions"); got > n+1000 {
		t.Errorf("%d rows inserted for %d sessions: the revoked batch in hand was inserted too", got, n)
	}
}

// rereadSource is a sliceSource whose fetches go back to it when released, where their keys
// and values are overwritten at once (a fetch buffer reused by the next fetch), and which reads
// a record again on request (Rereader).
type rereadSource struct {
	*sliceSource
	pool     chan *Fetch
	mu       sync.Mutex
	sent     map[*Fetch][]kafka.Message // the messages of each fetch in flight, as sent
	returned map[string]int             // released fetches per topic
	rereads  int
}

func newRereadSource() *rereadSource {
	s := &rereadSource{sliceSource: newSliceSource(), pool: make(chan *Fetch, 1000), sent: map[*Fetch][]kafka.Message{}, returned: map[string]int{}}
	s.prepare = s.own
	return s
}

// own gives the fetch its own buffers, to come back through the pool, and keeps what was sent.
func (s *rereadSource) own(f *Fetch) {
	f.pool = s.pool
	for i := range f.Msgs {
		m := &f.Msgs[i]
		m.Key, m.Value = bytes.Clone(m.Key), bytes.Clone(m.Value)
	}
	s.mu.Lock()
	s.sent[f] = slices.Clone(f.Msgs)
	s.mu.Unlock()
}

// reuse takes the released fetches back and overwrites their bytes.
func (s *rereadSource) reuse(ctx context.Context) {
	for {
		select {
		case f := <-s.pool:
			s.mu.Lock()
			for _, m := range s.sent[f] {
				for j := range m.Value {
					m.Value[j] = 'x'
				}
				for j := range m.Key {
					m.Key[j] = 'x'
				}
			}
			delete(s.sent, f)
			s.returned[f.Topic]++
			s.mu.Unlock()
		case <-ctx.Done():
			return
		}
	}
}

func (s *rereadSource) Reread(_ context.Context, topic string, partition int, offset int64) ([]byte, []byte, error) {
	s.mu.Lock()
	s.rereads++
	s.mu.Unlock()
	for _, m := range s.msgs {
		if m.Topic == topic && m.Partition == partition && m.Offset == offset {
			return m.Key, m.Value, nil
		}
	}
	return nil, nil, ErrRecordGone
}

// A sink whose source can read records again keeps nothing of the sessions fetches it
// decoded: each goes back to the source as soon as the batcher has read it, while the batch
// holding its rows is still open, and the rows arrive intact although the fetch's bytes were
// overwritten at once. An events fetch stays with its batch (the events columns point into it)
// until the batch's insert is acknowledged.
func TestSinkReleasesSessionsFetchesAtOnceIntegration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, db, features := testDB(t, ctx, "release")
	const n = 3000
	ss := genSessions(57, n)
	evs := genEvents(57, 20)
	src := newRereadSource()
	var sizes uint64
	for i := range ss {
		src.msgs = append(src.msgs, kafka.Message{Topic: "s", Offset: int64(i), Key: []byte(ss[i].Host), Value: ss[i].AppendJSON(nil)})
		sizes += uint64(ss[i].Size)
	}
	for i := range evs {
		src.msgs = append(src.msgs, kafka.Message{Topic: "e", Partition: 1, Offset: int64(i), Value: evs[i].AppendJSON(nil)})
	}
	sessFetches := (n + 63) / 64
	m := NewMetrics(nil)
	w := NewWriter(conn, db, features, m, 10*time.Millisecond, 50*time.Millisecond)
	s, err := New(Config{Database: db, Topics: map[string]Kind{"s": KindSessions, "e": KindEvents},
		BatchRows: 100_000, BatchBytes: 256 << 20, BatchAge: time.Hour, MaxInFlight: 2,
		RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxField: 256 << 10},
		src, w, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go src.reuse(ctx)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	returned := func() (sess, ev int) {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.returned["s"], src.returned["e"]
	}
	giveUp := time.After(20 * time.Second)
	for {
		if sess, _ := returned(); sess == sessFetches {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("sink stopped: %v", err)
		case <-giveUp:
			sess, ev := returned()
			t.Fatalf("%d of %d sessions fetches released before the batch shipped (events %d)", sess, sessFetches, ev)
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(200 * time.Millisecond) // the events fetch would be back by now if it were let go
	if _, ev := returned(); ev != 0 {
		t.Errorf("the events fetch was released before its batch was inserted")
	}
	if got := count(t, ctx, conn, "SELECT count() FROM "+db+".sessions"); got != 0 {
		t.Fatalf("%d rows inserted before shutdown: the batch did not stay open", got)
	}
	stop() // ships the one open batch
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := count(t, ctx, conn, "SELECT uniqExact(session_id) FROM "+db+".sessions WHERE position(session_id, 'xxxx') = 0 AND position(mail_from, 'xxxx') = 0"); got != n {
		t.Errorf("%d intact sessions in ClickHouse, want %d", got, n)
	}
	if got := count(t, ctx, conn, "SELECT sum(size) FROM "+db+".sessions"); got != sizes {
		t.Errorf("sum(size) %d, want %d", got, sizes)
	}
	if got := count(t, ctx, conn, "SELECT count() FROM "+db+".events WHERE position(raw, 'xxxx') = 0"); got != uint64(len(evs)) {
		t.Errorf("%d intact events in ClickHouse, want %d", got, len(evs))
	}
	if src.rereads != 0 {
		t.Errorf("%d records read again, want none (no row was rejected)", src.rereads)
	}
}

// Batches close by bytes within the bound Config.BatchBytes gives, although the size is read
// only every 16 messages or BatchBytes/64 of values: each batch but the last (closed by
// BatchAge) holds at least BatchBytes, and after the message that took it there came at most
// 15 more, with fewer than BatchBytes/64 bytes of values before the last. With 64 KiB batches
// of ~1 KB records the bytes decide when the size is read, with 2 MiB the message count.
func TestSinkClosesBatchesByBytesIntegration(t *testing.T) {
	for _, tc := range []struct{ n, limit int }{{3000, 64 << 10}, {20000, 2 << 20}} {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) { closesByBytes(t, tc.n, tc.limit) })
	}
}

func closesByBytes(t *testing.T, n, limit int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, db, features := testDB(t, ctx, "bytes")
	ss := genSessions(53, n)
	f := newSliceSource()
	for i := range ss {
		f.msgs = append(f.msgs, kafka.Message{Topic: "s", Offset: int64(i), Value: ss[i].AppendJSON(nil)})
	}
	m := NewMetrics(nil)
	// The last, partial batch closes by age. A full one fills in well under BatchAge (the
	// source hands its messages over at once), so no other batch does: if one did, the checks
	// below say it closed before the limit.
	s, err := New(Config{Database: db, Topics: map[string]Kind{"s": KindSessions},
		BatchRows: 1 << 20, BatchBytes: limit, BatchAge: 3 * time.Second, MaxInFlight: 2,
		RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxField: 256 << 10},
		f, NewWriter(conn, db, features, m, 10*time.Millisecond, 50*time.Millisecond), m,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	for {
		if c := f.committed(); len(c) > 0 && c[len(c)-1] == int64(n) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("sink stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("offset %d never committed; commits %v", n, f.committed())
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	c := f.committed()
	if len(c) < 4 || c[len(c)-1] != int64(n) {
		t.Fatalf("commits %v: want several full batches, then the rest, up to offset %d", c, n)
	}
	if got := testutil.ToFloat64(m.Batches.WithLabelValues("age")); got != 1 {
		t.Errorf("%v batches closed by age, want 1 (the last)", got)
	}
	prev := 0
	for i, off := range c[:len(c)-1] {
		// Refill the batch message by message: took is the message after which it held the limit.
		b := NewBatch(features, 256<<10)
		took := -1
		for j := prev; j < int(off); j++ {
			b.Add(KindSessions, &Message{Topic: "s", Offset: int64(j), Value: f.msgs[j].Value}, time.Now())
			if took < 0 && b.Bytes() >= limit {
				took = j
			}
		}
		after := 0
		for j := took + 1; j < int(off)-1; j++ {
			after += len(f.msgs[j].Value)
		}
		switch {
		case took < 0:
			t.Errorf("batch %d (offsets %d-%d): %d bytes, closed before the limit of %d", i, prev, off-1, b.Bytes(), limit)
		case int(off)-1-took > 15:
			t.Errorf("batch %d (offsets %d-%d): %d messages after the one that reached the limit (%d)", i, prev, off-1, int(off)-1-took, took)
		case after >= limit/64:
			t.Errorf("batch %d (offsets %d-%d): %d bytes of values between reaching the limit and the last message", i, prev, off-1, after)
		}
		prev = int(off)
	}
	if got := count(t, ctx, conn, "SELECT uniqExact(session_id) FROM "+db+".sessions"); got != uint64(n) {
		t.Errorf("%d sessions in ClickHouse, want %d", got, n)
	}
}
