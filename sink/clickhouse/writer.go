package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"
	"unsafe"

	chproto "github.com/ClickHouse/ch-go/proto"
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
	canon        map[string]*string   // see canonical; used only by the goroutine that calls Write
	ptrs         []*string            // scratch for one array row, see appendColumn
	dict         map[string]int       // scratch for appendLCRows
	lcCache      *[lcCacheSize]lcSlot // scratch for appendLCRows
	lent         map[string]*colBufs  // see lend
	zeros        []byte               // see reserve; never written
	fill         []string             // see reserve; empty strings but the first during a call
	isolateMax   int                  // maxIsolateInserts; tests lower it
	reread       RereadFunc           // see SetReread; nil: batches keep their sessions messages
	block        blockLayout          // see arenaStrColumn
}

// RereadFunc returns the key and value of the record at offset of a topic's partition, read
// again from Kafka (GroupSource.Reread).
type RereadFunc func(ctx context.Context, topic string, partition int, offset int64) (key, value []byte, err error)

// SetReread lets the writer read a rejected sessions row's record again from Kafka, for its
// deadletter row, so batches need not keep the messages they decoded (Batch.SetRereadSessions).
func (w *Writer) SetReread(f RereadFunc) { w.reread = f }

// rereadAttempts bounds the reads of one rejected row's record: a broker that stays away
// longer leaves the deadletter row without its raw bytes (its error says so) rather than
// holding up the batch.
const rereadAttempts = 4

// rowMessage returns the key and value of the message behind row i of table: the batch's own
// or, for a sessions row of a batch that did not keep it, read again from Kafka. When it
// cannot be read, lost says why and key and value are empty; err is the context's end only.
func (w *Writer) rowMessage(ctx context.Context, b *Batch, table, i int) (key, value []byte, lost, err error) {
	topic, partition, r := b.rowSource(table, i)
	if table != 0 || !b.rereadSessions {
		return r.key, r.value, nil, nil
	}
	if w.reread == nil {
		return nil, nil, errors.New("the batch kept no message and the writer cannot read it again"), nil
	}
	delay := w.retryInitial
	for attempt := 1; ; attempt++ {
		key, value, lost = w.reread(ctx, topic, partition, r.offset)
		if lost == nil {
			return key, value, nil, nil
		}
		if ctx.Err() != nil {
			return nil, nil, nil, fmt.Errorf("read record %s/%d@%d again: %w", topic, partition, r.offset, ctx.Err())
		}
		if attempt == rereadAttempts || errors.Is(lost, ErrRecordGone) {
			return nil, nil, lost, nil
		}
		if err := w.sleep(ctx, delay); err != nil {
			return nil, nil, nil, fmt.Errorf("read record %s/%d@%d again: %w", topic, partition, r.offset, ctx.Err())
		}
		delay = min(delay*2, w.retryMax)
	}
}

// NewWriter returns a writer into database db on conn.
func NewWriter(conn driver.Conn, db string, f schema.Features, m *Metrics, retryInitial, retryMax time.Duration) *Writer {
	return &Writer{conn: conn, db: db, f: f, m: m, retryInitial: retryInitial, retryMax: retryMax, sleep: sleepCtx,
		canon: map[string]*string{}, isolateMax: maxIsolateInserts}
}

