package parse

import (
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
)

// Per-dialect finishing: catalogue look-ups, session keys, severities. Static names are
// copied into the event's buffer (a few bytes, no allocation in steady state).

var (
	progSpamdyke = []byte("spamdyke")
	progQmail    = []byte("qmail")
)

func setName(ev *event.Event, s string) {
	if s != "" {
		ev.Name = ev.AppendDerivedString(s)
	}
}

func setSevRaw(ev *event.Event, s string) {
	if s != "" {
		ev.SeverityRaw = ev.AppendDerivedString(s)
	}
}

// sessionKey builds "host prog[pid]".
func sessionKey(ev *event.Event, prog []byte, pid event.Span) {
	if pid.Len == 0 {
		return
	}
	off := len(ev.Buf)
	ev.Buf = append(ev.Buf, ev.Bytes(ev.Host)...)
	ev.Buf = append(ev.Buf, ' ')
	ev.Buf = append(ev.Buf, prog...)
	ev.Buf = append(ev.Buf, '[')
	ev.Buf = append(ev.Buf, ev.Buf[pid.Off:pid.Off+pid.Len]...)
	ev.Buf = append(ev.Buf, ']')
	ev.SessionKey = event.Span{Off: uint32(off), Len: uint32(len(ev.Buf) - off)}
}

func (p *Parser) finishSpamdyke(ev *event.Event, h *header) {
	code := ev.Bytes(ev.Code)
	var sev event.Severity
	switch {
	case string(code) == "ERROR":
		sev = event.SeverityError
		setSevRaw(ev, "ERROR")
	case string(code) == "DEBUG" || string(code) == "EXCESSIVE":
		sev = event.SeverityDebug
		ev.SeverityRaw = ev.Code
	case len(code) > 7 && string(code[:7]) == "FILTER_":
		sev = event.SeverityInfo
		setName(ev, "filter")
	default:
		sev = event.SeverityInfo
		if p.spamdykeKnown[string(code)] {
			ev.Name = ev.Code
		}
	}
	if ev.Severity == event.SeverityUnset {
		ev.Severity = sev
	}
	ev.Fields[event.FieldPID] = h.pid
	sessionKey(ev, progSpamdyke, h.pid)
}

// qmailCodes gives each qmail pattern its code and name.
var qmailCodes = map[string][2]string{
	"QMAIL_L10_NEWMSG":        {"new_msg", "message_queued"},
	"QMAIL_L11_INFOMSG":       {"info_msg", "message_info"},
	"QMAIL_L12_INFOMSG_NULL":  {"info_msg", "message_info"},
	"QMAIL_L13_STARTING":      {"starting_delivery", "delivery_start"},
	"QMAIL_L14_DELIVERY":      {"delivery", "delivery_result"},
	"QMAIL_L15_ENDMSG":        {"end_msg", "message_done"},
	"QMAIL_L16_BOUNCE":        {"bounce_msg", "message_bounced"},
	"QMAIL_L17_TRIPLE":        {"triple_bounce", "triple_bounce"},
	"QMAIL_L18_STATUS":        {"status", "queue_status"},
	"QMAIL_L19_WARNING":       {"warning", "warning"},
	"QMAIL_L20_ALERT":         {"alert", "alert"},
	"QMAIL_L30_RBLSMTPD":      {"rblsmtpd", "dnsbl_reject"},
	"QMAIL_L31_RBLSMTPD_LIST": {"rblsmtpd", "dnsbl_reject"},
	"QMAIL_L50_SMTPD_PID":     {"smtpd_pid", "connection"},
	"QMAIL_L51_SMTPD_OK":      {"smtpd_ok", "accepted"},
	"QMAIL_L52_SMTPD_END":     {"smtpd_end", "connection_end"},
	"QMAIL_L59_TEXT":          {"text", "text"},
}

