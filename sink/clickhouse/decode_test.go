package clickhouse

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// normalise makes a record comparable after a JSON round trip (UTC times, nil vs empty).
func normalise(s record.Session) record.Session {
	s.StartTime, s.EndTime = s.StartTime.UTC(), s.EndTime.UTC()
	if len(s.Recipients) == 0 {
		s.Recipients = nil
	}
	if len(s.Flags) == 0 {
		s.Flags = nil
	}
	return s
}

func TestDecodeSessionMatchesEncodingJSON(t *testing.T) {
	var got record.Session
	for i, s := range genSessions(1, 2000) {
		line := s.AppendJSON(nil)
		var want record.Session
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		// Decode twice into the same value to catch reuse bugs (stale recipients, flags).
		for pass := 0; pass < 2; pass++ {
			l := lexer{s: string(line), maxField: 1 << 20}
			if err := decodeSession(&l, &got); err != nil {
				t.Fatalf("record %d: %v\n%s", i, err, line)
			}
			if !reflect.DeepEqual(normalise(got), normalise(want)) {
				t.Fatalf("record %d pass %d differs:\n got %+v\nwant %+v", i, pass, got, want)
			}
		}
	}
}

func TestDecodeSessionEscapesAndLayout(t *testing.T) {
	in := ` { "first_pos" : null, "unknown" : {"a":[1,2.5e3,{"b":null}],"c":true},
	  "session_id":"abc", "start_time":"2026-11-23T10:00:00.123456789Z",
	  "helo":"caf\u00e9 \"quoted\" \\ \/ \ud83d\ude00 \n", "recipients":null, "flags":["x","y"],
	  "size": 12, "tls": true }`
	var s record.Session
	l := lexer{s: in, maxField: 1 << 10}
	if err := decodeSession(&l, &s); err != nil {
		t.Fatal(err)
	}
	if s.HELO != "café \"quoted\" \\ / 😀 \n" || s.SessionID != "abc" || s.Size != 12 || !s.TLS ||
		len(s.Flags) != 2 || s.StartTime.Nanosecond() != 123456789 {
		t.Fatalf("decoded %+v", s)
	}
}

