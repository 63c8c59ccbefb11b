// Package wire owns the shape of a record on the raw topic (mxtrail.raw), the contract between
// the shipper and the enricher.
//
// Key: the host name (UTF-8), so one host's lines stay in order on one partition.
// Value: the raw line bytes exactly as read, without the line terminator ("\n" or "\r\n" is
// removed; a lone "\r" inside a line is kept). Invalid UTF-8 and NUL bytes are kept as they are.
// For syslog input the value is the syslog message as received minus its transport framing
// (the octet count or the trailing newline), so it still starts with "<PRI>".
// Headers (all values UTF-8 text):
//
//	host        the same as the key
//	source      one of SourceFile, SourceSyslogUDP, SourceSyslogTCP, SourceStdin
//	dialect     the configured hint (e.g. "spamdyke", "smtpf"); may be empty
//	ingest_time when the shipper read the line, RFC 3339 with nanoseconds, UTC
//	truncated   present only when the line was longer than the maximum; its value is the
//	            original length in bytes (decimal) and the value holds the first max bytes
//	syslog      present only for syslog input: "rfc3164" or "rfc5424" (best guess of the header)
//	tz          present only when configured for a file input: an IANA zone name for
//	            timestamps that carry no zone
package wire

import (
	"strconv"
	"time"
)

// Header names.
const (
	HeaderHost       = "host"
	HeaderSource     = "source"
	HeaderDialect    = "dialect"
	HeaderIngestTime = "ingest_time"
	HeaderTruncated  = "truncated"
	HeaderSyslog     = "syslog"
	HeaderTZ         = "tz"
)

// Values of the source header.
const (
	SourceFile      = "file"
	SourceSyslogUDP = "syslog_udp"
	SourceSyslogTCP = "syslog_tcp"
	SourceStdin     = "stdin"
)

// Values of the syslog header.
const (
	SyslogRFC3164 = "rfc3164"
	SyslogRFC5424 = "rfc5424"
)

// IngestTimeLayout is the layout of the ingest_time header.
const IngestTimeLayout = time.RFC3339Nano

// Raw is one record of the raw topic as the enricher sees it. Value and string fields may
// alias the consumer's buffers; copy what must outlive the message.
type Raw struct {
	Host       string
	Source     string
	Dialect    string
	TZ         string
	Syslog     string
	IngestTime time.Time
	// TruncatedFrom is the original length when the shipper truncated the line, else 0.
	TruncatedFrom int
	Value         []byte
}

// Header is a name/value pair as both kafka-go and franz-go represent record headers.
type Header struct {
	Key   string
	Value []byte
}

// Decode fills r from a record's key, headers and value. Unknown headers are ignored so
// the shipper may add more; a malformed ingest_time or truncated header is an error that
// quotes the bad value.
func Decode(r *Raw, key []byte, headers []Header, value []byte) error {
	*r = Raw{Host: string(key), Value: value}
	for _, h := range headers {
		switch h.Key {
		case HeaderHost:
			r.Host = string(h.Value)
		case HeaderSource:
			r.Source = string(h.Value)
		case HeaderDialect:
			r.Dialect = string(h.Value)
		case HeaderTZ:
			r.TZ = string(h.Value)
		case HeaderSyslog:
			r.Syslog = string(h.Value)
		case HeaderIngestTime:
			t, err := time.Parse(IngestTimeLayout, string(h.Value))
			if err != nil {
				return errBadHeader(h, err)
			}
			r.IngestTime = t
		case HeaderTruncated:
			n, err := strconv.Atoi(string(h.Value))
			if err != nil {
				return errBadHeader(h, err)
			}
			r.TruncatedFrom = n
		}
	}
	return nil
}
