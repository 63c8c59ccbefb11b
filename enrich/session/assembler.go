package session

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/record"
)

// Stats counts what the assembler did. Every line is accounted for: it joined a session,
// was a process-level line (Sessionless) or was unparsed; joins that found no partner are
// counted as orphans.
type Stats struct {
	Lines       int64 // events given to Add
	Unparsed    int64 // events with Parsed == false (counted, not joined)
	Sessionless int64 // parsed lines that belong to no SMTP session (process-level messages)
	Opened      int64 // sessions started
	Closed      map[record.ClosedBy]int64
	Evicted     int64 // sessions closed by the MaxOpen cap (also in Closed)
	KeyReused   int64 // sessions closed because their key (pid, socket) was reused
	Joined      int64 // ICDSoft spamdyke sessions joined into an ICDSoft record
	// Orphans are lines that name a message or delivery no open session claims: an ICDSoft
	// delivery group, a qmail-send message, an IMail delivery worker. Counted, not emitted.
	Orphans int64
	Notable int64 // notable events produced
}

// Assembler joins parsed lines into SMTP sessions. It is pure: no I/O, no goroutines, no
// clock reads; time is the lines' event time. Not safe for concurrent use: run one per
// partition (or per host).
type Assembler struct {
	cfg          Config
	open         map[string]*sess // keyed sessions: host \x00 namespace \x00 key
	hosts        map[string]*hostState
	hostList     []*hostState // first-seen order: deterministic output when several hosts close at once
	lru          sess         // sentinel of the list of open sessions, least recently active first
	keepSpans    bool
	spans        map[string][]span // closed sessions' offsets by source, when keepSpans
	spanScratch  []span
	nOpen        int
	out          []record.Session
	events       []record.Event
	kb           []byte
	kb2          []byte
	notableCodes map[string]bool
	stats        Stats
}

// New returns an assembler; cfg is validated.
func New(cfg Config) (*Assembler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("session config: %w", err)
	}
	a := &Assembler{cfg: cfg, open: map[string]*sess{}, hosts: map[string]*hostState{}}
	a.lru.next, a.lru.prev = &a.lru, &a.lru
	a.stats.Closed = map[record.ClosedBy]int64{}
	if len(cfg.NotableCodes) > 0 {
		a.notableCodes = map[string]bool{}
		for _, c := range cfg.NotableCodes {
			a.notableCodes[c] = true
		}
	}
	return a, nil
}

// Stats returns a copy of the counters.
func (a *Assembler) Stats() Stats {
	s := a.stats
	s.Closed = make(map[record.ClosedBy]int64, len(a.stats.Closed))
	for k, v := range a.stats.Closed {
		s.Closed[k] = v
	}
	return s
}

// Open is the number of sessions currently open (including ICDSoft groups waiting to join).
func (a *Assembler) Open() int { return a.nOpen }

// sess is one session being assembled.
type sess struct {
	rec      record.Session
	hs       *hostState
	product  event.Product
	mapKey   string
	id       string // set at creation for keyed sessions; ICDSoft records get theirs at close
	start    time.Time
	lastSeen time.Time
	low      int64 // lowest offset of any line in FirstPos.Source
	high     int64 // highest offset of any line in FirstPos.Source
	sevMax   event.Severity
	closed   bool
	ended    bool
	endAt    time.Time
	reused   bool
	prev     *sess
	next     *sess

	// session-level verdict, for sessions refused before any recipient
	verdict    record.Outcome
	vCode      int
	vReply     string
	vReason    string
	evidence   record.Outcome // a verdict event waiting for the refusal reply it explains
	evReason   string
	dataCode   int    // reply to DATA / end of data
	dataReply  string // its text
	lastCmd    byte   // product-specific: the command the next reply answers
	pendDeliv  int    // deliveries started and not finished (qmail, ICDSoft)
	msgSeen    bool   // a queued message joined (qmail, IMail)
	spool      string // IMail spool name suffix
	icdFinal   bool   // ICDSoft: the DATA reply was seen
	sdSender   string // index key of a spamdyke session on an ICDSoft host
	deliveries []string
	raws       []string // raw code that decided each recipient, parallel to rec.Recipients
	cur        int      // index of the recipient the next reply answers
	group      bool     // an ICDSoft SMTP group (unkeyed, settles by joining)
	joined     bool     // an ICDSoft group that has absorbed its spamdyke connection
	started    bool     // IMail: the connect line was seen
	chkReject  bool     // ICDSoft: chkuser refused the current recipient
	sdAllowed  string   // spamdyke: reason of its ALLOWED lines (qmail's queue reply, underscored)
}

