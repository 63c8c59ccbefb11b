package clickhouse

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/mxtrail/mxtrail/enrich/record"
)

var errRange = errors.New("out of range")

// sessionColumns holds a batch of session rows column by column, so an insert appends each
// column once instead of each row once (half the client CPU, MEASURED.md), and so the same
// values can be re-sent on retry.
//
// String columns are byte arenas (strCol), filled while the decoded record is still in cache.
// Keeping Go strings that point into the Kafka messages instead made every insert walk 33
// columns x 100k rows of scattered memory (a cache miss per value, ~60% of the insert CPU in a
// profile), kept every message alive until the insert, and gave the GC millions of pointers to
// scan; the arenas hold no pointers and are read sequentially.
type sessionColumns struct {
	ipv6 bool // client_ip as IPv6 ([16]byte) rather than String

	sessionID, host, product, sessionKey strCol
	startTime, endTime                   []time.Time
	clientIP                             strCol
	clientIP6                            [][16]byte
	clientPTR, helo, authUser            strCol
	tls                                  []uint8
	mailFrom                             strCol
	rcptAddress, rcptOutcome, rcptReply  strArrCol
	rcptCode                             u16ArrCol
	outcome, reason                      strCol
	smtpCode                             []uint16
	smtpReply, messageID                 strCol
	size                                 []uint64
	delivery, closedBy                   strCol
	permanent                            []uint8
	flags                                strArrCol
	eventCount                           []uint32
	maxSeverity                          strCol
	outcomeVersion                       []uint16
	firstSource, lastSource              strCol
	firstOffset, lastOffset              []int64
	// Computed here rather than by the server (migration 0002): the same values as the
	// columns' DEFAULT expressions, see senderDomain and clientNet.
	senderDomain strCol
	clientNet    strCol     // old servers: the network as text
	clientNet6   [][16]byte // IPv6 servers
}

var sessionColumnNames = []string{
	"session_id", "host", "product", "session_key", "start_time", "end_time", "client_ip",
	"client_ptr", "helo", "auth_user", "tls", "mail_from", "rcpt_address", "rcpt_outcome",
	"rcpt_smtp_code", "rcpt_reply", "outcome", "reason", "smtp_code", "smtp_reply", "message_id",
	"size", "delivery", "closed_by", "permanent", "flags", "event_count", "max_severity",
	"outcome_version", "first_source", "first_offset", "last_source", "last_offset",
	"sender_domain", "client_net",
}

func (c *sessionColumns) len() int { return len(c.startTime) }

// sessionFixedWire is a session row's bytes in fixed-width columns on the wire: tls 1,
// smtp_code 2, size 8, permanent 1, event_count 4, outcome_version 2, first_offset and
// last_offset 8 each, and the UInt64 offsets of its five array columns (40). The two time
// columns and, on IPv6 servers, client_ip and client_net (16 each) come on top.
const sessionFixedWire = 1 + 2 + 8 + 1 + 4 + 2 + 8 + 8 + 5*8

// wireBytes is the insert bytes of the rows (see Batch.Bytes), read off the arenas: a
// handful of additions per column, whatever the rows. timeW is a time column's width. Each
// string value is counted with a one-byte length prefix: values of 128 bytes or more take
// two (or more), which this leaves out (a fraction of a percent of such a value).
func (c *sessionColumns) wireBytes(timeW int) int {
	rows := c.len()
	fixed := sessionFixedWire + 2*timeW
	if c.ipv6 {
		fixed += 2 * 16
	}
	n := rows*fixed + 2*len(c.rcptCode.elems)
	for _, s := range c.strCols() {
		n += len(s.buf) + len(s.end)
	}
	return n
}

// strWire is a String value's bytes in a Native column: a uvarint length, then the bytes.
func strWire(s string) int {
	n := len(s) + 1
	for l := len(s) >> 7; l > 0; l >>= 7 {
		n++
	}
	return n
}