func TestDecodeSessionRejects(t *testing.T) {
	good := string(genSessions(2, 1)[0].AppendJSON(nil))
	cases := []struct {
		name, in string
		want     error
	}{
		{"not json", `{"session_id": nope}`, errWrongType},
		{"truncated", good[:len(good)/2], errSyntax},
		{"trailing", good + `{}`, errSyntax},
		{"size as string", strings.Replace(good, `"size":`, `"size":"12",`+`"x":`, 1), errWrongType},
		{"float code", strings.Replace(good, `"event_count":`, `"event_count":1.5,"y":`, 1), errWrongType},
		{"tls as string", strings.Replace(good, `"tls":`, `"tls":"yes","z":`, 1), errWrongType},
		{"no session id", strings.Replace(good, `"session_id":`, `"sid":`, 1), errWrongType},
		{"bad time", strings.Replace(good, `"start_time":"`, `"start_time":"yesterday","q":"`, 1), errWrongType},
		{"huge field", strings.Replace(good, `"helo":"`, `"helo":"`+strings.Repeat("A", 1<<20), 1), errTooLarge},
		{"control byte", strings.Replace(good, `"helo":"`, "\"helo\":\"\x01", 1), errSyntax},
		{"bad escape", strings.Replace(good, `"helo":"`, `"helo":"\q`, 1), errSyntax},
		{"empty", ``, errSyntax},
	}
	var s record.Session
	for _, c := range cases {
		l := lexer{s: c.in, maxField: 256 << 10}
		err := decodeSession(&l, &s)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestDecodeEventMatchesEncodingJSON(t *testing.T) {
	var got record.Event
	for _, e := range genEvents(3, 500) {
		line := e.AppendJSON(nil)
		var want record.Event
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		l := lexer{s: string(line), maxField: 1 << 20}
		if err := decodeEvent(&l, &got); err != nil {
			t.Fatal(err)
		}
		got.Time, want.Time = got.Time.UTC(), want.Time.UTC()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	}
}

func TestBatchDeadLettersAndKeepsTheRest(t *testing.T) {
	for _, modern := range []bool{false, true} {
		f := schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16})
		if modern {
			f = schema.FeaturesFor(schema.ServerVersion{Major: 26, Minor: 1})
		}
		b := NewBatch(f, 256<<10)
		ss := genSessions(4, 10)
		now := time.Now()
		off := int64(100)
		add := func(kind Kind, v string) {
			b.Add(kind, &Message{Topic: "s", Partition: 3, Offset: off, Key: []byte("k"), Value: []byte(v)}, now)
			off++
		}
		for i := range ss {
			add(KindSessions, string(ss[i].AppendJSON(nil)))
		}
		bad := ss[0]
		bad.ClientIP = "999.1.1.1"
		add(KindSessions, string(bad.AppendJSON(nil)))
		neg := ss[1]
		neg.Size = -5
		add(KindSessions, string(neg.AppendJSON(nil)))
		add(KindSessions, `{"session_id":`)
		add(KindEvents, string(genEvents(5, 1)[0].AppendJSON(nil)))
		big := ss[2]
		big.SMTPReply = strings.Repeat("x", 1<<20)
		add(KindSessions, string(big.AppendJSON(nil)))

		s, e, d := b.Rows()
		if s != 10 || e != 1 || d != 4 {
			t.Fatalf("modern=%v rows: sessions %d events %d dead %d", modern, s, e, d)
		}
		wantReasons := []string{ReasonConvert, ReasonConvert, ReasonDecode, ReasonTooLarge}
		if !reflect.DeepEqual(b.dead.reason, wantReasons) {
			t.Fatalf("reasons %v, want %v", b.dead.reason, wantReasons)
		}
		if !strings.Contains(b.dead.errText[0], `"999.1.1.1"`) || b.dead.offset[0] != 110 || b.dead.partition[0] != 3 {
			t.Fatalf("dead row 0: %q at %d/%d", b.dead.errText[0], b.dead.partition[0], b.dead.offset[0])
		}
		if got := b.Offsets()["s"][3]; got != off-1 {
			t.Fatalf("commit offset %d, want %d", got, off-1)
		}
		if got := b.sessions.rcptAddress.views(); len(got) != 10 || !reflect.DeepEqual(got[9], addrs(ss[9])) {
			t.Fatalf("recipients of row 9: %v want %v", got[9], addrs(ss[9]))
		}
		for _, v := range b.sessions.values() {
			n := 0
			if r, ok := v.(strRows); ok {
				n = len(r.views())
			} else if r, ok := v.(arrRows); ok {
				n = len(r.views())
			} else if r, ok := v.(u16ArrRows); ok {
				n = len(r.views())
			} else {
				n = reflect.ValueOf(v).Len()
			}
			if n != 10 {
				t.Fatalf("a column has %d rows, want 10", n)
			}
		}
		b.Reset()
		if s, e, d := b.Rows(); s+e+d != 0 || b.Len() != 0 || len(b.Offsets()) != 0 {
			t.Fatal("reset left rows behind")
		}
	}
}

func addrs(s record.Session) []string {
	var out []string
	for _, r := range s.Recipients {
		out = append(out, r.Address)
	}
	return out
}

func FuzzDecodeSession(f *testing.F) {
	for _, s := range genSessions(6, 5) {
		f.Add(string(s.AppendJSON(nil)))
	}
	f.Add(`{"session_id":"a","start_time":"2026-01-01T00:00:00Z","helo":"\ud800x"}`)
	var s record.Session
	f.Fuzz(func(t *testing.T, in string) {
		l := lexer{s: in, maxField: 1 << 16}
		if err := decodeSession(&l, &s); err != nil {
			return
		}
		// Whatever we accept must be JSON encoding/json accepts too, with the same strings.
		// encoding/json matches keys case-insensitively; the wire form (and this decoder) is
		// exact snake_case, so inputs with other spellings are not comparable.
		if in != strings.ToLower(in) {
			return
		}
		var want record.Session
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			return // we are more lenient only about types encoding/json rejects (none expected)
		}
		if s.SessionID != want.SessionID || s.HELO != want.HELO || s.MailFrom != want.MailFrom {
			t.Fatalf("decoded %q/%q/%q, encoding/json %q/%q/%q", s.SessionID, s.HELO, s.MailFrom, want.SessionID, want.HELO, want.MailFrom)
		}
	})
}

