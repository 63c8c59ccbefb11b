// Package kafkafetch reads one partition of a Kafka topic a whole fetch at a time, on
// kafka-go's connection layer (kafka.Conn), without kafka-go's Reader.
//
// Why: the Reader costs about 2.5 µs per message on top of decoding it (a read deadline set
// per message, statistics, and two goroutine hand-offs per message through channels). A
// Fetcher sets one deadline per fetch and appends the whole fetch into a slice the caller
// reuses, so a consumer loop pays one hand-off per fetch. Consumer-group membership and
// commits stay with the caller (kafka.ConsumerGroup / Generation).
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

// Unwrap makes errors.Is(err, kafka.OffsetOutOfRange) hold.
func (e *OutOfRangeError) Unwrap() error { return kafka.OffsetOutOfRange }

// Fetcher reads one partition. Not safe for concurrent use.
type Fetcher struct {
	cfg      Config
	conn     *kafka.Conn
	failures int // consecutive failed attempts: the backoff before the next dial
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
	f.conn = nil
	return err
}

// Fetch sends one fetch request from offset (an absolute offset, or kafka.FirstOffset /
// kafka.LastOffset) and appends its records to dst, in offset order, starting at offset
// (records before it in the first batch are dropped). It waits up to MaxWait for records
// and may return none. The returned slice is dst grown; record keys, values and headers
// are valid until the next Fetch with the same dst (today kafka-go allocates them, but
// callers must not rely on it). Records and an error may come together: the records are
// good, process them before acting on the error.
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
	c := f.conn
	// A cancelled ctx interrupts a read in flight through the deadline.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() && f.conn == c {
			f.Close() // interrupted: the connection's state is unknown
		}
	}()
	c.SetDeadline(time.Now().Add(f.cfg.MaxWait + f.cfg.ReadTimeout))
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
		// The failed fetch can leave the connection mid-response: ask on a fresh one.
		f.Close()
		oerr := f.dial(ctx)
		var first, last int64
		if oerr == nil {
			f.conn.SetDeadline(time.Now().Add(f.cfg.ReadTimeout))
			first, last, oerr = f.conn.ReadOffsets()
			f.conn.SetDeadline(time.Time{})
		}
		if oerr != nil {
			return dst, res, f.fail(ctx, fmt.Errorf("offset %d out of range, and reading the range: %w", offset, oerr))
		}
		if offset < first {
			res.Next = first
		}
		return dst, res, &OutOfRangeError{Offset: offset, First: first, Last: last}
	}
	return dst, res, f.fail(ctx, fmt.Errorf("fetch %s/%d from offset %d: %w", f.cfg.Topic, f.cfg.Partition, offset, err))
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
	for _, b := range f.cfg.Brokers {
		c, err := f.cfg.Dialer.DialLeader(ctx, "tcp", b, f.cfg.Topic, f.cfg.Partition)
		if err == nil {
			f.conn = c
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
