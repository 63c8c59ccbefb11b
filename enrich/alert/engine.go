package alert

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/record"
)

// MaxExample caps the raw line kept in an alert record.
const MaxExample = 4 << 10

// Config tunes the engine.
type Config struct {
	// Window is the throttle window: alerts of one (rule, host) are counted in windows aligned
	// to multiples of Window in event time (so a replay from any offset names the same window);
	// the first line of a window opens an alert record at once, the window's end resolves it.
	Window time.Duration
	// UpdateInterval: repeats inside a window emit an updated record (count, last_seen) at most
	// this often in event time; the resolving record always carries the final count.
	UpdateInterval time.Duration
	// Trusted are the networks relaying is expected from (relay_unexpected); empty: rule off.
	Trusted []netip.Prefix
	// AuthBurst: auth_failure_burst fires when a host has at least AuthBurstCount sessions that
	// failed AUTH within one aligned AuthBurstWindow.
	AuthBurstCount  int
	AuthBurstWindow time.Duration
	// SessionDelay is how long after a window's end session-derived windows stay open: a
	// session is labelled only when it closes (idle timeout + lateness after its last line).
	SessionDelay time.Duration
}

// Defaults returns the default tuning.
func Defaults() Config {
	return Config{Window: 10 * time.Minute, UpdateInterval: time.Minute, AuthBurstCount: 20,
		AuthBurstWindow: 5 * time.Minute, SessionDelay: 6 * time.Minute}
}

// Validate returns every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("window %s must be positive", c.Window))
	}
	if c.UpdateInterval < 0 || c.UpdateInterval > c.Window {
		errs = append(errs, fmt.Errorf("update interval %s must be between 0 and the window %s", c.UpdateInterval, c.Window))
	}
	if c.AuthBurstCount < 1 {
		errs = append(errs, fmt.Errorf("auth burst count %d must be at least 1", c.AuthBurstCount))
	}
	if c.AuthBurstWindow <= 0 {
		errs = append(errs, fmt.Errorf("auth burst window %s must be positive", c.AuthBurstWindow))
	}
	if c.SessionDelay < 0 {
		errs = append(errs, fmt.Errorf("session delay %s must not be negative", c.SessionDelay))
	}
	return errors.Join(errs...)
}

// Record is one version of an alert: the wire form on the alerts topic (JSON, key AlertID)
// and a row of the ClickHouse alerts table (ReplacingMergeTree(version)).
type Record struct {
	AlertID     string    `json:"alert_id"`
	Rule        string    `json:"rule"`
	Code        string    `json:"code"`
	Severity    string    `json:"severity"`
	SeverityRaw string    `json:"severity_raw"`
	Host        string    `json:"host"`
	Product     string    `json:"product"`
	FiredAt     time.Time `json:"fired_at"`
	LastSeen    time.Time `json:"last_seen"`
	ResolvedAt  time.Time `json:"resolved_at"` // zero while open
	Count       uint64    `json:"count"`
	Value       float64   `json:"value"`
	Threshold   float64   `json:"threshold"`
	SessionID   string    `json:"session_id"`
	Example     string    `json:"example"`
	Summary     string    `json:"summary"`
	// Version is Count<<1 | resolved: strictly increasing per AlertID.
	Version uint64 `json:"version"`

	// Hold is the lowest source offset of a line counted in the record's window (-1: none on
	// this source). The stream attributes the record to that offset, not to the line whose
	// processing emitted it: until Kafka acknowledges the record, the commit stays at or
	// before the window's first line, so a crash replays the whole window and re-emits it.
	Hold int64 `json:"-"`
}

// AppendJSON appends r's wire form. Alert records are rare (throttled), so encoding/json is
// good enough here.
func (r *Record) AppendJSON(dst []byte) []byte {
	b, err := json.Marshal(r)
	if err != nil { // cannot happen: every field is a plain value
		panic(err)
	}
	return append(dst, b...)
}

// Open reports whether the record has not been resolved.
func (r *Record) Open() bool { return r.ResolvedAt.IsZero() }

