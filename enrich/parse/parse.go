package parse

import (
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
)

// Parse parses one line (without its terminator) into ev, which it resets first; src says
// where the line came from and may be nil. ev owns a copy of the line afterwards, so the
// caller may reuse line at once. A line nobody recognises gives ev.Parsed == false and
// ev.Reason; Parse never fails otherwise and never panics on any input.
func (p *Parser) Parse(ev *event.Event, line []byte, src *event.Source) {
	ev.SetRaw(line)
	pinned := event.DialectAuto
	if src != nil {
		ev.Pos = event.Position{File: src.File, Line: src.Line, Offset: src.Offset}
		pinned = src.Dialect
	}
	b := ev.Buf[:ev.RawLen]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if len(b) == 0 {
		p.fail(ev, src, event.DialectAuto, ReasonEmpty)
		return
	}
	var h header
	d, body, reason := p.route(b, pinned, &h)
	if reason != "" || d == event.DialectAuto {
		if reason == "" {
			reason = ReasonNoDialect
		}
		ev.Host = h.host
		p.fail(ev, src, event.DialectAuto, reason)
		return
	}
	ev.Dialect, ev.Product = d, d.Product()
	ev.Host = h.host

	var capsArr [maxCaps]span
	var matched *compiled
	msg := b[body:]
	tsOff := 0
	if d == event.DialectQmail {
		tsOff = qmailTimestamp(msg, &h)
		msg = msg[tsOff:]
	}
	dp := &p.dialects[d]
	var groups [maxGroups]groupState
	for _, cp := range dp.pats {
		caps := capsArr[:len(cp.roles)]
		if cp.slow {
			if !p.slowMatch(cp, msg, caps) {
				continue
			}
		} else if cp.group >= 0 && !p.noPrefix {
			if !dp.matchGrouped(&groups, cp, msg, caps) {
				continue
			}
		} else if !cp.match(msg, caps) {
			continue
		}
		matched = cp
		break
	}
	if matched == nil {
		p.fail(ev, src, d, ReasonNoPattern)
		return
	}
	base := uint32(body + tsOff)
	var ts, sev, eventID, session, name event.Span
	for i, r := range matched.roles {
		c := capsArr[i]
		if c.start < 0 || c.end <= c.start {
			continue
		}
		s := event.Span{Off: base + uint32(c.start), Len: uint32(c.end - c.start)}
		switch r {
		case roleField:
			ev.Fields[matched.fields[i]] = s
		case roleTS:
			ts = s
		case roleHost:
			ev.Host = s
		case roleCode:
			ev.Code = s
		case roleName:
			name = s
		case roleSeverity:
			sev = s
		case roleEventID:
			eventID = s
		case roleSession:
			session = s
		}
	}
	if ev.Host.Len == 0 && src != nil && src.Host != "" {
		ev.Host = ev.AppendDerivedString(src.Host)
	}
	if h.pri >= 0 {
		ev.Severity = event.SeverityFromSyslog(h.pri & 7)
	}
	ok := true
	if h.hasTime {
		ev.Time, ok = p.headerTime(&h, src)
	}
	switch d {
	case event.DialectSpamdyke:
		p.finishSpamdyke(ev, &h)
	case event.DialectQmail:
		p.finishQmail(ev, &h, matched.Name)
	case event.DialectSmtpf:
		p.finishSmtpf(ev, session, matched.Name)
	case event.DialectICDSoftSMTP, event.DialectICDSoftDelivery:
		ev.Time, ok = p.isoTime(ev.Bytes(ts), src)
		p.finishICDSoft(ev)
	case event.DialectIsode:
		ev.Time, ok = p.isoTime(ev.Bytes(ts), src)
		p.finishIsode(ev, name, eventID, sev)
	case event.DialectMailEnableActivity, event.DialectMailEnableDebug:
		if ts.Len > 0 {
			ev.Time, ok = p.usTime(ev.Bytes(ts), src)
		} else {
			ev.Time, ok = time.Time{}, true
		}
		p.finishMailEnable(ev, d)
	case event.DialectIMail:
		ev.Time, ok = p.imailTime(ev.Bytes(ts), src)
		p.finishIMail(ev, session, matched.Name)
	}
	if !ok {
		ev.Parsed = false
		ev.Reason = ReasonBadTime
		return
	}
	replyDetails(ev)
	ev.Parsed = true
}

// replyDetails derives what every product's reply text shares: an RFC 3463 enhanced status
// code at the start of the reply text ("5.7.1 ..."), and for spamdyke the reply code at the
// start of an underscored reason ("554_Refused..." , "250_ok_...").
func replyDetails(ev *event.Event) {
	if s := ev.Fields[event.FieldReplyText]; s.Len >= 6 && ev.Fields[event.FieldEnhancedCode].Len == 0 {
		t := ev.Bytes(s)
		if (t[0] == '2' || t[0] == '4' || t[0] == '5') && t[1] == '.' {
			k := 2
			dots := 1
			for k < len(t) && (isDigit(t[k]) || t[k] == '.') {
				if t[k] == '.' {
					dots++
				}
				k++
			}
			if dots == 2 && t[k-1] != '.' && (k == len(t) || t[k] == ' ') {
				ev.Fields[event.FieldEnhancedCode] = event.Span{Off: s.Off, Len: uint32(k)}
			}
		}
	}
	if ev.Dialect == event.DialectSpamdyke && ev.Fields[event.FieldReplyCode].Len == 0 {
		if s := ev.Fields[event.FieldReason]; s.Len >= 4 {
			t := ev.Bytes(s)
			if t[0] >= '2' && t[0] <= '5' && isDigit(t[1]) && isDigit(t[2]) && t[3] == '_' {
				ev.Fields[event.FieldReplyCode] = event.Span{Off: s.Off, Len: 3}
			}
		}
	}
}

// ParseAppend parses line into the next element of dst (reusing its buffer) and returns
// the extended slice: the STYLE rule 6 form for callers that batch events.
func (p *Parser) ParseAppend(dst []event.Event, line []byte, src *event.Source) []event.Event {
	if len(dst) < cap(dst) {
		dst = dst[:len(dst)+1]
	} else {
		dst = append(dst, event.Event{})
	}
	p.Parse(&dst[len(dst)-1], line, src)
	return dst
}

func (p *Parser) fail(ev *event.Event, src *event.Source, d event.Dialect, reason string) {
	ev.Parsed = false
	ev.Reason = reason
	ev.Dialect = d
	ev.Product = d.Product()
	if ev.Host.Len == 0 && src != nil && src.Host != "" {
		ev.Host = ev.AppendDerivedString(src.Host)
	}
}

// slowMatch runs a pattern that needs the regex engine through vjeantet/grok.
func (p *Parser) slowMatch(cp *compiled, msg []byte, caps []span) bool {
	m, err := p.comp.g.Parse(cp.slowKey, string(msg))
	if err != nil || len(m) == 0 {
		return false
	}
	// grok returns values, not offsets: find each value in the line, left to right.
	s := string(msg)
	from := 0
	for i, n := range cp.Names {
		caps[i] = span{-1, -1}
		v, ok := m[n]
		if !ok || v == "" {
			continue
		}
		k := indexFrom(s, v, from)
		if k < 0 {
			k = indexFrom(s, v, 0)
		}
		if k >= 0 {
			caps[i] = span{int32(k), int32(k + len(v))}
			from = k
		}
	}
	return true
}

func indexFrom(s, v string, from int) int {
	if from > len(s) {
		return -1
	}
	for i := from; i+len(v) <= len(s); i++ {
		if s[i:i+len(v)] == v {
			return i
		}
	}
	return -1
}