// The string columns live in arenas that grow while the batch fills: every row must read back
// exactly, including empty strings and empty arrays, after growth and after a reset.
func TestSessionColumnsReadBack(t *testing.T) {
	f := schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16})
	b := NewBatch(f, 256<<10)
	for round := 0; round < 2; round++ {
		ss := genSessions(uint64(20+round), 3000)
		for i := range ss {
			b.Add(KindSessions, &Message{Topic: "s", Offset: int64(i), Value: ss[i].AppendJSON(nil)}, time.Now())
		}
		vals := b.sessions.values()
		col := func(name string) any {
			t.Helper()
			for i, n := range sessionColumnNames {
				if n == name {
					return vals[i]
				}
			}
			t.Fatalf("no column %q", name)
			return nil
		}
		str := func(name string) []string { return col(name).(strRows).views() } // one scratch per column
		ids, ptrs, reasons := str("session_id"), str("client_ptr"), str("reason")
		arr := func(name string) [][]string { return col(name).(arrRows).views() }
		rcpts, flags, ips := arr("rcpt_address"), arr("flags"), str("client_ip")
		if len(ids) != len(ss) || len(rcpts) != len(ss) || len(flags) != len(ss) {
			t.Fatalf("round %d: %d ids, %d recipient rows, %d flag rows for %d records", round, len(ids), len(rcpts), len(flags), len(ss))
		}
		// Escaped values ("quoted", tabs, <brackets> as \u003c) are unescaped into a scratch buffer
		// the next record reuses: every one must have been copied out intact.
		replies, rcptReplies := str("smtp_reply"), arr("rcpt_reply")
		var emptyPtr, noFlags, escaped int
		for i := range ss {
			s := &ss[i]
			if replies[i] != s.SMTPReply {
				t.Fatalf("round %d row %d: smtp_reply %q, want %q", round, i, replies[i], s.SMTPReply)
			}
			for j := range s.Recipients {
				if rcptReplies[i][j] != s.Recipients[j].Reply {
					t.Fatalf("round %d row %d: recipient %d reply %q, want %q", round, i, j, rcptReplies[i][j], s.Recipients[j].Reply)
				}
			}
			if strings.ContainsAny(s.SMTPReply, "\"<\t") {
				escaped++
			}
			if ids[i] != s.SessionID || ptrs[i] != s.ClientPTR || reasons[i] != s.Reason || ips[i] != s.ClientIP {
				t.Fatalf("round %d row %d: %q %q %q %q, want %q %q %q %q", round, i, ids[i], ptrs[i], reasons[i], ips[i],
					s.SessionID, s.ClientPTR, s.Reason, s.ClientIP)
			}
			if len(rcpts[i]) != len(s.Recipients) || (len(s.Recipients) > 0 && !reflect.DeepEqual(rcpts[i], addrs(*s))) {
				t.Fatalf("round %d row %d: recipients %q, want %q", round, i, rcpts[i], addrs(*s))
			}
			if len(flags[i]) != len(s.Flags) || (len(s.Flags) > 0 && !reflect.DeepEqual(flags[i], s.Flags)) {
				t.Fatalf("round %d row %d: flags %q, want %q", round, i, flags[i], s.Flags)
			}
			if s.ClientPTR == "" {
				emptyPtr++
			}
			if len(s.Flags) == 0 {
				noFlags++
			}
		}
		if emptyPtr == 0 || noFlags == 0 || escaped == 0 {
			t.Fatalf("generator gave no empty or escaped values to check (%d empty PTRs, %d rows without flags, %d escaped replies)",
				emptyPtr, noFlags, escaped)
		}
		b.Reset()
	}
}

// specialMask must flag exactly the words holding a byte str has to stop at, whatever the other
// bytes (ASCII or UTF-8 continuation bytes) and wherever the byte sits.
func TestSpecialMaskFlagsSpecialBytes(t *testing.T) {
	for _, fill := range []byte{'a', 0x7f, 0x80, 0xc3, 0xff, ' '} {
		for c := 0; c < 256; c++ {
			for p := 0; p < 8; p++ {
				w := []byte{fill, fill, fill, fill, fill, fill, fill, fill}
				w[p] = byte(c)
				want := c == '"' || c == '\\' || c < 0x20
				if got := specialMask(load8(string(w), 0)) != 0; got != want {
					t.Fatalf("fill %#x byte %#x at %d: specialMask flags it %v, want %v", fill, c, p, got, want)
				}
			}
		}
	}
}