func (p *Parser) finishQmail(ev *event.Event, h *header, pat string) {
	if ev.Code.Len == 0 {
		if c, ok := qmailCodes[pat]; ok {
			ev.Code = ev.AppendDerivedString(c[0])
			setName(ev, c[1])
		}
	} else {
		setName(ev, "chkuser")
	}
	sev := event.SeverityInfo
	switch pat {
	case "QMAIL_L19_WARNING":
		sev = event.SeverityWarning
	case "QMAIL_L20_ALERT":
		sev = event.SeverityAlert
	case "QMAIL_L14_DELIVERY":
		switch string(ev.Field(event.FieldDeliveryResult)) {
		case "deferral":
			sev = event.SeverityNotice
		case "failure":
			sev = event.SeverityWarning
		}
	}
	if ev.Severity == event.SeverityUnset {
		ev.Severity = sev
	}
	if ev.Fields[event.FieldPID].Len == 0 {
		ev.Fields[event.FieldPID] = h.pid
	}
	prog := progQmail
	if h.prog.Len > 0 {
		prog = ev.Bytes(h.prog)
	}
	switch {
	case ev.Fields[event.FieldQueueID].Len > 0:
		ev.SessionKey = keyOf(ev, "msg ", ev.Fields[event.FieldQueueID])
	case ev.Fields[event.FieldDeliveryNum].Len > 0:
		ev.SessionKey = keyOf(ev, "delivery ", ev.Fields[event.FieldDeliveryNum])
	case h.pid.Len > 0:
		sessionKey(ev, prog, h.pid)
	}
}

// keyOf builds "host qmail <kind><id>".
func keyOf(ev *event.Event, kind string, id event.Span) event.Span {
	off := len(ev.Buf)
	ev.Buf = append(ev.Buf, ev.Bytes(ev.Host)...)
	ev.Buf = append(ev.Buf, " qmail "...)
	ev.Buf = append(ev.Buf, kind...)
	ev.Buf = append(ev.Buf, ev.Buf[id.Off:id.Off+id.Len]...)
	return event.Span{Off: uint32(off), Len: uint32(len(ev.Buf) - off)}
}

// qmailTimestamp strips a leading "@tai64n " or "unixtime.frac " from a qmail message and
// sets h's absolute time from it; it returns the bytes consumed.
func qmailTimestamp(msg []byte, h *header) int {
	if len(msg) > 25 && msg[0] == '@' && msg[25] == ' ' {
		var sec, nano uint64
		for i := 1; i < 17; i++ {
			v, ok := hexVal(msg[i])
			if !ok {
				return 0
			}
			sec = sec<<4 | uint64(v)
		}
		for i := 17; i < 25; i++ {
			v, ok := hexVal(msg[i])
			if !ok {
				return 0
			}
			nano = nano<<4 | uint64(v)
		}
		const tai64Base = 1 << 62
		if sec < tai64Base || sec-tai64Base > 1<<40 || nano >= 1e9 {
			return 0
		}
		// TAI runs 10 s ahead of UTC at the epoch; leap seconds since are ignored (~27 s).
		setAbs(h, time.Unix(int64(sec-tai64Base)-10, int64(nano)).UTC())
		return 26
	}
	k := 0
	for k < len(msg) && isDigit(msg[k]) {
		k++
	}
	if k < 9 || k > 11 || k >= len(msg) || msg[k] != '.' {
		return 0
	}
	secs := int64(num(msg, 0, k))
	j := k + 1
	nsec, scale := 0, 100000000
	for j < len(msg) && isDigit(msg[j]) {
		nsec += int(msg[j]-'0') * scale
		scale /= 10
		j++
	}
	if j >= len(msg) || msg[j] != ' ' {
		return 0
	}
	setAbs(h, time.Unix(secs, int64(nsec)).UTC())
	return j + 1
}

