package gen

import (
	"strconv"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// MailEnable SMTP-Activity log (tab-separated, FORMATS.md §5.2, corpus/real/mailenable.log):
//
//	09/01/20 00:00:19<TAB>SMTP-IN<TAB>6468E5679CDC4F53AFB8064FA9FA29E6.MAI<TAB>2816<TAB>21.74.49.152<TAB>AUTH<TAB>dmNjMjAxOQ==<TAB>535 Invalid Username or Password<TAB>34<TAB>14<TAB>user.name@domain.com<TAB>
//
// One row per command; the session key is "<socket>/<remote ip>" (socket handles are reused by
// the next connection). A banned client gets one row with an empty command and the 530 reply.
//
// SMTP-Debug log: its line layout is not public (FORMATS.md §5.3). The generator writes the
// timestamp, then the activity log's connection columns separated by spaces, then
// "ME-xNNNN: text", so that codes join by socket and IP (SYNTHETIC layout, documented in
// doc.go; the parser takes anything between the timestamp and the code as the process):
//
//	03/09/21 12:43:51 SMTP-IN 6468E5679CDC4F53AFB8064FA9FA29E6.MAI 2816 192.0.2.12 ME-I0111: Relay Denied: Failed to meet all relay criteria.

type mailenableModel struct {
	socks  socketPool
	clk    clock
	banned []uint32 // recently banned IPs: banned clients keep coming back
}

func newMailEnableModel(h *host) *mailenableModel {
	return &mailenableModel{socks: socketPool{next: 700 + 4*h.rng.IntN(100)}}
}

func (m *mailenableModel) dialects() []string {
	return []string{"mailenable-activity", "mailenable-debug"}
}

const (
	meAllowed = iota
	meAuthRelay
	meCatchAll
	mePartial
	meRelayDenied
	meAuthFailed
	meBanned
	meUnknown
	meTempfail
	meDataRefused
)

var meWeights = weighted{22, 8, 3, 5, 18, 16, 12, 10, 2, 4}

const (
	meReplyOK      = "250 Requested mail action okay, completed"
	meReplyRelay   = "503 This mail server requires authentication when attempting to send to a non-local e-mail address. Please check your mail client settings or contact your administrator to verify that the domain or address is defined for this server."
	meReplyNoBox   = "550 Requested action not taken: mailbox unavailable or not local"
	meReplyAuthBad = "535 Invalid Username or Password"
)

func (m *mailenableModel) build(h *host, s *session, at int64) {
	r := h.rng
	kind := meWeights.pick(r)
	c := newClient(r, kind >= meRelayDenied)
	sock := m.socks.alloc()
	s.release = func() { m.socks.release(sock) }
	s.t.SessionKey = strconv.Itoa(sock) + "/" + c.ipStr
	s.t.ClientIP = c.ipStr
	msgFile := string(appendHexUpper(appendHexUpper(nil, r.Uint64(), 16), r.Uint64(), 16)) + ".MAI"
	row := func(t int64, cmd, args, reply, user string) {
		st := s.mark()
		m.clk.set(t)
		b := appendUSDate(s.buf, &m.clk)
		b = append(b, "\tSMTP-IN\t"...)
		b = append(b, msgFile...)
		b = append(b, '\t')
		b = appendInt(b, sock)
		b = append(b, '\t')
		b = append(b, c.ipStr...)
		b = append(b, '\t')
		b = append(b, cmd...)
		b = append(b, '\t')
		b = append(b, args...)
		b = append(b, '\t')
		b = append(b, reply...)
		b = append(b, '\t')
		b = appendInt(b, len(reply)+2)
		b = append(b, '\t')
		b = appendInt(b, len(args)+2)
		b = append(b, '\t')
		b = append(b, user...)
		s.buf = append(b, '\t')
		s.push(t, 0, st)
	}
	debug := func(t int64, code, text string) {
		st := s.mark()
		m.clk.set(t)
		b := appendUSDate(s.buf, &m.clk)
		b = append(b, " SMTP-IN "...)
		b = append(b, msgFile...)
		b = append(b, ' ')
		b = appendInt(b, sock)
		b = append(b, ' ')
		b = append(b, c.ipStr...)
		b = append(b, ' ')
		b = append(b, code...)
		b = append(b, ": "...)
		s.buf = append(b, text...)
		s.push(t, 1, st)
	}
	t := at
	if kind == meBanned {
		if len(m.banned) > 0 && chance(r, 0.6) {
			c.ip = pick(r, m.banned)
			c.ipStr = ipString(c.ip)
			s.t.ClientIP = c.ipStr
			s.t.SessionKey = strconv.Itoa(sock) + "/" + c.ipStr
		} else {
			if len(m.banned) < 64 {
				m.banned = append(m.banned, c.ip)
			} else {
				m.banned[r.IntN(64)] = c.ip
			}
			debug(t, "ME-I0073", "IP Address "+c.ipStr+" banned.")
		}
		m.clk.set(t)
		row(t, "", "", "530 "+h.name+".example ESMTP MailEnable Service, Version: 10.23-- denied access at "+string(appendUSDate(nil, &m.clk)), "")
		s.rollUp(record.DeniedBlacklist, 530, "530 denied access")
		return
	}
	t += 50 + r.Int64N(500)
	row(t, "EHLO", "EHLO "+c.helo, "250-"+h.name+".example ["+c.ipStr+"], this server offers 4 extensions", "")
	s.t.HELO = c.helo
	user := ""
	switch kind {
	case meAuthFailed:
		tries := 1 + r.IntN(3)
		login := pick(r, users) + "@" + pick(r, h.zones())
		for i := 0; i < tries; i++ {
			t += 500 + r.Int64N(3000)
			row(t, "AUTH", string(appendHex(nil, r.Uint64(), 12)), meReplyAuthBad, login)
		}
		t += 100 + r.Int64N(1000)
		row(t, "QUIT", "QUIT", "221 Service closing transmission channel", "")
		s.rollUp(record.AuthFailed, 535, meReplyAuthBad)
		return
	case meAuthRelay:
		user = pick(r, users) + "@" + pick(r, h.zones())
		c.sender = user
		t += 300 + r.Int64N(2000)
		row(t, "AUTH", string(appendHex(nil, r.Uint64(), 12)), "235 Authenticated", user)
		s.t.AuthUser = user
	}
	t += 100 + r.Int64N(2000)
	s.t.MailFrom = c.sender
	row(t, "MAIL", "MAIL FROM:<"+c.sender+"> SIZE="+strconv.Itoa(1000+r.IntN(50000)), meReplyOK, user)
	n := 1 + weighted{60, 25, 10, 5}.pick(r)
	if kind == mePartial && n < 2 {
		n = 2
	}
	accepted := 0
	reason := ""
	for i := 0; i < n; i++ {
		t += 100 + r.Int64N(1500)
		addr, reply, label, code := h.local(), meReplyOK, record.Allowed, 250
		switch {
		case kind == meAuthRelay:
			addr = h.remote()
			debug(t, "ME-I0108", "Relay Granted: Sender has authenticated.")
		case kind == meRelayDenied:
			addr = h.remote()
			if i == 0 || r.IntN(2) == 0 {
				debug(t, "ME-I0111", "Relay Denied: Failed to meet all relay criteria.")
			}
			reply, label, code, reason = meReplyRelay, record.DeniedRelay, 503, "503 requires authentication"
		case kind == meUnknown || kind == mePartial && i == n-1:
			addr = h.unknownLocal()
			reply, label, code, reason = meReplyNoBox, record.DeniedUnknownRecipient, 550, "550 mailbox unavailable"
		case kind == meCatchAll:
			addr = h.unknownLocal()
			debug(t, "ME-I0102", "Address ([SMTP:"+addr+"]) is to be delivered to Catch-All address.")
		default:
			debug(t, "ME-I0101", "Local Delivery: Address ("+addr+") is local.")
		}
		if label == record.Allowed {
			accepted++
		}
		row(t, "RCPT", "RCPT TO:<"+addr+">", reply, user)
		s.rcpt(addr, label, code)
	}
	if accepted > 0 {
		t += 500 + r.Int64N(8000)
		reply, label, code := meReplyOK, record.Allowed, 250
		switch kind {
		case meTempfail:
			reply, label, code, reason = "451 Requested action aborted: local error in processing", record.TempFail, 451, "451 local error"
		case meDataRefused:
			reply, label, code, reason = "554 Transaction failed: message content rejected", record.DeniedOther, 554, "554 transaction failed"
		}
		row(t, "DATA", "DATA", reply, user)
		if label != record.Allowed {
			for i := range s.t.Recipients {
				if s.t.Recipients[i].Outcome == record.Allowed {
					s.t.Recipients[i] = TruthRecipient{Address: s.t.Recipients[i].Address, Outcome: label, SMTPCode: code, Permanent: code >= 500}
				}
			}
		}
	}
	t += 50 + r.Int64N(500)
	row(t, "QUIT", "QUIT", "221 Service closing transmission channel", user)
	s.rollUp(record.OutcomeNone, 0, reason)
}
