// Package produce owns the shipper's Kafka output: it batches raw lines by bytes and time,
// encodes them into Kafka record batches itself and writes them with kafka-go's low-level
// client (RequiredAcks all), retries with exponential backoff for as long as Kafka is
// unreachable, bounds the bytes in flight so readers stop when Kafka stops, and tells each
// line's source when Kafka acknowledged it -- the only moment a position may move.
//
// It is not tied to files: any stage that must know when Kafka has a record (the enricher's
// output, for instance) can use it. Usage:
//
//	p, err := produce.New(produce.Config{Brokers: ..., Topic: ..., Compression: "zstd", ...})
//	err = p.Send(ctx, produce.InputFile, key, headers, value, acker, seq) // blocks at the in-flight bound
//	...
//	err = p.Close(ctx) // drains; unacknowledged lines are never acknowledged
//
// Keys are partitioned with kafka-go's Murmur2Balancer (the Java client's partitioner), so a
// key lands on the same partition as with kafka.Writer or any Java producer. At most one
// produce request per partition is in flight at a time, so records of one key keep their
// order even across retries; several partitions' requests of one batch go out concurrently,
// and the next batch is encoded and compressed while the previous one waits for its acks.
package produce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// Acker is told, in order per source, that the line it registered as seq is in Kafka.
type Acker interface {
	Acked(seq uint64)
}

