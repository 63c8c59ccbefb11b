package session

import (
	"bytes"
	"strconv"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/record"
)

// ---- spamdyke: (host, pid), one CODE line per recipient, no start or end marker ----

// bracketed returns what is between the last '[' and the following ']' of b ("host prog[pid]").
func bracketed(b []byte) []byte {
	i := bytes.LastIndexByte(b, '[')
	if i < 0 {
		return nil
	}
	j := bytes.IndexByte(b[i:], ']')
	if j < 0 {
		return nil
	}
	return b[i+1 : i+j]
}

func (a *Assembler) spamdyke(hs *hostState, ev *event.Event) *sess {
	pid := ev.Field(event.FieldPID)
	if len(pid) == 0 {
		pid = bracketed(ev.Bytes(ev.SessionKey))
	}
	if len(pid) == 0 {
		return nil
	}
	code := ev.Bytes(ev.Code)
	c, isCode := spamdykeCodes[string(code)]
	ip := ev.Field(event.FieldClientIP)
	k := a.key(hs, "spamdyke", pid)
	s := a.lookup(k)
	if s != nil {
		newClient := isCode && !unknown(ip) && string(ip) != "0.0.0.0" && s.rec.ClientIP != "" && s.rec.ClientIP != string(ip)
		// a new sender after a finished transaction (qmail's queue reply seen): another
		// connection of a reused pid from the same address (local submissions), or a second
		// message of one connection, which is a record of its own either way
		from := ev.Field(event.FieldSender)
		newMessage := isCode && s.sdAllowed != "" && !unknown(from) && s.rec.MailFrom != "" && s.rec.MailFrom != string(from)
		if ev.Time.Sub(s.lastSeen) > a.cfg.PidReuseGap || newClient || newMessage || s.ended && isCode {
			a.reuse(s)
			s = nil
		}
	}
	if s == nil {
		s = a.create(hs, event.ProductSpamdyke, a.key(hs, "spamdyke", pid), string(pid), ev)
	}
	a.touch(s, ev)
	if !isCode {
		// FILTER_*, ERROR(...), DEBUG(...): evidence, kept as flags by code
		if bytes.HasPrefix(code, []byte("FILTER_")) {
			s.addFlag(string(code))
		}
		if !unknown(ip) && s.rec.ClientIP == "" {
			s.rec.ClientIP = string(ip)
		}
		return s
	}
	if from := ev.Field(event.FieldSender); !unknown(from) && s.rec.MailFrom == "" {
		s.rec.MailFrom = string(from)
		s.sdSender = s.rec.MailFrom
		if hs.sdBySender == nil {
			hs.sdBySender = map[string][]*sess{}
		}
		hs.sdBySender[s.sdSender] = append(hs.sdBySender[s.sdSender], s)
	}
	if !unknown(ip) && (string(ip) != "0.0.0.0" || s.rec.ClientIP == "") {
		setStr(&s.rec.ClientIP, ip) // 0.0.0.0: TLS passthrough, spamdyke saw no client
	}
	if p := ev.Field(event.FieldClientPTR); !unknown(p) {
		setStr(&s.rec.ClientPTR, p)
	}
	if u := ev.Field(event.FieldAuthUser); !unknown(u) {
		setStr(&s.rec.AuthUser, u)
	}
	if t := ev.Field(event.FieldTLS); len(t) > 0 && !unknown(t) {
		s.rec.TLS = true
	}
	reason := ev.Field(event.FieldReason)
	label, n, _ := spamdykeLabel(code, reason)
	reply := ""
	if code3(reason) != 0 {
		reply = string(bytes.ReplaceAll(reason, []byte("_"), []byte(" ")))
	}
	rcpt := ev.Field(event.FieldRecipient)
	if unknown(rcpt) {
		if !c.none || s.verdict == record.OutcomeNone {
			s.setVerdict(label, n, reply, c.name)
		}
	} else {
		i := s.rcpt(rcpt)
		s.label(i, label, n, reply, c.name)
		if label == record.Allowed && len(reason) > 0 && s.sdAllowed != string(reason) {
			s.sdAllowed = string(reason)
		}
	}
	if c.end {
		a.end(s, ev.Time)
	}
	return s
}

// ---- qmail raw syslog: qmail-smtpd pid (CHKUSER lines), rblsmtpd, qmail-send ----

