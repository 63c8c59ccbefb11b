package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mxtrail/mxtrail/ingest/produce"
	"github.com/mxtrail/mxtrail/internal/config"
	"github.com/mxtrail/mxtrail/internal/testenv"
)

type countingAcker struct{ n atomic.Int64 }

func (c *countingAcker) Acked(uint64) { c.n.Add(1) }

// TestShipTLSAndSASL ships through the transport the command builds from the kafka.tls and
// kafka.sasl config, against franz-go's kfake broker with TLS and SASL enforced (the local
// stack's broker has neither listener, and deploy/local is not ours to change): each
// mechanism with the right password gets every line acknowledged; a wrong password or a
// CA that does not sign the broker's certificate gets none, and /readyz reports it.
func TestShipTLSAndSASL(t *testing.T) {
	dir := t.TempDir()
	srvTLS, _, caFile := testenv.SelfSignedTLS(t, dir)
	const topic = "mxtrail.raw.auth"
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.TLS(srvTLS),
		kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "shipper", "plain-secret"),
		kfake.Superuser("SCRAM-SHA-256", "shipper256", "scram-secret-256"),
		kfake.Superuser("SCRAM-SHA-512", "shipper512", "scram-secret-512"),
		kfake.SeedTopics(3, topic),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]

	_, _, otherCA := testenv.SelfSignedTLS(t, t.TempDir())
	for _, c := range []struct {
		name, mech, user, pass, ca string
		ok                         bool
	}{
		{"PLAIN", "PLAIN", "shipper", "plain-secret", caFile, true},
		{"SCRAM-SHA-256", "SCRAM-SHA-256", "shipper256", "scram-secret-256", caFile, true},
		{"SCRAM-SHA-512", "SCRAM-SHA-512", "shipper512", "scram-secret-512", caFile, true},
		{"wrong password", "SCRAM-SHA-512", "shipper512", "guess", caFile, false},
		{"untrusted certificate", "PLAIN", "shipper", "plain-secret", otherCA, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, err := kafkaTransport(config.Kafka{
				ClientID: "mxtrail-test",
				TLS:      config.TLS{Enabled: true, CAFile: c.ca, ServerName: "kafka.test"},
				SASL:     config.SASL{Mechanism: c.mech, Username: c.user, Password: c.pass},
			})
			if err != nil {
				t.Fatal(err)
			}
			p, err := produce.New(produce.Config{
				Brokers: []string{addr}, Topic: topic, Transport: tr, Compression: "zstd",
				BatchBytes: 4 << 10, MaxInFlight: 64 << 10, Linger: 5 * time.Millisecond,
				BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond, WriteTimeout: 2 * time.Second,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			acks := &countingAcker{}
			const n = 300
			hdr := []kafka.Header{{Key: "host", Value: []byte("mx1")}}
			for i := range n {
				if err := p.Send(context.Background(), produce.InputFile, fmt.Sprintf("mx%d", i%5), hdr, fmt.Appendf(nil, "line %d", i), acks, uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
			wait := 10 * time.Second
			if !c.ok {
				wait = 1500 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			closeErr := p.Close(ctx)
			got := acks.n.Load()
			if c.ok {
				if closeErr != nil || got != n {
					t.Fatalf("close: %v; %d of %d lines acknowledged", closeErr, got, n)
				}
				return
			}
			if got != 0 || closeErr == nil {
				t.Fatalf("rejected credentials: %d lines acknowledged, close %v", got, closeErr)
			}
			if err := p.Ready(); err == nil {
				t.Fatal("Ready is nil although every write failed")
			} else {
				t.Logf("readyz: %v", err)
			}
		})
	}
	// What the accepted runs wrote is in the topic (read over the same TLS+SASL transport).
	tr, err := kafkaTransport(config.Kafka{TLS: config.TLS{Enabled: true, CAFile: caFile, ServerName: "kafka.test"},
		SASL: config.SASL{Mechanism: "PLAIN", Username: "shipper", Password: "plain-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	client := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr, Timeout: 5 * time.Second}
	res, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2)}}})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			t.Fatal(po.Error)
		}
		total += po.LastOffset
	}
	if total != 3*300 {
		t.Fatalf("topic holds %d records, want %d", total, 3*300)
	}
}
