package clickhouse

import (
	"encoding/binary"
	"math/bits"
	"time"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// The canonical session decoder reads a record exactly as record.Session.AppendJSON writes it:
// every key in its order, no whitespace. Each key with its punctuation is a fixed token
// checked with three word loads, straight-line, where the general decoder skipped whitespace
// three times per key, compared the expected `"key":` with a memequal call and dispatched
// through a 28-way switch (key handling and whitespace were ~40% of the decode CPU in
// BenchmarkDecode). Values are read by the general decoder's own functions. On anything
// else it reports false and decodeSession hands the record to the general decoder from its
// start, so what the sink accepts, and every error it reports, stay the general decoder's.

// token is a fixed byte string of at most 24 bytes as three little-endian words and masks.
type token struct {
	s    string
	w, m [3]uint64
}

func tok(s string) token {
	if len(s) > 24 {
		panic("token longer than 24 bytes: " + s)
	}
	t := token{s: s}
	for i := 0; i < len(s); i++ {
		t.w[i/8] |= uint64(s[i]) << (8 * (i % 8))
		t.m[i/8] |= 0xff << (8 * (i % 8))
	}
	return t
}

// lit consumes t if the input continues with it. The three-word compare is small enough to
// inline into the ~40 calls per record; the last 24 bytes of a record take litTail.
func (l *lexer) lit(t *token) bool {
	i := l.i
	if i < 0 || i > len(l.s)-24 {
		return l.litTail(t)
	}
	if load8(l.s, i)&t.m[0] != t.w[0] || load8(l.s, i+8)&t.m[1] != t.w[1] || load8(l.s, i+16)&t.m[2] != t.w[2] {
		return false
	}
	l.i = i + len(t.s)
	return true
}

//go:noinline
func (l *lexer) litTail(t *token) bool {
	i := l.i
	if i < 0 || len(l.s)-i < len(t.s) || l.s[i:i+len(t.s)] != t.s {
		return false
	}
	l.i = i + len(t.s)
	return true
}

func (l *lexer) strAfter(t *token, to *strCol) (string, bool) {
	if !l.lit(t) {
		return "", false
	}
	return l.strTo(to)
}

// strTo reads a string value as str does and, with c not nil, also appends it to c. The value
// is copied 8 bytes at a time while it is scanned: each word is stored into c's spare capacity
// before it is checked, which needs 8 bytes of room past the longest value the rest of the
// record can hold (unescaping never lengthens a value). From an escape on, unescapeTo
// appends the rest. Anything else (a control byte, a value over maxField, no room without
// growing c, the record's last 8 bytes) goes through str and add, and every error is str's.
// The value returned is str's view of the record or, for an escaped value, c's copy.
func (l *lexer) strTo(c *strCol) (string, bool) {
	i := l.i
	if c == nil || i < 0 || i >= len(l.s) || l.s[i] != '"' || !c.fits(len(l.s)-i+8) {
		return l.strCopy(c)
	}
	n := len(c.buf)
	dst := c.buf[n:cap(c.buf)]
	for j, k := i+1, 0; j+8 <= len(l.s); j, k = j+8, k+8 {
		w := load8(l.s, j)
		binary.LittleEndian.PutUint64(dst[k:], w)
		if m := specialMask(w); m != 0 {
			d := bits.TrailingZeros64(m) >> 3
			j, k = j+d, k+d
			switch {
			case l.s[j] == '\\':
				// The bytes before the escape are in place: unescape the rest after them.
				b, err := l.unescapeTo(c.buf[:n+k], n, j)
				if err != nil {
					return "", false
				}
				c.buf = b
				c.end = append(c.end, uint32(len(b)))
				return arenaString(b, n, len(b)), true
			case l.s[j] != '"' || k > l.maxField:
				return l.strCopy(c)
			}
			c.buf = c.buf[:n+k]
			c.end = append(c.end, uint32(n+k))
			l.i = j + 1
			return l.s[i+1 : j], true
		}
	}
	return l.strCopy(c)
}

// strCopy is strTo's byte-wise path: str, then a copy into c.
func (l *lexer) strCopy(c *strCol) (string, bool) {
	v, err := l.str()
	if err != nil {
		return "", false
	}
	if c != nil {
		c.add(v)
	}
	return v, true
}

func (l *lexer) intAfter(t *token) (int64, bool) {
	if !l.lit(t) {
		return 0, false
	}
	v, err := l.int()
	return v, err == nil
}

func (l *lexer) boolAfter(t *token) (bool, bool) {
	if !l.lit(t) {
		return false, false
	}
	v, err := l.bool()
	return v, err == nil
}

func (l *lexer) timeAfter(t *token) (time.Time, bool) {
	if !l.lit(t) {
		return time.Time{}, false
	}
	v, err := l.time()
	return v, err == nil
}

// next consumes c if it is the next byte.
func (l *lexer) next(c byte) bool {
	if l.i < len(l.s) && l.s[l.i] == c {
		l.i++
		return true
	}
	return false
}

var (
	tkSessionID      = tok(`{"session_id":`)
	tkHost           = tok(`,"host":`)
	tkProduct        = tok(`,"product":`)
	tkSessionKey     = tok(`,"session_key":`)
	tkStartTime      = tok(`,"start_time":`)
	tkEndTime        = tok(`,"end_time":`)
	tkClientIP       = tok(`,"client_ip":`)
	tkClientPTR      = tok(`,"client_ptr":`)
	tkHELO           = tok(`,"helo":`)
	tkAuthUser       = tok(`,"auth_user":`)
	tkTLS            = tok(`,"tls":`)
	tkMailFrom       = tok(`,"mail_from":`)
	tkRecipients     = tok(`,"recipients":[`)
	tkAddress        = tok(`{"address":`)
	tkOutcome        = tok(`,"outcome":`)
	tkSMTPCode       = tok(`,"smtp_code":`)
	tkReply          = tok(`,"reply":`)
	tkReason         = tok(`,"reason":`)
	tkSMTPReply      = tok(`,"smtp_reply":`)
	tkMessageID      = tok(`,"message_id":`)
	tkSize           = tok(`,"size":`)
	tkDelivery       = tok(`,"delivery":`)
	tkClosedBy       = tok(`,"closed_by":`)
	tkPermanent      = tok(`,"permanent":`)
	tkFlags          = tok(`,"flags":[`)
	tkEventCount     = tok(`,"event_count":`)
	tkMaxSeverity    = tok(`,"max_severity":`)
	tkOutcomeVersion = tok(`,"outcome_version":`)
	tkFirstPos       = tok(`,"first_pos":`)
	tkLastPos        = tok(`,"last_pos":`)
	tkSource         = tok(`{"source":`)
	tkOffset         = tok(`,"offset":`)
)

// decodeSessionCanonical reports whether it read the record; if so, err is what the general
// decoder would have returned for it. If not, s holds partial values (its Recipients and
// Flags still the caller's reusable slices) and l.i and l.esc are to be reset. Each string
// value also goes to its column in to as it is read (nil targets: none); whatever the result,
// the caller owns what was appended (see sessionColumns.dropPartial).
func decodeSessionCanonical(l *lexer, s *record.Session, to *sessionTargets) (ok bool, err error) {
	rcpts, flags := s.Recipients[:0], s.Flags[:0]
	*s = record.Session{}
	ok = l.canonSession(s, &rcpts, &flags, to)
	s.Recipients, s.Flags = rcpts, flags
	if !ok || l.i != len(l.s) {
		return false, nil
	}
	return true, checkRequired(s, true, true)
}

// sessionTargets are the String arenas canonSession fills as it reads: every string value of
// a session record except client_ip on servers that store it as IPv6 (nil: read only). Each
// value is then scanned and copied in one pass (strTo), where decoding into the record and
// appending it to the columns read every value twice and called memmove once per value
// (strCol.add with its memmove was ~15% of the sink's CPU in a perf profile). They are exactly
// the arenas appendStrings fills, in the same order (TestFusedSessionAppend).
type sessionTargets struct {
	sessionID, host, product, sessionKey, clientIP, clientPTR, helo, authUser, mailFrom *strCol
	rcptAddress, rcptOutcome, rcptReply                                                 *strCol
	outcome, reason, smtpReply, messageID, delivery, closedBy, flags, maxSeverity       *strCol
	firstSource, lastSource                                                             *strCol
}

var noTargets sessionTargets

func (l *lexer) canonSession(s *record.Session, rcpts *[]record.Recipient, flags *[]string, to *sessionTargets) bool {
	var ok bool
	var n int64
	var str string
	if s.SessionID, ok = l.strAfter(&tkSessionID, to.sessionID); !ok {
		return false
	}
	if s.Host, ok = l.strAfter(&tkHost, to.host); !ok {
		return false
	}
	if s.Product, ok = l.strAfter(&tkProduct, to.product); !ok {
		return false
	}
	if s.SessionKey, ok = l.strAfter(&tkSessionKey, to.sessionKey); !ok {
		return false
	}
	if s.StartTime, ok = l.timeAfter(&tkStartTime); !ok {
		return false
	}
	if s.EndTime, ok = l.timeAfter(&tkEndTime); !ok {
		return false
	}
	if s.ClientIP, ok = l.strAfter(&tkClientIP, to.clientIP); !ok {
		return false
	}
	if s.ClientPTR, ok = l.strAfter(&tkClientPTR, to.clientPTR); !ok {
		return false
	}
	if s.HELO, ok = l.strAfter(&tkHELO, to.helo); !ok {
		return false
	}
	if s.AuthUser, ok = l.strAfter(&tkAuthUser, to.authUser); !ok {
		return false
	}
	if s.TLS, ok = l.boolAfter(&tkTLS); !ok {
		return false
	}
	if s.MailFrom, ok = l.strAfter(&tkMailFrom, to.mailFrom); !ok {
		return false
	}
	if !l.lit(&tkRecipients) || !l.canonRecipients(rcpts, to) {
		return false
	}
	if str, ok = l.strAfter(&tkOutcome, to.outcome); !ok {
		return false
	}
	s.Outcome = record.Outcome(str)
	if s.Reason, ok = l.strAfter(&tkReason, to.reason); !ok {
		return false
	}
	if n, ok = l.intAfter(&tkSMTPCode); !ok {
		return false
	}
	s.SMTPCode = int(n)
	if s.SMTPReply, ok = l.strAfter(&tkSMTPReply, to.smtpReply); !ok {
		return false
	}
	if s.MessageID, ok = l.strAfter(&tkMessageID, to.messageID); !ok {
		return false
	}
	if s.Size, ok = l.intAfter(&tkSize); !ok {
		return false
	}
	if str, ok = l.strAfter(&tkDelivery, to.delivery); !ok {
		return false
	}
	s.Delivery = record.Delivery(str)
	if str, ok = l.strAfter(&tkClosedBy, to.closedBy); !ok {
		return false
	}
	s.ClosedBy = record.ClosedBy(str)
	if s.Permanent, ok = l.boolAfter(&tkPermanent); !ok {
		return false
	}
	if !l.lit(&tkFlags) || !l.canonStrings(flags, to.flags) {
		return false
	}
	if n, ok = l.intAfter(&tkEventCount); !ok {
		return false
	}
	s.EventCount = int(n)
	if s.MaxSeverity, ok = l.strAfter(&tkMaxSeverity, to.maxSeverity); !ok {
		return false
	}
	if n, ok = l.intAfter(&tkOutcomeVersion); !ok {
		return false
	}
	s.OutcomeVersion = int(n)
	if !l.lit(&tkFirstPos) || !l.canonPos(&s.FirstPos, to.firstSource) {
		return false
	}
	if !l.lit(&tkLastPos) || !l.canonPos(&s.LastPos, to.lastSource) {
		return false
	}
	return l.next('}')
}

// canonRecipients reads the elements and the closing bracket of the recipients array.
func (l *lexer) canonRecipients(dst *[]record.Recipient, to *sessionTargets) bool {
	if l.next(']') {
		return true
	}
	for {
		var r record.Recipient
		var ok bool
		var str string
		var n int64
		if r.Address, ok = l.strAfter(&tkAddress, to.rcptAddress); !ok {
			return false
		}
		if str, ok = l.strAfter(&tkOutcome, to.rcptOutcome); !ok {
			return false
		}
		r.Outcome = record.Outcome(str)
		if n, ok = l.intAfter(&tkSMTPCode); !ok {
			return false
		}
		r.SMTPCode = int(n)
		if r.Reply, ok = l.strAfter(&tkReply, to.rcptReply); !ok {
			return false
		}
		if !l.next('}') {
			return false
		}
		*dst = append(*dst, r)
		if l.next(']') {
			return true
		}
		if !l.next(',') {
			return false
		}
	}
}

// canonStrings reads the elements and the closing bracket of a string array.
func (l *lexer) canonStrings(dst *[]string, to *strCol) bool {
	if l.next(']') {
		return true
	}
	for {
		if l.i >= len(l.s) || l.s[l.i] != '"' {
			return false // null elements and the like: the general decoder decides
		}
		v, ok := l.strTo(to)
		if !ok {
			return false
		}
		*dst = append(*dst, v)
		if l.next(']') {
			return true
		}
		if !l.next(',') {
			return false
		}
	}
}

func (l *lexer) canonPos(p *record.Position, to *strCol) bool {
	var ok bool
	if p.Source, ok = l.strAfter(&tkSource, to); !ok {
		return false
	}
	if p.Offset, ok = l.intAfter(&tkOffset); !ok {
		return false
	}
	return l.next('}')
}
