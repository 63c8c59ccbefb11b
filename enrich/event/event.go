// Package event owns the type for one parsed log line: an Event with fixed, typed fields that
// are views into a buffer the Event owns, so a caller can reuse one Event (or a slice of them)
// for every line and the parser allocates nothing per line in steady state.
package event

import (
	"time"
)

// Product is the software that wrote a line.
type Product uint8

// Products. The String form is the `product` key of `mxtrail parse`.
const (
	ProductUnknown Product = iota
	ProductSpamdyke
	ProductQmail
	ProductICDSoft
	ProductSmtpf
	ProductIsode
	ProductMailEnable
	ProductIMail
	numProducts
)

var productNames = [numProducts]string{"unknown", "spamdyke", "qmail", "icdsoft", "smtpf", "isode", "mailenable", "imail"}

func (p Product) String() string {
	if p < numProducts {
		return productNames[p]
	}
	return "unknown"
}

// Dialect is one line layout. Its String form is the `--format` name.
type Dialect uint8

// Dialects. DialectAuto asks the router to detect the dialect per line.
const (
	DialectAuto Dialect = iota
	DialectSpamdyke
	DialectQmail
	DialectICDSoftSMTP
	DialectICDSoftDelivery
	DialectSmtpf
	DialectIsode
	DialectMailEnableActivity
	DialectMailEnableDebug
	DialectIMail
	NumDialects
)

var dialectNames = [NumDialects]string{"auto", "spamdyke", "qmail", "icdsoft-smtp", "icdsoft-delivery", "smtpf", "isode", "mailenable-activity", "mailenable-debug", "imail"}

var dialectProducts = [NumDialects]Product{ProductUnknown, ProductSpamdyke, ProductQmail, ProductICDSoft, ProductICDSoft, ProductSmtpf, ProductIsode, ProductMailEnable, ProductMailEnable, ProductIMail}

func (d Dialect) String() string {
	if d < NumDialects {
		return dialectNames[d]
	}
	return "auto"
}

// Product is the product that writes lines of this dialect.
func (d Dialect) Product() Product {
	if d < NumDialects {
		return dialectProducts[d]
	}
	return ProductUnknown
}

// ParseDialect maps a --format name to a Dialect.
func ParseDialect(s string) (Dialect, bool) {
	for i, n := range dialectNames {
		if n == s {
			return Dialect(i), true
		}
	}
	return DialectAuto, false
}

// DialectNames lists every --format name, "auto" first.
func DialectNames() []string { return append([]string(nil), dialectNames[:]...) }

// Severity is a syslog level (RFC 5424 order). SeverityUnset means the line carries none and
// the catalogue knows none.
type Severity uint8

// Severities, most severe first; SeverityUnset is the zero value.
const (
	SeverityUnset Severity = iota
	SeverityEmergency
	SeverityAlert
	SeverityCritical
	SeverityError
	SeverityWarning
	SeverityNotice
	SeverityInfo
	SeverityDebug
)

var severityNames = [...]string{"", "emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"}

func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return ""
}

// SeverityFromSyslog converts a syslog level 0..7 (the low three bits of a PRI).
func SeverityFromSyslog(level int) Severity {
	if level < 0 || level > 7 {
		return SeverityUnset
	}
	return Severity(level + 1)
}

// Field names one typed value of an event.
type Field uint8

// Fields. Each has a fixed slot in Event; FieldName gives its JSON key.
const (
	FieldClientIP Field = iota
	FieldClientPort
	FieldClientPTR
	FieldHelo
	FieldSender
	FieldRecipient
	FieldReplyCode
	FieldEnhancedCode
	FieldReplyText
	FieldSize
	FieldMessageID
	FieldQueueID
	FieldDNSBL
	FieldSPF
	FieldAuthUser
	FieldTLS
	FieldFlags
	FieldDeliveryNum
	FieldDeliveryResult
	FieldDeliveryChannel
	FieldReason
	FieldPID
	FieldProcess
	FieldFacility
	FieldCommand
	FieldServerIP
	FieldRemoteHost
	FieldBytesSent
	FieldBytesRecv
	FieldStatus
	FieldText
	NumFields
)

var fieldNames = [NumFields]string{
	"client_ip", "client_port", "client_ptr", "helo", "sender", "recipient", "reply_code",
	"enhanced_code", "reply_text", "size", "message_id", "queue_id", "dnsbl", "spf", "auth_user",
	"tls", "flags", "delivery_num", "delivery_result", "delivery_channel", "reason", "pid",
	"process", "facility", "command", "server_ip", "remote_host", "bytes_sent", "bytes_recv",
	"status", "text",
}

