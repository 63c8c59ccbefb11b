package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// Writer inserts batches into the three tables, retrying retryable failures with exponential
// backoff until ClickHouse acknowledges or the context ends. It never gives up on a batch
// quietly: a non-retryable error is returned and the caller must not commit the batch.
type Writer struct {
	conn         driver.Conn
	db           string
	f            schema.Features
	m            *Metrics
	retryInitial time.Duration
	retryMax     time.Duration
	sleep        func(context.Context, time.Duration) error
}

// NewWriter returns a writer into database db on conn.
func NewWriter(conn driver.Conn, db string, f schema.Features, m *Metrics, retryInitial, retryMax time.Duration) *Writer {
	return &Writer{conn: conn, db: db, f: f, m: m, retryInitial: retryInitial, retryMax: retryMax, sleep: sleepCtx}
}

type table struct {
	idx    int
	name   string
	cols   []string
	values func(*Batch) []any
	rows   func(*Batch) int
}

var tables = []table{
	{0, "sessions", sessionColumnNames, func(b *Batch) []any { return b.sessions.values() }, func(b *Batch) int { return b.sessions.len() }},
	{1, "events", eventColumnNames, func(b *Batch) []any { return b.events.values() }, func(b *Batch) int { return b.events.len() }},
	{2, "deadletter", deadColumnNames, func(b *Batch) []any { return b.dead.values() }, func(b *Batch) int { return b.dead.len() }},
}

// Write inserts every non-empty table of b that is not yet done.
func (w *Writer) Write(ctx context.Context, b *Batch) error {
	for _, t := range tables {
		n := t.rows(b)
		if n == 0 || b.done[t.idx] {
			continue
		}
		delay := w.retryInitial
		for attempt := 1; ; attempt++ {
			start := time.Now()
			err := w.insert(ctx, b, t)
			if err == nil {
				w.m.InsertSeconds.WithLabelValues(t.name).Observe(time.Since(start).Seconds())
				w.m.Rows.WithLabelValues(t.name).Add(float64(n))
				b.done[t.idx] = true
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("insert %d rows into %s.%s: %w", n, w.db, t.name, ctx.Err())
			}
			if !Retryable(err) {
				return fmt.Errorf("insert %d rows into %s.%s (attempt %d, not retryable): %w", n, w.db, t.name, attempt, err)
			}
			w.m.Retries.WithLabelValues(t.name).Inc()
			// Full jitter keeps several sinks from retrying in step.
			if err := w.sleep(ctx, delay/2+rand.N(delay/2+1)); err != nil {
				return fmt.Errorf("insert %d rows into %s.%s: gave up waiting to retry after %v: %w", n, w.db, t.name, err, ctx.Err())
			}
			delay = min(delay*2, w.retryMax)
		}
	}
	for k, v := range b.deadReasons {
		w.m.DeadLettered.WithLabelValues(k).Add(float64(v))
	}
	return nil
}

func (w *Writer) insert(ctx context.Context, b *Batch, t table) (err error) {
	if w.f.DedupToken {
		ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"insert_deduplication_token": b.dedupToken(t.name)}))
	}
	q := "INSERT INTO " + w.db + "." + t.name + " (" + strings.Join(t.cols, ", ") + ")"
	batch, err := w.conn.PrepareBatch(ctx, q, driver.WithReleaseConnection())
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer func() {
		if err != nil {
			_ = batch.Abort()
		}
	}()
	for i, v := range t.values(b) {
		if err := batch.Column(i).Append(v); err != nil {
			return fmt.Errorf("append column %s: %w", t.cols[i], err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// ClickHouse error codes worth retrying: the server is overloaded, merging, or briefly
// unavailable, and the same insert will succeed later.
var retryableCodes = map[int32]bool{
	3:   true, // UNEXPECTED_END_OF_FILE
	159: true, // TIMEOUT_EXCEEDED
	164: false,
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	236: true, // ABORTED
	242: true, // TABLE_IS_READ_ONLY
	252: true, // TOO_MANY_PARTS
	319: true, // UNKNOWN_STATUS_OF_INSERT
	425: true, // SYSTEM_ERROR
}

// Retryable reports whether an insert error is transient: lost or refused connections,
// timeouts, and the server's overload and too-many-parts errors.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var ex *proto.Exception
	if errors.As(err, &ex) {
		return retryableCodes[ex.Code]
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed),
		errors.Is(err, ch.ErrAcquireConnTimeout), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne):
		return true
	}
	// clickhouse-go does not always wrap its dial and read errors.
	s := err.Error()
	for _, frag := range []string{"connection refused", "connection reset", "broken pipe", "i/o timeout", "EOF", "bad connection"} {
		if strings.Contains(s, frag) {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
