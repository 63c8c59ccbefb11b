package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/alert"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/session"
)

// Topics names the enricher's input and outputs.
type Topics struct {
	Raw, Sessions, Events, DeadLetter string
	Alerts                            string // alert records; required when Config.Alerts is set
}

// Config configures an Enricher. Brokers, GroupID, Topics, Parser and Session are required;
// zero durations take the defaults of Defaults.
type Config struct {
	Brokers []string
	GroupID string
	Topics  Topics
	// Dialer connects the consumer group and partition readers (TLS, SASL); nil is plain TCP.
	Dialer *kafka.Dialer
	// Transport is the producer's transport (TLS, SASL); nil is plain TCP.
	Transport kafka.RoundTripper
	// Compression of the produced record batches (0: none).
	Compression kafka.Compression

	Parser parse.Options
	// Session configures each partition's assembler. Its MaxOpen caps the open sessions of
	// the whole instance (all partitions together), not of each partition.
	Session session.Config

	// Lateness: the watermark trails the newest event time of a partition by this much, so
	// hosts sharing a partition may lag each other that much without their sessions timing
	// out early.
	Lateness time.Duration
	// IdleAdvance: after this much wall-clock silence a partition's watermark follows the
	// wall clock, so its last sessions close.
	IdleAdvance time.Duration
	// CommitInterval is how often each partition commits its safe offset.
	CommitInterval time.Duration
	// DrainTimeout bounds how long shutdown waits for outstanding acknowledgements.
	DrainTimeout time.Duration
	// MaxLine: longer values are dead-lettered (reason too_long) instead of parsed.
	MaxLine int
	// MaxDeadLetterBytes clips the raw bytes kept in a dead letter (the header
	// "original_length" says how long it was), so a huge value cannot exceed the broker's
	// message size limit.
	MaxDeadLetterBytes int
	// MaxUnackedBytes bounds the bytes (keys and values) of outputs handed to the producer
	// and not yet acknowledged by Kafka, summed over the instance's partitions: over it, a
	// partition waits before handling its next fetch. Without it a slow or unreachable broker
	// would let outputs pile up in memory while the raw topic keeps flowing in.
	MaxUnackedBytes int64
	// HeartbeatInterval of the consumer group (MEASURED.md: ~200 ms spreads partitions).
	HeartbeatInterval time.Duration
	// SessionTimeout of the consumer group: how soon a dead instance's partitions move.
	SessionTimeout time.Duration

	// Clock is the wall clock of the idle advance; nil is time.Now. Tests run it faster so a
	// quiet partition closes its sessions in seconds instead of IdleTimeout+Lateness.
	Clock func() time.Time

	// Alerts turns the alert engine on (nil: off): every parsed line is counted by product and
	// normalised severity and by host, lines matching an event rule and sessions that failed
	// AUTH feed a per-partition alert.Engine whose records go to Topics.Alerts under the same
	// acknowledge-then-commit discipline as sessions.
	Alerts       *alert.Config
	AlertMetrics *alert.Metrics // nil: alert.NewMetrics(nil, 1000)

	Logger  *slog.Logger
	Metrics *Metrics
}

// Defaults returns the tunables' defaults (topics, brokers and group are left empty).
func Defaults() Config {
	return Config{
		Session:            session.Defaults(),
		Lateness:           time.Minute,
		IdleAdvance:        30 * time.Second,
		CommitInterval:     time.Second,
		DrainTimeout:       30 * time.Second,
		MaxLine:            64 << 10,
		MaxDeadLetterBytes: 256 << 10,
		MaxUnackedBytes:    64 << 20,
		HeartbeatInterval:  200 * time.Millisecond,
		SessionTimeout:     6 * time.Second,
	}
}

