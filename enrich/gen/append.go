package gen

import (
	"strconv"
	"time"
)

// Append-style formatting helpers. The generator writes millions of lines; fmt.Sprintf per
// field would dominate its profile, so every field is appended into a reused buffer.

var monthAbbr = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

const hexDigits = "0123456789abcdef"

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10%10), byte('0'+n%10)) }

func append4(b []byte, n int) []byte {
	return append(b, byte('0'+n/1000%10), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

func appendPad(b []byte, n, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], int64(n), 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

// appendHex appends n as exactly width lower-case hex digits.
func appendHex(b []byte, n uint64, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		b = append(b, hexDigits[(n>>(uint(i)*4))&0xf])
	}
	return b
}

// appendHexUpper appends n as exactly width upper-case hex digits.
func appendHexUpper(b []byte, n uint64, width int) []byte {
	const up = "0123456789ABCDEF"
	for i := width - 1; i >= 0; i-- {
		b = append(b, up[(n>>(uint(i)*4))&0xf])
	}
	return b
}

func appendIP(b []byte, ip uint32) []byte {
	b = strconv.AppendUint(b, uint64(ip>>24), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(ip>>16&0xff), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(ip>>8&0xff), 10)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(ip&0xff), 10)
}

func ipString(ip uint32) string { return string(appendIP(nil, ip)) }

// clock is a broken-down wall-clock time. Lines of one session share a few seconds, so the
// conversion from milliseconds is cached per second.
type clock struct {
	sec                                int64
	year, month, day, hour, min, s, ms int
}

func (c *clock) set(ms int64) {
	sec := ms / 1000
	if ms < 0 && ms%1000 != 0 {
		sec--
	}
	c.ms = int(ms - sec*1000)
	if sec == c.sec && c.year != 0 {
		return
	}
	t := time.Unix(sec, 0).UTC()
	c.sec = sec
	c.year, c.month, c.day = t.Year(), int(t.Month()), t.Day()
	c.hour, c.min, c.s = t.Clock()
}

// appendSyslogTS appends an RFC 3164 timestamp with the space-padded day: "Mar  9 12:43:51".
func appendSyslogTS(b []byte, c *clock) []byte {
	b = append(b, monthAbbr[c.month-1]...)
	b = append(b, ' ')
	if c.day < 10 {
		b = append(b, ' ', byte('0'+c.day))
	} else {
		b = append2(b, c.day)
	}
	b = append(b, ' ')
	return appendHMS(b, c)
}

func appendHMS(b []byte, c *clock) []byte {
	b = append2(b, c.hour)
	b = append(b, ':')
	b = append2(b, c.min)
	b = append(b, ':')
	return append2(b, c.s)
}

// appendISO appends "2021-03-09 12:43:51" (ICDSoft).
func appendISO(b []byte, c *clock) []byte {
	b = append4(b, c.year)
	b = append(b, '-')
	b = append2(b, c.month)
	b = append(b, '-')
	b = append2(b, c.day)
	b = append(b, ' ')
	return appendHMS(b, c)
}

// appendUSDate appends "03/09/21 12:43:51" (MailEnable).
func appendUSDate(b []byte, c *clock) []byte {
	b = append2(b, c.month)
	b = append(b, '/')
	b = append2(b, c.day)
	b = append(b, '/')
	b = append2(b, c.year%100)
	b = append(b, ' ')
	return appendHMS(b, c)
}

// appendIMailTS appends "03:09 12:43" (IMail: month:day hour:minute, no seconds).
func appendIMailTS(b []byte, c *clock) []byte {
	b = append2(b, c.month)
	b = append(b, ':')
	b = append2(b, c.day)
	b = append(b, ' ')
	b = append2(b, c.hour)
	b = append(b, ':')
	return append2(b, c.min)
}

// appendTime62 appends smtpf's six-character time62 stamp: (year-1900)%62, month 0-11,
// mday-1, hour, minute, second, each one base62 digit (libsnert time62Encode).
func appendTime62(b []byte, c *clock) []byte {
	return append(b, base62[(c.year-1900)%62], base62[c.month-1], base62[c.day-1],
		base62[c.hour], base62[c.min], base62[c.s])
}

// appendJSONString appends s as a JSON string. Generated values are ASCII, but garbage and
// arbitrary options may not be, so control characters and quotes are escaped properly.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	run := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 0x20 && ch != '"' && ch != '\\' {
			continue
		}
		b = append(b, s[run:i]...)
		run = i + 1
		if ch < 0x20 {
			b = append(b, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xf])
		} else {
			b = append(b, '\\', ch)
		}
	}
	b = append(b, s[run:]...)
	return append(b, '"')
}

func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// underscore appends s with every space replaced by '_' (spamdyke's and qmail's encoding).
func appendUnderscored(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			b = append(b, '_')
		} else {
			b = append(b, s[i])
		}
	}
	return b
}