func (a *Assembler) qmail(hs *hostState, ev *event.Event) *sess {
	code := ev.Bytes(ev.Code)
	switch string(code) {
	case "rblsmtpd":
		pid := ev.Field(event.FieldPID)
		k := a.key(hs, "qmail", pid)
		if s := a.lookup(k); s != nil {
			a.reuse(s)
		}
		s := a.create(hs, event.ProductQmail, a.key(hs, "qmail", pid), string(pid), ev)
		a.touch(s, ev)
		setStr(&s.rec.ClientIP, ev.Field(event.FieldClientIP))
		rc := code3(ev.Field(event.FieldReplyCode))
		reply := string(ev.Field(event.FieldReplyCode)) + " " + string(ev.Field(event.FieldReplyText))
		s.setVerdict(record.DeniedRBL, rc, reply, "rblsmtpd")
		if l := ev.Field(event.FieldDNSBL); len(l) > 0 {
			s.addFlag("dnsbl=" + string(l))
		}
		a.end(s, ev.Time)
		return s
	case "info_msg":
		qid, sender := ev.Field(event.FieldQueueID), ev.Field(event.FieldSender)
		qp, _ := strconv.Atoi(string(ev.Field(event.FieldPID)))
		// qmail-queue (qp) is a child of the qmail-smtpd that took the message; when several
		// connections of that pid range have the same sender, the first delivery's recipient
		// decides (see starting_delivery)
		var first *sess
		var alts []*sess
		var nb [20]byte
		for p := qp - 1; p >= qp-5 && p > 0; p-- {
			s := a.lookup(a.key(hs, "qmail", strconv.AppendInt(nb[:0], int64(p), 10)))
			if s == nil || s.msgSeen || s.rec.MailFrom != string(sender) {
				continue
			}
			if first == nil {
				first = s
			} else {
				alts = append(alts, s)
			}
		}
		if first == nil {
			a.stats.Orphans++
			return &orphan
		}
		if hs.qmailMsg == nil {
			hs.qmailMsg, hs.qmailDeliv, hs.qmailAlt = map[string]*sess{}, map[string]*sess{}, map[string][]*sess{}
		}
		if alts != nil {
			hs.qmailAlt[string(qid)] = alts
		}
		size, _ := strconv.ParseInt(string(ev.Field(event.FieldSize)), 10, 64)
		bindMsg(hs, first, string(qid), size)
		a.touch(first, ev)
		return first
	case "starting_delivery":
		qid := string(ev.Field(event.FieldQueueID))
		s := hs.qmailMsg[qid]
		if s == nil {
			a.stats.Orphans++
			return &orphan
		}
		rcpt := ev.Field(event.FieldRecipient)
		if alts := hs.qmailAlt[qid]; alts != nil {
			delete(hs.qmailAlt, qid)
			if !acceptedRcpt(s, rcpt) {
				for _, alt := range alts {
					if !alt.closed && !alt.msgSeen && acceptedRcpt(alt, rcpt) {
						unbindMsg(s, qid)
						bindMsg(hs, alt, qid, s.rec.Size)
						s.rec.Size = 0
						s = alt
						break
					}
				}
			}
		}
		a.touch(s, ev)
		d := string(ev.Field(event.FieldDeliveryNum))
		hs.qmailDeliv[d] = s
		s.deliveries = append(s.deliveries, d)
		s.pendDeliv++
		return s
	case "delivery":
		d := string(ev.Field(event.FieldDeliveryNum))
		s := hs.qmailDeliv[d]
		if s == nil {
			a.stats.Orphans++
			return &orphan
		}
		delete(hs.qmailDeliv, d)
		a.touch(s, ev)
		s.pendDeliv--
		deliveryResult(s, ev.Field(event.FieldDeliveryResult))
		return s
	case "end_msg":
		s := hs.qmailMsg[string(ev.Field(event.FieldQueueID))]
		if s == nil {
			a.stats.Orphans++
			return &orphan
		}
		a.touch(s, ev)
		a.end(s, ev.Time)
		return s
	}
	raw := ev.Raw()
	if t := ev.Field(event.FieldText); bytes.HasPrefix(t, []byte("rblsmtpd: ")) {
		return a.rblsmtpdText(hs, ev, t[len("rblsmtpd: "):])
	}
	i := bytes.Index(raw, []byte("CHKUSER "))
	pid := ev.Field(event.FieldPID)
	if i < 0 || len(pid) == 0 {
		return nil
	}
	return a.chkuser(hs, ev, pid, raw[i+len("CHKUSER "):])
}

