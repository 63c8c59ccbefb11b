package main

import (
	"context"
	"io"
	"log/slog"
	"runtime/metrics"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxtrail/mxtrail/internal/config"
	"github.com/mxtrail/mxtrail/internal/embedkafka"
	"github.com/mxtrail/mxtrail/internal/testenv"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
)

// gcSettings reads the collector's GOGC and soft memory limit.
func gcSettings() (pct, limit uint64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// TestNewSinkKeepsGCTuningIntegration: the sink's GOGC and memory limit (chsink.TuneGC) hold
// from newSink until closeSink, i.e. while Run consumes, and closeSink restores the previous
// ones. They were restored by a defer in newSink itself, so the sink ran at the defaults.
func TestNewSinkKeepsGCTuningIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	_, db := scratchDatabase(t, "mxtrail_gctune")
	t.Setenv("GOGC", "") // TuneGC leaves settings the environment makes alone
	t.Setenv("GOMEMLIMIT", "")
	cfg := config.Default()
	b, err := embedkafka.Start(embedkafka.Options{DataDir: t.TempDir(), Addr: "127.0.0.1:0", Partitions: 1,
		Topics: []string{cfg.Kafka.Topics.Sessions, cfg.Kafka.Topics.Events, cfg.Kafka.Topics.DeadLetter, cfg.Kafka.Topics.Alerts}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg.Kafka.Brokers = b.Addrs()
	cfg.ClickHouse.Addrs, cfg.ClickHouse.Database = addrs, db

	pct0, lim0 := gcSettings()
	if pct0 == chsink.GCPercent {
		t.Fatalf("GOGC is already the sink's %d before the sink starts", pct0)
	}
	_, closeSink, err := newSink(context.Background(), cfg, true, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	wantLim := chsink.MemoryLimitFor(int(cfg.Sink.BatchBytes), cfg.Sink.MaxInFlight)
	if pct, lim := gcSettings(); pct != chsink.GCPercent || lim != uint64(wantLim) {
		t.Errorf("after newSink: GOGC %d, memory limit %d; want %d and %d for the sink's run", pct, lim, chsink.GCPercent, wantLim)
	}
	closeSink()
	if pct, lim := gcSettings(); pct != pct0 || lim != lim0 {
		t.Errorf("after closeSink: GOGC %d, memory limit %d; want the previous %d and %d", pct, lim, pct0, lim0)
	}
}