// Validate returns every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no kafka brokers"))
	}
	if c.GroupID == "" {
		errs = append(errs, errors.New("empty consumer group id"))
	}
	for name, v := range map[string]string{"raw": c.Topics.Raw, "sessions": c.Topics.Sessions, "events": c.Topics.Events, "deadletter": c.Topics.DeadLetter} {
		if v == "" {
			errs = append(errs, fmt.Errorf("empty %s topic name", name))
		}
	}
	if c.Topics.Raw != "" && (c.Topics.Raw == c.Topics.Sessions || c.Topics.Raw == c.Topics.Events || c.Topics.Raw == c.Topics.DeadLetter) {
		errs = append(errs, fmt.Errorf("raw topic %q is also an output topic", c.Topics.Raw))
	}
	if c.Lateness < 0 {
		errs = append(errs, fmt.Errorf("negative lateness %s", c.Lateness))
	}
	for name, d := range map[string]time.Duration{"idle advance": c.IdleAdvance, "commit interval": c.CommitInterval, "drain timeout": c.DrainTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s must be positive", name, d))
		}
	}
	if c.MaxUnackedBytes <= 0 {
		errs = append(errs, fmt.Errorf("max unacknowledged output bytes %d must be positive", c.MaxUnackedBytes))
	}
	if c.MaxLine <= 0 || c.MaxDeadLetterBytes <= 0 {
		errs = append(errs, fmt.Errorf("max line %d and max dead-letter bytes %d must be positive", c.MaxLine, c.MaxDeadLetterBytes))
	}
	if err := c.Session.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Alerts != nil {
		if c.Topics.Alerts == "" {
			errs = append(errs, errors.New("empty alerts topic name"))
		} else if c.Topics.Alerts == c.Topics.Raw {
			errs = append(errs, fmt.Errorf("raw topic %q is also the alerts topic", c.Topics.Raw))
		}
		if err := c.Alerts.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Enricher consumes the raw topic in a consumer group and produces sessions, events and dead
// letters. Each assigned partition has its own goroutine, parser, assembler, watermark and
// Tracker; the only shared things are the producer and the coordinator connection.
type Enricher struct {
	cfg    Config
	log    *slog.Logger
	m      *Metrics
	w      *kafka.Writer
	cg     *kafka.ConsumerGroup
	parser *parse.Parser
	cat    *alert.Catalogue // nil when alerts are off
	norm   *alert.Catalogue // normalises the severity of notable events (always set)
	am     *alert.Metrics
	failed atomic.Pointer[error] // a write Kafka refused after retries: stop, never commit it
	open   atomic.Int64          // open sessions over all partitions (the MaxOpen cap)

	unackedBytes atomic.Int64 // output bytes handed to the producer, not yet answered

	mu    sync.Mutex
	parts map[int]*partition // live partitions, for Ready and tests
	ready atomic.Bool
}

// New checks cfg and compiles the parser; nothing connects until Run.
func New(cfg Config) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("enricher config: %w", err)
	}
	// One parser for every partition: compiled once here (vjeantet/grok writes maps while
	// compiling), safe for concurrent use afterwards (enrich/parse).
	parser, err := parse.New(cfg.Parser)
	if err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Enricher{cfg: cfg, log: cfg.Logger, m: cfg.Metrics, parser: parser, parts: map[int]*partition{}}
	e.norm = alert.NewCatalogue(nil)
	if cfg.Alerts != nil {
		e.cat = alert.NewCatalogue(cfg.Alerts.Trusted)
		e.norm = e.cat
		e.am = cfg.AlertMetrics
		if e.am == nil {
			e.am = alert.NewMetrics(nil, 1000)
		}
		// every line an event rule can match must reach the engine as a notable event
		e.cfg.Session.NotableCodes = append(append([]string(nil), cfg.Session.NotableCodes...), e.cat.NotableCodes()...)
	}
	e.w = &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		Async:        true,
		BatchSize:    2000,
		// A batch is one record batch on the broker, which refuses one larger than the topic's
		// max.message.bytes: 1 MiB by default (Apache Kafka and the embedded broker alike;
		// deploy/local raises it to 16 MiB for the shipper's tests, which hid this). The
		// largest single output, a dead letter, is at most 900 KiB plus headers.
		BatchBytes:   outputBatchBytes,
		BatchTimeout: 20 * time.Millisecond,
		MaxAttempts:  10,
		Compression:  cfg.Compression,
		Transport:    cfg.Transport,
		Completion:   e.completion,
	}
	return e, nil
}

// outputBatchBytes bounds one produce batch of the enricher's outputs: the brokers' default
// max.message.bytes (1 MiB), so a default topic takes every batch.
const outputBatchBytes = 1 << 20

// Ready reports whether the enricher is in a consumer group generation.
func (e *Enricher) Ready(context.Context) error {
	if err := e.failure(); err != nil {
		return err
	}
	if !e.ready.Load() {
		return errors.New("not in a consumer group generation yet")
	}
	return nil
}