// rblsmtpdText handles rblsmtpd's stderr logged through splogger under the qmail tag:
// "rblsmtpd: <ip> pid <pid>[ <list>]: <code> <text>" (the parser matches it only under the
// rblsmtpd program name).
func (a *Assembler) rblsmtpdText(hs *hostState, ev *event.Event, t []byte) *sess {
	sp := bytes.IndexByte(t, ' ')
	if sp < 0 || !bytes.HasPrefix(t[sp:], []byte(" pid ")) {
		return nil
	}
	ip, rest := t[:sp], t[sp+len(" pid "):]
	colon := bytes.Index(rest, []byte(": "))
	if colon < 0 {
		return nil
	}
	head, reply := rest[:colon], rest[colon+2:]
	pid, list := head, []byte(nil)
	if k := bytes.IndexByte(head, ' '); k >= 0 {
		pid, list = head[:k], head[k+1:]
	}
	k := a.key(hs, "qmail", pid)
	if s := a.lookup(k); s != nil {
		a.reuse(s)
	}
	s := a.create(hs, event.ProductQmail, a.key(hs, "qmail", pid), string(pid), ev)
	a.touch(s, ev)
	setStr(&s.rec.ClientIP, ip)
	s.setVerdict(record.DeniedRBL, code3(reply), string(reply), "rblsmtpd")
	if len(list) > 0 {
		s.addFlag("dnsbl=" + string(list))
	}
	a.end(s, ev.Time)
	return s
}

func bindMsg(hs *hostState, s *sess, qid string, size int64) {
	s.msgSeen = true
	s.rec.Size = size
	s.rec.MessageID = qid
	hs.qmailMsg[qid] = s
	s.deliveries = append(s.deliveries, qid)
}

func unbindMsg(s *sess, qid string) {
	s.msgSeen = false
	s.rec.MessageID = ""
	for i, d := range s.deliveries {
		if d == qid {
			s.deliveries = append(s.deliveries[:i], s.deliveries[i+1:]...)
			break
		}
	}
}

// acceptedRcpt reports whether addr is an accepted recipient of s.
func acceptedRcpt(s *sess, addr []byte) bool {
	for _, r := range s.rec.Recipients {
		if r.Outcome == record.Allowed && r.Address == string(addr) {
			return true
		}
	}
	return false
}

// orphan stands for "accounted for, in no session" (counted in Stats.Orphans).
var orphan sess

// deliveryResult folds a qmail-send result (success, deferral, failure) into s.rec.Delivery.
func deliveryResult(s *sess, res []byte) {
	switch {
	case bytes.HasPrefix(res, []byte("failure")):
		s.rec.Delivery = record.DeliveryBounced
	case bytes.HasPrefix(res, []byte("deferral")):
		if s.rec.Delivery != record.DeliveryBounced {
			s.rec.Delivery = record.DeliveryDeferred
		}
	case bytes.HasPrefix(res, []byte("success")):
		if s.rec.Delivery == record.DeliveryNone {
			s.rec.Delivery = record.DeliveryDelivered
		}
	}
}

// between returns the text after open and before the next close, and the rest after it.
func between(b []byte, open string, close byte) (v, rest []byte, ok bool) {
	i := bytes.Index(b, []byte(open))
	if i < 0 {
		return nil, b, false
	}
	b = b[i+len(open):]
	j := bytes.IndexByte(b, close)
	if j < 0 {
		return nil, b, false
	}
	return b[:j], b[j+1:], true
}