// values lists the columns in sessionColumnNames order. String columns are strRows and
// Array(String) columns arrRows, row ranges of the arenas, valid until the batch is next
// appended to or reset.
func (c *sessionColumns) values() []any {
	var ip, net any = c.clientIP.rows(), c.clientNet.rows()
	if c.ipv6 {
		ip, net = c.clientIP6, c.clientNet6
	}
	return []any{
		c.sessionID.rows(), c.host.rows(), c.product.rows(), c.sessionKey.rows(), c.startTime, c.endTime, ip,
		c.clientPTR.rows(), c.helo.rows(), c.authUser.rows(), c.tls, c.mailFrom.rows(), c.rcptAddress.rows(),
		c.rcptOutcome.rows(), c.rcptCode.rows(), c.rcptReply.rows(), c.outcome.rows(), c.reason.rows(), c.smtpCode,
		c.smtpReply.rows(), c.messageID.rows(), c.size, c.delivery.rows(), c.closedBy.rows(), c.permanent,
		c.flags.rows(), c.eventCount, c.maxSeverity.rows(), c.outcomeVersion, c.firstSource.rows(), c.firstOffset,
		c.lastSource.rows(), c.lastOffset, c.senderDomain.rows(), net,
	}
}

// strCols lists every String arena of the table, the array columns' element arenas included.
func (c *sessionColumns) strCols() [24]*strCol {
	return [...]*strCol{&c.sessionID, &c.host, &c.product, &c.sessionKey, &c.clientIP, &c.clientPTR,
		&c.helo, &c.authUser, &c.mailFrom, &c.outcome, &c.reason, &c.smtpReply, &c.messageID, &c.delivery,
		&c.closedBy, &c.maxSeverity, &c.firstSource, &c.lastSource, &c.senderDomain, &c.clientNet,
		&c.rcptAddress.elems, &c.rcptOutcome.elems, &c.rcptReply.elems, &c.flags.elems}
}

// sessionSizes is how full a batch's session columns got: rows, and bytes and values per
// String arena (see sizeHint).
type sessionSizes struct {
	rows, codes int
	str         [24][2]int
}

func (c *sessionColumns) sizes() sessionSizes {
	z := sessionSizes{rows: c.len(), codes: len(c.rcptCode.elems)}
	for i, s := range c.strCols() {
		z.str[i] = [2]int{len(s.buf), len(s.end)}
	}
	return z
}

// grow makes room for rows of sizes z (in all: what the columns hold counts) without growing
// on the way. An arena grown by append from empty copies itself at every doubling: 17% of
// the sink's CPU in a 400k-row run, whose MaxInFlight+1 batches are each filled from empty
// once.
func (c *sessionColumns) grow(z sessionSizes) {
	for i, s := range c.strCols() {
		// The computed columns make room for their longest value before writing one
		// (addClientNet): the slack keeps the last value of a batch like z's from growing.
		s.buf = growCap(s.buf, z.str[i][0]+arenaSlack)
		s.end = growCap(s.end, z.str[i][1])
	}
	n := z.rows
	for _, a := range [...]*strArrCol{&c.rcptAddress, &c.rcptOutcome, &c.rcptReply, &c.flags} {
		a.rowEnd = growCap(a.rowEnd, n)
	}
	c.rcptCode.elems, c.rcptCode.rowEnd = growCap(c.rcptCode.elems, z.codes), growCap(c.rcptCode.rowEnd, n)
	c.startTime, c.endTime = growCap(c.startTime, n), growCap(c.endTime, n)
	if c.ipv6 {
		c.clientIP6, c.clientNet6 = growCap(c.clientIP6, n), growCap(c.clientNet6, n)
	}
	c.tls, c.permanent = growCap(c.tls, n), growCap(c.permanent, n)
	c.smtpCode, c.outcomeVersion = growCap(c.smtpCode, n), growCap(c.outcomeVersion, n)
	c.size, c.eventCount = growCap(c.size, n), growCap(c.eventCount, n)
	c.firstOffset, c.lastOffset = growCap(c.firstOffset, n), growCap(c.lastOffset, n)
}

