package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/mxtrail/mxtrail/ingest/checkpoint"
	"github.com/mxtrail/mxtrail/ingest/produce"
	"github.com/mxtrail/mxtrail/ingest/stdin"
	"github.com/mxtrail/mxtrail/ingest/syslog"
	"github.com/mxtrail/mxtrail/ingest/tail"
	"github.com/mxtrail/mxtrail/internal/config"
	"github.com/mxtrail/mxtrail/internal/obs"
)

func init() {
	register("ship", "tail log files / receive syslog into Kafka", runShip)
}

func runShip(ctx context.Context, args []string, in io.Reader, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("ship", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	useStdin := fs.Bool("stdin", false, "ship lines from standard input (needs --host), then exit")
	host := fs.String("host", "", "host name for stdin lines (and default for files)")
	dialect := fs.String("dialect", "", "dialect hint for stdin lines")
	progress := fs.Bool("progress", false, "print a progress line on stderr (default: when stderr is a terminal)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	memProfile := fs.String("memprofile", "", "write a heap profile (allocations and peak-time live objects) to this file on exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail ship: %v\n", err)
		return 2
	}
	defer stopProfile()
	defer heapProfileAtExit(*memProfile, stderr)()
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail ship: %v\n", err)
		return 2
	}
	log, err := obs.NewLogger(stderr, cfg.HTTP.LogFormat, cfg.HTTP.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail ship: %v\n", err)
		return 2
	}
	sc := cfg.Ship
	if *useStdin && *host == "" {
		fmt.Fprintln(stderr, "mxtrail ship: --stdin needs --host")
		return 2
	}
	if len(cfg.Kafka.Brokers) == 0 {
		fmt.Fprintln(stderr, "mxtrail ship: kafka.brokers (or MXTRAIL_KAFKA_BROKERS) is required")
		return 2
	}
	if !*useStdin && len(sc.Files) == 0 && sc.Syslog.UDP == "" && sc.Syslog.TCP == "" {
		fmt.Fprintln(stderr, "mxtrail ship: nothing to ship: configure ship.files or ship.syslog, or use --stdin")
		return 2
	}
	defHost := *host
	if defHost == "" {
		defHost = sc.Host
	}
	if defHost == "" {
		if defHost, err = os.Hostname(); err != nil || defHost == "" {
			fmt.Fprintf(stderr, "mxtrail ship: no host name (set ship.host): %v\n", err)
			return 2
		}
	}

	srv := obs.NewServer(log)
	reg := srv.Registry
	pm := produce.NewMetrics(reg)

	transport, err := kafkaTransport(cfg.Kafka)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail ship: %v\n", err)
		return 2
	}
	if sc.CreateTopic {
		if err := createTopic(ctx, cfg.Kafka, transport, sc); err != nil {
			log.Error("create topic", "topic", cfg.Kafka.Topics.Raw, "err", err)
			return 1
		}
	}
	prod, err := newProducer(cfg, transport, log, pm)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail ship: %v\n", err)
		return 2
	}
	srv.AddCheck("kafka", func(context.Context) error { return prod.Ready() })
	if err := srv.Start(cfg.HTTP.Listen); err != nil {
		log.Warn("observability listener disabled", "err", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()

	drain := func() int {
		dctx, cancel := context.WithTimeout(context.Background(), sc.ShutdownTimeout)
		defer cancel()
		if err := prod.Close(dctx); err != nil {
			log.Warn("shutdown: lines not acknowledged by Kafka will be read again on restart", "err", err)
			return 1
		}
		return 0
	}

	if *useStdin {
		p := &stdin.Progress{Start: time.Now()}
		stop := startProgress(stderr, *progress, p)
		err := stdin.Run(ctx, in, *host, *dialect, int(sc.MaxLine), prod, pm, p)
		code := drain()
		stop()
		if err != nil && ctx.Err() == nil {
			log.Error("stdin", "err", err)
			return 1
		}
		if ctx.Err() != nil {
			return 1
		}
		return code
	}

	if dir := filepath.Dir(sc.CheckpointFile); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			log.Error("checkpoint directory", "err", err)
			return 1
		}
	}
	store, err := checkpoint.Open(sc.CheckpointFile)
	if err != nil {
		log.Error("open checkpoint", "err", err)
		return 1
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxtrail_ship_checkpoint_age_seconds", Help: "Seconds since the positions were last written.",
	}, func() float64 { return store.Age().Seconds() }))

	inCtx, stopInputs := context.WithCancel(ctx)
	defer stopInputs()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if len(sc.Files) > 0 {
		var inputs []tail.Input
		for _, f := range sc.Files {
			h := f.Host
			if h == "" {
				h = defHost
			}
			inputs = append(inputs, tail.Input{Glob: f.Path, Dialect: f.Dialect, Host: h, TZ: f.TZ, StartAtEnd: f.Start == "end"})
		}
		tl, err := tail.New(tail.Config{
			Inputs: inputs, Poll: sc.Poll, MaxLine: int(sc.MaxLine), FingerprintSize: sc.FingerprintBytes,
			RotateGrace: sc.RotateGrace, ReadBuffer: 256 << 10, Logger: log,
			Metrics: tail.NewMetrics(reg), Counters: pm,
		}, prod, store)
		if err != nil {
			fmt.Fprintf(stderr, "mxtrail ship: %v\n", err)
			return 2
		}
		wg.Add(1)
		go func() { defer wg.Done(); errc <- tl.Run(inCtx) }()
	}
	if sc.Syslog.UDP != "" || sc.Syslog.TCP != "" {
		rcv, err := syslog.Listen(syslog.Config{
			UDP: sc.Syslog.UDP, TCP: sc.Syslog.TCP, Host: defHost, Dialect: sc.Syslog.Dialect,
			MaxLine: int(sc.MaxLine), IdleTimeout: sc.Syslog.IdleTimeout, Logger: log,
			Counters: pm, Metrics: syslog.NewMetrics(reg),
		}, prod)
		if err != nil {
			log.Error("syslog", "err", err)
			return 1
		}
		log.Info("syslog receiver listening", "udp", sc.Syslog.UDP, "tcp", sc.Syslog.TCP)
		wg.Add(1)
		go func() { defer wg.Done(); errc <- rcv.Run(inCtx) }()
	}

	// Positions reach the disk periodically; each flush holds only acknowledged offsets.
	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		t := time.NewTicker(sc.CheckpointInterval)
		defer t.Stop()
		for {
			select {
			case <-inCtx.Done():
				return
			case <-t.C:
				if err := store.Flush(); err != nil {
					log.Error("write checkpoint", "err", err)
				}
			}
		}
	}()

	code := 0
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			log.Error("input stopped", "err", err)
			code = 1
		}
	}
	log.Info("shutting down: draining to Kafka")

	stopInputs()
	wg.Wait()
	<-flushDone
	if c := drain(); c != 0 {
		code = c
	}
	if err := store.Flush(); err != nil {
		log.Error("write checkpoint", "err", err)
		code = 1
	}
	return code
}

