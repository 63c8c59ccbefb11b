package session

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/record"
)

// feeder parses lines into one assembler, like a stream of one partition.
type feeder struct {
	t   *testing.T
	p   *parse.Parser
	a   *Assembler
	src event.Source
	ev  event.Event
	off int64
}

func newFeeder(t *testing.T, cfg Config, host string) *feeder {
	t.Helper()
	p, err := parse.New(parse.Options{DefaultYear: 2021})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &feeder{t: t, p: p, a: a, src: event.Source{Host: host, File: "part-0"}}
}

// add feeds lines and returns the sessions they closed.
func (f *feeder) add(lines ...string) []record.Session {
	var closed []record.Session
	for _, l := range lines {
		f.src.Line++
		f.src.Offset = f.off
		f.off += int64(len(l)) + 1
		f.p.Parse(&f.ev, []byte(l), &f.src)
		closed = append(closed, f.a.Add(&f.ev)...)
	}
	return closed
}

func cfgWith(mod func(*Config)) Config {
	c := Defaults()
	mod(&c)
	return c
}

const (
	sfStartA = `Mar  9 12:00:00 gw smtpf[100]: x2801T001000000100 #637 start mx.a.example [192.0.2.1] f="" th=1 cn=1 cs=1`
	sfStartB = `Mar  9 12:00:01 gw smtpf[100]: x2801T001000000200 #637 start mx.b.example [192.0.2.2] f="" th=1 cn=1 cs=2`
	sfRcptA  = `Mar  9 12:00:02 gw smtpf[100]: x2801T001000000100 #718 recipient <a@example.com> f="" x="250 2.1.5 recipient <a@example.com> accepted #290 (x2801T001000000100)"`
	sfRcptB  = `Mar  9 12:00:02 gw smtpf[100]: x2801T001000000200 #718 recipient <b@example.com> f="failed" x="550 5.1.1 recipient <b@example.com> unknown #292 (x2801T001000000200)"`
	sfEndB   = `Mar  9 12:00:03 gw smtpf[100]: x2801T001000000200 #721 end i=192.0.2.2 p="mx.b.example" f="quit" h="mx.b.example" b=0 t=2`
	sfEndA   = `Mar  9 12:00:04 gw smtpf[100]: x2801T001000000100 #721 end i=192.0.2.1 p="mx.a.example" f="quit" h="mx.a.example" b=0 t=4`
)

func TestInterleavedSessionsCloseOnTheirEnd(t *testing.T) {
	f := newFeeder(t, cfgWith(func(c *Config) { c.Lateness = 0 }), "")
	if got := f.add(sfStartA, sfStartB, sfRcptA, sfRcptB); len(got) != 0 {
		t.Fatalf("closed before any end: %+v", got)
	}
	got := f.add(sfEndB)
	if len(got) != 1 || got[0].SessionKey != "x2801T001000000200" || got[0].Outcome != record.DeniedUnknownRecipient ||
		got[0].ClosedBy != record.ClosedByEnd || !got[0].Permanent || got[0].SMTPCode != 550 || got[0].HELO != "mx.b.example" {
		t.Fatalf("end of B: %+v", got)
	}
	got = f.add(sfEndA)
	if len(got) != 1 || got[0].Outcome != record.Allowed || got[0].EventCount != 3 || got[0].ClientIP != "192.0.2.1" {
		t.Fatalf("end of A: %+v", got)
	}
	if f.a.Open() != 0 {
		t.Fatalf("%d sessions still open", f.a.Open())
	}
}