type hostState struct {
	name  string
	clock time.Time // latest event time seen on this host
	ended []*sess   // sessions past their end marker, waiting for Lateness, in end order
	// ICDSoft
	icd        bool
	icdGroups  []*sess            // SMTP groups waiting to settle, in creation order
	icdCur     map[string]*sess   // current SMTP group per source file
	sdBySender map[string][]*sess // open spamdyke sessions of this host by sender
	deliv      []*delivGroup      // ICDSoft delivery groups not yet joined
	delivCur   map[string]*delivGroup
	delivByNum map[string]*delivGroup
	// qmail-send and IMail workers
	qmailMsg    map[string]*sess
	qmailDeliv  map[string]*sess
	qmailAlt    map[string][]*sess // other candidate sessions of an ambiguous qmail message
	imailSpool  map[string]*sess
	imailWorker map[string]*sess
}

func (a *Assembler) host(name []byte) *hostState {
	if hs, ok := a.hosts[string(name)]; ok {
		return hs
	}
	hs := &hostState{name: string(name)}
	a.hosts[hs.name] = hs
	a.hostList = append(a.hostList, hs)
	return hs
}

// Add joins one parsed line and returns the sessions this closed. The returned slice is
// reused by the next call of Add, Expire or Flush.
func (a *Assembler) Add(ev *event.Event) []record.Session {
	a.out = a.out[:0]
	a.stats.Lines++
	if !ev.Parsed {
		a.stats.Unparsed++
		return nil
	}
	hs := a.host(ev.Bytes(ev.Host))
	if ev.Time.After(hs.clock) {
		hs.clock = ev.Time
	}
	var s *sess
	switch ev.Product {
	case event.ProductSpamdyke:
		s = a.spamdyke(hs, ev)
	case event.ProductICDSoft:
		s = a.icdsoft(hs, ev)
	case event.ProductQmail:
		s = a.qmail(hs, ev)
	case event.ProductSmtpf:
		s = a.smtpf(hs, ev)
	case event.ProductIsode:
		s = a.isode(hs, ev)
	case event.ProductMailEnable:
		s = a.mailenable(hs, ev)
	case event.ProductIMail:
		s = a.imail(hs, ev)
	}
	if s == nil {
		a.stats.Sessionless++
	}
	if ev.Severity != event.SeverityUnset && ev.Severity <= event.SeverityError ||
		a.notableCodes != nil && a.notableCodes[string(ev.Bytes(ev.Code))] {
		a.notable(ev, s)
	}
	a.due(hs, hs.clock)
	for a.nOpen > a.cfg.MaxOpen {
		v := a.lru.next
		a.stats.Evicted++
		a.close(v, record.ClosedByEvicted)
	}
	return a.out
}

// Expire closes what is due at watermark (event time): sessions idle for IdleTimeout, ended
// sessions and ICDSoft groups older than Lateness. The returned slice is reused.
func (a *Assembler) Expire(watermark time.Time) []record.Session {
	a.out = a.out[:0]
	for _, hs := range a.hostList {
		a.due(hs, watermark)
	}
	for s := a.lru.next; s != &a.lru; {
		next := s.next
		if s.lastSeen.Add(a.cfg.IdleTimeout).After(watermark) {
			break
		}
		a.close(s, record.ClosedByTimeout)
		s = next
	}
	for _, hs := range a.hostList {
		a.dropOrphans(hs, watermark)
	}
	return a.out
}

// Flush closes every open session (end of input) and returns them. The slice is reused.
func (a *Assembler) Flush() []record.Session {
	a.out = a.out[:0]
	for _, hs := range a.hostList {
		for len(hs.icdGroups) > 0 {
			g := hs.icdGroups[0]
			hs.icdGroups = hs.icdGroups[1:]
			a.settle(g, record.ClosedByEOF)
		}
	}
	for a.lru.next != &a.lru {
		a.close(a.lru.next, record.ClosedByEOF)
	}
	for _, hs := range a.hostList {
		a.dropOrphans(hs, time.Time{})
		hs.ended = hs.ended[:0]
	}
	return a.out
}

