package ingest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// BenchmarkShipFile1M ships 1M ~200-byte lines from one file into the local broker with the
// real `mxtrail ship` process and reports its throughput, CPU per line (rusage) and peak RSS.
// Baseline, same run: a bare kafka-go Writer producing the same lines in 4 MiB
// WriteMessages calls (zstd, acks=all, no headers) from memory, measured on the benchmark
// process's own rusage -- what the shipper would cost if kafka.Writer were its only work.
// The shipper's figures are the child process's rusage and VmHWM, from its start (the topic
// already exists) until its checkpoint holds the whole file, so they include start-up,
// reading, checkpointing and the 100 ms checkpoint interval.
//
//	go test -run '^$' -bench ShipFile1M -benchtime 1x ./ingest/
func BenchmarkShipFile1M(b *testing.B) {
	for _, v := range []struct{ name, extra string }{
		{"defaults", ""}, // 2 MiB batches, 4 MiB in flight
		{"batch=1MiB", "  batch_bytes: 1MiB\n"},
		{"batch=4MiB", "  batch_bytes: 4MiB\n  max_in_flight: 8MiB\n"},
		{"inflight=8MiB", "  max_in_flight: 8MiB\n"},
	} {
		b.Run(v.name, func(b *testing.B) { benchShipFile(b, v.extra) })
	}
}

func benchShipFile(b *testing.B, extra string) {
	broker := testenv.KafkaBrokers(b)[0]
	const n = 1_000_000
	dir := b.TempDir()
	path := filepath.Join(dir, "maillog")
	f, _ := os.Create(path)
	var lines [][]byte
	for i := range n {
		l := line("mx1", i)
		lines = append(lines, []byte(l))
		f.WriteString(l + "\n")
	}
	f.Close()
	size := fileSize(path)
	b.SetBytes(size)
	b.ReportAllocs() // B/op and allocs/op are this process's (fixture and baseline), not the shipper's

	// Build the shipper before any clock starts: the first run used to include `go build`
	// (seconds on a loaded machine), which showed as a 2-4x slower first variant.
	shipperBinary(b)

	var shipSec, cpuSec float64
	var rssKB int64
	rates := make([]float64, 0, b.N)
	for i := 0; i < b.N; i++ {
		run := filepath.Join(dir, "run"+string(rune('a'+i%26)))
		os.MkdirAll(run, 0o755)
		topic := uniqueTopic(b)
		// The topic exists before the clock starts: its creation on the shared broker takes
		// 0.5-2 s, which would swamp a 1-3 s run.
		createTopic(b, broker, topic, 4)
		cfg := shipConfig{brokers: broker, topic: topic, dir: run, files: map[string]string{path: "mx1"}, extra: extra}.write(b)
		start := time.Now()
		cmd := startShipper(b, cfg)
		waitForOffset(b, filepath.Join(run, "positions.json"), path, size)
		sec := time.Since(start).Seconds()
		shipSec += sec
		rates = append(rates, n/sec)
		// Peak RSS from /proc (VmHWM belongs to the exec'd image); rusage's ru_maxrss of a
		// child also counts the forking test process, which holds the 1M lines.
		rssKB = max(rssKB, vmHWM(b, cmd.Process.Pid))
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpuSec += tv(ru.Utime) + tv(ru.Stime)
	}

	// Baseline: kafka-go alone, lines already in memory, 4 MiB WriteMessages calls.
	baseTopic := uniqueTopic(b)
	b.Cleanup(func() {
		c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 15 * time.Second}
		c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{baseTopic}})
	})
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: baseTopic, Balancer: kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, Compression: kafka.Zstd, BatchTimeout: time.Millisecond, BatchSize: 4096,
		BatchBytes: 1 << 20, AllowAutoTopicCreation: true}
	defer w.Close()
	msgs := make([]kafka.Message, 0, 20000)
	key := []byte("mx1")
	flush := func() {
		for {
			if err := w.WriteMessages(context.Background(), msgs...); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond) // auto-created topic not ready yet
		}
		msgs = msgs[:0]
	}
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	bstart := time.Now()
	bytes := 0
	for _, l := range lines {
		msgs = append(msgs, kafka.Message{Key: key, Value: l})
		if bytes += len(l); bytes >= 4<<20 {
			flush()
			bytes = 0
		}
	}
	flush()
	baseSec := time.Since(bstart).Seconds()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	baseCPU := tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)

	runs := float64(b.N)
	shipRate := n * runs / shipSec
	b.ReportMetric(shipRate, "lines/s")
	b.ReportMetric(slices.Min(rates), "min-lines/s") // the slowest run: the shared machine is noisy
	b.ReportMetric(cpuSec/runs/n*1e6, "cpu-µs/line")
	b.ReportMetric(float64(rssKB)/1024, "peak-RSS-MiB")
	b.ReportMetric(n/baseSec, "baseline-lines/s")
	b.ReportMetric(baseCPU/n*1e6, "baseline-cpu-µs/line")
	b.ReportMetric(shipRate/(n/baseSec), "rate/baseline")
	b.ReportMetric((cpuSec/runs/n)/(baseCPU/n), "cpu/baseline")
}

// createTopic creates topic with n partitions and waits until each has a leader.
func createTopic(b *testing.B, broker, topic string, n int) {
	c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 15 * time.Second}
	if _, err := c.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: n, ReplicationFactor: 1}}}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}}) })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		md, err := c.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == n {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				ready = ready && p.Leader.Host != ""
			}
			if ready {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("topic %s not ready", topic)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func vmHWM(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
