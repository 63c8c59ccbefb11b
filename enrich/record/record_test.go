package record

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"
)

func sampleSession() Session {
	start := time.Date(2026, 3, 9, 12, 43, 51, 123456789, time.UTC)
	return Session{
		Host: "mx1.example.net", Product: "spamdyke", SessionKey: "15280",
		StartTime: start, EndTime: start.Add(2 * time.Second),
		ClientIP: "192.0.2.12", ClientPTR: "elsewhere.example.net", HELO: "elsewhere.example.net",
		MailFrom: "correspondent@elsewhere.example.net",
		Recipients: []Recipient{
			{Address: "recipient@example.com", Outcome: Allowed, SMTPCode: 250, Reply: "ok 1615286631 qp 15309"},
			{Address: "nobody@example.com", Outcome: DeniedUnknownRecipient, SMTPCode: 550, Reply: "sorry, no mailbox here by that name. (#5.1.1)"},
		},
		Outcome: Allowed, Reason: "250_ok_1615286631_qp_15309", SMTPCode: 250,
		SMTPReply: "ok <quoted> \"x\" \\ tab\t nl\n ctl\x01 bad\xff utf8 é \u2028",
		Size:      4211, Delivery: DeliveryDelivered, ClosedBy: ClosedByEnd,
		Flags: []string{"partial"}, EventCount: 3, MaxSeverity: "info", OutcomeVersion: OutcomeVersion,
		FirstPos: Position{Source: "/var/log/maillog", Offset: 1024},
		LastPos:  Position{Source: "/var/log/maillog", Offset: 2048},
	}
}

// The hand-written encoder must agree with encoding/json in both directions: what it writes
// decodes back to the same record, and for valid UTF-8 it writes the same bytes.
func TestSessionAppendJSONRoundTrip(t *testing.T) {
	s := sampleSession()
	s.SessionID = NewSessionID(s.Host, s.Product, s.SessionKey, s.FirstPos)
	buf := s.AppendJSON(nil)
	if !json.Valid(buf) {
		t.Fatalf("invalid JSON: %s", buf)
	}
	var got Session
	if err := json.Unmarshal(buf, &got); err != nil {
		t.Fatalf("decode %s: %v", buf, err)
	}
	want := s
	want.SMTPReply = "ok <quoted> \"x\" \\ tab\t nl\n ctl\x01 bad\ufffd utf8 é \u2028"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, want)
	}
	s.SMTPReply = "valid only é"
	std, _ := json.Marshal(&s)
	if mine := s.AppendJSON(nil); !bytes.Equal(mine, std) {
		t.Fatalf("encoder differs from encoding/json:\nmine %s\n std %s", mine, std)
	}
	// Appending twice into a reused buffer gives the same bytes (no aliasing).
	again := s.AppendJSON(buf[:0])
	if !bytes.Equal(again, std) {
		t.Fatalf("reused buffer: %s", again)
	}
}

func TestEventAppendJSONMatchesEncodingJSON(t *testing.T) {
	e := Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Host: "mx2", Product: "isode",
		Code: "14", Name: "Critical", Severity: "crit", RawSeverity: "critical", Raw: "line <x>",
		Pos: Position{Source: "mxtrail.raw/3", Offset: 99}}
	std, _ := json.Marshal(&e)
	if mine := e.AppendJSON(nil); !bytes.Equal(mine, std) {
		t.Fatalf("mine %s\n std %s", mine, std)
	}
}

func TestNewSessionIDIsDeterministicAndDistinguishing(t *testing.T) {
	p := Position{Source: "f", Offset: 10}
	a := NewSessionID("h", "smtpf", "k", p)
	if a != NewSessionID("h", "smtpf", "k", p) || len(a) != 32 {
		t.Fatalf("not deterministic or wrong length: %q", a)
	}
	for _, b := range []string{
		NewSessionID("h", "smtpf", "k", Position{Source: "f", Offset: 11}),
		NewSessionID("hs", "mtpf", "k", p), // length-prefixing keeps field boundaries
		NewSessionID("h", "smtpf", "kf", Position{Offset: 10}),
	} {
		if a == b {
			t.Fatalf("collision for different inputs: %q", a)
		}
	}
}

func TestVocabulary(t *testing.T) {
	seen := map[Outcome]bool{}
	for _, o := range Outcomes() {
		if !o.Valid() || seen[o] {
			t.Fatalf("outcome %q invalid or listed twice", o)
		}
		seen[o] = true
	}
	if len(seen) != len(outcomes) {
		t.Fatalf("Outcomes() lists %d labels, the table has %d", len(seen), len(outcomes))
	}
	if !DeniedRBL.Denied() || Allowed.Denied() || Timeout.Denied() {
		t.Fatal("Denied() wrong")
	}
	if !(DeniedRBL.Stage() < DeniedSender.Stage() && DeniedSender.Stage() < DeniedUnknownRecipient.Stage() &&
		DeniedUnknownRecipient.Stage() < DeniedVirus.Stage()) {
		t.Fatal("stages out of order: connection < sender < recipient < content")
	}
}

func BenchmarkSessionAppendJSON(b *testing.B) {
	s := sampleSession()
	s.SMTPReply = "ok"
	var buf []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = s.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkSessionEncodingJSONBaseline(b *testing.B) {
	s := sampleSession()
	s.SMTPReply = "ok"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ := json.Marshal(&s)
		b.SetBytes(int64(len(buf)))
	}
}

// appendStringRef is appendString a byte at a time, as it was before the eight-byte skip:
// the reference the fast path must equal for every input.
func appendStringRef(dst []byte, v string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, v[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, v[start:]...)
	return append(dst, '"')
}

// TestAppendStringEveryByte: each byte value, alone and at every position of a 17-byte run
// of plain text (so in and across the eight-byte words), is written as the reference does.
func TestAppendStringEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 17; pos++ {
			b := []byte("abcdefghijklmnopq")
			b[pos] = byte(c)
			for _, v := range []string{string(b), string(b[pos:]), string(b[:pos+1]), string(b) + "é\u2028x"} {
				if got, want := appendString(nil, v), appendStringRef(nil, v); !bytes.Equal(got, want) {
					t.Fatalf("byte %#x at %d of %q: %s, want %s", c, pos, v, got, want)
				}
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain ascii text of some length", "ok <quoted> \"x\" \\ tab\t nl\n ctl\x01 bad\xff utf8 é \u2028", "12345678\x7f12345678\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := appendString(nil, v), appendStringRef(nil, v); !bytes.Equal(got, want) {
			t.Fatalf("%q: %s, want %s", v, got, want)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	s := sampleSession()
	v := s.MailFrom + " " + s.Recipients[1].Reply + " " + s.ClientPTR
	var buf []byte
	for _, bc := range []struct {
		name string
		fn   func([]byte, string) []byte
	}{{"words", appendString}, {"baseline_bytes", appendStringRef}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(v)))
			for i := 0; i < b.N; i++ {
				buf = bc.fn(buf[:0], v)
			}
		})
	}
}
