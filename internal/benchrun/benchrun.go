// Package benchrun owns `mxtrail bench`: the whole pipeline measured end to end on a real
// Kafka broker and ClickHouse, each stage (ship, enrich, sink) its own process of the mxtrail
// binary, with the baselines measured in the same run and the results written as JSON and a
// Markdown table.
//
// Method, in order: generate a fleet with enrich/gen (cached by seed, size and year); create
// fresh topics and a fresh database whose names carry a run id; write a config file for the
// children; start `mxtrail enrich` and `mxtrail sink`, then `mxtrail ship` over the generated
// files; poll Kafka offsets and ClickHouse until every line is shipped, both consumer groups
// are caught up and the sessions table holds the ground-truth count (or stops growing); stop
// the children with SIGTERM and read their CPU and peak RSS from wait4; read the broker's and
// ClickHouse's CPU from /proc before and after; compare the rows with the generator's truth;
// then run the two baselines (default-pattern grok on a sample, clickhouse-client Native).
//
// End-to-end latency: the poller samples the sessions whose last raw line has an offset
// divisible by LatencyEvery, stamping each with the poll time at which it first became
// visible; after the run the raw records at those offsets are read back for their ingest_time
// header (when the shipper read the line). latency = visible - ingest_time, so it includes the
// time a session waits for its closing line and for the watermark, a batch's age in the sink
// and the poll interval (the resolution of the figure).
package benchrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"

	"github.com/mxtrail/mxtrail/enrich/gen"
	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/internal/config"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
)

// Options configure one bench run. Config must name real brokers (the embedded broker is
// refused: the bench measures the real one).
type Options struct {
	Exe        string        // the mxtrail binary the stages run as (os.Executable)
	ExeArgs    []string      // arguments before the subcommand (tests run their own binary as mxtrail)
	ExeEnv     []string      // extra environment of the stages
	Config     config.Config // effective configuration (file + environment); stage tuning comes from it
	ClickHouse chsink.ConnConfig
	Transport  *kafka.Transport // TLS/SASL for the bench's own admin requests; nil: plain

	Lines int    // lines to generate (approximate; the generator's count is used)
	Seed  uint64 // generator seed
	Hosts int    // generated hosts (products round-robin)
	// Partitions of the raw topic; 0: the fewest from MinPartitions up that give every host
	// its own partition (see hostPartitions).
	Partitions int
	GrokSample int // lines timed through the grok baseline (it is slow)

	DataDir    string // generated fleets are cached here, one directory per seed/size/year
	WorkDir    string // per-run files (configs, logs, checkpoints); a temp dir when empty
	ResultsDir string // where <date>-<commit>.json and latest.md go; empty: not written
	Readme     string // README whose bench marker block is rewritten; empty: not touched
	RepoDir    string // for the commit id

	StateDir     string        // deploy/local state (pid files of the servers)
	Poll         time.Duration // ClickHouse/Kafka poll interval (latency resolution)
	LatencyEvery int64         // sample sessions whose last raw offset is divisible by this; 0: automatic
	Quiet        time.Duration // give up waiting for more rows after this long without progress
	Background   time.Duration // window measuring the servers' CPU before the run (subtracted); 0: none
	ProfileDir   string        // when set, each stage writes a CPU profile <stage>.cpu.prof here
	// IdleAdvance is the enricher's idle advance on a clock running 200x: once a partition has
	// been quiet this long/200 of wall time, its watermark follows that clock and closes the
	// last sessions (idle timeout + lateness of event time) seconds after the input ended. A
	// partition starved of CPU longer than that would close sessions early and split them.
	IdleAdvance time.Duration
	Timeout     time.Duration // bound on the whole pipeline run
	Keep        bool          // keep topics, database and run dir
	Progress    io.Writer     // live progress lines; nil: none
	Now         func() time.Time
}

// Defaults are the flag defaults of `mxtrail bench`.
func Defaults() Options {
	return Options{Lines: 2_000_000, Seed: 1, Hosts: 10, GrokSample: 50_000,
		Poll: 250 * time.Millisecond, Quiet: 60 * time.Second, Background: 3 * time.Second, Timeout: 30 * time.Minute, IdleAdvance: 10 * time.Minute}
}

// Validate reports every problem at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Exe == "" {
		errs = append(errs, errors.New("no mxtrail executable to run the stages"))
	}
	if len(o.Config.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers (or MXTRAIL_KAFKA_BROKERS) is required: the bench runs on the real broker, not the embedded one (make up starts the local one on 127.0.0.1:19092)"))
	}
	if len(o.ClickHouse.Addrs) == 0 {
		errs = append(errs, errors.New("clickhouse.addrs is required"))
	}
	if o.Lines < 1000 {
		errs = append(errs, fmt.Errorf("lines %d: must be at least 1000", o.Lines))
	}
	if o.Hosts < 1 {
		errs = append(errs, fmt.Errorf("hosts %d: must be positive", o.Hosts))
	}
	if o.Partitions < 0 {
		errs = append(errs, fmt.Errorf("partitions %d: must be positive (0: automatic)", o.Partitions))
	}
	if o.GrokSample < 100 {
		errs = append(errs, fmt.Errorf("grok sample %d: must be at least 100", o.GrokSample))
	}
	if o.DataDir == "" {
		errs = append(errs, errors.New("no data directory for the generated fleet"))
	}
	if o.Background < 0 {
		errs = append(errs, fmt.Errorf("background window %v: must not be negative", o.Background))
	}
	if o.Poll <= 0 || o.Quiet <= 0 || o.Timeout <= 0 || o.IdleAdvance <= 0 {
		errs = append(errs, fmt.Errorf("poll %v, quiet %v, timeout %v and idle advance %v must be positive", o.Poll, o.Quiet, o.Timeout, o.IdleAdvance))
	}
	return errors.Join(errs...)
}