// arenaSlack is the room sessionColumns.grow adds to each arena: more than the longest value
// addClientNet makes room for.
const arenaSlack = 64

// growCap returns s with a capacity of at least n, its values kept. Unlike slices.Grow it does
// not clear the new room itself: memory the runtime takes fresh from the OS is zero already
// and stays untouched (no page faults) until a value is written there, so room a batch never
// fills costs address space only; slices.Grow wrote zeros over all of it (memclr was the
// first touch of ~half the sink's page faults in a 1M-record run: perf -e page-faults).
func growCap[E any](s []E, n int) []E {
	if n <= cap(s) {
		return s
	}
	g := make([]E, len(s), n)
	copy(g, s)
	return g
}

func (c *sessionColumns) reset() {
	cols := c.strCols()
	for _, s := range cols[:20] { // the array columns reset their element arenas
		s.reset()
	}
	for _, a := range []*strArrCol{&c.rcptAddress, &c.rcptOutcome, &c.rcptReply, &c.flags} {
		a.reset()
	}
	c.startTime, c.endTime, c.clientIP6, c.clientNet6, c.tls = c.startTime[:0], c.endTime[:0], c.clientIP6[:0], c.clientNet6[:0], c.tls[:0]
	c.rcptCode.reset()
	c.smtpCode, c.size, c.permanent = c.smtpCode[:0], c.size[:0], c.permanent[:0]
	c.eventCount, c.outcomeVersion, c.firstOffset, c.lastOffset = c.eventCount[:0], c.outcomeVersion[:0], c.firstOffset[:0], c.lastOffset[:0]
}

// strCol is a String column: the values back to back in one arena, and where each ends.
type strCol struct {
	buf  []byte
	end  []uint32 // 32-bit: see MaxBatchBytes
	view []string // scratch for views
}

func (c *strCol) add(s string) {
	if !c.fits(len(s)) {
		c.grow(len(s))
	}
	c.buf = append(c.buf, s...)
	c.end = append(c.end, uint32(len(c.buf)))
}

// fits reports whether one more value of up to n bytes fits without growing (see grow).
func (c *strCol) fits(n int) bool { return len(c.buf)+n <= cap(c.buf) && len(c.end) < cap(c.end) }

// grow doubles the arena (to fit n more bytes) and the end offsets when full. append grows a
// large slice by a quarter at a time: an arena filled from empty was copied ~20 times and
// left ~4x its size as garbage, where doubling copies it about once. A batch slot grows
// from empty in its first fill (before a size hint exists, or when only BatchAge closes
// batches) and whenever a batch outgrows the ones before it in the slot.
func (c *strCol) grow(n int) {
	if len(c.buf)+n > cap(c.buf) {
		c.buf = growCap(c.buf, len(c.buf)+max(n, cap(c.buf), 256))
	}
	if len(c.end) == cap(c.end) {
		c.end = growCap(c.end, len(c.end)+max(cap(c.end), 64))
	}
}

func (c *strCol) len() int { return len(c.end) }

// truncate keeps the first n values (no-op when there are no more).
func (c *strCol) truncate(n int) {
	if len(c.end) <= n {
		return
	}
	c.end = c.end[:n]
	if n == 0 {
		c.buf = c.buf[:0]
	} else {
		c.buf = c.buf[:int(c.end[n-1])]
	}
}

func (c *strCol) reset() {
	c.buf, c.end = c.buf[:0], c.end[:0]
	clear(c.view)
	c.view = c.view[:0]
}

// views returns the values as strings pointing into the arena (no copy), valid until the next
// add or reset.
func (c *strCol) views() []string { return c.rows().views() }

// strRows is rows [lo, hi) of a String arena column, as values() hands it to the writer: a
// String column is copied from the arena in one piece (see appendStrRows), other columns
// get views.
type strRows struct {
	c      *strCol
	lo, hi int
}

func (c *strCol) rows() strRows { return strRows{c, 0, c.len()} }

