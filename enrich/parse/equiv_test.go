package parse

import (
	"testing"

	"github.com/mxtrail/mxtrail/enrich/event"
)

// grokAgrees checks the fast engine against vjeantet/grok on one line: for every pattern of
// the routed dialect up to the first match, both must agree on match/no-match, and on the
// first match every capture must hold the same text. parseTwice calls it for every test line.
func grokAgrees(t *testing.T, p *Parser, line string, pinned event.Dialect) {
	t.Helper()
	b := []byte(line)
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if len(b) == 0 {
		return
	}
	var h header
	d, body, reason := p.route(b, pinned, &h)
	if reason != "" || d == event.DialectAuto {
		return
	}
	msg := b[body:]
	if d == event.DialectQmail {
		msg = msg[qmailTimestamp(msg, &h):]
	}
	for _, cp := range p.dialects[d].pats {
		if cp.slow {
			continue
		}
		caps := make([]span, len(cp.roles))
		fast := cp.match(msg, caps)
		m, err := p.comp.g.Parse(p.comp.refExpr(cp.Pattern), string(msg))
		if err != nil {
			t.Fatalf("grok %s: %v", cp.Name, err)
		}
		ref := len(m) > 0
		if fast != ref {
			t.Fatalf("pattern %s: fast engine match=%v, vjeantet/grok match=%v on %q", cp.Name, fast, ref, msg)
		}
		if !fast {
			continue
		}
		for i, n := range cp.Names {
			got := ""
			if caps[i].start >= 0 {
				got = string(msg[caps[i].start:caps[i].end])
			}
			if m[n] != got {
				t.Fatalf("pattern %s capture %s: fast %q, vjeantet/grok %q on %q", cp.Name, n, got, m[n], msg)
			}
		}
		return
	}
}
