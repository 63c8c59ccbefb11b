package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/kafkafetch"
)

// Source is where the sink's messages come from: whole fetches of one partition each, and
// commits of what ClickHouse acknowledged.
type Source interface {
	// Run sends fetches on out until ctx ends (then it returns nil), or returns an error when
	// it cannot go on. Commits keep working after Run returned, until the source is closed,
	// so the sink can commit the batches it drains on shutdown.
	Run(ctx context.Context, out chan<- *Fetch) error
	// Commit records, per topic and partition, the offset of the next message to read (the
	// Kafka convention: last consumed + 1) for messages read under lease. It returns an
	// error wrapping ErrRevoked, and commits nothing, when the lease has ended: the
	// partitions may have a new owner, who re-reads from the last commit.
	Commit(ctx context.Context, lease *Lease, offsets map[string]map[int]int64) error
}

// CaughtUpSource is a Source that can tell when it has handed over everything its partitions
// held, so the sink can ship the tail of a backlog without waiting out BatchAge. Sources
// that are not one leave batches to close by rows, bytes and age only.
type CaughtUpSource interface {
	Source
	// CaughtUp reports whether every partition the source reads was, at its latest fetch,
	// read to its high watermark, and every fetch was sent on out.
	CaughtUp() bool
	// CaughtUpNotify receives (it is never closed) when CaughtUp may have turned true.
	CaughtUpNotify() <-chan struct{}
}

// progress counts the partitions of one generation that are not known to be caught up; the
// last one to catch up wakes the sink.
type progress struct {
	behind atomic.Int32
	wake   chan struct{}
}

func newProgress(partitions int, wake chan struct{}) *progress {
	p := &progress{wake: wake}
	p.behind.Store(int32(partitions))
	return p
}

func (p *progress) caughtUp() bool { return p.behind.Load() == 0 }

// partProgress is one partition's part of a progress: not caught up until shown otherwise.
type partProgress struct {
	p      *progress
	caught bool
}

