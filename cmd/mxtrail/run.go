package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/gen"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/ingest/produce"
	"github.com/mxtrail/mxtrail/ingest/wire"
	"github.com/mxtrail/mxtrail/internal/config"
	"github.com/mxtrail/mxtrail/internal/embedkafka"
	"github.com/mxtrail/mxtrail/internal/obs"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
	"github.com/mxtrail/mxtrail/sink/schema"
)

func init() {
	register("run", "run the whole pipeline on one machine", runRun)
}

// runFlags are the flags of `mxtrail run`.
type runFlags struct {
	cfgPath  string
	data     string
	dataSet  bool // --data was given: the embedded broker lives under it too
	logs     string
	host     string
	year     int
	once     bool
	seed     uint64
	hosts    int
	lines    int
	top      int
	timeout  time.Duration
	progress time.Duration
	logLevel string
}

// runRun is `mxtrail run`: every stage in one process (replay shipper, enricher, sink) on an
// embedded broker unless kafka.brokers is set, one /metrics for all, live progress, then a
// summary read back from ClickHouse.
func runRun(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.cfgPath, "config", "", "YAML configuration file (default: defaults and MXTRAIL_* environment)")
	fs.StringVar(&f.data, "data", "data", "directory for generated logs, the embedded broker's log and the replay state")
	fs.StringVar(&f.logs, "logs", "", "ship these files (a glob) instead of a generated fleet")
	fs.StringVar(&f.host, "host", "", "host name for --logs lines that carry none")
	fs.IntVar(&f.year, "year", 0, "year of yearless syslog lines in --logs (default: enrich.parser.default_year, else the current year)")
	fs.BoolVar(&f.once, "once", false, "exit after the summary, once everything is shipped, enriched and written")
	fs.Uint64Var(&f.seed, "seed", 1, "generator seed of the sample fleet")
	fs.IntVar(&f.hosts, "hosts", 10, "hosts in the sample fleet")
	fs.IntVar(&f.lines, "lines", 1_000_000, "approximate lines in the sample fleet")
	fs.IntVar(&f.top, "top", 10, "rows in the summary's top lists")
	fs.DurationVar(&f.timeout, "timeout", 0, "with --once: give up (exit 1) when not done after this long (0: never)")
	fs.DurationVar(&f.progress, "progress", 0, "progress line interval (default: 1s on a terminal, 5s otherwise)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "level of the stages' log lines (debug, info, warn, error); the progress line and the summary always show")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mxtrail run [--once] [--logs GLOB [--host H] [--year Y]] [flags]")
		fmt.Fprintln(stderr, "Runs the shipper (replaying the files in event-time order), the enricher and the sink in one")
		fmt.Fprintln(stderr, "process, shows progress, then a summary read back from ClickHouse.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fs.Visit(func(fl *flag.Flag) { f.dataSet = f.dataSet || fl.Name == "data" })
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mxtrail run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if f.logs == "" && (f.host != "" || f.year != 0) {
		fmt.Fprintln(stderr, "mxtrail run: --host and --year apply to --logs only")
		return 2
	}
	if f.year != 0 && (f.year < 1970 || f.year > 9999) {
		fmt.Fprintf(stderr, "mxtrail run: --year %d out of range 1970..9999\n", f.year)
		return 2
	}
	cfg, err := config.Load(f.cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail run: %v\n", err)
		return 2
	}
	log, err := obs.NewLogger(stderr, cfg.HTTP.LogFormat, f.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail run: %v\n", err)
		return 2
	}
	r := &runner{f: f, cfg: cfg, log: log, out: stdout, errw: stderr}
	if err := r.run(ctx); err != nil {
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(stderr, "mxtrail run: %v\n", err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

// runner holds one `mxtrail run`.
type runner struct {
	f    runFlags
	cfg  config.Config
	log  *slog.Logger
	out  io.Writer
	errw io.Writer

	fleet     *gen.Summary // the generated fleet, nil with --logs
	knownYear int          // year of yearless lines when known (--year, the fleet's, the config's)
	files     []replayFile
	reg       *prometheus.Registry
	rp        *replayer
}

func (r *runner) say(format string, a ...any) { fmt.Fprintf(r.errw, "mxtrail run: "+format+"\n", a...) }

func (r *runner) run(ctx context.Context) error {
	if err := r.inputs(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(r.f.data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if r.knownYear != 0 {
		r.cfg.Enrich.Parser.DefaultYear = r.knownYear
	}

	if len(r.cfg.Kafka.Brokers) == 0 {
		dir := r.cfg.Kafka.EmbeddedDataDir
		if r.f.dataSet {
			dir = filepath.Join(r.f.data, "kafka")
		}
		t := r.cfg.Kafka.Topics
		b, err := embedkafka.Start(embedkafka.Options{DataDir: dir, Addr: "127.0.0.1:0", Partitions: r.cfg.Ship.Partitions,
			Topics: []string{t.Raw, t.Sessions, t.Events, t.DeadLetter, t.Alerts}})
		if err != nil {
			return err
		}
		defer b.Close()
		r.cfg.Kafka.Brokers = b.Addrs()
		r.say("embedded Kafka-protocol broker on %s, log in %s", strings.Join(b.Addrs(), ","), dir)
	} else {
		r.say("Kafka brokers %s", strings.Join(r.cfg.Kafka.Brokers, ","))
	}
	tr, err := kafkaTransport(r.cfg.Kafka)
	if err != nil {
		return err
	}
	if err := r.ensureTopics(ctx, tr); err != nil {
		return err
	}

	srv := obs.NewServer(r.log)
	r.reg = srv.Registry
	pm := produce.NewMetrics(r.reg)
	r.rp = &replayer{}
	enr, err := newEnricher(r.cfg, tr, r.log, r.reg, r.rp.clock(r.cfg.Enrich.Stream.IdleClockSpeed))
	if err != nil {
		return err
	}
	r.say("ClickHouse %s, database %s: migrating", strings.Join(r.cfg.ClickHouse.Addrs, ","), r.cfg.ClickHouse.Database)
	snk, closeSink, err := newSink(ctx, r.cfg, true, r.log, r.reg)
	if err != nil {
		return err
	}
	defer closeSink()
	prod, err := newProducer(r.cfg, tr, r.log, pm)
	if err != nil {
		return err
	}
	srv.AddCheck("kafka", enr.Ready)
	srv.AddCheck("shipper", func(context.Context) error { return prod.Ready() })
	if err := srv.Start(r.cfg.HTTP.Listen); err != nil {
		r.log.Warn("observability listener disabled", "err", err)
	} else if a := srv.Addr(); a != "" {
		r.say("metrics on http://%s/metrics", a)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()

	kc := &kafka.Client{Addr: kafka.TCP(r.cfg.Kafka.Brokers...), Transport: tr, Timeout: 10 * time.Second}
	statePath := filepath.Join(r.f.data, "replay-state.json")
	r.rp.files, r.rp.prod, r.rp.pm, r.rp.maxLine, r.rp.statePath, r.rp.year = r.files, prod, pm, int(r.cfg.Ship.MaxLine), statePath, r.knownYear
	r.rp.parser = r.parseOptions()
	r.rp.log = r.log
	msg, err := r.rp.plan(ctx, kc, r.cfg.Kafka.Topics.Raw)
	if err != nil {
		return err
	}
	if msg != "" {
		r.say("%s", msg)
	}

	// Stages stop on Ctrl-C, or (--once) when everything is done; each drains on its own.
	stages, stopStages := context.WithCancel(ctx)
	defer stopStages()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	start := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(stages); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				stopStages()
			}
		}()
	}
	start("sink", snk.Run)
	start("enricher", enr.Run)
	start("shipper", r.rp.Run)

	began := time.Now()
	done, err := r.watch(stages, kc, began)
	if err != nil {
		r.log.Error("progress", "err", err)
	}
	var sumErr error
	if done && !r.f.once {
		// The pipeline keeps running (ready, serving /metrics) until Ctrl-C or a stage
		// fails; then it drains like any stage.
		sumErr = r.summary(context.WithoutCancel(ctx), time.Since(began))
		r.say("the stages keep running and serving /metrics; Ctrl-C drains and stops them")
		<-stages.Done()
	}
	stopStages()
	wg.Wait()
	close(errc)
	var stageErr error
	for e := range errc {
		stageErr = errors.Join(stageErr, e)
	}
	if stageErr != nil || sumErr != nil {
		return errors.Join(stageErr, sumErr)
	}
	switch {
	case !done && ctx.Err() != nil:
		r.say("interrupted: stages drained; a re-run continues where this one stopped")
		return nil
	case !done:
		return errors.New("not done")
	case r.f.once:
		return r.summary(context.WithoutCancel(ctx), time.Since(began))
	}
	r.say("stages drained")
	return nil
}

// runIdleClockSpeed is how much faster than real time the enricher's idle clock runs in
// `mxtrail run` once the replay is acknowledged (unless enrich.stream.idle_clock_speed is
// set): idle_advance (30 s) is then noticed in 30 ms and the last sessions close within
// (idle_timeout + lateness) / 1000, under a second with the defaults. Before that the clock
// is real time: a replay slowed down (a busy machine, the race detector) must not look like
// silence that runs minutes of event time on and closes sessions early, and a backlog at the
// broker is never silence for the enricher.
const runIdleClockSpeed = 1000

// clock is the enricher's idle clock: real time until the replay is done, then speed (or
// runIdleClockSpeed when speed is 1) times faster. It never goes back.
func (rp *replayer) clock(speed float64) func() time.Time {
	if speed <= 1 {
		speed = runIdleClockSpeed
	}
	return func() time.Time {
		now := time.Now()
		at := rp.doneAt.Load()
		if at == nil || now.Before(*at) {
			return now
		}
		return at.Add(time.Duration(float64(now.Sub(*at)) * speed))
	}
}

// parseOptions are the replay's parser options (the enricher's parser, with the year known
// for yearless lines).
func (r *runner) parseOptions() parse.Options {
	p := r.cfg.Enrich.Parser
	return parse.Options{PatternDir: p.PatternDir, IsodeHeader: p.IsodeHeader,
		DefaultYear: cmp.Or(r.knownYear, time.Now().Year()), Location: p.Location()}
}

// inputs finds the files to ship: --logs, or the sample fleet (generated once per options).
func (r *runner) inputs(ctx context.Context) error {
	if r.f.logs != "" {
		paths, err := filepath.Glob(r.f.logs)
		if err != nil {
			r.say("--logs %q: %v", r.f.logs, err)
			return errUsage
		}
		for _, p := range paths {
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				r.files = append(r.files, replayFile{path: p, defHost: r.f.host})
			}
		}
		if len(r.files) == 0 {
			r.say("--logs %q matches no regular file", r.f.logs)
			return errUsage
		}
		r.say("shipping %d file(s) matching %s", len(r.files), r.f.logs)
		if r.f.year != 0 {
			r.knownYear = r.f.year
		} else {
			r.knownYear = r.cfg.Enrich.Parser.DefaultYear
		}
		// each file's host now, so a file that names none fails before anything starts
		p, err := parse.New(r.parseOptions())
		if err != nil {
			return err
		}
		for i := range r.files {
			f := &r.files[i]
			d, _ := event.ParseDialect(f.dialect)
			if f.host, err = firstHost(p, f.path, d, f.defHost); err != nil {
				r.say("%v", err)
				return errUsage
			}
		}
		return nil
	}
	dir := filepath.Join(r.f.data, "logs")
	sum, err := r.generate(ctx, dir)
	if err != nil {
		return err
	}
	r.fleet = sum
	r.knownYear = sum.Start.Year()
	for _, fi := range sum.Files {
		// No dialect hint: pinning "spamdyke" on an ICDSoft host's spamdyke file would keep its
		// lines out of the ICDSoft join; the router tells the generated dialects apart.
		r.files = append(r.files, replayFile{path: filepath.Join(dir, fi.Name), host: fi.Host})
	}
	return nil
}

// genStamp records the options a fleet directory was generated with, written last.
type genStamp struct {
	Seed  uint64 `json:"seed"`
	Hosts int    `json:"hosts"`
	Lines int    `json:"lines"`
}

const genStampFile = ".mxtrail-run-gen.json"

// generate writes the sample fleet into dir, or reuses it when it was generated with the same
// options and is complete.
func (r *runner) generate(ctx context.Context, dir string) (*gen.Summary, error) {
	want := genStamp{Seed: r.f.seed, Hosts: r.f.hosts, Lines: r.f.lines}
	if sum, ok := reuseFleet(dir, want); ok {
		r.say("reusing the sample fleet in %s: %d hosts, %d lines, %d sessions (seed %d)", dir, len(sum.Hosts), sum.Total.Lines, sum.Total.Sessions, want.Seed)
		return sum, nil
	}
	o := gen.Defaults()
	o.Seed, o.Hosts, o.Lines, o.OutDir = want.Seed, want.Hosts, want.Lines, dir
	if err := o.Validate(); err != nil {
		r.say("%v", err)
		return nil, errUsage
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("logs directory: %w", err)
	}
	os.Remove(filepath.Join(dir, genStampFile))
	r.say("generating a sample fleet into %s: %d hosts, all products, about %d lines (seed %d)", dir, o.Hosts, o.Lines, o.Seed)
	t0 := time.Now()
	sum, err := gen.Generate(ctx, o)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(want)
	if err := os.WriteFile(filepath.Join(dir, genStampFile), b, 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", genStampFile, err)
	}
	r.say("generated %d files, %d lines, %d sessions in %v", len(sum.Files), sum.Total.Lines, sum.Total.Sessions, time.Since(t0).Round(time.Millisecond))
	return sum, nil
}

// reuseFleet returns the summary of a complete fleet generated with want, if dir holds one
// whose files still have the sizes the summary says.
func reuseFleet(dir string, want genStamp) (*gen.Summary, bool) {
	b, err := os.ReadFile(filepath.Join(dir, genStampFile))
	if err != nil {
		return nil, false
	}
	var got genStamp
	if json.Unmarshal(b, &got) != nil || got != want {
		return nil, false
	}
	b, err = os.ReadFile(filepath.Join(dir, gen.SummaryFile))
	if err != nil {
		return nil, false
	}
	var sum gen.Summary
	if json.Unmarshal(b, &sum) != nil || len(sum.Files) == 0 {
		return nil, false
	}
	for _, fi := range sum.Files {
		st, err := os.Stat(filepath.Join(dir, fi.Name))
		if err != nil || st.Size() != fi.Bytes {
			return nil, false
		}
	}
	return &sum, true
}

// ensureTopics creates the pipeline's topics on configured brokers when missing (the
// embedded broker is seeded with them), so the consumer groups see every partition at once.
func (r *runner) ensureTopics(ctx context.Context, tr *kafka.Transport) error {
	t := r.cfg.Kafka.Topics
	for _, name := range []string{t.Raw, t.Sessions, t.Events, t.DeadLetter, t.Alerts} {
		k := r.cfg.Kafka
		k.Topics.Raw = name
		if err := createTopic(ctx, k, tr, r.cfg.Ship); err != nil {
			return err
		}
	}
	return nil
}

// groupLag is how far group is behind the ends of topics: the sum over partitions of end
// offset minus committed offset (the whole partition when nothing is committed). Zero means
// the group committed everything the topics hold.
func groupLag(ctx context.Context, c *kafka.Client, group string, topics ...string) (lag int64, err error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return 0, fmt.Errorf("metadata of %v: %w", topics, err)
	}
	parts := map[string][]int{}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return 0, fmt.Errorf("metadata of topic %q: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			parts[t.Name] = append(parts[t.Name], p.ID)
			req[t.Name] = append(req[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return 0, fmt.Errorf("end offsets of %v: %w", topics, err)
	}
	of, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return 0, fmt.Errorf("offsets of group %q: %w", group, err)
	}
	if of.Error != nil {
		return 0, fmt.Errorf("offsets of group %q: %w", group, of.Error)
	}
	committed := map[string]map[int]int64{}
	for t, ps := range of.Topics {
		committed[t] = map[int]int64{}
		for _, p := range ps {
			if p.Error != nil {
				return 0, fmt.Errorf("offset of group %q on %s/%d: %w", group, t, p.Partition, p.Error)
			}
			committed[t][p.Partition] = p.CommittedOffset
		}
	}
	for t, ps := range lo.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return 0, fmt.Errorf("end offset of %s/%d: %w", t, p.Partition, p.Error)
			}
			c := max(committed[t][p.Partition], 0)
			lag += max(p.LastOffset-c, 0)
		}
	}
	return lag, nil
}