// Evict closes the least recently active open sessions (closed_by=evicted, counted in
// Stats().Evicted) until at most keep remain, and returns them. The slice is reused by the
// next call of Add, Expire, Flush or Evict. The stream enforces one cap over the assemblers
// of all its partitions with it.
func (a *Assembler) Evict(keep int) []record.Session {
	a.out = a.out[:0]
	for a.nOpen > max(keep, 0) && a.lru.next != &a.lru {
		a.stats.Evicted++
		a.close(a.lru.next, record.ClosedByEvicted)
	}
	return a.out
}

// NotableEvents appends the notable events produced since the last call to dst.
func (a *Assembler) NotableEvents(dst []record.Event) []record.Event {
	dst = append(dst, a.events...)
	clear(a.events)
	a.events = a.events[:0]
	return dst
}

// LowestOpenPosition is the lowest offset in source of any line held by an open session or
// a pending join: the stream may commit up to (not including) it. ok is false when nothing
// from source is held.
func (a *Assembler) LowestOpenPosition(source string) (offset int64, ok bool) {
	for s := a.lru.next; s != &a.lru; s = s.next {
		if s.rec.FirstPos.Source == source && (!ok || s.low < offset) {
			offset, ok = s.low, true
		}
	}
	for _, hs := range a.hostList {
		for _, d := range hs.deliv {
			if d.first.Source == source && (!ok || d.first.Offset < offset) {
				offset, ok = d.first.Offset, true
			}
		}
	}
	return offset, ok
}

// KeepClosedSpans makes the assembler remember the offsets spanned by the sessions it closes
// (first and last line), for CommitPoint; ForgetSpansBelow drops them. Offline runs do not
// need them.
func (a *Assembler) KeepClosedSpans() {
	a.keepSpans = true
	if a.spans == nil {
		a.spans = map[string][]span{}
	}
}

// span is the offsets of a closed session's first and last lines in its source.
type span struct{ low, high int64 }

// CommitPoint returns the offset in source from which a replay rebuilds every session whole,
// at most c: c is lowered to the first line of any session whose lines lie on both sides of
// it: an open session starting before c (its next lines come after), a pending ICDSoft
// delivery group, or a closed session (KeepClosedSpans) starting before c and ending at or
// after it. Replayed from there, every session the replay touches starts at its own first
// line, so it gets the same id and content; a replay starting inside a closed session would
// rebuild its tail as a different, partial session. ok is false when nothing constrains c.
//
// Cost: one pass over the source's closed spans (16 bytes each) to pick those starting
// before c, usually few (sessions that began before the oldest open one), then a walk over
// those by descending last offset. The stream calls it on every commit tick while spans
// accumulate behind a long-open session, so the earlier fixpoint loop over every span
// (a string compare each) cost ~7% of the enricher's CPU.
func (a *Assembler) CommitPoint(source string, c int64) (offset int64, ok bool) {
	if low, open := a.LowestOpenPosition(source); open && low < c {
		c, ok = low, true
	}
	// Only spans starting before c can ever pull it down (c only decreases).
	cand := a.spanScratch[:0]
	for _, sp := range a.spans[source] {
		if sp.low < c {
			cand = append(cand, sp)
		}
	}
	a.spanScratch = cand
	if len(cand) == 0 {
		return c, ok
	}
	// By descending last offset: a span that ends before the current c is skipped, and so is
	// every later one (they end no later, and c only decreases), hence one pass.
	slices.SortFunc(cand, func(x, y span) int { return cmp.Compare(y.high, x.high) })
	for _, sp := range cand {
		if sp.high < c {
			break
		}
		if sp.low < c {
			c, ok = sp.low, true
		}
	}
	return c, ok
}

// ForgetSpansBelow drops the closed spans that end before offset in source: once offset is
// committed no replay starts before it, so they can no longer hold a commit back.
func (a *Assembler) ForgetSpansBelow(source string, offset int64) {
	if a.spans == nil { // no KeepClosedSpans: nothing kept
		return
	}
	spans := a.spans[source]
	keep := spans[:0]
	for _, sp := range spans {
		if sp.high >= offset {
			keep = append(keep, sp)
		}
	}
	a.spans[source] = keep
}

