package clickhouse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
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
	// esc, when not nil, holds unescaped strings instead of an allocation each: they are valid
	// only until the lexer's owner reuses it (resetting esc to esc[:0]), so only for records
	// whose strings are copied before the next decode (sessions, into the column arenas).
	esc []byte
	// minute speeds up time (see minuteCache); it outlives the records (reset).
	minute minuteCache
}

// reset makes l read s from its start, as a lexer{s, maxField, esc} would, keeping its minute.
func (l *lexer) reset(s string, maxField int, esc []byte) {
	l.s, l.i, l.maxField, l.esc = s, 0, maxField, esc
}

// ws skips whitespace. The encoder writes none, so the common case is one inlined compare.
func (l *lexer) ws() {
	if l.i < len(l.s) && l.s[l.i] > ' ' {
		return
	}
	l.wsSlow()
}

func (l *lexer) wsSlow() {
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

// fieldSet is the keys of one record type in the order its encoder writes them, so the decoder
// can check the next expected key with one compare of its `"key":` token instead of scanning
// the key and matching it against every name (key handling was a third of the decoder's CPU).
// Other orders, whitespace and escaped keys take the general path.
type fieldSet struct {
	names  []string
	tokens []string
}

func newFieldSet(names ...string) *fieldSet {
	fs := &fieldSet{names: names}
	for _, n := range names {
		fs.tokens = append(fs.tokens, `"`+n+`":`)
	}
	return fs
}

func (fs *fieldSet) lookup(k string) int {
	for i, n := range fs.names {
		if n == k {
			return i
		}
	}
	return -1
}

// field reads the next key of an object of fs: its index in fs (-1 for a key fs does not
// know), the key, and more=false at the closing brace. first says whether this is the first
// key (no comma before it); *next is the index expected next, updated for the following call.
func (l *lexer) field(first bool, fs *fieldSet, next *int) (id int, k string, more bool, err error) {
	l.ws()
	if l.i < len(l.s) && l.s[l.i] == '}' {
		l.i++
		return -1, "", false, nil
	}
	if !first {
		if l.i < len(l.s) && l.s[l.i] == ',' {
			l.i++
			l.ws()
		} else if err := l.expect(','); err != nil {
			return -1, "", false, err
		}
	}
	if n := *next; n < len(fs.tokens) && len(l.s)-l.i >= len(fs.tokens[n]) && l.s[l.i:l.i+len(fs.tokens[n])] == fs.tokens[n] {
		l.i += len(fs.tokens[n])
		*next = n + 1
		return n, fs.names[n], true, nil
	}
	if k, err = l.str(); err != nil {
		return -1, "", false, err
	}
	if err := l.expect(':'); err != nil {
		return -1, "", false, err
	}
	id = fs.lookup(k)
	if id >= 0 {
		*next = id + 1
	}
	return id, k, true, nil
}

// str reads a JSON string (or null, as "").
func (l *lexer) str() (string, error) {
	l.ws()
	if l.i >= len(l.s) || l.s[l.i] != '"' {
		if l.null() {
			return "", nil
		}
		return "", l.wrongType("string")
	}
	start := l.i + 1
	for j := l.skipPlain(start); j < len(l.s); j++ {
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

// load8 reads s[i:i+8] as a little-endian word; the caller guarantees 0 <= i and i+8 <= len(s),
// and load8 does not check it: the checks of s[i:] and unsafe.Slice were more instructions than
// the load in the decoder's hottest loops (lit was ~60 instructions for three words).
func load8(s string, i int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(s)), i))[:])
}

// specialMask has the high bit of a byte set for every byte of w that is '"', '\\' or below
// 0x20, and possibly for bytes above the first such byte, never below it (SWAR: a byte is zero
// iff (x-1) & ^x has its high bit set; x < n likewise with x-n, for n <= 0x80; a borrow only
// travels upwards, from a byte that matched). So its lowest set bit marks the first match.
func specialMask(w uint64) uint64 {
	q := w ^ ('"' * ones)
	b := w ^ ('\\' * ones)
	return ((q-ones)&^q | (b-ones)&^b | (w-0x20*ones)&^w) & highs
}

// skipPlain returns the index of the first quote, backslash or control byte from j on, found
// 8 bytes at a time (string values are most of a record's bytes, and this scan was the
// decoder's largest cost), or where fewer than 8 bytes are left: the caller reads on byte by
// byte from there.
func (l *lexer) skipPlain(j int) int {
	for ; j+8 <= len(l.s); j += 8 {
		if m := specialMask(load8(l.s, j)); m != 0 {
			return j + bits.TrailingZeros64(m)>>3
		}
	}
	return j
}