// specialMask's lowest set bit must mark the first byte str has to stop at, whatever follows
// it: str jumps there, so a borrow that flagged an earlier byte would cut a string short.
func TestSpecialMaskFirstByte(t *testing.T) {
	special := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }
	seconds := []byte{0, 1, 0x1f, 0x20, 0x21, '"', '#', '\\', ']', 'a', 0x7f, 0x80, 0xa0, 0xff}
	for _, fill := range []byte{'a', 0x7f, 0x80, 0xc3, 0xff, ' ', '!', '[', ']'} {
		for c := 0; c < 256; c++ {
			for p := 0; p < 8; p++ {
				for q := p + 1; q <= 8; q++ {
					for _, c2 := range seconds {
						w := []byte{fill, fill, fill, fill, fill, fill, fill, fill}
						w[p] = byte(c)
						if q < 8 {
							w[q] = c2
						}
						want := 8
						for i, b := range w {
							if special(b) {
								want = i
								break
							}
						}
						got := 8
						if m := specialMask(load8(string(w), 0)); m != 0 {
							got = bits.TrailingZeros64(m) >> 3
						}
						if got != want {
							t.Fatalf("word % x: first special byte at %d, specialMask says %d", w, want, got)
						}
					}
				}
			}
		}
	}
}

// parseUTC takes the encoder's form only, and gives exactly what time.Parse gives for it.
func TestParseUTCMatchesTimeParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fast bool
	}{
		{"2026-11-23T18:42:40Z", true},
		{"2026-11-23T18:42:40.1Z", true},
		{"2026-11-23T18:42:40.123456789Z", true},
		{"2024-02-29T23:59:59.5Z", true},
		{"2000-02-29T00:00:00Z", true},
		{"1970-01-01T00:00:00Z", true},
		{"0001-01-01T00:00:01Z", true},
		{"1969-12-31T23:59:59.999Z", true},
		{"9999-12-31T23:59:59Z", true},
		{"2023-02-29T00:00:00Z", false},            // not a leap year
		{"1900-02-29T00:00:00Z", false},            // nor this
		{"2026-04-31T00:00:00Z", false},            // April has 30 days
		{"2026-13-01T00:00:00Z", false},            // month
		{"2026-11-23T24:00:00Z", false},            // hour
		{"2026-11-23T18:60:00Z", false},            // minute
		{"2026-11-23T18:42:60Z", false},            // leap second
		{"2026-11-23T18:42:40.Z", false},           // empty fraction
		{"2026-11-23T18:42:40.1234567891Z", false}, // ten digits: time.Parse decides
		{"2026-11-23T18:42:40+01:00", false},       // offsets: time.Parse
		{"2026-11-23t18:42:40Z", false},
		{"2026-11-23T18:42:4xZ", false},
		{"0000-01-01T00:00:00Z", false},
	} {
		got, ok := parseUTC(tc.in)
		if ok != tc.fast {
			t.Errorf("parseUTC(%q) ok = %v, want %v", tc.in, ok, tc.fast)
			continue
		}
		if !ok {
			continue
		}
		want, err := time.Parse(time.RFC3339Nano, tc.in)
		if err != nil {
			t.Errorf("parseUTC(%q) accepted what time.Parse rejects: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parseUTC(%q) = %v, time.Parse %v", tc.in, got, want)
		}
	}
}

// A lexer's minute cache gives what parseUTC gives, for times in the minute it holds (only
// their seconds are parsed), next to it and malformed in their seconds.
func TestMinuteCacheMatchesParseUTC(t *testing.T) {
	var c minuteCache
	for _, in := range []string{
		"2026-11-23T18:42:40Z", "2026-11-23T18:42:41.5Z", "2026-11-23T18:42:59.999999999Z",
		"2026-11-23T18:42:60Z", "2026-11-23T18:42:4xZ", "2026-11-23T18:42+40Z", "2026-11-23T18:42:40",
		"2026-11-23T18:42:40.Z", "2026-11-23T18:42:40.1234567891Z", "2026-11-23T18:42:4", "2026-11-23T18:42:40+01:00",
		"2026-11-23T18:43:00Z", "2026-11-23T18:42:40Z", "2026-11-24T18:42:40Z", "2026-11-23T18:42:00.000001Z",
		"2023-02-29T00:00:00Z", "2023-02-28T00:00:01Z", "", "2026-11-23T18:42:40Z",
	} {
		got, ok := c.parseUTC(in)
		want, wok := parseUTC(in)
		if ok != wok || !reflect.DeepEqual(got, want) {
			t.Errorf("cached parseUTC(%q) = %v, %v; parseUTC %v, %v", in, got, ok, want, wok)
		}
	}
	// The lexer keeps its cache from record to record.
	var l lexer
	l.reset(`"2026-11-23T18:42:40Z"`, 100, nil)
	if _, err := l.time(); err != nil || !l.minute.ok {
		t.Fatalf("time: %v, cache filled %v", err, l.minute.ok)
	}
	l.reset(`"2026-11-23T18:42:41Z"`, 100, nil)
	if got, err := l.time(); err != nil || !l.minute.ok || got.Second() != 41 || l.i != len(l.s) {
		t.Fatalf("the next record's time: %v, %v, cache kept %v, at %d of %d", got, err, l.minute.ok, l.i, len(l.s))
	}
}