// chkuser handles "CHKUSER <kind>: from <s:u:h> remote <helo:ptr:ip> rcpt <r> : <text>".
// chkuser logs no reply code: codes are chkuser's usual replies (README.md).
func (a *Assembler) chkuser(hs *hostState, ev *event.Event, pid, msg []byte) *sess {
	colon := bytes.IndexByte(msg, ':')
	if colon < 0 {
		return nil
	}
	kind := string(msg[:colon])
	from, rest, _ := between(msg, " from <", '>')
	remote, rest, _ := between(rest, " remote <", '>')
	rcpt, rest, _ := between(rest, " rcpt <", '>')
	text := bytes.TrimPrefix(rest, []byte(" : "))
	if k := bytes.IndexByte(from, ':'); k >= 0 {
		from = from[:k]
	}
	var helo, ptr, ip []byte
	if k := bytes.IndexByte(remote, ':'); k >= 0 {
		helo = remote[:k]
		r := remote[k+1:]
		if m := bytes.LastIndexByte(r, ':'); m >= 0 {
			ptr, ip = r[:m], r[m+1:]
		}
	}
	senderCheck := kind == "accepted sender" || kind == "rejected sender" || kind == "must auth"
	k := a.key(hs, "qmail", pid)
	s := a.lookup(k)
	if s != nil && (s.ended || ev.Time.Sub(s.lastSeen) > a.cfg.PidReuseGap ||
		senderCheck && len(ip) > 0 && s.rec.ClientIP != "" && s.rec.ClientIP != string(ip)) {
		a.reuse(s)
		s = nil
	}
	if s == nil {
		s = a.create(hs, event.ProductQmail, a.key(hs, "qmail", pid), string(pid), ev)
	}
	a.touch(s, ev)
	setStr(&s.rec.ClientIP, ip)
	setStr(&s.rec.ClientPTR, ptr)
	setStr(&s.rec.HELO, helo)
	if len(from) > 0 && s.rec.MailFrom == "" {
		s.rec.MailFrom = string(from)
	}
	raw := "CHKUSER " + kind
	switch {
	case kind == "accepted sender":
	case kind == "must auth":
		s.setVerdict(record.DeniedAuthRequired, 530, "", raw)
	case kind == "rejected sender":
		s.setVerdict(record.DeniedSender, 553, "", raw)
	case kind == "accepted rcpt":
		s.label(s.rcpt(rcpt), record.Allowed, 250, "", raw)
	case kind == "rejected relaying":
		s.label(s.rcpt(rcpt), record.DeniedRelay, 553, "", raw)
	case bytes.Contains(text, []byte("not existing recipient")):
		s.label(s.rcpt(rcpt), record.DeniedUnknownRecipient, 511, "", raw)
	case bytes.Contains(text, []byte("max number of recipients")):
		s.label(s.rcpt(rcpt), record.DeniedRecipient, 571, "", raw)
	case bytes.Contains(text, []byte("temporary")):
		s.label(s.rcpt(rcpt), record.TempFail, 451, "", raw)
	case len(rcpt) > 0:
		s.label(s.rcpt(rcpt), record.DeniedRecipient, 550, "", raw)
	default:
		s.setVerdict(record.DeniedOther, 550, "", raw)
	}
	return s
}

// ---- smtpf: the 18-char SID; #637 start, #717-#720 transaction, #721 end ----

func (a *Assembler) smtpf(hs *hostState, ev *event.Event) *sess {
	sid := ev.Bytes(ev.SessionKey)
	if len(sid) == 0 {
		return nil
	}
	k := a.key(hs, "smtpf", sid)
	s := a.lookup(k)
	if s == nil {
		s = a.create(hs, event.ProductSmtpf, k, string(sid), ev)
	}
	a.touch(s, ev)
	num := 0
	if c := ev.Bytes(ev.Code); len(c) > 1 && c[0] == '#' {
		num, _ = strconv.Atoi(string(c[1:]))
	} else {
		switch string(ev.Bytes(ev.Name)) { // 2.0.x lines carry no number
		case "recipient":
			num = 718
		case "end":
			num = 721
		}
	}
	rc := code3(ev.Field(event.FieldReplyCode))
	text := ev.Field(event.FieldReplyText)
	reply := func() string { return string(ev.Field(event.FieldReplyCode)) + " " + string(text) }
	raw := func() string {
		if n := smtpfReplyNumber(text); n != 0 {
			return "#" + strconv.Itoa(n)
		}
		return "#" + strconv.Itoa(num)
	}
	switch num {
	case 637:
		setStr(&s.rec.ClientIP, ev.Field(event.FieldClientIP))
		setStr(&s.rec.ClientPTR, ev.Field(event.FieldClientPTR))
	case 717:
		setStr(&s.rec.MailFrom, ev.Field(event.FieldSender))
		if rc >= 400 {
			s.setVerdict(smtpfLabel(rc, text), rc, reply(), raw())
		}
	case 718:
		if r := ev.Field(event.FieldRecipient); len(r) > 0 && rc != 0 {
			s.label(s.rcpt(r), smtpfLabel(rc, text), rc, reply(), raw())
		}
	case 719:
		if rc >= 400 {
			s.refuseAccepted(smtpfLabel(rc, text), rc, reply())
		}
	case 720:
		setStr(&s.rec.MessageID, ev.Field(event.FieldMessageID))
		s.rec.Size, _ = strconv.ParseInt(string(ev.Field(event.FieldSize)), 10, 64)
		s.dataCode, s.dataReply = rc, reply()
		if rc >= 400 {
			s.refuseAccepted(smtpfLabel(rc, text), rc, s.dataReply)
			s.rec.Reason = raw()
		}
	case 721:
		setStr(&s.rec.ClientIP, ev.Field(event.FieldClientIP))
		setStr(&s.rec.ClientPTR, ev.Field(event.FieldClientPTR))
		setStr(&s.rec.HELO, ev.Field(event.FieldHelo))
		if f := ev.Field(event.FieldFlags); bytes.Contains(f, []byte("io_error")) {
			s.setVerdict(record.Disconnected, 0, "", "io_error")
		}
		a.end(s, ev.Time)
	default:
		if o, ok := smtpfReplies[num]; ok && o != record.Allowed {
			s.addFlag("#" + strconv.Itoa(num))
			if o == record.Disconnected {
				s.setVerdict(o, 0, "", "#"+strconv.Itoa(num))
			}
		}
	}
	return s
}