// topicEnd is the sum of the end offsets of topic's partitions.
func topicEnd(ctx context.Context, c *kafka.Client, topic string) (int64, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return 0, t.Error
		}
		for _, p := range t.Partitions {
			req[t.Name] = append(req[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return 0, err
	}
	var n int64
	for _, ps := range lo.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return 0, p.Error
			}
			n += p.LastOffset
		}
	}
	return n, nil
}

// progress is one reading of the pipeline's state.
type progress struct {
	shipDone                   bool // taken first: the lags read after it include every line
	shipped, enriched, written float64
	rawLag, sinkLag            int64
}

// done is the definition of "everything is through": the shipper read every file to its end
// and Kafka acknowledged every line; the enricher's group committed the raw topic's end
// (it commits nothing past the first line of a session still open, and only after its
// outputs were acknowledged, so no session is open and every output is in Kafka); and then
// the sink's group committed the ends of its topics (it commits only after ClickHouse
// acknowledged the rows).
//
// The order of the readings matters: shipDone first (once true, every line is in the raw
// topic, so a raw lag read after it counts them), the raw lag before the sink's (once the
// enricher committed the end, its outputs are in the output topics the sink lag reads).
// Reading shipDone last declared a run done before its lines reached the broker.
func (p progress) done() bool { return p.shipDone && p.rawLag == 0 && p.sinkLag == 0 }