// endRange returns [start, end) of rows [lo, hi) in a store where row i ends at ends[i]
// (an arena's byte offsets, an array column's element indexes); empty for no rows.
func endRange[E int | uint32](ends []E, lo, hi int) (int, int) {
	start, end := 0, 0
	if lo > 0 {
		start = int(ends[lo-1])
	}
	if hi > 0 {
		end = int(ends[hi-1])
	}
	return start, max(start, end)
}

// bytes returns the arena bytes of the rows and the arena offset they start at.
func (r strRows) bytes() ([]byte, int) {
	start, end := endRange(r.c.end, r.lo, r.hi)
	return r.c.buf[start:end], start
}

// views returns the rows as strings pointing into the arena (no copy), valid until the
// column's next add, reset or views call.
func (r strRows) views() []string {
	c := r.c
	c.view = c.view[:0]
	_, start := r.bytes()
	for _, e := range c.end[r.lo:r.hi] {
		c.view = append(c.view, arenaString(c.buf, start, int(e)))
		start = int(e)
	}
	return c.view
}

func arenaString(buf []byte, start, end int) string {
	if end == start {
		return ""
	}
	return unsafe.String(&buf[start], end-start)
}

// strArrCol is an Array(String) column: every element in one strCol, and where each row ends.
type strArrCol struct {
	elems  strCol
	rowEnd []int
	view   [][]string // scratch for views
}

// endRow closes the row holding the elements added since the previous endRow.
func (c *strArrCol) endRow() { c.rowEnd = append(c.rowEnd, c.elems.len()) }

func (c *strArrCol) reset() {
	c.elems.reset()
	c.rowEnd = c.rowEnd[:0]
	clear(c.view)
	c.view = c.view[:0]
}

// views returns one []string per row, pointing into the arena, valid until the next add or reset.
func (c *strArrCol) views() [][]string { return c.rows().views() }

// arrRows is rows [lo, hi) of an Array(String) arena column, as values() hands it to the writer
// (see appendArrRows).
type arrRows struct {
	c      *strArrCol
	lo, hi int
}

func (c *strArrCol) rows() arrRows { return arrRows{c, 0, len(c.rowEnd)} }

// elems returns the elements of the rows.
func (r arrRows) elems() strRows {
	lo, hi := endRange(r.c.rowEnd, r.lo, r.hi)
	return strRows{&r.c.elems, lo, hi}
}

// views returns one []string per row, pointing into the arena, valid until the column's next
// add, reset or views call.
func (r arrRows) views() [][]string {
	el := r.elems()
	flat := el.views()
	c := r.c
	c.view = c.view[:0]
	start := el.lo
	for _, e := range c.rowEnd[r.lo:r.hi] {
		c.view = append(c.view, flat[start-el.lo:e-el.lo:e-el.lo])
		start = e
	}
	return c.view
}

// u16ArrCol is an Array(UInt16) column: every element in one slice, and where each row ends.
type u16ArrCol struct {
	elems  []uint16
	rowEnd []int
	view   [][]uint16 // scratch for views
}

func (c *u16ArrCol) reset() {
	c.elems, c.rowEnd = c.elems[:0], c.rowEnd[:0]
	clear(c.view)
	c.view = c.view[:0]
}

func (c *u16ArrCol) rows() u16ArrRows { return u16ArrRows{c, 0, len(c.rowEnd)} }

// u16ArrRows is rows [lo, hi) of an Array(UInt16) column (see appendArrRows).
type u16ArrRows struct {
	c      *u16ArrCol
	lo, hi int
}

// elems returns the elements of the rows and the index of the first.
func (r u16ArrRows) elems() ([]uint16, int) {
	lo, hi := endRange(r.c.rowEnd, r.lo, r.hi)
	return r.c.elems[lo:hi], lo
}

