package stream

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/enrich/session"
	"github.com/mxtrail/mxtrail/ingest/wire"
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

// partition is one assigned partition: its goroutine owns parser, assembler and watermark;
// the tracker is shared with the producer's completion goroutines under mu.
type partition struct {
	e      *Enricher
	id     int
	source string // "<topic>/<partition>": the Position source of its lines
	parser *parse.Parser
	asm    *session.Assembler
	wm     Watermark

	mu sync.Mutex
	tr *Tracker // nil until the first record

	lastOffset  int64 // last consumed offset, -1 before the first
	committed   int64 // last committed offset, -1 before the first commit
	lagShown    int64
	openShown   int
	evictShown  int64
	lastExpire  time.Time
	sinceExpire int

	in    Input
	dec   Decoder
	ev    event.Event
	hdrs  []wire.Header
	evs   []record.Event
	out   []kafka.Message
	zones map[string]*time.Location
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

// runPartition consumes one partition until the generation ends (revocation: drop the state,
// commit nothing more) or stop is cancelled (shutdown: drain acknowledgements, commit).
func (e *Enricher) runPartition(stop, gctx context.Context, gen *kafka.Generation, commitMu *sync.Mutex, a kafka.PartitionAssignment) {
	log := e.log.With("partition", a.ID)
	p := &partition{e: e, id: a.ID, source: e.cfg.Topics.Raw + "/" + strconv.Itoa(a.ID),
		lastOffset: -1, committed: -1, zones: map[string]*time.Location{},
		wm: Watermark{Lateness: e.cfg.Lateness, IdleAfter: e.cfg.IdleAdvance}}
	p.parser = e.parser
	var err error
	if p.asm, err = session.New(e.cfg.Session); err != nil {
		e.failed.CompareAndSwap(nil, &err)
		return
	}
	e.addPart(p)
	defer e.dropPart(p)
	defer p.forget()

	rctx, rcancel := context.WithCancel(gctx)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: e.cfg.Brokers, Topic: e.cfg.Topics.Raw, Partition: a.ID, Dialer: e.cfg.Dialer,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second, QueueCapacity: 1000,
	})
	if a.Offset >= 0 {
		r.SetOffset(a.Offset)
	} else {
		r.SetOffset(kafka.FirstOffset)
	}
	msgs := make(chan kafka.Message, 1024)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			m, err := r.FetchMessage(rctx)
			if err != nil {
				if rctx.Err() != nil {
					return
				}
				log.Warn("fetch", "err", err)
				select {
				case <-rctx.Done():
					return
				case <-time.After(500 * time.Millisecond):
				}
				continue
			}
			select {
			case msgs <- m:
			case <-rctx.Done():
				return
			}
		}
	}()
	defer func() {
		rcancel()
		<-readerDone
		r.Close()
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
		case m := <-msgs:
			p.handle(&m, e.cfg.Clock())
		case <-tick.C:
			now := time.Now()
			if len(msgs) > 0 || r.Lag() > 0 {
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

// handle turns one record into outputs, registers them with the tracker, then hands them to
// the producer (in that order: an acknowledgement must find its offset registered).
func (p *partition) handle(m *kafka.Message, now time.Time) {
	e := p.e
	start := time.Now()
	e.m.linesIn.Inc()
	if p.tr == nil {
		p.mu.Lock()
		p.tr = NewTracker(m.Offset)
		p.mu.Unlock()
	}
	p.out = p.out[:0]
	p.hdrs = p.hdrs[:0]
	for _, h := range m.Headers {
		p.hdrs = append(p.hdrs, wire.Header{Key: h.Key, Value: h.Value})
	}
	if err := p.dec.Decode(&p.in, m.Key, p.hdrs, m.Value); err != nil {
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
			p.sessions(p.asm.Add(&p.ev))
			if p.sinceExpire++; p.sinceExpire >= expireEvery {
				p.expire(now)
			}
		}
	}
	p.events()
	p.mu.Lock()
	err := p.tr.Consumed(m.Offset, len(p.out))
	p.mu.Unlock()
	p.lastOffset = m.Offset
	if err != nil {
		// Cannot happen with a partition reader (offsets increase); never produce what the
		// tracker does not know about.
		e.log.Error("offset bookkeeping", "partition", p.id, "err", err)
		return
	}
	p.write()
	e.m.latency.Observe(time.Since(start).Seconds())
}

// idle runs on the ticker: a quiet partition's watermark follows the wall clock, closing its
// last sessions; their outputs belong to the last consumed record.
func (p *partition) idle(now time.Time) {
	if p.tr == nil {
		return
	}
	p.out = p.out[:0]
	p.expire(now)
	p.events()
	if len(p.out) > 0 {
		p.mu.Lock()
		err := p.tr.AddOutputs(p.lastOffset, len(p.out))
		p.mu.Unlock()
		if err != nil {
			p.e.log.Error("offset bookkeeping", "partition", p.id, "err", err)
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
	p.gauges()
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
		p.out = append(p.out, kafka.Message{Topic: p.e.cfg.Topics.Sessions, Key: []byte(r.SessionID),
			Value: r.AppendJSON(make([]byte, 0, 768))})
	}
}

// events queues the notable events produced so far (key = host).
func (p *partition) events() {
	p.evs = p.asm.NotableEvents(p.evs[:0])
	for i := range p.evs {
		ev := &p.evs[i]
		p.e.m.eventsOut.WithLabelValues(ev.Severity).Inc()
		p.out = append(p.out, kafka.Message{Topic: p.e.cfg.Topics.Events, Key: []byte(ev.Host),
			Value: ev.AppendJSON(make([]byte, 0, 512))})
	}
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
	hs = append(hs, m.Headers...)
	p.out = append(p.out, kafka.Message{Topic: e.cfg.Topics.DeadLetter, Key: bytes.Clone(m.Key),
		Value: bytes.Clone(v), Headers: hs})
}

// write hands p.out to the asynchronous producer; acknowledgements come back through
// completion → acked with the offset the outputs belong to.
func (p *partition) write() {
	if len(p.out) == 0 {
		return
	}
	for i := range p.out {
		p.out[i].WriterData = &ack{p: p, offset: p.lastOffset}
	}
	if err := p.e.w.WriteMessages(context.Background(), p.out...); err != nil {
		err = errors.Join(errors.New("queue outputs"), err)
		p.e.failed.CompareAndSwap(nil, &err)
	}
	clear(p.out) // the writer holds its own copies; drop our references
}

// commit sends min(first offset not fully acknowledged, first offset of an open session).
func (p *partition) commit(gctx context.Context, gen *kafka.Generation, commitMu *sync.Mutex) {
	if p.tr == nil || p.e.failure() != nil {
		return
	}
	low, ok := p.asm.LowestOpenPosition(p.source)
	p.mu.Lock()
	c, allowed := p.tr.CommitOffset(low, ok)
	p.mu.Unlock()
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
	p.lag()
}

func (p *partition) lag() {
	base := p.committed
	if base < 0 && p.tr != nil {
		base = p.tr.DoneUpTo() // approximate before the first commit
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
