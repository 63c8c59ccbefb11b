package parse

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/vjeantet/grok"
)

// benchCorpus is a realistic mix of every dialect: the real public lines, rendered
// catalogue lines (smtpf summary lines dominate real smtpf logs, so they are repeated),
// synthetic Isode lines, qmail syslog lines and IMail antispam lines.
func benchCorpus(b testing.TB) [][]byte {
	b.Helper()
	var lines []string
	for _, f := range []string{"spamdyke.log", "smtpf.log", "icdsoft_smtp.log", "icdsoft_delivery.log", "mailenable.log", "imail.log"} {
		lines = append(lines, readLines(b, filepath.Join("testdata", "corpus", f))...)
	}
	for d := event.Dialect(1); d < event.NumDialects; d++ { // map order would vary the mix
		lines = append(lines, fuzzSeeds[d]...)
	}
	for i, c := range spamdykeCodes {
		if i%3 == 0 {
			lines = append(lines, fmt.Sprintf("Mar  9 11:10:%02d server spamdyke[%d]: %s from: bad@spam.example.net to: user@example.com origin_ip: 203.0.113.%d origin_rdns: (unknown) auth: (unknown) encryption: (none) reason: (empty)", i, 29000+i, c.Code, i))
		}
	}
	for _, e := range smtpfCatalogue {
		if e.Num%7 == 0 {
			lines = append(lines, fmt.Sprintf("Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #%d %s", e.Num, fillFormat(e.Format)))
		}
	}
	for _, e := range isodeCatalogue[:8] {
		lines = append(lines, fmt.Sprintf("2026-03-09 12:43:51.250 %s MTA_SMTP %s %d smtpserver[4711]: %s", e.Sev, e.Name, e.ID, isodeText(e.Name)))
	}
	lines = append(lines, []string{
		"Mar  9 10:43:51 mx1 qmail: 1615286631.123456 new msg 3940483",
		"Mar  9 10:43:51 mx1 qmail: 1615286631.123456 starting delivery 114878: msg 3940483 to local recipient@example.com",
		"Mar  9 10:43:51 mx1 qmail: 1615286631.123456 end msg 3940483",
		"03:19 03:22 SMTPD(00180250) VALIDATION: (REVDNS) domain FAILED reverse DNS validation for address (203.0.113.66)",
		"03:19 03:22 SMTPD(00180250) message failed 3 of 5 checks, deleting",
		"06/20/23 06:12:50 ME-I0108: Relay Granted: Sender has authenticated.",
	}...)
	out := make([][]byte, len(lines))
	for i, l := range lines {
		out[i] = []byte(l)
	}
	return out
}

func corpusBytes(lines [][]byte) int64 {
	var n int64
	for _, l := range lines {
		n += int64(len(l))
	}
	return n
}

func reportLines(b *testing.B, start time.Time, perOp int) {
	el := time.Since(start).Seconds()
	if el > 0 {
		b.ReportMetric(float64(b.N*perOp)/el, "lines/s")
	}
}

// BenchmarkParse runs the mixed corpus through the router + grok engine and, in the same
// run, through the Telegraf-style baseline. One op is one line. Run with -cpu 1: lines/s is
// then per core (one goroutine). Compare: benchstat-free ratio = router lines/s ÷ baseline lines/s.
func BenchmarkParse(b *testing.B) {
	lines := benchCorpus(b)
	avg := corpusBytes(lines) / int64(len(lines))
	b.Run("router+grok", func(b *testing.B) {
		p, err := New(Options{DefaultYear: 2026})
		if err != nil {
			b.Fatal(err)
		}
		var ev event.Event
		src := &event.Source{Host: "mx1"}
		parsed := 0
		for _, l := range lines { // warm the event buffer
			p.Parse(&ev, l, src)
			if ev.Parsed {
				parsed++
			}
		}
		if parsed != len(lines) {
			b.Fatalf("%d of %d corpus lines parsed", parsed, len(lines))
		}
		b.SetBytes(avg)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			p.Parse(&ev, lines[i%len(lines)], src)
		}
		reportLines(b, start, 1)
	})
	b.Run("baseline-telegraf-grok", func(b *testing.B) {
		g, err := grok.NewWithConfig(&grok.Config{NamedCapturesOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		for _, pat := range TelegrafPatterns { // compile before timing
			if _, err := g.Parse(pat, ""); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(avg)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			l := string(lines[i%len(lines)])
			for _, pat := range TelegrafPatterns {
				if m, _ := g.Parse(pat, l); len(m) > 0 {
					break
				}
			}
		}
		reportLines(b, start, 1)
	})
}

// BenchmarkParseParallel shows how the parser scales across cores (no shared mutable state).
func BenchmarkParseParallel(b *testing.B) {
	lines := benchCorpus(b)
	p, err := New(Options{DefaultYear: 2026})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(corpusBytes(lines) / int64(len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var ev event.Event
		i := 0
		for pb.Next() {
			p.Parse(&ev, lines[i%len(lines)], nil)
			i++
		}
	})
	reportLines(b, start, 1)
}

// BenchmarkParseRatio interleaves the two paths over the same corpus in every iteration, so
// machine noise hits both alike, and reports their ratio (x_baseline; the target is >= 35).
// Allocation figures of this benchmark mix both paths: read them from BenchmarkParse.
func BenchmarkParseRatio(b *testing.B) {
	lines := benchCorpus(b)
	p, err := New(Options{DefaultYear: 2026})
	if err != nil {
		b.Fatal(err)
	}
	g, err := grok.NewWithConfig(&grok.Config{NamedCapturesOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	for _, pat := range TelegrafPatterns {
		if _, err := g.Parse(pat, ""); err != nil {
			b.Fatal(err)
		}
	}
	var ev event.Event
	var fast, slow time.Duration
	b.SetBytes(21 * corpusBytes(lines)) // bytes through both paths per op
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		for r := 0; r < 20; r++ { // the fast path is too quick to time once per corpus
			for _, l := range lines {
				p.Parse(&ev, l, nil)
			}
		}
		t1 := time.Now()
		for _, l := range lines {
			s := string(l)
			for _, pat := range TelegrafPatterns {
				if m, _ := g.Parse(pat, s); len(m) > 0 {
					break
				}
			}
		}
		fast += t1.Sub(t0)
		slow += time.Since(t1)
	}
	n := float64(b.N * len(lines))
	b.ReportMetric(20*n/fast.Seconds(), "router_lines/s")
	b.ReportMetric(n/slow.Seconds(), "baseline_lines/s")
	b.ReportMetric((20*n/fast.Seconds())/(n/slow.Seconds()), "x_baseline")
}
