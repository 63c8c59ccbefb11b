package gen

import (
	"strconv"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// Isode M-Switch event log. No public real line exists (FORMATS.md §4.2), so these lines are
// SYNTHETIC, in the default header layout documented in doc.go:
//
//	2021-03-09 12:43:51.123 info MTA_SMTP Connection 102 smtpserver[4321]: conn=17 New connection from [192.0.2.12]:51234
//	2021-03-09 12:43:51.301 pdu MTA_SMTP ReadPDU 31 smtpserver[4321]: conn=17 C: MAIL FROM:<a@b.example>
//	2021-03-09 12:43:51.302 pdu MTA_SMTP WritePDU 30 smtpserver[4321]: conn=17 S: 250 2.1.0 OK
//	2021-03-09 12:43:55.877 notice MTA_SMTP Close 212 smtpserver[4321]: conn=17 Closing SMTP connection
//
// This is the parser's documented default header (enrich/parse/patterns/isode.grok).
//
// The session key is the conn=<n> token that starts the text (configurable on the parser
// side). Event names, ids and severities are those of seed 000 plus Close 212 (R19).
// Verdict events (DNSBLfailed, rDNSfailed, SPFfail, BufferTooBig, Timeout) are followed by the
// reply the server wrote; labels follow FORMATS.md §4.3 and, for a 5xx to RCPT with enhanced
// status 5.1.1, DENIED_UNKNOWN_RECIPIENT.

type isodeModel struct {
	pid  int
	conn int
	clk  clock
}

func newIsodeModel(h *host) *isodeModel {
	return &isodeModel{pid: 2000 + h.rng.IntN(30000), conn: h.rng.IntN(1000)}
}

func (m *isodeModel) dialects() []string { return []string{"isode"} }

const (
	isAllowed = iota
	isPartial
	isRBL
	isRDNS
	isSPF
	isProtocol
	isTimeout
	isTempfail
	isUnknown
)

var isWeights = weighted{30, 5, 20, 10, 8, 3, 5, 3, 10}

func (m *isodeModel) build(h *host, s *session, at int64) {
	r := h.rng
	s.res = resMilli
	kind := isWeights.pick(r)
	c := newClient(r, kind != isAllowed && kind != isPartial)
	m.conn++
	conn := "conn=" + strconv.Itoa(m.conn)
	s.t.SessionKey = conn
	s.t.ClientIP, s.t.HELO = c.ipStr, c.helo
	t := at
	m.ev(s, h, t, "info", "Connection", 102, conn, "New connection from [", c.ipStr, "]:", strconv.Itoa(1024+r.IntN(64000)))
	switch kind {
	case isRBL:
		t += 20 + r.Int64N(400)
		m.ev(s, h, t, "warning", "DNSBLfailed", 106, conn, "DNSBL ", rbls[int(c.ip)%len(rbls)], " lists [", c.ipStr, "]: 127.0.0.2")
	case isRDNS:
		t += 20 + r.Int64N(400)
		ptr := c.ptr
		if ptr == "" {
			ptr = "unknown.invalid"
		}
		m.ev(s, h, t, "warning", "rDNSfailed", 107, conn, "rDNS of [", c.ipStr, "] is ", ptr, ", which does not map back to the address")
	}
	t += 50 + r.Int64N(500)
	m.pdu(s, h, t, conn, false, "220 ", h.name, ".example ESMTP M-Switch ready")
	t += 50 + r.Int64N(1500)
	m.pdu(s, h, t, conn, true, "EHLO ", c.helo)
	m.pdu(s, h, t, conn, false, "250 ", h.name, ".example")
	if kind == isProtocol {
		t += 100 + r.Int64N(2000)
		m.ev(s, h, t, "error", "BufferTooBig", 103, conn, "Command line exceeds 2048 bytes, dropping connection")
		m.pdu(s, h, t, conn, false, "500 5.5.2 Line too long")
		m.close(s, h, t, conn)
		s.rollUp(record.DeniedProtocol, 500, "BufferTooBig")
		return
	}
	if kind == isTimeout {
		t += 300000
		m.ev(s, h, t, "info", "Timeout", 105, conn, "No SMTP data or commands received for 300 seconds")
		m.pdu(s, h, t, conn, false, "421 4.4.2 Timeout, closing connection")
		m.close(s, h, t, conn)
		s.rollUp(record.Timeout, 421, "Timeout")
		return
	}
	t += 100 + r.Int64N(2000)
	s.t.MailFrom = c.sender
	m.pdu(s, h, t, conn, true, "MAIL FROM:<", c.sender, ">")
	dom := domainOf(c.sender)
	switch kind {
	case isSPF:
		m.ev(s, h, t, "error", "SPFfail", 108, conn, "SPF lookup for ", dom, " gave fail for [", c.ipStr, "]")
		m.pdu(s, h, t, conn, false, "550 5.7.23 SPF check failed for ", dom)
		t += 50 + r.Int64N(500)
		m.pdu(s, h, t, conn, true, "QUIT")
		m.close(s, h, t, conn)
		s.rollUp(record.DeniedSPF, 550, "SPFfail")
		return
	case isTempfail:
		m.ev(s, h, t, "error", "SPFtemperror", 113, conn, "Could not get SPF information for ", dom)
		m.pdu(s, h, t, conn, false, "451 4.4.3 Temporary SPF lookup failure for ", dom)
		t += 50 + r.Int64N(500)
		m.close(s, h, t, conn)
		s.rollUp(record.TempFail, 451, "SPFtemperror")
		return
	case isAllowed, isPartial:
		m.ev(s, h, t, "info", "SPFpass", 111, conn, "SPF lookup for ", dom, " gave pass for [", c.ipStr, "]")
	}
	m.pdu(s, h, t, conn, false, "250 2.1.0 OK")
	n := 1 + weighted{60, 25, 10, 5}.pick(r)
	if kind == isPartial && n < 2 {
		n = 2
	}
	accepted := 0
	reason := ""
	for i := 0; i < n; i++ {
		t += 100 + r.Int64N(1500)
		addr := h.local()
		reply, label, code := "250 2.1.5 OK", record.Allowed, 250
		switch {
		case kind == isRBL:
			reply, label, code, reason = "554 5.7.1 Client host ["+c.ipStr+"] blocked using "+rbls[int(c.ip)%len(rbls)], record.DeniedRBL, 554, "DNSBLfailed"
		case kind == isRDNS:
			reply, label, code, reason = "550 5.7.25 Reverse DNS check failed for ["+c.ipStr+"]", record.DeniedRDNS, 550, "rDNSfailed"
		case kind == isUnknown || kind == isPartial && i == n-1:
			addr = h.unknownLocal()
			reply, label, code, reason = "550 5.1.1 <"+addr+">: unknown user", record.DeniedUnknownRecipient, 550, "550 5.1.1"
		default:
			accepted++
		}
		m.pdu(s, h, t, conn, true, "RCPT TO:<", addr, ">")
		m.pdu(s, h, t, conn, false, reply)
		s.rcpt(addr, label, code)
	}
	if accepted > 0 {
		t += 100 + r.Int64N(1000)
		m.pdu(s, h, t, conn, true, "DATA")
		m.pdu(s, h, t, conn, false, "354 Enter message, ending with \".\" on a line by itself")
		t += 500 + r.Int64N(8000)
		m.pdu(s, h, t, conn, false, "250 2.0.0 Message accepted for delivery")
	}
	t += 50 + r.Int64N(500)
	m.pdu(s, h, t, conn, true, "QUIT")
	m.pdu(s, h, t, conn, false, "221 2.0.0 Bye")
	m.close(s, h, t, conn)
	s.rollUp(record.OutcomeNone, 0, reason)
}

func (m *isodeModel) close(s *session, h *host, t int64, conn string) {
	m.ev(s, h, t, "notice", "Close", 212, conn, "Closing SMTP connection")
}

func (m *isodeModel) pdu(s *session, h *host, t int64, conn string, read bool, text ...string) {
	if read {
		m.emit(s, t, "pdu", "ReadPDU", 31, conn, "C: ", text)
	} else {
		m.emit(s, t, "pdu", "WritePDU", 30, conn, "S: ", text)
	}
}

// ev appends "YYYY-MM-DD HH:MM:SS.mmm <severity> MTA_SMTP <Name> <ID> smtpserver[<pid>]: <conn> <text>".
func (m *isodeModel) ev(s *session, h *host, t int64, sev, name string, id int, conn string, text ...string) {
	m.emit(s, t, sev, name, id, conn, "", text)
}

func (m *isodeModel) emit(s *session, t int64, sev, name string, id int, conn, prefix string, text []string) {
	st := s.mark()
	m.clk.set(t)
	s.buf = appendISO(s.buf, &m.clk)
	s.buf = append(s.buf, '.')
	s.buf = appendPad(s.buf, m.clk.ms, 3)
	s.buf = append(s.buf, ' ')
	s.buf = append(s.buf, sev...)
	s.buf = append(s.buf, " MTA_SMTP "...)
	s.buf = append(s.buf, name...)
	s.buf = append(s.buf, ' ')
	s.buf = appendInt(s.buf, id)
	s.buf = append(s.buf, " smtpserver["...)
	s.buf = appendInt(s.buf, m.pid)
	s.buf = append(s.buf, "]: "...)
	s.buf = append(s.buf, conn...)
	s.buf = append(s.buf, ' ')
	s.buf = append(s.buf, prefix...)
	for _, x := range text {
		s.buf = append(s.buf, x...)
	}
	s.push(t, 0, st)
}