func (l *lexer) unescape(start int) (string, error) {
	b := l.esc
	if b == nil {
		b = make([]byte, 0, 64)
	}
	mark := len(b)
	b, err := l.unescapeTo(b, mark, start)
	if err != nil {
		return "", err
	}
	if l.esc != nil {
		// A later append may move esc; this string keeps the old array alive.
		l.esc = b
		return arenaString(b, mark, len(b)), nil
	}
	return string(b[mark:]), nil
}

// unescapeTo appends the string value from byte j on, unescaped, to b, whose bytes from mark
// on already hold the value's first bytes, and moves past the closing quote.
func (l *lexer) unescapeTo(b []byte, mark, j int) ([]byte, error) {
	for j < len(l.s) {
		c := l.s[j]
		switch {
		case c == '"':
			if len(b)-mark > l.maxField {
				return b, l.errorf("string of %d bytes exceeds the %d-byte field limit: %w", len(b)-mark, l.maxField, errTooLarge)
			}
			l.i = j + 1
			return b, nil
		case c < 0x20:
			l.i = j
			return b, l.errorf("control byte %#x in string: %w", c, errSyntax)
		case c != '\\':
			// Append the run up to the next special byte at once (reply texts quote a word or
			// two and go on for dozens of bytes).
			k := l.skipPlain(j + 1)
			for k < len(l.s) && l.s[k] != '"' && l.s[k] != '\\' && l.s[k] >= 0x20 {
				k++
			}
			b = append(b, l.s[j:k]...)
			j = k
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
				return b, l.errorf("bad \\u escape: %w", errSyntax)
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
			return b, l.errorf("bad escape \\%c: %w", e, errSyntax)
		}
	}
	l.i = len(l.s)
	return b, l.errorf("unterminated string: %w", errSyntax)
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
	neg := j < len(l.s) && l.s[j] == '-'
	if neg {
		j++
	}
	digits := j
	var n uint64
	for j < len(l.s) && l.s[j] >= '0' && l.s[j] <= '9' {
		n = n*10 + uint64(l.s[j]-'0') // wraps past 19 digits: strconv decides those below
		j++
	}
	if j == digits {
		return 0, l.wrongType("integer")
	}
	if j < len(l.s) && (l.s[j] == '.' || l.s[j] == 'e' || l.s[j] == 'E') {
		return 0, l.wrongType("integer")
	}
	if j-digits > 18 { // may overflow int64: let strconv say
		v, err := strconv.ParseInt(l.s[start:j], 10, 64)
		if err != nil {
			return 0, l.errorf("integer %s: %w", l.s[start:j], errWrongType)
		}
		l.i = j
		return v, nil
	}
	l.i = j
	if neg {
		return -int64(n), nil
	}
	return int64(n), nil
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
	if t, ok := l.minute.parseUTC(s); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", s, errWrongType)
	}
	return t, nil
}

// parseUTC parses the form the encoder writes, RFC 3339 in UTC with an optional fraction of
// one to nine digits ("2026-11-23T18:42:40.123Z"), to the same value time.Parse returns. It
// reports false for anything else, valid or not, which time.Parse then decides: time.Parse
// was a tenth of the decoder's CPU.
func parseUTC(s string) (time.Time, bool) {
	base, ok := parseMinute(s)
	if !ok {
		return time.Time{}, false
	}
	return secondsOf(s, base)
}

// parseMinute checks s's shape and parses its minute, "YYYY-MM-DDTHH:MM", to Unix seconds.
func parseMinute(s string) (int64, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(s, 0, 4)
	month, ok2 := digits(s, 5, 2)
	day, ok3 := digits(s, 8, 2)
	hour, ok4 := digits(s, 11, 2)
	minute, ok5 := digits(s, 14, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || year < 1 || month < 1 || month > 12 || day < 1 ||
		day > daysIn(month, year) || hour > 23 || minute > 59 {
		return 0, false
	}
	// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
	y := year
	if month <= 2 {
		y--
	}
	era := y / 400 // y >= 0 here
	yoe := y - era*400
	mp := (month + 9) % 12
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := int64(era)*146097 + int64(doe) - 719468
	return days*86400 + int64(hour*3600+minute*60), true
}

// secondsOf parses the rest of s after its minute, ":SS" and the fraction up to the 'Z' (the
// shape parseMinute checked), and returns the time base (the minute's Unix seconds) plus that.
func secondsOf(s string, base int64) (time.Time, bool) {
	if len(s) < 20 || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	sec, ok := digits(s, 17, 2)
	if !ok || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := s[19 : len(s)-1]; frac != "" {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' {
			return time.Time{}, false
		}
		v, ok := digits(s, 20, len(frac)-1)
		if !ok {
			return time.Time{}, false
		}
		for k := len(frac) - 1; k < 9; k++ {
			v *= 10
		}
		nsec = v
	}
	return time.Unix(base+int64(sec), int64(nsec)).UTC(), true
}

