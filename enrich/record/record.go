// Package record owns the session record and the notable-event record: the enricher's output,
// the wire form on mxtrail.sessions and mxtrail.events (one JSON object per line, snake_case),
// and the unified outcome vocabulary that labels them. The sink imports it to decode.
package record

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// Position locates a line in its source: a file path and byte offset for files, or
// "topic/partition" and the Kafka offset on the stream.
type Position struct {
	Source string `json:"source"`
	Offset int64  `json:"offset"`
}

// Recipient is one RCPT TO of a session and what happened to it.
type Recipient struct {
	Address  string  `json:"address"`
	Outcome  Outcome `json:"outcome"`
	SMTPCode int     `json:"smtp_code"`
	Reply    string  `json:"reply"`
}

// Session is one SMTP session (and its message, when there was one) joined from all the lines
// that belong to it.
type Session struct {
	SessionID      string      `json:"session_id"`
	Host           string      `json:"host"`
	Product        string      `json:"product"`
	SessionKey     string      `json:"session_key"`
	StartTime      time.Time   `json:"start_time"`
	EndTime        time.Time   `json:"end_time"`
	ClientIP       string      `json:"client_ip"`
	ClientPTR      string      `json:"client_ptr"`
	HELO           string      `json:"helo"`
	AuthUser       string      `json:"auth_user"`
	TLS            bool        `json:"tls"`
	MailFrom       string      `json:"mail_from"`
	Recipients     []Recipient `json:"recipients"`
	Outcome        Outcome     `json:"outcome"`
	Reason         string      `json:"reason"`
	SMTPCode       int         `json:"smtp_code"`
	SMTPReply      string      `json:"smtp_reply"`
	MessageID      string      `json:"message_id"`
	Size           int64       `json:"size"`
	Delivery       Delivery    `json:"delivery"`
	ClosedBy       ClosedBy    `json:"closed_by"`
	Permanent      bool        `json:"permanent"`
	Flags          []string    `json:"flags"`
	EventCount     int         `json:"event_count"`
	MaxSeverity    string      `json:"max_severity"`
	OutcomeVersion int         `json:"outcome_version"`
	FirstPos       Position    `json:"first_pos"`
	LastPos        Position    `json:"last_pos"`
}

// Event is a notable event (error severity or above, or named by the alert catalogue) for the
// events stream and the ClickHouse events table.
type Event struct {
	Time        time.Time `json:"time"`
	Host        string    `json:"host"`
	Product     string    `json:"product"`
	Dialect     string    `json:"dialect"`
	Code        string    `json:"code"`
	Name        string    `json:"name"`
	Severity    string    `json:"severity"`     // normalised syslog level name
	RawSeverity string    `json:"raw_severity"` // the product's own level
	SessionID   string    `json:"session_id"`
	ClientIP    string    `json:"client_ip"`
	Raw         string    `json:"raw"`
	Pos         Position  `json:"pos"`
}

// NewSessionID derives a deterministic session id from what identifies a session: its host,
// product, product session key and the position of its first line. Replaying the same lines
// yields the same id, which is what lets the sink collapse replays.
func NewSessionID(host, product, key string, first Position) string {
	h := sha256.New()
	var n [8]byte
	for _, s := range [...]string{host, product, key, first.Source} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(n[:], uint64(first.Offset))
	h.Write(n[:])
	var sum [32]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