func setAbs(h *header, t time.Time) {
	h.hasTime, h.hasYear, h.zoned, h.offsetSec = true, true, true, 0
	h.year, h.month, h.day = t.Year(), int(t.Month()), t.Day()
	h.hh, h.mm, h.ss, h.nsec = t.Hour(), t.Minute(), t.Second(), t.Nanosecond()
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (p *Parser) finishSmtpf(ev *event.Event, session event.Span, pat string) {
	ev.SessionKey = session
	code := ev.Bytes(ev.Code)
	sev := event.SeverityInfo
	if len(code) > 1 {
		n := num(code, 1, len(code)-1)
		if e, ok := p.smtpfByNum[n]; ok {
			setName(ev, e.Name)
			setSevRaw(ev, e.Sev)
			sev = smtpfSeverity(e.Sev)
		}
	} else {
		switch pat {
		case "SMTPF_L40_V20_RCPT":
			setName(ev, "recipient")
		case "SMTPF_L41_V20_END":
			setName(ev, "end")
		case "SMTPF_L42_V20_REPLY":
			setName(ev, "reply")
		case "SMTPF_L43_V20_CMD":
			setName(ev, "command")
		case "SMTPF_L44_V20_ROUTE":
			setName(ev, "route")
		default:
			setName(ev, "text")
		}
	}
	if ev.Severity == event.SeverityUnset {
		ev.Severity = sev
	}
}

var icdsoftNames = map[string]string{
	"from": "mail_from", "to": "rcpt_to", "resp": "reply", "check": "recipient_check",
	"size": "message_size", "init": "delivery_init", "try": "delivery_try", "result": "delivery_result",
}

func (p *Parser) finishICDSoft(ev *event.Event) {
	setName(ev, icdsoftNames[string(ev.Bytes(ev.Code))])
	ev.Severity = event.SeverityInfo
	if ev.Dialect == event.DialectICDSoftDelivery && ev.Fields[event.FieldDeliveryNum].Len > 0 {
		off := len(ev.Buf)
		ev.Buf = append(ev.Buf, ev.Bytes(ev.Host)...)
		ev.Buf = append(ev.Buf, " delivery "...)
		d := ev.Fields[event.FieldDeliveryNum]
		ev.Buf = append(ev.Buf, ev.Buf[d.Off:d.Off+d.Len]...)
		ev.SessionKey = event.Span{Off: uint32(off), Len: uint32(len(ev.Buf) - off)}
		if string(ev.Field(event.FieldDeliveryResult)) == "failure" {
			ev.Severity = event.SeverityWarning
		}
	}
	if c := ev.Field(event.FieldReplyCode); len(c) > 0 && c[0] >= '4' {
		ev.Severity = event.SeverityNotice
	}
}

func (p *Parser) finishIsode(ev *event.Event, name, eventID, sev event.Span) {
	ev.Code = eventID
	ev.SeverityRaw = sev
	ev.Severity = isodeSeverity(ev.Bytes(sev))
	if e, ok := p.isodeByName[string(ev.Bytes(name))]; ok {
		ev.Name = name
		if ev.Severity == event.SeverityUnset {
			ev.Severity = isodeSeverity([]byte(e.Sev))
		}
	} else {
		ev.Name = name
	}
	pid := ev.Fields[event.FieldPID]
	proc := ev.Fields[event.FieldProcess]
	if proc.Len > 0 {
		off := len(ev.Buf)
		ev.Buf = append(ev.Buf, ev.Bytes(ev.Host)...)
		ev.Buf = append(ev.Buf, ' ')
		ev.Buf = append(ev.Buf, ev.Buf[proc.Off:proc.Off+proc.Len]...)
		if pid.Len > 0 {
			ev.Buf = append(ev.Buf, '[')
			ev.Buf = append(ev.Buf, ev.Buf[pid.Off:pid.Off+pid.Len]...)
			ev.Buf = append(ev.Buf, ']')
		}
		ev.SessionKey = event.Span{Off: uint32(off), Len: uint32(len(ev.Buf) - off)}
	}
}

func (p *Parser) finishMailEnable(ev *event.Event, d event.Dialect) {
	if d == event.DialectMailEnableDebug {
		code := ev.Bytes(ev.Code)
		setName(ev, p.mailEnable[string(code)])
		ev.Severity = event.SeverityInfo
		if len(code) > 3 {
			ev.SeverityRaw = event.Span{Off: ev.Code.Off + 3, Len: 1}
			switch code[3] {
			case 'E':
				ev.Severity = event.SeverityError
			case 'W':
				ev.Severity = event.SeverityWarning
			}
		}
		return
	}
	ev.Code = ev.Fields[event.FieldCommand]
	setName(ev, "smtp_command")
	ev.Severity = event.SeverityInfo
	if c := ev.Field(event.FieldReplyCode); len(c) > 0 && c[0] >= '4' {
		ev.Severity = event.SeverityNotice
	}
	sock, ip := ev.Fields[event.FieldPID], ev.Fields[event.FieldClientIP]
	if sock.Len > 0 {
		off := len(ev.Buf)
		ev.Buf = append(ev.Buf, ev.Bytes(ev.Host)...)
		ev.Buf = append(ev.Buf, ' ')
		ev.Buf = append(ev.Buf, ev.Buf[sock.Off:sock.Off+sock.Len]...)
		ev.Buf = append(ev.Buf, '/')
		ev.Buf = append(ev.Buf, ev.Buf[ip.Off:ip.Off+ip.Len]...)
		ev.SessionKey = event.Span{Off: uint32(off), Len: uint32(len(ev.Buf) - off)}
	}
}

// imailPatternCodes: IMail messages whose variable part comes before the fixed text.
var imailPatternCodes = map[string]string{
	"IMAIL_L15_SPOOL":             "MESSAGE_ACCEPTED",
	"IMAIL_L21_DELIVER":           "DELIVERY",
	"IMAIL_L30_BL_FOUND":          "BLACKLIST_FOUND",
	"IMAIL_L31_BL_NOTFOUND":       "BLACKLIST_NOT_FOUND",
	"IMAIL_L41_VAL_HELO_ACTIVE":   "VALIDATION_HELO_ACTIVE_FAILED",
	"IMAIL_L45_VAL_NOUSER":        "VALIDATION_MAILFROM_NO_USER",
	"IMAIL_L48_REVDNS_ADDR":       "VALIDATION_REVDNS_NO_RECORD",
	"IMAIL_L60_MSGFAILED_TRUSTED": "MESSAGE_FAILED_TRUSTED",
	"IMAIL_L61_MSGFAILED_N":       "MESSAGE_FAILED_CHECKS",
}

var imailSev = map[string]event.Severity{
	"MESSAGE_ACCEPTED": event.SeverityInfo, "DELIVERY": event.SeverityInfo,
	"BLACKLIST_FOUND": event.SeverityNotice, "BLACKLIST_NOT_FOUND": event.SeverityDebug,
	"VALIDATION_HELO_ACTIVE_FAILED": event.SeverityNotice, "VALIDATION_MAILFROM_NO_USER": event.SeverityNotice,
	"VALIDATION_REVDNS_NO_RECORD": event.SeverityNotice, "MESSAGE_FAILED_TRUSTED": event.SeverityNotice,
	"MESSAGE_FAILED_CHECKS": event.SeverityNotice,
}

func (p *Parser) finishIMail(ev *event.Event, session event.Span, pat string) {
	// session key: "APP(CONNID)" as written, e.g. SMTPD(00180250)
	proc := ev.Fields[event.FieldProcess]
	if proc.Len > 0 && session.Len > 0 {
		ev.SessionKey = event.Span{Off: proc.Off, Len: session.Off + session.Len + 1 - proc.Off}
	}
	code, sev := imailPatternCodes[pat], event.SeverityUnset
	if code != "" {
		sev = imailSev[code]
	} else {
		// text after "APP(CONNID) " and an optional "[ip] "
		t := ev.Raw()[session.Off+session.Len+2:]
		if len(t) > 0 && t[0] == '[' {
			for i, c := range t {
				if c == ' ' {
					t = t[i+1:]
					break
				}
			}
		}
		code, sev = imailCode(t)
	}
	if code == "" {
		code = "TEXT"
	}
	ev.Code = ev.AppendDerivedString(code)
	ev.Name = ev.Code
	if sev == event.SeverityUnset {
		sev = event.SeverityInfo
	}
	ev.Severity = sev
}

// isoTime reads "YYYY-MM-DD HH:MM:SS[.frac]" in the source's zone.
func (p *Parser) isoTime(b []byte, src *event.Source) (time.Time, bool) {
	if len(b) < 19 {
		return time.Time{}, false
	}
	y, mo, d, hh, mm, ss := num(b, 0, 4), num(b, 5, 2), num(b, 8, 2), num(b, 11, 2), num(b, 14, 2), num(b, 17, 2)
	nsec := 0
	if len(b) > 19 {
		if b[19] != '.' && b[19] != ',' {
			return time.Time{}, false
		}
		scale := 100000000
		for _, c := range b[20:] {
			if !isDigit(c) {
				return time.Time{}, false
			}
			nsec += int(c-'0') * scale
			scale /= 10
		}
	}
	if !validDate(y, mo, d, hh, mm, ss) {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, hh, mm, ss, nsec, p.loc(src)), true
}

// usTime reads MailEnable's "MM/DD/YY HH:MM:SS" (20YY).
func (p *Parser) usTime(b []byte, src *event.Source) (time.Time, bool) {
	if len(b) != 17 {
		return time.Time{}, false
	}
	mo, d, y, hh, mm, ss := num(b, 0, 2), num(b, 3, 2), num(b, 6, 2), num(b, 9, 2), num(b, 12, 2), num(b, 15, 2)
	if y < 0 || !validDate(2000+y, mo, d, hh, mm, ss) {
		return time.Time{}, false
	}
	return time.Date(2000+y, time.Month(mo), d, hh, mm, ss, 0, p.loc(src)), true
}

// imailTime reads IMail's "MM:DD HH:MM" (no year, no seconds).
func (p *Parser) imailTime(b []byte, src *event.Source) (time.Time, bool) {
	if len(b) != 11 {
		return time.Time{}, false
	}
	mo, d, hh, mm := num(b, 0, 2), num(b, 3, 2), num(b, 6, 2), num(b, 9, 2)
	y := p.yearFor(src, mo, d)
	if !validDate(y, mo, d, hh, mm, 0) {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, hh, mm, 0, 0, p.loc(src)), true
}