// digits parses the n decimal digits of s at i.
func digits(s string, i, n int) (int, bool) {
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// minuteCache remembers the minute of the last time parseUTC took: the records of a stream
// come in time order, so most times fall in the minute before them, and then only their
// seconds need parsing (the date took half of parseUTC's CPU, ~1.4% of the sink's).
type minuteCache struct {
	key  [2]uint64 // the minute's text, "YYYY-MM-DDTHH:MM"
	base int64     // its Unix seconds
	ok   bool
}

// parseUTC is parseUTC(s), through the cache.
func (c *minuteCache) parseUTC(s string) (time.Time, bool) {
	if len(s) < 20 {
		return time.Time{}, false
	}
	k0, k1 := load8(s, 0), load8(s, 8)
	if c.ok && k0 == c.key[0] && k1 == c.key[1] {
		return secondsOf(s, c.base)
	}
	base, ok := parseMinute(s)
	if !ok {
		return time.Time{}, false
	}
	c.key, c.base, c.ok = [2]uint64{k0, k1}, base, true
	return secondsOf(s, base)
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
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

var posFields = newFieldSet("source", "offset")

func (l *lexer) pos(p *record.Position) error {
	*p = record.Position{}
	if l.null() {
		return nil
	}
	if err := l.expect('{'); err != nil {
		return err
	}
	next := 0
	for first := true; ; first = false {
		id, k, more, err := l.field(first, posFields, &next)
		if err != nil || !more {
			return err
		}
		switch id {
		case 0:
			p.Source, err = l.str()
		case 1:
			p.Offset, err = l.int()
		default:
			err = l.skip(1)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
}

// The session record's keys, in record.Session.AppendJSON's order.
const (
	sfSessionID = iota
	sfHost
	sfProduct
	sfSessionKey
	sfStartTime
	sfEndTime
	sfClientIP
	sfClientPTR
	sfHELO
	sfAuthUser
	sfTLS
	sfMailFrom
	sfRecipients
	sfOutcome
	sfReason
	sfSMTPCode
	sfSMTPReply
	sfMessageID
	sfSize
	sfDelivery
	sfClosedBy
	sfPermanent
	sfFlags
	sfEventCount
	sfMaxSeverity
	sfOutcomeVersion
	sfFirstPos
	sfLastPos
)

var sessionFields = newFieldSet("session_id", "host", "product", "session_key", "start_time", "end_time",
	"client_ip", "client_ptr", "helo", "auth_user", "tls", "mail_from", "recipients", "outcome", "reason",
	"smtp_code", "smtp_reply", "message_id", "size", "delivery", "closed_by", "permanent", "flags",
	"event_count", "max_severity", "outcome_version", "first_pos", "last_pos")

// decodeSession decodes one session record into s, reusing s.Recipients and s.Flags.
//
// A record as record.Session.AppendJSON writes it (every key, in its order, no whitespace) is
// read by decodeSessionCanonical, which checks each key as a fixed token; anything else it
// gives up on, and the general decoder reads the record again from its start, so results
// and errors are the general decoder's (TestDecodeSessionCanonicalSameResults,
// FuzzDecodeSessionCanonical).
func decodeSession(l *lexer, s *record.Session) error {
	_, err := decodeSessionTo(l, s, &noTargets)
	return err
}

// decodeSessionTo is decodeSession with the canonical decoder filling to's arenas as it reads
// (see sessionTargets); canon reports whether it read the record. If not, or if err is set,
// the arenas may hold some of the record's values (see sessionColumns.dropPartial).
func decodeSessionTo(l *lexer, s *record.Session, to *sessionTargets) (canon bool, err error) {
	i, esc := l.i, len(l.esc)
	if ok, err := decodeSessionCanonical(l, s, to); ok {
		return true, err
	}
	l.i, l.esc = i, l.esc[:esc]
	return false, decodeSessionGeneral(l, s)
}

// decodeSessionGeneral decodes one session record in any key order and layout.
func decodeSessionGeneral(l *lexer, s *record.Session) error {
	rcpts, flags := s.Recipients[:0], s.Flags[:0]
	*s = record.Session{}
	if err := l.expect('{'); err != nil {
		return err
	}
	var n int64
	var seenID, seenStart bool
	next := 0
	for first := true; ; first = false {
		id, k, more, err := l.field(first, sessionFields, &next)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		var str string
		switch id {
		case sfSessionID:
			s.SessionID, err = l.str()
			seenID = true
		case sfHost:
			s.Host, err = l.str()
		case sfProduct:
			s.Product, err = l.str()
		case sfSessionKey:
			s.SessionKey, err = l.str()
		case sfStartTime:
			s.StartTime, err = l.time()
			seenStart = true
		case sfEndTime:
			s.EndTime, err = l.time()
		case sfClientIP:
			s.ClientIP, err = l.str()
		case sfClientPTR:
			s.ClientPTR, err = l.str()
		case sfHELO:
			s.HELO, err = l.str()
		case sfAuthUser:
			s.AuthUser, err = l.str()
		case sfTLS:
			s.TLS, err = l.bool()
		case sfMailFrom:
			s.MailFrom, err = l.str()
		case sfRecipients:
			rcpts, err = decodeRecipients(l, rcpts)
		case sfOutcome:
			str, err = l.str()
			s.Outcome = record.Outcome(str)
		case sfReason:
			s.Reason, err = l.str()
		case sfSMTPCode:
			n, err = l.int()
			s.SMTPCode = int(n)
		case sfSMTPReply:
			s.SMTPReply, err = l.str()
		case sfMessageID:
			s.MessageID, err = l.str()
		case sfSize:
			s.Size, err = l.int()
		case sfDelivery:
			str, err = l.str()
			s.Delivery = record.Delivery(str)
		case sfClosedBy:
			str, err = l.str()
			s.ClosedBy = record.ClosedBy(str)
		case sfPermanent:
			s.Permanent, err = l.bool()
		case sfFlags:
			flags, err = decodeStrings(l, flags)
		case sfEventCount:
			n, err = l.int()
			s.EventCount = int(n)
		case sfMaxSeverity:
			s.MaxSeverity, err = l.str()
		case sfOutcomeVersion:
			n, err = l.int()
			s.OutcomeVersion = int(n)
		case sfFirstPos:
			err = l.pos(&s.FirstPos)
		case sfLastPos:
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
	return checkRequired(s, seenID, seenStart)
}

func checkRequired(s *record.Session, seenID, seenStart bool) error {
	if !seenID || s.SessionID == "" {
		return fmt.Errorf("field \"session_id\": missing or empty: %w", errWrongType)
	}
	if !seenStart || s.StartTime.IsZero() {
		return fmt.Errorf("field \"start_time\": missing or empty: %w", errWrongType)
	}
	return nil
}

var recipientFields = newFieldSet("address", "outcome", "smtp_code", "reply")

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
		next := 0
		for kfirst := true; ; kfirst = false {
			id, k, more, err := l.field(kfirst, recipientFields, &next)
			if err != nil {
				return dst, err
			}
			if !more {
				break
			}
			var str string
			var n int64
			switch id {
			case 0:
				r.Address, err = l.str()
			case 1:
				str, err = l.str()
				r.Outcome = record.Outcome(str)
			case 2:
				n, err = l.int()
				r.SMTPCode = int(n)
			case 3:
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

var eventFields = newFieldSet("time", "host", "product", "dialect", "code", "name", "severity",
	"raw_severity", "session_id", "client_ip", "raw", "pos")

// decodeEvent decodes one notable-event record into e.
func decodeEvent(l *lexer, e *record.Event) error {
	*e = record.Event{}
	if err := l.expect('{'); err != nil {
		return err
	}
	var seenTime bool
	next := 0
	for first := true; ; first = false {
		id, k, more, err := l.field(first, eventFields, &next)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch id {
		case 0:
			e.Time, err = l.time()
			seenTime = true
		case 1:
			e.Host, err = l.str()
		case 2:
			e.Product, err = l.str()
		case 3:
			e.Dialect, err = l.str()
		case 4:
			e.Code, err = l.str()
		case 5:
			e.Name, err = l.str()
		case 6:
			e.Severity, err = l.str()
		case 7:
			e.RawSeverity, err = l.str()
		case 8:
			e.SessionID, err = l.str()
		case 9:
			e.ClientIP, err = l.str()
		case 10:
			e.Raw, err = l.str()
		case 11:
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
