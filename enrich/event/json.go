package event

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends ev as one JSON object (no newline) with the keys documented in the
// README: time, host, product, dialect, session_key, code, name, severity, severity_raw,
// fields, parsed, error (only when not parsed), raw, and the source position. It uses no
// reflection; invalid UTF-8 is written as U+FFFD.
func AppendJSON(dst []byte, ev *Event) []byte {
	dst = append(dst, `{"time":`...)
	if ev.Time.IsZero() {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = ev.Time.AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"host":`...)
	dst = appendString(dst, ev.Bytes(ev.Host))
	dst = append(dst, `,"product":"`...)
	dst = append(dst, ev.Product.String()...)
	dst = append(dst, `","dialect":"`...)
	if ev.Dialect == DialectAuto {
		dst = append(dst, "unknown"...)
	} else {
		dst = append(dst, ev.Dialect.String()...)
	}
	dst = append(dst, `","session_key":`...)
	dst = appendString(dst, ev.Bytes(ev.SessionKey))
	dst = append(dst, `,"code":`...)
	dst = appendString(dst, ev.Bytes(ev.Code))
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, ev.Bytes(ev.Name))
	dst = append(dst, `,"severity":`...)
	dst = appendStr(dst, ev.Severity.String())
	dst = append(dst, `,"severity_raw":`...)
	dst = appendString(dst, ev.Bytes(ev.SeverityRaw))
	dst = append(dst, `,"fields":{`...)
	first := true
	for f := Field(0); f < NumFields; f++ {
		s := ev.Fields[f]
		if s.Len == 0 {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, fieldNames[f]...)
		dst = append(dst, `":`...)
		dst = appendString(dst, ev.Bytes(s))
	}
	dst = append(dst, `},"parsed":`...)
	dst = strconv.AppendBool(dst, ev.Parsed)
	if !ev.Parsed {
		dst = append(dst, `,"error":`...)
		dst = appendStr(dst, ev.Reason)
	}
	dst = append(dst, `,"raw":`...)
	dst = appendString(dst, ev.Raw())
	if ev.Pos.File != "" || ev.Pos.Line != 0 {
		dst = append(dst, `,"source":{"file":`...)
		dst = appendStr(dst, ev.Pos.File)
		dst = append(dst, `,"line":`...)
		dst = strconv.AppendInt(dst, ev.Pos.Line, 10)
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendInt(dst, ev.Pos.Offset, 10)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

func appendStr(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			dst = appendASCII(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xF])
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}

func appendString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			dst = appendASCII(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xF])
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}

func appendASCII(dst []byte, c byte) []byte {
	switch {
	case c == '"':
		return append(dst, '\\', '"')
	case c == '\\':
		return append(dst, '\\', '\\')
	case c == '\n':
		return append(dst, '\\', 'n')
	case c == '\r':
		return append(dst, '\\', 'r')
	case c == '\t':
		return append(dst, '\\', 't')
	case c < 0x20 || c == 0x7f:
		return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
	}
	return append(dst, c)
}
