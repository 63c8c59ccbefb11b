package stream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/alert"
	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/enrich/session"
	"github.com/mxtrail/mxtrail/ingest/wire"
	"github.com/mxtrail/mxtrail/internal/kafkafetch"
)

// Dead-letter header names. The value of a dead letter is the record's raw value (clipped to
// MaxDeadLetterBytes); its key is the record's key; the original headers follow these. The
// sink reads them (sink/clickhouse uses these constants), so they are the one definition.
const (
	DLHeaderReason    = "mxtrail-reason"           // one of DeadLetterReasons
	DLHeaderError     = "mxtrail-error"            // the error text (parser reason, JSON error...)
	DLHeaderTopic     = "mxtrail-source-topic"     // source topic
	DLHeaderPartition = "mxtrail-source-partition" // source partition (decimal)
	DLHeaderOffset    = "mxtrail-source-offset"    // source offset (decimal)
	DLHeaderLength    = "mxtrail-original-length"  // original value length in bytes (decimal)
)

// expireEvery is how many records pass between Expire calls while traffic flows (Expire
// walks the least recently active sessions; the offline command uses the same cadence).
const expireEvery = 1024

// fetchMaxBytes bounds one fetch of a partition. Two fetches per partition are in memory at
// once (one handled, one filling), so this bounds the raw bytes an instance holds; a larger
// record still comes whole (the broker sends at least one batch). At 16 MiB a backlog came in
// a few huge fetches: the record slice grew by copying (a quarter of the CPU in the profile)
// and peak RSS reached 700 MiB on 8 partitions. At 1 MiB of the shipper's zstd batches (~9:1)
// a fetch held ~50k records, so 17 partitions kept most of a 2M-line backlog decoded at once:
// 1.7M record headers of pointers for every garbage collection to scan. 512 KiB (a couple of
// shipper batches) cost 10-15% less CPU per line on that backlog (3 interleaved runs each:
// 3.4-3.7 µs against 3.7-4.5; 256 KiB measured the same as 512 within noise).
const fetchMaxBytes = 512 << 10

// fetchPoolBytes bounds the free buffers a partition keeps: its two chunks' responses and
// decompressed batches (a 512 KiB fetch of the shipper's zstd batches is ~5 MB decompressed).
const fetchPoolBytes = 16 << 20

// latencySample: one record in this many is timed for the processing-latency histogram.
const latencySample = 16

// partition is one assigned partition: its goroutine owns parser, assembler and watermark;
// the tracker is shared with the producer's completion goroutines under mu.
type partition struct {
	e      *Enricher
	id     int
	source string // "<topic>/<partition>": the Position source of its lines
	parser *parse.Parser
	asm    *session.Assembler
	wm     Watermark
	alerts *alert.Engine       // nil when alerts are off; dropped with the partition
	hosts  *alert.HostCounters // per-host counters of this partition
	arecs  []alert.Record
	late   int64
	aout   []kafka.Message // alert records queued, each with its ack offset (see alertRecords)

	mu  sync.Mutex
	tr  *Tracker     // nil until the first record
	hwm atomic.Int64 // the partition's end as the last fetch saw it

	lastOffset  int64 // last consumed offset, -1 before the first
	committed   int64 // last committed offset, -1 before the first commit
	lagShown    int64
	openShown   int
	openCounted int // this partition's share of Enricher.open
	evictShown  int64
	lastExpire  time.Time
	sinceExpire int
	seq         uint // records handled, for sampling the latency histogram

	in   Input
	dec  Decoder
	ev   event.Event
	hdrs []wire.Header
	// The headers of the last record decoded: kafkafetch gives a record whose headers equal
	// its predecessor's the same slice, and then only its key and value are decoded.
	lastHdrs *kafka.Header
	lastHdrN int
	evs      []record.Event
	out      []kafka.Message
	arena    arena // backing bytes of out's keys and values
	zones    map[string]*time.Location
}

func (p *partition) acked(offset int64) {
	p.mu.Lock()
	err := p.tr.Acked(offset)
	revoked := p.tr.revoked
	p.mu.Unlock()
	if err != nil && !revoked {
		p.e.log.Error("acknowledgement bookkeeping", "partition", p.id, "err", err)
	}
}

