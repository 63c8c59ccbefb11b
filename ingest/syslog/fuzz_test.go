package syslog

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/ingest/produce"
)

func FuzzHost(f *testing.F) {
	for _, s := range []string{m3164, m5424, "<13>1 - - - - - -", "<1>Jan  1 00:00:00 h p: x", "", "<", "<999>", "1 ", "2026-03-09T11:10:37+00:00 h3 p"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		host, rfc := Host(msg)
		if host != "" && !bytes.Contains(msg, []byte(host)) {
			t.Fatalf("host %q is not in the message %q", host, msg)
		}
		if host != "" && rfc == "" {
			t.Fatalf("host %q without a header kind", host)
		}
	})
}

// FuzzTCPStream feeds arbitrary bytes to one TCP connection's reader: it must end (no hang,
// no panic), never ship more than MaxLine bytes per message, and ship nothing it did not read.
func FuzzTCPStream(f *testing.F) {
	f.Add([]byte(m3164 + "\n" + "5 hello" + "\n\n3 ab"))
	f.Add([]byte("12345678901 x"))
	f.Add([]byte("99999999 short"))
	f.Add([]byte("0 \n-1 x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec := &recorder{}
		r := &Receiver{cfg: Config{Host: "h", MaxLine: 64}, out: rec, m: NewMetrics(nil), c: produce.NewMetrics(nil)}
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() {
			r.serveConn(context.Background(), b)
			b.Close()
			close(done)
		}()
		go func() {
			a.SetWriteDeadline(time.Now().Add(5 * time.Second))
			a.Write(data)
			a.Close()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("connection reader did not finish")
		}
		total := 0
		for _, m := range rec.msgs {
			if len(m.value) > 64 {
				t.Fatalf("message of %d bytes with max line 64", len(m.value))
			}
			total += len(m.value)
		}
		if total > len(data) {
			t.Fatalf("shipped %d bytes from %d read", total, len(data))
		}
	})
}
