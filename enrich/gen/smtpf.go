package gen

import (
	"strconv"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// smtpf 2.1 numbered syslog lines (FORMATS.md §3, seed 001):
//
//	Mar  9 12:43:51 gw01 smtpf[28585]: tC8Chp285850471100 #637 start mail.partner.example [192.0.2.12] f="" th=12 cn=3 cs=4711
//
// The session key is the 18-character SID: time62 of the
// session start, the 5-digit pid, a 5-digit session counter and "00". Replies in x="…" end
// with the reply number and the SID in parentheses, as 2.1/2.2 print them. Refusals of
// connection-level checks are logged on each recipient (#718), which is where smtpf reports
// them when it delays checks to RCPT; a DATA-time refusal (#720) applies to every recipient
// that had been accepted.

type smtpfModel struct {
	pid     int
	counter int
	clk     clock
	sid     []byte
}

func newSmtpfModel(h *host) *smtpfModel {
	return &smtpfModel{pid: 1000 + h.rng.IntN(60000), counter: h.rng.IntN(90000)}
}

func (m *smtpfModel) dialects() []string { return []string{"smtpf"} }

// smtpf scenarios.
const (
	sfAllowed = iota
	sfPartial
	sfRBL
	sfRDNS
	sfGrey
	sfUnknown
	sfRelay
	sfSender
	sfTempfail
	sfVirus
	sfSpam
	sfBlack
	sfDisconnect
)

var sfWeights = weighted{25, 5, 16, 9, 8, 8, 3, 4, 2, 2, 5, 3, 10}

func (m *smtpfModel) build(h *host, s *session, at int64) {
	r := h.rng
	kind := sfWeights.pick(r)
	c := newClient(r, kind != sfAllowed && kind != sfPartial)
	if kind == sfRDNS {
		c.ptr = ""
	}
	m.counter = (m.counter + 1) % 100000
	m.clk.set(at)
	m.sid = appendTime62(m.sid[:0], &m.clk)
	m.sid = appendPad(m.sid, m.pid, 5)
	m.sid = appendPad(m.sid, m.counter, 5)
	m.sid = append(m.sid, '0', '0')
	sid := string(m.sid)
	s.t.SessionKey = sid
	s.t.ClientIP, s.t.HELO = c.ipStr, c.helo
	t := at
	flags := ""
	switch kind {
	case sfRDNS:
		flags = "no_ptr"
	case sfBlack:
		flags = "black"
	}
	m.line(s, h, t, sid, 637, "start ", c.ptr, " [", c.ipStr, `] f="`, flags, `" th=`, strconv.Itoa(4+r.IntN(40)), " cn=", strconv.Itoa(1+r.IntN(30)), " cs=", strconv.Itoa(m.counter))
	bytes := 0
	endFlags := flags
	if kind == sfDisconnect {
		t += 500 + r.Int64N(30000)
		m.line(s, h, t, sid, 639, "client ", c.ptr, " [", c.ipStr, "] I/O error: Connection reset by peer (104)")
		m.end(s, h, t, sid, c, joinFlags(endFlags, "io_error"), 0, at)
		s.rollUp(record.Disconnected, 0, "#639")
		return
	}
	if kind == sfRBL {
		t += 10 + r.Int64N(300)
		m.line(s, h, t, sid, 523, "dns-bl found ", c.ipStr, " ", rbls[int(c.ip)%len(rbls)])
		endFlags = joinFlags(endFlags, "black")
	}
	t += 300 + r.Int64N(3000)
	s.t.MailFrom = c.sender
	if kind == sfSender || kind == sfTempfail {
		x := "553 5.1.8 sender <" + c.sender + "> from " + domainOf(c.sender) + " has no MX record #434 (" + sid + ")"
		label, code, reason := record.DeniedSender, 553, "#434"
		if kind == sfTempfail {
			x = "451 4.4.3 sender <" + c.sender + "> MX lookup error #436 (" + sid + ")"
			label, code, reason = record.TempFail, 451, "#436"
		}
		m.line(s, h, t, sid, 717, "sender <", c.sender, `> f="" spf-mail=None spf-helo=None x="`, x, `"`)
		t += 100 + r.Int64N(2000)
		m.end(s, h, t, sid, c, joinFlags(endFlags, "quit"), 0, at)
		s.rollUp(label, code, reason)
		return
	}
	m.line(s, h, t, sid, 717, "sender <", c.sender, `> f="" spf-mail=`, pick(r, []string{"Pass", "None", "Neutral", "SoftFail"}), " spf-helo=None x=\"250 2.1.0 sender <", c.sender, "> OK (", sid, ")\"")
	n := 1 + weighted{60, 25, 10, 5}.pick(r)
	if kind == sfPartial && n < 2 {
		n = 2
	}
	accepted := 0
	reason := ""
	for i := 0; i < n; i++ {
		t += 100 + r.Int64N(1500)
		addr := h.local()
		var x string
		label, code := record.Allowed, 250
		switch {
		case kind == sfRBL:
			x, label, code, reason = "550 5.7.0 "+c.ptr+" ["+c.ipStr+"] black listed by "+rbls[int(c.ip)%len(rbls)], record.DeniedRBL, 550, "#525"
			x += " #525"
		case kind == sfRDNS:
			x, label, code, reason = "554 5.7.1 reject ["+c.ipStr+"] missing PTR record #416", record.DeniedRDNS, 554, "#416"
		case kind == sfGrey:
			if i == 0 {
				m.line(s, h, t, sid, 387, "grey listed {", c.ipStr, ",", c.sender, ",", addr, "} for 600 seconds")
			}
			x, label, code, reason = "451 4.7.0 try again later #552", record.DeniedGreylist, 451, "#552"
		case kind == sfUnknown || kind == sfPartial && i == n-1:
			addr = h.unknownLocal()
			x, label, code, reason = "550 5.1.1 recipient <"+addr+"> unknown #292", record.DeniedUnknownRecipient, 550, "#292"
		case kind == sfRelay:
			addr = h.remote()
			x, label, code, reason = "550 5.7.1 recipient <"+addr+"> relaying denied #288", record.DeniedRelay, 550, "#288"
		case kind == sfBlack:
			x, label, code, reason = "550 5.7.1 host "+c.ptr+" ["+c.ipStr+"] black listed #854", record.DeniedBlacklist, 550, "#854"
		default:
			x = "250 2.1.5 recipient <" + addr + "> accepted #290"
			accepted++
		}
		rf := ""
		if label != record.Allowed {
			rf = "failed"
		}
		m.line(s, h, t, sid, 718, "recipient <", addr, `> f="`, rf, `" x="`, x, " (", sid, `)"`)
		s.rcpt(addr, label, code)
	}
	if accepted > 0 {
		t += 200 + r.Int64N(2000)
		m.line(s, h, t, sid, 719, `data x="354 enter mail, end with CRLF.CRLF (`, sid, `)"`)
		t += 500 + r.Int64N(8000)
		m.clk.set(t)
		mid := string(appendPad(appendTime62(nil, &m.clk), m.pid, 5)) + string(appendPad(nil, m.counter, 5)) + string([]byte{base62[r.IntN(62)], base62[r.IntN(62)]})
		bytes = 900 + r.IntN(60000)
		msgID := "<" + string(appendHex(nil, r.Uint64(), 16)) + "@" + domainOf(c.sender) + ">"
		x := "250 2.0.0 message " + mid + " accepted #554"
		mflags := "ok"
		label, code := record.Allowed, 250
		switch kind {
		case sfVirus:
			v := pick(r, viruses)
			m.line(s, h, t, sid, 207, "message ", mid, " is INFECTED with ", v)
			x, mflags, label, code, reason = "550 5.7.1 message "+mid+" is INFECTED with "+v+" #208", "infected", record.DeniedVirus, 550, "#208"
		case sfSpam:
			score := strconv.Itoa(6+r.IntN(20)) + "." + strconv.Itoa(r.IntN(10))
			m.line(s, h, t, sid, 692, "spamd ", c.ptr, " [", c.ipStr, "] X-Spam-Status: Yes, score=", score, " required=5.0")
			x, mflags, label, code, reason = "550 5.7.1 message "+mid+" rejected, spam score "+score+" #666", "policy", record.DeniedSpamScore, 550, "#666"
		}
		m.line(s, h, t, sid, 720, "message <", mid, `> f="`, mflags, `" b=`, strconv.Itoa(bytes), " m=", msgID, ` x="`, x, " (", sid, `)"`)
		if label != record.Allowed {
			// The DATA refusal applies to every recipient accepted at RCPT.
			for i := range s.t.Recipients {
				if s.t.Recipients[i].Outcome == record.Allowed {
					s.t.Recipients[i] = TruthRecipient{Address: s.t.Recipients[i].Address, Outcome: label, SMTPCode: code, Permanent: code >= 500}
				}
			}
		}
	}
	t += 50 + r.Int64N(1000)
	m.end(s, h, t, sid, c, joinFlags(endFlags, "quit"), bytes, at)
	s.rollUp(record.OutcomeNone, 0, reason)
	if s.t.Outcome == record.Allowed {
		s.t.Reason = "#554"
	}
}

// line appends one numbered smtpf line; the text comes in parts so no string is built.
func (m *smtpfModel) line(s *session, h *host, t int64, sid string, num int, text ...string) {
	st := s.mark()
	s.buf = h.appendSyslog(s.buf, &m.clk, t, "smtpf", m.pid)
	s.buf = append(s.buf, sid...)
	s.buf = append(s.buf, ' ', '#')
	s.buf = appendPad(s.buf, num, 3)
	s.buf = append(s.buf, ' ')
	for _, x := range text {
		s.buf = append(s.buf, x...)
	}
	s.push(t, 0, st)
}

// end writes #721 in the 2.1.2 layout (no trailing p0f field).
func (m *smtpfModel) end(s *session, h *host, t int64, sid string, c client, flags string, bytes int, start int64) {
	m.line(s, h, t, sid, 721, "end i=", c.ipStr, ` p="`, c.ptr, `" f="`, flags, `" h="`, c.helo, `" b=`, strconv.Itoa(bytes), " t=", strconv.FormatInt((t-start)/1000, 10))
}

func joinFlags(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

func domainOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return addr[i+1:]
		}
	}
	return addr
}
