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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Config is the sink's behaviour (connection settings live in ConnConfig).
type Config struct {
	Database     string
	Topics       map[string]Kind // topic name -> table it feeds
	BatchRows    int
	BatchBytes   int
	BatchAge     time.Duration
	MaxInFlight  int // batches decoded or being inserted at once (memory bound)
	RetryInitial time.Duration
	RetryMax     time.Duration
	MaxField     int           // longest string field accepted; longer records are dead-lettered
	DrainTimeout time.Duration // how long shutdown may spend inserting the last batch
}

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

// Fetcher is the part of *kafka.Reader the sink uses.
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Sink runs the consume-batch-insert-commit loop.
type Sink struct {
	cfg     Config
	fetcher Fetcher
	writer  *Writer
	m       *Metrics
	log     *slog.Logger
	newB    func() *Batch
	now     func() time.Time
}

// New returns a sink; w decides the schema features the batches are built for.
func New(cfg Config, f Fetcher, w *Writer, m *Metrics, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sink config: %w", err)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	return &Sink{cfg: cfg, fetcher: f, writer: w, m: m, log: log, now: time.Now,
		newB: func() *Batch { return NewBatch(w.f, cfg.MaxField) }}, nil
}

type fetched struct {
	msg kafka.Message
	err error
}

// Run consumes until ctx ends or an insert fails for good. On cancellation it inserts and
// commits the batch in hand (within DrainTimeout) and returns nil.
func (s *Sink) Run(ctx context.Context) error {
	// Free batches bound memory and the batches in flight: one being filled, the rest queued
	// for or inside the writer.
	free := make(chan *Batch, s.cfg.MaxInFlight+1)
	for i := 0; i < s.cfg.MaxInFlight+1; i++ {
		free <- s.newB()
	}
	full := make(chan *Batch, s.cfg.MaxInFlight)
	writerDone := make(chan struct{})
	var writerErr error
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()

	go func() {
		defer close(writerDone)
		writerErr = s.writeLoop(ctx, drainCtx, full, free)
	}()

	msgs := make(chan fetched, 256)
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	go func() {
		defer close(msgs)
		for {
			m, err := s.fetcher.FetchMessage(fetchCtx)
			select {
			case msgs <- fetched{m, err}:
			case <-fetchCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	cur := <-free
	timer := time.NewTimer(s.cfg.BatchAge)
	defer timer.Stop()
	var hdr map[string]string
	lag := map[string]prometheus.Gauge{}
	ship := func() error {
		if cur.Len() == 0 {
			return nil
		}
		select {
		case full <- cur:
		case <-writerDone:
			return writerErr
		}
		select {
		case cur = <-free:
		case <-writerDone:
			return writerErr
		}
		return nil
	}
	finish := func(runErr error) error {
		if runErr == nil {
			runErr = ship()
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
	for {
		select {
		case f, ok := <-msgs:
			if !ok || f.err != nil {
				if ctx.Err() != nil || !ok {
					return finish(nil)
				}
				return finish(fmt.Errorf("fetch from kafka: %w", f.err))
			}
			kind := s.cfg.Topics[f.msg.Topic]
			m := Message{Topic: f.msg.Topic, Partition: f.msg.Partition, Offset: f.msg.Offset, Key: f.msg.Key, Value: f.msg.Value}
			if kind == KindDeadLetter && len(f.msg.Headers) > 0 {
				if hdr == nil {
					hdr = map[string]string{}
				}
				clear(hdr)
				for _, h := range f.msg.Headers {
					hdr[h.Key] = string(h.Value)
				}
				m.Headers = hdr
			}
			if cur.Len() == 0 {
				timer.Reset(s.cfg.BatchAge)
			}
			cur.Add(kind, &m, s.now())
			if f.msg.HighWaterMark > 0 {
				g := lag[f.msg.Topic]
				if g == nil {
					// WithLabelValues hashes the label on every call; once per topic is enough.
					g = s.m.Lag.WithLabelValues(f.msg.Topic)
					lag[f.msg.Topic] = g
				}
				g.Set(float64(f.msg.HighWaterMark - f.msg.Offset - 1))
			}
			if cur.Len() >= s.cfg.BatchRows || cur.Bytes() >= s.cfg.BatchBytes {
				if err := ship(); err != nil {
					return finish(err)
				}
			}
		case <-timer.C:
			if err := ship(); err != nil {
				return finish(err)
			}
			timer.Reset(s.cfg.BatchAge)
		case <-writerDone:
			return finish(writerErr)
		}
	}
}

// writeLoop inserts up to MaxInFlight batches at once, each through its own Writer, so the
// client building one batch's columns overlaps the server writing another's parts (one insert
// at a time left one of the two sides idle). Offsets are still committed in the order the
// batches were filled, each batch only once its own insert and every earlier one were
// acknowledged; an insert that fails for good stops the loop before anything later commits
// (rows of later batches already inserted are replayed and collapse).
func (s *Sink) writeLoop(ctx, drainCtx context.Context, full <-chan *Batch, free chan<- *Batch) error {
	n := s.cfg.MaxInFlight
	writers := make(chan *Writer, n)
	writers <- s.writer
	for i := 1; i < n; i++ {
		writers <- s.writer.clone()
	}
	type pending struct {
		b    *Batch
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
			s.m.BatchRows.Observe(float64(p.b.Len()))
			wctx := ctx
			if ctx.Err() != nil {
				wctx = drainCtx
			}
			if cerr := s.commit(wctx, p.b); cerr != nil {
				// The rows are in ClickHouse: a failed commit (typically a rebalance that moved
				// the partition) only means they will be replayed and collapse. Not worth stopping for.
				s.m.CommitErrors.Inc()
				s.log.Warn("offset commit failed; the batch's rows will be replayed and collapse", "err", cerr)
			}
			p.b.Reset()
			free <- p.b
		}
		commitDone <- err
	}()
	stop := func() error {
		close(order)
		return <-commitDone
	}
	for {
		var b *Batch
		select {
		case next, ok := <-full:
			if !ok {
				return stop()
			}
			b = next
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
		p := pending{b: b, done: make(chan error, 1)}
		order <- p // never blocks: at most MaxInFlight+1 batches exist, one is being filled
		inserts.Add(1)
		go func() {
			defer inserts.Done()
			p.done <- s.insertBatch(insCtx, insDrain, w, b)
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

func (s *Sink) commit(ctx context.Context, b *Batch) error {
	var msgs []kafka.Message
	for topic, parts := range b.Offsets() {
		for p, off := range parts {
			msgs = append(msgs, kafka.Message{Topic: topic, Partition: p, Offset: off})
		}
	}
	if err := s.fetcher.CommitMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("commit offsets after an acknowledged insert (rows will be replayed and collapse): %w", err)
	}
	s.m.Commits.Inc()
	for k, n := range b.bytesByKind() {
		s.m.Bytes.WithLabelValues(k).Add(float64(n))
	}
	return nil
}