// ---- Isode M-Switch: a configurable key token in the event text (default conn=N) ----

func (a *Assembler) isode(hs *hostState, ev *event.Event) *sess {
	text := ev.Field(event.FieldText)
	key := ev.Bytes(ev.SessionKey)
	if bytes.HasPrefix(text, []byte(a.cfg.IsodeKeyPrefix)) {
		end := bytes.IndexByte(text, ' ')
		if end < 0 {
			end = len(text)
		}
		key, text = text[:end], bytes.TrimLeft(text[end:], " ")
	}
	if len(key) == 0 {
		return nil
	}
	name := string(ev.Bytes(ev.Name))
	k := a.key(hs, "isode", key)
	s := a.lookup(k)
	if s != nil && name == "Connection" {
		a.reuse(s)
		s = nil
	}
	if s == nil {
		s = a.create(hs, event.ProductIsode, a.key(hs, "isode", key), string(key), ev)
	}
	a.touch(s, ev)
	switch name {
	case "Connection":
		if ip := bracketed(text); len(ip) > 0 {
			setStr(&s.rec.ClientIP, ip)
		}
	case "ReadPDU":
		cmd := bytes.TrimPrefix(text, []byte("C: "))
		switch {
		case hasPrefixFold(cmd, "EHLO ") || hasPrefixFold(cmd, "HELO "):
			setStr(&s.rec.HELO, bytes.TrimSpace(cmd[5:]))
			s.lastCmd = 'h'
		case hasPrefixFold(cmd, "MAIL FROM:"):
			if v, _, ok := between(cmd, "<", '>'); ok {
				setStr(&s.rec.MailFrom, v)
			}
			s.lastCmd = 'm'
		case hasPrefixFold(cmd, "RCPT TO:"):
			if v, _, ok := between(cmd, "<", '>'); ok {
				s.rcpt(v)
				s.lastCmd = 'r'
			}
		case hasPrefixFold(cmd, "DATA"):
			s.lastCmd = 'd'
		default:
			s.lastCmd = 'o'
		}
	case "WritePDU":
		r := bytes.TrimPrefix(text, []byte("S: "))
		c := code3(r)
		reply := ""
		if c >= 400 || s.lastCmd == 'r' || s.lastCmd == 'D' || s.lastCmd == 'd' && c != 354 {
			reply = string(r)
		}
		switch s.lastCmd {
		case 'r':
			o := record.Allowed
			raw := "RCPT"
			if c >= 400 {
				switch {
				case bytes.Contains(r, []byte(" 5.1.1 ")) || bytes.Contains(r, []byte(" 4.1.1 ")):
					o, raw = replyLabel(c, []byte("unknown user"), record.DeniedUnknownRecipient), string(r[4:min(len(r), 9)])
				case s.evidence != record.OutcomeNone:
					o, raw = s.evidence, s.evReason
				default:
					o = replyLabel(c, r[3:], record.DeniedRecipient)
				}
			}
			if len(s.rec.Recipients) > 0 {
				s.label(s.cur, o, c, reply, raw)
			}
		case 'm':
			if c >= 400 {
				o, raw := replyLabel(c, r[3:], record.DeniedSender), "MAIL"
				if s.evidence != record.OutcomeNone {
					o, raw = s.evidence, s.evReason
				}
				s.setVerdict(o, c, reply, raw)
			}
		case 'd':
			if c == 354 {
				s.lastCmd = 'D'
				return s
			}
			fallthrough
		case 'D':
			s.dataCode, s.dataReply = c, reply
			if c >= 400 {
				o := replyLabel(c, r[3:], record.DeniedContent)
				if s.evidence != record.OutcomeNone {
					o = s.evidence
				}
				s.refuseAccepted(o, c, reply)
			}
		default:
			if c >= 400 {
				o, raw := replyLabel(c, r[3:], record.DeniedOther), "reply"
				if s.evidence != record.OutcomeNone {
					o, raw = s.evidence, s.evReason
				}
				s.setVerdict(o, c, reply, raw)
			}
		}
		s.lastCmd = 0
	case "DNSBLfailed":
		s.evidence, s.evReason = record.DeniedRBL, name
	case "rDNSfailed":
		s.evidence, s.evReason = record.DeniedRDNS, name
	case "SPFfail":
		s.evidence, s.evReason = record.DeniedSPF, name
	case "SPFtemperror", "SPFpermerror":
		s.evidence, s.evReason = record.TempFail, name
	case "BufferTooBig":
		s.evidence, s.evReason = record.DeniedProtocol, name
	case "Timeout":
		s.evidence, s.evReason = record.Timeout, name
		s.setVerdict(record.Timeout, 0, "", name)
	case "Close":
		a.end(s, ev.Time)
	case "SPFpass", "SPFsoftfail", "SPFnone", "SPFneutral":
		s.addFlag("spf=" + name[3:])
	}
	return s
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && bytes.EqualFold(b[:len(p)], []byte(p))
}

