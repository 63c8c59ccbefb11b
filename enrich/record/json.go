package record

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends s as one JSON object (no trailing newline) to dst. It is the hot-path
// encoder for mxtrail.sessions: no reflection, and its output decodes with encoding/json into
// an equal Session. Times are written in UTC with nanoseconds (RFC 3339).
func (s *Session) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"session_id":`...)
	dst = appendString(dst, s.SessionID)
	dst = appendKeyString(dst, "host", s.Host)
	dst = appendKeyString(dst, "product", s.Product)
	dst = appendKeyString(dst, "session_key", s.SessionKey)
	dst = appendKeyTime(dst, "start_time", s.StartTime)
	dst = appendKeyTime(dst, "end_time", s.EndTime)
	dst = appendKeyString(dst, "client_ip", s.ClientIP)
	dst = appendKeyString(dst, "client_ptr", s.ClientPTR)
	dst = appendKeyString(dst, "helo", s.HELO)
	dst = appendKeyString(dst, "auth_user", s.AuthUser)
	dst = append(dst, `,"tls":`...)
	dst = strconv.AppendBool(dst, s.TLS)
	dst = appendKeyString(dst, "mail_from", s.MailFrom)
	dst = append(dst, `,"recipients":[`...)
	for i := range s.Recipients {
		r := &s.Recipients[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"address":`...)
		dst = appendString(dst, r.Address)
		dst = appendKeyString(dst, "outcome", string(r.Outcome))
		dst = append(dst, `,"smtp_code":`...)
		dst = strconv.AppendInt(dst, int64(r.SMTPCode), 10)
		dst = appendKeyString(dst, "reply", r.Reply)
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	dst = appendKeyString(dst, "outcome", string(s.Outcome))
	dst = appendKeyString(dst, "reason", s.Reason)
	dst = append(dst, `,"smtp_code":`...)
	dst = strconv.AppendInt(dst, int64(s.SMTPCode), 10)
	dst = appendKeyString(dst, "smtp_reply", s.SMTPReply)
	dst = appendKeyString(dst, "message_id", s.MessageID)
	dst = append(dst, `,"size":`...)
	dst = strconv.AppendInt(dst, s.Size, 10)
	dst = appendKeyString(dst, "delivery", string(s.Delivery))
	dst = appendKeyString(dst, "closed_by", string(s.ClosedBy))
	dst = append(dst, `,"permanent":`...)
	dst = strconv.AppendBool(dst, s.Permanent)
	dst = append(dst, `,"flags":[`...)
	for i, f := range s.Flags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f)
	}
	dst = append(dst, ']')
	dst = append(dst, `,"event_count":`...)
	dst = strconv.AppendInt(dst, int64(s.EventCount), 10)
	dst = appendKeyString(dst, "max_severity", s.MaxSeverity)
	dst = append(dst, `,"outcome_version":`...)
	dst = strconv.AppendInt(dst, int64(s.OutcomeVersion), 10)
	dst = append(dst, `,"first_pos":`...)
	dst = appendPos(dst, s.FirstPos)
	dst = append(dst, `,"last_pos":`...)
	dst = appendPos(dst, s.LastPos)
	return append(dst, '}')
}

// AppendJSON appends e as one JSON object (no trailing newline) to dst.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"time":`...)
	dst = appendTime(dst, e.Time)
	dst = appendKeyString(dst, "host", e.Host)
	dst = appendKeyString(dst, "product", e.Product)
	dst = appendKeyString(dst, "dialect", e.Dialect)
	dst = appendKeyString(dst, "code", e.Code)
	dst = appendKeyString(dst, "name", e.Name)
	dst = appendKeyString(dst, "severity", e.Severity)
	dst = appendKeyString(dst, "raw_severity", e.RawSeverity)
	dst = appendKeyString(dst, "session_id", e.SessionID)
	dst = appendKeyString(dst, "client_ip", e.ClientIP)
	dst = appendKeyString(dst, "raw", e.Raw)
	dst = append(dst, `,"pos":`...)
	dst = appendPos(dst, e.Pos)
	return append(dst, '}')
}

func appendPos(dst []byte, p Position) []byte {
	dst = append(dst, `{"source":`...)
	dst = appendString(dst, p.Source)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, p.Offset, 10)
	return append(dst, '}')
}

func appendKeyString(dst []byte, key, v string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendString(dst, v)
}

func appendKeyTime(dst []byte, key string, t time.Time) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendTime(dst, t)
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends v as a JSON string. Invalid UTF-8 becomes U+FFFD, as encoding/json does,
// so log lines with binary bytes still give valid JSON.
func appendString(dst []byte, v string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(v); {
		// Eight plain bytes at a time: most of a session record's text needs no escape
		// (appendString was 7% of the enricher's CPU byte by byte).
		if i+8 <= len(v) && !special8(load8(v, i)) {
			i += 8
			continue
		}
		c := v[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, v[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, v[start:]...)
	return append(dst, '"')
}

// load8 reads v[i:i+8] as a little-endian word (the compiler merges the byte loads).
func load8(v string, i int) uint64 {
	w := v[i : i+8]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// special8 reports whether any byte of x is one appendString does not copy as it is: a
// control byte, '"', '\\', '<', '>', '&', or a byte of a multi-byte UTF-8 sequence. The
// "has a byte below n" and "has a zero byte" tests are exact as predicates (n <= 128); '<'
// and '>' (0x3c, 0x3e) are one test with bit 1 set, '"' and '&' (0x22, 0x26) one with bit 2.
func special8(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	a := x ^ lo*'\\'
	b := (x | lo*0x02) ^ lo*'>'
	c := (x | lo*0x04) ^ lo*'&'
	return ((x-lo*0x20)&^x|x|(a-lo)&^a|(b-lo)&^b|(c-lo)&^c)&hi != 0
}
