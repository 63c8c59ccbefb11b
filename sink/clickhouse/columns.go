package clickhouse

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/mxtrail/mxtrail/enrich/record"
)

var errRange = errors.New("out of range")

// sessionColumns holds a batch of session rows column by column, so an insert appends each
// column once instead of each row once (half the client CPU, MEASURED.md), and so the same
// values can be re-sent on retry. Array columns are sub-slices of flat backing slices: one
// allocation per growth, not one per row.
type sessionColumns struct {
	ipv6 bool // client_ip as IPv6 ([16]byte) rather than String

	sessionID, host, product, sessionKey []string
	startTime, endTime                   []time.Time
	clientIP                             []string
	clientIP6                            [][16]byte
	clientPTR, helo, authUser            []string
	tls                                  []uint8
	mailFrom                             []string
	rcptAddress, rcptOutcome, rcptReply  [][]string
	rcptCode                             [][]uint16
	outcome, reason                      []string
	smtpCode                             []uint16
	smtpReply, messageID                 []string
	size                                 []uint64
	delivery, closedBy                   []string
	permanent                            []uint8
	flags                                [][]string
	eventCount                           []uint32
	maxSeverity                          []string
	outcomeVersion                       []uint16
	firstSource, lastSource              []string
	firstOffset, lastOffset              []int64

	flatStr []string
	flatU16 []uint16
}

var sessionColumnNames = []string{
	"session_id", "host", "product", "session_key", "start_time", "end_time", "client_ip",
	"client_ptr", "helo", "auth_user", "tls", "mail_from", "rcpt_address", "rcpt_outcome",
	"rcpt_smtp_code", "rcpt_reply", "outcome", "reason", "smtp_code", "smtp_reply", "message_id",
	"size", "delivery", "closed_by", "permanent", "flags", "event_count", "max_severity",
	"outcome_version", "first_source", "first_offset", "last_source", "last_offset",
}

func (c *sessionColumns) len() int { return len(c.sessionID) }

// values lists the column slices in sessionColumnNames order.
func (c *sessionColumns) values() []any {
	var ip any = c.clientIP
	if c.ipv6 {
		ip = c.clientIP6
	}
	return []any{
		c.sessionID, c.host, c.product, c.sessionKey, c.startTime, c.endTime, ip,
		c.clientPTR, c.helo, c.authUser, c.tls, c.mailFrom, c.rcptAddress, c.rcptOutcome,
		c.rcptCode, c.rcptReply, c.outcome, c.reason, c.smtpCode, c.smtpReply, c.messageID,
		c.size, c.delivery, c.closedBy, c.permanent, c.flags, c.eventCount, c.maxSeverity,
		c.outcomeVersion, c.firstSource, c.firstOffset, c.lastSource, c.lastOffset,
	}
}

func (c *sessionColumns) reset() {
	ipv6 := c.ipv6
	flatStr, flatU16 := c.flatStr[:0], c.flatU16[:0]
	// Clear string slices before truncating so the previous batch's input can be collected.
	clear(c.flatStr)
	*c = sessionColumns{
		ipv6: ipv6, flatStr: flatStr, flatU16: flatU16,
		sessionID: c.sessionID[:0], host: c.host[:0], product: c.product[:0], sessionKey: c.sessionKey[:0],
		startTime: c.startTime[:0], endTime: c.endTime[:0], clientIP: c.clientIP[:0], clientIP6: c.clientIP6[:0],
		clientPTR: c.clientPTR[:0], helo: c.helo[:0], authUser: c.authUser[:0], tls: c.tls[:0],
		mailFrom: c.mailFrom[:0], rcptAddress: c.rcptAddress[:0], rcptOutcome: c.rcptOutcome[:0],
		rcptReply: c.rcptReply[:0], rcptCode: c.rcptCode[:0], outcome: c.outcome[:0], reason: c.reason[:0],
		smtpCode: c.smtpCode[:0], smtpReply: c.smtpReply[:0], messageID: c.messageID[:0], size: c.size[:0],
		delivery: c.delivery[:0], closedBy: c.closedBy[:0], permanent: c.permanent[:0], flags: c.flags[:0],
		eventCount: c.eventCount[:0], maxSeverity: c.maxSeverity[:0], outcomeVersion: c.outcomeVersion[:0],
		firstSource: c.firstSource[:0], lastSource: c.lastSource[:0], firstOffset: c.firstOffset[:0],
		lastOffset: c.lastOffset[:0],
	}
}