// views returns one []uint16 per row, valid until the column's next append, reset or views call.
func (r u16ArrRows) views() [][]uint16 {
	c := r.c
	c.view = c.view[:0]
	_, start := r.elems()
	for _, e := range c.rowEnd[r.lo:r.hi] {
		c.view = append(c.view, c.elems[start:e:e])
		start = e
	}
	return c.view
}

// check converts what needs converting and rejects values the columns cannot hold, before
// anything is appended, so a bad record leaves the columns untouched.
func checkSession(s *record.Session, dateTime64 bool) (ip [16]byte, err error) {
	if v4, ok := parseIPv4(s.ClientIP); ok {
		ip = v4
	} else if s.ClientIP != "" {
		a, perr := netip.ParseAddr(s.ClientIP)
		if perr != nil {
			return ip, fmt.Errorf("client_ip %q: %w", s.ClientIP, perr)
		}
		ip = a.As16()
	}
	if s.SMTPCode < 0 || s.SMTPCode > math.MaxUint16 {
		return ip, fmt.Errorf("smtp_code %d: %w", s.SMTPCode, errRange)
	}
	for i := range s.Recipients {
		if c := s.Recipients[i].SMTPCode; c < 0 || c > math.MaxUint16 {
			return ip, fmt.Errorf("recipient %d smtp_code %d: %w", i, c, errRange)
		}
	}
	if s.Size < 0 {
		return ip, fmt.Errorf("size %d: %w", s.Size, errRange)
	}
	if s.EventCount < 0 || int64(s.EventCount) > math.MaxUint32 {
		return ip, fmt.Errorf("event_count %d: %w", s.EventCount, errRange)
	}
	if s.OutcomeVersion < 0 || s.OutcomeVersion > math.MaxUint16 {
		return ip, fmt.Errorf("outcome_version %d: %w", s.OutcomeVersion, errRange)
	}
	if !dateTime64 {
		// The DateTime fall-back holds 1970..2105 only.
		for _, t := range []time.Time{s.StartTime, s.EndTime} {
			if !t.IsZero() && (t.Unix() < 0 || t.Unix() > math.MaxUint32) {
				return ip, fmt.Errorf("time %s: %w", t.Format(time.RFC3339), errRange)
			}
		}
	}
	return ip, nil
}

// parseIPv4 parses a dotted-quad IPv4 address as netip.ParseAddr does (four decimal fields of
// 0-255 without leading zeros) to its IPv4-mapped 16 bytes (netip's parseIPv4Fields was 1.5% of
// the sink). It reports false for anything else, valid or not, which netip.ParseAddr then
// decides.
func parseIPv4(s string) (ip [16]byte, ok bool) {
	if len(s) < 7 || len(s) > 15 {
		return ip, false
	}
	ip[10], ip[11] = 0xff, 0xff
	i := 0
	for f := 12; f < 16; f++ {
		if f > 12 {
			if i >= len(s) || s[i] != '.' {
				return ip, false
			}
			i++
		}
		if i >= len(s) || s[i]-'0' > 9 {
			return ip, false
		}
		v := uint(s[i] - '0')
		i++
		for k := 0; k < 2 && i < len(s) && s[i]-'0' <= 9; k++ {
			if v == 0 { // a leading zero
				return ip, false
			}
			v = v*10 + uint(s[i]-'0')
			i++
		}
		if v > 255 {
			return ip, false
		}
		ip[f] = byte(v)
	}
	return ip, i == len(s)
}

// appendSession appends a checked record, copying its strings into the column arenas.
func (c *sessionColumns) appendSession(s *record.Session, ip [16]byte) {
	c.appendStrings(s)
	c.appendRest(s, ip)
}