// due closes ended sessions and settles ICDSoft groups whose lateness has passed at now.
func (a *Assembler) due(hs *hostState, now time.Time) {
	for len(hs.ended) > 0 {
		s := hs.ended[0]
		if !s.closed && s.ended && now.Sub(s.endAt) <= a.cfg.Lateness {
			break
		}
		hs.ended[0] = nil
		hs.ended = hs.ended[1:]
		if !s.closed && s.ended {
			a.close(s, record.ClosedByEnd)
		}
	}
	for len(hs.icdGroups) > 0 {
		g := hs.icdGroups[0]
		if !g.closed && now.Sub(g.lastSeen) <= a.cfg.Lateness {
			break
		}
		hs.icdGroups[0] = nil
		hs.icdGroups = hs.icdGroups[1:]
		if !g.closed {
			a.settle(g, record.ClosedByEnd)
		}
	}
}

// mapKey builds host \x00 ns \x00 key into the reusable key buffer.
func (a *Assembler) key(hs *hostState, ns string, key []byte) []byte {
	b := append(a.kb[:0], hs.name...)
	b = append(b, 0)
	b = append(b, ns...)
	b = append(b, 0)
	b = append(b, key...)
	a.kb = b
	return b
}

// lookup finds the open session under k.
func (a *Assembler) lookup(k []byte) *sess { return a.open[string(k)] }

// create opens a session keyed by k (nil k: an unkeyed ICDSoft group).
func (a *Assembler) create(hs *hostState, p event.Product, k []byte, key string, ev *event.Event) *sess {
	s := &sess{hs: hs, product: p, start: ev.Time, lastSeen: ev.Time}
	s.rec.Host = hs.name
	s.rec.Product = p.String()
	s.rec.SessionKey = key
	s.rec.FirstPos = record.Position{Source: ev.Pos.File, Offset: ev.Pos.Offset}
	s.low, s.high = ev.Pos.Offset, ev.Pos.Offset
	if k != nil {
		s.mapKey = string(k)
		a.open[s.mapKey] = s
		s.id = record.NewSessionID(hs.name, s.rec.Product, key, s.rec.FirstPos)
	}
	s.prev, s.next = a.lru.prev, &a.lru
	a.lru.prev.next = s
	a.lru.prev = s
	a.nOpen++
	a.stats.Opened++
	return s
}

// touch records that ev belongs to s.
func (a *Assembler) touch(s *sess, ev *event.Event) {
	if ev.Time.After(s.lastSeen) {
		s.lastSeen = ev.Time
	}
	if s.start.IsZero() || (!ev.Time.IsZero() && ev.Time.Before(s.start)) {
		s.start = ev.Time
	}
	s.rec.LastPos = record.Position{Source: ev.Pos.File, Offset: ev.Pos.Offset}
	if ev.Pos.File == s.rec.FirstPos.Source {
		s.low, s.high = min(s.low, ev.Pos.Offset), max(s.high, ev.Pos.Offset)
	}
	s.rec.EventCount++
	if ev.Severity != event.SeverityUnset && (s.sevMax == event.SeverityUnset || ev.Severity < s.sevMax) {
		s.sevMax = ev.Severity
	}
	// move to the back of the activity list
	s.prev.next, s.next.prev = s.next, s.prev
	s.prev, s.next = a.lru.prev, &a.lru
	a.lru.prev.next = s
	a.lru.prev = s
}

// end marks s as ended by the product's end marker: closed now, or after Lateness.
func (a *Assembler) end(s *sess, at time.Time) {
	if s.ended {
		return
	}
	s.ended, s.endAt = true, at
	if a.cfg.Lateness == 0 {
		a.close(s, record.ClosedByEnd)
		return
	}
	s.hs.ended = append(s.hs.ended, s)
}

// reuse closes s because its key was reused by a new connection.
func (a *Assembler) reuse(s *sess) {
	s.reused = true
	a.stats.KeyReused++
	a.close(s, record.ClosedByEnd)
}