// clone returns a writer like w with its own scratch state, for a concurrent insert.
func (w *Writer) clone() *Writer {
	c := *w
	c.canon, c.ptrs, c.dict, c.lent, c.zeros, c.fill, c.lcCache = map[string]*string{}, nil, nil, nil, nil, nil, nil
	return &c
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
//
// A sessions or events insert the server refuses with a non-retryable error (a value it will
// never accept) does not stop the pipeline: isolate splits the rows in halves until it has
// the rejected ones, which become deadletter rows carrying the server's error, and the rest
// are inserted. Errors that are not about the rows (a missing table, a column mismatch) and a
// deadletter row the server refuses are returned, and the caller must not commit the batch.
func (w *Writer) Write(ctx context.Context, b *Batch) error {
	for _, t := range tables {
		n := t.rows(b)
		if n == 0 || b.done[t.idx] {
			continue
		}
		err := w.insertRetrying(ctx, b, t, 0, n)
		if err != nil {
			var rej *rejectedError
			if !errors.As(err, &rej) || t.idx >= 2 { // deadletter and alerts rows: not isolated
				return err
			}
			budget := w.isolateMax
			if err := w.isolate(ctx, b, t, 0, n, rej, &budget); err != nil {
				return err
			}
		}
		b.done[t.idx] = true
	}
	for k, v := range b.deadReasons {
		w.m.DeadLettered.WithLabelValues(k).Add(float64(v))
	}
	return nil
}

// maxIsolateInserts bounds the inserts spent finding the rejected rows of one table of one
// batch: a few rejected rows among 100k cost ~35 inserts each (two per halving); a server
// that refuses every row (which is no longer about the rows) ends the search instead of
// sending the batch one row at a time.
const maxIsolateInserts = 2000

// rejectedError is a non-retryable error the server raised while taking the rows of an
// insert (not while preparing it): some of the rows are what it refuses.
type rejectedError struct{ err error }

func (e *rejectedError) Error() string { return e.err.Error() }
func (e *rejectedError) Unwrap() error { return e.err }

// insertRetrying inserts rows [lo, hi) of t, retrying retryable failures with backoff.
func (w *Writer) insertRetrying(ctx context.Context, b *Batch, t table, lo, hi int) error {
	delay := w.retryInitial
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := w.insert(ctx, b, t, lo, hi)
		if err == nil {
			w.m.InsertSeconds.WithLabelValues(t.name).Observe(time.Since(start).Seconds())
			w.m.Rows.WithLabelValues(t.name).Add(float64(hi - lo))
			return nil
		}
		w.m.InsertFailures.WithLabelValues(t.name).Inc()
		if ctx.Err() != nil {
			return fmt.Errorf("insert %d rows into %s.%s: %w", hi-lo, w.db, t.name, ctx.Err())
		}
		if !Retryable(err) {
			err = fmt.Errorf("insert %d rows into %s.%s (attempt %d, not retryable): %w", hi-lo, w.db, t.name, attempt, err)
			if errors.As(err, new(*rejectedError)) {
				return &rejectedError{err}
			}
			return err
		}
		w.m.Retries.WithLabelValues(t.name).Inc()
		// Full jitter keeps several sinks from retrying in step.
		if err := w.sleep(ctx, delay/2+rand.N(delay/2+1)); err != nil {
			return fmt.Errorf("insert %d rows into %s.%s: gave up waiting to retry after %v: %w", hi-lo, w.db, t.name, err, ctx.Err())
		}
		delay = min(delay*2, w.retryMax)
	}
}

// isolate finds the rows of [lo, hi), which the server refused as a whole with rej, that it
// refuses on their own: each becomes a deadletter row with the server's error, every other
// row is inserted. Rows of a refused range may have been partly written before the error
// (one part per partition, the rollup view after the table); they are sent again and collapse
// like any replay.
func (w *Writer) isolate(ctx context.Context, b *Batch, t table, lo, hi int, rej *rejectedError, budget *int) error {
	if hi-lo == 1 {
		cause := error(rej)
		var ex *proto.Exception
		if errors.As(rej, &ex) {
			cause = ex
		}
		key, value, lost, err := w.rowMessage(ctx, b, t.idx, lo)
		if err != nil {
			return err
		}
		if lost != nil {
			cause = fmt.Errorf("%w (raw left empty: %v)", cause, lost)
		}
		b.rejectRow(t.idx, lo, cause, key, value, time.Now())
		return nil
	}
	mid := lo + (hi-lo)/2
	for _, r := range [2][2]int{{lo, mid}, {mid, hi}} {
		if *budget <= 0 {
			return fmt.Errorf("insert into %s.%s: gave up isolating the rows the server refuses after %d inserts (it may refuse every row): %w",
				w.db, t.name, w.isolateMax, rej)
		}
		*budget--
		err := w.insertRetrying(ctx, b, t, r[0], r[1])
		if err == nil {
			continue
		}
		var sub *rejectedError
		if !errors.As(err, &sub) {
			return err
		}
		if err := w.isolate(ctx, b, t, r[0], r[1], sub, budget); err != nil {
			return err
		}
	}
	return nil
}

