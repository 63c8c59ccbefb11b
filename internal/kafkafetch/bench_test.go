package kafkafetch

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// BenchmarkFetchIntegration drains a 200k-record topic shaped like the raw topic (a ~150-byte
// log line, the host as key, two shipper headers; 1 MiB batches) from the real broker,
// through the fetch-v4 decoder and, as the baseline in the same run, through kafka-go's
// Conn.ReadBatch (what the Fetcher did before and still does for old brokers). Reports CPU ns
// per record from rusage (this process only: the broker's CPU is not counted).
func BenchmarkFetchIntegration(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	const n = 200_000
	line := "Nov 23 18:39:46 mx1 smtpf[1234]: 0123456789ab connect from client.example.net [192.0.2.10] " + strings.Repeat("x", 50)
	recs := make([]testRecord, n)
	for i := range recs {
		h := []byte("mx" + strconv.Itoa(i%7) + ".example.net")
		recs[i] = testRecord{key: h, value: []byte(line + strconv.Itoa(i)),
			headers: []kafka.Header{{Key: "mxtrail-host", Value: h}, {Key: "mxtrail-src", Value: []byte("/var/log/maillog")}}}
	}
	tp := topic(b, brokers, 0)
	fill(b, brokers, nil, tp, 0, recs)
	recs = nil
	var fastNS, slowNS float64
	for _, c := range []struct {
		name string
		raw  bool
		out  *float64
	}{{"fetch_v4_decoder", true, &fastNS}, {"baseline_kafka_go_readbatch", false, &slowNS}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				f := New(Config{Brokers: brokers, Topic: tp})
				if err := f.dial(context.Background()); err != nil {
					b.Fatal(err)
				}
				if !c.raw {
					f.raw = nil
				}
				var buf []kafka.Message
				next, got := int64(0), 0
				c0 := testenv.ProcessCPU()
				for got < n {
					var res Result
					var err error
					buf, res, err = f.Fetch(context.Background(), next, buf[:0])
					if err != nil {
						b.Fatal(err)
					}
					got += len(buf)
					next = res.Next
				}
				*c.out = float64((testenv.ProcessCPU() - c0).Nanoseconds()) / n
				b.ReportMetric(*c.out, "cpu-ns/record")
				f.Close()
			}
		})
	}
	if fastNS > 0 && slowNS > 0 {
		b.Logf("fetch-v4 decoder CPU / kafka-go ReadBatch CPU: %.2f", fastNS/slowNS)
	}
}
