package gen

import (
	"strconv"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// spamdyke in front of qmail: a spamdyke-only host (spamdyke 5.x syslog) and an ICDSoft host
// (spamdyke 4.2.1 syslog joined with ICDSoft's SMTP and delivery logs) share this model.

// sdCode is a spamdyke CODE with its unified label, the reply spamdyke sends (FORMATS.md §1.3,
// severity prefix) and the text ICDSoft shows in its SMTP log.
var ccTLDs = []string{"br", "cn", "ru", "vn", "in", "tr"}

type sdCode struct {
	code  string
	label record.Outcome
	reply int
	text  string
}

var (
	sdRBL       = sdCode{"DENIED_RBL_MATCH", record.DeniedRBL, 554, `"Refused. Your IP address is listed in the RBL at %s"`}
	sdRDNSMiss  = sdCode{"DENIED_RDNS_MISSING", record.DeniedRDNS, 421, `"Refused. You have no reverse DNS entry. Contact abuse@%s for details."`}
	sdRDNSRes   = sdCode{"DENIED_RDNS_RESOLVE", record.DeniedRDNS, 421, `"Refused. Your reverse DNS entry does not resolve."`}
	sdIPCCRDNS  = sdCode{"DENIED_IP_IN_CC_RDNS", record.DeniedRDNS, 554, `"Refused. Your reverse DNS entry contains your IP address and a country code."`}
	sdIPRDNS    = sdCode{"DENIED_IP_IN_RDNS", record.DeniedRDNS, 554, `"Refused. Your reverse DNS entry contains your IP address and a banned keyword."`}
	sdBlackIP   = sdCode{"DENIED_BLACKLIST_IP", record.DeniedBlacklist, 554, `"Refused. Your IP address is blacklisted."`}
	sdBlackName = sdCode{"DENIED_BLACKLIST_NAME", record.DeniedBlacklist, 554, `"Refused. Your domain name is blacklisted."`}
	sdEarly     = sdCode{"DENIED_EARLYTALKER", record.DeniedProtocol, 554, `"Refused. You are not following the SMTP protocol."`}
	sdRHSBL     = sdCode{"DENIED_RHSBL_MATCH", record.DeniedRHSBL, 554, `"Refused. Your domain name is listed in the RHSBL at %s"`}
	sdRejectAll = sdCode{"DENIED_REJECT_ALL", record.DeniedPolicy, 554, `"Refused. This server does not accept mail."`}
	sdNoMX      = sdCode{"DENIED_SENDER_NO_MX", record.DeniedSender, 421, `"Refused. The domain of your sender address has no mail exchanger (MX)."`}
	sdSenderBL  = sdCode{"DENIED_SENDER_BLACKLISTED", record.DeniedSender, 554, `"Refused. Your sender address has been blacklisted."`}
	sdAuthReq   = sdCode{"DENIED_AUTH_REQUIRED", record.DeniedAuthRequired, 554, `"Refused. Authentication is required to send mail."`}
	sdGrey      = sdCode{"DENIED_GRAYLISTED", record.DeniedGreylist, 421, `"Your address has been graylisted. Try again later."`}
	sdRelay     = sdCode{"DENIED_RELAYING", record.DeniedRelay, 554, `"Refused. Sending to remote addresses (relaying) is not allowed."`}
	sdInvalid   = sdCode{"DENIED_INVALID_RECIPIENT", record.DeniedUnknownRecipient, 554, `"Refused. The recipient address does not exist."`}
	sdRcptBL    = sdCode{"DENIED_RECIPIENT_BLACKLISTED", record.DeniedRecipient, 554, `"Refused. Mail is not being accepted at this address."`}
	sdTooMany   = sdCode{"DENIED_TOO_MANY_RECIPIENTS", record.DeniedRecipient, 421, `"Too many recipients. Try the remaining addresses again later."`}
	sdHeader    = sdCode{"DENIED_HEADER_BLACKLISTED", record.DeniedContent, 554, `"Refused. Your message contains a blacklisted header."`}
)

// Downstream replies that spamdyke logs as DENIED_OTHER with the reply, underscored, as
// reason. The label is what the reply text means (FORMATS.md §7 notes).
type downstream struct {
	reply string
	label record.Outcome
}

var (
	dsNoMailbox = downstream{"511 sorry, no mailbox here by that name (#5.1.1)", record.DeniedUnknownRecipient}
	dsDataRej   = []downstream{
		{"552 sorry, this message contains a virus (%s) (#5.3.4)", record.DeniedVirus},
		{"554 sorry, this message looks like spam, score %s (#5.6.1)", record.DeniedSpamScore},
		{"451 qq temporary problem (#4.3.0)", record.TempFail},
		{"554 sorry, message refused (#5.7.1)", record.DeniedOther},
	}
)

func replyCode(s string) int {
	if len(s) < 3 {
		return 0
	}
	n, err := strconv.Atoi(s[:3])
	if err != nil {
		return 0
	}
	return n
}

// spamdyke scenarios. kind: c = connection/sender code for every recipient, r = recipient code
// for every recipient, p = partial (one refused, others accepted), d = DATA refused by qmail or
// its filters, a = accepted, A = accepted after AUTH, n = no recipient line at all.
type sdScenario struct {
	kind   byte
	code   sdCode
	weight float64
	spam   bool
	icd    bool // also used on ICDSoft hosts (spamdyke 4.2.1)
}

var sdScenarios = []sdScenario{
	{kind: 'a', weight: 22, icd: true},
	{kind: 'A', weight: 5, icd: true},
	{kind: 'p', weight: 6, icd: true},
	{kind: 'c', code: sdRBL, weight: 15, spam: true, icd: true},
	{kind: 'c', code: sdRDNSMiss, weight: 9, spam: true, icd: true},
	{kind: 'c', code: sdRDNSRes, weight: 3, spam: true, icd: true},
	{kind: 'c', code: sdIPCCRDNS, weight: 2, spam: true, icd: true},
	{kind: 'c', code: sdIPRDNS, weight: 3, spam: true, icd: true},
	{kind: 'c', code: sdBlackIP, weight: 2, spam: true, icd: true},
	{kind: 'c', code: sdBlackName, weight: 1, spam: true, icd: true},
	{kind: 'c', code: sdEarly, weight: 2, spam: true, icd: true},
	{kind: 'c', code: sdRHSBL, weight: 3, spam: true, icd: true},
	{kind: 'c', code: sdRejectAll, weight: 0.5, spam: true},
	{kind: 'c', code: sdNoMX, weight: 3, spam: true, icd: true},
	{kind: 'c', code: sdSenderBL, weight: 1, spam: true, icd: true},
	{kind: 'c', code: sdAuthReq, weight: 1, spam: true},
	{kind: 'r', code: sdGrey, weight: 6, spam: true, icd: true},
	{kind: 'r', code: sdRelay, weight: 3, spam: true, icd: true},
	{kind: 'r', code: sdInvalid, weight: 5, spam: true},
	{kind: 'r', code: sdRcptBL, weight: 1, spam: true, icd: true},
	{kind: 'u', weight: 4, spam: true, icd: true}, // qmail/chkuser: no mailbox (DENIED_OTHER)
	{kind: 't', weight: 0.7, icd: true},           // too many recipients: partial
	{kind: 'd', weight: 5, spam: true, icd: true},
	{kind: 'h', code: sdHeader, weight: 1, spam: true},
	{kind: 'n', code: sdCode{code: "FAILED_AUTH", label: record.AuthFailed, reply: 535}, weight: 2, spam: true},
	{kind: 'n', code: sdCode{code: "TIMEOUT", label: record.Timeout, reply: 421}, weight: 2, spam: true},
	{kind: 'n', code: sdCode{code: "TLS_ENCRYPTED", label: record.Encrypted}, weight: 2},
}

type spamdykeModel struct {
	icd     bool
	pids    *pidPool
	weights weighted
	scen    []sdScenario
	delivNo int
	clk     clock
	grp     []byte // reused buffer for an ICDSoft group
}

// File indexes.
const (
	sdFile       = 0 // spamdyke-only host: its syslog
	icdSMTP      = 0
	icdDelivery  = 1
	icdSpamdyke  = 2
	icdUTCOffset = 7200 // ICDSoft servers run on UTC+2: qmail's unix stamp is 2 h behind the log
)

func newSpamdykeModel(h *host, icd bool) *spamdykeModel {
	// A shared-hosting server (ICDSoft) forks many more processes between connections.
	step := 12
	if icd {
		step = 40
	}
	m := &spamdykeModel{icd: icd, pids: newPidPool(h.rng, 300, 32768, step), delivNo: 10000 + h.rng.IntN(100000)}
	for _, sc := range sdScenarios {
		if icd && !sc.icd {
			continue
		}
		m.scen = append(m.scen, sc)
		m.weights = append(m.weights, sc.weight)
	}
	return m
}

func (m *spamdykeModel) dialects() []string {
	if m.icd {
		return []string{"icdsoft-smtp", "icdsoft-delivery", "spamdyke"}
	}
	return []string{"spamdyke"}
}

// sdRcpt is one recipient's fate in a spamdyke session.
type sdRcpt struct {
	addr   string
	code   string // spamdyke CODE of its line
	label  record.Outcome
	reply  int
	resp   string // ICDSoft resp text for a refusal at RCPT time
	atRcpt bool   // refused at RCPT time (line written then); else it waits for DATA
	chk    bool   // chkuser refused it (ICDSoft check line says rejected)
}

func (m *spamdykeModel) build(h *host, s *session, at int64) {
	r := h.rng
	sc := m.scen[m.weights.pick(r)]
	c := newClient(r, sc.spam)
	// The rDNS filters say something about the PTR name: make it fit.
	switch sc.code {
	case sdRDNSMiss:
		c.ptr = ""
	case sdRDNSRes:
		if c.ptr == "" {
			c.ptr = "mail." + spamDomain(r)
		}
	case sdIPRDNS:
		c.ptr = "host-" + string(appendDashedIP(nil, c.ipStr)) + "." + pick(r, ispSuffixes)
	case sdIPCCRDNS:
		c.ptr = string(appendDashedIP(nil, c.ipStr)) + ".dsl.telecom." + pick(r, ccTLDs)
	}
	pid := m.pids.alloc(r)
	s.release = func() { m.pids.free(pid) }
	s.t.SessionKey = strconv.Itoa(pid)
	auth := ""
	enc := "(none)"
	if chance(r, 0.25) {
		enc = "TLS"
		s.t.TLS = true
	}
	if sc.kind == 'A' {
		auth = pick(r, users) + "@" + pick(r, h.zones())
		c.sender = auth
		if m.icd {
			c.ip, c.ipStr, c.ptr = 127<<24|1, "127.0.0.1", "localhost"
		}
	}
	s.t.ClientIP, s.t.MailFrom, s.t.AuthUser = c.ipStr, c.sender, auth
	n := 1 + weighted{60, 25, 10, 5}.pick(r)
	if sc.kind == 'p' || sc.kind == 't' {
		n = 2 + r.IntN(3)
	}
	var rc []sdRcpt
	dataRej := downstream{}
	if sc.kind == 'd' {
		dataRej = dsDataRej[r.IntN(len(dsDataRej))]
	}
	for i := 0; i < n; i++ {
		x := sdRcpt{addr: h.local(), code: "ALLOWED", label: record.Allowed, reply: 250}
		switch sc.kind {
		case 'A':
			x.addr = h.remote()
		case 'c', 'r':
			if sc.code == sdRelay {
				x.addr = h.remote()
			}
			if sc.code == sdInvalid {
				x.addr = h.unknownLocal()
			}
			x.code, x.label, x.reply, x.atRcpt = sc.code.code, sc.code.label, sc.code.reply, true
			if m.icd && sc.code == sdRDNSMiss {
				x.reply = 554 // ICDSoft overrides the severity (seed 004)
			}
			x.resp = strconv.Itoa(x.reply) + " " + fillText(sc.code, h, c)
		case 'p', 'u':
			if sc.kind == 'u' || i == n-1 {
				x.addr = h.unknownLocal()
				if m.icd || sc.kind == 'u' {
					x.code, x.label, x.reply, x.resp, x.chk = "DENIED_OTHER", dsNoMailbox.label, 511, dsNoMailbox.reply, true
				} else {
					x.code, x.label, x.reply = sdInvalid.code, sdInvalid.label, sdInvalid.reply
					x.resp = "554 " + sdInvalid.text
				}
				x.atRcpt = true
			}
		case 't':
			if i >= 2 {
				x.code, x.label, x.reply, x.atRcpt = sdTooMany.code, sdTooMany.label, sdTooMany.reply, true
				x.resp = "421 " + sdTooMany.text
			}
		case 'd':
			x.code, x.label = "DENIED_OTHER", dataRej.label
		case 'h':
			x.code, x.label, x.reply = sdHeader.code, sdHeader.label, sdHeader.reply
		}
		rc = append(rc, x)
	}
	if sc.kind == 'd' {
		dataRej.reply = fillDownstream(dataRej.reply, r)
		for i := range rc {
			rc[i].reply = replyCode(dataRej.reply)
		}
	}

	// Times: ICDSoft writes a whole group in one second (seed 004); a spamdyke-only host
	// spreads the RCPT-time lines and the DATA-time lines over the session.
	t := at
	step := func() int64 {
		if m.icd {
			return 0
		}
		return 50 + r.Int64N(1500)
	}
	qp := pid + 1 + r.IntN(3)
	size := 800 + r.IntN(60000)
	anyAccepted := false
	for _, x := range rc {
		if !x.atRcpt {
			anyAccepted = true
		}
	}
	sdf := uint8(sdFile)
	if m.icd {
		sdf = icdSpamdyke
	}
	rdns := c.ptr
	if sc.code == sdRDNSMiss || rdns == "" {
		rdns = "(unknown)"
	}

	if sc.kind == 'n' {
		// FAILED_AUTH / TIMEOUT / TLS_ENCRYPTED: one line, no recipient.
		from, to := c.sender, "(unknown)"
		if sc.code.code == "TLS_ENCRYPTED" {
			from, rdns, enc = "(unknown)", "(unknown)", "TLS_PASSTHROUGH"
			s.t.ClientIP, s.t.MailFrom = "0.0.0.0", ""
			c.ipStr = "0.0.0.0"
			s.t.TLS = true
		}
		if sc.code.code == "FAILED_AUTH" {
			from = "(unknown)"
			s.t.MailFrom = ""
		}
		t += 2000 + r.Int64N(20000)
		st := s.mark()
		s.buf = m.appendLine(s.buf, h, t, pid, sc.code.code, from, to, c.ipStr, rdns, "(unknown)", enc, "(empty)")
		s.push(t, sdf, st)
		s.rollUp(sc.code.label, sc.code.reply, sc.code.code)
		return
	}

	// Verbose FILTER_* evidence precedes connection-level refusals on some hosts.
	if !m.icd && sc.kind == 'c' && chance(r, 0.5) {
		st := s.mark()
		s.buf = h.appendSyslog(s.buf, &m.clk, t, "spamdyke", pid)
		switch sc.code {
		case sdRBL:
			s.buf = append(s.buf, "FILTER_RBL_MATCH ip: "...)
			s.buf = append(s.buf, c.ipStr...)
			s.buf = append(s.buf, " rbl: "...)
			s.buf = append(s.buf, rbls[int(c.ip)%len(rbls)]...)
		case sdRDNSMiss:
			s.buf = append(s.buf, "FILTER_RDNS_MISSING ip: "...)
			s.buf = append(s.buf, c.ipStr...)
		default:
			s.buf = append(s.buf, "FILTER_OTHER response: \""...)
			s.buf = append(s.buf, fillText(sc.code, h, c)[1:]...)
		}
		s.push(t, sdf, st)
	}

	grp := m.grp[:0]
	if m.icd {
		grp = m.icdLine(grp, h, t, "from", c.sender)
		grp = m.icdLine(grp, h, t, "resp", "250 ok")
	}
	// RCPT phase.
	for _, x := range rc {
		t += step()
		if m.icd {
			grp = m.icdLine(grp, h, t, "to", "<"+x.addr+">")
			if x.chk {
				grp = m.icdLine(grp, h, t, "check", "rejected rcpt, h:"+c.ipStr+", "+x.addr+", not existing recipient")
			} else if !x.atRcpt {
				remote := "h:" + c.ipStr
				if sc.kind == 'A' {
					remote = "unknown:127.0.0.1"
				}
				grp = m.icdLine(grp, h, t, "check", "accepted rcpt, "+remote+", "+x.addr+", found existing recipient")
			}
			if x.atRcpt {
				grp = m.icdLine(grp, h, t, "resp", x.resp)
			} else {
				grp = m.icdLine(grp, h, t, "resp", "250 ok")
			}
		}
		if x.atRcpt {
			reason := "(empty)"
			switch {
			case x.code == "DENIED_OTHER":
				reason = string(appendUnderscored(nil, x.resp))
			case x.code == sdRBL.code:
				reason = rbls[int(c.ip)%len(rbls)]
			case x.code == sdRHSBL.code:
				reason = rhsbls[int(c.ip)%len(rhsbls)]
			case x.code == sdBlackIP.code:
				reason = "/etc/spamdyke/blacklist_ip(" + strconv.Itoa(1+int(c.ip%400)) + ")"
			}
			st := s.mark()
			s.buf = m.appendLine(s.buf, h, t, pid, x.code, c.sender, x.addr, c.ipStr, rdns, orUnknown(auth), enc, reason)
			s.push(t, sdf, st)
		}
		s.rcpt(x.addr, x.label, x.reply)
	}
	// DATA phase.
	final := ""
	if anyAccepted {
		t += step() * 3
		ts := int(t / 1000)
		if m.icd {
			ts -= icdUTCOffset
		}
		switch sc.kind {
		case 'd':
			final = dataRej.reply
		case 'h':
			final = "554 " + sdHeader.text
		default:
			final = "250 ok " + strconv.Itoa(ts) + " qp " + strconv.Itoa(qp)
		}
		if m.icd {
			grp = m.icdLine(grp, h, t, "size", strconv.Itoa(size))
			grp = m.icdLine(grp, h, t, "resp", final)
		}
		for _, x := range rc {
			if x.atRcpt {
				continue
			}
			reason := string(appendUnderscored(nil, final))
			if x.code == sdHeader.code {
				reason = "Subject:*" + pick(r, spamWords) + "*"
			}
			st := s.mark()
			s.buf = m.appendLine(s.buf, h, t, pid, x.code, c.sender, x.addr, c.ipStr, rdns, orUnknown(auth), enc, reason)
			s.push(t, sdf, st)
		}
	}
	if m.icd {
		// The SMTP group is written as one block, before the spamdyke lines of the same second.
		st := s.mark()
		s.buf = append(s.buf, grp[:len(grp)-1]...)
		s.push(at, icdSMTP, st)
		// push appends the '\n' that was trimmed above; keep items in time order: the SMTP
		// block is at the session start, so move it to the front.
		last := len(s.items) - 1
		blk := s.items[last]
		copy(s.items[1:], s.items[:last])
		s.items[0] = blk
		m.grp = grp
	}
	decided := ""
	for _, x := range rc {
		if x.label != record.Allowed && decided == "" {
			decided = x.code
		}
	}
	s.rollUp(record.OutcomeNone, 0, decided)
	if s.t.Outcome == record.Allowed {
		s.t.Reason = "ALLOWED"
		s.t.SMTPCode = 250
		if m.icd {
			m.delivery(h, s, t, c.sender, rc, sc.kind == 'A')
		}
	}
}

// delivery writes the ICDSoft delivery-log group of an accepted message.
func (m *spamdykeModel) delivery(h *host, s *session, t int64, sender string, rc []sdRcpt, auth bool) {
	r := h.rng
	grp := m.icdLine(m.grp[:0], h, t, "init", "<"+sender+">")
	bounced, deferred := false, false
	for _, x := range rc {
		if x.label != record.Allowed {
			continue
		}
		m.delivNo++
		d := strconv.Itoa(m.delivNo)
		where := "local"
		if auth {
			where = "remote"
		}
		grp = m.icdLine(grp, h, t, "try", d+", "+where+", "+x.addr)
		res, detail := "success", "did_0+0+1/"
		if where == "remote" {
			detail = "198.51.100." + strconv.Itoa(1+r.IntN(250)) + "_accepted_message./Remote_host_said:_250_2.0.0_Ok:_queued_as_" + string(appendHexUpper(nil, r.Uint64(), 10)) + "/"
		}
		switch (weighted{95, 3, 2}).pick(r) {
		case 1:
			res, deferred = "deferral", true
			detail = "Sorry,_I_couldn't_find_any_host_by_that_name._(#4.1.2)/"
			if where == "local" {
				detail = "Recipient's_mailbox_is_full,_message_returned_to_sender._(#4.2.2)/"
			}
		case 2:
			res, bounced = "failure", true
			detail = "Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/"
		}
		if auth {
			detail = "smtp_auth/" + detail
		}
		grp = m.icdLine(grp, h, t, "result", d+", "+res+", "+detail)
	}
	switch {
	case bounced:
		s.t.Delivery = record.DeliveryBounced
	case deferred:
		s.t.Delivery = record.DeliveryDeferred
	default:
		s.t.Delivery = record.DeliveryDelivered
	}
	st := s.mark()
	s.buf = append(s.buf, grp[:len(grp)-1]...)
	s.push(t, icdDelivery, st)
	m.grp = grp
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// fillText fills the one %s of a spamdyke rejection text with the list or domain it names.
func fillText(code sdCode, h *host, c client) string {
	v := ""
	switch code {
	case sdRBL:
		v = rbls[int(c.ip)%len(rbls)]
	case sdRHSBL:
		v = rhsbls[int(c.ip)%len(rhsbls)]
	case sdRDNSMiss:
		v = h.zones()[0]
	}
	for i := 0; i+1 < len(code.text); i++ {
		if code.text[i] == '%' && code.text[i+1] == 's' {
			return code.text[:i] + v + code.text[i+2:]
		}
	}
	return code.text
}

func fillDownstream(reply string, r interface{ IntN(int) int }) string {
	for i := 0; i+1 < len(reply); i++ {
		if reply[i] == '%' && reply[i+1] == 's' {
			v := viruses[r.IntN(len(viruses))]
			if reply[:3] == "554" {
				v = strconv.Itoa(6+r.IntN(20)) + "." + strconv.Itoa(r.IntN(10))
			}
			return reply[:i] + v + reply[i+2:]
		}
	}
	return reply
}

// appendLine appends one spamdyke CODE line (spamdyke.c's fixed format string).
func (m *spamdykeModel) appendLine(b []byte, h *host, at int64, pid int, code, from, to, ip, rdns, auth, enc, reason string) []byte {
	b = h.appendSyslog(b, &m.clk, at, "spamdyke", pid)
	b = append(b, code...)
	b = append(b, " from: "...)
	b = append(b, from...)
	b = append(b, " to: "...)
	b = append(b, to...)
	b = append(b, " origin_ip: "...)
	b = append(b, ip...)
	b = append(b, " origin_rdns: "...)
	b = append(b, rdns...)
	b = append(b, " auth: "...)
	b = append(b, auth...)
	b = append(b, " encryption: "...)
	b = append(b, enc...)
	b = append(b, " reason: "...)
	return append(b, reason...)
}

// icdLine appends "YYYY-MM-DD HH:MM:SS, kind, value\n" (ICDSoft SMTP and delivery logs).
func (m *spamdykeModel) icdLine(b []byte, h *host, at int64, kind, value string) []byte {
	m.clk.set(at)
	b = appendISO(b, &m.clk)
	b = append(b, ", "...)
	b = append(b, kind...)
	b = append(b, ", "...)
	b = append(b, value...)
	return append(b, '\n')
}

// appendSyslog appends the RFC 3164 header "Mar  9 12:43:51 host prog[pid]: ".
func (h *host) appendSyslog(b []byte, c *clock, at int64, prog string, pid int) []byte {
	c.set(at)
	b = appendSyslogTS(b, c)
	b = append(b, ' ')
	b = append(b, h.name...)
	b = append(b, ' ')
	b = append(b, prog...)
	if pid >= 0 {
		b = append(b, '[')
		b = appendInt(b, pid)
		b = append(b, ']')
	}
	return append(b, ':', ' ')
}
