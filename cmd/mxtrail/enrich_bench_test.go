package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/session"
	"github.com/mxtrail/mxtrail/enrich/stream"
	"github.com/mxtrail/mxtrail/internal/testenv"
)

var benchSessions = flag.Int("stream.bench.sessions", 20000, "generated sessions for BenchmarkEnrichKafka (~7 lines each)")

// BenchmarkEnrichKafka: a pre-filled raw topic (generated fleet, 8 partitions) through one
// enricher until every line is consumed and every output acknowledged. Reported: lines/s, CPU
// µs per line of this process (getrusage), the broker's CPU µs per line (/proc of the pid in
// MXTRAIL_KAFKA_PIDFILE, default <state dir>/kafka/kafka.pid), peak RSS. Baselines measured in
// the same run: a plain consumer reading the same topic (no processing) and parse + assemble of
// the same lines in memory (no Kafka); the ratios say what the stream costs on top of each.
func BenchmarkEnrichKafka(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	f := newStreamFleet(b, *benchSessions)
	const parts = 8
	st := newStreamTopics(b, brokers, parts)
	produceAll(b, brokers, st.Raw, f.msgs)
	lines := len(f.msgs)
	var bytesIn int64
	for _, m := range f.msgs {
		bytesIn += int64(len(m.Value))
	}
	b.SetBytes(bytesIn)
	b.ReportAllocs()
	var consumeS, offlineS, streamS, cpuS, brokerS float64
	for i := 0; i < b.N; i++ {
		// baseline 1: plain consume of the same topic
		t0 := time.Now()
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: st.Raw, GroupID: st.group + "-plain-" + strconv.Itoa(i),
			StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second, HeartbeatInterval: 200 * time.Millisecond})
		for n := 0; n < lines; n++ {
			if _, err := r.FetchMessage(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
		consumeS += time.Since(t0).Seconds()

		// baseline 2: parse + assemble in memory
		t0 = time.Now()
		p, _ := parse.New(parse.Options{DefaultYear: 2021, Location: time.UTC})
		asm, _ := session.New(session.Defaults())
		var ev event.Event
		for j := range f.msgs {
			m := &f.msgs[j]
			var in stream.Input
			if err := stream.DecodeInput(&in, m.Key, nil, m.Value); err != nil {
				continue
			}
			p.Parse(&ev, in.Value, &event.Source{Host: in.Host, File: "x", Offset: int64(j)})
			asm.Add(&ev)
		}
		asm.Flush()
		offlineS += time.Since(t0).Seconds()

		// the enricher
		cfg := testEnricherConfig(brokers, st)
		cfg.GroupID = st.group + "-" + strconv.Itoa(i)
		reg := prometheus.NewRegistry()
		cfg.Metrics = stream.NewMetrics(reg)
		e, err := stream.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ru0, bc0 := rusageCPU(), brokerCPU()
		t0 = time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		for gathered(b, reg, "mxtrail_enrich_lines_in_total") < float64(lines) || e.Outstanding() > 0 {
			if time.Since(t0) > 5*time.Minute {
				b.Fatal("enricher did not finish in 5 min")
			}
			time.Sleep(2 * time.Millisecond)
		}
		streamS += time.Since(t0).Seconds()
		cpuS += rusageCPU() - ru0
		if bc0 >= 0 {
			brokerS += brokerCPU() - bc0
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N) * float64(lines)
	b.ReportMetric(n/streamS, "lines/s")
	b.ReportMetric(cpuS/n*1e6, "cpu-µs/line")
	b.ReportMetric(n/cpuS, "lines/cpu-s")
	b.ReportMetric(brokerS/n*1e6, "broker-cpu-µs/line")
	b.ReportMetric(n/consumeS, "plain-consume-lines/s")
	b.ReportMetric(n/offlineS, "offline-lines/s")
	b.ReportMetric(consumeS/streamS, "ratio-vs-plain-consume")
	b.ReportMetric(offlineS/streamS, "ratio-vs-offline")
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MiB")
}

func rusageCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// brokerCPU is the broker process's user+system CPU seconds, or -1 when unknown.
func brokerCPU() float64 {
	pf := os.Getenv("MXTRAIL_KAFKA_PIDFILE")
	if pf == "" {
		pf = filepath.Join(testenv.StateDir(), "kafka", "kafka.pid")
	}
	pid, err := os.ReadFile(pf)
	if err != nil {
		return -1
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
	if err != nil {
		return -1
	}
	s := string(stat)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fs[11], 64)
	st, _ := strconv.ParseFloat(fs[12], 64)
	return (ut + st) / 100 // USER_HZ
}
