package alert

import (
	"bytes"
	"context"
	"net/netip"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/gen"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/enrich/session"
	"github.com/mxtrail/mxtrail/internal/testenv"
)

type benchLine struct {
	host, file string
	line       []byte
}

var (
	benchOnce  sync.Once
	benchLines []benchLine
)

// fleet generates a seeded fleet of every product (~60k lines) in memory, each host's lines
// in event-time order as an enricher partition sees them.
func fleet(b *testing.B) []benchLine {
	benchOnce.Do(func() {
		opts := gen.Defaults()
		opts.Seed, opts.Hosts, opts.Lines = 11, 7, 60_000
		var files map[string]*bytes.Buffer
		opts.Create, files = gen.InMemory()
		sum, err := gen.Generate(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		p, err := parse.New(parse.Options{DefaultYear: 2021})
		if err != nil {
			b.Fatal(err)
		}
		type timed struct {
			benchLine
			at time.Time
		}
		for _, h := range sum.Hosts {
			var ls []timed
			for _, f := range sum.Files {
				if f.Host != h.Host {
					continue
				}
				var ev event.Event
				src := &event.Source{Host: h.Host, File: f.Name}
				for _, l := range bytes.Split(bytes.TrimSuffix(files[f.Name].Bytes(), []byte("\n")), []byte("\n")) {
					p.Parse(&ev, l, src)
					ls = append(ls, timed{benchLine{h.Host, f.Name, l}, ev.Time})
				}
			}
			sort.SliceStable(ls, func(i, j int) bool { return ls[i].at.Before(ls[j].at) })
			for _, l := range ls {
				benchLines = append(benchLines, l.benchLine)
			}
		}
	})
	return benchLines
}

// pass runs the enricher's per-partition work on lines: parse, assemble, notable events, and
// with withAlerts the alert hooks exactly as enrich/stream calls them (severity lookup and
// counters per line, host counters per line and session, the engine on notable events and
// closed sessions, Expire on the watermark). It returns the alert records emitted.
func pass(b *testing.B, p *parse.Parser, lines []benchLine, withAlerts bool, m *Metrics) int {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} // relay_unexpected on
	cat := NewCatalogue(trusted)
	sc := session.Defaults()
	if withAlerts {
		sc.NotableCodes = cat.NotableCodes()
	}
	asm, err := session.New(sc)
	if err != nil {
		b.Fatal(err)
	}
	cfg := Defaults()
	cfg.Trusted = trusted
	eng, err := New(cfg, cat)
	if err != nil {
		b.Fatal(err)
	}
	hosts := m.Hosts()
	var (
		ev    event.Event
		src   event.Source
		evs   []record.Event
		recs  []Record
		now   time.Time
		nrecs int
	)
	sessions := func(rs []record.Session) {
		if !withAlerts {
			return
		}
		for i := range rs {
			hosts.Session(&rs[i])
			recs = eng.Session(&rs[i], recs)
		}
	}
	for j, l := range lines {
		src.Host, src.File, src.Offset = l.host, "raw/0", int64(j)
		p.Parse(&ev, l.line, &src)
		if !ev.Parsed {
			continue
		}
		if withAlerts {
			m.Event(ev.Product, cat.Severity(&ev))
			hosts.Line(ev.Bytes(ev.Host))
			var cl Class
			if cl, recs = eng.Line(&ev, recs); cl.Rule != RuleNone {
				m.Matched(cl, ev.Product.String())
			}
		}
		sessions(asm.Add(&ev))
		if ev.Time.After(now) {
			now = ev.Time
		}
		if j%1024 == 0 {
			sessions(asm.Expire(now.Add(-time.Minute)))
			if withAlerts {
				recs = eng.Expire(now.Add(-time.Minute), recs)
			}
		}
		evs = asm.NotableEvents(evs[:0])
		if withAlerts {
			for i := range evs {
				var cl Class
				cl, recs = eng.Event(&evs[i], recs)
				m.Matched(cl, evs[i].Product)
			}
			m.Raised(recs)
			for i := range recs {
				_ = recs[i].AppendJSON(nil) // the stream encodes each record once
			}
		}
		nrecs += len(recs)
		recs = recs[:0]
	}
	return nrecs
}