// check converts what needs converting and rejects values the columns cannot hold, before
// anything is appended, so a bad record leaves the columns untouched.
func checkSession(s *record.Session, dateTime64 bool) (ip [16]byte, err error) {
	if s.ClientIP != "" {
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

// appendSession appends a checked record.
func (c *sessionColumns) appendSession(s *record.Session, ip [16]byte) {
	c.sessionID = append(c.sessionID, s.SessionID)
	c.host = append(c.host, s.Host)
	c.product = append(c.product, s.Product)
	c.sessionKey = append(c.sessionKey, s.SessionKey)
	c.startTime = append(c.startTime, s.StartTime)
	end := s.EndTime
	if end.IsZero() {
		end = s.StartTime
	}
	c.endTime = append(c.endTime, end)
	if c.ipv6 {
		c.clientIP6 = append(c.clientIP6, ip)
	} else {
		c.clientIP = append(c.clientIP, s.ClientIP)
	}
	c.clientPTR = append(c.clientPTR, s.ClientPTR)
	c.helo = append(c.helo, s.HELO)
	c.authUser = append(c.authUser, s.AuthUser)
	c.tls = append(c.tls, b2u(s.TLS))
	c.mailFrom = append(c.mailFrom, s.MailFrom)

	n := len(s.Recipients)
	start := len(c.flatStr)
	for i := range s.Recipients {
		c.flatStr = append(c.flatStr, s.Recipients[i].Address)
	}
	for i := range s.Recipients {
		c.flatStr = append(c.flatStr, string(s.Recipients[i].Outcome))
	}
	for i := range s.Recipients {
		c.flatStr = append(c.flatStr, s.Recipients[i].Reply)
	}
	// Sub-slices stay valid when flatStr later grows: they keep the old backing array.
	c.rcptAddress = append(c.rcptAddress, c.flatStr[start:start+n:start+n])
	c.rcptOutcome = append(c.rcptOutcome, c.flatStr[start+n:start+2*n:start+2*n])
	c.rcptReply = append(c.rcptReply, c.flatStr[start+2*n:start+3*n:start+3*n])
	u := len(c.flatU16)
	for i := range s.Recipients {
		c.flatU16 = append(c.flatU16, uint16(s.Recipients[i].SMTPCode))
	}
	c.rcptCode = append(c.rcptCode, c.flatU16[u:u+n:u+n])

	c.outcome = append(c.outcome, string(s.Outcome))
	c.reason = append(c.reason, s.Reason)
	c.smtpCode = append(c.smtpCode, uint16(s.SMTPCode))
	c.smtpReply = append(c.smtpReply, s.SMTPReply)
	c.messageID = append(c.messageID, s.MessageID)
	c.size = append(c.size, uint64(s.Size))
	c.delivery = append(c.delivery, string(s.Delivery))
	c.closedBy = append(c.closedBy, string(s.ClosedBy))
	c.permanent = append(c.permanent, b2u(s.Permanent))
	f := len(c.flatStr)
	c.flatStr = append(c.flatStr, s.Flags...)
	c.flags = append(c.flags, c.flatStr[f:len(c.flatStr):len(c.flatStr)])
	c.eventCount = append(c.eventCount, uint32(s.EventCount))
	c.maxSeverity = append(c.maxSeverity, s.MaxSeverity)
	c.outcomeVersion = append(c.outcomeVersion, uint16(s.OutcomeVersion))
	c.firstSource = append(c.firstSource, s.FirstPos.Source)
	c.firstOffset = append(c.firstOffset, s.FirstPos.Offset)
	c.lastSource = append(c.lastSource, s.LastPos.Source)
	c.lastOffset = append(c.lastOffset, s.LastPos.Offset)
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

func (c *eventColumns) appendEvent(e *record.Event) {
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
)

func (c *deadColumns) appendDead(d *DeadLetter) {
	c.time = append(c.time, d.Time)
	c.reason = append(c.reason, d.Reason)
	c.errText = append(c.errText, d.Error)
	c.topic = append(c.topic, d.Topic)
	c.partition = append(c.partition, d.Partition)
	c.offset = append(c.offset, d.Offset)
	c.key = append(c.key, d.Key)
	c.raw = append(c.raw, d.Raw)
}
