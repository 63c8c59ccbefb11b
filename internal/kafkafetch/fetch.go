// Package kafkafetch reads one partition of a Kafka topic a whole fetch at a time, without
// kafka-go's Reader.
//
// Why: the Reader costs about 2.5 µs per message on top of decoding it (a read deadline set
// per message, statistics, and two goroutine hand-offs per message through channels), and
// kafka-go's Conn.ReadBatch still ~1.4 µs (a 4 KiB bufio read every few records and three
// allocations per record). A Fetcher sends its own fetch v4 requests on the socket kafka-go's
// Dialer connected and authenticated (TLS, SASL), reads each response into one buffer and
// slices the records out of it in place (wire.go): ~0.5 µs per record including the socket
// reads, in BenchmarkFetch. Brokers without fetch v4 (before Kafka 0.11) and old-format
// batches go through kafka-go's Conn.ReadBatch. The caller reuses the slice of messages, so a
// consumer loop pays one hand-off per fetch. Consumer-group membership and commits stay with
// the caller (kafka.ConsumerGroup / Generation).
//
// Use:
//
//	f := kafkafetch.New(kafkafetch.Config{Brokers: brokers, Topic: "mxtrail.raw", Partition: 3})
//	defer f.Close()
//	next := committed // or kafka.FirstOffset / kafka.LastOffset
//	var buf []kafka.Message
//	for {
//		var err error
//		var res kafkafetch.Result
//		buf, res, err = f.Fetch(ctx, next, buf[:0])
//		for i := range buf { use(&buf[i]) } // records first, even with an error
//		next = res.Next
//		if err != nil { if ctx.Err() != nil { return }; log(err) } // the next call recovers
//	}
//
// Errors: a broken connection, a broker restart or a leader change closes the connection;
// the next Fetch looks the leader up again and reconnects after a backoff. An offset before
// the partition's first offset (retention deleted it) returns an *OutOfRangeError and
// Result.Next is the first offset (the caller decides whether to count the skipped ones);
// an offset past the end returns an *OutOfRangeError and Result.Next unchanged. A cancelled
// ctx interrupts a fetch in flight and returns ctx.Err().
package kafkafetch

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// Config names the partition and tunes the fetches. Zero values take the defaults.
type Config struct {
	Brokers   []string
	Topic     string
	Partition int
	// Dialer connects (TLS, SASL, client id); nil is kafka.DefaultDialer.
	Dialer *kafka.Dialer
	// MinBytes the broker waits for (up to MaxWait) before answering; default 1.
	MinBytes int
	// MaxBytes of one fetch response; default 16 MiB. A record larger than this is still
	// returned whole (the broker sends at least one record batch).
	MaxBytes int
	// MaxWait is how long the broker may hold a fetch when there is less than MinBytes;
	// default 1 s (MEASURED.md: 250 ms with 10 MiB responses produced i/o timeouts).
	MaxWait time.Duration
	// ReadTimeout bounds reading one response beyond MaxWait; default 10 s.
	ReadTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait before reconnecting after an error;
	// defaults 100 ms and 2 s (doubling, with jitter).
	BackoffMin, BackoffMax time.Duration
	// Pool, when set, supplies the buffers responses are read and decompressed into, and
	// Result.Bufs returns them to the caller, who Puts them back once the fetch's records are
	// no longer referenced (see Pool). Nil: fresh buffers, left to the garbage collector.
	Pool *Pool
}

func (c *Config) defaults() {
	if c.Dialer == nil {
		c.Dialer = kafka.DefaultDialer
	}
	if c.MinBytes <= 0 {
		c.MinBytes = 1
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 16 << 20
	}
	if c.MaxWait <= 0 {
		c.MaxWait = time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(2*time.Second, c.BackoffMin)
	}
}

// Result describes one fetch.
type Result struct {
	// Next is the offset to ask for next: one past the last record returned, the first
	// offset after a skip, or the requested offset when nothing came.
	Next int64
	// HighWaterMark is the partition's end as the broker reported it (-1 when unknown):
	// HighWaterMark - Next records are waiting.
	HighWaterMark int64
	// Bufs are the pool buffers the fetch's records alias (Config.Pool set; else nil): the
	// caller's to Put back once none of those records is referenced.
	Bufs [][]byte
}

// OutOfRangeError is an offset outside [First, Last) of the partition.
type OutOfRangeError struct {
	Offset, First, Last int64
}