// Stage is one pipeline process's cost.
type Stage struct {
	Name              string  `json:"name"`
	Per               string  `json:"per"` // "line" or "row"
	Units             int64   `json:"units"`
	CPUSeconds        float64 `json:"cpu_s"`
	CPUMicros         float64 `json:"cpu_us_per_unit"`
	UnitsPerCPUSecond float64 `json:"units_per_cpu_s"`
	PeakRSSMiB        float64 `json:"peak_rss_mib"`
	Killed            bool    `json:"killed,omitempty"` // did not stop on SIGTERM in time
}

// Server is the CPU a server process used during the pipeline run.
type Server struct {
	Pid        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"` // raw less background
	CPUMicros  float64 `json:"cpu_us_per_line"`
	// RawCPUSeconds is all the CPU the process used during the run; BackgroundCPUSeconds the
	// part attributed to others: its rate in the seconds before the run (BackgroundCores)
	// times the run's duration. On a machine to itself both are about zero.
	RawCPUSeconds        float64 `json:"raw_cpu_s"`
	BackgroundCores      float64 `json:"background_cores"`
	BackgroundCPUSeconds float64 `json:"background_cpu_s"`
}

// Latency is ingest time to row visible in ClickHouse over the sampled sessions.
type Latency struct {
	Samples int     `json:"samples"`
	Every   int64   `json:"every"` // sampled: last raw offset divisible by this
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	Maxms   float64 `json:"max_ms"`
	Pollms  float64 `json:"poll_ms"` // resolution
}

// Correctness compares the sessions table with the generator's ground truth.
type Correctness struct {
	Truth       int   `json:"truth_sessions"`
	Rows        int64 `json:"rows"`            // rows in the table, duplicates included
	Unique      int64 `json:"unique_sessions"` // uniqExact(session_id)
	Final       int64 `json:"final_rows"`      // count() FINAL
	Matched     int   `json:"matched"`         // paired with a truth session (gen.Compare)
	Agree       int   `json:"agree"`           // paired and equal on outcome, recipients, permanence, delivery
	Mismatched  int   `json:"mismatched"`
	Lost        int   `json:"lost"`  // truth sessions with no row
	Extra       int   `json:"extra"` // rows with no truth session
	DupBefore   int64 `json:"duplicates_before_dedup"`
	DupAfter    int64 `json:"duplicates_after_dedup"`
	Events      int64 `json:"event_rows"`
	DeadLetters int64 `json:"deadletter_rows"`
	RawRecords  int64 `json:"raw_records"` // records in the raw topic (= lines unless the shipper duplicated)
	OK          bool  `json:"ok"`          // 0 lost, 0 extra, 0 duplicates after dedup, unique == truth
	// Examples describe a few lost, extra and mismatched sessions, to start an investigation.
	Examples []string `json:"examples,omitempty"`
}

// Target is one comparison against the targets.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  bool    `json:"met"`
}

// Result is everything one run measured; it is the JSON file.
type Result struct {
	Started     time.Time `json:"started"`
	Commit      string    `json:"commit"`
	Machine     Machine   `json:"machine"`
	Run         RunConfig `json:"config"`
	Lines       int64     `json:"lines"`
	Bytes       int64     `json:"bytes"`
	WallSeconds float64   `json:"wall_s"` // first line ingested -> last row visible
	LinesPerSec float64   `json:"lines_per_s"`
	Stages      []Stage   `json:"stages"`
	Kafka       Server    `json:"kafka"`
	ClickHouse  Server    `json:"clickhouse"`
	Latency     Latency   `json:"latency"`
	MaxLag      struct {
		Enrich int64 `json:"enrich"`
		Sink   int64 `json:"sink"`
	} `json:"max_lag"`
	Correctness Correctness    `json:"correctness"`
	Grok        GrokBaseline   `json:"baseline_grok"`
	Native      NativeBaseline `json:"baseline_native"`
	Ratios      struct {
		EnricherVsGrok float64 `json:"enricher_vs_grok"` // enricher lines per CPU-s / grok lines per CPU-s
		SinkVsNative   float64 `json:"sink_vs_native"`   // sink rows per CPU-s / Native insert rows/s
		E2EVsNative    float64 `json:"e2e_sessions_vs_native"`
	} `json:"ratios"`
	Timeline []Point  `json:"timeline"` // lines shipped, lags and rows about once a second
	Targets  []Target `json:"targets"`
	// BenchCPUSeconds is what the bench itself (polling Kafka and ClickHouse) used meanwhile.
	BenchCPUSeconds float64 `json:"bench_cpu_s"`
	// MachineBusy is the share of all cores busy (any process) while the stages ran.
	MachineBusy float64 `json:"machine_busy"`
	Bottleneck  string  `json:"bottleneck"`
	// EnrichGenerations counts the enricher's consumer-group generations (1: no rebalance).
	EnrichGenerations int      `json:"enrich_generations"`
	Notes             []string `json:"notes,omitempty"`
}

