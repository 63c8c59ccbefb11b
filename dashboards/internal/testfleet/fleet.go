// Package testfleet generates a small, realistic fleet of session records, notable events and
// alerts with exact ground truth, and loads it into ClickHouse 18.16 (through the sink's own
// batch and writer) or into a chdb script (modern schema). The dashboard and saved-query tests
// execute every query on both and assert a handful of results against the ground truth.
package testfleet

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// T0 is the start of the generated window; every session starts in [T0, T0+Span).
var T0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// Span is the length of the generated window.
const Span = 3 * time.Hour

// Host is one mail server of the fleet.
type Host struct {
	Name, Product, Source string
}

// Hosts are the generated fleet's servers (two products appear twice).
var Hosts = []Host{
	{"mx1.fleet.example", "smtpf", "/var/log/maillog"},
	{"mx2.fleet.example", "spamdyke", "/var/log/maillog"},
	{"mx3.fleet.example", "spamdyke", "/var/log/mail.log"},
	{"mx4.fleet.example", "imail", `C:\IMail\Logs\sysl1120.txt`},
	{"mx5.fleet.example", "mailenable", `C:\Program Files\Mail Enable\Logging\SMTP\SMTP-Activity.log`},
	{"gw1.fleet.example", "mswitch", "/var/isode/log/smtp.log"},
}

// Offender is the client address that hammers every host and is refused by a DNSBL each time.
const Offender = "203.0.113.66"

// Truth is what the generator knows about the data it produced (replays excluded).
type Truth struct {
	Sessions        int                       // unique sessions
	Recipients      int                       // recipients over unique sessions
	PerHostOutcome  map[string]map[string]int // host -> outcome -> unique sessions
	OffenderTotal   int                       // sessions of Offender
	OffenderHosts   int                       // hosts Offender touched
	GreyTriplets    int                       // (ip, sender) pairs greylisted at least once
	GreyPassed      int                       // of those, pairs with an ALLOWED session after the first greylisting
	DNSBLHits       map[string]int            // DNSBL name -> DENIED_RBL sessions
	TraceSession    string                    // a session id with TraceEvents events
	TraceEvents     int
	TraceSender     string // a sender address with SenderSessions sessions
	SenderSessions  int
	TraceRecipient  string // a recipient address with RecipientSessions sessions
	RecipientHits   int
	OpenAlerts      int // alerts with no resolved_at
	OpenAlertLines  int // sum of count over the open alerts
	AlertLines      int // sum of count over every alert
	Alerts          int
	ReplayedRecords int // session records written twice on purpose
}

// Fleet is the generated data set.
type Fleet struct {
	Sessions []record.Session // unique sessions
	Replays  []record.Session // copies of some sessions, written again as a replayed stream would
	Events   []record.Event
	Alerts   []Alert
	// Poison are session-topic messages the sink cannot decode: they become deadletter rows.
	Poison []string
	Truth  Truth
}

// Alert is one row of the alerts table (the alerting stage owns its Go type; this one mirrors
// the table, migration 0003 included).
type Alert struct {
	ID                            string
	FiredAt, LastSeen, ResolvedAt time.Time // zero ResolvedAt: still open
	Rule, Code, Severity          string
	Host, Product, Outcome        string
	Count                         uint64
	Value, Threshold              float64
	SessionID, Example            string
	Summary, Details              string
	Version                       uint64
}

var (
	senderDomains = []string{"bulk-offers.example", "newsletter.example.org", "partner.example.com",
		"bank.example.net", "shop.example", "mailer.example.info", "freemail.example", "univ.example.edu"}
	localDomains = []string{"customer1.example", "customer2.example", "hosted.example.net"}
	users        = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "info", "sales"}
	dnsbls       = []string{"zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org", "dnsbl.sorbs.net"}
	helos        = []string{"localhost", "mail.partner.example.com", "[203.0.113.5]", "smtp.freemail.example", "User", "mx.shop.example"}
)

type weighted struct {
	o record.Outcome
	w int
}