func (e *OutOfRangeError) Error() string {
	if e.Offset < e.First {
		return fmt.Sprintf("offset %d is before the first offset %d: skipped %d records deleted by retention", e.Offset, e.First, e.First-e.Offset)
	}
	return fmt.Sprintf("offset %d is past the end %d of the partition", e.Offset, e.Last)
}

// Skipped returns how many records retention deleted before they were read when err is
// an *OutOfRangeError before the partition's first offset (Result.Next then moved past
// them), else 0: the count a consumer adds to its skipped-records metric.
func Skipped(err error) int64 {
	var oe *OutOfRangeError
	if errors.As(err, &oe) && oe.Offset < oe.First {
		return oe.First - oe.Offset
	}
	return 0
}

// Unwrap makes errors.Is(err, kafka.OffsetOutOfRange) hold.
func (e *OutOfRangeError) Unwrap() error { return kafka.OffsetOutOfRange }

// Fetcher reads one partition. Not safe for concurrent use.
type Fetcher struct {
	cfg      Config
	conn     *kafka.Conn
	failures int // consecutive failed attempts: the backoff before the next dial

	// raw is conn's socket (after TLS), captured when dialling: the fetch requests are
	// written and their responses read on it directly (see wire.go), while conn, which
	// authenticated it, serves the offset lookups. Both speak request-then-whole-response on
	// the one socket, never at the same time. nil: the broker lacks fetch v4 and every fetch
	// goes through kafka-go's reader.
	raw  net.Conn
	corr int32
	req  []byte
	dec  decoder
}

// New returns a Fetcher; nothing connects until the first Fetch.
func New(cfg Config) *Fetcher {
	cfg.defaults()
	return &Fetcher{cfg: cfg}
}

// Close closes the connection (the Fetcher may be used again: it reconnects).
func (f *Fetcher) Close() error {
	if f.conn == nil {
		return nil
	}
	err := f.conn.Close()
	f.conn, f.raw = nil, nil
	return err
}

// Pool returns Config.Pool (nil when unset; Put on a nil Pool does nothing).
func (f *Fetcher) Pool() *Pool { return f.cfg.Pool }

// Fetch sends one fetch request from offset (an absolute offset, or kafka.FirstOffset /
// kafka.LastOffset) and appends its records to dst, in offset order, starting at offset
// (records before it in the first batch are dropped). It waits up to MaxWait for records
// and may return none. The returned slice is dst grown. Record keys, values and header
// values alias the fetch's response buffer, allocated per fetch and never reused: they stay
// valid as long as they are referenced (one kept value keeps its whole response, up to
// MaxBytes, alive), and must not be modified. Records and an error may come together: the
// records are good, process them before acting on the error.
func (f *Fetcher) Fetch(ctx context.Context, offset int64, dst []kafka.Message) ([]kafka.Message, Result, error) {
	res := Result{Next: offset, HighWaterMark: -1}
	if err := ctx.Err(); err != nil {
		return dst, res, err
	}
	if f.conn == nil {
		if f.failures > 0 && !sleep(ctx, f.backoff()) {
			return dst, res, ctx.Err()
		}
		if err := f.dial(ctx); err != nil {
			f.failures++
			return dst, res, err
		}
	}
	c, raw := f.conn, f.raw
	// A cancelled ctx interrupts a read in flight through the deadline.
	stop := context.AfterFunc(ctx, func() {
		c.SetDeadline(time.Unix(1, 0))
		if raw != nil {
			raw.SetDeadline(time.Unix(1, 0))
		}
	})
	defer func() {
		if !stop() && f.conn == c {
			f.Close() // interrupted: the connection's state is unknown
		}
	}()
	deadline := time.Now().Add(f.cfg.MaxWait + f.cfg.ReadTimeout)
	c.SetDeadline(deadline)
	if raw != nil {
		raw.SetDeadline(deadline)
	}
	if ctx.Err() != nil { // cancelled before the deadline above replaced the interruption
		return dst, res, ctx.Err()
	}
	if offset < 0 {
		var err error
		if offset == kafka.LastOffset {
			offset, err = c.ReadLastOffset()
		} else {
			offset, err = c.ReadFirstOffset()
		}
		if err != nil {
			return dst, res, f.fail(ctx, fmt.Errorf("resolve start offset of %s/%d: %w", f.cfg.Topic, f.cfg.Partition, err))
		}
		res.Next = offset
	}
	if f.raw != nil {
		var err error
		n := len(dst)
		dst, res, err = f.fetchRaw(dst, offset, res)
		if !errors.Is(err, errOldFormat) {
			if err == nil {
				f.failures = 0
				return dst, res, nil
			}
			if errors.Is(err, kafka.OffsetOutOfRange) && ctx.Err() == nil {
				return dst, res, f.outOfRange(ctx, offset, &res)
			}
			return dst, res, f.fail(ctx, fmt.Errorf("fetch %s/%d from offset %d: %w", f.cfg.Topic, f.cfg.Partition, offset, err))
		}
		// v0/v1 batches (written before Kafka 0.11, not converted): kafka-go's reader decodes
		// them. The records decoded before the old batch are read again by it.
		dst, res.Next = dst[:n], offset
	}
	return f.fetchBatch(ctx, c, dst, offset, res)
}

