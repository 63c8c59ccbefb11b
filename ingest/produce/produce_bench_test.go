package produce

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// BenchmarkProducerVsWriter produces 200k ~200-byte records of 16 hosts (4 headers each, as
// the shipper sends them) into a 12-partition topic of the real broker, zstd, acks=all,
// through the Producer, then -- same run, same records, same topic layout -- through a bare
// kafka.Writer with the same partitioner (the baseline). It reports records/s and the CPU µs
// per record of this process (rusage; the broker's CPU is not counted) for both, and the
// ratios. It measures the many-key case the 1M-line file benchmark (one host) does not: a
// batch's partitions in flight concurrently.
//
//	go test -run '^$' -bench ProducerVsWriter -benchtime 3x ./ingest/produce/
func BenchmarkProducerVsWriter(b *testing.B) {
	broker := testenv.KafkaBrokers(b)[0]
	const n, hosts = 200_000, 16
	hdrs := make([][]kafka.Header, hosts)
	keys := make([]string, hosts)
	for h := range hosts {
		keys[h] = fmt.Sprintf("mx%02d.example.net", h)
		hdrs[h] = []kafka.Header{
			{Key: "host", Value: []byte(keys[h])}, {Key: "source", Value: []byte("file")},
			{Key: "dialect", Value: []byte("spamdyke")}, {Key: "ingest_time", Value: []byte("2026-11-23T16:04:05.123456789Z")},
		}
	}
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = realisticLine(i)
	}
	cpu := func() float64 {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	}
	b.ReportAllocs()
	var pSec, pCPU, wSec, wCPU float64
	for i := 0; i < b.N; i++ {
		topic := createBenchTopic(b, broker, 12)
		p, err := New(Config{Brokers: []string{broker}, Topic: topic, Compression: "zstd",
			BatchBytes: 2 << 20, MaxInFlight: 4 << 20, Linger: 50 * time.Millisecond, MaxMessageBytes: 1 << 20,
			BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, WriteTimeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		c0, t0 := cpu(), time.Now()
		for j, l := range lines {
			if err := p.Send(context.Background(), InputFile, keys[j%hosts], hdrs[j%hosts], l, nil, 0); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		pSec, pCPU = pSec+time.Since(t0).Seconds(), pCPU+cpu()-c0

		topic = createBenchTopic(b, broker, 12)
		w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll, Compression: kafka.Zstd, BatchTimeout: time.Millisecond,
			BatchSize: 10000, BatchBytes: 1 << 20}
		msgs := make([]kafka.Message, 0, 10000)
		c0, t0 = cpu(), time.Now()
		for j, l := range lines {
			msgs = append(msgs, kafka.Message{Key: []byte(keys[j%hosts]), Value: l, Headers: hdrs[j%hosts]})
			if len(msgs) == cap(msgs) || j == len(lines)-1 {
				if err := w.WriteMessages(context.Background(), msgs...); err != nil {
					b.Fatal(err)
				}
				msgs = msgs[:0]
			}
		}
		w.Close()
		wSec, wCPU = wSec+time.Since(t0).Seconds(), wCPU+cpu()-c0
	}
	recs := float64(n * b.N)
	b.ReportMetric(recs/pSec, "records/s")
	b.ReportMetric(pCPU/recs*1e6, "cpu-µs/record")
	b.ReportMetric(recs/wSec, "baseline-records/s")
	b.ReportMetric(wCPU/recs*1e6, "baseline-cpu-µs/record")
	b.ReportMetric(wSec/pSec, "rate/baseline")
	b.ReportMetric(pCPU/wCPU, "cpu/baseline")
}

func createBenchTopic(b *testing.B, broker string, partitions int) string {
	b.Helper()
	topic := fmt.Sprintf("mxtrail.bench.produce.%d", time.Now().UnixNano())
	c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 15 * time.Second}
	if _, err := c.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}}) })
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		md, err := c.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				ready = ready && p.Leader.Host != ""
			}
			if ready && warm(c, topic, partitions) {
				return topic
			}
		}
	}
	b.Fatalf("topic %s not ready", topic)
	return ""
}

// warm writes one record to each partition: right after creation the broker answers
// NOT_LEADER for a moment although metadata already names the leader, and the retries that
// causes (100 ms and more) would land inside the measured runs.
func warm(c *kafka.Client, topic string, partitions int) bool {
	for p := range partitions {
		res, err := c.Produce(context.Background(), &kafka.ProduceRequest{Topic: topic, Partition: p, RequiredAcks: kafka.RequireAll,
			Records: kafka.NewRecordReader(kafka.Record{Value: kafka.NewBytes([]byte("warm-up"))})})
		if err != nil || res.Error != nil {
			return false
		}
	}
	return true
}
