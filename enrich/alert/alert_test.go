package alert

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/enrich/session"
)

// pipe runs lines through the real parser and assembler (with the catalogue's notable codes)
// into an engine, as the stream does, and returns every record emitted.
type pipe struct {
	t   *testing.T
	p   *parse.Parser
	asm *session.Assembler
	eng *Engine
	cat *Catalogue
	ev  event.Event
	off int64
	out []Record
	cls []Class
}

func newPipe(t *testing.T, cfg Config) *pipe {
	t.Helper()
	p, err := parse.New(parse.Options{DefaultYear: 2026})
	if err != nil {
		t.Fatal(err)
	}
	cat := NewCatalogue(cfg.Trusted)
	sc := session.Defaults()
	sc.NotableCodes = cat.NotableCodes()
	asm, err := session.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := New(cfg, cat)
	if err != nil {
		t.Fatal(err)
	}
	return &pipe{t: t, p: p, asm: asm, eng: eng, cat: cat}
}

func (pp *pipe) line(host, line string) event.Severity {
	pp.t.Helper()
	src := event.Source{Host: host, File: "raw/0", Offset: pp.off, Line: pp.off + 1}
	pp.off++
	pp.p.Parse(&pp.ev, []byte(line), &src)
	if !pp.ev.Parsed {
		pp.t.Fatalf("line %q did not parse: %s", line, pp.ev.Reason)
	}
	sev := pp.cat.Severity(&pp.ev)
	for _, s := range pp.asm.Add(&pp.ev) {
		pp.out = pp.eng.Session(&s, pp.out)
	}
	for _, n := range pp.asm.NotableEvents(nil) {
		var c Class
		c, pp.out = pp.eng.Event(&n, pp.out)
		pp.cls = append(pp.cls, c)
	}
	return sev
}

func (pp *pipe) expire(t time.Time) {
	for _, s := range pp.asm.Expire(t) {
		pp.out = pp.eng.Session(&s, pp.out)
	}
	pp.out = pp.eng.Expire(t, pp.out)
}

