// Package clickhouse owns the sink: it consumes the session, event and dead-letter topics,
// decodes records into reused columnar batches (closed by rows, bytes or age), inserts them
// with retries, dead-letters records it cannot convert, and commits Kafka offsets only after
// ClickHouse acknowledged every row of the batch that holds them, in order.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config is the sink's behaviour (connection settings live in ConnConfig).
type Config struct {
	Database  string
	Topics    map[string]Kind // topic name -> table it feeds
	BatchRows int
	// BatchBytes closes a batch once its inserts hold this many bytes (Batch.Bytes). The size
	// is read every 16 messages and whenever the messages since it was last read hold
	// BatchBytes/64 of values and headers, so a batch may pass it by up to 15 messages or
	// ~BatchBytes/32 (a record's insert bytes are at most about twice its JSON).
	BatchBytes   int // at most MaxBatchBytes
	BatchAge     time.Duration
	MaxInFlight  int // batches decoded or being inserted at once (memory bound)
	RetryInitial time.Duration
	RetryMax     time.Duration
	MaxField     int           // longest string field accepted; longer records are dead-lettered
	DrainTimeout time.Duration // how long shutdown may spend inserting the last batch
}

// MaxBatchBytes bounds Config.BatchBytes. A session column's arena indexes its values with
// 32-bit end offsets (strCol.end: half the memory of int offsets, which were a third of a
// batch's column memory), so an arena must stay under 4 GiB. A batch passes BatchBytes by at
// most BatchBytes/64 of message values plus one message (see BatchBytes), and a Kafka record
// is under 2 GiB (its sizes are int32), so one column holds under 1+1/64+2 GiB.
const MaxBatchBytes = 1 << 30