func TestLatenessKeepsAnEndedSessionForLateLines(t *testing.T) {
	// IMail stamps minutes: the antispam verdict of a connection can arrive after the line
	// that ends it. Within the lateness it still joins the session.
	f := newFeeder(t, cfgWith(func(c *Config) { c.Lateness = 2 * time.Minute }), "imail1")
	got := f.add(
		`03:09 12:00 SMTPD(00000001) [192.168.1.1] connect 198.51.100.7 port 4000`,
		`03:09 12:00 SMTPD(00000001) [198.51.100.7] MAIL FROM:<x@spam.example>`,
		`03:09 12:00 SMTPD(00000001) [198.51.100.7] RCPT To:<u@example.com>`,
		`03:09 12:00 SMTPD(00000001) message failed 3 of 5 checks, deleting`,
		// late: the blacklist hit logged by the antispam log for the same connection
		`03:09 12:00 SMTPD(00000001) BLACKLIST:198.51.100.7 was found on list (Spamhaus:zen.spamhaus.org:zen.spamhaus.org)->127.0.0.2`,
		`03:09 12:01 SMTPD(00000002) [192.168.1.1] connect 198.51.100.8 port 4001`,
		`03:09 12:02 SMTPD(00000002) [198.51.100.8] EHLO b.example`,
	)
	if len(got) != 0 {
		t.Fatalf("closed within the lateness: %+v", got)
	}
	got = f.add(`03:09 12:03 SMTPD(00000002) [198.51.100.8] QUIT`)
	if len(got) != 1 {
		t.Fatalf("want session 1 closed after the lateness, got %+v", got)
	}
	r := got[0]
	// connection-level verdict (RBL) beats the content-level score, per the roll-up order
	if r.SessionKey != "00000001" || r.Outcome != record.DeniedRBL || r.EventCount != 5 || r.ClosedBy != record.ClosedByEnd ||
		len(r.Recipients) != 1 || r.Recipients[0].Outcome != record.DeniedRBL {
		t.Fatalf("%+v", r)
	}
}

