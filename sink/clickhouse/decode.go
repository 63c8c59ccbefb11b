package clickhouse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// The decoders below read exactly the JSON that record.Session.AppendJSON and
// record.Event.AppendJSON write (and any equivalent JSON: key order, whitespace, escapes,
// null for strings and arrays, unknown keys skipped). They exist because encoding/json costs
// ~10 µs per session record, five times the sink's whole CPU budget per row. Decoded strings
// are substrings of the input string (one allocation per record, not one per field) unless
// they contain escapes.

var errSyntax = errors.New("invalid JSON")

// lexer walks a JSON document held in a string.
type lexer struct {
	s        string
	i        int
	maxField int // longest string value accepted, in bytes
}

func (l *lexer) ws() {
	for l.i < len(l.s) {
		switch l.s[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

func (l *lexer) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: "+format, append([]any{l.i}, args...)...)
}

func (l *lexer) expect(c byte) error {
	l.ws()
	if l.i >= len(l.s) || l.s[l.i] != c {
		if l.i >= len(l.s) {
			return l.errorf("want %q, got end of input: %w", c, errSyntax)
		}
		return l.errorf("want %q, got %q: %w", c, l.s[l.i], errSyntax)
	}
	l.i++
	return nil
}

// null consumes a JSON null if one is next.
func (l *lexer) null() bool {
	l.ws()
	if len(l.s)-l.i >= 4 && l.s[l.i:l.i+4] == "null" {
		l.i += 4
		return true
	}
	return false
}

// key reads the next object key. more is false at the closing brace. first says whether this is
// the first key (no comma before it).
func (l *lexer) key(first bool) (key string, more bool, err error) {
	l.ws()
	if l.i < len(l.s) && l.s[l.i] == '}' {
		l.i++
		return "", false, nil
	}
	if !first {
		if err := l.expect(','); err != nil {
			return "", false, err
		}
	}
	k, err := l.str()
	if err != nil {
		return "", false, err
	}
	if err := l.expect(':'); err != nil {
		return "", false, err
	}
	return k, true, nil
}

// elem reports whether another array element follows (consuming the comma) or the array ended.
func (l *lexer) elem(first bool) (bool, error) {
	l.ws()
	if l.i < len(l.s) && l.s[l.i] == ']' {
		l.i++
		return false, nil
	}
	if !first {
		if err := l.expect(','); err != nil {
			return false, err
		}
	}
	return true, nil
}

// str reads a JSON string (or null, as "").
func (l *lexer) str() (string, error) {
	if l.null() {
		return "", nil
	}
	if l.i >= len(l.s) || l.s[l.i] != '"' {
		return "", l.wrongType("string")
	}
	start := l.i + 1
	j := start
	// Skip 8 bytes at a time while none is a quote, a backslash or a control byte: string values
	// are most of a record's bytes, and this loop was the decoder's largest cost.
	for ; j+8 <= len(l.s); j += 8 {
		if special8(load8(l.s, j)) {
			break
		}
	}
	for ; j < len(l.s); j++ {
		switch c := l.s[j]; {
		case c == '"':
			if j-start > l.maxField {
				return "", l.errorf("string of %d bytes exceeds the %d-byte field limit: %w", j-start, l.maxField, errTooLarge)
			}
			l.i = j + 1
			return l.s[start:j], nil
		case c == '\\':
			return l.unescape(start)
		case c < 0x20:
			l.i = j
			return "", l.errorf("control byte %#x in string: %w", c, errSyntax)
		}
	}
	l.i = len(l.s)
	return "", l.errorf("unterminated string: %w", errSyntax)
}

var errTooLarge = errors.New("field too large")

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// load8 reads s[i:i+8] as a little-endian word; the caller guarantees i+8 <= len(s).
func load8(s string, i int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
}

// special8 reports whether any byte of w is '"', '\\' or below 0x20 (SWAR: a byte is zero
// iff (x-1) & ^x has its high bit set; x < n likewise with x-n, for n <= 0x80).
func special8(w uint64) bool {
	q := w ^ ('"' * ones)
	b := w ^ ('\\' * ones)
	return ((q-ones)&^q|(b-ones)&^b|(w-0x20*ones)&^w)&highs != 0
}

func (l *lexer) unescape(start int) (string, error) {
	b := make([]byte, 0, 64)
	j := start
	for j < len(l.s) {
		c := l.s[j]
		switch {
		case c == '"':
			if len(b) > l.maxField {
				return "", l.errorf("string of %d bytes exceeds the %d-byte field limit: %w", len(b), l.maxField, errTooLarge)
			}
			l.i = j + 1
			return string(b), nil
		case c < 0x20:
			l.i = j
			return "", l.errorf("control byte %#x in string: %w", c, errSyntax)
		case c != '\\':
			b = append(b, c)
			j++
			continue
		}
		if j+1 >= len(l.s) {
			break
		}
		e := l.s[j+1]
		j += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(l.s, j)
			if !ok {
				l.i = j
				return "", l.errorf("bad \\u escape: %w", errSyntax)
			}
			j += 4
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if j+6 <= len(l.s) && l.s[j] == '\\' && l.s[j+1] == 'u' {
					r2, ok2 = hex4(l.s, j+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					j += 6
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			l.i = j - 1
			return "", l.errorf("bad escape \\%c: %w", e, errSyntax)
		}
	}
	l.i = len(l.s)
	return "", l.errorf("unterminated string: %w", errSyntax)
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

var errWrongType = errors.New("wrong type")

func (l *lexer) wrongType(want string) error {
	got := "end of input"
	if l.i < len(l.s) {
		got = fmt.Sprintf("%q", l.s[l.i])
	}
	return l.errorf("want %s, got %s: %w", want, got, errWrongType)
}

// int reads a JSON integer. Fractions and exponents are wrong types for integer columns.
func (l *lexer) int() (int64, error) {
	l.ws()
	start := l.i
	j := l.i
	if j < len(l.s) && l.s[j] == '-' {
		j++
	}
	digits := j
	for j < len(l.s) && l.s[j] >= '0' && l.s[j] <= '9' {
		j++
	}
	if j == digits {
		return 0, l.wrongType("integer")
	}
	if j < len(l.s) && (l.s[j] == '.' || l.s[j] == 'e' || l.s[j] == 'E') {
		return 0, l.wrongType("integer")
	}
	n, err := strconv.ParseInt(l.s[start:j], 10, 64)
	if err != nil {
		return 0, l.errorf("integer %s: %w", l.s[start:j], errWrongType)
	}
	l.i = j
	return n, nil
}

func (l *lexer) bool() (bool, error) {
	l.ws()
	switch {
	case len(l.s)-l.i >= 4 && l.s[l.i:l.i+4] == "true":
		l.i += 4
		return true, nil
	case len(l.s)-l.i >= 5 && l.s[l.i:l.i+5] == "false":
		l.i += 5
		return false, nil
	}
	return false, l.wrongType("boolean")
}

func (l *lexer) time() (time.Time, error) {
	s, err := l.str()
	if err != nil {
		return time.Time{}, err
	}
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", s, errWrongType)
	}
	return t, nil
}

// skip consumes any JSON value (for keys this version does not know).
func (l *lexer) skip(depth int) error {
	if depth > 64 {
		return l.errorf("nesting deeper than 64: %w", errSyntax)
	}
	l.ws()
	if l.i >= len(l.s) {
		return l.errorf("want a value, got end of input: %w", errSyntax)
	}
	switch c := l.s[l.i]; {
	case c == '"':
		_, err := l.str()
		return err
	case c == '{':
		l.i++
		for first := true; ; first = false {
			_, more, err := l.key(first)
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
			if err := l.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		l.i++
		for first := true; ; first = false {
			more, err := l.elem(first)
			if err != nil || !more {
				return err
			}
			if err := l.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == 't' || c == 'f':
		_, err := l.bool()
		return err
	case c == 'n':
		if !l.null() {
			return l.errorf("bad literal: %w", errSyntax)
		}
		return nil
	default:
		j := l.i
		for j < len(l.s) && (l.s[j] == '-' || l.s[j] == '+' || l.s[j] == '.' || l.s[j] == 'e' || l.s[j] == 'E' || (l.s[j] >= '0' && l.s[j] <= '9')) {
			j++
		}
		if j == l.i {
			return l.errorf("unexpected %q: %w", c, errSyntax)
		}
		if _, err := strconv.ParseFloat(l.s[l.i:j], 64); err != nil {
			return l.errorf("bad number %q: %w", l.s[l.i:j], errSyntax)
		}
		l.i = j
		return nil
	}
}

func (l *lexer) end() error {
	l.ws()
	if l.i != len(l.s) {
		return l.errorf("trailing data after the object: %w", errSyntax)
	}
	return nil
}

func (l *lexer) pos(p *record.Position) error {
	*p = record.Position{}
	if l.null() {
		return nil
	}
	if err := l.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		k, more, err := l.key(first)
		if err != nil || !more {
			return err
		}
		switch k {
		case "source":
			p.Source, err = l.str()
		case "offset":
			p.Offset, err = l.int()
		default:
			err = l.skip(1)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
}

// decodeSession decodes one session record into s, reusing s.Recipients and s.Flags.
func decodeSession(l *lexer, s *record.Session) error {
	rcpts, flags := s.Recipients[:0], s.Flags[:0]
	*s = record.Session{}
	if err := l.expect('{'); err != nil {
		return err
	}
	var n int64
	var seenID, seenStart bool
	for first := true; ; first = false {
		k, more, err := l.key(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		var str string
		switch k {
		case "session_id":
			s.SessionID, err = l.str()
			seenID = true
		case "host":
			s.Host, err = l.str()
		case "product":
			s.Product, err = l.str()
		case "session_key":
			s.SessionKey, err = l.str()
		case "start_time":
			s.StartTime, err = l.time()
			seenStart = true
		case "end_time":
			s.EndTime, err = l.time()
		case "client_ip":
			s.ClientIP, err = l.str()
		case "client_ptr":
			s.ClientPTR, err = l.str()
		case "helo":
			s.HELO, err = l.str()
		case "auth_user":
			s.AuthUser, err = l.str()
		case "tls":
			s.TLS, err = l.bool()
		case "mail_from":
			s.MailFrom, err = l.str()
		case "recipients":
			rcpts, err = decodeRecipients(l, rcpts)
		case "outcome":
			str, err = l.str()
			s.Outcome = record.Outcome(str)
		case "reason":
			s.Reason, err = l.str()
		case "smtp_code":
			n, err = l.int()
			s.SMTPCode = int(n)
		case "smtp_reply":
			s.SMTPReply, err = l.str()
		case "message_id":
			s.MessageID, err = l.str()
		case "size":
			s.Size, err = l.int()
		case "delivery":
			str, err = l.str()
			s.Delivery = record.Delivery(str)
		case "closed_by":
			str, err = l.str()
			s.ClosedBy = record.ClosedBy(str)
		case "permanent":
			s.Permanent, err = l.bool()
		case "flags":
			flags, err = decodeStrings(l, flags)
		case "event_count":
			n, err = l.int()
			s.EventCount = int(n)
		case "max_severity":
			s.MaxSeverity, err = l.str()
		case "outcome_version":
			n, err = l.int()
			s.OutcomeVersion = int(n)
		case "first_pos":
			err = l.pos(&s.FirstPos)
		case "last_pos":
			err = l.pos(&s.LastPos)
		default:
			err = l.skip(1)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
	}
	s.Recipients, s.Flags = rcpts, flags
	if err := l.end(); err != nil {
		return err
	}
	if !seenID || s.SessionID == "" {
		return fmt.Errorf("field \"session_id\": missing or empty: %w", errWrongType)
	}
	if !seenStart || s.StartTime.IsZero() {
		return fmt.Errorf("field \"start_time\": missing or empty: %w", errWrongType)
	}
	return nil
}

func decodeRecipients(l *lexer, dst []record.Recipient) ([]record.Recipient, error) {
	if l.null() {
		return dst, nil
	}
	if err := l.expect('['); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		more, err := l.elem(first)
		if err != nil || !more {
			return dst, err
		}
		var r record.Recipient
		if err := l.expect('{'); err != nil {
			return dst, err
		}
		for kfirst := true; ; kfirst = false {
			k, more, err := l.key(kfirst)
			if err != nil {
				return dst, err
			}
			if !more {
				break
			}
			var str string
			var n int64
			switch k {
			case "address":
				r.Address, err = l.str()
			case "outcome":
				str, err = l.str()
				r.Outcome = record.Outcome(str)
			case "smtp_code":
				n, err = l.int()
				r.SMTPCode = int(n)
			case "reply":
				r.Reply, err = l.str()
			default:
				err = l.skip(2)
			}
			if err != nil {
				return dst, fmt.Errorf("recipient %d field %q: %w", len(dst), k, err)
			}
		}
		dst = append(dst, r)
	}
}

func decodeStrings(l *lexer, dst []string) ([]string, error) {
	if l.null() {
		return dst, nil
	}
	if err := l.expect('['); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		more, err := l.elem(first)
		if err != nil || !more {
			return dst, err
		}
		s, err := l.str()
		if err != nil {
			return dst, err
		}
		dst = append(dst, s)
	}
}

// decodeEvent decodes one notable-event record into e.
func decodeEvent(l *lexer, e *record.Event) error {
	*e = record.Event{}
	if err := l.expect('{'); err != nil {
		return err
	}
	var seenTime bool
	for first := true; ; first = false {
		k, more, err := l.key(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch k {
		case "time":
			e.Time, err = l.time()
			seenTime = true
		case "host":
			e.Host, err = l.str()
		case "product":
			e.Product, err = l.str()
		case "dialect":
			e.Dialect, err = l.str()
		case "code":
			e.Code, err = l.str()
		case "name":
			e.Name, err = l.str()
		case "severity":
			e.Severity, err = l.str()
		case "raw_severity":
			e.RawSeverity, err = l.str()
		case "session_id":
			e.SessionID, err = l.str()
		case "client_ip":
			e.ClientIP, err = l.str()
		case "raw":
			e.Raw, err = l.str()
		case "pos":
			err = l.pos(&e.Pos)
		default:
			err = l.skip(1)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
	}
	if err := l.end(); err != nil {
		return err
	}
	if !seenTime || e.Time.IsZero() {
		return fmt.Errorf("field \"time\": missing or empty: %w", errWrongType)
	}
	return nil
}