// RangeAcker is an Acker that can take a run of consecutive sequence numbers at once; the
// producer uses it when available (per-line acknowledgement was a measurable share of CPU).
type RangeAcker interface {
	Acker
	// AckedRange is Acked for every seq in first..last (inclusive).
	AckedRange(first, last uint64)
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
	// MaxMessageBytes is the largest record set (one request's records of one partition) the
	// broker accepts (message.max.bytes). The producer lowers it to the topic's
	// max.message.bytes when the broker reports a smaller one.
	MaxMessageBytes int
	// Retry backoff bounds.
	BackoffMin, BackoffMax time.Duration
	// WriteTimeout bounds one produce request.
	WriteTimeout time.Duration
	// ZstdLevel is the zstd encoder level when Compression is "zstd": "fastest" (empty),
	// "default", "better" or "best". Fastest: measured about half the CPU of default on log
	// lines with the same ratio (BenchmarkEncodeBatch).
	ZstdLevel string
	Logger    *slog.Logger
	Metrics   *Metrics
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
	if _, err := zstdLevel(c.ZstdLevel); err != nil {
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

func zstdLevel(s string) (zstd.EncoderLevel, error) {
	switch s {
	case "fastest", "":
		return zstd.SpeedFastest, nil
	case "default":
		return zstd.SpeedDefault, nil
	case "better":
		return zstd.SpeedBetterCompression, nil
	case "best":
		return zstd.SpeedBestCompression, nil
	}
	return 0, fmt.Errorf("produce: unknown zstd level %q (fastest, default, better, best)", s)
}

// metadataRefresh is how long a partition count is trusted before asking again (from
// kafka-go's metadata cache, so no round trip to the broker in the common case).
const metadataRefresh = 5 * time.Second

// Producer is safe for concurrent Send calls. Lines from one goroutine keep their order.
type Producer struct {
	cfg    Config
	client *kafka.Client
	codec  *codec
	m      *Metrics
	log    *slog.Logger

	mu       sync.Mutex
	cur      *batch
	inflight int           // value bytes accepted, not yet acknowledged
	space    chan struct{} // closed when in-flight bytes drop
	closed   bool
	kick     chan struct{} // capacity 1: a batch became non-empty or full
	free     chan *batch

	// Owned by the encoding goroutine.
	maxMsg  int  // bound of one encoded record set
	limitOK bool // the topic's max.message.bytes was asked for
	nparts  int
	partsAt time.Time
	partIDs []int
	partOf  map[string]int
	byPart  [][]int32
	recs    []byte

	encoded chan *batch // encoder -> sender, in order

	stateMu   sync.Mutex
	lastErr   error
	downSince time.Time

	done   chan struct{}
	abortC chan struct{} // closed when Close gives up on unacknowledged lines
}

// entry is one accepted line: its value lives in the batch arena.
type entry struct {
	acker   Acker
	seq     uint64
	key     string
	headers []kafka.Header
	off, n  int32
	input   Input
}

// request is one encoded record set for one partition: b.out[start:end].
type request struct {
	partition  int
	start, end int
}

type batch struct {
	entries []entry
	arena   []byte
	bytes   int
	first   time.Time
	reqs    []request
	out     []byte
}

// New starts the producer's goroutines. Call Close to drain and stop them.
func New(cfg Config) (*Producer, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	level, _ := zstdLevel(cfg.ZstdLevel)
	cd, err := newCodec(cfg.Compression, level, zstdWindow, true)
	if err != nil {
		return nil, err
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout}
	if cfg.Transport != nil {
		client.Transport = cfg.Transport
	}
	p := &Producer{
		cfg: cfg, client: client, codec: cd, m: cfg.Metrics, log: cfg.Logger, maxMsg: cfg.MaxMessageBytes,
		space:   make(chan struct{}),
		kick:    make(chan struct{}, 1),
		free:    make(chan *batch, 2), // filling, encoding and sending batches are the only live ones
		encoded: make(chan *batch, 1),
		partOf:  map[string]int{},
		done:    make(chan struct{}),
		abortC:  make(chan struct{}),
	}
	p.cur = p.newBatch()
	go p.encodeLoop()
	go p.sendLoop()
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

// Send queues one record. value is copied; key and headers are kept until the record is
// acknowledged and must not be modified (sources share one headers slice across many lines).
// It blocks while the in-flight bound is reached (that is the backpressure that stops readers
// when Kafka is down) and returns ctx.Err() if ctx ends first. acker may be nil; otherwise
// acker.Acked(seq) is called once Kafka has the record, in Send order per acker.
func (p *Producer) Send(ctx context.Context, in Input, key string, headers []kafka.Header, value []byte, acker Acker, seq uint64) error {
	n := len(value)
	p.mu.Lock()
	// Wait while the in-flight bound is reached, and while the filling batch is full and not
	// yet taken by the encoder: a batch never outgrows its preallocated arena.
	for (p.inflight > 0 && p.inflight+n > p.cfg.MaxInFlight || p.cur.bytes >= p.cfg.BatchBytes) && !p.closed {
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
	off := len(b.arena)
	b.arena = append(b.arena, value...)
	b.entries = append(b.entries, entry{acker: acker, seq: seq, key: key, headers: headers, off: int32(off), n: int32(n), input: in})
	b.bytes += n
	p.inflight += n
	wasEmpty := len(b.entries) == 1
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

// encodeLoop takes batches when full or lingered, encodes them and hands them to sendLoop
// in order. Encoding the next batch overlaps with the previous one waiting for its acks.
func (p *Producer) encodeLoop() {
	defer close(p.encoded)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		<-p.kick
		p.mu.Lock()
		b := p.cur
		closed := p.closed
		if len(b.entries) == 0 {
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
		close(p.space) // senders waiting for a batch with room
		p.space = make(chan struct{})
		p.mu.Unlock()
		if !p.encodeRetrying(b) {
			return // aborted
		}
		p.m.count(b.entries, p.m.sent)
		select {
		case p.encoded <- b:
		case <-p.abortC:
			return
		}
		// Anything queued meanwhile gets its own round.
		p.mu.Lock()
		more := len(p.cur.entries) > 0 || p.closed
		p.mu.Unlock()
		if more {
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
	}
}

// encodeRetrying encodes b, waiting with backoff while the partition count is unknown (Kafka
// unreachable at start-up, topic missing). It returns false when the producer is aborted.
func (p *Producer) encodeRetrying(b *batch) bool {
	backoff := p.cfg.BackoffMin
	for {
		err := p.encode(b)
		if err == nil {
			return true
		}
		p.m.sendErrors.Inc()
		p.down(err, backoff)
		select {
		case <-time.After(backoff):
		case <-p.abortC:
			return false
		}
		p.m.retries.Inc()
		backoff = min(backoff*2, p.cfg.BackoffMax)
	}
}

// partitions returns the topic's partition count, refreshed every metadataRefresh. A failed
// refresh keeps the known count (the produce requests report a real outage themselves).
func (p *Producer) partitions() (int, error) {
	if p.nparts > 0 && time.Since(p.partsAt) < metadataRefresh {
		return p.nparts, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.WriteTimeout)
	defer cancel()
	md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.cfg.Topic}})
	if err != nil {
		if p.nparts > 0 {
			p.partsAt = time.Now() // ask again after another metadataRefresh
			return p.nparts, nil
		}
		return 0, fmt.Errorf("metadata of topic %q: %w", p.cfg.Topic, err)
	}
	n := 0
	for _, t := range md.Topics {
		if t.Name == p.cfg.Topic {
			if t.Error != nil {
				return 0, fmt.Errorf("metadata of topic %q: %w", p.cfg.Topic, t.Error)
			}
			n = len(t.Partitions)
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("metadata of topic %q: %w", p.cfg.Topic, kafka.UnknownTopicOrPartition)
	}
	if n != p.nparts {
		if p.nparts != 0 {
			p.log.Warn("partition count changed: keys may move to other partitions", "topic", p.cfg.Topic, "was", p.nparts, "now", n)
		}
		p.nparts = n
		p.partIDs = p.partIDs[:0]
		for i := range n {
			p.partIDs = append(p.partIDs, i)
		}
		clear(p.partOf)
		p.byPart = make([][]int32, n)
	}
	p.partsAt = time.Now()
	if !p.limitOK {
		p.limitOK = true
		p.topicLimit()
	}
	return n, nil
}

// topicLimit lowers the record-set bound to the topic's max.message.bytes when that is
// smaller than configured: otherwise the broker would reject every larger set (MESSAGE_TOO_LARGE)
// and the producer could only retry them forever. Best effort: a broker that does not answer
// (or denies DescribeConfigs) leaves the configured bound.
func (p *Producer) topicLimit() {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.WriteTimeout)
	defer cancel()
	res, err := p.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: p.cfg.Topic, ConfigNames: []string{"max.message.bytes"},
	}}})
	if err != nil {
		p.log.Info("cannot read the topic's max.message.bytes; keeping max_message_bytes", "topic", p.cfg.Topic, "err", err)
		return
	}
	for _, r := range res.Resources {
		if r.Error != nil {
			p.log.Info("cannot read the topic's max.message.bytes; keeping max_message_bytes", "topic", p.cfg.Topic, "err", r.Error)
			continue
		}
		for _, e := range r.ConfigEntries {
			n, err := strconv.Atoi(e.ConfigValue)
			if e.ConfigName != "max.message.bytes" || err != nil || n <= 0 {
				continue
			}
			if n < p.maxMsg {
				p.log.Warn("topic accepts smaller record sets than max_message_bytes; using its limit", "topic", p.cfg.Topic, "max.message.bytes", n, "max_message_bytes", p.maxMsg)
				p.maxMsg = n
			}
		}
	}
}

