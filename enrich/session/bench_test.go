package session

import (
	"bytes"
	"context"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/gen"
	"github.com/mxtrail/mxtrail/enrich/parse"
)

type benchLine struct {
	host string
	file string
	line []byte
}

var (
	benchOnce  sync.Once
	benchLines []benchLine
	benchBytes int64
)

// fleetLines generates a fleet of every product (~120k lines, seeded) and orders each
// host's files by event time, the stream `mxtrail sessions` and the enricher see.
func fleetLines(b *testing.B) []benchLine {
	benchOnce.Do(func() {
		opts := gen.Defaults()
		opts.Seed = 7
		opts.Hosts = 7
		opts.Lines = 120_000
		var files map[string]*bytes.Buffer
		opts.Create, files = gen.InMemory()
		sum, err := gen.Generate(context.Background(), opts)
		if err != nil {
			panic(err)
		}
		p, err := parse.New(parse.Options{DefaultYear: 2021})
		if err != nil {
			panic(err)
		}
		type timed struct {
			benchLine
			at   time.Time
			file int
			seq  int
		}
		for _, h := range sum.Hosts {
			var ls []timed
			for fi, f := range sum.Files {
				if f.Host != h.Host {
					continue
				}
				var ev event.Event
				src := &event.Source{Host: h.Host, File: f.Name}
				for i, l := range bytes.Split(bytes.TrimSuffix(files[f.Name].Bytes(), []byte("\n")), []byte("\n")) {
					p.Parse(&ev, l, src)
					ls = append(ls, timed{benchLine{h.Host, f.Name, l}, ev.Time, fi, i})
					benchBytes += int64(len(l)) + 1
				}
			}
			sort.SliceStable(ls, func(i, j int) bool {
				if !ls[i].at.Equal(ls[j].at) {
					return ls[i].at.Before(ls[j].at)
				}
				return ls[i].file < ls[j].file
			})
			for _, l := range ls {
				benchLines = append(benchLines, l.benchLine)
			}
		}
	})
	return benchLines
}

// BenchmarkParseAssemble measures the whole stage (parse + assemble + label) on generated
// fleet logs, with the parse-only pass over the same lines as the baseline in the same run:
// lines/s of each (run with -cpu 1 for per-core figures) and the stage's share of parse speed.
func BenchmarkParseAssemble(b *testing.B) {
	lines := fleetLines(b)
	p, err := parse.New(parse.Options{DefaultYear: 2021})
	if err != nil {
		b.Fatal(err)
	}
	var ev event.Event
	src := &event.Source{}
	var base, full time.Duration
	sessions := 0
	b.SetBytes(benchBytes)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		for _, l := range lines {
			src.Host, src.File = l.host, l.file
			p.Parse(&ev, l.line, src)
		}
		t1 := time.Now()
		a, _ := New(Defaults())
		var now time.Time
		for j, l := range lines {
			src.Host, src.File = l.host, l.file
			p.Parse(&ev, l.line, src)
			sessions += len(a.Add(&ev))
			if ev.Time.After(now) {
				now = ev.Time
			}
			if j%4096 == 0 {
				sessions += len(a.Expire(now))
			}
		}
		sessions += len(a.Flush())
		t2 := time.Now()
		base += t1.Sub(t0)
		full += t2.Sub(t1)
	}
	n := float64(len(lines)) * float64(b.N)
	b.ReportMetric(n/full.Seconds(), "lines/s")
	b.ReportMetric(n/base.Seconds(), "baseline-parse-lines/s")
	b.ReportMetric(base.Seconds()/full.Seconds(), "ratio-to-parse-only")
	b.ReportMetric(float64(sessions)/float64(b.N), "sessions/op")
}

// BenchmarkOpenSessionBytes measures the heap held per open session: the fleet's lines are
// added with a huge timeout and no Flush, then the heap growth is divided by Open().
func BenchmarkOpenSessionBytes(b *testing.B) {
	lines := fleetLines(b)
	p, err := parse.New(parse.Options{DefaultYear: 2021})
	if err != nil {
		b.Fatal(err)
	}
	var ev event.Event
	src := &event.Source{}
	var perSession float64
	for i := 0; i < b.N; i++ {
		cfg := Defaults()
		cfg.IdleTimeout = 1000 * time.Hour
		cfg.Lateness = 999 * time.Hour
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		a, _ := New(cfg)
		for _, l := range lines {
			src.Host, src.File = l.host, l.file
			p.Parse(&ev, l.line, src)
			a.Add(&ev)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		perSession = float64(m1.HeapAlloc-m0.HeapAlloc) / float64(a.Open())
		b.ReportMetric(float64(a.Open()), "open-sessions")
		runtime.KeepAlive(a)
	}
	b.ReportMetric(perSession, "bytes/open-session")
}