// set records whether the partition is caught up: read to its high watermark with nothing
// fetched and not yet handed over.
func (pp *partProgress) set(caught bool) {
	if caught == pp.caught {
		return
	}
	pp.caught = caught
	if !caught {
		pp.p.behind.Add(1)
		return
	}
	if pp.p.behind.Add(-1) == 0 {
		select {
		case pp.p.wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// ErrRevoked is a commit refused because the lease (consumer-group generation) the messages
// were read under has ended.
var ErrRevoked = errors.New("partitions revoked by a rebalance")

// Lease is the ownership messages were read under: one per consumer-group generation. Once
// it ends (a rebalance), nothing read under it may be committed.
type Lease struct {
	ID   int64 // the generation id, for logs
	done chan struct{}
	once sync.Once
	gen  *kafka.Generation // nil for sources that are not a consumer group
}

// NewLease returns a live lease (for sources other than GroupSource).
func NewLease(id int64) *Lease { return &Lease{ID: id, done: make(chan struct{})} }

// End ends the lease; safe to call more than once.
func (l *Lease) End() { l.once.Do(func() { close(l.done) }) }

// Revoked reports whether the lease has ended.
func (l *Lease) Revoked() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Done is closed when the lease ends.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Fetch is one fetch of one partition: messages in offset order. The messages' keys and
// values stay valid until the fetch is released, which the sink does once the batcher has
// read it and every batch that keeps references into it (Batch.Pins) was acknowledged and
// reset.
type Fetch struct {
	Topic     string
	Partition int
	Msgs      []kafka.Message
	Lease     *Lease

	refs atomic.Int32  // holders: the batcher while it reads the fetch, and each batch with its messages
	pool chan<- *Fetch // where a released fetch goes for reuse (nil: dropped)
	// bufs are the buffers Msgs alias, from bufPool: handed back once the last hold is
	// released (every batch holding the messages was reset), for the next fetches to reuse.
	bufs    [][]byte
	bufPool *kafkafetch.Pool
}

func (f *Fetch) hold() { f.refs.Add(1) }

// release drops one hold; the last one recycles the fetch into its partition's pool (a
// fetch without a pool is left alone: its messages may be the source's to keep).
func (f *Fetch) release() {
	if f.refs.Add(-1) != 0 {
		return
	}
	if f.pool == nil && f.bufPool == nil {
		return // the source's to keep
	}
	clear(f.Msgs) // let the values go; nothing may point into the buffers once they are reused
	f.Msgs = f.Msgs[:0]
	f.bufs = f.bufPool.Put(f.bufs)
	if f.pool == nil {
		return
	}
	select {
	case f.pool <- f:
	default:
	}
}

// GroupConfig configures a GroupSource. Zero durations and sizes take the defaults.
type GroupConfig struct {
	Brokers []string
	GroupID string
	Topics  []string
	Dialer  *kafka.Dialer // nil: kafka.DefaultDialer
	// StartOffset is where a partition without a committed offset starts: kafka.FirstOffset
	// (default) or kafka.LastOffset.
	StartOffset int64
	// HeartbeatInterval of the group membership (default 1 s) and SessionTimeout (default 30 s).
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	// FetchMaxBytes bounds one fetch response (default 1 MiB); MaxWait is how long the broker
	// may hold a fetch of an idle partition (default 1 s).
	FetchMaxBytes int
	MaxWait       time.Duration
	// WatchPartitionChanges rebalances when partitions are added to a topic.
	WatchPartitionChanges bool
	// BufferPoolBytes, when positive, recycles fetch buffers (kafkafetch.Pool) once a fetch
	// is released (see Fetch), keeping at most this many free bytes. Size it to the fetched
	// bytes the batches in flight keep (FetchPoolBytes); 0: fresh buffers per fetch.
	BufferPoolBytes int
}

// Validate returns every problem with c.
func (c *GroupConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("at least one broker is required"))
	}
	if c.GroupID == "" {
		errs = append(errs, errors.New("group id must not be empty"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("at least one topic is required"))
	}
	if c.StartOffset != 0 && c.StartOffset != kafka.FirstOffset && c.StartOffset != kafka.LastOffset {
		errs = append(errs, fmt.Errorf("start offset must be kafka.FirstOffset or kafka.LastOffset, got %d", c.StartOffset))
	}
	return errors.Join(errs...)
}

func (c *GroupConfig) defaults() {
	if c.StartOffset == 0 {
		c.StartOffset = kafka.FirstOffset
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 30 * time.Second
	}
	if c.FetchMaxBytes <= 0 {
		c.FetchMaxBytes = defaultFetchMaxBytes
	}
	if c.MaxWait <= 0 {
		c.MaxWait = time.Second // 250 ms with large fetches gave i/o timeouts (MEASURED.md)
	}
}

// defaultFetchMaxBytes bounds one fetch. Fetches a batch keeps (Batch.Pins) are held until
// its insert is acknowledged, so this does not bound memory (the batches do); it sets how
// many messages cross to the batcher per hand-off (~1,000 session records).
const defaultFetchMaxBytes = 1 << 20

// fetchPool is how many released fetches a partition keeps for reuse.
const fetchPool = 64

// GroupSource consumes the topics as a member of a Kafka consumer group: it joins the group
// itself (kafka.ConsumerGroup) and reads each assigned partition with a kafkafetch.Fetcher,
// a whole fetch at a time, instead of kafka-go's Reader (whose per-message channel hand-offs
// and deadlines cost ~2.3 µs a row).
type GroupSource struct {
	cfg GroupConfig
	m   *Metrics
	log *slog.Logger

	mu       sync.Mutex
	cg       *kafka.ConsumerGroup
	closed   bool
	lease    *Lease // the current generation's
	assigned map[string][]int
	progress *progress     // the current generation's partitions not caught up
	wake     chan struct{} // see CaughtUpNotify
	commitMu sync.Mutex    // one commit request at a time on the coordinator connection
	bufs     *kafkafetch.Pool
}

// NewGroupSource returns a source; nothing connects until Run. m may be nil (no lag or
// skipped-record metrics).
func NewGroupSource(cfg GroupConfig, m *Metrics, log *slog.Logger) (*GroupSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka source config: %w", err)
	}
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	s := &GroupSource{cfg: cfg, m: m, log: log, wake: make(chan struct{}, 1)}
	if cfg.BufferPoolBytes > 0 {
		s.bufs = kafkafetch.NewPool(cfg.BufferPoolBytes)
	}
	return s, nil
}

// Run joins the group and reads the partitions of each generation until ctx ends. The
// generation stays open after Run returns (for the last commits) until Close.
func (s *GroupSource) Run(ctx context.Context, out chan<- *Fetch) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("kafka source is closed")
	}
	if s.cg == nil {
		cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
			ID:                    s.cfg.GroupID,
			Brokers:               s.cfg.Brokers,
			Dialer:                s.cfg.Dialer,
			Topics:                s.cfg.Topics,
			HeartbeatInterval:     s.cfg.HeartbeatInterval,
			SessionTimeout:        s.cfg.SessionTimeout,
			RebalanceTimeout:      s.cfg.SessionTimeout,
			JoinGroupBackoff:      500 * time.Millisecond,
			StartOffset:           s.cfg.StartOffset,
			WatchPartitionChanges: s.cfg.WatchPartitionChanges,
			ErrorLogger:           kafka.LoggerFunc(func(f string, a ...any) { s.log.Debug("kafka group: " + fmt.Sprintf(f, a...)) }),
		})
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("join consumer group %q: %w", s.cfg.GroupID, err)
		}
		s.cg = cg
	}
	cg := s.cg
	s.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait() // every partition reader stopped: no goroutine outlives Run
	for ctx.Err() == nil {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			s.log.Warn("consumer group", "group", s.cfg.GroupID, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		l := &Lease{ID: int64(gen.ID), done: make(chan struct{}), gen: gen}
		assigned := map[string][]int{}
		parts := 0
		for topic, as := range gen.Assignments {
			for _, a := range as {
				assigned[topic] = append(assigned[topic], a.ID)
			}
			parts += len(as)
			sort.Ints(assigned[topic])
		}
		prog := newProgress(parts, s.wake)
		s.mu.Lock()
		s.lease, s.assigned, s.progress = l, assigned, prog
		s.mu.Unlock()
		s.log.Info("consumer group generation", "group", s.cfg.GroupID, "generation", gen.ID, "partitions", assigned)
		var readers sync.WaitGroup
		for topic, as := range gen.Assignments {
			for _, a := range as {
				readers.Add(1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer readers.Done()
					s.readPartition(ctx, l, &partProgress{p: prog}, topic, a, out)
				}()
			}
		}
		// The partition readers are not functions of the generation (one returning would end
		// it, and with it the commits of a draining shutdown); this one is: it ends the lease
		// when the generation ends and holds the generation open until the readers stopped.
		gen.Start(func(gctx context.Context) {
			<-gctx.Done()
			l.End()
			readers.Wait()
			s.mu.Lock()
			if s.lease == l {
				s.assigned, s.progress = nil, nil
			}
			s.mu.Unlock()
		})
	}
	return nil
}