// newProducer builds the shipper's Kafka output to kafka.topics.raw (shared by `mxtrail ship`
// and `mxtrail run`).
func newProducer(cfg config.Config, transport *kafka.Transport, log *slog.Logger, pm *produce.Metrics) (*produce.Producer, error) {
	sc := cfg.Ship
	return produce.New(produce.Config{
		Brokers: cfg.Kafka.Brokers, Topic: cfg.Kafka.Topics.Raw, Transport: transport,
		Compression: sc.Compression, ZstdLevel: sc.ZstdLevel, BatchBytes: int(sc.BatchBytes), Linger: sc.Linger,
		MaxInFlight: int(sc.MaxInFlight), MaxMessageBytes: int(sc.MaxMessageBytes),
		BackoffMin: sc.BackoffMin, BackoffMax: sc.BackoffMax, WriteTimeout: sc.WriteTimeout,
		Logger: log, Metrics: pm,
	})
}

func startProgress(stderr io.Writer, forced bool, p *stdin.Progress) (stop func()) {
	f, isFile := stderr.(*os.File)
	tty := false
	if isFile {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	if !forced && !tty {
		return func() {}
	}
	eol := "\n"
	if tty {
		eol = "\r"
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(stderr, "%s\n", p)
				return
			case <-t.C:
				fmt.Fprintf(stderr, "%s%s", p, eol)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func kafkaTransport(k config.Kafka) (*kafka.Transport, error) {
	t := &kafka.Transport{ClientID: k.ClientID, DialTimeout: 5 * time.Second, MetadataTTL: 30 * time.Second}
	if k.TLS.Enabled {
		tc := &tls.Config{ServerName: k.TLS.ServerName, InsecureSkipVerify: k.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if k.TLS.CAFile != "" {
			pem, err := os.ReadFile(k.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("kafka tls ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka tls ca %q: no certificates", k.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		if k.TLS.CertFile != "" {
			c, err := tls.LoadX509KeyPair(k.TLS.CertFile, k.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("kafka tls client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		t.TLS = tc
	}
	var mech sasl.Mechanism
	var err error
	switch k.SASL.Mechanism {
	case "":
	case "PLAIN":
		mech = plain.Mechanism{Username: k.SASL.Username, Password: k.SASL.Password}
	case "SCRAM-SHA-256":
		mech, err = scram.Mechanism(scram.SHA256, k.SASL.Username, k.SASL.Password)
	case "SCRAM-SHA-512":
		mech, err = scram.Mechanism(scram.SHA512, k.SASL.Username, k.SASL.Password)
	default:
		err = fmt.Errorf("unknown sasl mechanism %q", k.SASL.Mechanism)
	}
	if err != nil {
		return nil, fmt.Errorf("kafka sasl: %w", err)
	}
	t.SASL = mech
	return t, nil
}

// createTopic creates the raw topic when it does not exist yet.
func createTopic(ctx context.Context, k config.Kafka, tr *kafka.Transport, sc config.Ship) error {
	c := &kafka.Client{Addr: kafka.TCP(k.Brokers...), Transport: tr, Timeout: 15 * time.Second}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: k.Topics.Raw, NumPartitions: sc.Partitions, ReplicationFactor: sc.ReplicationFactor,
	}}})
	if err != nil {
		return fmt.Errorf("create topic %q: %w", k.Topics.Raw, err)
	}
	if e := resp.Errors[k.Topics.Raw]; e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q with %s partitions: %w", k.Topics.Raw, strconv.Itoa(sc.Partitions), e)
	}
	// Metadata lags creation: a producer that sees fewer partitions for a moment would put a
	// host's first lines on another partition than the rest, breaking per-host order. Wait
	// until every partition has a leader.
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.Topics.Raw}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) > 0 {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				ready = ready && p.Error == nil && p.Leader.Host != ""
			}
			want := sc.Partitions
			if resp.Errors[k.Topics.Raw] != nil { // it existed: whatever count it has
				want = len(md.Topics[0].Partitions)
			}
			if ready && len(md.Topics[0].Partitions) >= want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %q: partitions not ready after 30s (metadata error %v)", k.Topics.Raw, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