// BenchmarkAlertHooks measures what alerting adds to the enricher's per-line work: the same
// fleet through parse + assemble (the stream with alerts off: the baseline) and through parse
// + assemble + every alert hook, alternating the two in each iteration so load on the shared
// machine hits both alike. Reported: lines/s of each, the ratio of wall time and of process
// CPU time (rusage), and allocations per line of each.
func BenchmarkAlertHooks(b *testing.B) {
	lines := fleet(b)
	p, err := parse.New(parse.Options{DefaultYear: 2021})
	if err != nil {
		b.Fatal(err)
	}
	m := NewMetrics(nil, 1000)
	var wBase, wFull, cBase, cFull time.Duration
	var aBase, aFull uint64
	var ms runtime.MemStats
	recs := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.ReadMemStats(&ms)
		m0, c0, t0 := ms.Mallocs, testenv.ProcessCPU(), time.Now()
		pass(b, p, lines, false, m)
		t1, c1 := time.Now(), testenv.ProcessCPU()
		runtime.ReadMemStats(&ms)
		m1 := ms.Mallocs
		recs += pass(b, p, lines, true, m)
		t2, c2 := time.Now(), testenv.ProcessCPU()
		runtime.ReadMemStats(&ms)
		wBase += t1.Sub(t0)
		wFull += t2.Sub(t1)
		cBase += c1 - c0
		cFull += c2 - c1
		aBase += m1 - m0
		aFull += ms.Mallocs - m1
	}
	n := float64(len(lines)) * float64(b.N)
	b.ReportMetric(n/wBase.Seconds(), "base-lines/s")
	b.ReportMetric(n/wFull.Seconds(), "alerts-lines/s")
	b.ReportMetric(wFull.Seconds()/wBase.Seconds(), "wall-ratio")
	if cBase > 0 {
		b.ReportMetric(cFull.Seconds()/cBase.Seconds(), "cpu-ratio")
		b.ReportMetric(float64(cFull-cBase)/float64(time.Microsecond)/n, "extra-cpu-µs/line")
	}
	b.ReportMetric(float64(aBase)/n, "base-allocs/line")
	b.ReportMetric(float64(aFull)/n, "alerts-allocs/line")
	b.ReportMetric(float64(recs)/float64(b.N), "alert-records/op")
}

// BenchmarkEngineStorm: an alert storm (one host logging smtpf #538 every 10 ms of event time,
// 40 hosts) through the engine alone, against a baseline of the same notable events only
// counted in a map (what any consumer of the events must at least do). Reported per event:
// time, allocations and the ratio to the baseline; records emitted stay throttled.
func BenchmarkEngineStorm(b *testing.B) {
	const n = 100_000
	base := time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)
	evs := make([]record.Event, n)
	for i := range evs {
		evs[i] = *smtpfOOM(base.Add(time.Duration(i)*10*time.Millisecond), "mx"+strconv.Itoa(i%40))
		evs[i].Pos.Offset = int64(i)
	}
	var tBase, tEng time.Duration
	var aBase, aEng uint64
	var ms runtime.MemStats
	recs := 0
	b.ReportAllocs()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		runtime.ReadMemStats(&ms)
		m0, t0 := ms.Mallocs, time.Now()
		seen := map[string]int{}
		for i := range evs {
			seen[evs[i].Host+"/"+evs[i].Code]++
		}
		t1 := time.Now()
		runtime.ReadMemStats(&ms)
		m1 := ms.Mallocs
		e, err := New(Defaults(), NewCatalogue(nil))
		if err != nil {
			b.Fatal(err)
		}
		var out []Record
		for i := range evs {
			_, out = e.Event(&evs[i], out[:0])
			recs += len(out)
			if i%1024 == 0 {
				out = e.Expire(evs[i].Time.Add(-time.Minute), out[:0])
				recs += len(out)
			}
		}
		t2 := time.Now()
		runtime.ReadMemStats(&ms)
		tBase += t1.Sub(t0)
		tEng += t2.Sub(t1)
		aBase += m1 - m0
		aEng += ms.Mallocs - m1
	}
	k := float64(n) * float64(b.N)
	b.ReportMetric(float64(tEng.Nanoseconds())/k, "engine-ns/event")
	b.ReportMetric(float64(tBase.Nanoseconds())/k, "base-ns/event")
	b.ReportMetric(tEng.Seconds()/tBase.Seconds(), "ratio-to-base")
	b.ReportMetric(float64(aEng)/k, "engine-allocs/event")
	b.ReportMetric(float64(aBase)/k, "base-allocs/event")
	b.ReportMetric(float64(recs)/float64(b.N), "records/op")
}
