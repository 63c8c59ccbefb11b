package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/session"
	"github.com/mxtrail/mxtrail/enrich/stream"
	"github.com/mxtrail/mxtrail/internal/kafkafetch"
	"github.com/mxtrail/mxtrail/internal/testenv"
)

var benchSessions = flag.Int("stream.bench.sessions", 75000, "generated sessions for BenchmarkEnrichKafka (~7 lines each; 75000 ≈ 525k lines)")

// BenchmarkEnrichKafka: a pre-filled raw topic (generated fleet, 8 partitions, >= 500k lines
// by default) through one `mxtrail enrich` child process, from its start until it has
// consumed every line, then SIGTERM: it drains (every output acknowledged by the broker) and
// commits before it exits. The child's getrusage gives its CPU and peak RSS, so the figures
// are the enricher process's alone (not this test's fixtures). Reported:
//
//	lines/s            lines / (exit − first line consumed), wall clock
//	cpu-µs/line        the child's user+system CPU (start-up included) per line
//	lines/cpu-s        the same as a rate: the target is >= 250k per core
//	steady-cpu-µs/line the child's CPU from its first consumed line to its exit (drain and
//	steady-lines/cpu-s commit included, start-up excluded), per line and as a rate
//	peak-rss-MiB       the child's maximum RSS (VmHWM of /proc/<pid>/status, read while it
//	                   runs; getrusage's ru_maxrss of a child counts the parent's RSS at
//	                   the fork, i.e. this test's fixtures)
//	broker-cpu-µs/line the broker's CPU over the same interval (/proc/<pid>/stat)
//	sessions-out       records on the sessions topic after the run
//
// Baselines from the same run: the same child with GOGC=100 (what the command's GC setting
// buys), a plain kafka-go Reader consumer group and an internal/kafkafetch loop draining the
// same topic in this process (CPU per line, no processing), and decode + parse + assemble of
// the same records in memory (no Kafka). Ratios are enricher CPU over each baseline's CPU.
func BenchmarkEnrichKafka(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	bin := buildMxtrail(b)
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
	var sum struct {
		wall, cpu, steady, broker, rss float64
		cpu100, rss100                 float64
		readerCPU, fetchCPU, offline   float64
		sessions                       int64
	}
	for i := 0; i < b.N; i++ {
		// baseline: kafka-go Reader consumer group, no processing
		c0 := rusageCPU()
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: st.Raw, GroupID: fmt.Sprintf("%s-plain-%d", st.group, i),
			StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second, HeartbeatInterval: 200 * time.Millisecond})
		for n := 0; n < lines; n++ {
			if _, err := r.FetchMessage(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
		sum.readerCPU += rusageCPU() - c0

		// baseline: kafkafetch, one partition after the other, no processing
		c0 = rusageCPU()
		n := 0
		for p := 0; p < parts; p++ {
			ft := kafkafetch.New(kafkafetch.Config{Brokers: brokers, Topic: st.Raw, Partition: p, MaxWait: 100 * time.Millisecond})
			var buf []kafka.Message
			next := int64(kafka.FirstOffset)
			for {
				var res kafkafetch.Result
				var err error
				buf, res, err = ft.Fetch(context.Background(), next, buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				n += len(buf)
				next = res.Next
				if len(buf) == 0 && next >= res.HighWaterMark {
					break
				}
			}
			ft.Close()
		}
		if n != lines {
			b.Fatalf("kafkafetch read %d records, want %d", n, lines)
		}
		sum.fetchCPU += rusageCPU() - c0

		// baseline: decode + parse + assemble in memory
		c0 = rusageCPU()
		p, _ := parse.New(parse.Options{DefaultYear: 2021, Location: time.UTC})
		asm, _ := session.New(session.Defaults())
		var ev event.Event
		var d stream.Decoder
		var in stream.Input
		for j := range f.msgs {
			m := &f.msgs[j]
			if err := d.Decode(&in, m.Key, nil, m.Value); err != nil {
				continue
			}
			p.Parse(&ev, in.Value, &event.Source{Host: in.Host, File: "x", Offset: int64(j)})
			asm.Add(&ev)
		}
		asm.Flush()
		sum.offline += rusageCPU() - c0

		// the enricher, and the same with the Go default GC
		res := runEnrichChild(b, bin, brokers, st, fmt.Sprintf("%s-%d", st.group, i), lines, "")
		sum.wall += res.wall
		sum.cpu += res.cpu
		sum.steady += res.cpu - res.startCPU
		sum.rss = max(sum.rss, res.rss)
		sum.broker += res.broker
		sum.sessions = countTopic(b, brokers, st.Sessions, parts)
		res = runEnrichChild(b, bin, brokers, st, fmt.Sprintf("%s-gc100-%d", st.group, i), lines, "GOGC=100")
		sum.cpu100 += res.cpu
		sum.rss100 = max(sum.rss100, res.rss)
	}
	n := float64(b.N) * float64(lines)
	b.ReportMetric(n/sum.wall, "lines/s")
	b.ReportMetric(sum.cpu/n*1e6, "cpu-µs/line")
	b.ReportMetric(n/sum.cpu, "lines/cpu-s")
	b.ReportMetric(sum.steady/n*1e6, "steady-cpu-µs/line")
	b.ReportMetric(n/sum.steady, "steady-lines/cpu-s")
	b.ReportMetric(sum.rss, "peak-rss-MiB")
	b.ReportMetric(sum.broker/n*1e6, "broker-cpu-µs/line")
	b.ReportMetric(float64(sum.sessions)/float64(b.N), "sessions-out")
	b.ReportMetric(sum.cpu100/n*1e6, "gogc100-cpu-µs/line")
	b.ReportMetric(sum.rss100, "gogc100-peak-rss-MiB")
	b.ReportMetric(sum.readerCPU/n*1e6, "reader-only-cpu-µs/line")
	b.ReportMetric(sum.fetchCPU/n*1e6, "kafkafetch-only-cpu-µs/line")
	b.ReportMetric(sum.offline/n*1e6, "offline-cpu-µs/line")
	b.ReportMetric(sum.cpu/sum.readerCPU, "ratio-cpu-vs-reader-only")
	b.ReportMetric(sum.cpu/sum.offline, "ratio-cpu-vs-offline")
}

// childRun: cpu is the child's whole CPU (getrusage at exit), startCPU its CPU when the
// first line was seen consumed (/proc, 10 ms ticks): start-up, grok compilation, group join.
type childRun struct{ wall, cpu, startCPU, rss, broker float64 }

// runEnrichChild runs `mxtrail enrich` in group until it consumed lines, stops it with
// SIGTERM (drain and commit) and returns its figures.
func runEnrichChild(b *testing.B, bin string, brokers []string, st streamTopics, group string, lines int, env string) childRun {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	st.group = group
	cfg := enrichConfigFile(b, brokers, st)
	y, _ := os.ReadFile(cfg)
	y = []byte(strings.Replace(string(y), `listen: ""`, `listen: "`+addr+`"`, 1))
	if err := os.WriteFile(cfg, y, 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{"enrich", "--config", cfg}
	if p := os.Getenv("MXTRAIL_ENRICH_BENCH_CPUPROFILE"); p != "" && env == "" {
		args = append(args, "--cpuprofile", p) // the enricher's own run, not the GOGC=100 baseline
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOGC=") // the brokers come from the environment or the file
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	bc0 := brokerCPU()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	var first time.Time
	var hwm, cpuFirst float64
	deadline := time.Now().Add(5 * time.Minute)
	for {
		hwm = max(hwm, vmHWM(cmd.Process.Pid))
		got := scrapeCounter(addr, "mxtrail_enrich_lines_in_total")
		if got > 0 && first.IsZero() {
			first = time.Now()
			cpuFirst = procCPU(cmd.Process.Pid)
		}
		if got >= float64(lines) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("enricher consumed %.0f of %d lines in 5 min: %s", got, lines, errb.String())
		}
		time.Sleep(100 * time.Millisecond) // each scrape costs the child CPU too
	}
	hwm = max(hwm, vmHWM(cmd.Process.Pid))
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("mxtrail enrich: %v: %s", err, errb.String())
	}
	res := childRun{wall: time.Since(first).Seconds()}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	res.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	res.startCPU = cpuFirst
	res.rss = hwm
	if bc0 >= 0 {
		res.broker = brokerCPU() - bc0
	}
	return res
}

// vmHWM returns the peak RSS in MiB of a running process (0 when unknown).
func vmHWM(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// scrapeCounter reads one unlabelled sample from a /metrics endpoint (0 when unreachable).
func scrapeCounter(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

func rusageCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// brokerCPU is the broker process's user+system CPU seconds, or -1 when unknown.
func brokerCPU() float64 {
	pid, ok := testenv.KafkaBrokerPID()
	if !ok {
		return -1
	}
	return procCPU(pid)
}

// procCPU returns the user+system CPU seconds of a process (-1 when unknown).
func procCPU(pid int) float64 {
	cpu, ok := testenv.PIDCPU(pid)
	if !ok {
		return -1
	}
	return cpu.Seconds()
}