// RunConfig is what the run was asked to do.
type RunConfig struct {
	Lines           int      `json:"lines"`
	Seed            uint64   `json:"seed"`
	Hosts           int      `json:"hosts"`
	Partitions      int      `json:"partitions"`
	Brokers         []string `json:"brokers"`
	ClickHouse      []string `json:"clickhouse"`
	Database        string   `json:"database"`
	RawTopic        string   `json:"raw_topic"`
	GrokSample      int      `json:"grok_sample"`
	ShipCompression string   `json:"ship_compression"`
	SinkBatchRows   int      `json:"sink_batch_rows"`
}

func runID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102t150405") + hex.EncodeToString(b[:])
}

// fleetStart puts the generated sessions in March of the year the enricher will infer for
// yearless syslog stamps (ingest time as reference), so their times match the truth.
func fleetStart(now time.Time) time.Time {
	y := now.Year()
	if now.Month() < time.April {
		y--
	}
	return time.Date(y, 3, 9, 0, 0, 0, 0, time.UTC)
}

// fleetDone marks a fleet directory as complete (an interrupted generation is not reused).
const fleetDone = "fleet.ok"

// fleet generates (or reuses) the fleet for o and returns its directory, holding one merged
// file per host (see merge.go), truth.jsonl and summary.json.
func fleet(ctx context.Context, o *Options, now time.Time, progress io.Writer) (string, *gen.Summary, error) {
	start := fleetStart(now)
	dir := filepath.Join(o.DataDir, fmt.Sprintf("fleet-s%d-h%d-l%d-%d", o.Seed, o.Hosts, o.Lines, start.Year()))
	if _, err := os.Stat(filepath.Join(dir, fleetDone)); err == nil {
		b, err := os.ReadFile(filepath.Join(dir, gen.SummaryFile))
		var sum gen.Summary
		if err == nil && json.Unmarshal(b, &sum) == nil && sum.Seed == o.Seed && sum.Start.Equal(start) && len(sum.Hosts) == o.Hosts {
			fmt.Fprintf(progress, "bench: reusing the generated fleet in %s (%d lines)\n", dir, sum.Total.Lines)
			return dir, &sum, nil
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", nil, fmt.Errorf("clear %s: %w", dir, err)
	}
	genDir := filepath.Join(dir, "gen")
	g := gen.Defaults()
	g.Seed, g.Hosts, g.Lines, g.Start, g.OutDir = o.Seed, o.Hosts, o.Lines, start, genDir
	fmt.Fprintf(progress, "bench: generating %d lines over %d hosts into %s\n", o.Lines, o.Hosts, dir)
	sum, err := gen.Generate(ctx, g)
	if err == nil {
		err = mergeFleet(genDir, dir, sum, start.Year())
	}
	for _, f := range []string{gen.TruthFile, gen.SummaryFile} {
		if err == nil {
			err = os.Rename(filepath.Join(genDir, f), filepath.Join(dir, f))
		}
	}
	if err == nil {
		err = os.RemoveAll(genDir)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, fleetDone), nil, 0o644)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("generate the fleet: %w", err)
	}
	return dir, sum, nil
}

func readTruth(dir string) ([]gen.Truth, error) {
	f, err := os.Open(filepath.Join(dir, gen.TruthFile))
	if err != nil {
		return nil, fmt.Errorf("read truth: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	var out []gen.Truth
	for {
		var t gen.Truth
		if err := dec.Decode(&t); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("decode %s record %d: %w", gen.TruthFile, len(out)+1, err)
		}
		out = append(out, t)
	}
}

// childEnv is the environment without MXTRAIL_* overrides: the children's config file holds
// the effective values, and an override (e.g. MXTRAIL_CLICKHOUSE_DATABASE) would send them
// to another database than the bench polls.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MXTRAIL_") {
			env = append(env, kv)
		}
	}
	return env
}

