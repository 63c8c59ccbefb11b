package clickhouse

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/mxtrail/mxtrail/enrich/alert"
	"github.com/mxtrail/mxtrail/enrich/record"
	enrichstream "github.com/mxtrail/mxtrail/enrich/stream"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// Kind says which table a topic feeds.
type Kind uint8

const (
	KindSessions Kind = iota + 1
	KindEvents
	KindDeadLetter
)

// Message is what the batcher needs from a Kafka message.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string // only for the dead-letter topic's metadata
}

type partKey struct {
	topic     string
	partition int
}

// Batch is a contiguous stretch of the consumed stream, decoded into columns for the three
// tables, with the offsets it covers. It is reused after its insert is acknowledged.
type Batch struct {
	f        schema.Features
	maxField int

	sessions sessionColumns
	events   eventColumns
	dead     deadColumns
	alerts   alertColumns

	msgs int
	// wire is the insert bytes of the events, deadletter and alerts rows (see Bytes); the
	// sessions' are read off their arenas. timeW is the width of a time column on the wire.
	wire, timeW int
	opened      time.Time
	done        [4]bool // tables already inserted (when a later one failed and is retried)

	lex   lexer
	esc   []byte // the session lexer's unescaped strings, reused per record
	sess  record.Session
	to    sessionTargets // b.sessions' arenas, for the canonical decoder
	event record.Event
	alert alert.Record

	deadReasons map[string]int
	kindBytes   [4]int

	// The message behind each sessions and events row, so a row the server rejects can be
	// dead-lettered as it arrived (see Writer.isolate). Holds two pointers a row, not 33.
	// With rereadSessions, a sessions row keeps only its partition and offset: its columns
	// hold copies of every value, so the batch keeps nothing of the messages (Pins), and a
	// rejected row's record is read again from Kafka (Writer.reread).
	sessSrc, eventSrc []rowSource
	rereadSessions    bool
	// The partitions in the batch (rowSource.part indexes them) with their first and last
	// offsets, for commits and dedup tokens. lastPart is the index of the previous message's
	// partition: a run of messages from one partition costs no map lookup.
	parts             []partKey
	firstOff, lastOff []int64
	partIdx           map[partKey]int32
	lastPart          int32
}

// rowSource is where a row came from: key and value are the message's own (nil for a
// sessions row of a batch that rereads them).
type rowSource struct {
	part       int32
	offset     int64
	key, value []byte
}

// Pins reports whether the batch keeps references into the key and value of a message of
// kind it was given (Add): the caller must then keep those bytes unmodified until Reset.
// Sessions rows are copied into the column arenas, and keep their message only so a row
// the server rejects can be dead-lettered as it arrived, which a batch that rereads them
// does from Kafka instead (SetRereadSessions). Events and alerts rows point into their
// messages.
func (b *Batch) Pins(kind Kind) bool { return kind != KindSessions || !b.rereadSessions }

// SetRereadSessions makes Add keep no reference into sessions messages (see Pins): a sessions
// row the server rejects is then dead-lettered with its record read again from Kafka, which
// the batch's writer must be able to do (Writer.SetReread). Set it on an empty batch.
func (b *Batch) SetRereadSessions(on bool) { b.rereadSessions = on }

// NewBatch returns an empty batch for a server with features f. maxField bounds any one
// string field of a record (longer fields dead-letter the record).
func NewBatch(f schema.Features, maxField int) *Batch {
	b := &Batch{f: f, maxField: maxField, deadReasons: map[string]int{}, partIdx: map[partKey]int32{}, timeW: 4}
	if f.DateTime64 {
		b.timeW = 8
	}
	b.sessions.ipv6 = f.IPv6
	return b
}

// Reset empties the batch for reuse.
func (b *Batch) Reset() {
	b.sessions.reset()
	b.events.reset()
	b.dead.reset()
	b.alerts.reset()
	clear(b.deadReasons)
	clear(b.sessSrc)
	clear(b.eventSrc)
	b.sessSrc, b.eventSrc, b.parts = b.sessSrc[:0], b.eventSrc[:0], b.parts[:0]
	b.firstOff, b.lastOff, b.lastPart = b.firstOff[:0], b.lastOff[:0], 0
	clear(b.partIdx)
	b.msgs, b.wire, b.done, b.kindBytes = 0, 0, [4]bool{}, [4]int{}
	b.opened = time.Time{}
}