// ID is the deterministic alert id of (rule, host, window start): 16 hex digits.
func ID(rule, host string, windowStart time.Time) string {
	h := sha256.New()
	var n [8]byte
	for _, s := range [...]string{rule, host} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(n[:], uint64(windowStart.UnixNano()))
	h.Write(n[:])
	var sum [32]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:8])
}

type key struct {
	rule Rule
	host string
}

// state is one open window of one (rule, host).
type state struct {
	rec      Record
	start    time.Time // window start (aligned)
	closeAt  time.Time // the watermark that closes it: window end (+ SessionDelay)
	end      time.Time
	emitted  uint64    // count of the last emitted version (0: none yet)
	lastEmit time.Time // event time of the last emission
	source   string
	low      int64 // lowest source offset of a line counted in this window
	pending  bool  // a burst window below its threshold: nothing emitted yet
}

// Stats counts what the engine did (for tests and metrics).
type Stats struct {
	Late int64 // events for a window already closed, left out of its alert
}

// Engine turns classified events and closed sessions into alert records. One engine per
// partition (like the assembler); not safe for concurrent use; dropped on revocation.
type Engine struct {
	cfg    Config
	cat    *Catalogue
	open   map[key]*state
	closed map[key]time.Time // start of the last closed window per key, to spot late lines
	stats  Stats
}

// New returns an engine using catalogue cat (shared, read-only).
func New(cfg Config, cat *Catalogue) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alert config: %w", err)
	}
	return &Engine{cfg: cfg, cat: cat, open: map[key]*state{}, closed: map[key]time.Time{}}, nil
}

// Stats returns the counters so far.
func (e *Engine) Stats() Stats { return e.stats }

// Open is the number of open windows (alerts and bursts below their threshold).
func (e *Engine) Open() int { return len(e.open) }

// Event feeds one notable event (as the assembler emits it, with its session id). It returns
// the class (for metrics) and appends the records to emit to dst.
func (e *Engine) Event(ev *record.Event, dst []Record) (Class, []Record) {
	cl := e.cat.Classify(ev.Product, ev.Code, SeverityByName(ev.Severity), ev.ClientIP, ev.Raw)
	if cl.Rule == RuleNone {
		return cl, dst
	}
	t := ev.Time.UTC()
	k := key{cl.Rule, ev.Host}
	st, dst, ok := e.window(k, t, e.cfg.Window, 0, dst)
	if !ok {
		return cl, dst
	}
	if st.rec.Count == 0 {
		st.rec = Record{Rule: cl.Rule.String(), Code: ev.Code, Severity: cl.Severity.String(),
			SeverityRaw: ev.RawSeverity, Host: ev.Host, Product: ev.Product, FiredAt: t,
			Threshold: 1, SessionID: ev.SessionID, Example: clip(ev.Raw),
			AlertID: ID(cl.Rule.String(), ev.Host, st.start)}
		st.rec.Summary = summary(cl.Rule, ev)
		st.source, st.low = ev.Pos.Source, ev.Pos.Offset
	}
	e.count(st, t, ev.Pos)
	if st.emitted == 0 || t.Sub(st.lastEmit) >= e.cfg.UpdateInterval {
		dst = e.emit(st, t, dst)
	}
	return cl, dst
}

// Line feeds one parsed line for the rules that read lines the assembler does not make
// notable: smtpf's session end (#721) whose client flags include "relay" (the access map
// lets the client relay) from a client outside the trusted networks raises relay_unexpected.
// Hot path: a product and code comparison for every other line, no allocation.
func (e *Engine) Line(ev *event.Event, dst []Record) (Class, []Record) {
	if ev.Product != event.ProductSmtpf || len(e.cat.trusted) == 0 || !smtpfEnd(ev) ||
		!hasFlag(ev.Field(event.FieldFlags), "relay") {
		return Class{}, dst
	}
	ip, err := netip.ParseAddr(string(ev.Field(event.FieldClientIP)))
	if err != nil || e.cat.isTrusted(ip) {
		return Class{}, dst
	}
	r := record.Event{Time: ev.Time.UTC(), Host: string(ev.Bytes(ev.Host)), Product: ev.Product.String(),
		Dialect: ev.Dialect.String(), Code: relayGrantCode, Name: "client_relay",
		Severity: ev.Severity.String(), RawSeverity: string(ev.Bytes(ev.SeverityRaw)), ClientIP: ip.String(),
		Raw: string(ev.Raw()), Pos: record.Position{Source: ev.Pos.File, Offset: ev.Pos.Offset}}
	return e.Event(&r, dst)
}