func (e *Enricher) failure() error {
	if p := e.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// ack is what an output message carries through the writer back to its partition.
type ack struct {
	p      *partition
	offset int64
}

func (e *Enricher) completion(msgs []kafka.Message, err error) {
	e.unacked(msgs)
	if err != nil {
		e.m.writeErrors.Inc()
		err = fmt.Errorf("produce %d messages to %q: %w", len(msgs), msgs[0].Topic, err)
		e.failed.CompareAndSwap(nil, &err)
		e.log.Error("kafka refused output; stopping without committing it", "err", err)
		return
	}
	for i := range msgs {
		if a, ok := msgs[i].WriterData.(*ack); ok {
			a.p.acked(a.offset)
		}
	}
}

// unacked takes msgs, answered by Kafka (acknowledged or failed for good), off the count
// MaxUnackedBytes bounds.
func (e *Enricher) unacked(msgs []kafka.Message) {
	n := int64(0)
	for i := range msgs {
		n += int64(len(msgs[i].Key) + len(msgs[i].Value))
	}
	e.unackedBytes.Add(-n)
	e.m.unacked.Sub(float64(n))
}

// Run consumes until ctx is cancelled, then drains: every partition stops reading, waits for
// its outputs to be acknowledged (up to DrainTimeout) and commits; then the producer closes.
// It returns early with an error when Kafka refuses outputs after retries.
func (e *Enricher) Run(ctx context.Context) error {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                e.cfg.GroupID,
		Brokers:           e.cfg.Brokers,
		Dialer:            e.cfg.Dialer,
		Topics:            []string{e.cfg.Topics.Raw},
		HeartbeatInterval: e.cfg.HeartbeatInterval,
		SessionTimeout:    e.cfg.SessionTimeout,
		RebalanceTimeout:  e.cfg.SessionTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
		Logger:            nil,
		ErrorLogger:       kafka.LoggerFunc(func(f string, a ...any) { e.log.Debug("kafka group: " + fmt.Sprintf(f, a...)) }),
	})
	if err != nil {
		return fmt.Errorf("join consumer group %q: %w", e.cfg.GroupID, err)
	}
	e.cg = cg
	// stop is cancelled on shutdown or on a write failure; partitions watch it.
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	go func() { // a write failure stops everything
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop.Done():
				return
			case <-t.C:
				if e.failure() != nil {
					cancel()
					return
				}
			}
		}
	}()
	for stop.Err() == nil {
		gen, err := cg.Next(stop)
		if err != nil {
			if stop.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			e.log.Warn("consumer group", "err", err)
			select {
			case <-stop.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		e.ready.Store(true)
		assigned := gen.Assignments[e.cfg.Topics.Raw]
		e.log.Info("consumer group generation", "generation", gen.ID, "partitions", len(assigned))
		var commitMu sync.Mutex // one commit request at a time on the coordinator connection
		for _, a := range assigned {
			wg.Add(1)
			gen.Start(func(gctx context.Context) {
				defer wg.Done()
				e.runPartition(stop, gctx, gen, &commitMu, a)
			})
		}
	}
	wg.Wait() // every partition drained and committed (or was revoked)
	e.ready.Store(false)
	cerr := cg.Close()
	werr := e.w.Close()
	if err := e.failure(); err != nil {
		return err
	}
	if ctx.Err() == nil && cerr != nil {
		return fmt.Errorf("close consumer group: %w", cerr)
	}
	if werr != nil {
		return fmt.Errorf("close producer: %w", werr)
	}
	return nil
}

func (e *Enricher) addPart(p *partition) {
	e.mu.Lock()
	e.parts[p.id] = p
	e.mu.Unlock()
}

func (e *Enricher) dropPart(p *partition) {
	e.mu.Lock()
	if e.parts[p.id] == p {
		delete(e.parts, p.id)
	}
	e.mu.Unlock()
}

// Partitions returns the partition numbers this instance holds now.
func (e *Enricher) Partitions() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]int, 0, len(e.parts))
	for id := range e.parts {
		ids = append(ids, id)
	}
	return ids
}

// Outstanding is the number of outputs queued to Kafka and not yet acknowledged, over the
// partitions this instance holds (benchmarks and tests wait for it to reach zero).
func (e *Enricher) Outstanding() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, p := range e.parts {
		p.mu.Lock()
		if p.tr != nil {
			n += p.tr.Outstanding()
		}
		p.mu.Unlock()
	}
	return n
}