// Len is the number of messages in the batch.
func (b *Batch) Len() int { return b.msgs }

// Bytes is the size of the batch's inserts as the server receives them, uncompressed: the
// Native columns' bytes (string bytes with their length prefixes, fixed-width values, array
// offsets), which is what makes the parts an insert writes big or small. It is not the bytes
// the batch holds in memory: see MemoryLimitFor. A generated session record of ~1 KB of JSON
// is ~0.5 KB here (TestBatchBytesIsTheInsertSize), so the default 32 MiB closes session
// batches at ~65k rows rather than ~33k. LowCardinality columns are counted as their values
// (the wire carries a dictionary and indexes instead): an upper bound, and exactly the bytes
// the batch's arenas hold.
func (b *Batch) Bytes() int { return b.wire + b.sessions.wireBytes(b.timeW) }

// ValueBytes is the message value bytes the batch holds (read from Kafka).
func (b *Batch) ValueBytes() int {
	return b.kindBytes[0] + b.kindBytes[1] + b.kindBytes[2] + b.kindBytes[3]
}

// SizeHint is how full a batch got, for growing a fresh batch to it at once (Grow).
type SizeHint struct {
	sessions sessionSizes
	msgs     int
}

// SizeHint returns b's sizes.
func (b *Batch) SizeHint() SizeHint { return SizeHint{sessions: b.sessions.sizes(), msgs: b.msgs} }

// scale returns h with every size multiplied by num/den, rounded up.
func (h SizeHint) scale(num, den int) SizeHint {
	f := func(n int) int { return int((int64(n)*int64(num) + int64(den) - 1) / int64(den)) }
	h.msgs, h.sessions.rows, h.sessions.codes = f(h.msgs), f(h.sessions.rows), f(h.sessions.codes)
	for i := range h.sessions.str {
		h.sessions.str[i] = [2]int{f(h.sessions.str[i][0]), f(h.sessions.str[i][1])}
	}
	return h
}

// Max returns the larger of h and o in every size.
func (h SizeHint) Max(o SizeHint) SizeHint {
	h.msgs = max(h.msgs, o.msgs)
	h.sessions.rows, h.sessions.codes = max(h.sessions.rows, o.sessions.rows), max(h.sessions.codes, o.sessions.codes)
	for i := range h.sessions.str {
		h.sessions.str[i] = [2]int{max(h.sessions.str[i][0], o.sessions.str[i][0]), max(h.sessions.str[i][1], o.sessions.str[i][1])}
	}
	return h
}

// Grow makes room in b for a batch of sizes h, so filling it does not grow its columns step
// by step (each step a copy). Reset keeps the room; a batch that has it is left alone.
func (b *Batch) Grow(h SizeHint) {
	b.sessions.grow(h.sessions)
	b.sessSrc = growCap(b.sessSrc, h.sessions.rows)
}

// GrowFor grows b, once it holds a sample of a batch that will close at batchRows rows or
// batchBytes of Bytes (bytes: its Bytes now) -- a sixteenth of either -- to the whole batch
// the sample predicts, and reports whether it did (false: the sample is too small yet). Every
// size is scaled by whichever limit the sample reaches first, plus a sixteenth for batches
// that pass batchBytes a little (see Config.BatchBytes) and records larger than the sample's. A
// batch slot's first fill, before any batch shipped to give a SizeHint, grew its arenas by
// doubling from empty otherwise: ~0.9 µs more per row of that fill (BenchmarkBatchFirstFill),
// and 3x its size allocated. Room b has already is kept; room it never fills costs no page
// faults (growCap).
func (b *Batch) GrowFor(batchRows, batchBytes, bytes int) bool {
	if bytes < batchBytes/16 && b.Len() < batchRows/16 {
		return false
	}
	rows := b.sessions.len()
	if rows == 0 || bytes <= 0 {
		return true // nothing to size: a batch without sessions
	}
	num, den := batchBytes, bytes
	if batchRows*bytes < batchBytes*rows {
		num, den = batchRows, rows
	}
	b.Grow(b.SizeHint().scale(num+num/16, den))
	return true
}

// Rows returns the rows per table.
func (b *Batch) Rows() (sessions, events, dead int) {
	return b.sessions.len(), b.events.len(), b.dead.len()
}