// smtpfEnd reports whether ev is smtpf's session end: #721, or "end" without a number (2.0.x).
func smtpfEnd(ev *event.Event) bool {
	code := ev.Bytes(ev.Code)
	return string(code) == "#721" || len(code) == 0 && string(ev.Bytes(ev.Name)) == "end"
}

// relayGrantCode is the alert code of an smtpf session end with the client flag "relay".
const relayGrantCode = "#721 relay"

// hasFlag reports whether the comma list f holds the flag name.
func hasFlag(f []byte, name string) bool {
	for len(f) > 0 {
		i := 0
		for i < len(f) && f[i] != ',' {
			i++
		}
		if string(f[:i]) == name {
			return true
		}
		if i == len(f) {
			break
		}
		f = f[i+1:]
	}
	return false
}

// AuthFailed reports whether a closed session failed AUTH.
func AuthFailed(s *record.Session) bool {
	if s.Outcome == record.AuthFailed {
		return true
	}
	for i := range s.Recipients {
		if s.Recipients[i].Outcome == record.AuthFailed {
			return true
		}
	}
	return false
}

// Session feeds one closed session: sessions that failed AUTH count towards the host's
// auth_failure_burst window.
func (e *Engine) Session(s *record.Session, dst []Record) []Record {
	if !AuthFailed(s) {
		return dst
	}
	t := s.EndTime.UTC()
	if t.IsZero() {
		t = s.StartTime.UTC()
	}
	k := key{RuleAuthFailureBurst, s.Host}
	st, dst, ok := e.window(k, t, e.cfg.AuthBurstWindow, e.cfg.SessionDelay, dst)
	if !ok {
		return dst
	}
	if st.rec.Count == 0 {
		st.pending = true
		st.rec = Record{Rule: RuleAuthFailureBurst.String(), Code: string(record.AuthFailed),
			Severity: event.SeverityWarning.String(), Host: s.Host, Product: s.Product, FiredAt: t,
			Threshold: float64(e.cfg.AuthBurstCount), AlertID: ID(RuleAuthFailureBurst.String(), s.Host, st.start)}
		st.source, st.low = s.FirstPos.Source, s.FirstPos.Offset
	}
	e.count(st, t, s.FirstPos)
	if t.Before(st.rec.FiredAt) {
		st.rec.FiredAt = t
	}
	st.rec.SessionID = s.SessionID
	st.rec.Example = clip("AUTH failed from " + s.ClientIP + " user " + strconv.Quote(s.AuthUser) + " (" + s.SMTPReply + ")")
	st.rec.Summary = fmt.Sprintf("%d sessions failed AUTH on %s within %s (threshold %d): password guessing?",
		st.rec.Count, s.Host, e.cfg.AuthBurstWindow, e.cfg.AuthBurstCount)
	if st.pending && st.rec.Count >= uint64(e.cfg.AuthBurstCount) {
		st.pending = false
		dst = e.emit(st, t, dst)
	} else if !st.pending && t.Sub(st.lastEmit) >= e.cfg.UpdateInterval {
		dst = e.emit(st, t, dst)
	}
	return dst
}

// window returns the open state of k for event time t, opening it (and closing an older
// window of k) as needed. ok is false for a line of a window already closed.
func (e *Engine) window(k key, t time.Time, size, delay time.Duration, dst []Record) (*state, []Record, bool) {
	start := t.Truncate(size)
	st := e.open[k]
	if st != nil && start.After(st.start) {
		dst = e.resolve(k, st, dst)
		st = nil
	}
	if st != nil && start.Before(st.start) {
		e.stats.Late++
		return nil, dst, false
	}
	if st == nil {
		if last, ok := e.closed[k]; ok && !start.After(last) {
			e.stats.Late++
			return nil, dst, false
		}
		st = &state{start: start, end: start.Add(size), closeAt: start.Add(size + delay), low: -1}
		e.open[k] = st
	}
	return st, dst, true
}