// insert sends rows [lo, hi) of table t in one INSERT.
func (w *Writer) insert(ctx context.Context, b *Batch, t table, lo, hi int) (err error) {
	if w.f.DedupToken {
		tok := b.dedupToken(t.name)
		if lo != 0 || hi != t.rows(b) {
			tok += fmt.Sprintf(";rows %d-%d", lo, hi)
		}
		ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"insert_deduplication_token": tok}))
	}
	q := "INSERT INTO " + w.db + "." + t.name + " (" + strings.Join(t.cols, ", ") + ")"
	// The batch keeps its connection from prepare to Send: with WithReleaseConnection the
	// driver ended the INSERT after reading its header and sent it again on Send, so the server
	// ran two INSERTs per batch, one of them empty (seen in system.query_log at 0-180 ms each).
	batch, err := w.conn.PrepareBatch(ctx, q)
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
	blk := w.block.blockOf(batch)
	if blk != nil && len(blk.Columns) != len(cols) {
		blk = nil
	}
	for i, v := range t.values(b) {
		rows, err := sliceRows(v, lo, hi)
		if err != nil {
			return fmt.Errorf("append column %s: %w", t.cols[i], err)
		}
		if r, ok := rows.(strRows); ok && blk != nil {
			// An arena String column encodes itself (arenaStrColumn); the block is the
			// batch's own for this attempt, so the swap dies with it.
			if c, ok := cols[i].(*column.String); ok && c.Rows() == 0 && blk.Columns[i] == cols[i] {
				blk.Columns[i] = &arenaStrColumn{String: c, r: r}
				continue
			}
		}
		w.reserve(cols[i], rows)
		if err := w.appendColumn(cols[i], rows); err != nil {
			return fmt.Errorf("append column %s: %w", t.cols[i], err)
		}
	}
	if err := batch.Send(); err != nil {
		var ex *proto.Exception
		if errors.As(err, &ex) && !Retryable(err) {
			return &rejectedError{fmt.Errorf("send: %w", err)}
		}
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// sliceRows returns rows [lo, hi) of a column as values() returns it.
func sliceRows(v any, lo, hi int) (any, error) {
	switch v := v.(type) {
	case strRows:
		return strRows{v.c, v.lo + lo, v.lo + hi}, nil
	case arrRows:
		return arrRows{v.c, v.lo + lo, v.lo + hi}, nil
	case u16ArrRows:
		return u16ArrRows{v.c, v.lo + lo, v.lo + hi}, nil
	case []string:
		return v[lo:hi], nil
	case [][]string:
		return v[lo:hi], nil
	case [][]uint16:
		return v[lo:hi], nil
	case [][16]byte:
		return v[lo:hi], nil
	case []time.Time:
		return v[lo:hi], nil
	case []uint8:
		return v[lo:hi], nil
	case []uint16:
		return v[lo:hi], nil
	case []uint32:
		return v[lo:hi], nil
	case []uint64:
		return v[lo:hi], nil
	case []int32:
		return v[lo:hi], nil
	case []int64:
		return v[lo:hi], nil
	case []float64:
		return v[lo:hi], nil
	}
	return nil, fmt.Errorf("no row slicing for column type %T", v)
}

// appendColumn appends a whole column.
//
// The sessions table's string and array columns arrive as row ranges of the batch arenas
// (strRows, arrRows, u16ArrRows) and are copied straight into the storage of clickhouse-go's
// columns (appendStrRows, appendLCRows, appendArrRows, appendU16ArrRows: fields found by
// reflection at start-up and type-checked). Everything else, and those too when a field
// check fails, goes through clickhouse-go's public Append and AppendRow, where:
// Append of a slice walks Array and LowCardinality columns element by element through
// reflection, boxing every value into an interface (one allocation each) and, for
// LowCardinality, hashing it in a map[any]int: measured, that was ~60% of the sink's insert
// CPU. So arrays go row by row (AppendRow of a slice takes a typed path), and LowCardinality
// values are handed over as *string, one canonical pointer per distinct value (see
// canonical): the column's dictionary map then hashes and compares an 8-byte pointer instead
// of the string behind an interface, and a pointer in an interface costs no allocation.
// Array rows go as []*string too: the column boxes each element into an interface, which for
// a string allocates, for a pointer does not (String accepts *string).
func (w *Writer) appendColumn(col column.Interface, v any) error {
	if len(w.canon) >= maxCanon {
		clear(w.canon) // between columns: within one, equal values must share a pointer
	}
	switch v := v.(type) {
	case strRows:
		switch c := col.(type) {
		case *column.String:
			if colStrOK {
				appendStrRows(colStr(c), v, w.lend(c.Name()))
				return nil
			}
		case *column.LowCardinality:
			if w.appendLCRows(c, v) {
				return nil
			}
		}
		return w.appendColumn(col, v.views())
	case arrRows:
		if a, ok := col.(*column.Array); ok && w.appendArrRows(a, v) {
			return nil
		}
		return w.appendColumn(col, v.views())
	case u16ArrRows:
		if a, ok := col.(*column.Array); ok && w.appendU16ArrRows(a, v) {
			return nil
		}
		return w.appendColumn(col, v.views())
	case []string:
		if _, ok := col.(*column.LowCardinality); !ok {
			break
		}
		for _, s := range v {
			if err := col.AppendRow(w.canonical(s)); err != nil {
				return err
			}
		}
		return nil
	case [][]string:
		// The dictionary of Array(LowCardinality(String)) is keyed like a LowCardinality
		// column's, so its elements need canonical pointers; plain String elements any pointer.
		lc := strings.Contains(string(col.Type()), "LowCardinality")
		for i := range v {
			row := v[i]
			w.ptrs = w.ptrs[:0]
			for j := range row {
				if lc {
					w.ptrs = append(w.ptrs, w.canonical(row[j]))
				} else {
					w.ptrs = append(w.ptrs, &row[j])
				}
			}
			if err := col.AppendRow(w.ptrs); err != nil {
				return err
			}
		}
		clear(w.ptrs) // no pointers into the batch's views kept past the call
		return nil
	case [][]uint16:
		for i := range v {
			if err := col.AppendRow(v[i]); err != nil {
				return err
			}
		}
		return nil
	case []uint8:
		if c, ok := col.(*column.UInt8); ok && shareFixed(unsafe.Pointer(c), c.Rows(), fixedUInt8, v) {
			return nil
		}
	case []uint16:
		if c, ok := col.(*column.UInt16); ok && shareFixed(unsafe.Pointer(c), c.Rows(), fixedUInt16, v) {
			return nil
		}
	case []uint32:
		if c, ok := col.(*column.UInt32); ok && shareFixed(unsafe.Pointer(c), c.Rows(), fixedUInt32, v) {
			return nil
		}
	case []uint64:
		if c, ok := col.(*column.UInt64); ok && shareFixed(unsafe.Pointer(c), c.Rows(), fixedUInt64, v) {
			return nil
		}
	case []int32:
		if c, ok := col.(*column.Int32); ok && shareFixed(unsafe.Pointer(c), c.Rows(), fixedInt32, v) {
			return nil
		}
	case []int64:
		if c, ok := col.(*column.Int64); ok && shareFixed(unsafe.Pointer(c), c.Rows(), fixedInt64, v) {
			return nil
		}
	case [][16]byte:
		if c, ok := col.(*column.IPv6); ok && shareFixed(unsafe.Pointer(c), c.Rows(), fixedIPv6, v) {
			return nil
		}
	case []time.Time:
		if w.appendTimes(col, v) {
			return nil
		}
	}
	_, err := col.Append(v)
	return err
}

// fixedField is where a clickhouse-go column of a fixed-width type keeps its ch-go column,
// a slice of the same element type and layout as the batch's own ([]uint8 for UInt8,
// [][16]byte for IPv6, ...): found by reflection at start-up and type-checked, ok false
// otherwise (TestFixedLayout fails, to say so, and the public Append is used).
type fixedField struct {
	off uintptr
	ok  bool
}

func fixedLayout[C, P, E any]() fixedField {
	f, ok := reflect.TypeOf(*new(C)).FieldByName("col")
	p, e := reflect.TypeOf(*new(P)), reflect.TypeOf(*new(E))
	if !ok || f.Type != p || p.Kind() != reflect.Slice || p.Elem().Size() != e.Size() || p.Elem().Kind() != e.Kind() {
		return fixedField{}
	}
	return fixedField{off: f.Offset, ok: true}
}

var (
	fixedUInt8  = fixedLayout[column.UInt8, chproto.ColUInt8, uint8]()
	fixedUInt16 = fixedLayout[column.UInt16, chproto.ColUInt16, uint16]()
	fixedUInt32 = fixedLayout[column.UInt32, chproto.ColUInt32, uint32]()
	fixedUInt64 = fixedLayout[column.UInt64, chproto.ColUInt64, uint64]()
	fixedInt32  = fixedLayout[column.Int32, chproto.ColInt32, int32]()
	fixedInt64  = fixedLayout[column.Int64, chproto.ColInt64, int64]()
	fixedIPv6   = fixedLayout[column.IPv6, chproto.ColIPv6, [16]byte]()
)

// timeLayout is where clickhouse-go's DateTime and DateTime64 columns keep their ch-go
// columns; found by reflection and type-checked (TestTimeLayout fails otherwise, and the
// public Append is used).
var timeLayout = func() (l struct {
	dt, dt64 fixedField
}) {
	if f, ok := reflect.TypeOf(column.DateTime{}).FieldByName("col"); ok && f.Type == reflect.TypeOf(chproto.ColDateTime{}) {
		l.dt = fixedField{off: f.Offset, ok: true}
	}
	if f, ok := reflect.TypeOf(column.DateTime64{}).FieldByName("col"); ok && f.Type == reflect.TypeOf(chproto.ColDateTime64{}) {
		l.dt64 = fixedField{off: f.Offset, ok: true}
	}
	return l
}()

// appendTimes fills an empty DateTime or DateTime64 column with v converted as its Append
// converts each value (ch-go's ToDateTime, ToDateTime64 at the column's precision), into a
// buffer lent by the writer: Append grew the column from nothing per insert, one call per
// value, and allocated a null map it did not need (~2% of the sink's CPU). It reports false,
// having changed nothing, when it cannot.
func (w *Writer) appendTimes(col column.Interface, v []time.Time) bool {
	if col.Rows() != 0 || len(v) == 0 {
		return false
	}
	switch c := col.(type) {
	case *column.DateTime:
		if !timeLayout.dt.ok {
			return false
		}
		cd := (*chproto.ColDateTime)(unsafe.Add(unsafe.Pointer(c), timeLayout.dt.off))
		lent := w.lend(c.Name())
		d := lent.dt[:0]
		for _, t := range v {
			d = append(d, chproto.ToDateTime(t))
		}
		lent.dt = d
		cd.Data = d[:len(d):len(d)]
		return true
	case *column.DateTime64:
		if !timeLayout.dt64.ok {
			return false
		}
		cd := (*chproto.ColDateTime64)(unsafe.Add(unsafe.Pointer(c), timeLayout.dt64.off))
		if !cd.PrecisionSet {
			return false
		}
		lent := w.lend(c.Name())
		d := lent.dt64[:0]
		for _, t := range v {
			d = append(d, chproto.ToDateTime64(t, cd.Precision))
		}
		lent.dt64 = d
		cd.Data = d[:len(d):len(d)]
		return true
	}
	return false
}

// shareFixed makes an empty fixed-width column read its rows from v itself, with no copy: the
// column's Append copied every value into a slice grown from nothing (clickhouse-go gives
// each insert new columns), an allocation, a copy and page faults per column and insert, ~7%
// of the sink's CPU in a 2M-row run. v's capacity is cut to its length, so anything appended
// to the column later copies instead of writing into the batch; the column only reads v until
// Send or Abort returns (it encodes it into the connection's buffer), and the batch is reset
// only after that. It reports false, having changed nothing, when it cannot.
func shareFixed[E any](c unsafe.Pointer, rows int, f fixedField, v []E) bool {
	if !f.ok || rows != 0 || len(v) == 0 {
		return false
	}
	col := (*[]E)(unsafe.Add(c, f.off))
	*col = v[:len(v):len(v)]
	return true
}

// reserve sizes a String or Array(String) column of a freshly prepared batch for v, so the
// appends that follow copy each value once. clickhouse-go gives every batch new columns and
// no way to size them: appending 100k rows grew each column's byte buffer by doubling, which
// in a profile of the sink was 6% of its CPU and most of the bytes it allocated. The column is
// filled with one value the size of all of v and as many rows or elements, then Reset, which
// empties it and keeps the capacity. If a clickhouse-go version dropped the capacity on
// Reset, this would only cost one extra copy; the rows sent are those appended after it.
func (w *Writer) reserve(col column.Interface, v any) {
	var total, n int
	switch v := v.(type) {
	case strRows:
		if col.Type() != "String" {
			return
		}
		if _, ok := col.(*column.String); ok && colStrOK {
			return // appendStrRows sizes the column itself
		}
		w.reserve(col, v.views())
		return
	case arrRows:
		if col.Type() != "Array(String)" {
			return
		}
		if a, ok := col.(*column.Array); ok && arrLayout.ok && a.Rows() == 0 {
			return // appendArrRows sizes the column itself
		}
		w.reserve(col, v.views())
		return
	case []string:
		if col.Type() != "String" {
			return
		}
		for _, s := range v {
			total += len(s)
		}
		n = len(v)
	case [][]string:
		if col.Type() != "Array(String)" { // not LowCardinality elements: no byte buffer to size
			return
		}
		for _, r := range v {
			for _, s := range r {
				total += len(s)
			}
			n += len(r)
		}
	default:
		return
	}
	if total == 0 || n == 0 {
		return
	}
	if cap(w.zeros) < total {
		w.zeros = make([]byte, total)
	}
	if cap(w.fill) < n {
		w.fill = make([]string, n)
	}
	fill := w.fill[:n]
	fill[0] = unsafe.String(&w.zeros[0], total)
	var err error
	if col.Type() == "Array(String)" {
		err = col.AppendRow(fill)
	} else {
		_, err = col.Append(fill)
	}
	fill[0] = ""
	col.Reset()
	_ = err // a failed reservation leaves an empty column; the real append reports errors
}

// colStrOffset is where clickhouse-go's column.String keeps its ch-go proto.ColStr (the bytes
// and the positions it encodes), and colStrOK whether the field is there with that type.
// Through it, a String column is filled from the batch arena with one copy of the bytes and
// one pass over the row ends (appendStrRows), where the public Append of a []string needed
// the views built, a reserving append (see reserve), then a copy per value: measured in
// BenchmarkAppendEncode. If a clickhouse-go version moves or retypes the field, colStrOK is
// false and the public path is used (TestColStrLayout fails, to say so).
var colStrOffset, colStrOK = func() (uintptr, bool) {
	f, ok := reflect.TypeOf(column.String{}).FieldByName("col")
	if !ok || f.Type != reflect.TypeOf(chproto.ColStr{}) {
		return 0, false
	}
	return f.Offset, true
}()

func colStr(c *column.String) *chproto.ColStr {
	return (*chproto.ColStr)(unsafe.Add(unsafe.Pointer(c), colStrOffset))
}

// colBufs are the buffers of one column of a table, lent to the column of each insert and
// kept by the writer in between. clickhouse-go gives every insert new, empty columns, so
// each insert allocated (and the kernel and runtime zeroed) some 100 MB per 100k session
// rows, and the collector reclaimed it: memclr alone was a quarter of the append CPU in
// BenchmarkAppendEncode. A column is done with its buffers once Send or Abort returns: the
// writer prepares a new batch for every attempt and never sends one twice. (String bytes are
// not copied at all: see appendStrRows.)
type colBufs struct {
	pos  []chproto.Position
	u8   []uint8
	u16  []uint16
	dt   []chproto.DateTime
	dt64 []chproto.DateTime64
	ints []int
	offs []uint64
}

// lend returns the buffers kept for the column named key (a table's column names are
// distinct, and the writer inserts one table at a time).
func (w *Writer) lend(key string) *colBufs {
	if w.lent == nil {
		w.lent = map[string]*colBufs{}
	}
	b := w.lent[key]
	if b == nil {
		b = &colBufs{}
		w.lent[key] = b
	}
	return b
}

// appendStrRows appends rows of an arena column to a ColStr: the arena already holds the
// values back to back, as ColStr.Buf does. An empty column reads the arena itself (no copy
// of the bytes: ColStr encodes only the ranges its positions name, and the arena is kept
// until the insert is done with, like shareFixed's slices; its capacity is cut so an append
// to the column copies) and takes lent's position buffer (nil: none).
func appendStrRows(cs *chproto.ColStr, r strRows, lent *colBufs) {
	b, start := r.bytes()
	var base int // arena offset -> Buf offset
	if cap(cs.Buf) == 0 && cap(cs.Pos) == 0 {
		if lent != nil {
			cs.Pos = lent.pos[:0]
			defer func() { lent.pos = cs.Pos }()
		}
		cs.Buf = r.c.buf[: start+len(b) : start+len(b)]
	} else {
		base = len(cs.Buf) - start
		cs.Buf = append(cs.Buf, b...)
	}
	cs.Pos = slices.Grow(cs.Pos, r.hi-r.lo)
	prev := start
	for _, e := range r.c.end[r.lo:r.hi] {
		cs.Pos = append(cs.Pos, chproto.Position{Start: base + prev, End: base + int(e)})
		prev = int(e)
	}
}

// lcLayout is where clickhouse-go's column.LowCardinality keeps what its AppendRow fills: the
// row count, the dictionary column, the nullable flag, and the per-row dictionary indexes
// with the map from value to index (of which Encode reads only the length). Found by
// reflection at start-up; ok is false if any field is missing or of another type, and then
// the public AppendRow is used (TestLowCardinalityLayout fails, to say so).
var lcLayout = func() (l struct {
	rows, index, nullable, keys, values uintptr
	ok                                  bool
}) {
	t := reflect.TypeOf(column.LowCardinality{})
	field := func(t reflect.Type, name string, want reflect.Type) (uintptr, bool) {
		f, ok := t.FieldByName(name)
		return f.Offset, ok && (want == nil || f.Type == want)
	}
	var ok [6]bool
	l.rows, ok[0] = field(t, "rows", reflect.TypeOf(0))
	l.index, ok[1] = field(t, "index", reflect.TypeOf((*column.Interface)(nil)).Elem())
	l.nullable, ok[2] = field(t, "nullable", reflect.TypeOf(false))
	app, ok3 := t.FieldByName("append")
	ok[3] = ok3 && app.Type.Kind() == reflect.Struct
	if ok[3] {
		var k, v uintptr
		k, ok[4] = field(app.Type, "keys", reflect.TypeOf([]int(nil)))
		v, ok[5] = field(app.Type, "index", reflect.TypeOf(map[any]int(nil)))
		l.keys, l.values = app.Offset+k, app.Offset+v
	}
	l.ok = ok == [6]bool{true, true, true, true, true, true} && colStrOK
	return l
}()

// appendLCRows fills an empty, non-nullable LowCardinality(String) column from an arena
// column, as its AppendRow would value by value (the same dictionary in the same order, the
// same keys: TestAppendColumnEncodesLikeGenericAppend), with one map lookup per value keyed
// by the arena string instead of AppendRow's reflection, interface hashing and two lookups.
// It reports false, having changed nothing, when it cannot.
func (w *Writer) appendLCRows(c *column.LowCardinality, r strRows) bool {
	if !lcLayout.ok {
		return false
	}
	p := unsafe.Pointer(c)
	rows := (*int)(unsafe.Add(p, lcLayout.rows))
	idx, ok := (*(*column.Interface)(unsafe.Add(p, lcLayout.index))).(*column.String)
	if *rows != 0 || *(*bool)(unsafe.Add(p, lcLayout.nullable)) || !ok {
		return false
	}
	keys := (*[]int)(unsafe.Add(p, lcLayout.keys))
	if cap(*keys) == 0 {
		lent := w.lend(c.Name() + "\x00keys")
		*keys = lent.ints[:0]
		defer func() { lent.ints = *keys }()
	}
	values := (*map[any]int)(unsafe.Add(p, lcLayout.values))
	if *values == nil {
		*values = map[any]int{}
	}
	dict := colStr(idx)
	if dict.Rows() == 0 {
		dict.Append("") // AppendRow's first entry: the default value, index 0
	}
	if w.dict == nil {
		w.dict = map[string]int{}
	}
	clear(w.dict)
	if w.lcCache == nil {
		w.lcCache = new([lcCacheSize]lcSlot)
	}
	cache := w.lcCache
	*keys = slices.Grow((*keys)[:0], r.hi-r.lo)
	_, start := r.bytes()
	for _, e := range r.c.end[r.lo:r.hi] {
		s := arenaString(r.c.buf, start, int(e))
		start = int(e)
		// Most of these columns hold a handful of values (hosts, products, outcomes): a
		// direct-mapped cache answers them without hashing the string for the map.
		slot := &cache[lcSlotOf(s)]
		if slot.k1 != 0 && slot.s == s {
			*keys = append(*keys, slot.k1-1)
			continue
		}
		k, ok := w.dict[s]
		if !ok {
			dict.Append(s)
			k = dict.Rows() - 1
			w.dict[s] = k    // s points into the arena, which outlives this call
			(*values)[k] = k // Encode sizes the keys by the number of distinct values
		}
		slot.s, slot.k1 = s, k+1
		*keys = append(*keys, k)
	}
	clear(w.dict) // hold no arena strings past the call
	clear(cache[:])
	*rows = r.hi - r.lo
	w.fillLCKeys(p, c.Name(), *keys, len(*values))
	return true
}

// lcSlot is an entry of appendLCRows' cache: a value and its key plus one (0: empty).
type lcSlot struct {
	s  string
	k1 int
}

const lcCacheSize = 256

// lcSlotOf picks s's cache slot from its length and its first and last bytes (up to 8 of
// each): values that differ anywhere else share a slot and take turns, which costs map
// lookups, never a wrong key (a hit compares the whole value).
func lcSlotOf(s string) uint {
	n := len(s)
	x := uint64(n)
	switch {
	case n >= 8:
		x ^= load8(s, 0) ^ bits.RotateLeft64(load8(s, n-8), 29)
	case n > 0:
		x ^= uint64(s[0])<<8 | uint64(s[n-1])<<16 | uint64(s[n/2])<<24
	}
	return uint((x * 0x9E3779B97F4A7C15) >> (64 - 8))
}

// lcKeyLayout is where clickhouse-go's column.LowCardinality keeps the key width it encodes
// and its UInt8 and UInt16 key columns (its keyUInt8 and keyUInt16 are 0 and 1). Found by
// reflection at start-up; ok is false otherwise, and Encode converts the keys itself
// (TestLowCardinalityLayout fails, to say so).
var lcKeyLayout = func() (l struct {
	key, keys8, keys16 uintptr
	ok                 bool
}) {
	t := reflect.TypeOf(column.LowCardinality{})
	k, ok1 := t.FieldByName("key")
	k8, ok2 := t.FieldByName("keys8")
	k16, ok3 := t.FieldByName("keys16")
	if !ok1 || !ok2 || !ok3 || k.Type != reflect.TypeOf(byte(0)) || k8.Type != reflect.TypeOf(column.UInt8{}) ||
		k16.Type != reflect.TypeOf(column.UInt16{}) {
		return l
	}
	l.key, l.keys8, l.keys16 = k.Offset, k8.Offset+fixedUInt8.off, k16.Offset+fixedUInt16.off
	l.ok = lcLayout.ok && fixedUInt8.ok && fixedUInt16.ok
	return l
}()

// fillLCKeys gives a LowCardinality column filled by appendLCRows (at p, with keys and
// distinct values) its encoded keys: LowCardinality.Encode otherwise converted the []int
// keys into a fresh UInt8 or UInt16 column one AppendRow at a time, growing it from nothing
// each insert (~2.5% of the sink's CPU). The width is Encode's choice for as many distinct
// values; Encode then sends these keys as they are. Wider keys are left to Encode.
func (w *Writer) fillLCKeys(p unsafe.Pointer, name string, keys []int, distinct int) {
	if !lcKeyLayout.ok {
		return
	}
	switch {
	case distinct < math.MaxUint8:
		setLCKeys(p, lcKeyLayout.keys8, 0, &w.lend(name+"\x00keys8").u8, keys)
	case distinct < math.MaxUint16:
		setLCKeys(p, lcKeyLayout.keys16, 1, &w.lend(name+"\x00keys16").u16, keys)
	}
}

// setLCKeys converts keys to E into the lent buffer *buf and makes it the key column at
// offset off of the LowCardinality column at p, with key width code width.
func setLCKeys[E uint8 | uint16](p unsafe.Pointer, off uintptr, width byte, buf *[]E, keys []int) {
	d := (*buf)[:0]
	for _, k := range keys {
		d = append(d, E(k))
	}
	*buf = d
	*(*[]E)(unsafe.Add(p, off)) = d[:len(d):len(d)]
	*(*byte)(unsafe.Add(p, lcKeyLayout.key)) = width
}

// arrLayout is where clickhouse-go's column.Array keeps its row offsets: a []*offset whose
// element holds a column.UInt64, which holds a ch-go ColUInt64. Found by reflection at
// start-up and type-checked; ok is false otherwise, and then the public AppendRow is used
// (TestArrayLayout fails, to say so). The elements are the public Base() column.
var arrLayout = func() (l struct {
	offsets, values uintptr
	ok              bool
}) {
	f, ok := reflect.TypeOf(column.Array{}).FieldByName("offsets")
	if !ok || f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Pointer || f.Type.Elem().Elem().Kind() != reflect.Struct {
		return l
	}
	v, ok1 := f.Type.Elem().Elem().FieldByName("values")
	c, ok2 := reflect.TypeOf(column.UInt64{}).FieldByName("col")
	if !ok1 || !ok2 || v.Type != reflect.TypeOf(column.UInt64{}) || c.Type != reflect.TypeOf(chproto.ColUInt64{}) {
		return l
	}
	l.offsets, l.values, l.ok = f.Offset, v.Offset+c.Offset, colStrOK
	return l
}()

// arrBase is where clickhouse-go's column.Array keeps its element column (what Base returns),
// found by reflection and type-checked; ok is false otherwise, and the elements are filled
// into clickhouse-go's String column (TestArrayLayout fails, to say so).
var arrBase = func() (l struct {
	off uintptr
	ok  bool
}) {
	f, ok := reflect.TypeOf(column.Array{}).FieldByName("values")
	l.off, l.ok = f.Offset, ok && f.Type == reflect.TypeOf((*column.Interface)(nil)).Elem() && arrLayout.ok
	return l
}()

// appendArrRows fills an empty one-level Array(String) or Array(LowCardinality(String))
// column from an arena column: the elements as appendStrRows or appendLCRows fill a column,
// the offsets (each row's end, counted in elements) in one pass. AppendRow instead took an
// interface per row (an allocation), a type switch per element, and a reserving append of
// its own (see reserve). It reports false, having changed nothing, when it cannot.
func (w *Writer) appendArrRows(a *column.Array, r arrRows) bool {
	offs := arrOffsets(a)
	if offs == nil {
		return false
	}
	el := r.elems()
	switch b := a.Base().(type) {
	case *column.String:
		if arrBase.ok && b.Rows() == 0 {
			// The elements encode straight from the arena (arenaStrColumn), in place of
			// the Array's own String column for this insert.
			*(*column.Interface)(unsafe.Add(unsafe.Pointer(a), arrBase.off)) = &arenaStrColumn{String: b, r: el}
			break
		}
		appendStrRows(colStr(b), el, w.lend(a.Name()+"\x00elems"))
	case *column.LowCardinality:
		if !w.appendLCRows(b, el) {
			return false
		}
	default:
		return false
	}
	w.appendOffsets(a, offs, r.c.rowEnd[r.lo:r.hi], el.lo)
	return true
}

// arrOffsets returns the offsets holder of an empty one-level Array column, or nil.
func arrOffsets(a *column.Array) unsafe.Pointer {
	if !arrLayout.ok || a.Rows() != 0 {
		return nil
	}
	offs := *(*[]unsafe.Pointer)(unsafe.Add(unsafe.Pointer(a), arrLayout.offsets))
	if len(offs) != 1 {
		return nil
	}
	return offs[0]
}

// appendOffsets writes an Array column's row offsets: each row's end in elements, counted
// from the first row's start (first).
func (w *Writer) appendOffsets(a *column.Array, offs unsafe.Pointer, rowEnd []int, first int) {
	u := (*chproto.ColUInt64)(unsafe.Add(offs, arrLayout.values))
	if cap(*u) == 0 {
		lent := w.lend(a.Name() + "\x00offsets")
		*u = lent.offs[:0]
		defer func() { lent.offs = *u }()
	}
	*u = slices.Grow(*u, len(rowEnd))
	for _, e := range rowEnd {
		*u = append(*u, uint64(e-first))
	}
}

// u16Col is where clickhouse-go's column.UInt16 keeps its ch-go ColUInt16.
var u16ColOffset, u16ColOK = func() (uintptr, bool) {
	f, ok := reflect.TypeOf(column.UInt16{}).FieldByName("col")
	return f.Offset, ok && f.Type == reflect.TypeOf(chproto.ColUInt16{})
}()

// appendU16ArrRows fills an empty Array(UInt16) column (the recipients' SMTP codes) like
// appendArrRows: AppendRow boxed each row's slice and each element (an allocation each for
// values over 255), two allocations per row and recipient. It reports false, having changed
// nothing, when it cannot.
func (w *Writer) appendU16ArrRows(a *column.Array, r u16ArrRows) bool {
	offs := arrOffsets(a)
	b, ok := a.Base().(*column.UInt16)
	if offs == nil || !ok || !u16ColOK {
		return false
	}
	els, first := r.elems()
	u := (*chproto.ColUInt16)(unsafe.Add(unsafe.Pointer(b), u16ColOffset))
	*u = append(*u, els...)
	w.appendOffsets(a, offs, r.c.rowEnd[r.lo:r.hi], first)
	return true
}

// maxCanon bounds the canonical-value cache; LowCardinality columns hold a few hundred distinct
// values, so it is only reached when one is misused, and then the cache starts over before
// the next column (within a column it may grow past the bound, by at most its rows).
const maxCanon = 1 << 16

// canonical returns a pointer to a copy of s, the same pointer for every equal s within a
// column. The copy is a clone: s points into a batch arena that is reused.
func (w *Writer) canonical(s string) *string {
	if p, ok := w.canon[s]; ok {
		return p
	}
	c := strings.Clone(s)
	p := &c
	w.canon[c] = p
	return p
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