// valueString views a message value as a string without copying it. Decoded fields are
// substrings of it, so the batch keeps the value alive until Reset: the caller must not modify
// m.Value after Add (kafka-go allocates a fresh value per message). Copying instead cost an
// allocation and a memmove of the whole record per row.
func valueString(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

// Add decodes m as kind and appends it to the batch. The batch holds on to m.Value (see
// valueString) until Reset. A record that cannot be decoded or
// converted becomes a deadletter row instead; Add itself never fails.
func (b *Batch) Add(kind Kind, m *Message, now time.Time) {
	if b.msgs == 0 {
		b.opened = now
	}
	b.msgs++
	if kind >= KindSessions && kind <= KindAlerts {
		b.kindBytes[kind-1] += len(m.Value)
	}
	part := b.lastPart
	if int(part) >= len(b.parts) || b.parts[part].partition != m.Partition || b.parts[part].topic != m.Topic {
		pk := partKey{m.Topic, m.Partition}
		var ok bool
		if part, ok = b.partIdx[pk]; !ok {
			part = int32(len(b.parts))
			b.partIdx[pk] = part
			b.parts = append(b.parts, pk)
			b.firstOff = append(b.firstOff, m.Offset)
			b.lastOff = append(b.lastOff, m.Offset)
		}
		b.lastPart = part
	}
	b.lastOff[part] = m.Offset
	src := rowSource{part: part, offset: m.Offset, key: m.Key, value: m.Value}

	var err error
	switch kind {
	case KindSessions:
		if err = b.addSession(m); err == nil {
			if b.rereadSessions {
				src.key, src.value = nil, nil
			}
			b.sessSrc = append(b.sessSrc, src)
		}
	case KindEvents:
		if err = b.addEvent(m); err == nil {
			b.eventSrc = append(b.eventSrc, src)
		}
	case KindDeadLetter:
		b.addUpstreamDead(m, now)
		return
	case KindAlerts:
		err = b.addAlert(m)
	default:
		err = fmt.Errorf("no table for topic %q", m.Topic)
	}
	if err != nil {
		b.addDead(m, classify(err), err, now)
	}
}

func (b *Batch) addSession(m *Message) error {
	if b.esc == nil {
		b.esc = make([]byte, 0, 1024)
	}
	if b.to.sessionID != &b.sessions.sessionID {
		b.to = b.sessions.targets()
	}
	// The record's unescaped strings go to b.esc (not an allocation each): appendSession
	// copies them into the arenas before the next record reuses it. A canonical record's
	// strings go straight to the arenas as they are read (sessionTargets); any other record
	// is decoded by the general decoder and appended after its checks.
	b.lex.reset(valueString(m.Value), b.maxField, b.esc[:0])
	canon, err := decodeSessionTo(&b.lex, &b.sess, &b.to)
	b.esc = b.lex.esc
	var ip [16]byte
	if err != nil {
		err = fmt.Errorf("decode session record: %w", err)
	} else if ip, err = checkSession(&b.sess, b.f.DateTime64); err != nil {
		err = fmt.Errorf("convert session %q: %w", b.sess.SessionID, err)
	}
	if !canon || err != nil {
		b.sessions.dropPartial()
	}
	switch {
	case err != nil:
		return err
	case canon:
		b.sessions.appendRest(&b.sess, ip)
	default:
		b.sessions.appendSession(&b.sess, ip)
	}
	return nil
}

func (b *Batch) addEvent(m *Message) error {
	b.lex.reset(valueString(m.Value), b.maxField, nil)
	if err := decodeEvent(&b.lex, &b.event); err != nil {
		return fmt.Errorf("decode event record: %w", err)
	}
	if err := checkEvent(&b.event, b.f.DateTime64); err != nil {
		return fmt.Errorf("convert event: %w", err)
	}
	b.wire += b.events.appendEvent(&b.event) + b.timeW
	return nil
}

// Headers of a dead-letter topic message that carry the original coordinates. Producers of
// mxtrail.deadletter (the enricher) set them; missing headers fall back to the message's own.
// They are the enricher's names: one definition for writer and reader.
const (
	HeaderReason          = enrichstream.DLHeaderReason
	HeaderError           = enrichstream.DLHeaderError
	HeaderSourceTopic     = enrichstream.DLHeaderTopic
	HeaderSourcePartition = enrichstream.DLHeaderPartition
	HeaderSourceOffset    = enrichstream.DLHeaderOffset
)

func (b *Batch) addUpstreamDead(m *Message, now time.Time) {
	d := DeadLetter{Time: now, Reason: ReasonUpstream, Topic: m.Topic, Partition: int32(m.Partition),
		Offset: m.Offset, Key: string(m.Key), Raw: string(m.Value)}
	if v := m.Headers[HeaderReason]; v != "" {
		d.Error = v
	}
	if v := m.Headers[HeaderError]; v != "" {
		d.Error = strings.TrimSpace(d.Error + ": " + v)
	}
	if v := m.Headers[HeaderSourceTopic]; v != "" {
		d.Topic = v
		var p int32
		var o int64
		if _, err := fmt.Sscan(m.Headers[HeaderSourcePartition], &p); err == nil {
			d.Partition = p
		}
		if _, err := fmt.Sscan(m.Headers[HeaderSourceOffset], &o); err == nil {
			d.Offset = o
		}
	}
	b.wire += b.dead.appendDead(&d) + b.timeW
	b.deadReasons[ReasonUpstream]++
}

func (b *Batch) addDead(m *Message, reason string, err error, now time.Time) {
	b.wire += b.dead.appendDead(&DeadLetter{Time: now, Reason: reason, Error: err.Error(), Topic: m.Topic,
		Partition: int32(m.Partition), Offset: m.Offset, Key: string(m.Key), Raw: string(m.Value)}) + b.timeW
	b.deadReasons[reason]++
}

// rowSource returns where row i of table (sessions or events) came from.
func (b *Batch) rowSource(table, i int) (topic string, partition int, r rowSource) {
	src := b.sessSrc
	if table == 1 {
		src = b.eventSrc
	}
	r = src[i]
	pk := b.parts[r.part]
	return pk.topic, pk.partition, r
}

// rejectRow turns row i of table (sessions or events), which the server refused, into a
// deadletter row carrying the server's error, with key and raw the message's (see
// Writer.rowMessage). The row stays in its table's columns; the writer no longer sends it.
func (b *Batch) rejectRow(table int, i int, serverErr error, key, raw []byte, now time.Time) {
	topic, partition, r := b.rowSource(table, i)
	b.wire += b.dead.appendDead(&DeadLetter{Time: now, Reason: ReasonRejected, Error: serverErr.Error(), Topic: topic,
		Partition: int32(partition), Offset: r.offset, Key: string(key), Raw: string(raw)}) + b.timeW
	b.deadReasons[ReasonRejected]++
}

func classify(err error) string {
	switch {
	case errors.Is(err, errTooLarge):
		return ReasonTooLarge
	case errors.Is(err, errRange):
		return ReasonConvert
	case strings.HasPrefix(err.Error(), "convert"):
		return ReasonConvert
	}
	return ReasonDecode
}

// Offsets returns, per topic and partition, the last offset the batch holds (what to commit).
func (b *Batch) Offsets() map[string]map[int]int64 {
	out := map[string]map[int]int64{}
	for i, k := range b.parts {
		if out[k.topic] == nil {
			out[k.topic] = map[int]int64{}
		}
		out[k.topic][k.partition] = b.lastOff[i]
	}
	return out
}

// dedupToken names the stream range of the batch for one table, so a retried insert of the
// same rows is recognised by servers that support insert_deduplication_token.
func (b *Batch) dedupToken(table string) string {
	idx := make([]int, len(b.parts))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool {
		ki, kj := b.parts[idx[i]], b.parts[idx[j]]
		if ki.topic != kj.topic {
			return ki.topic < kj.topic
		}
		return ki.partition < kj.partition
	})
	var sb strings.Builder
	sb.WriteString(table)
	for _, i := range idx {
		k := b.parts[i]
		fmt.Fprintf(&sb, ";%s/%d:%d-%d", k.topic, k.partition, b.firstOff[i], b.lastOff[i])
	}
	return sb.String()
}

func (b *Batch) bytesByKind() map[string]int {
	return map[string]int{"sessions": b.kindBytes[0], "events": b.kindBytes[1], "deadletter": b.kindBytes[2], "alerts": b.kindBytes[3]}
}