// appendStrings appends the record's string values to the arenas that targets lists, in the
// order the canonical decoder fills them.
func (c *sessionColumns) appendStrings(s *record.Session) {
	c.sessionID.add(s.SessionID)
	c.host.add(s.Host)
	c.product.add(s.Product)
	c.sessionKey.add(s.SessionKey)
	if !c.ipv6 {
		c.clientIP.add(s.ClientIP)
	}
	c.clientPTR.add(s.ClientPTR)
	c.helo.add(s.HELO)
	c.authUser.add(s.AuthUser)
	c.mailFrom.add(s.MailFrom)
	for i := range s.Recipients {
		r := &s.Recipients[i]
		c.rcptAddress.elems.add(r.Address)
		c.rcptOutcome.elems.add(string(r.Outcome))
		c.rcptReply.elems.add(r.Reply)
	}
	c.outcome.add(string(s.Outcome))
	c.reason.add(s.Reason)
	c.smtpReply.add(s.SMTPReply)
	c.messageID.add(s.MessageID)
	c.delivery.add(string(s.Delivery))
	c.closedBy.add(string(s.ClosedBy))
	for _, f := range s.Flags {
		c.flags.elems.add(f)
	}
	c.maxSeverity.add(s.MaxSeverity)
	c.firstSource.add(s.FirstPos.Source)
	c.lastSource.add(s.LastPos.Source)
}

// targets lists the arenas appendStrings fills, for the canonical decoder to fill instead.
func (c *sessionColumns) targets() sessionTargets {
	t := sessionTargets{
		sessionID: &c.sessionID, host: &c.host, product: &c.product, sessionKey: &c.sessionKey,
		clientPTR: &c.clientPTR, helo: &c.helo, authUser: &c.authUser, mailFrom: &c.mailFrom,
		rcptAddress: &c.rcptAddress.elems, rcptOutcome: &c.rcptOutcome.elems, rcptReply: &c.rcptReply.elems,
		outcome: &c.outcome, reason: &c.reason, smtpReply: &c.smtpReply, messageID: &c.messageID,
		delivery: &c.delivery, closedBy: &c.closedBy, flags: &c.flags.elems, maxSeverity: &c.maxSeverity,
		firstSource: &c.firstSource, lastSource: &c.lastSource,
	}
	if !c.ipv6 {
		t.clientIP = &c.clientIP
	}
	return t
}

// dropPartial removes the values a record that was not appended after all left in the
// arenas (its strings, read into the targets before the record was known to be good): every
// String column holds as many values as the table has rows, every array column's elements
// end where its last row does.
func (c *sessionColumns) dropPartial() {
	rows, cols := c.len(), c.strCols()
	for _, s := range cols[:20] {
		s.truncate(rows)
	}
	for _, a := range [...]*strArrCol{&c.rcptAddress, &c.rcptOutcome, &c.rcptReply, &c.flags} {
		n := 0
		if len(a.rowEnd) > 0 {
			n = a.rowEnd[len(a.rowEnd)-1]
		}
		a.elems.truncate(n)
	}
}

// appendRest appends what appendStrings does not: the other columns, the array rows' ends and
// the computed columns.
func (c *sessionColumns) appendRest(s *record.Session, ip [16]byte) {
	c.startTime = append(c.startTime, s.StartTime)
	end := s.EndTime
	if end.IsZero() {
		end = s.StartTime
	}
	c.endTime = append(c.endTime, end)
	if c.ipv6 {
		c.clientIP6 = append(c.clientIP6, ip)
	}
	c.tls = append(c.tls, b2u(s.TLS))
	c.rcptAddress.endRow()
	c.rcptOutcome.endRow()
	c.rcptReply.endRow()
	for i := range s.Recipients {
		c.rcptCode.elems = append(c.rcptCode.elems, uint16(s.Recipients[i].SMTPCode))
	}
	c.rcptCode.rowEnd = append(c.rcptCode.rowEnd, len(c.rcptCode.elems))
	c.smtpCode = append(c.smtpCode, uint16(s.SMTPCode))
	c.size = append(c.size, uint64(s.Size))
	c.permanent = append(c.permanent, b2u(s.Permanent))
	c.flags.endRow()
	c.eventCount = append(c.eventCount, uint32(s.EventCount))
	c.outcomeVersion = append(c.outcomeVersion, uint16(s.OutcomeVersion))
	c.firstOffset = append(c.firstOffset, s.FirstPos.Offset)
	c.lastOffset = append(c.lastOffset, s.LastPos.Offset)
	c.senderDomain.addSenderDomain(s.MailFrom)
	if c.ipv6 {
		c.clientNet6 = append(c.clientNet6, clientNet6(ip))
	} else {
		c.clientNet.addClientNet(s.ClientIP, ip)
	}
}