func (r *runner) read(ctx context.Context, kc *kafka.Client) (progress, error) {
	p := progress{shipDone: r.rp.finished()}
	mfs, err := r.reg.Gather()
	if err != nil {
		return p, err
	}
	for _, mf := range mfs {
		var dst *float64
		switch mf.GetName() {
		case "mxtrail_ship_acked_lines_total":
			dst = &p.shipped
		case "mxtrail_enrich_lines_in_total":
			dst = &p.enriched
		case "mxtrail_sink_rows_total":
			dst = &p.written
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "mxtrail_sink_rows_total" && !hasLabel(m.GetLabel(), "table", "sessions") {
				continue
			}
			*dst += m.GetCounter().GetValue()
		}
	}
	t := r.cfg.Kafka.Topics
	// the sink's lag only means something once the enricher has caught up
	if p.rawLag, err = groupLag(ctx, kc, r.cfg.Enrich.Stream.GroupID, t.Raw); err != nil {
		return p, err
	}
	if p.sinkLag, err = groupLag(ctx, kc, r.cfg.Sink.GroupID, t.Sessions, t.Events, t.DeadLetter, t.Alerts); err != nil {
		return p, err
	}
	return p, nil
}

func hasLabel[L interface {
	GetName() string
	GetValue() string
}](ls []L, name, value string) bool {
	for _, l := range ls {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// watch prints progress until ctx ends or, with --once, until everything is done; it
// reports whether everything was done. Without --once it returns once done too (the summary
// is printed) and the caller keeps serving.
func (r *runner) watch(ctx context.Context, kc *kafka.Client, began time.Time) (bool, error) {
	tty := isTerminal(r.errw)
	every := r.f.progress
	if every <= 0 {
		every = 5 * time.Second
		if tty {
			every = time.Second
		}
	}
	var deadline <-chan time.Time
	if r.f.once && r.f.timeout > 0 {
		deadline = time.After(r.f.timeout)
	}
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	lastPrint := time.Now()
	var lastEnriched float64
	lastAt := began
	var lastErr error
	errs := 0
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case <-deadline:
			p, _ := r.read(context.WithoutCancel(ctx), kc)
			return false, fmt.Errorf("not done after %v: shipped %.0f lines (shipper done %v), enricher lag %d, sink lag %d",
				r.f.timeout, p.shipped, r.rp.finished(), p.rawLag, p.sinkLag)
		case <-poll.C:
		}
		p, err := r.read(ctx, kc)
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			if errs++; errs%20 == 1 || !errors.Is(err, lastErr) {
				r.log.Warn("reading progress", "err", err)
			}
			lastErr = err
			continue
		}
		now := time.Now()
		finished := p.done()
		if finished || now.Sub(lastPrint) >= every {
			// the rate is the enricher's (the pipeline's pace: the replay runs ahead of it),
			// and the last line gives the whole run's
			rate, per := (p.enriched-lastEnriched)/now.Sub(lastAt).Seconds(), "lines/s"
			if finished {
				rate, per = p.enriched/now.Sub(began).Seconds(), "lines/s overall"
			}
			lastEnriched, lastAt, lastPrint = p.enriched, now, now
			// lag: records the enricher's group, then the sink's, have yet to commit (which
			// stage is behind)
			line := fmt.Sprintf("shipped %s lines · enriched %s · sessions written %s · lag %s + %s · %s %s · %v",
				count(p.shipped), count(p.enriched), count(p.written), count(float64(p.rawLag)), count(float64(p.sinkLag)),
				count(rate), per, now.Sub(began).Round(time.Second))
			if tty && !finished {
				fmt.Fprintf(r.errw, "\r%-130s", line)
			} else if tty {
				fmt.Fprintf(r.errw, "\r%-130s\n", line)
			} else {
				fmt.Fprintln(r.errw, line)
			}
		}
		if finished {
			r.say("done: every line shipped, enriched and written in %v", time.Since(began).Round(100*time.Millisecond))
			return true, nil
		}
	}
}

