// Package produce owns the shipper's Kafka output: it batches raw lines by bytes and time,
// writes them with kafka-go (RequiredAcks all), retries with exponential backoff for as long as
// Kafka is unreachable, bounds the bytes in flight so readers stop when Kafka stops, and tells
// each line's source when Kafka acknowledged it -- the only moment a position may move.
package produce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Acker is told, in order per source, that the line it registered as seq is in Kafka.
type Acker interface {
	Acked(seq uint64)
}

// Config of the producer (built from the YAML config by the command).
type Config struct {
	Brokers   []string
	Topic     string
	Transport *kafka.Transport // TLS, SASL, client id; nil means kafka.DefaultTransport
	// Compression: "none", "gzip", "snappy", "lz4", "zstd".
	Compression string
	// BatchBytes flushes a batch once it holds this many value bytes.
	BatchBytes int
	// Linger flushes a non-full batch this long after its first line.
	Linger time.Duration
	// MaxInFlight bounds the value bytes accepted but not yet acknowledged; Send blocks above it.
	MaxInFlight int
	// MaxMessageBytes is the largest record the broker accepts (message.max.bytes).
	MaxMessageBytes int
	// Retry backoff bounds.
	BackoffMin, BackoffMax time.Duration
	// WriteTimeout bounds one produce request.
	WriteTimeout time.Duration
	Logger       *slog.Logger
	Metrics      *Metrics
}

// Validate returns every problem with c.
func (c *Config) Validate() []error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("produce: no brokers"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("produce: empty topic"))
	}
	if _, err := compressionCodec(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if c.BatchBytes <= 0 || c.MaxInFlight < c.BatchBytes {
		errs = append(errs, fmt.Errorf("produce: need 0 < batch bytes (%d) <= max in flight (%d)", c.BatchBytes, c.MaxInFlight))
	}
	if c.Linger <= 0 || c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin || c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("produce: linger, backoff and write timeout must be positive (backoff max >= min)"))
	}
	return errs
}

func compressionCodec(s string) (kafka.Compression, error) {
	switch s {
	case "none", "":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("produce: unknown compression %q (none, gzip, snappy, lz4, zstd)", s)
}

// Producer is safe for concurrent Send calls. Lines from one goroutine keep their order.
type Producer struct {
	cfg Config
	w   *kafka.Writer
	m   *Metrics
	log *slog.Logger

	mu       sync.Mutex
	cur      *batch
	inflight int           // value bytes accepted, not yet acknowledged
	space    chan struct{} // closed when in-flight bytes drop
	closed   bool
	kick     chan struct{} // capacity 1: a batch became non-empty or full
	free     chan *batch

	stateMu   sync.Mutex
	lastErr   error
	downSince time.Time

	done   chan struct{}
	abortC chan struct{} // closed when Close gives up on unacknowledged lines
}

type item struct {
	acker Acker
	seq   uint64
	input Input
	n     int
}

type batch struct {
	msgs  []kafka.Message
	items []item
	arena []byte
	bytes int
	first time.Time
}

// New starts the producer's sending goroutine. Call Close to drain and stop it.
func New(cfg Config) (*Producer, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	codec, _ := compressionCodec(cfg.Compression)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 1 << 20
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        cfg.Topic,
		Balancer:     kafka.Murmur2Balancer{}, // the Java client's partitioner: same host, same partition, any client
		RequiredAcks: kafka.RequireAll,
		Compression:  codec,
		// We hand the writer whole batches; its own timer only has to release them.
		BatchTimeout: time.Millisecond,
		// kafka-go preallocates BatchSize messages per partition batch: ~4k lines of ~200
		// bytes fill the 1 MiB request limit anyway.
		BatchSize: 4096,
		// A request may hold up to one maximum-size record plus overhead.
		BatchBytes:   int64(cfg.MaxMessageBytes),
		MaxAttempts:  3,
		WriteTimeout: cfg.WriteTimeout,
		ReadTimeout:  cfg.WriteTimeout,
	}
	if cfg.Transport != nil {
		w.Transport = cfg.Transport
	}
	p := &Producer{
		cfg: cfg, w: w, m: cfg.Metrics, log: cfg.Logger,
		space:  make(chan struct{}),
		kick:   make(chan struct{}, 1),
		free:   make(chan *batch, 2),
		done:   make(chan struct{}),
		abortC: make(chan struct{}),
	}
	p.cur = p.newBatch()
	go p.run()
	return p, nil
}

func (p *Producer) newBatch() *batch {
	select {
	case b := <-p.free:
		return b
	default:
	}
	return &batch{arena: make([]byte, 0, p.cfg.BatchBytes+p.cfg.BatchBytes/4)}
}

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("producer closed")