// encode groups b's records by partition (murmur2 of the key, as kafka.Murmur2Balancer and
// the Java client do) and encodes one record set per partition, split in halves while a
// compressed set exceeds MaxMessageBytes.
func (p *Producer) encode(b *batch) error {
	if _, err := p.partitions(); err != nil {
		return err
	}
	b.reqs, b.out = b.reqs[:0], b.out[:0]
	for i := range p.byPart {
		p.byPart[i] = p.byPart[i][:0]
	}
	lastKey, part := "", -1
	for i := range b.entries {
		k := b.entries[i].key
		if part < 0 || k != lastKey {
			var ok bool
			if part, ok = p.partOf[k]; !ok {
				part = kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: []byte(k)}, p.partIDs...)
				if len(p.partOf) > 10000 {
					clear(p.partOf) // bound the cache for collectors with very many hosts
				}
				p.partOf[k] = part
			}
			lastKey = k
		}
		p.byPart[part] = append(p.byPart[part], int32(i))
	}
	ms := time.Now().UnixMilli()
	for part, idxs := range p.byPart {
		if len(idxs) > 0 {
			if err := p.encodePart(b, part, idxs, ms); err != nil {
				return err
			}
		}
	}
	return nil
}

// recsChunk is how many encoded record bytes are handed to the compressor at a time: large
// enough that per-write overhead vanishes, small enough that no batch-sized copy is kept.
const recsChunk = 128 << 10

func (p *Producer) encodePart(b *batch, part int, idxs []int32, ms int64) error {
	start := len(b.out)
	p.codec.begin(b.out)
	recs := p.recs[:0]
	for i, ix := range idxs {
		e := &b.entries[ix]
		recs = appendRecord(recs, i, e.key, e.headers, b.arena[e.off:e.off+e.n:e.off+e.n])
		if len(recs) >= recsChunk {
			p.codec.write(recs)
			recs = recs[:0]
		}
	}
	p.codec.write(recs)
	p.recs = recs[:0]
	out, err := p.codec.finish(len(idxs), ms)
	if err != nil {
		b.out = out
		return err
	}
	if len(out)-start-sizePrefix > p.maxMsg && len(idxs) > 1 {
		b.out = out[:start]
		h := len(idxs) / 2
		if err := p.encodePart(b, part, idxs[:h], ms); err != nil {
			return err
		}
		return p.encodePart(b, part, idxs[h:], ms)
	}
	b.out = out
	b.reqs = append(b.reqs, request{partition: part, start: start, end: len(out)})
	return nil
}