// fetchRaw sends one fetch v4 request on the raw socket and decodes its response.
func (f *Fetcher) fetchRaw(dst []kafka.Message, offset int64, res Result) ([]kafka.Message, Result, error) {
	f.corr++
	f.req = appendFetchRequest(f.req[:0], f.corr, f.cfg.Dialer.ClientID, f.cfg.Topic, int32(f.cfg.Partition), offset,
		int32(f.cfg.MinBytes), int32(f.cfg.MaxBytes), f.cfg.MaxWait)
	if _, err := f.raw.Write(f.req); err != nil {
		return dst, res, err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(f.raw, hdr[:]); err != nil {
		return dst, res, err
	}
	size := int(int32(binary.BigEndian.Uint32(hdr[:]))) - 4
	if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != f.corr {
		return dst, res, fmt.Errorf("response to request %d, want %d", corr, f.corr)
	}
	if size < 0 || size > maxResponse {
		return dst, res, fmt.Errorf("fetch response of %d bytes (limit %d)", size, maxResponse)
	}
	// A buffer per response, fresh or the caller's to recycle (Config.Pool): the records
	// alias it, and callers may keep them past the next fetch (the sink holds a batch's
	// values until its insert).
	var body []byte
	if f.cfg.Pool != nil {
		body = f.cfg.Pool.get(size)
		res.Bufs = append(res.Bufs, body)
	} else {
		body = make([]byte, size)
	}
	if _, err := io.ReadFull(f.raw, body); err != nil {
		return dst, res, err
	}
	p, err := parseFetchResponse(body, f.cfg.Topic, int32(f.cfg.Partition))
	if err != nil {
		return dst, res, err
	}
	switch {
	case kafka.Error(p.errCode) == kafka.RequestTimedOut:
		return dst, res, nil // nothing came in time: as an empty fetch
	case p.errCode != 0:
		return dst, res, kafka.Error(p.errCode)
	}
	res.HighWaterMark = p.highWaterMark
	f.dec.pool, f.dec.bufs = f.cfg.Pool, res.Bufs
	dst, res.Next, err = f.dec.decodeBatches(dst, p.records, f.cfg.Topic, f.cfg.Partition, offset, p.highWaterMark)
	res.Bufs, f.dec.bufs = f.dec.bufs, nil
	return dst, res, err
}

// maxResponse bounds a fetch response: a corrupt size must not allocate gigabytes. A response
// holds at most MaxBytes, or one record batch when the first is larger (at most the topic's
// max.message.bytes, 1 MiB by default).
const maxResponse = 1 << 30

// fetchBatch reads one fetch through kafka-go's Conn.ReadBatch: brokers without fetch v4 and
// old-format batches.
func (f *Fetcher) fetchBatch(ctx context.Context, c *kafka.Conn, dst []kafka.Message, offset int64, res Result) ([]kafka.Message, Result, error) {
	if _, err := c.Seek(offset, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
		return dst, res, f.fail(ctx, err)
	}
	batch := c.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: f.cfg.MinBytes, MaxBytes: f.cfg.MaxBytes, MaxWait: f.cfg.MaxWait})
	res.HighWaterMark = batch.HighWaterMark()
	var err error
	for {
		var m kafka.Message
		if m, err = batch.ReadMessage(); err != nil {
			break
		}
		if m.Offset < offset {
			continue
		}
		dst = append(dst, m)
		res.Next = m.Offset + 1
	}
	if cerr := batch.Close(); err == nil || errors.Is(err, io.EOF) {
		err = cerr
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, kafka.RequestTimedOut) {
		f.failures = 0
		return dst, res, nil
	}
	if errors.Is(err, kafka.OffsetOutOfRange) && ctx.Err() == nil {
		return dst, res, f.outOfRange(ctx, offset, &res)
	}
	return dst, res, f.fail(ctx, fmt.Errorf("fetch %s/%d from offset %d: %w", f.cfg.Topic, f.cfg.Partition, offset, err))
}