// detach removes s from the indexes without emitting it.
func (a *Assembler) detach(s *sess) {
	s.closed = true
	if s.mapKey != "" && a.open[s.mapKey] == s {
		delete(a.open, s.mapKey)
	}
	if s.sdSender != "" {
		list := s.hs.sdBySender[s.sdSender]
		for i, x := range list {
			if x == s {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.hs.sdBySender, s.sdSender)
		} else {
			s.hs.sdBySender[s.sdSender] = list
		}
	}
	if s.spool != "" && s.hs.imailSpool[s.spool] == s {
		delete(s.hs.imailSpool, s.spool)
	}
	for _, d := range s.deliveries {
		if s.hs.qmailDeliv[d] == s {
			delete(s.hs.qmailDeliv, d)
		}
		if s.hs.qmailMsg[d] == s {
			delete(s.hs.qmailMsg, d)
		}
		delete(s.hs.qmailAlt, d)
		if s.hs.imailWorker[d] == s {
			delete(s.hs.imailWorker, d)
		}
	}
	s.prev.next, s.next.prev = s.next, s.prev
	s.prev, s.next = nil, nil
	a.nOpen--
}

// close emits s.
func (a *Assembler) close(s *sess, by record.ClosedBy) {
	if s.closed {
		return
	}
	if s.group {
		// an ICDSoft group closed by eviction or timeout still joins what it can
		a.removeGroup(s)
		a.settle(s, by)
		return
	}
	if s.product == event.ProductSpamdyke && s.hs.icd && len(s.hs.icdGroups) > 0 && s.sdSender != "" {
		// closing before its ICDSoft group settled (pid reused, idle, evicted): join it now
		if g := a.groupFor(s); g != nil {
			a.absorb(g, s)
			return
		}
	}
	a.detach(s)
	a.spanOf(s)
	if s.ended && by != record.ClosedByEvicted {
		by = record.ClosedByEnd
	}
	a.stats.Closed[by]++
	a.out = append(a.out, a.finish(s, by))
}

func (a *Assembler) spanOf(s *sess) {
	if a.keepSpans && s.rec.FirstPos.Source != "" {
		src := s.rec.FirstPos.Source
		a.spans[src] = append(a.spans[src], span{low: s.low, high: s.high})
	}
}

func (a *Assembler) removeGroup(g *sess) {
	hs := g.hs
	for i, x := range hs.icdGroups {
		if x == g {
			hs.icdGroups = append(hs.icdGroups[:i], hs.icdGroups[i+1:]...)
			return
		}
	}
}

// finish builds the record of s: the roll-up of its recipients into one label.
func (a *Assembler) finish(s *sess, by record.ClosedBy) record.Session {
	r := s.rec
	r.StartTime, r.EndTime = s.start.UTC(), s.lastSeen.UTC()
	r.ClosedBy = by
	r.OutcomeVersion = record.OutcomeVersion
	r.MaxSeverity = s.sevMax.String()
	if s.reused {
		r.Flags = append(r.Flags, "key_reused")
	}
	rollUp(&r, s)
	if s.id == "" || s.product == event.ProductICDSoft {
		s.id = record.NewSessionID(r.Host, r.Product, r.SessionKey, r.FirstPos)
	}
	r.SessionID = s.id
	if r.Recipients == nil {
		r.Recipients = []record.Recipient{}
	}
	if r.Flags == nil {
		r.Flags = []string{}
	}
	return r
}

// rollUp sets the session label: ALLOWED when any recipient was accepted (flag partial when
// another was refused); otherwise the refusal of the earliest stage (first on a tie); a
// session without recipients carries its session-level verdict.
func rollUp(r *record.Session, s *sess) {
	best := -1
	allowed, refused := -1, false
	for i := range r.Recipients {
		rc := &r.Recipients[i]
		if rc.Outcome == record.OutcomeNone {
			// no reply of its own (IMail): the session's verdict decides it
			rc.Outcome, rc.SMTPCode = record.Disconnected, 0
			if s.verdict != record.OutcomeNone {
				rc.Outcome, rc.SMTPCode, rc.Reply = s.verdict, s.vCode, s.vReply
				s.raws[i] = s.vReason
			}
		}
		if rc.Outcome == record.Allowed {
			if allowed < 0 {
				allowed = i
			}
			continue
		}
		refused = true
		if best < 0 || rc.Outcome.Stage() < r.Recipients[best].Outcome.Stage() {
			best = i
		}
	}
	switch {
	case allowed >= 0:
		r.Outcome = record.Allowed
		r.SMTPCode, r.SMTPReply = r.Recipients[allowed].SMTPCode, r.Recipients[allowed].Reply
		if s.dataCode >= 200 && s.dataCode < 300 {
			r.SMTPCode, r.SMTPReply = s.dataCode, s.dataReply
		}
		if refused {
			r.Flags = append(r.Flags, "partial")
		}
		if r.Reason == "" {
			r.Reason = "ALLOWED"
		}
	case best >= 0:
		rc := &r.Recipients[best]
		r.Outcome, r.SMTPCode, r.SMTPReply = rc.Outcome, rc.SMTPCode, rc.Reply
		r.Permanent = rc.SMTPCode >= 500 && rc.SMTPCode < 600
		if r.Reason == "" {
			r.Reason = s.raws[best]
		}
	case s.verdict != record.OutcomeNone:
		r.Outcome, r.SMTPCode, r.SMTPReply = s.verdict, s.vCode, s.vReply
		r.Permanent = s.vCode >= 500 && s.vCode < 600
		if r.Reason == "" {
			r.Reason = s.vReason
		}
	default:
		// no verdict seen: the client left (or the lines stopped) before any decision
		r.Outcome = record.Disconnected
	}
}

