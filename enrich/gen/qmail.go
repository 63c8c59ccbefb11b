package gen

import (
	"strconv"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// qmail raw syslog: qmail-smtpd patched with chkuser (CHKUSER lines under qmail-smtpd[pid]),
// rblsmtpd and qmail-send through splogger (program "qmail", a unix timestamp with
// microseconds after the header), as in qmail-log(5) and fail2ban's qmail sample:
//
//	Mar  9 12:43:51 qm04 qmail-smtpd[15309]: CHKUSER accepted rcpt: from <a@b.example::> remote <helo:ptr:192.0.2.12> rcpt <r@example.com> : found existing recipient
//	Mar  9 12:43:51 qm04 qmail: 1615286631.431232 rblsmtpd: 203.0.113.66 pid 15310 zen.spamhaus.org: 451 http://www.spamhaus.org/query/ip/203.0.113.66
//	Mar  9 12:43:52 qm04 qmail: 1615286632.001021 new msg 4194361
//	Mar  9 12:43:52 qm04 qmail: 1615286632.001120 info msg 4194361: bytes 23533 from <a@b.example> qp 15311 uid 89
//	Mar  9 12:43:52 qm04 qmail: 1615286632.002010 starting delivery 114878: msg 4194361 to local example.com-r@example.com
//	Mar  9 12:43:52 qm04 qmail: 1615286632.093311 delivery 114878: success: did_0+0+1/
//	Mar  9 12:43:52 qm04 qmail: 1615286632.093400 end msg 4194361
//
// The session key is the qmail-smtpd (or rblsmtpd) pid; the accepted message joins it by
// time, sender and recipients (info msg ... from <sender>, starting delivery ... to R), and
// the qp of info msg is the qmail-queue child of that qmail-smtpd (pid+1..3).

// chkuser refusals: brief message, extended message, label, the reply chkuser sends.
type chkRefusal struct {
	brief, ext string
	label      record.Outcome
	reply      int
	sender     bool // a sender check: no recipient is reached
}

var (
	chkNoMailbox = chkRefusal{"rejected rcpt", "not existing recipient", record.DeniedUnknownRecipient, 511, false}
	chkRelay     = chkRefusal{"rejected relaying", "client not allowed to relay", record.DeniedRelay, 553, false}
	chkMaxRcpt   = chkRefusal{"rejected rcpt", "max number of recipients", record.DeniedRecipient, 571, false}
	chkDNSTemp   = chkRefusal{"rejected rcpt", "temporary DNS problem", record.TempFail, 451, false}
	chkSenderMX  = chkRefusal{"rejected sender", "invalid sender MX domain", record.DeniedSender, 553, true}
	chkMustAuth  = chkRefusal{"must auth", "sender not authenticated/authorized", record.DeniedAuthRequired, 530, true}
)

type qmailModel struct {
	pids    *pidPool
	msg     int
	delivNo int
	clk     clock
}

func newQmailModel(h *host) *qmailModel {
	return &qmailModel{pids: newPidPool(h.rng, 300, 32768, 20), msg: 100000 + h.rng.IntN(4000000), delivNo: 1000 + h.rng.IntN(100000)}
}

func (m *qmailModel) dialects() []string { return []string{"qmail"} }

func (m *qmailModel) build(h *host, s *session, at int64) {
	r := h.rng
	kind := weighted{30, 12, 8, 6, 3, 2, 2, 5, 3, 29}.pick(r)
	spam := kind < 9
	c := newClient(r, spam)
	pid := m.pids.alloc(r)
	s.release = func() { m.pids.free(pid) }
	s.t.SessionKey = strconv.Itoa(pid)
	s.t.ClientIP, s.t.HELO = c.ipStr, c.helo
	t := at
	if kind == 0 {
		// rblsmtpd answers for qmail-smtpd: one line, the client never reaches MAIL FROM.
		list := pick(r, rbls)
		st := s.mark()
		s.buf = m.splog(s.buf, h, t)
		s.buf = append(s.buf, "rblsmtpd: "...)
		s.buf = append(s.buf, c.ipStr...)
		s.buf = append(s.buf, " pid "...)
		s.buf = appendInt(s.buf, pid)
		s.buf = append(s.buf, ' ')
		s.buf = append(s.buf, list...)
		s.buf = append(s.buf, ": 451 http://www.spamhaus.org/query/ip/"...)
		s.buf = append(s.buf, c.ipStr...)
		s.push(t, 0, st)
		s.t.HELO = ""
		s.rollUp(record.DeniedRBL, 451, "rblsmtpd")
		return
	}
	s.t.MailFrom = c.sender
	var refusal chkRefusal
	switch kind {
	case 1, 8:
		refusal = chkNoMailbox
	case 2:
		refusal = chkRelay
	case 3:
		refusal = chkSenderMX
	case 4:
		refusal = chkMustAuth
	case 5:
		refusal = chkMaxRcpt
	case 6:
		refusal = chkDNSTemp
	}
	// Sender check.
	t += 200 + r.Int64N(2000)
	if refusal.sender {
		m.chk(s, h, t, pid, refusal.brief+":", c, "", refusal.ext)
		s.rollUp(refusal.label, refusal.reply, "CHKUSER "+refusal.brief)
		s.t.HELO = c.helo
		return
	}
	m.chk(s, h, t, pid, "accepted sender:", c, "", "sender accepted")
	n := 1 + weighted{60, 25, 10, 5}.pick(r)
	partial := kind == 7 || kind == 8 || kind == 5
	if partial && n < 2 {
		n = 2
	}
	if kind == 5 {
		n = 3 + r.IntN(3)
	}
	var accepted []string
	for i := 0; i < n; i++ {
		t += 100 + r.Int64N(1500)
		addr := h.local()
		refuse := false
		switch {
		case kind == 5:
			refuse = i >= 2
		case kind == 7:
			refuse = i == n-1
		case kind == 8:
			refuse = i < n-1
		case refusal.label != "":
			refuse = true
		}
		if kind == 7 {
			refusal = chkNoMailbox
		}
		if !refuse {
			m.chk(s, h, t, pid, "accepted rcpt:", c, addr, "found existing recipient")
			s.rcpt(addr, record.Allowed, 250)
			accepted = append(accepted, addr)
			continue
		}
		switch refusal {
		case chkRelay:
			addr = h.remote()
		case chkNoMailbox:
			addr = h.unknownLocal()
		}
		m.chk(s, h, t, pid, refusal.brief+":", c, addr, refusal.ext)
		s.rcpt(addr, refusal.label, refusal.reply)
	}
	reason := ""
	if refusal.label != "" {
		reason = "CHKUSER " + refusal.brief
	}
	s.rollUp(record.OutcomeNone, 0, reason)
	if len(accepted) == 0 {
		return
	}
	s.t.Reason = "queued"
	// The message: qmail-queue (qp) hands it to qmail-send.
	t += 500 + r.Int64N(8000)
	m.msg += 1 + r.IntN(5000)
	msg := m.msg
	qp := pid + 1 + r.IntN(3)
	size := 900 + r.IntN(80000)
	m.send(s, h, t, "new msg "+strconv.Itoa(msg))
	m.send(s, h, t, "info msg "+strconv.Itoa(msg)+": bytes "+strconv.Itoa(size)+" from <"+c.sender+"> qp "+strconv.Itoa(qp)+" uid "+strconv.Itoa(89+r.IntN(3)))
	bounced, deferred := false, false
	for _, a := range accepted {
		t += 1 + r.Int64N(30)
		m.delivNo++
		d := strconv.Itoa(m.delivNo)
		m.send(s, h, t, "starting delivery "+d+": msg "+strconv.Itoa(msg)+" to local "+a)
		t += 5 + r.Int64N(400)
		res := "success: did_0+0+1/"
		switch (weighted{95, 3, 2}).pick(r) {
		case 1:
			res, deferred = "deferral: Recipient's_mailbox_is_full,_message_returned_to_sender._(#4.2.2)/", true
		case 2:
			res, bounced = "failure: Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/", true
		}
		m.send(s, h, t, "delivery "+d+": "+res)
	}
	if !deferred {
		t += 1 + r.Int64N(20)
		m.send(s, h, t, "end msg "+strconv.Itoa(msg))
	}
	switch {
	case bounced:
		s.t.Delivery = record.DeliveryBounced
	case deferred:
		s.t.Delivery = record.DeliveryDeferred
	default:
		s.t.Delivery = record.DeliveryDelivered
	}
}

// chk appends a chkuser line (chkuser 2.0 logging format).
func (m *qmailModel) chk(s *session, h *host, t int64, pid int, brief string, c client, rcpt, ext string) {
	st := s.mark()
	s.buf = h.appendSyslog(s.buf, &m.clk, t, "qmail-smtpd", pid)
	s.buf = append(s.buf, "CHKUSER "...)
	s.buf = append(s.buf, brief...)
	s.buf = append(s.buf, " from <"...)
	s.buf = append(s.buf, c.sender...)
	s.buf = append(s.buf, "::> remote <"...)
	s.buf = append(s.buf, c.helo...)
	s.buf = append(s.buf, ':')
	s.buf = append(s.buf, c.ptr...)
	s.buf = append(s.buf, ':')
	s.buf = append(s.buf, c.ipStr...)
	s.buf = append(s.buf, "> rcpt <"...)
	s.buf = append(s.buf, rcpt...)
	s.buf = append(s.buf, "> : "...)
	s.buf = append(s.buf, ext...)
	s.push(t, 0, st)
}

func (m *qmailModel) send(s *session, h *host, t int64, text string) {
	st := s.mark()
	s.buf = m.splog(s.buf, h, t)
	s.buf = append(s.buf, text...)
	s.push(t, 0, st)
}

// splog appends the header splogger writes for program "qmail": syslog header, then the
// unix time with microseconds.
func (m *qmailModel) splog(b []byte, h *host, t int64) []byte {
	b = h.appendSyslog(b, &m.clk, t, "qmail", -1)
	b = strconv.AppendInt(b, t/1000, 10)
	b = append(b, '.')
	b = appendPad(b, int(t%1000)*1000+int(uint32(t*2654435761)%1000), 6)
	return append(b, ' ')
}