// BenchmarkParseUTC parses the start and end times of a live stream's session records (in time
// order, 2,000 a second) through a lexer's minute cache, against the baseline of parsing each
// whole.
func BenchmarkParseUTC(b *testing.B) {
	ss := genSessions(9, 50_000)
	liveOrder(ss, 2000)
	var times []string
	for i := range ss {
		times = append(times, ss[i].StartTime.UTC().Format(time.RFC3339Nano), ss[i].EndTime.UTC().Format(time.RFC3339Nano))
	}
	for _, cached := range []bool{false, true} {
		name := "baseline_whole"
		if cached {
			name = "minute_cache"
		}
		b.Run(name, func(b *testing.B) {
			var c minuteCache
			var sink int64
			for i := 0; i < b.N; i++ {
				s := times[i%len(times)]
				var t time.Time
				var ok bool
				if cached {
					t, ok = c.parseUTC(s)
				} else {
					t, ok = parseUTC(s)
				}
				if !ok {
					b.Fatalf("%q", s)
				}
				sink += t.Unix()
			}
			_ = sink
		})
	}
}

func FuzzParseUTC(f *testing.F) {
	for _, s := range []string{"2026-11-23T18:42:40Z", "2026-11-23T18:42:40.123Z", "2024-02-29T23:59:59.999999999Z", "1999-12-31T00:00:00+02:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := parseUTC(in)
		// Through a cache holding in's minute (when it has one): the same answer.
		var c minuteCache
		if len(in) >= 16 {
			c.parseUTC(in[:16] + ":00Z")
		}
		if cached, cok := c.parseUTC(in); cok != ok || !reflect.DeepEqual(cached, got) {
			t.Fatalf("parseUTC(%q) = %v, %v; through a cache of its minute %v, %v", in, got, ok, cached, cok)
		}
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, in)
		if err != nil {
			t.Fatalf("parseUTC(%q) = %v, time.Parse rejects it: %v", in, got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseUTC(%q) = %v, time.Parse %v", in, got, want)
		}
	})
}

// Several escaped strings in one record, and in the next, share the batch's unescape buffer:
// each must reach the columns as it was written.
func TestBatchCopiesEscapedStrings(t *testing.T) {
	b := NewBatch(schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16}), 1<<10)
	var want []record.Session
	for i := 0; i < 50; i++ {
		s := genSessions(uint64(30+i), 1)[0]
		s.HELO = fmt.Sprintf("<helo %d> \"x\"", i)
		s.MailFrom = fmt.Sprintf("a%d\t<b@example.org>", i)
		s.SMTPReply = strings.Repeat("\\", i%5) + "&reply"
		s.Flags = []string{"<f1>", fmt.Sprintf("f\"%d", i)}
		want = append(want, s)
		b.Add(KindSessions, &Message{Topic: "s", Offset: int64(i), Value: s.AppendJSON(nil)}, time.Now())
	}
	if _, _, d := b.Rows(); d != 0 {
		t.Fatalf("%d records dead-lettered", d)
	}
	helo, from, reply, flags := b.sessions.helo.views(), b.sessions.mailFrom.views(), b.sessions.smtpReply.views(), b.sessions.flags.views()
	for i, s := range want {
		if helo[i] != s.HELO || from[i] != s.MailFrom || reply[i] != s.SMTPReply || !reflect.DeepEqual(flags[i], s.Flags) {
			t.Fatalf("row %d: %q %q %q %q, want %q %q %q %q", i, helo[i], from[i], reply[i], flags[i], s.HELO, s.MailFrom, s.SMTPReply, s.Flags)
		}
	}
}
