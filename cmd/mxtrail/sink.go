package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/config"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
	"github.com/mxtrail/mxtrail/sink/schema"
)

func init() {
	register("sink", "batch-write sessions and events into ClickHouse", runSink)
}

func runSink(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (default: defaults and MXTRAIL_* environment)")
	migrate := fs.Bool("migrate", false, "run the schema migrations before consuming")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile (allocations and live objects at the last GC) to this file on exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail sink: %v\n", err)
		return 2
	}
	defer stopProfile()
	defer heapProfileAtExit(*memProfile, stderr)()
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail sink: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := sinkMain(ctx, cfg, *migrate, log); err != nil {
		log.Error("sink stopped", "err", err)
		return 1
	}
	return 0
}

func sinkMain(ctx context.Context, cfg config.Config, migrate bool, log *slog.Logger) error {
	if len(cfg.Kafka.Brokers) == 0 {
		return errors.New("kafka.brokers (or MXTRAIL_KAFKA_BROKERS) is required")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s, closeSink, err := newSink(ctx, cfg, migrate, log, reg)
	if err != nil {
		return err
	}
	defer closeSink()
	if cfg.HTTP.Listen != "" {
		srv := &http.Server{Addr: cfg.HTTP.Listen, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener", "err", err)
			}
		}()
		defer srv.Close()
	}
	return s.Run(ctx)
}

// newSink connects to ClickHouse, migrates the schema when asked, checks it, and builds the
// sink with its consumer-group source and its metrics on reg (shared by `mxtrail sink` and
// `mxtrail run`). closeSink leaves the group and closes the connection, after Run returned.
func newSink(ctx context.Context, cfg config.Config, migrate bool, log *slog.Logger, reg prometheus.Registerer) (s *chsink.Sink, closeSink func(), err error) {
	conn, err := chsink.Open(ctx, connConfig(cfg))
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	sv, err := schema.DetectServer(conn)
	if err != nil {
		return nil, nil, err
	}
	if migrate {
		if _, err := schema.Migrate(ctx, conn, schemaOptions(cfg)); err != nil {
			return nil, nil, err
		}
	}
	if _, err := schema.Check(ctx, conn, cfg.ClickHouse.Database); err != nil {
		return nil, nil, err
	}
	m := chsink.NewMetrics(reg)
	t := cfg.Kafka.Topics
	tr, err := kafkaTransport(cfg.Kafka)
	if err != nil {
		return nil, nil, err
	}
	src, err := chsink.NewGroupSource(chsink.GroupConfig{
		Brokers:           cfg.Kafka.Brokers,
		GroupID:           cfg.Sink.GroupID,
		Topics:            sinkTopics(ctx, cfg.Kafka, log),
		Dialer:            &kafka.Dialer{ClientID: cfg.Kafka.ClientID, Timeout: 10 * time.Second, DualStack: true, TLS: tr.TLS, SASLMechanism: tr.SASL},
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: time.Second,
		// Pick up partitions added later (and topics created after the group joined).
		WatchPartitionChanges: true,
		BufferPoolBytes:       chsink.FetchPoolBytes(int(cfg.Sink.BatchBytes), cfg.Sink.MaxInFlight),
	}, m, log)
	if err != nil {
		return nil, nil, err
	}
	sc := cfg.Sink
	// GOGC=400 and a soft memory limit sized from the batch bounds, unless the environment
	// sets GOGC / GOMEMLIMIT, for as long as the sink runs: closeSink restores them (a
	// deferred restore here undid them before Run started).
	restoreGC := chsink.TuneGC(chsink.MemoryLimitFor(int(sc.BatchBytes), sc.MaxInFlight))
	defer func() {
		if err != nil {
			restoreGC()
		}
	}()
	feats := schema.FeaturesFor(sv)
	w := chsink.NewWriter(conn, cfg.ClickHouse.Database, feats, m, sc.RetryInitial, sc.RetryMax)
	s, err = chsink.New(chsink.Config{
		Database: cfg.ClickHouse.Database,
		Topics: map[string]chsink.Kind{t.Sessions: chsink.KindSessions, t.Events: chsink.KindEvents, t.DeadLetter: chsink.KindDeadLetter,
			t.Alerts: chsink.KindAlerts},
		BatchRows:    sc.BatchRows,
		BatchBytes:   int(sc.BatchBytes),
		BatchAge:     sc.BatchAge,
		MaxInFlight:  sc.MaxInFlight,
		RetryInitial: sc.RetryInitial,
		RetryMax:     sc.RetryMax,
		MaxField:     256 << 10,
	}, src, w, m, log)
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	log.Info("sink running", "server", sv.String(), "database", cfg.ClickHouse.Database, "group", sc.GroupID)
	return s, func() { src.Close(); conn.Close(); restoreGC() }, nil
}