// childConfig is the run's configuration for the three stages: the user's tuning, the run's
// topics, groups and database, the generated files, and an idle clock that closes the last
// sessions seconds after the input ends (as the enricher's own oracle tests do).
func childConfig(base config.Config, idleAdvance time.Duration, id, db, runDir, fleetDir string, sum *gen.Summary) config.Config {
	c := base
	c.Kafka.Topics = config.Topics{Raw: "mxtrail.bench." + id + ".raw", Sessions: "mxtrail.bench." + id + ".sessions",
		Events: "mxtrail.bench." + id + ".events", DeadLetter: "mxtrail.bench." + id + ".deadletter",
		Alerts: "mxtrail.bench." + id + ".alerts"}
	c.ClickHouse.Database = db
	c.HTTP.Listen = "" // three processes, no port to share; the bench reads offsets and rows instead
	c.Ship.Files = nil
	for _, h := range sum.Hosts {
		c.Ship.Files = append(c.Ship.Files, config.ShipFile{Path: filepath.Join(fleetDir, mergedName(h.Host)), Host: h.Host, Start: "beginning"})
	}
	c.Ship.Syslog = config.ShipSyslog{}
	c.Ship.CheckpointFile = filepath.Join(runDir, "ship-positions.json")
	c.Ship.CreateTopic = false
	c.Enrich.Stream.GroupID = "mxtrail-bench-" + id + "-enrich"
	c.Enrich.Stream.Lateness = max(c.Enrich.Stream.Lateness, 5*time.Minute) // generated hosts are skewed up to ±90 s
	c.Enrich.Stream.IdleAdvance = idleAdvance
	c.Enrich.Stream.IdleClockSpeed = 200 // 10 min of idle clock = 3 s of wall clock
	c.Sink.GroupID = "mxtrail-bench-" + id + "-sink"
	return c
}

func writeConfig(path string, c config.Config) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode the stages' config: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write the stages' config: %w", err)
	}
	if _, err := config.Load(path); err != nil {
		return fmt.Errorf("the stages' config %s does not load: %w", path, err)
	}
	return nil
}

type sample struct {
	part    int
	offset  int64
	visible time.Time
}

