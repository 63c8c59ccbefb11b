package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/alert"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/stream"
	"github.com/mxtrail/mxtrail/internal/config"
	"github.com/mxtrail/mxtrail/internal/obs"
)

func init() {
	register("enrich", "parse, join sessions and label outcomes on the stream", runEnrich)
}

// runEnrich consumes kafka.topics.raw in the consumer group enrich.stream.group_id and
// produces sessions, events and dead letters until SIGINT/SIGTERM, then drains and commits.
func runEnrich(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("enrich", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	memProfile := fs.String("memprofile", "", "write a heap profile (allocations and live objects at the last GC) to this file on exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail enrich: %v\n", err)
		return 2
	}
	defer stopProfile()
	defer heapProfileAtExit(*memProfile, stderr)()
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail enrich: %v\n", err)
		return 2
	}
	if len(cfg.Kafka.Brokers) == 0 {
		fmt.Fprintln(stderr, "mxtrail enrich: kafka.brokers (or MXTRAIL_KAFKA_BROKERS) is required")
		return 2
	}
	log, err := obs.NewLogger(stderr, cfg.HTTP.LogFormat, cfg.HTTP.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail enrich: %v\n", err)
		return 2
	}
	tr, err := kafkaTransport(cfg.Kafka)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail enrich: %v\n", err)
		return 2
	}
	enrichGC()
	if cfg.Enrich.Alerts.Enabled { // rare records: fail now, not at the first critical line
		c := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Transport: tr, Timeout: 15 * time.Second}
		if err := ensureTopic(ctx, c, cfg.Kafka.Topics.Alerts); err != nil {
			fmt.Fprintf(stderr, "mxtrail enrich: alerts topic %q does not exist and could not be created (create it, or set enrich.alerts.enabled: false): %v\n", cfg.Kafka.Topics.Alerts, err)
			return 1
		}
	}
	srv := obs.NewServer(log)
	e, err := newEnricher(cfg, tr, log, srv.Registry, nil)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail enrich: %v\n", err)
		return 2
	}
	sc := cfg.Enrich.Stream
	srv.AddCheck("kafka", e.Ready)
	log.Info("enricher starting", "brokers", cfg.Kafka.Brokers, "group", sc.GroupID, "topic", cfg.Kafka.Topics.Raw)
	// the drain bound covers the partitions' own DrainTimeout plus the final commits
	if err := obs.RunService(ctx, log, srv, cfg.HTTP.Listen, sc.DrainTimeout+10*time.Second, e); err != nil {
		log.Error("enricher stopped", "err", err)
		return 1
	}
	return 0
}

// newEnricher builds the streaming enricher from the configuration, its metrics on reg
// (shared by `mxtrail enrich` and `mxtrail run`). clock is the idle advance's wall clock;
// nil means enrich.stream.idle_clock_speed times real time.
func newEnricher(cfg config.Config, tr *kafka.Transport, log *slog.Logger, reg prometheus.Registerer, clock func() time.Time) (*stream.Enricher, error) {
	sc := cfg.Enrich.Stream
	var codec kafka.Compression
	if err := codec.UnmarshalText([]byte(sc.Compression)); err != nil {
		return nil, fmt.Errorf("enrich.stream.compression %q: %w", sc.Compression, err)
	}
	if clock == nil {
		clock = speedClock(sc.IdleClockSpeed)
	}
	year := cfg.Enrich.Parser.DefaultYear
	if year == 0 {
		year = time.Now().Year()
	}
	return stream.New(stream.Config{
		Brokers: cfg.Kafka.Brokers,
		GroupID: sc.GroupID,
		Topics: stream.Topics{Raw: cfg.Kafka.Topics.Raw, Sessions: cfg.Kafka.Topics.Sessions,
			Events: cfg.Kafka.Topics.Events, DeadLetter: cfg.Kafka.Topics.DeadLetter, Alerts: cfg.Kafka.Topics.Alerts},
		Dialer:      &kafka.Dialer{ClientID: cfg.Kafka.ClientID, Timeout: 10 * time.Second, DualStack: true, TLS: tr.TLS, SASLMechanism: tr.SASL},
		Transport:   tr,
		Compression: codec,
		Parser: parse.Options{PatternDir: cfg.Enrich.Parser.PatternDir, IsodeHeader: cfg.Enrich.Parser.IsodeHeader,
			DefaultYear: year, Location: cfg.Enrich.Parser.Location()},
		Session:            cfg.Enrich.Sessions.Config(),
		Lateness:           sc.Lateness,
		IdleAdvance:        sc.IdleAdvance,
		CommitInterval:     sc.CommitInterval,
		DrainTimeout:       sc.DrainTimeout,
		MaxLine:            int(sc.MaxLine),
		MaxDeadLetterBytes: int(sc.MaxDeadLetterBytes),
		MaxUnackedBytes:    int64(sc.MaxUnackedBytes),
		HeartbeatInterval:  sc.HeartbeatInterval,
		SessionTimeout:     sc.SessionTimeout,
		Clock:              clock,
		Alerts:             cfg.Enrich.AlertConfig(),
		AlertMetrics:       alert.NewMetrics(reg, cfg.Enrich.Alerts.HostLabelLimit),
		Logger:             log,
		Metrics:            stream.NewMetrics(reg),
	})
}

// enrichGCPercent is the GOGC of `mxtrail enrich` when the environment sets none. The
// enricher's live heap is small (open sessions, buffers) and every line allocates a little
// (kafka-go copies each record), so at the default 100 the collector ran every few
// milliseconds and took about a fifth of the CPU (profile of BenchmarkEnrichKafka); 400
// trades heap headroom for that.
const enrichGCPercent = 400

// enrichMemoryLimit is the soft memory limit set with enrichGCPercent when GOMEMLIMIT is
// unset. On a backlog the live heap grows with the partitions (each holds two fetches, and a
// fetch is at least one of the shipper's record batches, decompressed) and the outputs
// awaiting acknowledgement: `mxtrail bench` (2M lines, 17 partitions) peaked at 846 MiB RSS
// with GOGC=100 and 1.6 GiB with 400 alone, at the same CPU per line. The limit makes the
// collector work harder only when the heap nears it.
const enrichMemoryLimit = 768 << 20

func enrichGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(enrichGCPercent)
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(enrichMemoryLimit)
		}
	}
}

// speedClock is time.Now, or a clock running speed times faster from now on.
func speedClock(speed float64) func() time.Time {
	if speed <= 1 {
		return time.Now
	}
	t0 := time.Now()
	return func() time.Time { return t0.Add(time.Duration(float64(time.Since(t0)) * speed)) }
}
