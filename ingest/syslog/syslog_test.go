package syslog

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/ingest/produce"
	"github.com/mxtrail/mxtrail/ingest/wire"
)

type msg struct {
	host  string
	value string
	h     map[string]string
}

type recorder struct {
	mu   sync.Mutex
	msgs []msg
	gate chan struct{} // when set, each Send waits for a token (a stalled Kafka)
}

func (r *recorder) Send(ctx context.Context, _ produce.Input, key string, hdr []kafka.Header, v []byte, _ produce.Acker, _ uint64) error {
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h := map[string]string{}
	for _, x := range hdr {
		h[x.Key] = string(x.Value)
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, msg{key, string(v), h})
	r.mu.Unlock()
	return nil
}

func (r *recorder) wait(t *testing.T, n int) []msg {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		if len(r.msgs) >= n {
			out := append([]msg(nil), r.msgs...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
	}
	t.Fatalf("got %d messages, want %d", len(r.msgs), n)
	return nil
}

func serve(t testing.TB, cfg Config, out Sender) *Receiver {
	t.Helper()
	r, err := Listen(cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

const (
	m3164 = "<22>Mar  9 11:10:37 mx7 spamdyke[15309]: ALLOWED from: a@example.com to: b@example.org origin_ip: 192.0.2.1 origin_rdns: mail.example.com auth: (unknown) encryption: (none) reason: 250_ok_1615286631_qp_15309"
	m5424 = "<22>1 2026-03-09T11:10:37.123+01:00 mx8.example.org smtpf 28585 - - k165S4285856336700 #720 message <x> f=\"white\" x=\"250 2.0.0 ok\""
)

func TestHost(t *testing.T) {
	for _, c := range []struct{ in, host, rfc string }{
		{m3164, "mx7", wire.SyslogRFC3164},
		{m5424, "mx8.example.org", wire.SyslogRFC5424},
		{"<13>1 2026-03-09T11:10:37Z - app - - - nil host", "", wire.SyslogRFC5424},
		{"<13>Mar 19 01:02:03 host2 prog: x", "host2", wire.SyslogRFC3164},
		{"<13>Mar  9 01:02:03 prog[1]: no host", "", wire.SyslogRFC3164},
		{"<13>2026-03-09T11:10:37+00:00 h3 prog: rsyslog rfc3339 template", "h3", wire.SyslogRFC3164},
		{"no header at all", "", ""},
		{"<999999>x", "", ""},
		{"Ebm  9 01:02:03 x y", "", ""},
	} {
		h, rfc := Host([]byte(c.in))
		if h != c.host || rfc != c.rfc {
			t.Errorf("Host(%q) = %q %q, want %q %q", c.in, h, rfc, c.host, c.rfc)
		}
	}
}

func cfg() Config {
	return Config{UDP: "127.0.0.1:0", TCP: "127.0.0.1:0", Host: "collector", Dialect: "spamdyke", MaxLine: 64 << 10}
}

func TestUDPBothRFCs(t *testing.T) {
	rec := &recorder{}
	r := serve(t, cfg(), rec)
	c, err := net.Dial("udp", r.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bad := "<13>Mar  9 01:02:03 mx9 prog: bad \xff\xfe utf8 and NUL \x00 inside"
	for _, m := range []string{m3164, m5424 + "\n", bad, "headerless line"} {
		c.Write([]byte(m))
	}
	got := rec.wait(t, 4)
	want := []struct{ host, value, rfc string }{
		{"mx7", m3164, "rfc3164"}, {"mx8.example.org", m5424, "rfc5424"}, {"mx9", bad, "rfc3164"}, {"collector", "headerless line", ""},
	}
	for i, w := range want {
		if got[i].host != w.host || got[i].value != w.value || got[i].h[wire.HeaderSyslog] != w.rfc ||
			got[i].h[wire.HeaderSource] != wire.SourceSyslogUDP || got[i].h[wire.HeaderDialect] != "spamdyke" {
			t.Errorf("message %d: %+v, want %+v", i, got[i], w)
		}
	}
	if _, err := UDPDrops(r.UDPAddr().(*net.UDPAddr).Port); err != nil {
		t.Fatal(err)
	}
}

func TestTCPBothFramingsOnOneStream(t *testing.T) {
	rec := &recorder{}
	r := serve(t, cfg(), rec)
	c, err := net.Dial("tcp", r.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	multi := "<13>1 2026-03-09T11:10:37Z mx8 app - - - first line\nsecond line of the same message"
	var stream bytes.Buffer
	stream.WriteString(m3164 + "\n")
	fmt.Fprintf(&stream, "%d %s", len(m5424), m5424)
	fmt.Fprintf(&stream, "%d %s", len(multi), multi) // octet counting keeps embedded newlines
	stream.WriteString(m3164 + "\r\n")
	stream.WriteString("\n") // empty line: skipped
	stream.WriteString("2026-03-09 11:10:37 headerless line starting with a digit\n")
	stream.WriteString("<13>Mar  9 01:02:03 mx9 prog: last, no newline")
	c.Write(stream.Bytes())
	c.Close()
	got := rec.wait(t, 6)
	wantV := []string{m3164, m5424, multi, m3164, "2026-03-09 11:10:37 headerless line starting with a digit", "<13>Mar  9 01:02:03 mx9 prog: last, no newline"}
	for i, w := range wantV {
		if got[i].value != w || got[i].h[wire.HeaderSource] != wire.SourceSyslogTCP {
			t.Errorf("message %d = %q, want %q", i, got[i].value, w)
		}
	}
	if got[2].host != "mx8" {
		t.Errorf("host %q", got[2].host)
	}
}

func TestTCPHugeMessages(t *testing.T) {
	big := "<13>Mar  9 01:02:03 mx9 prog: " + string(bytes.Repeat([]byte("y"), 1<<20))
	for _, tc := range []struct {
		name    string
		max     int
		counted bool
	}{
		{"newline fits", 2 << 20, false}, {"counted fits", 2 << 20, true},
		{"newline truncated", 64 << 10, false}, {"counted truncated", 64 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c := cfg()
			c.MaxLine = tc.max
			r := serve(t, c, rec)
			conn, _ := net.Dial("tcp", r.TCPAddr().String())
			if tc.counted {
				fmt.Fprintf(conn, "%d %s", len(big), big)
			} else {
				conn.Write([]byte(big + "\n"))
			}
			conn.Write([]byte(m3164 + "\n"))
			conn.Close()
			got := rec.wait(t, 2)
			if tc.max > len(big) {
				if got[0].value != big || got[0].h[wire.HeaderTruncated] != "" {
					t.Fatalf("1 MiB message altered: len %d", len(got[0].value))
				}
			} else if got[0].value != big[:tc.max] || got[0].h[wire.HeaderTruncated] != strconv.Itoa(len(big)) {
				t.Fatalf("truncated: len %d header %q", len(got[0].value), got[0].h[wire.HeaderTruncated])
			}
			if got[1].value != m3164 {
				t.Fatalf("stream lost its framing after the big message: %q", got[1].value)
			}
		})
	}
}

func TestTCPBackpressureStopsReading(t *testing.T) {
	rec := &recorder{gate: make(chan struct{})}
	r := serve(t, cfg(), rec)
	conn, _ := net.Dial("tcp", r.TCPAddr().String())
	defer conn.Close()
	// With Kafka stalled the receiver must not read without bound: the sender's writes
	// must eventually block (the socket buffers fill up).
	line := []byte(m3164 + "\n")
	written := 0
	conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	for written < 256<<20 {
		n, err := conn.Write(line)
		written += n
		if err != nil {
			break
		}
	}
	if written >= 256<<20 {
		t.Fatalf("wrote %d bytes into a receiver whose output is stalled", written)
	}
	// Releasing Kafka lets everything through, in order.
	n := written / len(line)
	go func() {
		for range n {
			rec.gate <- struct{}{}
		}
	}()
	got := rec.wait(t, n)
	for i := range got {
		if got[i].value != m3164 {
			t.Fatalf("message %d: %q", i, got[i].value)
		}
	}
}

func TestBrokenOctetCountClosesOnlyThatConnection(t *testing.T) {
	rec := &recorder{}
	r := serve(t, cfg(), rec)
	c1, _ := net.Dial("tcp", r.TCPAddr().String())
	c1.Write([]byte("12345678901234567890 overlong count\n"))
	c2, _ := net.Dial("tcp", r.TCPAddr().String())
	c2.Write([]byte(m3164 + "\n"))
	c2.Close()
	got := rec.wait(t, 1)
	if got[0].value != m3164 {
		t.Fatalf("%q", got[0].value)
	}
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection with a broken octet count stayed open")
	}
}

// TestTCPHeadersPerHostAndRead: messages of one TCP stream may share headers, but each still
// carries its own host, RFC and truncation, and a message that arrived later carries a later
// ingest_time.
func TestTCPHeadersPerHostAndRead(t *testing.T) {
	rec := &recorder{}
	c := cfg()
	c.MaxLine = 100
	r := serve(t, c, rec)
	conn, err := net.Dial("tcp", r.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	long := "<13>Mar  9 01:02:03 mxA prog: " + strings.Repeat("x", 200)
	conn.Write([]byte("<13>Mar  9 01:02:03 mxA prog: 1\n<13>Mar  9 01:02:03 mxA prog: 2\n" +
		"<13>1 2026-03-09T11:10:37Z mxB app - - - 3\n" + long + "\n<13>Mar  9 01:02:03 mxA prog: 5\nheaderless 6\n"))
	time.Sleep(150 * time.Millisecond)
	conn.Write([]byte("<13>Mar  9 01:02:03 mxA prog: 7\n"))
	conn.Close()
	got := rec.wait(t, 7)
	want := []struct{ host, rfc, trunc string }{
		{"mxA", "rfc3164", ""}, {"mxA", "rfc3164", ""}, {"mxB", "rfc5424", ""}, {"mxA", "rfc3164", "230"},
		{"mxA", "rfc3164", ""}, {"collector", "", ""}, {"mxA", "rfc3164", ""},
	}
	for i, w := range want {
		g := got[i]
		if g.host != w.host || g.h[wire.HeaderHost] != w.host || g.h[wire.HeaderSyslog] != w.rfc || g.h[wire.HeaderTruncated] != w.trunc {
			t.Errorf("message %d: key %q headers %v, want host %q rfc %q truncated %q", i, g.host, g.h, w.host, w.rfc, w.trunc)
		}
	}
	t5, err1 := time.Parse(wire.IngestTimeLayout, got[4].h[wire.HeaderIngestTime])
	t7, err2 := time.Parse(wire.IngestTimeLayout, got[6].h[wire.HeaderIngestTime])
	if err1 != nil || err2 != nil || t7.Sub(t5) < 100*time.Millisecond {
		t.Errorf("message 7 arrived 150 ms after message 5 but ingest_time %v vs %v (%v, %v)", got[6].h[wire.HeaderIngestTime], got[4].h[wire.HeaderIngestTime], err1, err2)
	}
}

type discard struct {
	n    atomic.Int64
	done chan struct{}
	want int64
}

func (d *discard) Send(context.Context, produce.Input, string, []kafka.Header, []byte, produce.Acker, uint64) error {
	if d.n.Add(1) == d.want {
		close(d.done)
	}
	return nil
}

// BenchmarkTCPReceive: newline-framed RFC 3164 messages of ~200 bytes from 4 hosts over one
// TCP connection into a Sender that discards them (the receiver's own cost, client included).
// Baseline, same run: the same bytes over loopback TCP read by a bare bufio.ReadSlice loop.
func BenchmarkTCPReceive(b *testing.B) {
	var stream bytes.Buffer
	for i := range 4096 {
		fmt.Fprintf(&stream, "<22>Mar  9 11:10:%02d mx%d spamdyke[%d]: ALLOWED from: user%d@example.com to: rcpt@example.org origin_ip: 192.0.2.%d origin_rdns: mail.example.net auth: (unknown) encryption: TLS reason: 250_ok\n",
			i%60, i/64%4, 10000+i, i, i%250)
	}
	chunk := stream.Bytes()
	write := func(b *testing.B, addr string, n int) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		for ; n >= 4096; n -= 4096 {
			c.Write(chunk)
		}
		// The rest: the first n lines.
		rest := chunk
		for i := 0; i < n; i++ {
			j := bytes.IndexByte(rest, '\n')
			rest = rest[j+1:]
		}
		c.Write(chunk[:len(chunk)-len(rest)])
	}

	b.Run("receiver", func(b *testing.B) {
		d := &discard{done: make(chan struct{}), want: int64(b.N)}
		r := serve(b, cfg(), d)
		b.SetBytes(int64(len(chunk) / 4096))
		b.ReportAllocs()
		b.ResetTimer()
		go write(b, r.TCPAddr().String(), b.N)
		<-d.done
	})
	b.Run("baseline=bufio", func(b *testing.B) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		b.SetBytes(int64(len(chunk) / 4096))
		b.ReportAllocs()
		b.ResetTimer()
		go write(b, l.Addr().String(), b.N)
		c, err := l.Accept()
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 64<<10)
		for range b.N {
			if _, err := br.ReadSlice('\n'); err != nil {
				b.Fatal(err)
			}
		}
	})
}