// Run runs the bench and returns its result (also written under ResultsDir when set).
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("bench options: %w", err)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	res := &Result{Started: now().UTC(), Commit: gitCommit(o.RepoDir), Machine: machine()}
	fleetDir, sum, err := fleet(ctx, &o, now(), progress)
	if err != nil {
		return nil, err
	}
	res.Lines, res.Bytes = int64(sum.Total.Lines), sum.Total.Bytes

	var hosts []string
	for _, h := range sum.Hosts {
		hosts = append(hosts, h.Host)
	}
	if o.Partitions == 0 {
		o.Partitions = hostPartitions(hosts, MinPartitions, maxAutoPartitions)
	}
	if shared := sharedPartitions(hosts, o.Partitions); len(shared) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("hosts share raw partitions (%s): replayed at full speed, one host's file can run minutes of event time ahead of another's on the same partition, move the watermark and split the other's sessions", strings.Join(shared, "; ")))
	}

	id := runID()
	db := "mxtrail_bench_" + id
	runDir := o.WorkDir
	if runDir == "" {
		if runDir, err = os.MkdirTemp("", "mxtrail-bench-"); err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
	} else {
		runDir = filepath.Join(runDir, id)
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
	}
	cc := childConfig(o.Config, o.IdleAdvance, id, db, runDir, fleetDir, sum)
	res.Run = RunConfig{Lines: o.Lines, Seed: o.Seed, Hosts: o.Hosts, Partitions: o.Partitions, Brokers: cc.Kafka.Brokers,
		ClickHouse: o.ClickHouse.Addrs, Database: db, RawTopic: cc.Kafka.Topics.Raw, GrokSample: o.GrokSample,
		ShipCompression: cc.Ship.Compression, SinkBatchRows: cc.Sink.BatchRows}
	cfgPath := filepath.Join(runDir, "mxtrail.yaml")
	if err := writeConfig(cfgPath, cc); err != nil {
		return nil, err
	}

	ka := newKafkaAdmin(cc.Kafka.Brokers, o.Transport)
	t := cc.Kafka.Topics
	outParts := max(1, o.Partitions/2)
	topicParts := map[string]int{t.Raw: o.Partitions, t.Sessions: outParts, t.Events: outParts, t.DeadLetter: outParts, t.Alerts: outParts}
	if err := ka.createTopics(ctx, topicParts); err != nil {
		return nil, err
	}
	chc := o.ClickHouse
	chc.Database = ""
	conn, err := chsink.Open(ctx, chc)
	if err != nil {
		return nil, fmt.Errorf("connect to clickhouse: %w", err)
	}
	defer conn.Close()
	cleanup := func() {
		if o.Keep {
			fmt.Fprintf(progress, "bench: kept topics mxtrail.bench.%s.*, database %s and %s\n", id, db, runDir)
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ka.deleteTopics(cctx, []string{t.Raw, t.Sessions, t.Events, t.DeadLetter, t.Alerts}); err != nil {
			fmt.Fprintf(progress, "bench: %v\n", err)
		}
		if err := conn.Exec(cctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			fmt.Fprintf(progress, "bench: drop database %s: %v\n", db, err)
		}
		os.RemoveAll(runDir)
	}
	defer cleanup()
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return nil, fmt.Errorf("clickhouse version: %w", err)
	}
	res.Machine.ClickHouse = version

	env := append(childEnv(), o.ExeEnv...)
	if err := runOnce(ctx, o.Exe, o.ExeArgs, []string{"migrate", "--config", cfgPath}, env, runDir); err != nil {
		return nil, err
	}

	kPid, kCmd := findServer(filepath.Join(o.StateDir, "kafka", "kafka.pid"), kafkaProc)
	res.Machine.Kafka = kafkaVersion(kCmd)
	cPid, _ := findServer(filepath.Join(o.StateDir, "clickhouse", "clickhouse.pid"), clickhouseProc)
	if kPid == 0 {
		res.Notes = append(res.Notes, "broker process not found on this machine: its CPU is not measured")
	}
	if cPid == 0 {
		res.Notes = append(res.Notes, "clickhouse-server process not found on this machine: its CPU is not measured")
	}
	// The servers may be shared (other tests, other users): their CPU rate over a short window
	// before the run is taken as background and subtracted from what they used during it.
	kb, cb := backgroundCPU(ctx, kPid, cPid, o.Background)
	k0, _ := cpuOf(kPid)
	c0, _ := cpuOf(cPid)
	m0, mt0, _ := machineCPU()
	b0 := selfCPU()
	t0 := time.Now()

	children := map[string]*child{}
	stopAll := func() {
		for _, n := range []string{"ship", "enrich", "sink"} {
			if c := children[n]; c != nil {
				c.stop(60 * time.Second)
			}
		}
	}
	defer stopAll()
	for _, n := range []string{"enrich", "sink", "ship"} {
		args := slices.Concat(o.ExeArgs, []string{n, "--config", cfgPath})
		if o.ProfileDir != "" {
			args = append(args, "--cpuprofile", filepath.Join(o.ProfileDir, n+".cpu.prof"))
		}
		c, err := startChild(n, o.Exe, args, env, runDir)
		if err != nil {
			return nil, err
		}
		children[n] = c
	}

	every := o.LatencyEvery
	if every <= 0 { // about 1,000 samples: sessions' last offsets fall on any residue alike
		every = max(1, int64(sum.Total.Sessions)/1000)
	}
	res.Latency.Every, res.Latency.Pollms = every, float64(o.Poll)/float64(time.Millisecond)
	w, err := watch(ctx, &o, ka, conn, cc, db, outParts, sum, every, children, progress, now)
	if err != nil {
		stopAll()
		return nil, withLogs(err, children)
	}
	// Stop upstream first: what each stage holds drains into the next before it stops.
	for _, n := range []string{"ship", "enrich", "sink"} {
		children[n].stop(60 * time.Second)
	}
	k1, _ := cpuOf(kPid)
	c1, _ := cpuOf(cPid)
	during := time.Since(t0)
	res.BenchCPUSeconds = (selfCPU() - b0).Seconds()
	if m1, mt1, err := machineCPU(); err == nil && mt1 > mt0 {
		res.MachineBusy = float64(m1-m0) / float64(mt1-mt0)
	}
	res.MaxLag.Enrich, res.MaxLag.Sink = w.maxEnrichLag, w.maxSinkLag
	res.Timeline = w.timeline

	// correctness
	// the truth is read only now: during the run the bench's own heap competes with the stages
	truth, err := readTruth(fleetDir)
	if err != nil {
		return nil, err
	}
	if len(truth) != sum.Total.Sessions {
		return nil, fmt.Errorf("truth file holds %d sessions, summary says %d", len(truth), sum.Total.Sessions)
	}
	cor, err := correctness(ctx, conn, db, truth)
	if err != nil {
		return nil, err
	}
	res.Correctness = cor
	if n := len(w.timeline); n > 0 {
		res.Correctness.RawRecords = w.timeline[n-1].Shipped
		if d := res.Correctness.RawRecords - res.Lines; d != 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("the raw topic holds %d records for %d lines: the shipper wrote %+d (a retried produce writes a batch twice)", res.Correctness.RawRecords, res.Lines, d))
		}
	}
	res.EnrichGenerations = countLines(children["enrich"].logPath, "msg=\"consumer group generation\"")
	if res.EnrichGenerations > 1 {
		res.Notes = append(res.Notes, fmt.Sprintf("the enricher's consumer group went through %d generations (a rebalance: a member missed its heartbeats, e.g. starved of CPU): "+
			"records are re-delivered from the last commit, and kafka-go can first hand out stale records of the old generation (issue #1398), "+
			"which start sessions at another first line and so under another session_id", res.EnrichGenerations))
	}
	sinkRows := cor.Rows + cor.Events + cor.DeadLetters
	for _, n := range []string{"ship", "enrich", "sink"} {
		c := children[n]
		cpu, rss := c.usage()
		st := Stage{Name: n, Per: "line", Units: res.Lines, CPUSeconds: cpu.Seconds(), PeakRSSMiB: float64(rss) / 1024, Killed: c.killed}
		if n == "sink" {
			st.Per, st.Units = "row", sinkRows
		}
		if st.Units > 0 && cpu > 0 {
			st.CPUMicros = cpu.Seconds() * 1e6 / float64(st.Units)
			st.UnitsPerCPUSecond = float64(st.Units) / cpu.Seconds()
		}
		res.Stages = append(res.Stages, st)
	}
	res.Kafka = serverCPU(kPid, k0, k1, kb, during, res.Lines)
	res.ClickHouse = serverCPU(cPid, c0, c1, cb, during, res.Lines)
	for _, s := range []struct {
		name string
		s    Server
	}{{"Kafka broker", res.Kafka}, {"ClickHouse server", res.ClickHouse}} {
		if s.s.BackgroundCPUSeconds > 0.2*s.s.RawCPUSeconds && s.s.RawCPUSeconds > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("the %s was busy before the run (%.2f cores): %.1f of its %.1f CPU-s during the run are counted as someone else's; its figure is an estimate", s.name, s.s.BackgroundCores, s.s.BackgroundCPUSeconds, s.s.RawCPUSeconds))
		}
	}

	// wall clock and latency from the raw records' ingest times
	want := map[int][]int64{}
	for _, s := range w.samples {
		want[s.part] = append(want[s.part], s.offset)
	}
	times, err := ka.ingestTimes(ctx, t.Raw, o.Partitions, want)
	if err != nil {
		return nil, err
	}
	var first time.Time
	for _, m := range times {
		if t0, ok := m[0]; ok && (first.IsZero() || t0.Before(first)) {
			first = t0
		}
	}
	if first.IsZero() {
		return nil, errors.New("no ingest_time on the first raw records: cannot time the run")
	}
	res.WallSeconds = w.lastVisible.Sub(first).Seconds()
	if res.WallSeconds > 0 {
		res.LinesPerSec = float64(res.Lines) / res.WallSeconds
	}
	var lat []float64
	for _, s := range w.samples {
		if it, ok := times[s.part][s.offset]; ok {
			lat = append(lat, float64(s.visible.Sub(it))/float64(time.Millisecond))
		}
	}
	sort.Float64s(lat)
	res.Latency.Samples = len(lat)
	if len(lat) > 0 {
		res.Latency.P50ms, res.Latency.P99ms, res.Latency.Maxms = quantile(lat, 0.50), quantile(lat, 0.99), lat[len(lat)-1]
	}

	// baselines, after the pipeline stopped so they have the machine to themselves
	fmt.Fprintf(progress, "bench: baseline (a): %d lines through default-pattern grok in sequence\n", o.GrokSample)
	lines, err := sampleLines(fleetDir, sum, o.GrokSample)
	if err != nil {
		return nil, err
	}
	if res.Grok, err = grokBaseline(lines, fleetStart(res.Started).Year()); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "bench: baseline (b): %d session rows inserted by clickhouse-client in Native format\n", cor.Rows)
	if res.Native, err = nativeBaseline(ctx, &o, conn, db, runDir, cPid); err != nil {
		return nil, err
	}
	ratios(res)
	targets(res)
	res.Bottleneck = bottleneck(res)
	return res, nil
}