// sendLoop writes encoded batches one at a time, in order, and acknowledges them.
func (p *Producer) sendLoop() {
	defer close(p.done)
	for b := range p.encoded {
		if p.write(b) {
			p.release(b)
		}
	}
}

// write sends every request of b until each is acknowledged, retrying failures with
// exponential backoff: partitions concurrently, one request at a time per partition, so a
// key's records cannot overtake each other. It returns false when the producer is aborted.
func (p *Producer) write(b *batch) bool {
	// reqs are grouped by partition, in order: each group is [lo, hi) of b.reqs.
	type group struct{ next, hi int }
	var groups []group
	for i := 0; i < len(b.reqs); {
		j := i + 1
		for j < len(b.reqs) && b.reqs[j].partition == b.reqs[i].partition {
			j++
		}
		groups = append(groups, group{i, j})
		i = j
	}
	backoff := p.cfg.BackoffMin
	for {
		var firstErr error
		if len(groups) == 1 {
			g := &groups[0]
			g.next, firstErr = p.sendRun(b, g.next, g.hi)
		} else {
			var wg sync.WaitGroup
			errs := make([]error, len(groups))
			for gi := range groups {
				g := &groups[gi]
				if g.next == g.hi {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					g.next, errs[gi] = p.sendRun(b, g.next, g.hi)
				}()
			}
			wg.Wait()
			firstErr = errors.Join(errs...)
		}
		if firstErr == nil {
			p.up()
			return true
		}
		p.m.sendErrors.Inc()
		p.down(firstErr, backoff)
		if errors.Is(firstErr, kafka.MessageSizeTooLarge) || errors.Is(firstErr, kafka.RecordListTooLarge) {
			// Retrying cannot help, and dropping lines is not allowed: say what to change.
			p.log.Error("the broker rejects a record set as too large: lower ship.max_message_bytes (or raise the topic's max.message.bytes); the lines are kept and retried", "err", firstErr, "max_message_bytes", p.cfg.MaxMessageBytes)
		}
		select {
		case <-time.After(backoff):
		case <-p.abortC:
			return false
		}
		p.m.retries.Inc()
		backoff = min(backoff*2, p.cfg.BackoffMax)
	}
}

// sendRun sends b.reqs[i:hi] (one partition) one after the other and returns the index of
// the first request not acknowledged.
func (p *Producer) sendRun(b *batch, i, hi int) (int, error) {
	for ; i < hi; i++ {
		r := &b.reqs[i]
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.WriteTimeout)
		res, err := p.client.RawProduce(ctx, &kafka.RawProduceRequest{
			Topic: p.cfg.Topic, Partition: r.partition, RequiredAcks: kafka.RequireAll,
			RawRecords: protocol.RawRecordSet{Reader: bytes.NewReader(b.out[r.start:r.end])},
		})
		cancel()
		if err == nil && res.Error != nil {
			err = res.Error
		}
		if err == nil {
			for _, e := range res.RecordErrors {
				err = e
				break
			}
		}
		if err != nil {
			return i, fmt.Errorf("produce to %s/%d: %w", p.cfg.Topic, r.partition, err)
		}
	}
	return i, nil
}

// release acknowledges every line of b to its source and frees its bytes.
func (p *Producer) release(b *batch) {
	// Runs of one acker with consecutive sequence numbers go out as one range.
	for i := 0; i < len(b.entries); {
		e := &b.entries[i]
		j := i + 1
		for j < len(b.entries) && b.entries[j].acker == e.acker && b.entries[j].seq == b.entries[j-1].seq+1 {
			j++
		}
		if e.acker != nil {
			first, last := e.seq, b.entries[j-1].seq
			if ra, ok := e.acker.(RangeAcker); ok {
				ra.AckedRange(first, last)
			} else {
				for s := first; s <= last; s++ {
					e.acker.Acked(s)
				}
			}
		}
		i = j
	}
	p.m.count(b.entries, p.m.acked)
	p.mu.Lock()
	p.inflight -= b.bytes
	close(p.space)
	p.space = make(chan struct{})
	p.mu.Unlock()
	p.m.inflight.Sub(float64(b.bytes))
	clear(b.entries)
	b.entries, b.arena, b.bytes, b.reqs, b.out = b.entries[:0], b.arena[:0], 0, b.reqs[:0], b.out[:0]
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
	if t, ok := p.client.Transport.(*kafka.Transport); ok && t != nil {
		t.CloseIdleConnections()
	}
	return err
}
