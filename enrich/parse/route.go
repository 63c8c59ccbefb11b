package parse

import (
	"bytes"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
)

// header is what the router learned from a syslog wrapper.
type header struct {
	pri              int // -1: none
	hasTime, hasYear bool
	year, month, day int
	hh, mm, ss, nsec int
	zoned            bool // RFC 5424 time with its own offset
	offsetSec        int
	host, prog, pid  event.Span
}

// programs maps syslog program names to their dialect.
var programs = map[string]event.Dialect{
	"spamdyke":     event.DialectSpamdyke,
	"smtpf":        event.DialectSmtpf,
	"qmail":        event.DialectQmail,
	"qmail-send":   event.DialectQmail,
	"qmail-smtpd":  event.DialectQmail,
	"qmail-queue":  event.DialectQmail,
	"qmail-remote": event.DialectQmail,
	"qmail-local":  event.DialectQmail,
	"qmail-lspawn": event.DialectQmail,
	"qmail-rspawn": event.DialectQmail,
	"qmail-clean":  event.DialectQmail,
	"rblsmtpd":     event.DialectQmail,
	"chkuser":      event.DialectQmail,
	"simscan":      event.DialectQmail,
	"isode":        event.DialectIsode,
}

// syslogDialect reports whether d's lines are syslog messages (the router strips the header).
func syslogDialect(d event.Dialect) bool {
	return d == event.DialectSpamdyke || d == event.DialectSmtpf || d == event.DialectQmail
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func monthOf(b []byte) int {
	if len(b) < 3 {
		return 0
	}
	for i, m := range months {
		if b[0] == m[0] && b[1] == m[1] && b[2] == m[2] {
			return i + 1
		}
	}
	return 0
}

// num parses exactly n ASCII digits at b[i:]; -1 if not digits.
func num(b []byte, i, n int) int {
	if i < 0 || i+n > len(b) {
		return -1
	}
	v := 0
	for k := i; k < i+n; k++ {
		c := b[k]
		if c < '0' || c > '9' {
			return -1
		}
		v = v*10 + int(c-'0')
	}
	return v
}

// route picks the dialect of b and the offset of the text its patterns match.
func (p *Parser) route(b []byte, pinned event.Dialect, h *header) (event.Dialect, int, string) {
	h.pri = -1
	pos := 0
	if len(b) > 2 && b[0] == '<' {
		k := 1
		v := 0
		for k < len(b) && k < 5 && isDigit(b[k]) {
			v = v*10 + int(b[k]-'0')
			k++
		}
		if k > 1 && k < len(b) && b[k] == '>' && v < 192 {
			h.pri = v
			pos = k + 1
		}
	}
	switch {
	case pos > 0 && len(b) > pos+1 && b[pos] == '1' && b[pos+1] == ' ':
		return p.route5424(b, pos+2, pinned, h)
	case monthOf(b[pos:]) > 0 && len(b) > pos+15:
		if np, ok := parse3164Time(b, pos, h); ok {
			return p.routeTag(b, np, pinned, h, true)
		}
	}
	if pinned != event.DialectAuto && !syslogDialect(pinned) {
		return pinned, pos, ""
	}
	if pos == 0 {
		if d := wholeLineDialect(b); d != event.DialectAuto {
			if pinned != event.DialectAuto {
				return pinned, 0, ""
			}
			return d, 0, ""
		}
		if len(b) > 26 && b[0] == '@' && b[25] == ' ' {
			// multilog: "@tai64n message"; qmail's own logs under daemontools
			return event.DialectQmail, 0, ""
		}
	}
	return p.routeTag(b, pos, pinned, h, false)
}

// wholeLineDialect recognises the non-syslog layouts by their fixed-width time prefix.
func wholeLineDialect(b []byte) event.Dialect {
	// YYYY-MM-DD HH:MM:SS
	if len(b) >= 19 && b[4] == '-' && b[7] == '-' && b[10] == ' ' && b[13] == ':' && num(b, 0, 4) >= 0 && num(b, 11, 2) >= 0 {
		if len(b) > 21 && b[19] == ',' && b[20] == ' ' {
			k := b[21:]
			if bytes.HasPrefix(k, []byte("init,")) || bytes.HasPrefix(k, []byte("try,")) || bytes.HasPrefix(k, []byte("result,")) {
				return event.DialectICDSoftDelivery
			}
			return event.DialectICDSoftSMTP
		}
		return event.DialectIsode
	}
	// MM/DD/YY HH:MM:SS
	if len(b) >= 18 && b[2] == '/' && b[5] == '/' && b[8] == ' ' && b[11] == ':' && num(b, 0, 2) >= 0 {
		if b[17] == '\t' {
			return event.DialectMailEnableActivity
		}
		return event.DialectMailEnableDebug
	}
	// MM:DD HH:MM
	if len(b) >= 12 && b[2] == ':' && b[5] == ' ' && b[8] == ':' && b[11] == ' ' && num(b, 0, 2) >= 0 && num(b, 6, 2) >= 0 {
		return event.DialectIMail
	}
	if bytes.HasPrefix(b, []byte("ME-")) {
		return event.DialectMailEnableDebug
	}
	return event.DialectAuto
}

// parse3164Time reads "Mmm dd HH:MM:SS " (day space-padded or not) at b[pos:].
func parse3164Time(b []byte, pos int, h *header) (int, bool) {
	m := monthOf(b[pos:])
	i := pos + 3
	if i >= len(b) || b[i] != ' ' {
		return 0, false
	}
	i++
	if i < len(b) && b[i] == ' ' {
		i++
	}
	d := 0
	k := i
	for k < len(b) && k < i+2 && isDigit(b[k]) {
		d = d*10 + int(b[k]-'0')
		k++
	}
	if k == i || k >= len(b) || b[k] != ' ' {
		return 0, false
	}
	k++
	hh, mm, ss := num(b, k, 2), num(b, k+3, 2), num(b, k+6, 2)
	if hh < 0 || mm < 0 || ss < 0 || b[k+2] != ':' || b[k+5] != ':' {
		return 0, false
	}
	k += 8
	nsec := 0
	if k < len(b) && b[k] == '.' {
		k++
		scale := 100000000
		for k < len(b) && isDigit(b[k]) {
			nsec += int(b[k]-'0') * scale
			scale /= 10
			k++
		}
	}
	if k < len(b) && b[k] != ' ' {
		return 0, false
	}
	*h = header{pri: h.pri, hasTime: true, month: m, day: d, hh: hh, mm: mm, ss: ss, nsec: nsec}
	if k < len(b) {
		k++
	}
	return k, true
}

// routeTag reads "[host ]prog[pid]: " at b[pos:] (host only when hasHeader) and picks the
// dialect from the program name.
func (p *Parser) routeTag(b []byte, pos int, pinned event.Dialect, h *header, hasHeader bool) (event.Dialect, int, string) {
	tok1 := pos
	e1 := tok1
	for e1 < len(b) && b[e1] != ' ' {
		e1++
	}
	tagStart, tagEnd := tok1, e1
	if hasHeader && !isTag(b[tok1:e1]) {
		h.host = event.Span{Off: uint32(tok1), Len: uint32(e1 - tok1)}
		tagStart = e1 + 1
		tagEnd = tagStart
		for tagEnd < len(b) && b[tagEnd] != ' ' {
			tagEnd++
		}
	}
	body := tagEnd + 1
	if tagStart >= len(b) || !isTag(b[tagStart:tagEnd]) {
		// no tag: a bare message (header stripped and no program) — only a pinned dialect can say
		if pinned != event.DialectAuto {
			return pinned, min(tagStart, len(b)), ""
		}
		if hasHeader {
			return event.DialectAuto, 0, ReasonUnknownProgram
		}
		return event.DialectAuto, 0, ReasonNoDialect
	}
	tag := b[tagStart : tagEnd-1] // without ':'
	prog := tag
	if lb := bytes.IndexByte(tag, '['); lb >= 0 {
		prog = tag[:lb]
		h.pid = event.Span{Off: uint32(tagStart + lb + 1), Len: uint32(len(tag) - lb - 2)}
	}
	h.prog = event.Span{Off: uint32(tagStart), Len: uint32(len(prog))}
	if body > len(b) {
		body = len(b)
	}
	if pinned != event.DialectAuto {
		return pinned, body, ""
	}
	d, ok := programs[string(prog)]
	if !ok {
		if hasHeader {
			return event.DialectAuto, 0, ReasonUnknownProgram
		}
		return event.DialectAuto, 0, ReasonNoDialect
	}
	return d, body, ""
}

// isTag: "prog:" or "prog[pid]:" with a plausible program name.
func isTag(t []byte) bool {
	if len(t) < 2 || t[len(t)-1] != ':' {
		return false
	}
	t = t[:len(t)-1]
	if lb := bytes.IndexByte(t, '['); lb >= 0 {
		if t[len(t)-1] != ']' || lb == 0 {
			return false
		}
		for _, c := range t[lb+1 : len(t)-1] {
			if !isDigit(c) {
				return false
			}
		}
		t = t[:lb]
	}
	for _, c := range t {
		if !(isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '/') {
			return false
		}
	}
	return len(t) > 0
}

// route5424 reads "TIMESTAMP HOST APP PROCID MSGID SD MSG" at b[pos:].
func (p *Parser) route5424(b []byte, pos int, pinned event.Dialect, h *header) (event.Dialect, int, string) {
	var f [5]event.Span
	k := pos
	for i := 0; i < 5; i++ {
		s := k
		for k < len(b) && b[k] != ' ' {
			k++
		}
		f[i] = event.Span{Off: uint32(s), Len: uint32(k - s)}
		k++
		if k > len(b) {
			return event.DialectAuto, 0, ReasonNoDialect
		}
	}
	// structured data: "-" or one or more [..] elements
	if k < len(b) && b[k] == '-' {
		k += 2
	} else {
		for k < len(b) && b[k] == '[' {
			for k < len(b) && b[k] != ']' {
				if b[k] == '\\' {
					k++
				}
				k++
			}
			k++
		}
		k++
	}
	if k > len(b) {
		k = len(b)
	}
	// a BOM may start MSG
	if bytes.HasPrefix(b[k:], []byte("\xef\xbb\xbf")) {
		k += 3
	}
	ts := b[f[0].Off : f[0].Off+f[0].Len]
	parseRFC3339(ts, h)
	if f[1].Len > 0 && !(f[1].Len == 1 && b[f[1].Off] == '-') {
		h.host = f[1]
	}
	h.prog = f[2]
	if f[3].Len > 0 && !(f[3].Len == 1 && b[f[3].Off] == '-') {
		h.pid = f[3]
	}
	if pinned != event.DialectAuto {
		return pinned, k, ""
	}
	d, ok := programs[string(b[f[2].Off:f[2].Off+f[2].Len])]
	if !ok {
		return event.DialectAuto, 0, ReasonUnknownProgram
	}
	return d, k, ""
}

// parseRFC3339 reads YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm) into h.
func parseRFC3339(t []byte, h *header) {
	if len(t) < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' || t[16] != ':' {
		return
	}
	y, mo, d, hh, mm, ss := num(t, 0, 4), num(t, 5, 2), num(t, 8, 2), num(t, 11, 2), num(t, 14, 2), num(t, 17, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || hh < 0 || mm < 0 || ss < 0 {
		return
	}
	k := 19
	nsec := 0
	if k < len(t) && t[k] == '.' {
		k++
		scale := 100000000
		for k < len(t) && isDigit(t[k]) {
			nsec += int(t[k]-'0') * scale
			scale /= 10
			k++
		}
	}
	off := 0
	switch {
	case k < len(t) && (t[k] == 'Z' || t[k] == 'z') && k+1 == len(t):
	case k+6 == len(t) && (t[k] == '+' || t[k] == '-') && t[k+3] == ':':
		oh, om := num(t, k+1, 2), num(t, k+4, 2)
		if oh < 0 || om < 0 {
			return
		}
		off = oh*3600 + om*60
		if t[k] == '-' {
			off = -off
		}
	default:
		return
	}
	*h = header{pri: h.pri, hasTime: true, hasYear: true, zoned: true, offsetSec: off, year: y, month: mo, day: d, hh: hh, mm: mm, ss: ss, nsec: nsec}
}

// yearFor picks the year of a yearless date: the one that puts it no later than a month
// after the source's reference time (so Dec lines in a file whose mtime is in January get
// the previous year), else the configured default.
func (p *Parser) yearFor(src *event.Source, month, day int) int {
	if src == nil || src.YearRef.IsZero() {
		return p.opts.DefaultYear
	}
	ref := src.YearRef
	y := ref.Year()
	if month > int(ref.Month()) && (month-int(ref.Month()) > 1 || day > ref.Day()) {
		// the date would lie after the reference by more than a month: it is last year's
		y--
	}
	return y
}

func (p *Parser) loc(src *event.Source) *time.Location {
	if src != nil && src.Loc != nil {
		return src.Loc
	}
	if p.opts.Location != nil {
		return p.opts.Location
	}
	return time.UTC
}

// headerTime converts h into a time; ok=false when the date does not exist.
func (p *Parser) headerTime(h *header, src *event.Source) (time.Time, bool) {
	if !h.hasTime {
		return time.Time{}, false
	}
	y := h.year
	if !h.hasYear {
		y = p.yearFor(src, h.month, h.day)
	}
	if !validDate(y, h.month, h.day, h.hh, h.mm, h.ss) {
		return time.Time{}, false
	}
	if h.zoned {
		return time.Date(y, time.Month(h.month), h.day, h.hh, h.mm, h.ss, h.nsec, time.UTC).Add(-time.Duration(h.offsetSec) * time.Second), true
	}
	return time.Date(y, time.Month(h.month), h.day, h.hh, h.mm, h.ss, h.nsec, p.loc(src)), true
}

var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

func validDate(y, mo, d, hh, mm, ss int) bool {
	if mo < 1 || mo > 12 || d < 1 || d > daysIn[mo] || hh > 23 || mm > 59 || ss > 60 || y < 1 || y > 9999 {
		return false
	}
	if mo == 2 && d == 29 && !(y%4 == 0 && (y%100 != 0 || y%400 == 0)) {
		return false
	}
	return true
}