// addSenderDomain appends what the column's DEFAULT expression computes:
// lower(if(position(mail_from, '@') > 0, substring(mail_from, position(mail_from, '@') + 1), ”))
// -- everything after the first '@', ASCII-lowercased (lower() leaves other bytes alone).
func (c *strCol) addSenderDomain(mailFrom string) {
	if !c.fits(len(mailFrom)) {
		c.grow(len(mailFrom))
	}
	at := strings.IndexByte(mailFrom, '@')
	if at < 0 {
		c.end = append(c.end, uint32(len(c.buf)))
		return
	}
	start := len(c.buf)
	c.buf = append(c.buf, mailFrom[at+1:]...)
	for i := start; i < len(c.buf); i++ {
		if b := c.buf[i]; 'A' <= b && b <= 'Z' {
			c.buf[i] = b + ('a' - 'A')
		}
	}
	c.end = append(c.end, uint32(len(c.buf)))
}

// clientNet6 is IPv6CIDRToRange(client_ip, if(IPv4-mapped, 120, 48)).1: an IPv4 client's /24,
// an IPv6 client's /48 (ip is the address as 16 bytes, IPv4 mapped).
func clientNet6(ip [16]byte) [16]byte {
	if isV4Mapped(ip) {
		ip[15] = 0
		return ip
	}
	clear(ip[6:])
	return ip
}

func isV4Mapped(ip [16]byte) bool {
	return [12]byte(ip[:12]) == [12]byte{10: 0xff, 11: 0xff}
}