// catalogueLines: one real-format line per fatal/critical catalogue id (FORMATS.md, seeds
// 000/001/003), with the rule and normalised severity it must raise.
var catalogueLines = []struct {
	host, line, rule string
	sev              event.Severity
}{
	{"iso1", "2026-03-09 12:43:51.250 critical MTA_SMTP Critical 14 smtpserver[4711]: Inconsistent queue state, please report", "isode_critical", event.SeverityCritical},
	{"iso1", "2026-03-09 12:43:52.000 fatal MTA_SMTP Fatal 13 smtpserver[4711]: Cannot open configuration", "isode_fatal", event.SeverityCritical},
	{"iso1", "2026-03-09 12:43:53.000 fatal MTA_SMTP FatalS 29 smtpserver[4711]: Cannot open channel", "isode_fatal", event.SeverityCritical},
	{"iso1", "2026-03-09 12:43:54.000 fatal MTA_SMTP ListenError 101 smtpserver[4711]: Cannot listen on 0.0.0.0:25", "isode_listen_error", event.SeverityCritical},
	{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: #538 out of memory cache.c(120)", "smtpf_out_of_memory", event.SeverityCritical},
	{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: #556 resources error server.c(88): Too many open files (24)", "smtpf_resources", event.SeverityCritical},
	{"mx1", `Mar  9 12:43:51 mx1 smtpf[28585]: #596 interface=eth0 error: Cannot assign requested address (99)`, "smtpf_interface", event.SeverityCritical},
	{"mx1", `Mar  9 12:43:51 mx1 smtpf[28585]: #812 no matching interfaces="eth9"`, "smtpf_interface", event.SeverityCritical},
	{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: #398 license key has expired", "smtpf_licence", event.SeverityCritical},
	{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: #406 not licensed for IP [192.0.2.7]", "smtpf_licence", event.SeverityCritical},
	{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: #602 socket accept: Too many open files (24); th=10 cn=200", "smtpf_accept", event.SeverityCritical},
	{"me1", "03/09/26 12:43:51 ME-I0110: Relay Granted: Server is configured to allow anyone to relay.", "open_relay", event.SeverityCritical},
	{"im1", "03:09 12:43 SMTPD(00180250) BLACKLIST:failed to connect to service (Spamhaus:zen.spamhaus.org:zen.spamhaus.org)", "dnsbl_failure", event.SeverityError},
	{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #446 MX example.org lookup: SERVFAIL (2)", "dnsbl_failure", event.SeverityWarning},
}

func TestCatalogueLinesRaiseOneAlertEach(t *testing.T) {
	pp := newPipe(t, Defaults())
	for _, c := range catalogueLines {
		if sev := pp.line(c.host, c.line); sev != c.sev {
			t.Errorf("%q: normalised severity %s, want %s", c.line, sev, c.sev)
		}
	}
	// one opening record per (rule, host) in the window
	opened := map[string]Record{}
	for _, r := range pp.out {
		if r.Version>>1 == 1 && r.Open() {
			opened[r.Rule+"/"+r.Host] = r
		}
	}
	want := map[string]bool{}
	for _, c := range catalogueLines {
		want[c.rule+"/"+c.host] = true
	}
	for k := range want {
		if _, ok := opened[k]; !ok {
			t.Errorf("no alert opened for %s", k)
		}
	}
	if len(opened) != len(want) {
		t.Errorf("opened %d alerts, want %d: %v", len(opened), len(want), opened)
	}
	r := opened["open_relay/me1"]
	if r.Severity != "critical" || r.SeverityRaw != "I" || r.Product != "mailenable" || r.Code != "ME-I0110" || r.Example == "" {
		t.Errorf("open relay record %+v", r)
	}
	r = opened["isode_critical/iso1"]
	if r.Severity != "critical" || r.SeverityRaw != "critical" || r.Code != "14" || r.SessionID == "" {
		t.Errorf("isode critical record %+v (want a session id: the line carries a process)", r)
	}
	// repeats of the smtpf_interface and smtpf_licence lines (two codes each) were counted
	pp.expire(time.Date(2026, 3, 9, 13, 0, 0, 0, time.UTC))
	final := map[string]Record{}
	for _, r := range pp.out {
		if !r.Open() {
			final[r.Rule+"/"+r.Host] = r
		}
	}
	if len(final) != len(want) {
		t.Fatalf("resolved %d alerts, want %d", len(final), len(want))
	}
	if f := final["smtpf_interface/mx1"]; f.Count != 2 || f.Version != 2<<1|1 || !f.ResolvedAt.Equal(time.Date(2026, 3, 9, 12, 50, 0, 0, time.UTC)) {
		t.Errorf("smtpf_interface final %+v", f)
	}
	if f := final["isode_fatal/iso1"]; f.Count != 2 {
		t.Errorf("isode_fatal counts Fatal and FatalS: %+v", f)
	}
	if pp.eng.Open() != 0 {
		t.Errorf("%d windows still open after expiry", pp.eng.Open())
	}
}

func TestSeverityNormalisation(t *testing.T) {
	pp := newPipe(t, Defaults())
	for _, c := range []struct {
		host, line string
		sev        event.Severity
	}{
		// smtpf ERR that are verdicts on one message or client are notice, not server faults
		{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #207 message k4G9Bh285856336700AB is INFECTED with Eicar-Test-Signature", event.SeverityNotice},
		{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #639 client mail.example.org [192.0.2.1] I/O error: Connection reset by peer (104)", event.SeverityNotice},
		// a real server fault stays error
		{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: #646 spamd connect error \"127.0.0.1:783\": Connection refused (111)", event.SeverityError},
		{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: #599 ready", event.SeverityInfo},
		// Isode words
		{"iso1", "2026-03-09 12:43:51.250 warning MTA_SMTP DNSBLfailed 106 smtpserver[4711]: DNSBL zen.spamhaus.org lists 192.0.2.25", event.SeverityWarning},
		{"iso1", "2026-03-09 12:43:51.250 pdu MTA_SMTP ReadPDU 31 smtpserver[4711]: EHLO mail.example.org", event.SeverityDebug},
		// MailEnable: E on a relay denial is a verdict
		{"me1", "03/09/26 12:43:51 ME-E0109: Relay Denied: Failed to meet all relay criteria.", event.SeverityNotice},
		{"me1", "03/09/26 12:43:51 ME-I0108: Relay Granted: Sender has authenticated.", event.SeverityInfo},
		// spamdyke
		{"sd1", "Mar  9 11:10:37 sd1 spamdyke[1]: ERROR(filter_rdns_missing()@filter.c:123): unable to resolve: timeout", event.SeverityError},
		{"sd1", "Mar  9 11:10:37 sd1 spamdyke[2]: DENIED_RBL_MATCH from: a@example.org to: b@example.net origin_ip: 192.0.2.1 origin_rdns: (unknown) auth: (unknown) encryption: (none) reason: 554_Refused", event.SeverityNotice},
		// IMail derived from the message
		{"im1", "03:09 12:43 SMTPD(00180251) VALIDATION: (REVDNS) domain FAILED to receive reply from DNS server", event.SeverityWarning},
	} {
		if got := pp.line(c.host, c.line); got != c.sev {
			t.Errorf("%q: %s, want %s", c.line, got, c.sev)
		}
	}
	for _, c := range pp.cls {
		if c.Rule != RuleNone && c.Rule != RuleCriticalOther {
			t.Errorf("a non-alert line matched rule %s", c.Rule)
		}
	}
}

func TestRelayUnexpected(t *testing.T) {
	cfg := Defaults()
	cfg.Trusted = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	pp := newPipe(t, cfg)
	pp.line("me1", "03/09/26 12:43:51 ME-I0107: Relay Granted: Sender IP (192.0.2.25) is within an authorized IP range.")
	if len(pp.out) != 0 {
		t.Fatalf("a grant to a trusted client raised %v", pp.out)
	}
	pp.line("me1", "03/09/26 12:43:52 ME-I0107: Relay Granted: Sender IP (203.0.113.9) is within an authorized IP range.")
	if len(pp.out) != 1 || pp.out[0].Rule != "relay_unexpected" || pp.out[0].Severity != "critical" {
		t.Fatalf("grant outside trusted networks: %+v", pp.out)
	}
	// without trusted networks the rule is off
	pp = newPipe(t, Defaults())
	pp.line("me1", "03/09/26 12:43:52 ME-I0107: Relay Granted: Sender IP (203.0.113.9) is within an authorized IP range.")
	if len(pp.out) != 0 {
		t.Fatalf("rule fired without trusted networks: %+v", pp.out)
	}
}

// TestRelayUnexpectedSmtpf: smtpf logs no relay grant of its own, but a session end whose
// client flags include "relay" (the access map lets the client relay) is one; Engine.Line
// raises relay_unexpected for it outside the trusted networks, once per session end line.
func TestRelayUnexpectedSmtpf(t *testing.T) {
	const end = `Feb  7 05:29:44 gw4 smtpf[28585]: k165S4285856336700 end i=%s p="mail.example.org" f="%s" h="mail.example.org" b=0 t=100`
	p, err := parse.New(parse.Options{DefaultYear: 2026})
	if err != nil {
		t.Fatal(err)
	}
	for _, trusted := range []bool{true, false} {
		cfg := Defaults()
		if trusted {
			cfg.Trusted = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
		}
		e, err := New(cfg, NewCatalogue(cfg.Trusted))
		if err != nil {
			t.Fatal(err)
		}
		var out []Record
		var ev event.Event
		for i, c := range []struct {
			ip, flags string
			raise     bool
		}{
			{"192.0.2.9", "relay,quit", false},                   // trusted
			{"2001:db8::25", "lan,relay", false},                 // trusted (IPv6)
			{"203.0.113.7", "white,ptr_multidomain,quit", false}, // no relay flag
			{"203.0.113.7", "relay_x,quit", false},               // not the flag itself
			{"203.0.113.7", "white,relay,quit", true},
			{"198.51.100.4", "relay", true},
		} {
			src := event.Source{Host: "gw4", File: "raw/0", Offset: int64(i)}
			p.Parse(&ev, []byte(fmt.Sprintf(end, c.ip, c.flags)), &src)
			if !ev.Parsed || !smtpfEnd(&ev) || ev.FieldString(event.FieldFlags) != c.flags {
				t.Fatalf("end line: parsed %v code %q name %q flags %q", ev.Parsed, ev.CodeString(), ev.Bytes(ev.Name), ev.Field(event.FieldFlags))
			}
			var cl Class
			cl, out = e.Line(&ev, out)
			if (cl.Rule == RuleRelayUnexpected) != (trusted && c.raise) {
				t.Errorf("trusted=%v %s f=%s: rule %q", trusted, c.ip, c.flags, cl.Rule)
			}
		}
		if !trusted && len(out) != 0 {
			t.Fatalf("rule fired without trusted networks: %+v", out)
		}
		if trusted { // the second grant is a throttled repeat of the same alert
			if len(out) != 1 || out[0].Rule != "relay_unexpected" || out[0].Severity != "critical" || out[0].Host != "gw4" ||
				!strings.Contains(out[0].Example, "203.0.113.7") {
				t.Fatalf("records %+v", out)
			}
			if out = e.Expire(time.Date(2026, 2, 7, 6, 0, 0, 0, time.UTC), out[:0]); len(out) != 1 || out[0].Count != 2 {
				t.Fatalf("resolved %+v, want one alert counting both grants", out)
			}
		}
	}
}

func smtpfOOM(at time.Time, host string) *record.Event {
	return &record.Event{Time: at, Host: host, Product: "smtpf", Dialect: "smtpf", Code: "#538",
		Name: "out_of_memory", Severity: "error", RawSeverity: "ERR",
		Raw: at.Format(time.Stamp) + " " + host + " smtpf[1]: #538 out of memory x.c(1)",
		Pos: record.Position{Source: "raw/0", Offset: at.Unix()}}
}

func TestThrottleUpdatesAndResolve(t *testing.T) {
	cfg := Defaults() // window 10m, update 1m
	e, err := New(cfg, NewCatalogue(nil))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)
	var out []Record
	// 1 line at 12:00:00, then one every 10 s up to 12:09:50: 60 lines in one window
	for i := 0; i < 60; i++ {
		_, out = e.Event(smtpfOOM(base.Add(time.Duration(i)*10*time.Second), "mx1"), out)
	}
	// the first at once, then at most one update per minute of event time
	if len(out) != 10 {
		t.Fatalf("%d records for 60 lines over 10 minutes with a 1-minute update interval, want 10", len(out))
	}
	for i := 1; i < len(out); i++ {
		if out[i].AlertID != out[0].AlertID || out[i].Version <= out[i-1].Version {
			t.Fatalf("record %d: id %s version %d after %d", i, out[i].AlertID, out[i].Version, out[i-1].Version)
		}
	}
	if out[0].Count != 1 || out[0].Version != 2 || !out[0].FiredAt.Equal(base) || !out[0].Open() {
		t.Errorf("first record %+v", out[0])
	}
	if lo, ok := e.LowestOpenPosition("raw/0"); !ok || lo != base.Unix() {
		t.Errorf("lowest open position %d %v, want the first line's %d", lo, ok, base.Unix())
	}
	// nothing resolves before the window's end
	if out = e.Expire(base.Add(9*time.Minute), out[:0]); len(out) != 0 {
		t.Fatalf("resolved early: %+v", out)
	}
	out = e.Expire(base.Add(10*time.Minute), out[:0])
	if len(out) != 1 || out[0].Count != 60 || out[0].Version != 60<<1|1 || !out[0].ResolvedAt.Equal(base.Add(10*time.Minute)) ||
		!out[0].LastSeen.Equal(base.Add(590*time.Second)) {
		t.Fatalf("resolved record %+v", out)
	}
	if _, ok := e.LowestOpenPosition("raw/0"); ok {
		t.Error("a resolved window still holds the commit back")
	}
	// the next window is a new alert (a new row), a late line of the closed one is not
	_, out = e.Event(smtpfOOM(base.Add(5*time.Minute), "mx1"), out[:0])
	if len(out) != 0 || e.Stats().Late != 1 {
		t.Fatalf("late line: %+v, late %d", out, e.Stats().Late)
	}
	_, out = e.Event(smtpfOOM(base.Add(11*time.Minute), "mx1"), out)
	if len(out) != 1 || out[0].AlertID == ID("smtpf_out_of_memory", "mx1", base) || out[0].AlertID != ID("smtpf_out_of_memory", "mx1", base.Add(10*time.Minute)) {
		t.Fatalf("next window: %+v", out)
	}
	// a line of a later window resolves the earlier one at once
	_, out = e.Event(smtpfOOM(base.Add(25*time.Minute), "mx1"), out[:0])
	if len(out) != 2 || out[0].Open() || out[0].Count != 1 || !out[1].Open() {
		t.Fatalf("rollover: %+v", out)
	}
	// other hosts are separate alerts
	_, out = e.Event(smtpfOOM(base.Add(25*time.Minute), "mx2"), out[:0])
	if len(out) != 1 || out[0].Host != "mx2" {
		t.Fatalf("second host: %+v", out)
	}
}

// A replay (after a crash, or by a new owner after a rebalance) from the committed offset
// re-emits byte-identical records, so the ReplacingMergeTree collapses them.
func TestReplayIsDeterministic(t *testing.T) {
	base := time.Date(2026, 3, 9, 12, 3, 0, 0, time.UTC)
	var evs []*record.Event
	for i := 0; i < 40; i++ {
		host := []string{"mx1", "mx2", "mx3"}[i%3]
		evs = append(evs, smtpfOOM(base.Add(time.Duration(i)*37*time.Second), host))
	}
	run := func(from int) []string {
		e, _ := New(Defaults(), NewCatalogue(nil))
		var out []Record
		for _, ev := range evs[from:] {
			_, out = e.Event(ev, out)
			out = e.Expire(ev.Time.Add(-time.Minute), out) // a lagging watermark, as the stream's
		}
		out = e.Expire(base.Add(time.Hour), out)
		var js []string
		for i := range out {
			js = append(js, string(out[i].AppendJSON(nil)))
		}
		return js
	}
	a, b := run(0), run(0)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d and %d records", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("record %d differs on replay:\n%s\n%s", i, a[i], b[i])
		}
	}
	// a replay from the middle of a window names the same alert with lower versions, so the
	// complete earlier versions win in ClickHouse
	full := map[string]uint64{}
	for _, j := range a {
		var r Record
		if err := json.Unmarshal([]byte(j), &r); err != nil {
			t.Fatal(err)
		}
		if r.Version > full[r.AlertID] {
			full[r.AlertID] = r.Version
		}
	}
	for _, j := range run(5) {
		var r Record
		_ = json.Unmarshal([]byte(j), &r)
		if v, ok := full[r.AlertID]; !ok || r.Version > v {
			t.Fatalf("replay from mid-window: %s version %d (full run %d, known %v)", r.AlertID, r.Version, v, ok)
		}
	}
}

func authFailed(host, ip string, end time.Time, off int64) *record.Session {
	return &record.Session{SessionID: "s" + ip, Host: host, Product: "mailenable", StartTime: end.Add(-time.Second),
		EndTime: end, ClientIP: ip, Outcome: record.AuthFailed, SMTPReply: "535 Invalid Username or Password",
		FirstPos: record.Position{Source: "raw/1", Offset: off}}
}

func TestAuthFailureBurst(t *testing.T) {
	cfg := Defaults()
	cfg.AuthBurstCount, cfg.AuthBurstWindow, cfg.UpdateInterval = 5, 5*time.Minute, time.Minute
	e, _ := New(cfg, NewCatalogue(nil))
	base := time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)
	var out []Record
	for i := 0; i < 4; i++ {
		out = e.Session(authFailed("me1", "203.0.113.9", base.Add(time.Duration(i)*time.Second), int64(10+i)), out)
	}
	ok := &record.Session{Host: "me1", Outcome: record.Allowed, EndTime: base}
	out = e.Session(ok, out)
	if len(out) != 0 {
		t.Fatalf("below the threshold: %+v", out)
	}
	if lo, ok := e.LowestOpenPosition("raw/1"); !ok || lo != 10 {
		t.Fatalf("a pending burst must hold the commit at its first session: %d %v", lo, ok)
	}
	out = e.Session(authFailed("me1", "203.0.113.9", base.Add(10*time.Second), 20), out)
	if len(out) != 1 || out[0].Rule != "auth_failure_burst" || out[0].Count != 5 || out[0].Threshold != 5 || out[0].Version != 10 || !out[0].FiredAt.Equal(base) {
		t.Fatalf("burst: %+v", out)
	}
	// resolution waits for the session delay after the window
	if out = e.Expire(base.Add(5*time.Minute), out[:0]); len(out) != 0 {
		t.Fatalf("resolved before the session delay: %+v", out)
	}
	out = e.Expire(base.Add(5*time.Minute+cfg.SessionDelay), out[:0])
	if len(out) != 1 || out[0].Open() || out[0].Count != 5 {
		t.Fatalf("resolved: %+v", out)
	}
	// a quiet host's pending window disappears without a record
	out = e.Session(authFailed("me2", "203.0.113.10", base, 30), out[:0])
	out = e.Expire(base.Add(time.Hour), out)
	if len(out) != 0 || e.Open() != 0 {
		t.Fatalf("pending window: %+v, open %d", out, e.Open())
	}
}

func TestConfigValidateEveryProblem(t *testing.T) {
	c := Config{Window: 0, UpdateInterval: -1, AuthBurstCount: 0, AuthBurstWindow: 0, SessionDelay: -1}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"window 0s", "update interval", "auth burst count", "auth burst window", "session delay"} {
		if !contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestClipKeepsUTF8(t *testing.T) {
	s := string(make([]byte, MaxExample-1)) + "é"
	if c := clip(s); len(c) != MaxExample-1 {
		t.Errorf("clip cut inside a rune: %d", len(c))
	}
}

// Revocation or a crash mid-stream: the partition's next owner starts a fresh engine at the
// offset the old one may have committed: before the first line of any open window
// (LowestOpenPosition), before the window of any record Kafka has not acknowledged yet (Hold,
// the offset the stream attributes the record to) and at most one past the last line. Every
// unacknowledged record must be re-emitted byte for byte; anything else the replay emits must
// be identical to the full run or lose to it (a lower version of the same alert).
func TestRevocationReplayFromCommittedOffset(t *testing.T) {
	base := time.Date(2026, 3, 9, 12, 3, 0, 0, time.UTC)
	var evs []*record.Event
	for i := 0; i < 120; i++ {
		ev := smtpfOOM(base.Add(time.Duration(i)*23*time.Second), []string{"mx1", "mx2", "mx3", "mx4"}[i%4])
		ev.Pos.Offset = int64(i)
		evs = append(evs, ev)
	}
	type emitted struct {
		after int // index of the event whose step emitted it
		rec   Record
		json  string
	}
	run := func(from int) (out []emitted, lowest []int64) {
		e, _ := New(Defaults(), NewCatalogue(nil))
		var recs []Record
		for i := from; i < len(evs); i++ {
			recs = recs[:0]
			_, recs = e.Event(evs[i], recs)
			recs = e.Expire(evs[i].Time.Add(-time.Minute), recs)
			for j := range recs {
				out = append(out, emitted{i, recs[j], string(recs[j].AppendJSON(nil))})
			}
			lo, ok := e.LowestOpenPosition("raw/0")
			if !ok {
				lo = int64(i + 1)
			}
			lowest = append(lowest, lo)
		}
		return out, lowest
	}
	full, lowest := run(0)
	best := map[string]uint64{}
	fullJSON := map[string]bool{}
	for _, r := range full {
		best[r.rec.AlertID] = max(best[r.rec.AlertID], r.rec.Version)
		fullJSON[r.json] = true
	}
	for _, cut := range []int{7, 21, 30, 31, 64, 100} {
		for _, unackedFrom := range []int{cut, cut - 3, cut - 10} {
			commit := min(lowest[cut], int64(cut+1))
			var unacked []emitted
			for _, r := range full {
				if r.after >= unackedFrom && r.after <= cut {
					unacked = append(unacked, r)
					if r.rec.Hold < 0 {
						t.Fatalf("record without a hold: %+v", r.rec)
					}
					commit = min(commit, r.rec.Hold)
				}
			}
			replay, _ := run(int(commit))
			got := map[string]bool{}
			for _, r := range replay {
				got[r.json] = true
				if !fullJSON[r.json] && r.rec.Version >= best[r.rec.AlertID] {
					t.Fatalf("cut %d commit %d: replay emitted %s, neither in the full run nor below its version %d", cut, commit, r.json, best[r.rec.AlertID])
				}
			}
			for _, r := range unacked {
				if !got[r.json] {
					t.Fatalf("cut %d (unacked from %d, commit %d): unacknowledged record not re-emitted: %s", cut, unackedFrom, commit, r.json)
				}
			}
			// and the records after the cut come out exactly as in the full run
			var want, have []string
			for _, r := range full {
				if r.after > cut {
					want = append(want, r.json)
				}
			}
			for _, r := range replay {
				if r.after > cut {
					have = append(have, r.json)
				}
			}
			if strings.Join(want, "\n") != strings.Join(have, "\n") {
				t.Fatalf("cut %d: records after the cut differ:\n%v\n%v", cut, want, have)
			}
		}
	}
}

// TestNormaliseEvent: the notable events the stream writes to the events topic carry the
// normalised severity (the product's word stays in raw_severity), and the engine classifies a
// normalised event exactly as the original one (the stream normalises before the engine).
func TestNormaliseEvent(t *testing.T) {
	cfg := Defaults()
	cfg.Trusted = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	pp := newPipe(t, cfg)
	lines := []struct{ host, line, sev, raw string }{
		{"me1", "03/09/26 12:43:51 ME-I0110: Relay Granted: Server is configured to allow anyone to relay.", "critical", "I"},
		{"me1", "03/09/26 12:43:52 ME-I0107: Relay Granted: Sender IP (203.0.113.9) is within an authorized IP range.", "critical", "I"},
		{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #207 message k4G9Bh285856336700AB is INFECTED with Eicar-Test-Signature", "notice", "ERR"},
		{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: #538 out of memory cache.c(120)", "critical", "ERR"},
		{"mx1", "Mar  9 12:43:51 mx1 smtpf[28585]: #646 spamd connect error \"127.0.0.1:783\": Connection refused (111)", "error", "ERR"},
		{"iso1", "2026-03-09 12:43:52.000 fatal MTA_SMTP Fatal 13 smtpserver[4711]: Cannot open configuration", "critical", "fatal"},
	}
	for _, l := range lines {
		var ev event.Event
		src := event.Source{Host: l.host, File: "raw/0"}
		pp.p.Parse(&ev, []byte(l.line), &src)
		pp.asm.Add(&ev)
		ns := pp.asm.NotableEvents(nil)
		if len(ns) != 1 {
			t.Fatalf("%q: %d notable events", l.line, len(ns))
		}
		n := ns[0]
		before := pp.cat.Classify(n.Product, n.Code, SeverityByName(n.Severity), n.ClientIP, n.Raw)
		pp.cat.NormaliseEvent(&n)
		if n.Severity != l.sev || n.RawSeverity != l.raw {
			t.Errorf("%q: severity %s (raw %s), want %s (raw %s)", l.line, n.Severity, n.RawSeverity, l.sev, l.raw)
		}
		if after := pp.cat.Classify(n.Product, n.Code, SeverityByName(n.Severity), n.ClientIP, n.Raw); after != before {
			t.Errorf("%q: classified %+v before normalising, %+v after", l.line, before, after)
		}
	}
}