func cpuOf(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, errors.New("no pid")
	}
	return procCPU(pid)
}

// backgroundCPU is the CPU rate (cores) of the two server processes over window, before the
// pipeline starts.
func backgroundCPU(ctx context.Context, kPid, cPid int, window time.Duration) (kafka, clickhouse float64) {
	if window <= 0 {
		return 0, 0
	}
	k0, kerr := cpuOf(kPid)
	c0, cerr := cpuOf(cPid)
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return 0, 0
	case <-time.After(window):
	}
	k1, _ := cpuOf(kPid)
	c1, _ := cpuOf(cPid)
	el := time.Since(t0).Seconds()
	if kerr == nil && k1 > k0 {
		kafka = (k1 - k0).Seconds() / el
	}
	if cerr == nil && c1 > c0 {
		clickhouse = (c1 - c0).Seconds() / el
	}
	return kafka, clickhouse
}

// serverCPU is what a server used during the run: its CPU between before and after, less its
// background rate (cores) over the run's duration.
func serverCPU(pid int, before, after time.Duration, background float64, during time.Duration, lines int64) Server {
	s := Server{Pid: pid, BackgroundCores: background}
	if pid == 0 || after < before {
		return s
	}
	s.RawCPUSeconds = (after - before).Seconds()
	s.BackgroundCPUSeconds = min(background*during.Seconds(), s.RawCPUSeconds)
	s.CPUSeconds = s.RawCPUSeconds - s.BackgroundCPUSeconds
	if lines > 0 {
		s.CPUMicros = s.CPUSeconds * 1e6 / float64(lines)
	}
	return s
}

// quantile is the nearest-rank q-quantile of sorted (the smallest value with at least q of
// the samples at or below it).
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func runOnce(ctx context.Context, exe string, pre, args, env []string, dir string) error {
	c, err := startChild(args[0], exe, slices.Concat(pre, args), env, dir)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		c.stop(10 * time.Second)
		return ctx.Err()
	}
	if c.err != nil {
		return fmt.Errorf("mxtrail %s: %w\n%s", strings.Join(args, " "), c.err, c.logTail(2000))
	}
	return nil
}

func withLogs(err error, children map[string]*child) error {
	var b strings.Builder
	for _, n := range []string{"ship", "enrich", "sink"} {
		if c := children[n]; c != nil {
			fmt.Fprintf(&b, "\n--- last lines of mxtrail %s ---\n%s", n, c.logTail(1500))
		}
	}
	return fmt.Errorf("%w%s", err, b.String())
}