// Send queues one line. value is copied; headers must not be modified afterwards (sources
// share one headers slice across many lines). It blocks while the in-flight bound is reached
// (that is the backpressure that stops readers when Kafka is down) and returns ctx.Err() if
// ctx ends first. acker may be nil.
func (p *Producer) Send(ctx context.Context, in Input, key string, headers []kafka.Header, value []byte, acker Acker, seq uint64) error {
	n := len(value)
	p.mu.Lock()
	for p.inflight > 0 && p.inflight+n > p.cfg.MaxInFlight && !p.closed {
		ch := p.space
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
	}
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	b := p.cur
	start := len(b.arena)
	b.arena = append(b.arena, value...)
	b.msgs = append(b.msgs, kafka.Message{
		Key:     keyBytes(b, key),
		Value:   b.arena[start:len(b.arena):len(b.arena)],
		Headers: headers,
	})
	b.items = append(b.items, item{acker: acker, seq: seq, input: in, n: n})
	b.bytes += n
	p.inflight += n
	wasEmpty := len(b.msgs) == 1
	if wasEmpty {
		b.first = time.Now()
	}
	full := b.bytes >= p.cfg.BatchBytes
	p.mu.Unlock()
	p.m.inflight.Add(float64(n))
	if wasEmpty || full {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// keyBytes reuses the previous message's key slice when the host repeats, which is the
// common case, so a key costs no allocation per line.
func keyBytes(b *batch, key string) []byte {
	if n := len(b.msgs); n > 0 && string(b.msgs[n-1].Key) == key {
		return b.msgs[n-1].Key
	}
	return []byte(key)
}

// run is the single sending goroutine: one batch at a time, so acknowledgements reach every
// source in the order it sent.
func (p *Producer) run() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		<-p.kick
		p.mu.Lock()
		b := p.cur
		closed := p.closed
		if len(b.msgs) == 0 {
			p.mu.Unlock()
			if closed {
				return
			}
			continue
		}
		wait := p.cfg.Linger - time.Since(b.first)
		full := b.bytes >= p.cfg.BatchBytes
		p.mu.Unlock()
		if !full && !closed && wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-p.kick: // full or closing
				timer.Stop()
			}
		}
		p.mu.Lock()
		b = p.cur
		p.cur = p.newBatch()
		p.mu.Unlock()
		for i := range b.items {
			p.m.sent(b.items[i].input, b.items[i].n)
		}
		p.write(b)
		p.release(b)
		// Anything queued meanwhile gets its own round.
		p.mu.Lock()
		more := len(p.cur.msgs) > 0 || p.closed
		p.mu.Unlock()
		if more {
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
	}
}

// write sends b until every message is acknowledged, retrying failures with exponential
// backoff. It gives up only when the producer is aborted.
func (p *Producer) write(b *batch) {
	msgs := b.msgs
	backoff := p.cfg.BackoffMin
	for {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.WriteTimeout*4)
		err := p.w.WriteMessages(ctx, msgs...)
		cancel()
		if err == nil {
			p.up()
			return
		}
		p.m.sendErrors.Inc()
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(msgs) {
			// Keep only the failed messages, in order: per key order is preserved because a
			// key's messages share a partition, hence a request, hence a fate.
			var keep []kafka.Message
			for i, e := range werrs {
				if e != nil {
					keep = append(keep, msgs[i])
					if err == nil || errors.As(err, &werrs) {
						err = e
					}
				}
			}
			msgs = keep
		}
		p.down(err, backoff)
		select {
		case <-time.After(backoff):
		case <-p.abortC:
			return
		}
		p.m.retries.Inc()
		backoff *= 2
		if backoff > p.cfg.BackoffMax {
			backoff = p.cfg.BackoffMax
		}
	}
}

// release acknowledges every line of b to its source and frees its bytes.
func (p *Producer) release(b *batch) {
	if p.aborted() {
		return // not acknowledged: positions must not move
	}
	for i := range b.items {
		it := &b.items[i]
		if it.acker != nil {
			it.acker.Acked(it.seq)
		}
		p.m.acked(it.input, it.n)
	}
	p.mu.Lock()
	p.inflight -= b.bytes
	close(p.space)
	p.space = make(chan struct{})
	p.mu.Unlock()
	p.m.inflight.Sub(float64(b.bytes))
	clear(b.msgs)
	clear(b.items)
	b.msgs, b.items, b.arena, b.bytes = b.msgs[:0], b.items[:0], b.arena[:0], 0
	select {
	case p.free <- b:
	default:
	}
}

func (p *Producer) up() {
	p.stateMu.Lock()
	if p.lastErr != nil {
		p.log.Info("kafka reachable again", "down_for", time.Since(p.downSince).Round(time.Millisecond))
	}
	p.lastErr = nil
	p.stateMu.Unlock()
	p.m.up.Set(1)
}

func (p *Producer) down(err error, retryIn time.Duration) {
	p.stateMu.Lock()
	if p.lastErr == nil {
		p.downSince = time.Now()
	}
	p.lastErr = err
	p.stateMu.Unlock()
	p.m.up.Set(0)
	p.log.Warn("kafka write failed; retrying", "err", err, "retry_in", retryIn)
}

// Ready is the /readyz check: nil while the last write succeeded.
func (p *Producer) Ready() error {
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	if p.lastErr != nil {
		return fmt.Errorf("kafka unreachable for %s: %w", time.Since(p.downSince).Round(time.Second), p.lastErr)
	}
	return nil
}

// InFlight returns the value bytes accepted but not yet acknowledged.
func (p *Producer) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inflight
}

func (p *Producer) aborted() bool {
	select {
	case <-p.abortC:
		return true
	default:
		return false
	}
}

// Close stops accepting lines and drains what was accepted, retrying until ctx ends. Lines
// still unacknowledged when ctx ends are abandoned without acknowledgement, so their sources
// re-read them on the next start. It returns ctx.Err() in that case.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	close(p.space) // wake blocked senders; they see closed
	p.space = make(chan struct{})
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	var err error
	select {
	case <-p.done:
	case <-ctx.Done():
		err = ctx.Err()
		close(p.abortC)
		<-p.done
	}
	if cerr := p.w.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close kafka writer: %w", cerr)
	}
	return err
}