// The outcome mix of ordinary sessions (greylisting and the offender are generated apart).
var mix = []weighted{
	{record.Allowed, 40}, {record.DeniedRBL, 14}, {record.DeniedRDNS, 7}, {record.DeniedSPF, 4},
	{record.DeniedRelay, 3}, {record.DeniedUnknownRecipient, 6}, {record.DeniedContent, 2},
	{record.DeniedSpamScore, 3}, {record.DeniedHELO, 2}, {record.DeniedRHSBL, 1}, {record.Timeout, 4},
	{record.Disconnected, 3}, {record.TempFail, 2},
}

type gen struct {
	r       *rand.Rand
	offsets map[string]int64
	seq     int
	f       *Fleet
}

// Generate returns a deterministic fleet of about n ordinary sessions plus the offender's and
// the greylisting pairs'.
func Generate(seed uint64, n int) *Fleet {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), offsets: map[string]int64{}, f: &Fleet{}}
	tr := &g.f.Truth
	tr.PerHostOutcome = map[string]map[string]int{}
	tr.DNSBLHits = map[string]int{}
	for _, h := range Hosts {
		tr.PerHostOutcome[h.Name] = map[string]int{}
	}
	total := 0
	for w := range mix {
		total += mix[w].w
	}
	for i := 0; i < n; i++ {
		h := Hosts[g.r.IntN(len(Hosts))]
		k := g.r.IntN(total)
		o := mix[0].o
		for _, m := range mix {
			if k < m.w {
				o = m.o
				break
			}
			k -= m.w
		}
		at := T0.Add(time.Duration(g.r.Int64N(int64(Span - 10*time.Minute))))
		g.session(h, at, g.clientIP(), g.sender(), o)
	}
	// The offender: refused by a DNSBL on every host, spread over the window.
	offHosts := map[string]bool{}
	for i := 0; i < 150; i++ {
		h := Hosts[i%len(Hosts)]
		offHosts[h.Name] = true
		at := T0.Add(time.Duration(i) * (Span - 10*time.Minute) / 150)
		g.session(h, at, Offender, "promo@bulk-offers.example", record.DeniedRBL)
		tr.OffenderTotal++
	}
	tr.OffenderHosts = len(offHosts)
	// Greylisting: 100 (ip, sender) pairs refused once; 70 come back 5-30 minutes later and pass.
	for i := 0; i < 100; i++ {
		h := Hosts[g.r.IntN(len(Hosts))]
		ip := fmt.Sprintf("198.51.100.%d", 1+i)
		from := fmt.Sprintf("retry%d@partner.example.com", i)
		at := T0.Add(time.Duration(g.r.Int64N(int64(Span - 40*time.Minute))))
		rc := g.recipient()
		g.sessionTo(h, at, ip, from, record.DeniedGreylist, rc)
		tr.GreyTriplets++
		if i%10 < 7 {
			g.sessionTo(h, at.Add(time.Duration(5+g.r.IntN(25))*time.Minute), ip, from, record.Allowed, rc)
			tr.GreyPassed++
		}
	}
	// A session traced end to end, with several raw lines.
	s := g.session(Hosts[1], T0.Add(42*time.Minute), "192.0.2.77", "alice@shop.example", record.DeniedSpamScore)
	tr.TraceSession = s.SessionID
	for _, e := range g.f.Events {
		if e.SessionID == s.SessionID {
			tr.TraceEvents++
		}
	}
	// Replays: every 20th session is written a second time, as after an enricher restart.
	for i := 0; i < len(g.f.Sessions); i += 20 {
		g.f.Replays = append(g.f.Replays, g.f.Sessions[i])
	}
	tr.ReplayedRecords = len(g.f.Replays)
	g.alerts()
	g.f.Poison = []string{`{"session_id": 12}`, `not json at all`, `{"session_id":"x","start_time":"yesterday"}`}

	tr.Sessions = len(g.f.Sessions)
	senders, rcpts := map[string]int{}, map[string]int{}
	for i := range g.f.Sessions {
		s := &g.f.Sessions[i]
		tr.Recipients += len(s.Recipients)
		tr.PerHostOutcome[s.Host][string(s.Outcome)]++
		if s.Outcome == record.DeniedRBL {
			tr.DNSBLHits[s.Reason]++
		}
		if s.MailFrom != "" {
			senders[s.MailFrom]++
		}
		for _, r := range s.Recipients {
			rcpts[r.Address]++
		}
	}
	tr.TraceSender, tr.SenderSessions = busiest(senders, "promo@bulk-offers.example")
	tr.TraceRecipient, tr.RecipientHits = busiest(rcpts, "")
	return g.f
}