func TestSpamdykePidReuse(t *testing.T) {
	f := newFeeder(t, Defaults(), "")
	line := func(ts, code, from, to, ip string) string {
		return "Mar  9 " + ts + " mx spamdyke[4242]: " + code + " from: " + from + " to: " + to + " origin_ip: " + ip +
			" origin_rdns: (unknown) auth: (unknown) encryption: (none) reason: (empty)"
	}
	got := f.add(
		line("12:00:00", "DENIED_RBL_MATCH", "a@spam.example", "u@example.com", "203.0.113.1"),
		line("12:00:01", "DENIED_RBL_MATCH", "a@spam.example", "v@example.com", "203.0.113.1"),
		// the pid wrapped around: a new connection from another client
		line("12:00:05", "DENIED_RDNS_MISSING", "b@other.example", "u@example.com", "203.0.113.99"),
	)
	if len(got) != 1 || got[0].Outcome != record.DeniedRBL || len(got[0].Recipients) != 2 || got[0].Flags[0] != "key_reused" {
		t.Fatalf("first connection: %+v", got)
	}
	// same client, but silent for longer than PidReuseGap: also a new connection
	got = f.add(line("12:10:00", "ALLOWED", "b@other.example", "u@example.com", "203.0.113.99"))
	if len(got) != 1 || got[0].Outcome != record.DeniedRDNS || got[0].SMTPCode != 421 || got[0].Permanent {
		t.Fatalf("second connection: %+v", got)
	}
	rest := f.a.Flush()
	if len(rest) != 1 || rest[0].Outcome != record.Allowed || rest[0].ClosedBy != record.ClosedByEOF {
		t.Fatalf("flush: %+v", rest)
	}
	if st := f.a.Stats(); st.KeyReused != 2 || st.Opened != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestExpireClosesIdleSessionsInEventTime(t *testing.T) {
	f := newFeeder(t, cfgWith(func(c *Config) { c.IdleTimeout = 5 * time.Minute; c.Lateness = time.Minute }), "")
	f.add(sfStartA, sfRcptA)
	at := time.Date(2021, 3, 9, 12, 0, 2, 0, time.UTC)
	if got := f.a.Expire(at.Add(5*time.Minute - time.Second)); len(got) != 0 {
		t.Fatalf("expired too early: %+v", got)
	}
	got := f.a.Expire(at.Add(5 * time.Minute))
	if len(got) != 1 || got[0].ClosedBy != record.ClosedByTimeout || got[0].Outcome != record.Allowed {
		t.Fatalf("%+v", got)
	}
	// an ended session waits for the lateness, then Expire closes it as ended
	f.add(sfStartB, sfRcptB, sfEndB)
	end := time.Date(2021, 3, 9, 12, 0, 3, 0, time.UTC)
	if got := f.a.Expire(end.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("closed within lateness: %+v", got)
	}
	if got := f.a.Expire(end.Add(time.Minute + time.Second)); len(got) != 1 || got[0].ClosedBy != record.ClosedByEnd {
		t.Fatalf("%+v", got)
	}
}

func TestEvictionClosesTheLeastRecentlyActive(t *testing.T) {
	f := newFeeder(t, cfgWith(func(c *Config) { c.MaxOpen = 2 }), "")
	f.add(sfStartA, sfStartB)
	f.add(sfRcptA) // A is now the most recently active
	got := f.add(`Mar  9 12:00:05 gw smtpf[100]: x2801T001000000300 #637 start mx.c.example [192.0.2.3] f="" th=1 cn=1 cs=3`)
	if len(got) != 1 || got[0].SessionKey != "x2801T001000000200" || got[0].ClosedBy != record.ClosedByEvicted {
		t.Fatalf("%+v", got)
	}
	if st := f.a.Stats(); st.Evicted != 1 || st.Closed[record.ClosedByEvicted] != 1 || f.a.Open() != 2 {
		t.Fatalf("stats %+v open %d", st, f.a.Open())
	}
}

func TestEvictKeepsTheMostRecentlyActive(t *testing.T) {
	f := newFeeder(t, Defaults(), "")
	f.add(sfStartA, sfStartB)
	f.add(sfRcptA) // B is now the least recently active
	if got := f.a.Evict(5); len(got) != 0 || f.a.Open() != 2 {
		t.Fatalf("evicted below the cap: %+v", got)
	}
	got := f.a.Evict(1)
	if len(got) != 1 || got[0].SessionKey != "x2801T001000000200" || got[0].ClosedBy != record.ClosedByEvicted || f.a.Open() != 1 {
		t.Fatalf("%+v open %d", got, f.a.Open())
	}
	if got := f.a.Evict(-3); len(got) != 1 || got[0].SessionKey != "x2801T001000000100" || f.a.Open() != 0 {
		t.Fatalf("%+v open %d", got, f.a.Open())
	}
	if st := f.a.Stats(); st.Evicted != 2 || st.Closed[record.ClosedByEvicted] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLowestOpenPositionAndNotableEvents(t *testing.T) {
	f := newFeeder(t, Defaults(), "")
	f.add(sfStartA) // offset 0
	offB := f.off   // B starts here
	f.add(sfStartB, sfRcptA)
	if off, ok := f.a.LowestOpenPosition("part-0"); !ok || off != 0 {
		t.Fatalf("lowest %d %v", off, ok)
	}
	f.a.cfg.Lateness = 0
	f.add(`Mar  9 12:00:04 gw smtpf[100]: x2801T001000000100 #721 end i=192.0.2.1 p="mx.a.example" f="quit" h="mx.a.example" b=0 t=4`)
	if off, ok := f.a.LowestOpenPosition("part-0"); !ok || off != offB {
		t.Fatalf("lowest %d %v, want %d", off, ok, offB)
	}
	if _, ok := f.a.LowestOpenPosition("other"); ok {
		t.Fatal("a source with nothing open reports a position")
	}
	// a spamdyke ERROR line is notable and names its session
	f.add(`Mar  9 12:00:06 mx spamdyke[77]: ERROR(filter_rdns_missing()@filter.c:612): unable to resolve host: timeout`)
	evs := f.a.NotableEvents(nil)
	if len(evs) != 1 || evs[0].Severity != "error" || evs[0].Host != "mx" || evs[0].SessionID == "" || evs[0].Product != "spamdyke" {
		t.Fatalf("events %+v", evs)
	}
	if again := f.a.NotableEvents(nil); len(again) != 0 {
		t.Fatalf("events not drained: %+v", again)
	}
	rest := f.a.Flush()
	var sd *record.Session
	for i := range rest {
		if rest[i].Product == "spamdyke" {
			sd = &rest[i]
		}
	}
	if sd == nil || sd.SessionID != evs[0].SessionID || sd.MaxSeverity != "error" {
		t.Fatalf("spamdyke session %+v, event session %q", sd, evs[0].SessionID)
	}
}

func TestUnparsedAndSessionlessLinesAreCounted(t *testing.T) {
	f := newFeeder(t, Defaults(), "")
	f.add("~!garbage that no dialect reads", "", `Mar  9 12:00:00 gw smtpf[100]: #599 ready`)
	st := f.a.Stats()
	if st.Lines != 3 || st.Unparsed != 2 || st.Sessionless != 1 || st.Opened != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestSessionIDsAreDeterministic(t *testing.T) {
	run := func() []string {
		f := newFeeder(t, Defaults(), "")
		f.add(sfStartA, sfStartB, sfRcptA, sfRcptB, sfEndB, sfEndA)
		var ids []string
		for _, r := range f.a.Flush() {
			ids = append(ids, r.SessionID)
		}
		return ids
	}
	a, b := run(), run()
	if len(a) != 2 || strings.Join(a, ",") != strings.Join(b, ",") || a[0] == a[1] {
		t.Fatalf("%v vs %v", a, b)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := Config{IdleTimeout: -1, Lateness: -1, MaxOpen: 0, PidReuseGap: 0}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"idle_timeout", "lateness", "max_open", "pid_reuse_gap", "isode_key_prefix"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q not reported in %v", want, err)
		}
	}
	if _, err := New(c); err == nil {
		t.Fatal("New accepted an invalid config")
	}
}

func TestRollUpOrder(t *testing.T) {
	// connection-level refusals decide before recipient-level ones; ALLOWED wins with partial
	s := &sess{}
	for _, x := range []struct {
		o    record.Outcome
		code int
	}{{record.DeniedUnknownRecipient, 550}, {record.DeniedRBL, 554}, {record.DeniedGreylist, 451}} {
		s.rcpt([]byte("r@example.com"))
		s.label(s.cur, x.o, x.code, "", string(x.o))
	}
	r := s.rec
	rollUp(&r, s)
	if r.Outcome != record.DeniedRBL || r.SMTPCode != 554 || !r.Permanent || r.Reason != "DENIED_RBL" {
		t.Fatalf("%+v", r)
	}
	s.rcpt([]byte("ok@example.com"))
	s.label(s.cur, record.Allowed, 250, "250 ok", "ALLOWED")
	r = s.rec
	r.Flags = nil
	rollUp(&r, s)
	if r.Outcome != record.Allowed || r.Permanent || len(r.Flags) != 1 || r.Flags[0] != "partial" {
		t.Fatalf("%+v", r)
	}
}

func TestNotableCodes(t *testing.T) {
	f := newFeeder(t, cfgWith(func(c *Config) { c.NotableCodes = []string{"#523"} }), "")
	f.add(sfStartA, `Mar  9 12:00:00 gw smtpf[100]: x2801T001000000100 #523 dns-bl found 192.0.2.1 zen.spamhaus.org`, sfRcptA)
	evs := f.a.NotableEvents(nil)
	if len(evs) != 1 || evs[0].Code != "#523" || evs[0].ClientIP != "192.0.2.1" || evs[0].SessionID == "" {
		t.Fatalf("%+v", evs)
	}
}

func TestIMailAntispamLineBeforeConnect(t *testing.T) {
	// merged by minute, the antispam log's lines of a connection can precede its connect line
	f := newFeeder(t, Defaults(), "imail1")
	f.add(
		`03:09 12:00 SMTPD(00000007) BLACKLIST:198.51.100.9 was found on list (Spamhaus:zen.spamhaus.org:zen.spamhaus.org)->127.0.0.2`,
		`03:09 12:00 SMTPD(00000007) [192.168.1.1] connect 198.51.100.9 port 4000`,
		`03:09 12:00 SMTPD(00000007) [198.51.100.9] MAIL FROM:<x@spam.example>`,
		`03:09 12:00 SMTPD(00000007) [198.51.100.9] RCPT To:<u@example.com>`,
	)
	rs := f.a.Flush()
	if len(rs) != 1 || rs[0].Outcome != record.DeniedRBL || rs[0].ClientIP != "198.51.100.9" || rs[0].EventCount != 4 ||
		rs[0].Recipients[0].SMTPCode != 0 || rs[0].Permanent {
		t.Fatalf("%+v", rs)
	}
	if st := f.a.Stats(); st.KeyReused != 0 {
		t.Fatalf("connect after an antispam line counted as reuse: %+v", st)
	}
}

// TestCommitPointNeverInsideASession: a replay must start at the first line of every
// session it touches. Open sessions hold the point at their first line; a closed session
// whose lines straddle the point pulls it down to its own first line, transitively; spans
// below the committed offset are forgotten.
func TestCommitPointNeverInsideASession(t *testing.T) {
	endA := `Mar  9 12:00:04 gw smtpf[100]: x2801T001000000100 #721 end i=192.0.2.1 p="mx.a.example" f="quit" h="mx.a.example" b=0 t=4`
	endB := `Mar  9 12:00:06 gw smtpf[100]: x2801T001000000200 #721 end i=192.0.2.2 p="mx.b.example" f="quit" h="mx.b.example" b=0 t=4`
	startC := `Mar  9 12:00:05 gw smtpf[100]: x2801T001000000300 #637 start mx.c.example [192.0.2.3] f="" th=1 cn=1 cs=3`
	f := newFeeder(t, cfgWith(func(c *Config) { c.Lateness = 0 }), "")
	f.a.KeepClosedSpans()
	var off []int64 // offset of line i
	for _, l := range []string{sfStartA, sfStartB, sfRcptA, endA, startC} {
		off = append(off, f.off)
		f.add(l)
	}
	if f.a.Open() != 2 {
		t.Fatalf("%d open, want B and C", f.a.Open())
	}
	end := f.off
	// B (open since line 1) holds the point at 1, and A (closed, lines 0..3) straddles it
	if c, ok := f.a.CommitPoint("part-0", end); !ok || c != off[0] {
		t.Fatalf("commit point %d %v, want %d", c, ok, off[0])
	}
	off = append(off, f.off)
	f.add(endB) // line 5: B (lines 1..5) closes; C (open since 4) holds 4, B straddles 4
	if f.a.Open() != 1 {
		t.Fatalf("%d open, want C", f.a.Open())
	}
	if c, _ := f.a.CommitPoint("part-0", f.off); c != off[0] {
		t.Fatalf("commit point %d, want %d", c, off[0])
	}
	if c, ok := f.a.CommitPoint("other", 5); ok || c != 5 {
		t.Fatalf("another source is not constrained: %d %v", c, ok)
	}
	// once line 4 is committed A (0..3) is forgotten; B (1..5) still straddles 2
	f.a.ForgetSpansBelow("part-0", off[4])
	if c, _ := f.a.CommitPoint("part-0", off[2]); c != off[1] {
		t.Fatalf("after forgetting below line 4: %d, want B's first line %d", c, off[1])
	}
	if c, _ := f.a.CommitPoint("part-0", off[1]); c != off[1] {
		t.Fatalf("a point at a session's first line stays: %d", c)
	}
	// without KeepClosedSpans only open sessions count (the offline assembler), and
	// forgetting is a no-op
	g := newFeeder(t, cfgWith(func(c *Config) { c.Lateness = 0 }), "")
	g.add(sfStartA, sfStartB, sfRcptA, endA)
	g.a.ForgetSpansBelow("part-0", g.off)
	if c, _ := g.a.CommitPoint("part-0", g.off); c != off[1] {
		t.Fatalf("without spans: %d, want B's first line %d", c, off[1])
	}
}

// TestCommitPointMatchesFixpoint: the one-pass CommitPoint equals the naive fixpoint (lower c
// to the first line of any span straddling it until nothing changes) on random spans,
// including chains of overlapping sessions and spans of another source.
func TestCommitPointMatchesFixpoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		a, err := New(Defaults())
		if err != nil {
			t.Fatal(err)
		}
		a.KeepClosedSpans()
		var mine []span
		for i, n := 0, rng.IntN(30); i < n; i++ {
			low := rng.Int64N(200)
			sp := span{low: low, high: low + rng.Int64N(40)}
			src := "p"
			if rng.IntN(4) == 0 {
				src = "q"
			} else {
				mine = append(mine, sp)
			}
			a.spans[src] = append(a.spans[src], sp)
		}
		c0 := rng.Int64N(260)
		want, wantOK := c0, false
		for changed := true; changed; {
			changed = false
			for _, sp := range mine {
				if sp.low < want && sp.high >= want {
					want, wantOK, changed = sp.low, true, true
				}
			}
		}
		if got, ok := a.CommitPoint("p", c0); got != want || ok != wantOK {
			t.Fatalf("spans %v from %d: got %d %v, want %d %v", mine, c0, got, ok, want, wantOK)
		}
	}
}