// watched is what the poll loop saw.
type watched struct {
	samples      []sample
	lastVisible  time.Time
	rows         uint64
	maxEnrichLag int64
	maxSinkLag   int64
	timeline     []Point
}

// Point is the pipeline's state at one poll (about one a second is kept): the shape of the
// lags over time shows which stage falls behind, not only how far at worst.
type Point struct {
	Seconds   float64 `json:"s"` // since the stages started
	Shipped   int64   `json:"shipped"`
	EnrichLag int64   `json:"enrich_lag"`
	SinkLag   int64   `json:"sink_lag"`
	Sessions  uint64  `json:"sessions"`
}

// watch polls until the pipeline is done: every line shipped, both groups caught up, and the
// sessions table at the truth count (or not growing for Quiet with everything caught up).
func watch(ctx context.Context, o *Options, ka *kafkaAdmin, conn driver.Conn, cc config.Config, db string, outParts int,
	sum *gen.Summary, every int64, children map[string]*child, progress io.Writer, now func() time.Time) (*watched, error) {
	t := cc.Kafka.Topics
	w := &watched{}
	seen := map[[2]int64]bool{}
	deadline := now().Add(o.Timeout)
	lastGrowth := now()
	lastPrint := time.Time{}
	began := now()
	var lastCount uint64
	var kafkaErrSince time.Time
	truth := uint64(sum.Total.Sessions)
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		for n, c := range children {
			if c.exited() {
				return nil, fmt.Errorf("mxtrail %s exited during the run: %v", n, c.err)
			}
			c.sampleRSS()
		}
		pollAt := now()
		var count uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".sessions").Scan(&count); err != nil {
			return nil, fmt.Errorf("poll sessions: %w", err)
		}
		if count > lastCount {
			rows, err := conn.Query(ctx, "SELECT last_source, last_offset FROM "+db+".sessions WHERE last_offset % "+strconv.FormatInt(every, 10)+" = 0")
			if err != nil {
				return nil, fmt.Errorf("poll latency sample: %w", err)
			}
			for rows.Next() {
				var src string
				var off int64
				if err := rows.Scan(&src, &off); err != nil {
					rows.Close()
					return nil, fmt.Errorf("poll latency sample: %w", err)
				}
				topic, p, ok := parseSource(src)
				if !ok || topic != t.Raw {
					continue
				}
				k := [2]int64{int64(p), off}
				if !seen[k] {
					seen[k] = true
					w.samples = append(w.samples, sample{part: p, offset: off, visible: pollAt})
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("poll latency sample: %w", err)
			}
			lastCount, w.lastVisible, lastGrowth = count, pollAt, pollAt
		}
		w.rows = count
		shipped, enrichLag, sinkLag, err := lags(ctx, ka, cc, o.Partitions, outParts)
		if err != nil {
			// metadata of fresh topics lags for a moment; a broker hiccup is not the end
			if kafkaErrSince.IsZero() {
				kafkaErrSince = pollAt
			}
			if pollAt.Sub(kafkaErrSince) > 30*time.Second {
				return nil, err
			}
			continue
		}
		kafkaErrSince = time.Time{}
		w.maxEnrichLag, w.maxSinkLag = max(w.maxEnrichLag, enrichLag), max(w.maxSinkLag, sinkLag)
		pt := Point{Seconds: math.Round(pollAt.Sub(began).Seconds()*10) / 10, Shipped: shipped, EnrichLag: enrichLag, SinkLag: sinkLag, Sessions: count}
		if len(w.timeline) == 0 || pt.Seconds-w.timeline[len(w.timeline)-1].Seconds >= 1 {
			w.timeline = append(w.timeline, pt)
		}
		done := func() (*watched, error) { // the last state is always in the timeline
			if w.timeline[len(w.timeline)-1] != pt {
				w.timeline = append(w.timeline, pt)
			}
			return w, nil
		}
		if pollAt.Sub(lastPrint) >= 2*time.Second {
			el := pollAt.Sub(began).Seconds()
			fmt.Fprintf(progress, "bench: %5.0fs shipped %d/%d lines (%.0f/s), enrich lag %d, sink lag %d, sessions in ClickHouse %d/%d\n",
				el, shipped, sum.Total.Lines, float64(shipped)/el, enrichLag, sinkLag, count, truth)
			lastPrint = pollAt
		}
		caughtUp := shipped >= int64(sum.Total.Lines) && enrichLag == 0 && sinkLag == 0
		if caughtUp && count >= truth {
			var uniq uint64
			if err := conn.QueryRow(ctx, "SELECT uniqExact(session_id) FROM "+db+".sessions").Scan(&uniq); err != nil {
				return nil, fmt.Errorf("poll sessions: %w", err)
			}
			if uniq >= truth {
				return done()
			}
		}
		if caughtUp && pollAt.Sub(lastGrowth) > o.Quiet {
			return done() // correctness reports what is missing
		}
		if pollAt.After(deadline) {
			return nil, fmt.Errorf("pipeline not done after %v: shipped %d/%d lines, enrich lag %d, sink lag %d, %d/%d sessions",
				o.Timeout, shipped, sum.Total.Lines, enrichLag, sinkLag, count, truth)
		}
	}
}

