package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mxtrail/mxtrail/ingest/wire"
)

// Form says how a record of the raw topic was written.
type Form uint8

const (
	// FormRaw is a value holding the line itself, with or without the shipper's headers.
	FormRaw Form = iota
	// FormJSON is a JSON envelope from another shipper: a "message" field holding the line,
	// plus optional "host" (a string, or an object with "name"/"hostname" as Filebeat's ECS
	// host.name) or "hostname" (rsyslog omkafka and syslog-ng templates, Vector).
	FormJSON
)

func (f Form) String() string {
	if f == FormJSON {
		return "json"
	}
	return "raw"
}

// Input is one raw-topic record reduced to what the parser needs.
type Input struct {
	wire.Raw
	Form Form
}

// Dead-letter reasons for records that cannot become input (a small fixed set: metric labels).
const (
	ReasonBadEnvelope = "bad_envelope" // a value that starts like JSON but is not a usable envelope
	ReasonBadHeader   = "bad_header"   // a malformed shipper header
	ReasonEmpty       = "empty"        // an empty value
)

// InputError is a record that cannot be turned into input; Reason is one of the Reason* values.
type InputError struct {
	Reason string
	Err    error
}

func (e *InputError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// DecodeInput fills in from a record's key, headers and value. The host is, in order: the
// shipper's host header, the envelope's host, the record key; when all are empty the parser
// takes it from the line's syslog header. Value slices alias value for the raw form.
func DecodeInput(in *Input, key []byte, headers []wire.Header, value []byte) error {
	if err := wire.Decode(&in.Raw, key, headers, value); err != nil {
		return &InputError{Reason: ReasonBadHeader, Err: err}
	}
	in.Form = FormRaw
	trimmed := bytes.TrimLeft(value, " \t\r\n")
	if len(trimmed) == 0 {
		return &InputError{Reason: ReasonEmpty, Err: errors.New("record has an empty value")}
	}
	if trimmed[0] != '{' {
		return nil
	}
	// No dialect's line starts with '{', so a brace means an envelope from another shipper.
	var env struct {
		Message  *string         `json:"message"`
		Host     json.RawMessage `json:"host"`
		Hostname string          `json:"hostname"`
		Event    struct {
			Original *string `json:"original"`
		} `json:"event"`
	}
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return &InputError{Reason: ReasonBadEnvelope, Err: fmt.Errorf("decode JSON envelope %q: %w", clip(value), err)}
	}
	msg := env.Message
	if msg == nil {
		msg = env.Event.Original
	}
	if msg == nil {
		return &InputError{Reason: ReasonBadEnvelope, Err: fmt.Errorf("JSON envelope %q has no \"message\" field", clip(value))}
	}
	in.Form = FormJSON
	in.Value = []byte(*msg)
	host := env.Hostname
	if len(env.Host) > 0 {
		switch env.Host[0] {
		case '"':
			var s string
			if json.Unmarshal(env.Host, &s) == nil {
				host = s
			}
		case '{':
			var h struct {
				Name     string `json:"name"`
				Hostname string `json:"hostname"`
			}
			if json.Unmarshal(env.Host, &h) == nil {
				if h.Name != "" {
					host = h.Name
				} else if h.Hostname != "" {
					host = h.Hostname
				}
			}
		}
	}
	// The shipper's header wins; then the envelope; then the key (already in in.Host).
	if !hasHeader(headers, wire.HeaderHost) && host != "" {
		in.Host = host
	}
	return nil
}

func hasHeader(hs []wire.Header, k string) bool {
	for _, h := range hs {
		if h.Key == k {
			return true
		}
	}
	return false
}

// clip keeps error messages readable for megabyte-long values.
func clip(b []byte) []byte {
	const max = 200
	if len(b) <= max {
		return b
	}
	return b[:max]
}
