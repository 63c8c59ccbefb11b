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
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// Writer inserts batches into the three tables, retrying retryable failures with exponential
// backoff until ClickHouse acknowledges or the context ends. It never gives up on a batch
// quietly: a non-retryable error is returned and the caller must not commit the batch.
// Write is not safe for concurrent use (the sink calls it from one goroutine).
type Writer struct {
	conn         driver.Conn
	db           string
	f            schema.Features
	m            *Metrics
	retryInitial time.Duration
	retryMax     time.Duration
	sleep        func(context.Context, time.Duration) error
	boxed        map[string]any // see box; used only by the goroutine that calls Write
}

// NewWriter returns a writer into database db on conn.
func NewWriter(conn driver.Conn, db string, f schema.Features, m *Metrics, retryInitial, retryMax time.Duration) *Writer {
	return &Writer{conn: conn, db: db, f: f, m: m, retryInitial: retryInitial, retryMax: retryMax, sleep: sleepCtx,
		boxed: map[string]any{}}
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
	{3, "alerts", alertColumnNames, func(b *Batch) []any { return b.alerts.values() }, func(b *Batch) int { return b.alerts.len() }},
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
			w.m.InsertFailures.WithLabelValues(t.name).Inc()
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
	cols := batch.Columns()
	if len(cols) != len(t.cols) {
		return fmt.Errorf("insert into %s: server announced %d columns, want %d", t.name, len(cols), len(t.cols))
	}
	for i, v := range t.values(b) {
		if err := w.appendColumn(cols[i], v); err != nil {
			return fmt.Errorf("append column %s: %w", t.cols[i], err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// appendColumn appends a whole column.
//
// clickhouse-go's Append of a slice walks Array and LowCardinality columns element by element
// through reflection, boxing every value into an interface (one allocation each) and, for
// LowCardinality, hashing it in a map[any]int: measured, that was ~60% of the sink's insert
// CPU. So arrays go row by row (AppendRow of a []T takes a typed path), and LowCardinality
// values are appended as interfaces boxed once per distinct string (see box).
func (w *Writer) appendColumn(col column.Interface, v any) error {
	switch v := v.(type) {
	case []string:
		if _, ok := col.(*column.LowCardinality); !ok {
			break
		}
		for _, s := range v {
			if err := col.AppendRow(w.box(s)); err != nil {
				return err
			}
		}
		return nil
	case [][]string:
		for i := range v {
			if err := col.AppendRow(v[i]); err != nil {
				return err
			}
		}
		return nil
	case [][]uint16:
		for i := range v {
			if err := col.AppendRow(v[i]); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := col.Append(v)
	return err
}

// maxBoxed bounds the boxed-value cache; LowCardinality columns hold a few hundred distinct
// values, so it is only reached when one is misused, and then the cache starts over.
const maxBoxed = 1 << 16

// box returns s as an interface value, allocated once per distinct string. The cached copy is a
// clone: s points into a Kafka message the batch will release.
func (w *Writer) box(s string) any {
	if a, ok := w.boxed[s]; ok {
		return a
	}
	if len(w.boxed) >= maxBoxed {
		clear(w.boxed)
	}
	c := strings.Clone(s)
	a := any(c)
	w.boxed[c] = a
	return a
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