// lags is the raw topic's total end offset (lines shipped) and both groups' lags.
func lags(ctx context.Context, ka *kafkaAdmin, cc config.Config, rawParts, outParts int) (shipped, enrichLag, sinkLag int64, err error) {
	t := cc.Kafka.Topics
	if shipped, enrichLag, err = ka.lag(ctx, cc.Enrich.Stream.GroupID, t.Raw, rawParts); err != nil {
		return 0, 0, 0, err
	}
	for _, topic := range []string{t.Sessions, t.Events, t.DeadLetter, t.Alerts} {
		_, l, err := ka.lag(ctx, cc.Sink.GroupID, topic, outParts)
		if err != nil {
			return 0, 0, 0, err
		}
		sinkLag += l
	}
	return shipped, enrichLag, sinkLag, nil
}

func correctness(ctx context.Context, conn driver.Conn, db string, truth []gen.Truth) (Correctness, error) {
	c := Correctness{Truth: len(truth)}
	var rows, uniq, final, events, dead uint64
	for _, q := range []struct {
		sql string
		dst *uint64
	}{
		{"SELECT count() FROM " + db + ".sessions", &rows},
		{"SELECT uniqExact(session_id) FROM " + db + ".sessions", &uniq},
		{"SELECT count() FROM " + db + ".sessions FINAL", &final},
		{"SELECT count() FROM " + db + ".events", &events},
		{"SELECT count() FROM " + db + ".deadletter", &dead},
	} {
		if err := conn.QueryRow(ctx, q.sql).Scan(q.dst); err != nil {
			return c, fmt.Errorf("correctness query %q: %w", q.sql, err)
		}
	}
	c.Rows, c.Unique, c.Final, c.Events, c.DeadLetters = int64(rows), int64(uniq), int64(final), int64(events), int64(dead)
	c.DupBefore, c.DupAfter = c.Rows-c.Unique, c.Final-c.Unique
	recs, err := sessionRecords(ctx, conn, db)
	if err != nil {
		return c, err
	}
	cmp := gen.Compare(truth, recs)
	c.Matched, c.Agree, c.Mismatched, c.Lost, c.Extra = cmp.Matched, cmp.Agree, len(cmp.Mismatches), len(cmp.Missing), len(cmp.Extra)
	c.OK = c.Lost == 0 && c.Extra == 0 && c.DupAfter == 0 && c.Unique == int64(c.Truth)
	for i, t := range cmp.Missing {
		if i == 3 {
			break
		}
		c.Examples = append(c.Examples, fmt.Sprintf("lost: %s %s key %q start %s outcome %s (%d lines)", t.Host, t.Product, t.SessionKey, t.StartTime.Format(time.RFC3339), t.Outcome, t.Lines))
	}
	for i, ri := range cmp.Extra {
		if i == 3 {
			break
		}
		r := &recs[ri]
		c.Examples = append(c.Examples, fmt.Sprintf("extra: %s %s key %q start %s outcome %s closed by %s, %d events", r.Host, r.Product, r.SessionKey, r.StartTime.Format(time.RFC3339), r.Outcome, r.ClosedBy, r.EventCount))
	}
	for i, m := range cmp.Mismatches {
		if i == 3 {
			break
		}
		c.Examples = append(c.Examples, fmt.Sprintf("mismatch: %s %s key %q start %s: %s want %s got %s", m.Truth.Host, m.Truth.Product, m.Truth.SessionKey, m.Truth.StartTime.Format(time.RFC3339), m.Field, m.Want, m.Got))
	}
	return c, nil
}

// sessionRecords reads the deduplicated rows back as records, with the fields gen.Compare pairs
// and checks on.
func sessionRecords(ctx context.Context, conn driver.Conn, db string) ([]record.Session, error) {
	rows, err := conn.Query(ctx, "SELECT host, product, session_key, start_time, outcome, permanent, delivery, rcpt_address, rcpt_outcome, closed_by, event_count FROM "+db+".sessions FINAL")
	if err != nil {
		return nil, fmt.Errorf("read sessions back: %w", err)
	}
	defer rows.Close()
	var out []record.Session
	for rows.Next() {
		var r record.Session
		var outcome, delivery, closedBy string
		var perm uint8
		var events uint32
		var addrs, outs []string
		if err := rows.Scan(&r.Host, &r.Product, &r.SessionKey, &r.StartTime, &outcome, &perm, &delivery, &addrs, &outs, &closedBy, &events); err != nil {
			return nil, fmt.Errorf("read sessions back: %w", err)
		}
		r.Outcome, r.Delivery, r.Permanent = record.Outcome(outcome), record.Delivery(delivery), perm != 0
		r.ClosedBy, r.EventCount = record.ClosedBy(closedBy), int(events)
		for i := range addrs {
			rc := record.Recipient{Address: addrs[i]}
			if i < len(outs) {
				rc.Outcome = record.Outcome(outs[i])
			}
			r.Recipients = append(r.Recipients, rc)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// countLines counts the lines of path that contain sub (0 when it cannot be read).
func countLines(path, sub string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), sub)
}