func (e *Engine) count(st *state, t time.Time, pos record.Position) {
	st.rec.Count++
	st.rec.Value = float64(st.rec.Count)
	if t.After(st.rec.LastSeen) {
		st.rec.LastSeen = t
	}
	if pos.Source == st.source && (st.low < 0 || pos.Offset < st.low) {
		st.low = pos.Offset
	}
}

func (e *Engine) emit(st *state, t time.Time, dst []Record) []Record {
	st.emitted, st.lastEmit = st.rec.Count, t
	r := st.rec
	r.Version, r.Hold = r.Count<<1, st.low
	return append(dst, r)
}

func (e *Engine) resolve(k key, st *state, dst []Record) []Record {
	delete(e.open, k)
	e.closed[k] = st.start
	if st.pending {
		return dst // a burst that never reached its threshold: nothing was raised
	}
	r := st.rec
	r.ResolvedAt = st.end
	r.Version, r.Hold = r.Count<<1|1, st.low
	return append(dst, r)
}

// Expire resolves every window whose end (plus the session delay for session-derived rules)
// the watermark has passed, in a deterministic order, appending the records to dst.
func (e *Engine) Expire(watermark time.Time, dst []Record) []Record {
	var due []key
	for k, st := range e.open {
		if !watermark.Before(st.closeAt) {
			due = append(due, k)
		}
	}
	sortKeys(due, e.open)
	for _, k := range due {
		dst = e.resolve(k, e.open[k], dst)
	}
	// forget closed-window markers the watermark is far past (bounded memory)
	for k, start := range e.closed {
		if watermark.Sub(start) > 4*(e.cfg.Window+e.cfg.AuthBurstWindow+e.cfg.SessionDelay) {
			delete(e.closed, k)
		}
	}
	return dst
}

// LowestOpenPosition is the lowest offset in source of a line counted by an open window: the
// stream may commit up to (not including) it, so a replay after a crash re-reads every line of
// every open window and re-emits the same records.
func (e *Engine) LowestOpenPosition(source string) (offset int64, ok bool) {
	for _, st := range e.open {
		if st.source == source && st.low >= 0 && (!ok || st.low < offset) {
			offset, ok = st.low, true
		}
	}
	return offset, ok
}

func clip(s string) string {
	if len(s) <= MaxExample {
		return s
	}
	s = s[:MaxExample]
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
}

var ruleSummaries = [numRules]string{
	RuleIsodeCritical:    "Isode logged a Critical event (needs reporting to Isode)",
	RuleIsodeFatal:       "Isode logged a Fatal event: an operation could not continue",
	RuleIsodeListenError: "Isode could not listen for SMTP connections",
	RuleSmtpfOutOfMemory: "smtpf ran out of memory",
	RuleSmtpfResources:   "smtpf reports a resources error",
	RuleSmtpfInterface:   "smtpf has an interface error: it may not accept connections",
	RuleSmtpfLicence:     "smtpf reports a licence error",
	RuleSmtpfAccept:      "smtpf cannot accept connections",
	RuleOpenRelay:        "MailEnable is configured to let anyone relay (open relay)",
	RuleRelayUnexpected:  "relay granted to a client outside the trusted networks",
	RuleDNSBLFailure:     "a DNS/DNSBL lookup failed: filtering silently degrades",
	RuleCriticalOther:    "an event at critical severity or worse",
}

func summary(r Rule, ev *record.Event) string {
	s := ruleSummaries[r]
	s += " on " + ev.Host + " (" + ev.Product + " " + ev.Code
	if ev.Name != "" && ev.Name != ev.Code {
		s += " " + ev.Name
	}
	return s + ")"
}