// count formats n with thousands separators.
func count(n float64) string {
	s := strconv.FormatInt(int64(n+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// replayFile is one input file of the replay.
type replayFile struct {
	path    string
	host    string // empty: the host named by the file's first parsed line, else defHost
	defHost string
	dialect string // hint for the enricher (a parser --format name), empty: detect
}

// replayer is the shipper of `mxtrail run`. It sends the lines of all its files through the
// shipper's Kafka producer (same headers, keys, acknowledgements and metrics as `mxtrail
// ship`), but in event-time order across files and hosts, as live hosts would have written
// them. The tailer reads one file to its end before the next: for old files that puts one
// host's lines hours after another's on a shared partition (whose watermark then closes the
// later host's sessions early) and splits the files of one host (ICDSoft's three files join
// into one session).
//
// Like the tailer it keeps positions in a state file (statePath), moved only past lines Kafka
// acknowledged, so an interrupted run resumes where it stopped (lines sent but not yet
// acknowledged are sent again: at least once), and a run after a complete one ships nothing.
type replayer struct {
	files     []replayFile
	prod      *produce.Producer
	pm        *produce.Metrics
	parser    parse.Options
	maxLine   int
	statePath string
	year      int // year of yearless lines; 0: each file's mtime

	log       *slog.Logger
	start     []replayStateFile // where each file's replay starts (plan)
	prevLines int64             // lines earlier runs had acknowledged (plan)
	skip      bool              // every file was shipped to its end (plan)
	done      atomic.Bool
	doneAt    atomic.Pointer[time.Time] // when every line was acknowledged
	sources   []*lineSource
}

func (rp *replayer) finished() bool { return rp.done.Load() }

// replayState is what the state file holds.
type replayState struct {
	Files []replayStateFile `json:"files"`
	Lines int64             `json:"lines"` // lines acknowledged by Kafka, over every run
	Done  bool              `json:"done"`  // every file acknowledged to its end
}

// replayStateFile identifies a file by path and the hash of its first bytes, and holds the
// end of its last acknowledged line with the hash of the bytes before it (a file appended to
// resumes there; a file rewritten in place, even with the same first bytes, starts over).
type replayStateFile struct {
	Path        string    `json:"path"`
	Fingerprint string    `json:"fingerprint"`
	Size        int64     `json:"size"`
	MTime       time.Time `json:"mtime"`
	Offset      int64     `json:"offset"`
	Before      string    `json:"before,omitempty"` // fingerprint of the bytes before Offset
}

const fingerprintBytes = 1024

// replaySaveEvery is how often the replay's acknowledged positions reach the disk while it
// runs (they are written at its end too, interrupted or not).
const replaySaveEvery = 2 * time.Second

// replaySentHook, when set (by a test), is told the number of lines sent so far after each
// line, so a test can interrupt a replay at a known point.
var replaySentHook func(sent int64)

// fingerprint hashes the first fingerprintBytes of a file.
func fingerprint(fh *os.File) (string, error) { return fingerprintAt(fh, 0, fingerprintBytes) }

// fingerprintAt hashes up to n bytes of fh from off.
func fingerprintAt(fh *os.File, off int64, n int) (string, error) {
	b := make([]byte, n)
	n, err := fh.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	h := fnv.New64a()
	h.Write(b[:n])
	return strconv.FormatUint(h.Sum64(), 16) + "/" + strconv.Itoa(n), nil
}

// fingerprintBefore hashes the fingerprintBytes (or fewer) before off in the file at path.
func fingerprintBefore(path string, off int64) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	from := max(0, off-fingerprintBytes)
	return fingerprintAt(fh, from, int(off-from))
}

func (rp *replayer) loadState() (replayState, bool) {
	var st replayState
	b, err := os.ReadFile(rp.statePath)
	if err != nil {
		return st, false
	}
	return st, json.Unmarshal(b, &st) == nil
}

func (rp *replayer) saveState(st replayState) error {
	b, _ := json.MarshalIndent(st, "", "  ")
	tmp := rp.statePath + ".tmp"
	if err := writeSynced(tmp, b); err != nil {
		return fmt.Errorf("write replay state: %w", err)
	}
	if err := os.Rename(tmp, rp.statePath); err != nil {
		return fmt.Errorf("write replay state: %w", err)
	}
	return nil
}

// writeSynced writes b to path and syncs it, so a rename after it never exposes an empty
// file after a crash.
func writeSynced(path string, b []byte) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// identify returns the state entry of each file as it is now (offset 0).
func (rp *replayer) identify() ([]replayStateFile, error) {
	var out []replayStateFile
	for _, f := range rp.files {
		fh, err := os.Open(f.path)
		if err != nil {
			return nil, err
		}
		fi, err := fh.Stat()
		if err != nil {
			fh.Close()
			return nil, err
		}
		fp, err := fingerprint(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("read %q: %w", f.path, err)
		}
		abs, _ := filepath.Abs(f.path)
		out = append(out, replayStateFile{Path: abs, Fingerprint: fp, Size: fi.Size(), MTime: fi.ModTime().UTC()})
	}
	return out, nil
}

// plan decides where each file's replay starts: where an earlier run's acknowledged position
// left it, if the file is still the one that run read (same path, same first bytes, same
// bytes before the position) and the raw topic still holds at least every line the state
// counts (a deleted broker log means shipping everything again). It returns what to tell the
// user, if anything.
func (rp *replayer) plan(ctx context.Context, kc *kafka.Client, raw string) (string, error) {
	files, err := rp.identify()
	if err != nil {
		return "", err
	}
	rp.start = files
	old, ok := rp.loadState()
	if !ok || old.Lines == 0 {
		return "", nil
	}
	end, err := topicEnd(ctx, kc, raw)
	if err != nil {
		return "", fmt.Errorf("end offsets of %s: %w", raw, err)
	}
	if end < old.Lines {
		return fmt.Sprintf("%s holds %d records, fewer than the %d lines %s counts as shipped (a new broker log?): shipping every file from its start",
			raw, end, old.Lines, rp.statePath), nil
	}
	rp.prevLines = old.Lines
	byPath := map[string]replayStateFile{}
	for _, o := range old.Files {
		byPath[o.Path] = o
	}
	resumed, complete := 0, 0
	var left, total int64
	for i := range files {
		f := &files[i]
		if o, ok := byPath[f.Path]; ok && o.Offset > 0 && o.Offset <= f.Size && o.Fingerprint == f.Fingerprint {
			if before, err := fingerprintBefore(f.Path, o.Offset); err == nil && before == o.Before {
				f.Offset, f.Before = o.Offset, o.Before
				resumed++
			}
		}
		if f.Offset == f.Size {
			complete++
		}
		left += f.Size - f.Offset
		total += f.Size
	}
	switch {
	case complete == len(files):
		rp.skip = true
		return fmt.Sprintf("these files were shipped by an earlier run (%s): not shipping them again", rp.statePath), nil
	case resumed > 0:
		return fmt.Sprintf("resuming where an earlier run stopped (%s): %d of %d file(s) partly or wholly shipped, %d of %d bytes left",
			rp.statePath, resumed, len(files), left, total), nil
	}
	return "", nil
}

// fileAcker moves a file's acknowledged position: the producer tells it, in order, the seq
// each line was sent with, which is the offset just past that line.
type fileAcker struct {
	off   atomic.Int64
	lines atomic.Int64
}

func (a *fileAcker) Acked(seq uint64) {
	a.off.Store(int64(seq))
	a.lines.Add(1)
}

// Run sends every line, then waits for Kafka to acknowledge them all and records the state.
func (rp *replayer) Run(ctx context.Context) error {
	if rp.skip {
		rp.finish()
		return rp.prod.Close(context.WithoutCancel(ctx))
	}
	files := rp.start
	acks := make([]*fileAcker, len(files))
	for i := range acks {
		acks[i] = &fileAcker{}
		acks[i].off.Store(files[i].Offset)
	}
	// the saver goroutine, then Run, own cur; send reads files
	cur := slices.Clone(files)
	snapshot := func(done bool) replayState {
		st := replayState{Lines: rp.prevLines, Done: done}
		for i := range cur {
			f := &cur[i]
			if off := acks[i].off.Load(); off != f.Offset {
				f.Offset = off
				var err error
				if f.Before, err = fingerprintBefore(f.Path, off); err != nil {
					rp.log.Warn("replay state: the file will be shipped from its start next time", "file", f.Path, "err", err)
				}
			}
			st.Lines += acks[i].lines.Load()
			st.Files = append(st.Files, *f)
		}
		return st
	}
	// positions reach the disk periodically; each write holds only acknowledged lines
	stopSaving := make(chan struct{})
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		t := time.NewTicker(replaySaveEvery)
		defer t.Stop()
		for {
			select {
			case <-stopSaving:
				return
			case <-t.C:
				if err := rp.saveState(snapshot(false)); err != nil {
					rp.log.Warn("replay state", "err", err)
				}
			}
		}
	}()
	err := rp.send(ctx, files, acks)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cerr := rp.prod.Close(dctx)
	close(stopSaving)
	<-saved
	for _, l := range rp.sources {
		if l.err != nil {
			err = errors.Join(err, fmt.Errorf("read %q: %w", l.name, l.err))
		}
	}
	complete := err == nil && cerr == nil && ctx.Err() == nil
	if serr := rp.saveState(snapshot(complete)); serr != nil && err == nil {
		err = serr
	}
	switch {
	case ctx.Err() != nil:
		return nil // interrupted: the state holds what Kafka acknowledged
	case err != nil:
		return err
	case cerr != nil:
		return fmt.Errorf("lines not acknowledged by Kafka: %w", cerr)
	}
	rp.finish()
	return nil
}

func (rp *replayer) finish() {
	now := time.Now()
	rp.doneAt.Store(&now)
	rp.done.Store(true)
}

func (rp *replayer) send(ctx context.Context, files []replayStateFile, acks []*fileAcker) error {
	p, err := parse.New(rp.parser)
	if err != nil {
		return err
	}
	type src struct {
		*lineSource
		f    replayFile
		hdr  []kafka.Header
		last time.Time // event time of the last parsed line: unparsed lines keep their place
		ack  *fileAcker
	}
	var srcs []*src
	for i, f := range rp.files {
		fh, err := os.Open(f.path)
		if err != nil {
			return err
		}
		defer fh.Close()
		d, _ := event.ParseDialect(f.dialect) // DialectAuto when empty or unknown
		if f.host == "" {
			if f.host, err = firstHost(p, f.path, d, f.defHost); err != nil {
				return err
			}
		}
		start := files[i].Offset
		if _, err := fh.Seek(start, io.SeekStart); err != nil {
			return fmt.Errorf("seek %q to %d: %w", f.path, start, err)
		}
		l := &lineSource{name: f.path, br: bufio.NewReaderSize(fh, 64<<10), off: start,
			src: event.Source{Host: f.host, Dialect: d, File: f.path, Loc: rp.parser.Location}}
		rp.sources = append(rp.sources, l)
		// The enricher reads yearless lines (syslog, IMail) in the year of the ingest time.
		// A live shipper's "now" is right for lines written just now; for old files the
		// year anchor is the end of the known year, else the file's mtime (as `mxtrail
		// sessions` does), so both processes agree on the year.
		ref := time.Date(rp.year, 12, 31, 23, 59, 59, 0, time.UTC)
		if rp.year == 0 {
			ref = files[i].MTime
		}
		l.src.YearRef = ref
		srcs = append(srcs, &src{lineSource: l, f: f, ack: acks[i], hdr: []kafka.Header{
			{Key: wire.HeaderHost, Value: []byte(f.host)},
			{Key: wire.HeaderSource, Value: []byte(wire.SourceFile)},
			{Key: wire.HeaderDialect, Value: []byte(f.dialect)},
			{Key: wire.HeaderIngestTime, Value: ref.AppendFormat(nil, wire.IngestTimeLayout)},
		}})
	}
	var lines, bytes int
	var sent int64
	report := func() {
		rp.pm.Read(produce.InputFile, lines, bytes)
		lines, bytes = 0, 0
	}
	defer report()
	ship := func(s *src) error {
		raw := s.ev.Raw()
		h := s.hdr
		if len(raw) > rp.maxLine {
			h = append(h[:len(h):len(h)], kafka.Header{Key: wire.HeaderTruncated, Value: []byte(strconv.Itoa(len(raw)))})
			raw = raw[:rp.maxLine]
			rp.pm.Truncated(produce.InputFile)
		}
		lines++
		bytes += len(raw) + 1
		if lines >= 4096 {
			report()
		}
		// seq is the offset just past the line: what the state records once it is acked
		if err := rp.prod.Send(ctx, produce.InputFile, s.f.host, h, raw, s.ack, uint64(s.off)); err != nil {
			return err
		}
		if sent++; replaySentHook != nil {
			replaySentHook(sent)
		}
		return nil
	}
	at := func(s *src) time.Time {
		if s.ev.Parsed {
			return s.ev.Time
		}
		return s.last
	}
	for _, s := range srcs {
		s.next(p)
		if s.ok && s.ev.Parsed {
			s.last = s.ev.Time
		}
	}
	for ctx.Err() == nil {
		// the source whose next line is the oldest; an unparsed line goes with the line
		// before it (at its source's last time), so garbage never waits for the merge
		var best *src
		for _, s := range srcs {
			if s.ok && (best == nil || at(s).Before(at(best))) {
				best = s
			}
		}
		if best == nil {
			return nil
		}
		if err := ship(best); err != nil {
			return err
		}
		best.next(p)
		if best.ok && best.ev.Parsed {
			best.last = best.ev.Time
		}
	}
	return ctx.Err()
}

// firstHost is the host named by the first parsed line among the first hostScan lines of
// path, else fallback: the key and host header of all its lines, as `mxtrail sessions`
// groups files.
func firstHost(p *parse.Parser, path string, d event.Dialect, fallback string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	l := &lineSource{name: path, br: bufio.NewReaderSize(fh, 64<<10), src: event.Source{Dialect: d, File: path}}
	for i := 0; i < hostScan; i++ {
		if l.next(p); !l.ok {
			break
		}
		if h := l.ev.Bytes(l.ev.Host); l.ev.Parsed && len(h) > 0 {
			return string(h), nil
		}
	}
	if l.err != nil {
		return "", fmt.Errorf("read %q: %w", path, l.err)
	}
	if fallback != "" {
		return fallback, nil
	}
	return "", fmt.Errorf("file %q: no host name in its first %d lines: give --host", path, hostScan)
}

const hostScan = 1000

// runSummary is what `mxtrail run` reads back from ClickHouse: proof the data arrived.
type runSummary struct {
	Sessions   map[string]map[string]int // product -> outcome -> sessions (FINAL)
	Total      int
	TopDenied  []ipCount
	Events     uint64
	DeadLetter uint64
	Alerts     uint64
	AlertRules []ipCount // rule -> alerts
}

type ipCount struct {
	Key string
	N   uint64
}

// readSummary queries the tables with FINAL, so rows written twice (a replay, a re-run)
// count once.
func readSummary(ctx context.Context, cfg config.Config, top int) (*runSummary, error) {
	conn, err := chsink.Open(ctx, connConfig(cfg))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	sv, err := schema.DetectServer(conn)
	if err != nil {
		return nil, err
	}
	db := cfg.ClickHouse.Database
	s := &runSummary{Sessions: map[string]map[string]int{}}
	rows, err := conn.Query(ctx, "SELECT toString(product), toString(outcome), count() FROM "+db+".sessions FINAL GROUP BY product, outcome")
	if err != nil {
		return nil, fmt.Errorf("sessions by product and outcome: %w", err)
	}
	for rows.Next() {
		var p, o string
		var n uint64
		if err := rows.Scan(&p, &o, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sessions by product and outcome: %w", err)
		}
		if s.Sessions[p] == nil {
			s.Sessions[p] = map[string]int{}
		}
		s.Sessions[p][o] = int(n)
		s.Total += int(n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sessions by product and outcome: %w", err)
	}
	var denied []string
	for _, o := range record.Outcomes() {
		if o.Denied() {
			denied = append(denied, "'"+string(o)+"'")
		}
	}
	ip := "client_ip"
	if schema.FeaturesFor(sv).IPv6 {
		ip = "replaceRegexpOne(IPv6NumToString(client_ip), '^::ffff:', '')"
	}
	q := fmt.Sprintf("SELECT ip, count() AS n FROM (SELECT %s AS ip FROM %s.sessions FINAL WHERE toString(outcome) IN (%s)) WHERE ip != '' GROUP BY ip ORDER BY n DESC, ip LIMIT %d",
		ip, db, strings.Join(denied, ", "), top)
	if s.TopDenied, err = keyCounts(ctx, conn, q); err != nil {
		return nil, fmt.Errorf("top denied client addresses: %w", err)
	}
	for _, c := range []struct {
		dst   *uint64
		table string
	}{{&s.Events, "events"}, {&s.DeadLetter, "deadletter"}, {&s.Alerts, "alerts"}} {
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+"."+c.table+" FINAL").Scan(c.dst); err != nil {
			return nil, fmt.Errorf("count %s: %w", c.table, err)
		}
	}
	q = fmt.Sprintf("SELECT toString(rule), count() AS n FROM %s.alerts FINAL GROUP BY rule ORDER BY n DESC, rule LIMIT %d", db, top)
	if s.AlertRules, err = keyCounts(ctx, conn, q); err != nil {
		return nil, fmt.Errorf("alerts by rule: %w", err)
	}
	return s, nil
}

func keyCounts(ctx context.Context, conn driver.Conn, q string) ([]ipCount, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ipCount
	for rows.Next() {
		var c ipCount
		if err := rows.Scan(&c.Key, &c.N); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// summary prints the summary read back from ClickHouse, and where to look next.
func (r *runner) summary(ctx context.Context, took time.Duration) error {
	s, err := readSummary(ctx, r.cfg, r.f.top)
	if err != nil {
		return err
	}
	w := r.out
	db := r.cfg.ClickHouse.Database
	fmt.Fprintf(w, "\nRead back from ClickHouse (%s, database %s, FINAL):\n", strings.Join(r.cfg.ClickHouse.Addrs, ","), db)
	fmt.Fprintf(w, "  %d sessions, %d notable events, %d dead letters, %d alerts\n", s.Total, s.Events, s.DeadLetter, s.Alerts)
	if r.fleet != nil {
		verdict := "equal to"
		if s.Total != r.fleet.Total.Sessions {
			verdict = "NOT equal to"
		}
		fmt.Fprintf(w, "  the generator's ground truth holds %d sessions: %s what ClickHouse holds\n", r.fleet.Total.Sessions, verdict)
		if s.Total > r.fleet.Total.Sessions {
			fmt.Fprintf(w, "  (the database also holds earlier runs' rows, e.g. of another fleet or --logs: give a fresh\n"+
				"   clickhouse.database / MXTRAIL_CLICKHOUSE_DATABASE to see this fleet alone)\n")
		}
	}
	// sessions by product × outcome: products as columns, outcomes as rows
	var products []string
	outcomes := map[string]int{}
	for p, m := range s.Sessions {
		products = append(products, p)
		for o, n := range m {
			outcomes[o] += n
		}
	}
	sort.Strings(products)
	var outs []string
	for o := range outcomes {
		outs = append(outs, o)
	}
	sort.Slice(outs, func(i, j int) bool {
		return outcomes[outs[i]] > outcomes[outs[j]] || outcomes[outs[i]] == outcomes[outs[j]] && outs[i] < outs[j]
	})
	fmt.Fprintf(w, "\nSessions by outcome and product:\n  %-26s", "outcome")
	for _, p := range products {
		fmt.Fprintf(w, " %10s", p)
	}
	fmt.Fprintf(w, " %10s\n", "total")
	for _, o := range outs {
		fmt.Fprintf(w, "  %-26s", o)
		for _, p := range products {
			fmt.Fprintf(w, " %10d", s.Sessions[p][o])
		}
		fmt.Fprintf(w, " %10d\n", outcomes[o])
	}
	fmt.Fprintf(w, "\nTop denied client addresses:\n")
	if len(s.TopDenied) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, c := range s.TopDenied {
		fmt.Fprintf(w, "  %-40s %d sessions\n", c.Key, c.N)
	}
	fmt.Fprintf(w, "\nAlerts raised: %d\n", s.Alerts)
	for _, c := range s.AlertRules {
		fmt.Fprintf(w, "  %-40s %d\n", c.Key, c.N)
	}
	example := "203.0.113.66"
	if len(s.TopDenied) > 0 {
		example = s.TopDenied[0].Key
	}
	fmt.Fprintf(w, "\nNext:\n")
	fmt.Fprintf(w, "  mxtrail query -list                                  saved investigation queries\n")
	fmt.Fprintf(w, "  mxtrail query top-offenders --param from=2000-01-01  the most refused clients (the sample fleet's clock is in the past)\n")
	fmt.Fprintf(w, "  mxtrail query ip --param ip=%s --param from=2000-01-01\n", example)
	fmt.Fprintf(w, "  (with MXTRAIL_CLICKHOUSE_ADDR=%s MXTRAIL_CLICKHOUSE_DATABASE=%s when not the defaults)\n", strings.Join(r.cfg.ClickHouse.Addrs, ","), db)
	fmt.Fprintf(w, "  Grafana: import dashboards/grafana/*.json with the ClickHouse data source on %s (README: \"Importing the dashboards into an existing Grafana\")\n", r.cfg.ClickHouse.Addrs[0])
	if a := r.cfg.HTTP.Listen; a != "" {
		fmt.Fprintf(w, "  metrics: http://%s/metrics\n", a)
	}
	fmt.Fprintf(w, "  all stages took %v\n", took.Round(100*time.Millisecond))
	return nil
}