// busiest returns the key with the highest count (ties by name), skipping skip.
func busiest(m map[string]int, skip string) (string, int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != skip {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys[0], m[keys[0]]
}

func (g *gen) clientIP() string {
	switch k := g.r.IntN(100); {
	case k < 4:
		return fmt.Sprintf("2001:db8:%x::%x", g.r.IntN(8), 1+g.r.IntN(200))
	case k < 40:
		return fmt.Sprintf("192.0.2.%d", 1+g.r.IntN(60))
	default:
		return fmt.Sprintf("45.%d.%d.%d", 80+g.r.IntN(4), g.r.IntN(16), 1+g.r.IntN(250))
	}
}

func (g *gen) sender() string {
	if g.r.IntN(20) == 0 {
		return "" // null sender (bounces)
	}
	return users[g.r.IntN(len(users))] + "@" + senderDomains[g.r.IntN(len(senderDomains))]
}

func (g *gen) recipient() string {
	return users[g.r.IntN(len(users))] + "@" + localDomains[g.r.IntN(len(localDomains))]
}

func (g *gen) session(h Host, at time.Time, ip, from string, o record.Outcome) *record.Session {
	return g.sessionTo(h, at, ip, from, o, "")
}

// sessionTo builds one session record the way the enricher would, and its notable events.
func (g *gen) sessionTo(h Host, at time.Time, ip, from string, o record.Outcome, rcpt string) *record.Session {
	g.seq++
	key := strconv.Itoa(10000 + g.seq)
	first := record.Position{Source: h.Source, Offset: g.offsets[h.Name]}
	s := record.Session{
		Host: h.Name, Product: h.Product, SessionKey: key, StartTime: at,
		EndTime: at.Add(time.Duration(1+g.r.IntN(20)) * time.Second), ClientIP: ip,
		ClientPTR: ptr(ip), HELO: helos[g.r.IntN(len(helos))], MailFrom: from, Outcome: o,
		ClosedBy: record.ClosedByEnd, OutcomeVersion: record.OutcomeVersion, FirstPos: first,
		TLS: g.r.IntN(3) == 0, MaxSeverity: "info",
	}
	s.SessionID = record.NewSessionID(h.Name, h.Product, key, first)
	nr := 1 + g.r.IntN(3)
	switch o.Stage() {
	case record.StageConnection:
		nr = 0
		s.SMTPCode, s.Permanent = 554, true
	case record.StageAbort:
		nr = g.r.IntN(2)
	}
	if o == record.DeniedGreylist || o == record.TempFail {
		s.SMTPCode, s.Permanent = 451, false
	} else if o.Denied() && s.SMTPCode == 0 {
		s.SMTPCode, s.Permanent = 550, true
	}
	if o == record.Allowed {
		s.SMTPCode = 250
		s.MessageID = fmt.Sprintf("<%d.%s@%s>", g.seq, key, domainOf(from, "fleet.example"))
		s.Size = int64(2000 + g.r.IntN(200000))
		switch k := g.r.IntN(20); {
		case k < 17:
			s.Delivery = record.DeliveryDelivered
		case k < 19:
			s.Delivery = record.DeliveryDeferred
		default:
			s.Delivery = record.DeliveryBounced
		}
	}
	for i := 0; i < nr; i++ {
		a := rcpt
		if a == "" || i > 0 {
			a = g.recipient()
		}
		ro := o
		if o.Stage() == record.StageAbort {
			ro = record.OutcomeNone
		}
		s.Recipients = append(s.Recipients, record.Recipient{Address: a, Outcome: ro, SMTPCode: s.SMTPCode, Reply: reply(o, s.SMTPCode)})
	}
	s.SMTPReply = reply(o, s.SMTPCode)
	switch o {
	case record.DeniedRBL:
		s.Reason = dnsbls[int(hash(ip))%len(dnsbls)]
		s.Flags = []string{"dnsbl"}
	case record.DeniedRDNS:
		s.Reason = "missing PTR record"
		s.Flags = []string{"no_ptr"}
	case record.DeniedGreylist:
		s.Reason = "greylisted for 300 seconds"
	case record.DeniedSPF:
		s.Reason = "SPF Fail"
	default:
		if o != record.Allowed {
			s.Reason = s.SMTPReply
		}
	}
	// Raw lines: one notable event per line the product wrote for a refusal or abort; an
	// accepted session has none (only notable lines reach the events table).
	lines := 0
	if o != record.Allowed {
		lines = 1 + g.r.IntN(2)
		if o == record.DeniedSpamScore {
			lines = 3
		}
	}
	off := first.Offset
	for i := 0; i < lines; i++ {
		raw := fmt.Sprintf("%s %s %s[%d]: %s from: %s to: %s origin_ip: %s reason: %s",
			at.Format("Jan _2 15:04:05"), h.Name, h.Product, 1000+g.seq%9000, o, orUnknown(from), orUnknown(firstRcpt(s)), ip, s.Reason)
		g.f.Events = append(g.f.Events, record.Event{
			Time: at.Add(time.Duration(i) * time.Second), Host: h.Name, Product: h.Product, Dialect: h.Product,
			Code: string(o), Name: "session_refused", Severity: "warning", RawSeverity: "info",
			SessionID: s.SessionID, ClientIP: ip, Raw: raw, Pos: record.Position{Source: h.Source, Offset: off},
		})
		off += int64(len(raw) + 1)
		s.EventCount++
	}
	if s.EventCount == 0 {
		s.EventCount = 3
		off += 300
	}
	s.LastPos = record.Position{Source: h.Source, Offset: off - 1}
	g.offsets[h.Name] = off + int64(g.r.IntN(400))
	g.f.Sessions = append(g.f.Sessions, s)
	return &g.f.Sessions[len(g.f.Sessions)-1]
}

func (g *gen) alerts() {
	tr := &g.f.Truth
	rules := []struct{ rule, code, sev, outcome, example string }{
		{"isode_critical", "14", "critical", "", "M-Switch event Critical (14): queue manager lost its database"},
		{"open_relay", "ME-I0110", "critical", "", "ME-I0110: server is configured to allow anyone to relay"},
		{"host_silent", "", "critical", "", ""},
	}
	for i := 0; i < 12; i++ {
		h := Hosts[i%len(Hosts)]
		r := rules[i%len(rules)]
		a := Alert{
			ID: fmt.Sprintf("al-%04d", i), FiredAt: T0.Add(time.Duration(10+i*13) * time.Minute),
			Rule: r.rule, Code: r.code, Severity: r.sev, Host: h.Name, Product: h.Product, Outcome: r.outcome,
			Count: uint64(1 + i%4), Value: float64(40 + i*3), Threshold: 30,
			Summary: fmt.Sprintf("%s on %s", r.rule, h.Name), Details: `{"window":"5m"}`,
		}
		if r.example != "" {
			a.Example, a.SessionID = r.example, fmt.Sprintf("sess-%04d", i)
		}
		a.LastSeen = a.FiredAt.Add(time.Duration(a.Count-1) * time.Minute)
		a.Version = a.Count << 1
		// The alert was first written with count 1, then again with the repeats.
		if a.Count > 1 {
			first := a
			first.Count, first.LastSeen, first.Version = 1, a.FiredAt, 2
			g.f.Alerts = append(g.f.Alerts, first)
		}
		if i%3 != 0 {
			a.ResolvedAt = a.FiredAt.Add(20 * time.Minute)
			a.Version |= 1
		} else {
			tr.OpenAlerts++
			tr.OpenAlertLines += int(a.Count)
		}
		g.f.Alerts = append(g.f.Alerts, a)
		tr.Alerts++
		tr.AlertLines += int(a.Count)
	}
}

func hash(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func ptr(ip string) string {
	if hash(ip)%4 == 0 {
		return "" // no PTR record
	}
	return fmt.Sprintf("host-%d.dyn.example.net", hash(ip)%10000)
}

func reply(o record.Outcome, code int) string {
	switch o {
	case record.Allowed:
		return "250 ok queued"
	case record.Timeout, record.Disconnected:
		return ""
	}
	return fmt.Sprintf("%d %s", code, o)
}

func domainOf(addr, def string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return addr[i+1:]
		}
	}
	return def
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func firstRcpt(s record.Session) string {
	if len(s.Recipients) == 0 {
		return ""
	}
	return s.Recipients[0].Address
}
