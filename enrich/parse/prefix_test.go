package parse

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/event"
)

// reference is the parser without shared prefixes: every pattern tried from its first token.
func reference(t testing.TB) *Parser {
	t.Helper()
	p, err := New(Options{DefaultYear: 2021})
	if err != nil {
		t.Fatal(err)
	}
	p.noPrefix = true
	return p
}

// sameParse fails when line parses differently with and without shared prefixes, routed
// and pinned to each dialect.
func sameParse(t *testing.T, p, ref *Parser, line []byte) {
	t.Helper()
	var a, b event.Event
	for d := event.DialectAuto; d < event.NumDialects; d++ {
		src := &event.Source{Host: "h", Dialect: d}
		p.Parse(&a, line, src)
		ref.Parse(&b, line, src)
		ja, jb := event.AppendJSON(nil, &a), event.AppendJSON(nil, &b)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("dialect %s, line %q:\nshared prefixes: %s\nreference:       %s", d, line, ja, jb)
		}
	}
}

// TestPrefixGroupsSameResults: on the test corpora, the fuzz seeds and a line for every smtpf
// catalogue entry, shared prefixes change no result; and the groups do form where the
// patterns were slow (smtpf and IMail lines tried 18.7 and 12.4 patterns each).
func TestPrefixGroupsSameResults(t *testing.T) {
	p, ref := testParser(t), reference(t)
	lines := benchCorpus(t)
	for _, e := range smtpfCatalogue {
		lines = append(lines, []byte(fmt.Sprintf("Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #%d %s", e.Num, fillFormat(e.Format))))
	}
	for _, l := range lines {
		sameParse(t, p, ref, l)
		// damaged variants: cut short, and one byte changed, inside the shared runs
		for _, n := range []int{len(l) / 3, len(l) / 2, len(l) - 1} {
			sameParse(t, p, ref, l[:n])
			m := bytes.Clone(l)
			m[n] ^= 0x20
			sameParse(t, p, ref, m)
		}
	}
	for _, d := range []event.Dialect{event.DialectSmtpf, event.DialectIMail} {
		grouped := 0
		for _, cp := range p.dialects[d].pats {
			if cp.group >= 0 {
				grouped++
			}
		}
		if grouped < len(p.dialects[d].pats)/2 {
			t.Errorf("%s: %d of %d patterns share a prefix", d, grouped, len(p.dialects[d].pats))
		}
	}
}

// FuzzPrefixGroups: any line parses the same with and without shared prefixes.
func FuzzPrefixGroups(f *testing.F) {
	seedsFor(f, event.DialectAuto)
	p, ref := testParser(f), reference(f)
	f.Fuzz(func(t *testing.T, line []byte) { sameParse(t, p, ref, line) })
}

// BenchmarkParsePatternLoop: Parser.Parse on the bench corpus, with shared
// prefixes and, as the baseline in the same run, every pattern tried from its first token.
func BenchmarkParsePatternLoop(b *testing.B) {
	for _, noPrefix := range []bool{false, true} {
		name := "shared_prefixes"
		if noPrefix {
			name = "baseline_each_pattern_from_start"
		}
		b.Run(name, func(b *testing.B) {
			lines := benchCorpus(b)
			p, err := New(Options{DefaultYear: 2026})
			if err != nil {
				b.Fatal(err)
			}
			p.noPrefix = noPrefix
			var ev event.Event
			src := &event.Source{Host: "mx1"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.Parse(&ev, lines[i%len(lines)], src)
			}
		})
	}
}