// addClientNet appends the old-server text form, what the String column's DEFAULT computes:
// ” for no address; for text with a ':' cutIPv6(IPv6StringToNum(client_ip), 10, 0), the /48;
// otherwise the IPv4 /24 as a.b.c.0. ip is client_ip as checkSession parsed it.
func (c *strCol) addClientNet(clientIP string, ip [16]byte) {
	const longest = len("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	if !c.fits(longest) {
		c.grow(longest)
	}
	switch {
	case clientIP == "":
	case strings.IndexByte(clientIP, ':') >= 0:
		if !isV4Mapped(ip) { // cutIPv6 cuts IPv4-mapped addresses by its IPv4 count, 0 here
			clear(ip[6:])
		}
		c.buf = netip.AddrFrom16(ip).AppendTo(c.buf)
	default:
		// An IPv4 address checkSession took is written canonically (parseIPv4 and
		// netip.ParseAddr refuse leading zeros): its first three fields, as they are.
		c.buf = append(c.buf, clientIP[:strings.LastIndexByte(clientIP, '.')]...)
		c.buf = append(c.buf, ".0"...)
	}
	c.end = append(c.end, uint32(len(c.buf)))
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// eventColumns is the events table's batch.
type eventColumns struct {
	time                                                 []time.Time
	host, product, dialect, code, name, severity, rawSev []string
	sessionID, clientIP, raw, posSource                  []string
	posOffset                                            []int64
}

var eventColumnNames = []string{"time", "host", "product", "dialect", "code", "name", "severity",
	"raw_severity", "session_id", "client_ip", "raw", "pos_source", "pos_offset"}

func (c *eventColumns) len() int { return len(c.time) }

func (c *eventColumns) values() []any {
	return []any{c.time, c.host, c.product, c.dialect, c.code, c.name, c.severity, c.rawSev,
		c.sessionID, c.clientIP, c.raw, c.posSource, c.posOffset}
}

func (c *eventColumns) reset() {
	clear(c.raw)
	*c = eventColumns{time: c.time[:0], host: c.host[:0], product: c.product[:0], dialect: c.dialect[:0],
		code: c.code[:0], name: c.name[:0], severity: c.severity[:0], rawSev: c.rawSev[:0],
		sessionID: c.sessionID[:0], clientIP: c.clientIP[:0], raw: c.raw[:0], posSource: c.posSource[:0],
		posOffset: c.posOffset[:0]}
}

func checkEvent(e *record.Event, modern bool) error {
	if !modern && (e.Time.Unix() < 0 || e.Time.Unix() > math.MaxUint32) {
		return fmt.Errorf("time %s: %w", e.Time.Format(time.RFC3339), errRange)
	}
	return nil
}

// appendEvent appends e and returns its insert bytes but for the time column.
func (c *eventColumns) appendEvent(e *record.Event) int {
	c.time = append(c.time, e.Time)
	c.host = append(c.host, e.Host)
	c.product = append(c.product, e.Product)
	c.dialect = append(c.dialect, e.Dialect)
	c.code = append(c.code, e.Code)
	c.name = append(c.name, e.Name)
	c.severity = append(c.severity, e.Severity)
	c.rawSev = append(c.rawSev, e.RawSeverity)
	c.sessionID = append(c.sessionID, e.SessionID)
	c.clientIP = append(c.clientIP, e.ClientIP)
	c.raw = append(c.raw, e.Raw)
	c.posSource = append(c.posSource, e.Pos.Source)
	c.posOffset = append(c.posOffset, e.Pos.Offset)
	return 8 + strWire(e.Host) + strWire(e.Product) + strWire(e.Dialect) + strWire(e.Code) + strWire(e.Name) +
		strWire(e.Severity) + strWire(e.RawSeverity) + strWire(e.SessionID) + strWire(e.ClientIP) + strWire(e.Raw) +
		strWire(e.Pos.Source)
}

// deadColumns is the deadletter table's batch.
type deadColumns struct {
	time                   []time.Time
	reason, errText, topic []string
	partition              []int32
	offset                 []int64
	key, raw               []string
}

var deadColumnNames = []string{"time", "reason", "error", "topic", "partition", "offset", "key", "raw"}

func (c *deadColumns) len() int { return len(c.time) }

func (c *deadColumns) values() []any {
	return []any{c.time, c.reason, c.errText, c.topic, c.partition, c.offset, c.key, c.raw}
}

func (c *deadColumns) reset() {
	clear(c.raw)
	*c = deadColumns{time: c.time[:0], reason: c.reason[:0], errText: c.errText[:0], topic: c.topic[:0],
		partition: c.partition[:0], offset: c.offset[:0], key: c.key[:0], raw: c.raw[:0]}
}

// DeadLetter is one row of the deadletter table.
type DeadLetter struct {
	Time      time.Time
	Reason    string // bounded set: see the Reason constants
	Error     string
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Raw       string
}

// Dead-letter reasons written by the sink (the metric label set).
const (
	ReasonDecode   = "decode"    // not valid JSON, or a field of the wrong JSON type
	ReasonConvert  = "convert"   // valid JSON whose values the columns cannot hold
	ReasonTooLarge = "too_large" // a field over the size limit
	ReasonUpstream = "upstream"  // read from the dead-letter topic (the enricher's own)
	ReasonRejected = "rejected"  // the server refused the row with a non-retryable error
)

// appendDead appends d and returns its insert bytes but for the time column.
func (c *deadColumns) appendDead(d *DeadLetter) int {
	c.time = append(c.time, d.Time)
	c.reason = append(c.reason, d.Reason)
	c.errText = append(c.errText, d.Error)
	c.topic = append(c.topic, d.Topic)
	c.partition = append(c.partition, d.Partition)
	c.offset = append(c.offset, d.Offset)
	c.key = append(c.key, d.Key)
	c.raw = append(c.raw, d.Raw)
	return 4 + 8 + strWire(d.Reason) + strWire(d.Error) + strWire(d.Topic) + strWire(d.Key) + strWire(d.Raw)
}