// Validate returns every problem with c.
func (c *Config) Validate() error {
	var errs []error
	if c.Database == "" {
		errs = append(errs, errors.New("database must not be empty"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("at least one topic is required"))
	}
	for t, k := range c.Topics {
		if k < KindSessions || k > KindAlerts {
			errs = append(errs, fmt.Errorf("topic %q: unknown kind %d", t, k))
		}
	}
	if c.BatchRows <= 0 || c.BatchBytes <= 0 || c.BatchAge <= 0 {
		errs = append(errs, fmt.Errorf("batch limits must be positive (rows %d, bytes %d, age %s)", c.BatchRows, c.BatchBytes, c.BatchAge))
	}
	if c.BatchBytes > MaxBatchBytes {
		errs = append(errs, fmt.Errorf("batch bytes %d exceeds the maximum %d", c.BatchBytes, MaxBatchBytes))
	}
	if c.MaxInFlight <= 0 {
		errs = append(errs, fmt.Errorf("max in flight must be positive, got %d", c.MaxInFlight))
	}
	if c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial {
		errs = append(errs, fmt.Errorf("retry backoff %s..%s is not a positive range", c.RetryInitial, c.RetryMax))
	}
	if c.MaxField <= 0 {
		errs = append(errs, fmt.Errorf("max field must be positive, got %d", c.MaxField))
	}
	return errors.Join(errs...)
}

// Sink runs the consume-batch-insert-commit loop.
type Sink struct {
	cfg    Config
	src    Source
	writer *Writer
	m      *Metrics
	log    *slog.Logger
	newB   func() *Batch
	now    func() time.Time
}

// New returns a sink reading src; w decides the schema features the batches are built for.
func New(cfg Config, src Source, w *Writer, m *Metrics, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sink config: %w", err)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	// A source that can read a record again lets the batches drop the sessions messages they
	// decoded (Batch.Pins): the fetch buffers go back to the pool at once instead of staying
	// with their batch until its insert is acknowledged, ~2 bytes per insert byte (gc.go).
	rr, reread := src.(Rereader)
	if reread {
		w.SetReread(rr.Reread)
	}
	return &Sink{cfg: cfg, src: src, writer: w, m: m, log: log, now: time.Now,
		newB: func() *Batch {
			b := NewBatch(w.f, cfg.MaxField)
			b.SetRereadSessions(reread)
			return b
		}}, nil
}

// Rereader is a Source that can read a record again (see Writer.SetReread).
type Rereader interface {
	Reread(ctx context.Context, topic string, partition int, offset int64) (key, value []byte, err error)
}

// slot is a batch with what the sink needs besides its rows: the lease its messages were
// read under (one per batch: its commit goes through it) and the fetches whose values it
// holds (released when the batch is reset).
type slot struct {
	b       *Batch
	lease   *Lease
	fetches []*Fetch
}

// recycle empties s for reuse and releases the fetches it held.
func (s *slot) recycle() {
	s.b.Reset()
	for _, f := range s.fetches {
		f.release()
	}
	clear(s.fetches)
	s.fetches = s.fetches[:0]
	s.lease = nil
}

// Run consumes until ctx ends or an insert fails for good. On cancellation it inserts and
// commits the batch in hand (within DrainTimeout) and returns nil.
func (s *Sink) Run(ctx context.Context) error {
	// Free batches bound memory and the batches in flight: one being filled, the rest queued
	// for or inside the writer. A fetch is held until every batch holding its messages is
	// reset, so the fetches in memory are bounded by the batches too (plus one per
	// partition on its way in).
	free := make(chan *slot, s.cfg.MaxInFlight+1)
	for i := 0; i < s.cfg.MaxInFlight+1; i++ {
		free <- &slot{b: s.newB()}
	}
	full := make(chan *slot, s.cfg.MaxInFlight)
	writerDone := make(chan struct{})
	var writerErr error
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()

	go func() {
		defer close(writerDone)
		writerErr = s.writeLoop(ctx, drainCtx, full, free)
	}()

	// One hand-off per fetch (1 MiB, or a whole producer batch), not per message. Each
	// partition reader holds one more fetch while it waits to hand it over: with many
	// partitions one is nearly always ready, so a longer queue would only hold memory.
	fetches := make(chan *Fetch, 1)
	srcCtx, stopSrc := context.WithCancel(ctx)
	srcDone := make(chan error, 1)
	go func() { srcDone <- s.src.Run(srcCtx, fetches) }()
	srcStopped := false
	defer func() {
		stopSrc()
		if !srcStopped {
			<-srcDone
		}
	}()

	cur := <-free
	timer := time.NewTimer(s.cfg.BatchAge)
	defer timer.Stop()
	// The tail of a backlog ships without waiting out BatchAge (see tailReady): draining says
	// the sink is working through a backlog -- at start-up, and after a batch closed full --
	// and quiet times the pause in fetches that the tail needs.
	cs, _ := s.src.(CaughtUpSource)
	var caughtUp <-chan struct{}
	if cs != nil {
		caughtUp = cs.CaughtUpNotify()
	}
	draining := true
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	tailReady := func() bool {
		return cs != nil && draining && cur.b.Len() > 0 && len(fetches) == 0 && cs.CaughtUp()
	}
	// A batch slot grows at once to the largest batch shipped so far (whatever closed it), so
	// that filling it does not grow its columns step by step: a slot filled for the first
	// time, or after smaller batches (a live stream closes them by age), would otherwise copy
	// its arenas as they grow. Grow does nothing to a slot that has the room.
	var hint SizeHint
	// sized: the batch in hand was grown to the whole batch its first sixteenth predicts
	// (Batch.GrowFor). Only before any batch shipped: a slot grown to the hint already has
	// about the room a prediction asks for, and growing it again by a few percent copied its
	// arenas and left the old ones as garbage (peak RSS 400 -> 510-600 MiB on 1M records).
	sized := false
	grow := func() { cur.b.Grow(hint); sized = false }
	var hdr map[string]string
	// Batch.Bytes sums two dozen arenas: read after every message it was 1.5% of the sink's
	// CPU (perf, 1M-record benchmark). See Config.BatchBytes for when it is read instead.
	const bytesEvery = 16
	bytesStep := max(1, s.cfg.BatchBytes/64)
	var sinceMsgs, sinceBytes int
	waitKafka, waitCH := s.m.Waits.WithLabelValues("kafka"), s.m.Waits.WithLabelValues("clickhouse")
	// ship hands the batch in hand to the writer; why is what closed it (a Batches label).
	ship := func(why string) error {
		if cur.b.Len() == 0 {
			return nil
		}
		if cur.lease != nil && cur.lease.Revoked() {
			// Nothing of it may be committed and the new owner re-reads it: inserting it
			// would only make duplicates.
			s.m.Revoked.Inc()
			cur.recycle()
			sized = false
			return nil
		}
		s.m.Batches.WithLabelValues(why).Inc()
		hint = hint.Max(cur.b.SizeHint())
		select {
		case full <- cur:
		case <-writerDone:
			return writerErr
		}
		select {
		case cur = <-free:
			grow()
			return nil
		default:
		}
		t0 := time.Now()
		defer func() { waitCH.Add(time.Since(t0).Seconds()) }()
		select {
		case cur = <-free:
			grow()
		case <-writerDone:
			return writerErr
		}
		return nil
	}
	finish := func(runErr error) error {
		stopSrc()
		if runErr == nil {
			runErr = ship("shutdown")
		}
		close(full)
		drainTimer := time.AfterFunc(s.cfg.DrainTimeout, cancelDrain)
		defer drainTimer.Stop()
		<-writerDone
		if writerErr != nil && runErr == nil {
			runErr = writerErr
		}
		return runErr
	}
	// add appends fetch f to the batches, shipping each that fills up.
	add := func(f *Fetch) error {
		defer f.release() // the batcher's hold
		if f.Lease.Revoked() {
			return nil // read under a generation that ended: the partition's new owner reads it
		}
		if cur.lease != f.Lease && cur.b.Len() > 0 {
			// A batch holds one lease's messages: its commit goes through that lease.
			if err := ship("lease"); err != nil {
				return err
			}
		}
		kind := s.cfg.Topics[f.Topic]
		now := s.now()
		held := false
		for i := range f.Msgs {
			km := &f.Msgs[i]
			if cur.b.Len() == 0 {
				timer.Reset(s.cfg.BatchAge)
				cur.lease = f.Lease
			}
			if !held && cur.b.Pins(kind) {
				f.hold()
				cur.fetches = append(cur.fetches, f)
				held = true
			}
			m := Message{Topic: f.Topic, Partition: f.Partition, Offset: km.Offset, Key: km.Key, Value: km.Value}
			hdrBytes := 0
			if kind == KindDeadLetter && len(km.Headers) > 0 {
				if hdr == nil {
					hdr = map[string]string{}
				}
				clear(hdr)
				for _, h := range km.Headers {
					hdr[h.Key] = string(h.Value)
					hdrBytes += len(h.Key) + len(h.Value)
				}
				m.Headers = hdr
			}
			cur.b.Add(kind, &m, now)
			sinceMsgs, sinceBytes = sinceMsgs+1, sinceBytes+len(m.Value)+hdrBytes
			full, why := cur.b.Len() >= s.cfg.BatchRows, "rows"
			if !full && (sinceMsgs >= bytesEvery || sinceBytes >= bytesStep) {
				sinceMsgs, sinceBytes = 0, 0
				nb := cur.b.Bytes()
				full, why = nb >= s.cfg.BatchBytes, "bytes"
				if !full && !sized && hint.sessions.rows == 0 {
					sized = cur.b.GrowFor(s.cfg.BatchRows, s.cfg.BatchBytes, nb)
				}
			}
			if full {
				sinceMsgs, sinceBytes = 0, 0
				draining = true
				if err := ship(why); err != nil {
					return err
				}
				held = false
				if f.Lease.Revoked() {
					return nil // the rest would only fill a batch that is dropped
				}
			}
		}
		return nil
	}
	for {
		select {
		case f := <-fetches:
			if err := add(f); err != nil {
				return finish(err)
			}
			continue
		default:
		}
		var quietC <-chan time.Time
		if tailReady() {
			quiet.Reset(tailQuiet(s.cfg.BatchAge))
			quietC = quiet.C
		}
		t0 := time.Now()
		select {
		case f := <-fetches:
			waitKafka.Add(time.Since(t0).Seconds())
			if err := add(f); err != nil {
				return finish(err)
			}
		case <-caughtUp:
			waitKafka.Add(time.Since(t0).Seconds()) // the loop arms quiet if the tail is ready
		case <-quietC:
			waitKafka.Add(time.Since(t0).Seconds())
			if tailReady() {
				// Every partition was read to its end and nothing came for a while: the
				// backlog is drained, and waiting out BatchAge would only delay its tail.
				draining = false
				if err := ship("tail"); err != nil {
					return finish(err)
				}
			}
		case err := <-srcDone:
			srcStopped = true
			if ctx.Err() != nil {
				return finish(nil)
			}
			if err == nil {
				err = errors.New("stopped")
			}
			return finish(fmt.Errorf("consume from kafka: %w", err))
		case <-ctx.Done():
			return finish(nil)
		case <-timer.C:
			waitKafka.Add(time.Since(t0).Seconds())
			if cur.b.Len() > 0 {
				draining = false // a batch that took BatchAge to fill: a live stream, not a backlog
			}
			if err := ship("age"); err != nil {
				return finish(err)
			}
			timer.Reset(s.cfg.BatchAge)
		case <-writerDone:
			return finish(writerErr)
		}
	}
}

// tailQuiet is how long fetches must pause, with every partition caught up, before the tail of
// a backlog ships early: a stream that is merely keeping up delivers more within it (the
// broker answers a waiting fetch as soon as a record arrives), so a sink that keeps up with a
// busy stream does not cut a small batch after each full one.
func tailQuiet(batchAge time.Duration) time.Duration {
	return min(batchAge/10, 100*time.Millisecond)
}

// writeLoop inserts up to MaxInFlight batches at once, each through its own Writer, so the
// client building one batch's columns overlaps the server writing another's parts (one insert
// at a time left one of the two sides idle). Offsets are still committed in the order the
// batches were filled, each batch only once its own insert and every earlier one were
// acknowledged; an insert that fails for good stops the loop before anything later commits
// (rows of later batches already inserted are replayed and collapse).
func (s *Sink) writeLoop(ctx, drainCtx context.Context, full <-chan *slot, free chan<- *slot) error {
	n := s.cfg.MaxInFlight
	writers := make(chan *Writer, n)
	writers <- s.writer
	for i := 1; i < n; i++ {
		writers <- s.writer.clone()
	}
	type pending struct {
		sl   *slot
		done chan error
	}
	order := make(chan pending, n)
	failed := make(chan struct{})
	var inserts sync.WaitGroup
	defer inserts.Wait()
	// After a failure the inserts still running are abandoned (their batches are not
	// committed), so one retrying an unreachable server cannot keep the sink from stopping.
	insCtx, abortIns := context.WithCancel(ctx)
	defer abortIns()
	insDrain, abortDrain := context.WithCancel(drainCtx)
	defer abortDrain()
	commitDone := make(chan error, 1)
	go func() {
		var err error
		for p := range order {
			if err != nil {
				continue // stopped: later batches are neither committed nor reused
			}
			if err = <-p.done; err != nil {
				close(failed)
				abortIns()
				abortDrain()
				continue
			}
			s.m.BatchRows.Observe(float64(p.sl.b.Len()))
			wctx := ctx
			if ctx.Err() != nil {
				wctx = drainCtx
			}
			if cerr := s.commit(wctx, p.sl); errors.Is(cerr, ErrRevoked) {
				// A rebalance moved (some of) the batch's partitions: the new owner re-reads
				// from the last commit, and the rows inserted here again collapse (the tables
				// are ReplacingMergeTree, and a retried insert carries the same dedup token).
				s.m.Revoked.Inc()
				s.log.Info("batch not committed: its partitions were revoked; the new owner re-reads them", "err", cerr)
			} else if cerr != nil {
				// The rows are in ClickHouse: a failed commit only means they will be replayed
				// and collapse. Not worth stopping for.
				s.m.CommitErrors.Inc()
				s.log.Warn("offset commit failed; the batch's rows will be replayed and collapse", "err", cerr)
			}
			p.sl.recycle()
			free <- p.sl
		}
		commitDone <- err
	}()
	stop := func() error {
		close(order)
		return <-commitDone
	}
	for {
		var sl *slot
		select {
		case next, ok := <-full:
			if !ok {
				return stop()
			}
			sl = next
		case <-failed:
			return stop()
		}
		var w *Writer
		select {
		case <-failed: // checked first: a free writer must not win over a failure
			return stop()
		default:
		}
		select {
		case w = <-writers:
		case <-failed:
			return stop()
		}
		p := pending{sl: sl, done: make(chan error, 1)}
		order <- p // never blocks: at most MaxInFlight+1 batches exist, one is being filled
		inserts.Add(1)
		go func() {
			defer inserts.Done()
			p.done <- s.insertBatch(insCtx, insDrain, w, sl.b)
			writers <- w
		}()
	}
}

// insertBatch inserts b; once the sink is shutting down it finishes within the drain time.
func (s *Sink) insertBatch(ctx, drainCtx context.Context, w *Writer, b *Batch) error {
	wctx := ctx
	if ctx.Err() != nil {
		wctx = drainCtx // shutting down: still finish what was fetched
	}
	err := w.Write(wctx, b)
	if err != nil && ctx.Err() != nil && wctx != drainCtx {
		err = w.Write(drainCtx, b) // cancelled mid-insert: finish it within the drain time
	}
	return err
}

// commit commits, through the batch's lease, the offset after the last message of each
// partition in the batch.
func (s *Sink) commit(ctx context.Context, sl *slot) error {
	b := sl.b
	for k, n := range b.bytesByKind() {
		s.m.Bytes.WithLabelValues(k).Add(float64(n))
	}
	offs := b.Offsets()
	for _, parts := range offs {
		for p, off := range parts {
			parts[p] = off + 1 // the next message to read
		}
	}
	if sl.lease == nil {
		return nil // nothing was fetched (the batch holds no message)
	}
	if err := s.src.Commit(ctx, sl.lease, offs); err != nil {
		return fmt.Errorf("commit offsets after an acknowledged insert (rows will be replayed and collapse): %w", err)
	}
	s.m.Commits.Inc()
	return nil
}