// setVerdict records a session-level verdict; the earliest stage wins, the first on a tie.
func (s *sess) setVerdict(o record.Outcome, code int, reply, reason string) {
	if s.verdict != record.OutcomeNone && s.verdict.Stage() <= o.Stage() {
		return
	}
	s.verdict, s.vCode, s.vReply, s.vReason = o, code, reply, reason
}

// rcpt adds recipient addr (one per RCPT command or per-recipient line: a client may name an
// address twice) and makes it current.
func (s *sess) rcpt(addr []byte) int {
	if s.rec.Recipients == nil {
		s.rec.Recipients, s.raws = make([]record.Recipient, 0, 4), make([]string, 0, 4)
	}
	s.rec.Recipients = append(s.rec.Recipients, record.Recipient{Address: string(addr)})
	s.raws = append(s.raws, "")
	s.cur = len(s.rec.Recipients) - 1
	return s.cur
}

// label sets recipient i's outcome, reply and raw code.
func (s *sess) label(i int, o record.Outcome, code int, reply, raw string) {
	r := &s.rec.Recipients[i]
	r.Outcome, r.SMTPCode, r.Reply = o, code, reply
	s.raws[i] = raw
}

// refuseAccepted gives every accepted recipient a DATA-time refusal.
func (s *sess) refuseAccepted(o record.Outcome, code int, reply string) {
	for i := range s.rec.Recipients {
		if s.rec.Recipients[i].Outcome == record.Allowed {
			s.rec.Recipients[i].Outcome, s.rec.Recipients[i].SMTPCode, s.rec.Recipients[i].Reply = o, code, reply
		}
	}
}

func (s *sess) addFlag(f string) {
	for _, x := range s.rec.Flags {
		if x == f {
			return
		}
	}
	s.rec.Flags = append(s.rec.Flags, f)
}

func (a *Assembler) notable(ev *event.Event, s *sess) {
	e := record.Event{
		Time:        ev.Time.UTC(),
		Host:        string(ev.Bytes(ev.Host)),
		Product:     ev.Product.String(),
		Dialect:     ev.Dialect.String(),
		Code:        string(ev.Bytes(ev.Code)),
		Name:        string(ev.Bytes(ev.Name)),
		Severity:    ev.Severity.String(),
		RawSeverity: string(ev.Bytes(ev.SeverityRaw)),
		ClientIP:    string(ev.Field(event.FieldClientIP)),
		Raw:         string(ev.Raw()),
		Pos:         record.Position{Source: ev.Pos.File, Offset: ev.Pos.Offset},
	}
	if s != nil {
		e.SessionID = s.id
		if e.ClientIP == "" {
			e.ClientIP = s.rec.ClientIP
		}
	}
	a.events = append(a.events, e)
	a.stats.Notable++
}

// ---- small byte helpers ----

// code3 reads a 3-digit SMTP reply code at the start of b (0 when there is none).
func code3(b []byte) int {
	if len(b) < 3 {
		return 0
	}
	n := 0
	for _, c := range b[:3] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if len(b) > 3 && b[3] >= '0' && b[3] <= '9' {
		return 0
	}
	return n
}

// unknown reports whether a spamdyke-style value says "not known".
func unknown(b []byte) bool {
	return len(b) == 0 || bytes.Equal(b, []byte("(unknown)")) || bytes.Equal(b, []byte("(none)")) || bytes.Equal(b, []byte("(empty)"))
}

func setStr(dst *string, b []byte) {
	if len(b) > 0 && *dst != string(b) {
		*dst = string(b)
	}
}