func (f Field) String() string {
	if f < NumFields {
		return fieldNames[f]
	}
	return ""
}

// FieldByName maps a JSON key (also a grok capture name) to its Field.
func FieldByName(name string) (Field, bool) {
	for i, n := range fieldNames {
		if n == name {
			return Field(i), true
		}
	}
	return 0, false
}

// Span is a view [Off, Off+Len) into Event.Buf. The zero Span is "absent".
type Span struct{ Off, Len uint32 }

// Empty reports whether the span holds nothing.
func (s Span) Empty() bool { return s.Len == 0 }

// Source says where a line came from and how to read what the line leaves out.
// Year and location handling is pure: nothing here reads a clock.
type Source struct {
	Host    string         // used when the line names no host
	Dialect Dialect        // a pinned dialect; DialectAuto to detect per line
	File    string         // file name or stream name, for the source position
	Line    int64          // 1-based line number
	Offset  int64          // byte offset of the line in the file or partition
	Loc     *time.Location // zone of lines without one; nil means UTC
	// YearRef anchors lines without a year (syslog, IMail): a line gets YearRef's year,
	// or the year before when its date would fall more than about a month after YearRef,
	// so a file running Dec→Jan with YearRef = its mtime gets both years right. Zero means
	// no reference: the parser uses DefaultYear from its options.
	YearRef time.Time
}

// Position is where a line was read.
type Position struct {
	File   string
	Line   int64
	Offset int64
}

// Event is one parsed line. Byte views (Span) point into Buf, which holds the raw line
// followed by any text the parser derived; an Event therefore owns its data and stays
// valid after the caller reuses its line buffer. Reset and reuse an Event for every line.
type Event struct {
	Time     time.Time
	Product  Product
	Dialect  Dialect
	Severity Severity
	Parsed   bool
	// SeverityRaw is the product's own severity word (static catalogue text or a view of the line).
	SeverityRaw Span
	Host        Span
	SessionKey  Span
	Code        Span // the product's message identifier: "#718", "106", "ME-I0111", "DENIED_RBL_MATCH"...
	Name        Span // the catalogue name of Code ("recipient", "DNSBLfailed", "relay_denied_criteria"...)
	// Reason says why Parsed is false (static text).
	Reason string
	Fields [NumFields]Span
	Pos    Position

	Buf    []byte // raw line, then derived text
	RawLen uint32
}

// Reset clears ev for reuse, keeping Buf's capacity.
func (ev *Event) Reset() {
	buf := ev.Buf[:0]
	*ev = Event{}
	ev.Buf = buf
}

// Raw is the line as read, without its line terminator.
func (ev *Event) Raw() []byte { return ev.Buf[:ev.RawLen] }

// Bytes returns the view s.
func (ev *Event) Bytes(s Span) []byte { return ev.Buf[s.Off : s.Off+s.Len] }

// Field returns field f, or nil when absent.
func (ev *Event) Field(f Field) []byte {
	s := ev.Fields[f]
	if s.Len == 0 {
		return nil
	}
	return ev.Buf[s.Off : s.Off+s.Len]
}

// FieldString returns field f as a string (allocates; for tests and tools).
func (ev *Event) FieldString(f Field) string { return string(ev.Field(f)) }

// AppendDerived appends text that is not in the raw line (a host from the Source, a
// session key built from parts) and returns its view.
func (ev *Event) AppendDerived(b ...[]byte) Span {
	off := len(ev.Buf)
	for _, p := range b {
		ev.Buf = append(ev.Buf, p...)
	}
	return Span{uint32(off), uint32(len(ev.Buf) - off)}
}

// AppendDerivedString is AppendDerived for a string.
func (ev *Event) AppendDerivedString(s string) Span {
	off := len(ev.Buf)
	ev.Buf = append(ev.Buf, s...)
	return Span{uint32(off), uint32(len(s))}
}

// SetRaw resets ev and copies line in as its raw text.
func (ev *Event) SetRaw(line []byte) {
	ev.Reset()
	ev.Buf = append(ev.Buf, line...)
	ev.RawLen = uint32(len(line))
}

// CodeString returns the code as a string (allocates; for tests and tools).
func (ev *Event) CodeString() string { return string(ev.Bytes(ev.Code)) }