// ---- MailEnable: (socket, remote IP); activity rows, debug ME-codes joined by the same pair ----

func (a *Assembler) mailenable(hs *hostState, ev *event.Event) *sess {
	var sock, ip []byte
	if ev.Dialect == event.DialectMailEnableDebug {
		// "SMTP-IN <message file> <socket> <ip> " before the code (our documented layout)
		f := bytes.Fields(ev.Field(event.FieldProcess))
		if len(f) < 2 {
			return nil
		}
		sock, ip = f[len(f)-2], f[len(f)-1]
	} else {
		sock, ip = ev.Field(event.FieldPID), ev.Field(event.FieldClientIP)
	}
	if len(sock) == 0 || len(ip) == 0 {
		return nil
	}
	a.kb2 = append(append(append(a.kb2[:0], sock...), '/'), ip...)
	kb := a.kb2
	k := a.key(hs, "mailenable", kb)
	s := a.lookup(k)
	cmd := string(ev.Field(event.FieldCommand))
	rc := code3(ev.Field(event.FieldReplyCode))
	start := ev.Dialect == event.DialectMailEnableActivity && (cmd == "EHLO" || cmd == "HELO" || cmd == "" && rc != 0)
	if s != nil && start && (s.ended || ev.Time.Sub(s.lastSeen) > a.cfg.PidReuseGap) {
		a.reuse(s)
		s = nil
	}
	if s == nil {
		s = a.create(hs, event.ProductMailEnable, a.key(hs, "mailenable", kb), string(kb), ev)
		s.rec.ClientIP = string(ip)
	}
	a.touch(s, ev)
	if ev.Dialect == event.DialectMailEnableDebug {
		code := string(ev.Bytes(ev.Code))
		s.addFlag(code)
		switch code {
		case "ME-I0073":
			s.evidence, s.evReason = record.DeniedBlacklist, code
		case "ME-I0111", "ME-E0109", "ME-I0112":
			s.evidence, s.evReason = record.DeniedRelay, code
		}
		return s
	}
	text := ev.Field(event.FieldReplyText)
	replyB := ev.Field(event.FieldReplyCode)
	if ev.Fields[event.FieldReplyText].Len > 0 {
		// code and text are adjacent in the row ("250 text" or "250-text")
		replyB = ev.Buf[ev.Fields[event.FieldReplyCode].Off : ev.Fields[event.FieldReplyText].Off+ev.Fields[event.FieldReplyText].Len]
	}
	reply := ""
	if cmd != "EHLO" && cmd != "HELO" && cmd != "QUIT" && !(cmd == "MAIL" && rc < 400) {
		reply = string(replyB)
	}
	args := ev.Field(event.FieldText)
	if u := ev.Field(event.FieldAuthUser); len(u) > 0 && cmd != "AUTH" {
		setStr(&s.rec.AuthUser, u)
	}
	switch cmd {
	case "":
		if rc >= 400 {
			o := replyLabel(rc, text, record.DeniedOther)
			s.setVerdict(o, rc, reply, "CONNECT")
			a.end(s, ev.Time)
		}
	case "EHLO", "HELO":
		if len(args) > 5 {
			setStr(&s.rec.HELO, args[5:])
		}
	case "AUTH":
		switch {
		case rc == 235:
			setStr(&s.rec.AuthUser, ev.Field(event.FieldAuthUser))
		case rc >= 500:
			s.setVerdict(record.AuthFailed, rc, reply, "AUTH")
		}
	case "MAIL":
		if v, _, ok := between(args, "<", '>'); ok {
			setStr(&s.rec.MailFrom, v)
		}
		if rc >= 400 {
			s.setVerdict(replyLabel(rc, text, record.DeniedSender), rc, reply, "MAIL")
		}
	case "RCPT":
		v, _, ok := between(args, "<", '>')
		if !ok {
			return s
		}
		o := replyLabel(rc, text, record.DeniedOther)
		if rc == 503 && bytes.Contains(text, []byte("requires authentication")) || rc >= 500 && s.evidence == record.DeniedRelay {
			o = record.DeniedRelay // FORMATS.md §5.3: the 503 means relaying was refused
		}
		s.label(s.rcpt(v), o, rc, reply, "RCPT")
	case "DATA":
		if rc == 354 {
			return s
		}
		s.dataCode, s.dataReply = rc, reply
		if rc >= 400 {
			s.refuseAccepted(replyLabel(rc, text, record.DeniedOther), rc, reply)
			s.rec.Reason = "DATA"
		}
	case "QUIT":
		a.end(s, ev.Time)
	}
	return s
}