func (e *Enricher) newPartition(id int) (*partition, error) {
	p := &partition{e: e, id: id, source: e.cfg.Topics.Raw + "/" + strconv.Itoa(id),
		lastOffset: -1, committed: -1, zones: map[string]*time.Location{},
		wm: Watermark{Lateness: e.cfg.Lateness, IdleAfter: e.cfg.IdleAdvance}}
	p.parser = e.parser
	var err error
	if p.asm, err = session.New(e.cfg.Session); err != nil {
		return nil, err
	}
	p.asm.KeepClosedSpans() // for the commit point
	return p, nil
}

// runPartition consumes one partition until the generation ends (revocation: drop the state,
// commit nothing more) or stop is cancelled (shutdown: drain acknowledgements, commit).
func (e *Enricher) runPartition(stop, gctx context.Context, gen *kafka.Generation, commitMu *sync.Mutex, a kafka.PartitionAssignment) {
	log := e.log.With("partition", a.ID)
	p, err := e.newPartition(a.ID)
	if err != nil {
		e.failed.CompareAndSwap(nil, &err)
		return
	}
	if e.cat != nil {
		if p.alerts, err = alert.New(*e.cfg.Alerts, e.cat); err != nil {
			e.failed.CompareAndSwap(nil, &err)
			return
		}
		p.hosts = e.am.Hosts()
	}
	e.addPart(p)
	defer e.dropPart(p)
	defer p.forget()

	rctx, rcancel := context.WithCancel(gctx)
	start := a.Offset
	if start < 0 {
		start = kafka.FirstOffset
	}
	// The two chunks' buffers circulate through a pool: handled chunks hold no views into
	// them (dropFetch; TestPartitionKeepsNoFetchBuffer), so the next fetches reuse them.
	pool := kafkafetch.NewPool(fetchPoolBytes)
	f := kafkafetch.New(kafkafetch.Config{Brokers: e.cfg.Brokers, Topic: e.cfg.Topics.Raw, Partition: a.ID,
		Dialer: e.cfg.Dialer, MaxBytes: fetchMaxBytes, MaxWait: time.Second, Pool: pool})
	// Two chunks rotate: one being handled here while the fetch goroutine fills the other,
	// so records cross goroutines once per fetch, not once per record.
	chunks := make(chan *chunk, 1)
	free := make(chan *chunk, 2)
	free <- &chunk{}
	free <- &chunk{}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		p.fetch(rctx, f, start, chunks, free, log)
	}()
	defer func() {
		rcancel()
		<-readerDone
		f.Close()
	}()
	log.Info("partition assigned", "offset", a.Offset)

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastCommit := time.Now()
	for {
		select {
		case <-gctx.Done():
			p.revoke()
			e.m.revoked.Inc()
			log.Info("partition revoked: state dropped")
			return
		case <-stop.Done():
			rcancel()
			p.drain(gctx)
			if e.failure() == nil {
				p.commit(gctx, gen, commitMu)
			}
			p.revoke()
			log.Info("partition drained", "committed", p.committed)
			return
		case c := <-chunks:
			p.backpressure(stop, gctx)
			// Revocation is checked before a fetch and every 1,024 records in it: once it
			// is seen nothing more may be handled (select picks among ready cases at
			// random, and records after a gap would build wrong sessions).
			// The wall time is read every 1,024 records, and the partition is busy until
			// the fetch is done: a long fetch is not silence for the idle watermark.
			var now time.Time
			for i := range c.msgs {
				if i%1024 == 0 {
					if gctx.Err() != nil {
						break
					}
					now = e.cfg.Clock()
				}
				p.handle(&c.msgs[i], now)
			}
			p.wm.Busy(e.cfg.Clock())
			if gctx.Err() != nil {
				p.revoke()
				e.m.revoked.Inc()
				log.Info("partition revoked: state dropped")
				return
			}
			p.write()
			clear(c.msgs) // let the values go before the next fetch
			c.msgs = c.msgs[:0]
			p.dropFetch()
			c.bufs = pool.Put(c.bufs)
			free <- c
		case <-tick.C:
			now := time.Now()
			if len(chunks) > 0 || p.hwm.Load() > p.lastOffset+1 {
				p.wm.Busy(e.cfg.Clock()) // a backlog is not silence
			}
			p.idle(e.cfg.Clock())
			if now.Sub(lastCommit) >= e.cfg.CommitInterval {
				p.commit(gctx, gen, commitMu)
				lastCommit = now
			}
		}
	}
}

