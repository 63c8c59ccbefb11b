package stream

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/valyala/fastjson"

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
// takes it from the line's syslog header. Value slices alias value for the raw form. It is
// Decoder.Decode with a fresh Decoder: the stream keeps one Decoder per partition instead.
func DecodeInput(in *Input, key []byte, headers []wire.Header, value []byte) error {
	var d Decoder
	if err := d.Decode(in, key, headers, value); err != nil {
		return err
	}
	if in.Form == FormJSON {
		in.Value = bytes.Clone(in.Value) // not the Decoder's buffer: it dies here
	}
	return nil
}

// maxInterned bounds a Decoder's table of host, source, dialect and zone names.
const maxInterned = 4096

// Decoder decodes raw-topic records with reused state: a JSON parser, a buffer for the
// envelope's line and a table of the header strings seen (hosts, sources, dialects, zones
// repeat on every line, so each is allocated once). The zero value is ready; not safe for
// concurrent use. Input.Value of an envelope is valid until the next Decode.
type Decoder struct {
	jp     fastjson.Parser
	line   []byte
	hs     []wire.Header
	intern map[string]string
	// What the last Decode took from its headers, for DecodeSameHeaders: the fields (Value
	// unset), whether a header named the host, and the header error.
	hdr     wire.Raw
	hasHost bool
	hdrErr  error
}

// Decode fills in from a record's key, headers and value (see DecodeInput).
func (d *Decoder) Decode(in *Input, key []byte, headers []wire.Header, value []byte) error {
	d.decodeHeaders(headers)
	return d.decodeValue(in, key, value)
}

// DecodeSameHeaders is Decode for a record whose headers are those of the previous Decode
// (a shipper stamps the lines of one read with one set of headers): only the key and value
// are read. Before any Decode it is Decode without headers.
func (d *Decoder) DecodeSameHeaders(in *Input, key, value []byte) error {
	return d.decodeValue(in, key, value)
}

// forget drops the Decoder's references to the last record's headers; the next record must
// be decoded with Decode. (Its envelope parser copies what it parses.)
func (d *Decoder) forget() {
	clear(d.hs[:cap(d.hs)])
	d.hs = d.hs[:0]
}

// decodeHeaders keeps what headers say in d.hdr, d.hasHost and d.hdrErr.
func (d *Decoder) decodeHeaders(headers []wire.Header) {
	// wire.Decode stays the one parser of ingest_time and truncated; the plain string
	// headers are taken here so they can be interned (same rule: the last one wins).
	d.hs = d.hs[:0]
	var host, source, dialect, tz, syslog []byte
	var hasHost bool
	for _, h := range headers {
		switch h.Key {
		case wire.HeaderHost:
			host, hasHost = h.Value, true
		case wire.HeaderSource:
			source = h.Value
		case wire.HeaderDialect:
			dialect = h.Value
		case wire.HeaderTZ:
			tz = h.Value
		case wire.HeaderSyslog:
			syslog = h.Value
		default:
			d.hs = append(d.hs, h)
		}
	}
	d.hdrErr = nil
	if err := wire.Decode(&d.hdr, nil, d.hs, nil); err != nil {
		d.hdrErr = &InputError{Reason: ReasonBadHeader, Err: err}
	}
	d.hasHost = hasHost
	d.hdr.Host = ""
	if hasHost {
		d.hdr.Host = d.str(host)
	}
	d.hdr.Source, d.hdr.Dialect, d.hdr.TZ, d.hdr.Syslog = d.str(source), d.str(dialect), d.str(tz), d.str(syslog)
}

// decodeValue fills in from the headers kept by decodeHeaders, key and value.
func (d *Decoder) decodeValue(in *Input, key, value []byte) error {
	if d.hdrErr != nil {
		return d.hdrErr
	}
	in.Raw = d.hdr
	in.Value = value
	hasHost := d.hasHost
	if !hasHost {
		in.Host = d.str(key)
	}
	in.Form = FormRaw
	trimmed := trimSpaceLeft(value)
	if len(trimmed) == 0 {
		return &InputError{Reason: ReasonEmpty, Err: errors.New("record has an empty value")}
	}
	if trimmed[0] != '{' {
		return nil
	}
	// No dialect's line starts with '{', so a brace means an envelope from another shipper.
	// fastjson rather than encoding/json: the reflective decoder cost ~6 µs and several
	// allocations per envelope, more than parsing the line; fastjson reuses its parser's
	// memory and validates the same way.
	env, err := d.jp.ParseBytes(trimmed)
	if err != nil {
		return &InputError{Reason: ReasonBadEnvelope, Err: fmt.Errorf("decode JSON envelope %q: %w", clip(value), err)}
	}
	if env.Type() != fastjson.TypeObject {
		return &InputError{Reason: ReasonBadEnvelope, Err: fmt.Errorf("JSON envelope %q is not an object", clip(value))}
	}
	msg, err := envString(env, "message")
	if err == nil && msg == nil {
		if ev := env.Get("event"); ev != nil && ev.Type() != fastjson.TypeNull {
			if ev.Type() != fastjson.TypeObject {
				err = errors.New(`"event" is not an object`)
			} else {
				msg, err = envString(ev, "original")
			}
		}
	}
	if err == nil && msg == nil {
		err = errors.New(`no "message" field`)
	}
	var hostname []byte
	if err == nil {
		hostname, err = envString(env, "hostname")
	}
	if err != nil {
		return &InputError{Reason: ReasonBadEnvelope, Err: fmt.Errorf("JSON envelope %q: %w", clip(value), err)}
	}
	in.Form = FormJSON
	d.line = append(d.line[:0], msg...)
	in.Value = d.line
	envHost := hostname
	if h := env.Get("host"); h != nil {
		switch h.Type() {
		case fastjson.TypeString:
			envHost = h.GetStringBytes()
		case fastjson.TypeObject:
			if n := h.GetStringBytes("name"); len(n) > 0 {
				envHost = n
			} else if n := h.GetStringBytes("hostname"); len(n) > 0 {
				envHost = n
			}
		}
	}
	// The shipper's header wins; then the envelope; then the key (already in in.Host).
	if !hasHost && len(envHost) > 0 {
		in.Host = d.str(envHost)
	}
	return nil
}

// envString returns the string field name of o: nil when absent or null, an error when it
// is another type (encoding/json's rule for a *string field).
func envString(o *fastjson.Value, name string) ([]byte, error) {
	v := o.Get(name)
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil, nil
	}
	if v.Type() != fastjson.TypeString {
		return nil, fmt.Errorf("%q is a %s, not a string", name, v.Type())
	}
	b, _ := v.StringBytes()
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// str returns b as a string, allocated once per distinct value (up to maxInterned).
func (d *Decoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.intern == nil {
		d.intern = map[string]string{}
	}
	if len(d.intern) < maxInterned {
		d.intern[s] = s
	}
	return s
}

// clip keeps error messages readable for megabyte-long values.
func clip(b []byte) []byte {
	const max = 200
	if len(b) <= max {
		return b
	}
	return b[:max]
}

// trimSpaceLeft is bytes.TrimLeft(b, " \t\r\n") without building the cutset's ASCII set on
// every call (1.5% of the enricher's CPU in the profile).
func trimSpaceLeft(b []byte) []byte {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return b[i:]
}