// ---- IMail: SMTPD(connid); antispam lines by connection id; spool name links the SMTP- worker ----

func (a *Assembler) imail(hs *hostState, ev *event.Event) *sess {
	key := ev.Bytes(ev.SessionKey)
	id := bracketedParen(key)
	if len(id) == 0 {
		return nil
	}
	code := string(ev.Bytes(ev.Code))
	if bytes.HasPrefix(key, []byte("SMTP-")) {
		return a.imailWorker(hs, ev, id, code)
	}
	k := a.key(hs, "imail", id)
	s := a.lookup(k)
	// a second connect of the id is a new connection; antispam lines of the same minute may
	// come before the connect line (another file), so they do not count as a start
	if s != nil && code == "CONNECT" && s.started {
		a.reuse(s)
		s = nil
	}
	if s == nil {
		s = a.create(hs, event.ProductIMail, a.key(hs, "imail", id), string(id), ev)
	}
	a.touch(s, ev)
	switch code {
	case "CONNECT":
		s.started = true
		if first := (record.Position{Source: ev.Pos.File, Offset: ev.Pos.Offset}); s.rec.FirstPos != first && s.rec.FirstPos.Source != ev.Pos.File {
			// the connect line is the session's first line in its own log
			s.rec.FirstPos = first
			s.low, s.high = ev.Pos.Offset, ev.Pos.Offset
			s.id = record.NewSessionID(hs.name, s.rec.Product, s.rec.SessionKey, first)
		}
		setStr(&s.rec.ClientIP, ev.Field(event.FieldClientIP))
	case "EHLO", "HELO":
		setStr(&s.rec.HELO, ev.Field(event.FieldHelo))
	case "MAIL_FROM":
		setStr(&s.rec.MailFrom, ev.Field(event.FieldSender))
	case "RCPT_TO":
		if r := ev.Field(event.FieldRecipient); len(r) > 0 {
			s.rcpt(r) // IMail logs no reply: the verdict or the spool line decides it
		}
	case "MESSAGE_ACCEPTED":
		spool := ev.Field(event.FieldMessageID)
		if i := bytes.LastIndexByte(spool, '\\'); i >= 0 {
			spool = spool[i+1:]
		}
		if len(spool) > 1 {
			s.spool = string(spool[1:]) // drop the D/Q prefix: the worker names Q<same>
			if hs.imailSpool == nil {
				hs.imailSpool, hs.imailWorker = map[string]*sess{}, map[string]*sess{}
			}
			hs.imailSpool[s.spool] = s
		}
		setStr(&s.rec.MessageID, ev.Field(event.FieldMessageID))
		s.rec.Size, _ = strconv.ParseInt(string(ev.Field(event.FieldSize)), 10, 64)
		s.msgSeen = true
		for i := range s.rec.Recipients {
			if s.rec.Recipients[i].Outcome == record.OutcomeNone {
				s.label(i, record.Allowed, 250, "", "spooled")
			}
		}
	case "BLACKLIST_FOUND":
		s.setVerdict(record.DeniedRBL, 0, "", code)
	case "VALIDATION_HELO_ACTIVE_FAILED", "VALIDATION_HELO_MISSING":
		s.setVerdict(record.DeniedHELO, 0, "", code)
	case "VALIDATION_MAILFROM_NO_MX", "VALIDATION_MAILFROM_CONNECT_FAILED", "VALIDATION_MAILFROM_COMM_FAILED",
		"VALIDATION_MAILFROM_SMTP_ERROR", "VALIDATION_MAILFROM_NO_USER", "VALIDATION_MAILFROM_MISSING":
		s.setVerdict(record.DeniedSender, 0, "", code)
	case "VALIDATION_REVDNS_NO_RECORD", "VALIDATION_REVDNS_FAILED":
		s.setVerdict(record.DeniedRDNS, 0, "", code)
	case "VALIDATION_HELO_DNS_FAILED", "VALIDATION_REVDNS_DNS_FAILED", "BLACKLIST_FAILED_CONNECT":
		s.addFlag(code)
	case "MESSAGE_FAILED_TRUSTED":
		s.setVerdict(record.DeniedRBL, 0, "", code)
		a.end(s, ev.Time)
	case "MESSAGE_FAILED_CHECKS", "PREMIUM_SPAM":
		s.setVerdict(record.DeniedSpamScore, 0, "", code)
		a.end(s, ev.Time)
	}
	return s
}