// Assigned returns the partitions of the current generation per topic (nil between
// generations).
func (s *GroupSource) Assigned() map[string][]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assigned
}

// CaughtUp reports whether every partition of the current generation was fetched to its high
// watermark and handed over (false between generations).
func (s *GroupSource) CaughtUp() bool {
	s.mu.Lock()
	p, l := s.progress, s.lease
	s.mu.Unlock()
	return p != nil && !l.Revoked() && p.caughtUp()
}

// CaughtUpNotify receives when the last partition of a generation catches up.
func (s *GroupSource) CaughtUpNotify() <-chan struct{} { return s.wake }

// Commit commits offsets through the generation of lease, unless it has ended. The broker
// refuses a commit of a generation that ended meanwhile as well.
func (s *GroupSource) Commit(_ context.Context, lease *Lease, offsets map[string]map[int]int64) error {
	if lease.Revoked() || lease.gen == nil {
		return fmt.Errorf("commit generation %d: %w", lease.ID, ErrRevoked)
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if err := lease.gen.CommitOffsets(offsets); err != nil {
		if lease.Revoked() {
			return fmt.Errorf("commit generation %d: %w (%w)", lease.ID, ErrRevoked, err)
		}
		return fmt.Errorf("commit generation %d: %w", lease.ID, err)
	}
	return nil
}

// Close leaves the group (after Run returned and the last commits were made).
func (s *GroupSource) Close() error {
	s.mu.Lock()
	cg := s.cg
	s.closed = true
	s.mu.Unlock()
	if cg == nil {
		return nil
	}
	return cg.Close()
}

// readPartition fetches one partition from its committed offset until ctx or the lease ends,
// sending each non-empty fetch whole, and tells pp whether the partition is caught up.
func (s *GroupSource) readPartition(ctx context.Context, l *Lease, pp *partProgress, topic string, a kafka.PartitionAssignment, out chan<- *Fetch) {
	log := s.log.With("topic", topic, "partition", a.ID, "generation", l.ID)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // a revocation interrupts a fetch in flight
		select {
		case <-l.done:
			cancel()
		case <-fctx.Done():
		}
	}()
	f := kafkafetch.New(kafkafetch.Config{Brokers: s.cfg.Brokers, Topic: topic, Partition: a.ID,
		Dialer: s.cfg.Dialer, MaxBytes: s.cfg.FetchMaxBytes, MaxWait: s.cfg.MaxWait, Pool: s.bufs})
	defer f.Close()
	var lag prometheus.Gauge
	var lagShown int64
	if s.m != nil {
		lag = s.m.Lag.WithLabelValues(topic)
		// This partition's share of the topic's lag leaves with it: the new owner reports it.
		defer func() { lag.Add(float64(-lagShown)) }()
	}
	next := a.Offset
	if next < 0 {
		next = s.cfg.StartOffset
	}
	log.Debug("partition assigned", "offset", next)
	pool := make(chan *Fetch, fetchPool)
	size := 256 // messages in the last fetch: a new fetch slice starts at that capacity
	for fctx.Err() == nil {
		var fe *Fetch
		select {
		case fe = <-pool:
		default:
			fe = &Fetch{Topic: topic, Partition: a.ID, Lease: l, pool: pool, Msgs: make([]kafka.Message, 0, size), bufPool: s.bufs}
		}
		var res kafkafetch.Result
		var err error
		fe.Msgs, res, err = f.Fetch(fctx, next, fe.Msgs[:0])
		fe.bufs = append(fe.bufs, res.Bufs...)
		next = res.Next
		if lag != nil && res.HighWaterMark >= 0 {
			n := max(res.HighWaterMark-res.Next, 0)
			lag.Add(float64(n - lagShown))
			lagShown = n
		}
		if len(fe.Msgs) > 0 {
			pp.set(false) // messages in hand: not caught up until the sink has them
			size = max(size, len(fe.Msgs))
			fe.refs.Store(1) // the batcher's hold, released once it has read the fetch
			select {
			case out <- fe:
			case <-fctx.Done():
				return
			}
		} else {
			fe.bufs = s.bufs.Put(fe.bufs) // no message aliases them
			select {
			case pool <- fe:
			default:
			}
		}
		// Set only once the fetch was handed over: the sink, woken by the last partition to
		// catch up, finds every message already in its channel or its batch.
		pp.set(err == nil && res.HighWaterMark >= 0 && res.Next >= res.HighWaterMark)
		if err == nil {
			continue
		}
		if fctx.Err() != nil {
			return
		}
		if n := kafkafetch.Skipped(err); n > 0 {
			if s.m != nil {
				s.m.Skipped.Add(float64(n))
			}
			log.Error("records deleted by retention before the sink read them: skipped", "err", err)
			continue
		}
		log.Warn("fetch", "err", err)
		select {
		case <-fctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ErrRecordGone is a record that is no longer in its partition (retention deleted it, or
// compaction).
var ErrRecordGone = errors.New("record no longer in kafka")

// Reread returns the key and value of the record at offset of topic's partition, read again
// from Kafka with a fetch of its own (a sessions row the server rejected, see Rereader).
func (s *GroupSource) Reread(ctx context.Context, topic string, partition int, offset int64) (key, value []byte, err error) {
	f := kafkafetch.New(kafkafetch.Config{Brokers: s.cfg.Brokers, Topic: topic, Partition: partition,
		Dialer: s.cfg.Dialer, MaxBytes: s.cfg.FetchMaxBytes, MaxWait: 100 * time.Millisecond})
	defer f.Close()
	msgs, _, err := f.Fetch(ctx, offset, nil)
	for i := range msgs {
		if m := &msgs[i]; m.Offset == offset {
			return m.Key, m.Value, nil
		} else if m.Offset > offset {
			return nil, nil, fmt.Errorf("read %s/%d at offset %d: %w (the next record is at %d)", topic, partition, offset, ErrRecordGone, m.Offset)
		}
	}
	if kafkafetch.Skipped(err) > 0 {
		return nil, nil, fmt.Errorf("read %s/%d at offset %d: %w: %w", topic, partition, offset, ErrRecordGone, err)
	}
	if err == nil {
		err = errors.New("no record returned")
	}
	return nil, nil, fmt.Errorf("read %s/%d at offset %d: %w", topic, partition, offset, err)
}