// backpressure waits while the instance's unacknowledged outputs are over MaxUnackedBytes
// (Kafka slow or unreachable), so memory stays bounded instead of the outputs piling up; it
// gives up the wait on shutdown, revocation or a failed write (the loop handles those).
func (p *partition) backpressure(stop, gctx context.Context) {
	e := p.e
	if e.unackedBytes.Load() <= e.cfg.MaxUnackedBytes {
		return
	}
	e.m.waits.Inc()
	p.wm.Busy(e.cfg.Clock()) // waiting on Kafka is not silence on the partition
	for e.unackedBytes.Load() > e.cfg.MaxUnackedBytes && stop.Err() == nil && gctx.Err() == nil && e.failure() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	p.wm.Busy(e.cfg.Clock())
}

// chunk is one fetch's records on their way from the fetch goroutine to the partition's.
type chunk struct {
	msgs []kafka.Message
	bufs [][]byte // what msgs alias (kafkafetch.Result.Bufs), back to the pool once handled
}

// fetch reads the partition from offset into free chunks and sends them on chunks until
// ctx ends. Errors are logged; the Fetcher reconnects on its next call.
func (p *partition) fetch(ctx context.Context, f *kafkafetch.Fetcher, offset int64, chunks, free chan *chunk, log *slog.Logger) {
	for {
		var c *chunk
		select {
		case c = <-free:
		case <-ctx.Done():
			return
		}
		var res kafkafetch.Result
		var err error
		c.msgs, res, err = f.Fetch(ctx, offset, c.msgs[:0])
		c.bufs = append(c.bufs, res.Bufs...)
		offset = res.Next
		if res.HighWaterMark >= 0 {
			p.hwm.Store(res.HighWaterMark)
		}
		if len(c.msgs) > 0 {
			select {
			case chunks <- c:
			case <-ctx.Done():
				return
			}
		} else {
			c.bufs = f.Pool().Put(c.bufs) // no record aliases them
			free <- c                     // never blocks: two chunks, two slots
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if n := kafkafetch.Skipped(err); n > 0 {
			p.e.m.skipped.Add(float64(n))
			log.Error("records deleted by retention before they were read: skipped", "err", err)
			continue
		}
		log.Warn("fetch", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// dropFetch drops what the partition still points to in the fetch it has handled (the last
// input's value, header copies), so the fetch's buffers can go while the next is handled.
func (p *partition) dropFetch() {
	p.in.Value = nil
	clear(p.hdrs[:cap(p.hdrs)])
	p.lastHdrs, p.lastHdrN = nil, 0
	p.dec.forget()
}

// handle turns one record into outputs appended to p.out and registers them with the
// tracker; the partition loop hands p.out to the producer after the whole fetch (register
// first: an acknowledgement must find its offset registered).
func (p *partition) handle(m *kafka.Message, now time.Time) {
	e := p.e
	// The latency histogram samples one record in latencySample: two clock reads and an
	// Observe per record were ~4% of the enricher's CPU.
	var start time.Time
	timed := p.seq%latencySample == 0
	p.seq++
	if timed {
		start = time.Now()
	}
	e.m.linesIn.Inc()
	if p.tr == nil {
		p.mu.Lock()
		p.tr = NewTracker(m.Offset)
		p.mu.Unlock()
	}
	mark := len(p.out)
	var err error
	if len(m.Headers) > 0 && &m.Headers[0] == p.lastHdrs && len(m.Headers) == p.lastHdrN {
		err = p.dec.DecodeSameHeaders(&p.in, m.Key, m.Value)
	} else {
		p.hdrs = p.hdrs[:0]
		for _, h := range m.Headers {
			p.hdrs = append(p.hdrs, wire.Header{Key: h.Key, Value: h.Value})
		}
		err = p.dec.Decode(&p.in, m.Key, p.hdrs, m.Value)
		p.lastHdrs, p.lastHdrN = nil, len(m.Headers)
		if len(m.Headers) > 0 {
			p.lastHdrs = &m.Headers[0]
		}
	}
	if err != nil {
		reason := ReasonBadEnvelope
		var ie *InputError
		if errors.As(err, &ie) {
			reason = ie.Reason
		}
		p.deadLetter(m, reason, err.Error())
	} else if len(p.in.Value) > e.cfg.MaxLine || p.in.TruncatedFrom > 0 {
		n := len(p.in.Value)
		if p.in.TruncatedFrom > 0 {
			n = p.in.TruncatedFrom
		}
		p.deadLetter(m, ReasonTooLong, "line of "+strconv.Itoa(n)+" bytes is longer than the maximum of "+strconv.Itoa(e.cfg.MaxLine))
	} else {
		src := event.Source{Host: p.in.Host, Dialect: dialectOf(p.in.Dialect), File: p.source,
			Line: m.Offset + 1, Offset: m.Offset, Loc: p.zone(p.in.TZ), YearRef: p.in.IngestTime}
		p.parser.Parse(&p.ev, p.in.Value, &src)
		e.m.Parse.Observe(&p.ev)
		if !p.ev.Parsed {
			reason := ReasonUnparsed
			if bytes.IndexByte(p.in.Value, 0) >= 0 || !utf8.Valid(p.in.Value) {
				reason = ReasonBadValue
			}
			p.deadLetter(m, reason, p.ev.Reason)
			p.asm.Add(&p.ev) // counted as unparsed; never closes anything
		} else {
			p.wm.Observe(p.ev.Time, now)
			if p.alerts != nil {
				e.am.Event(p.ev.Product, e.cat.Severity(&p.ev))
				p.hosts.Line(p.ev.Bytes(p.ev.Host))
				var cl alert.Class
				if cl, p.arecs = p.alerts.Line(&p.ev, p.arecs); cl.Rule != alert.RuleNone {
					e.am.Matched(cl, p.ev.Product.String())
					p.alertRecords()
				}
			}
			p.sessions(p.asm.Add(&p.ev))
			p.capOpen()
			if p.sinceExpire++; p.sinceExpire >= expireEvery {
				p.expire(now)
			}
		}
	}
	p.events()
	p.mu.Lock()
	err = p.tr.Consumed(m.Offset, len(p.out)-mark)
	if err == nil {
		p.own(mark, m.Offset) // before addHeld: alert records carry their own offsets
		err = p.addHeld(m.Offset)
	}
	p.mu.Unlock()
	p.lastOffset = m.Offset
	if err != nil {
		// Cannot happen with a partition reader (offsets increase); never produce what the
		// tracker does not know about.
		e.log.Error("offset bookkeeping", "partition", p.id, "err", err)
		clear(p.out[mark:])
		p.out = p.out[:mark]
		return
	}
	if timed {
		e.m.latency.Observe(time.Since(start).Seconds())
	}
}

// idle runs on the ticker: a quiet partition's watermark follows the wall clock, closing its
// last sessions; their outputs belong to the last consumed record.
func (p *partition) idle(now time.Time) {
	if p.tr == nil {
		return
	}
	mark := len(p.out) // 0: the partition loop writes after every fetch
	p.expire(now)
	p.events()
	if len(p.out) > mark || len(p.aout) > 0 {
		p.mu.Lock()
		err := p.tr.AddOutputs(p.lastOffset, len(p.out)-mark)
		if err == nil {
			p.own(mark, p.lastOffset)
			err = p.addHeld(p.lastOffset)
		}
		p.mu.Unlock()
		if err != nil {
			p.e.log.Error("offset bookkeeping", "partition", p.id, "err", err)
			clear(p.out[mark:])
			p.out = p.out[:mark]
			return
		}
		p.write()
	}
	p.gauges()
}

func (p *partition) expire(now time.Time) {
	p.sinceExpire = 0
	wm := p.wm.At(now)
	if wm.IsZero() || !wm.After(p.lastExpire) {
		return
	}
	p.lastExpire = wm
	p.sessions(p.asm.Expire(wm))
	if p.alerts != nil {
		p.arecs = p.alerts.Expire(wm, p.arecs)
		p.alertRecords()
	}
	p.capOpen()
	p.gauges()
}

// capOpen keeps the instance-wide count of open sessions current and holds it at
// Session.MaxOpen: the partition whose line pushes the instance over the cap evicts its own
// least recently active sessions (closed_by=evicted, counted). Partitions running at the same
// moment may each be one session over before they check.
func (p *partition) capOpen() {
	open := p.asm.Open()
	if open == p.openCounted {
		return
	}
	total := p.e.open.Add(int64(open - p.openCounted))
	p.openCounted = open
	if over := total - int64(p.e.cfg.Session.MaxOpen); over > 0 {
		p.sessions(p.asm.Evict(open - int(over)))
		n := p.asm.Open()
		p.e.open.Add(int64(n - open))
		p.openCounted = n
	}
}

func (p *partition) gauges() {
	open := p.asm.Open()
	p.e.m.addOpen(open - p.openShown)
	p.openShown = open
	if ev := p.asm.Stats().Evicted; ev > p.evictShown {
		p.e.m.evicted.Add(float64(ev - p.evictShown))
		p.evictShown = ev
	}
}

// sessions queues closed session records (key = session_id). The slice is the assembler's:
// it is encoded at once.
func (p *partition) sessions(rs []record.Session) {
	if len(rs) == 0 {
		return
	}
	m := p.e.m
	m.Session.ObserveSessions(rs)
	for i := range rs {
		r := &rs[i]
		m.sessionsOut.WithLabelValues(r.Product, string(r.Outcome)).Inc()
		key := p.arena.add(func(b []byte) []byte { return append(b, r.SessionID...) })
		val := p.arena.add(r.AppendJSON)
		p.out = append(p.out, kafka.Message{Topic: p.e.cfg.Topics.Sessions, Key: key, Value: val})
		if p.alerts != nil {
			p.hosts.Session(r)
			p.arecs = p.alerts.Session(r, p.arecs)
		}
	}
	p.alertRecords()
}

// addHeld registers the queued alert records with the tracker under the offsets they are
// attributed to and moves them to p.out (under p.mu, after the current line cur is
// registered). A record whose window has no line of this source is attributed to cur.
func (p *partition) addHeld(cur int64) error {
	var err error
	for i := range p.aout {
		a := p.aout[i].WriterData.(*ack)
		if a.offset < 0 || a.offset > cur {
			a.offset = cur
		}
		if e := p.tr.AddOutputs(a.offset, 1); e != nil && err == nil {
			err = e
		}
	}
	p.out = append(p.out, p.aout...)
	clear(p.aout)
	p.aout = p.aout[:0]
	return err
}

// alertRecords queues the alert records produced so far (key = alert_id): they belong to the
// same offset as the sessions and events of this step.
func (p *partition) alertRecords() {
	if len(p.arecs) == 0 {
		return
	}
	am := p.e.am
	am.Raised(p.arecs)
	if l := p.alerts.Stats().Late; l > p.late {
		am.Late(l - p.late)
		p.late = l
	}
	for i := range p.arecs {
		r := &p.arecs[i]
		// Attributed to the first line of the record's window, not to the line being handled:
		// the commit stays before the window until Kafka has the record, so a crash replays
		// the whole window and re-emits it (a closed window no longer holds the commit).
		p.aout = append(p.aout, kafka.Message{Topic: p.e.cfg.Topics.Alerts, Key: []byte(r.AlertID),
			Value: r.AppendJSON(make([]byte, 0, 1024)), WriterData: &ack{p: p, offset: r.Hold}})
	}
	clear(p.arecs)
	p.arecs = p.arecs[:0]
}

// arena hands out byte slices carved from 64 KiB chunks, so the keys and values of a fetch's
// outputs cost a few allocations instead of two each. The producer keeps the slices until
// Kafka acknowledges them, so a chunk's bytes are never reused: a full chunk is dropped (the
// garbage collector frees it when its last message is done) and a new one started.
type arena struct{ buf []byte }

const arenaChunk = 64 << 10

// add appends with fn at the end of the current chunk and returns what fn wrote, capped so
// that an append to the result cannot overwrite the next one.
func (a *arena) add(fn func([]byte) []byte) []byte {
	if cap(a.buf)-len(a.buf) < 2048 {
		a.buf = make([]byte, 0, arenaChunk)
	}
	start := len(a.buf)
	a.buf = fn(a.buf)
	// fn may have grown a.buf into a new array (a record over the chunk's room): the slice
	// below is then in the new array, and earlier results stay valid in the old one.
	return a.buf[start:len(a.buf):len(a.buf)]
}

// events queues the notable events produced so far (key = host).
func (p *partition) events() {
	p.evs = p.asm.NotableEvents(p.evs[:0])
	for i := range p.evs {
		ev := &p.evs[i]
		p.e.norm.NormaliseEvent(ev)
		p.e.m.eventsOut.WithLabelValues(ev.Severity).Inc()
		key := p.arena.add(func(b []byte) []byte { return append(b, ev.Host...) })
		val := p.arena.add(ev.AppendJSON)
		p.out = append(p.out, kafka.Message{Topic: p.e.cfg.Topics.Events, Key: key, Value: val})
		if p.alerts != nil {
			var cl alert.Class
			cl, p.arecs = p.alerts.Event(ev, p.arecs)
			p.e.am.Matched(cl, ev.Product)
		}
	}
	p.alertRecords()
}

func (p *partition) deadLetter(m *kafka.Message, reason, msg string) {
	e := p.e
	if c, ok := e.m.deadLetters[reason]; ok {
		c.Inc()
	}
	v := m.Value
	if len(v) > e.cfg.MaxDeadLetterBytes {
		v = v[:e.cfg.MaxDeadLetterBytes]
	}
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	hs := make([]kafka.Header, 0, 6+len(m.Headers))
	hs = append(hs,
		kafka.Header{Key: DLHeaderReason, Value: []byte(reason)},
		kafka.Header{Key: DLHeaderError, Value: []byte(msg)},
		kafka.Header{Key: DLHeaderTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: DLHeaderPartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafka.Header{Key: DLHeaderOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
		kafka.Header{Key: DLHeaderLength, Value: strconv.AppendInt(nil, int64(len(m.Value)), 10)})
	for _, h := range m.Headers { // the fetch's buffers are reused; the writer keeps these
		hs = append(hs, kafka.Header{Key: h.Key, Value: bytes.Clone(h.Value)})
	}
	p.out = append(p.out, kafka.Message{Topic: e.cfg.Topics.DeadLetter, Key: bytes.Clone(m.Key),
		Value: bytes.Clone(v), Headers: hs})
}

// own marks p.out[from:] as the outputs of the record at offset: the acknowledgement of
// each comes back through completion → acked with it (one ack shared by a record's outputs).
func (p *partition) own(from int, offset int64) {
	if from == len(p.out) {
		return
	}
	a := &ack{p: p, offset: offset}
	for i := from; i < len(p.out); i++ {
		p.out[i].WriterData = a
	}
}

// write hands p.out (the outputs of a whole fetch) to the asynchronous producer in one call:
// the Writer's cost per call (partition lookup, batching) dominated when it was per record.
func (p *partition) write() {
	if len(p.out) == 0 {
		return
	}
	n := int64(0)
	for i := range p.out {
		n += int64(len(p.out[i].Key) + len(p.out[i].Value))
	}
	p.e.unackedBytes.Add(n)
	p.e.m.unacked.Add(float64(n))
	if err := p.e.w.WriteMessages(context.Background(), p.out...); err != nil {
		err = errors.Join(errors.New("queue outputs"), err)
		p.e.failed.CompareAndSwap(nil, &err)
	}
	clear(p.out) // the writer holds its own copies; drop our references
	p.out = p.out[:0]
}

// commit sends min(first offset not fully acknowledged, first offset of an open session),
// lowered further to the first line of any closed session that straddles it (the
// assembler's CommitPoint): a replay must never start inside a session.
func (p *partition) commit(gctx context.Context, gen *kafka.Generation, commitMu *sync.Mutex) {
	if p.tr == nil || p.e.failure() != nil {
		return
	}
	p.mu.Lock()
	c, allowed := p.tr.CommitOffset(0, false)
	p.mu.Unlock()
	c, straddles := commitPoint(p.asm, p.source, c, maxSpanLookback)
	if p.alerts != nil { // nor past the first line of an open alert window
		if a, ok := p.alerts.LowestOpenPosition(p.source); ok && a < c {
			c = a
		}
	}
	if straddles && allowed && c > p.committed {
		p.e.m.straddles.Inc()
	}
	if !allowed || c <= p.committed || gctx.Err() != nil {
		p.lag()
		return
	}
	commitMu.Lock()
	err := gen.CommitOffsets(map[string]map[int]int64{p.e.cfg.Topics.Raw: {p.id: c}})
	commitMu.Unlock()
	if err != nil {
		p.e.log.Warn("commit", "partition", p.id, "offset", c, "err", err)
		return
	}
	p.e.m.commits.Inc()
	p.committed = c
	p.asm.ForgetSpansBelow(p.source, c)
	p.lag()
}

// maxSpanLookback bounds how far the closed-span rule may hold a commit below the
// open-session rule. In continuous traffic sessions overlap without a gap, so the chain of
// closed sessions straddling the commit point can reach back to the last quiet moment of
// the partition: the commit (and the closed spans kept for it) would stay behind without
// bound. Past this many records the commit follows the open-session rule alone, and a
// replay from it may rebuild the tail of the one session straddling it as a separate record
// (counted: mxtrail_enrich_commit_straddles_total).
const maxSpanLookback = 1 << 20

// commitPoint returns the offset to commit for the tracker's offset c: at most the first line
// of any open session, and held at the first line of any closed session straddling it
// (session.Assembler.CommitPoint) unless that goes more than lookback records below the
// open-session rule; straddles reports that fallback. Spans ending before that bound can no
// longer decide anything and are forgotten, which bounds their memory too.
func commitPoint(asm *session.Assembler, source string, c, lookback int64) (offset int64, straddles bool) {
	plain := c
	if low, ok := asm.LowestOpenPosition(source); ok && low < plain {
		plain = low
	}
	asm.ForgetSpansBelow(source, plain-lookback)
	if cp, _ := asm.CommitPoint(source, c); plain-cp <= lookback {
		return cp, false
	}
	return plain, true
}

func (p *partition) lag() {
	base := p.committed
	if base < 0 && p.tr != nil {
		p.mu.Lock()            // acks update the tracker from the producer's goroutines
		base = p.tr.DoneUpTo() // approximate before the first commit
		p.mu.Unlock()
	}
	l := p.lastOffset + 1 - base
	if p.lastOffset < 0 || l < 0 {
		l = 0
	}
	p.e.m.lag.Add(float64(l - p.lagShown))
	p.lagShown = l
}

// drain waits until Kafka has acknowledged every output (or DrainTimeout, or revocation).
func (p *partition) drain(gctx context.Context) {
	if p.tr == nil {
		return
	}
	deadline := time.Now().Add(p.e.cfg.DrainTimeout)
	for time.Now().Before(deadline) && gctx.Err() == nil && p.e.failure() == nil {
		p.mu.Lock()
		n := p.tr.Outstanding()
		p.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *partition) revoke() {
	p.mu.Lock()
	if p.tr == nil {
		p.tr = NewTracker(0)
	}
	p.tr.Revoke()
	p.mu.Unlock()
}

// forget removes this partition's share of the instance gauges.
func (p *partition) forget() {
	p.e.open.Add(int64(-p.openCounted))
	p.openCounted = 0
	p.e.m.addOpen(-p.openShown)
	p.openShown = 0
	p.e.m.lag.Add(float64(-p.lagShown))
	p.lagShown = 0
}

func (p *partition) zone(name string) *time.Location {
	if name == "" {
		return nil
	}
	if l, ok := p.zones[name]; ok {
		return l
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		l = nil // the parser's default zone
	}
	if len(p.zones) < 64 {
		p.zones[name] = l
	}
	return l
}

func dialectOf(name string) event.Dialect {
	if name == "" {
		return event.DialectAuto
	}
	d, ok := event.ParseDialect(name)
	if !ok {
		return event.DialectAuto
	}
	return d
}