// outOfRange reads the partition's offset range after an out-of-range fetch and sets
// res.Next to the first offset when offset is before it.
func (f *Fetcher) outOfRange(ctx context.Context, offset int64, res *Result) error {
	// kafka-go's failed fetch can leave the connection mid-response: ask on a fresh one.
	f.Close()
	err := f.dial(ctx)
	var first, last int64
	if err == nil {
		f.conn.SetDeadline(time.Now().Add(f.cfg.ReadTimeout))
		first, last, err = f.conn.ReadOffsets()
		f.conn.SetDeadline(time.Time{})
	}
	if err != nil {
		return f.fail(ctx, fmt.Errorf("offset %d out of range, and reading the range: %w", offset, err))
	}
	if offset < first {
		res.Next = first
	}
	return &OutOfRangeError{Offset: offset, First: first, Last: last}
}

// fail drops the connection: after a broken read, a leader change or an unknown partition
// the next Fetch looks the leader up again.
func (f *Fetcher) fail(ctx context.Context, err error) error {
	f.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	f.failures++
	return err
}

func (f *Fetcher) dial(ctx context.Context) error {
	var last error
	d, raw := captureDialer(f.cfg.Dialer)
	for _, b := range f.cfg.Brokers {
		c, err := d.DialLeader(ctx, "tcp", b, f.cfg.Topic, f.cfg.Partition)
		if err == nil {
			f.conn, f.raw = c, nil
			// The decoder here speaks fetch v4 only: older brokers are read through kafka-go.
			c.SetDeadline(time.Now().Add(f.cfg.ReadTimeout))
			vs, verr := c.ApiVersions()
			c.SetDeadline(time.Time{})
			if verr != nil {
				f.Close()
				return fmt.Errorf("connect to the leader of %s/%d: api versions: %w", f.cfg.Topic, f.cfg.Partition, verr)
			}
			for _, v := range vs {
				if v.ApiKey == apiFetch && v.MinVersion <= fetchVersion && fetchVersion <= v.MaxVersion {
					f.raw = *raw
				}
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = err
		var ne net.Error
		if !errors.As(err, &ne) && !errors.Is(err, io.EOF) {
			break // the broker answered (unknown topic, auth...): another broker says the same
		}
	}
	if last == nil {
		last = errors.New("no brokers")
	}
	return fmt.Errorf("connect to the leader of %s/%d: %w", f.cfg.Topic, f.cfg.Partition, last)
}

// captureDialer returns a copy of d that records, in *raw, the socket of the connection it
// dialled last (DialLeader dials the leader last), with TLS done by the copy itself so the
// socket is the one kafka-go's SASL authenticated.
func captureDialer(d *kafka.Dialer) (*kafka.Dialer, *net.Conn) {
	c := *d
	raw := new(net.Conn)
	dial, tlsCfg := d.DialFunc, d.TLS
	c.TLS = nil
	c.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		var conn net.Conn
		var err error
		if dial != nil {
			conn, err = dial(ctx, network, address)
		} else {
			conn, err = (&net.Dialer{LocalAddr: d.LocalAddr, FallbackDelay: d.FallbackDelay, KeepAlive: d.KeepAlive}).DialContext(ctx, network, address)
		}
		if err != nil {
			return nil, err
		}
		if tlsCfg != nil {
			cfg := tlsCfg
			if cfg.ServerName == "" {
				cfg = tlsCfg.Clone()
				if host, _, err := net.SplitHostPort(address); err == nil {
					cfg.ServerName = host
				} else {
					cfg.ServerName = address
				}
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			conn = tc
		}
		*raw = conn
		return conn, nil
	}
	return &c, raw
}

func (f *Fetcher) backoff() time.Duration {
	d := f.cfg.BackoffMin << min(f.failures-1, 20)
	if d > f.cfg.BackoffMax || d <= 0 {
		d = f.cfg.BackoffMax
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