func bracketedParen(b []byte) []byte {
	i := bytes.IndexByte(b, '(')
	j := bytes.LastIndexByte(b, ')')
	if i < 0 || j <= i {
		return nil
	}
	return b[i+1 : j]
}

func (a *Assembler) imailWorker(hs *hostState, ev *event.Event, id []byte, code string) *sess {
	var s *sess
	switch code {
	case "DELIVERY_PROCESSING":
		spool := ev.Field(event.FieldMessageID)
		if i := bytes.LastIndexByte(spool, '\\'); i >= 0 {
			spool = spool[i+1:]
		}
		if len(spool) > 1 {
			s = hs.imailSpool[string(spool[1:])]
		}
		if s != nil {
			hs.imailWorker[string(id)] = s
			s.deliveries = append(s.deliveries, string(id))
		}
	case "DELIVERY_FINISHED":
		// the spool name, not the worker id: one worker may interleave several messages
		spool := ev.Field(event.FieldMessageID)
		if i := bytes.LastIndexByte(spool, '\\'); i >= 0 {
			spool = spool[i+1:]
		}
		if len(spool) > 1 {
			s = hs.imailSpool[string(spool[1:])]
		}
		if s == nil {
			s = hs.imailWorker[string(id)]
		}
	default:
		s = hs.imailWorker[string(id)]
	}
	if s == nil {
		a.stats.Orphans++
		return &orphan
	}
	a.touch(s, ev)
	if code == "DELIVERY_FINISHED" {
		delete(hs.imailWorker, string(id))
		if st := ev.Field(event.FieldStatus); string(st) == "1" {
			s.rec.Delivery = record.DeliveryDelivered
		} else {
			s.addFlag("imail_status=" + string(st)) // other status values are undocumented
		}
		a.end(s, ev.Time)
	}
	return s
}

var _ = time.Second
