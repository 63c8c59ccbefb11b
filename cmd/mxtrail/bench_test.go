package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/benchrun"
	"github.com/mxtrail/mxtrail/internal/config"
	"github.com/mxtrail/mxtrail/internal/testenv"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
)

// benchStageEnv makes this test binary behave as the mxtrail binary when the bench starts it
// as a stage (`<test binary> -test.run=^TestBenchStageHelper$ -- enrich --config ...`), so the
// test needs no separate build and the stages carry the race detector when the test does.
const benchStageEnv = "MXTRAIL_BENCH_TEST_STAGE"

// TestBenchStageHelper is not a test: it is the entry point of the stages the bench starts
// from this test binary.
func TestBenchStageHelper(t *testing.T) {
	if os.Getenv(benchStageEnv) != "1" {
		t.Skip("entry point of the bench's stages when run by TestBenchIntegration")
	}
	os.Exit(dispatch(flag.Args(), os.Stdin, os.Stdout, os.Stderr))
}

// TestBenchIntegration runs `mxtrail bench` on 50k generated lines against the real local
// stack: the correctness fields must show every true session once (0 lost, 0 extra, 0
// duplicated after dedup), every figure must be present and positive, and the JSON, the
// Markdown table and the README block must be written. Speed is not asserted (a test is no
// benchmark, and the stages run with the race detector here).
func TestBenchIntegration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	chAddrs := testenv.ClickHouseAddrs(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Kafka.Brokers, cfg.ClickHouse.Addrs = brokers, chAddrs
	// race-enabled stages on a loaded machine can miss heartbeats for the default 6 s: a
	// rebalance then re-delivers records (at least once) and can re-emit sessions under
	// another id, which this test would report as extra rows; it is not what it tests
	cfg.Enrich.Stream.SessionTimeout = 30 * time.Second
	o := benchrun.Defaults()
	dir := t.TempDir()
	o.Exe, o.ExeArgs, o.ExeEnv = exe, []string{"-test.run=^TestBenchStageHelper$", "--"}, []string{benchStageEnv + "=1"}
	o.Config, o.ClickHouse = cfg, connConfig(cfg)
	o.Lines, o.GrokSample = 50_000, 1_000 // default-pattern grok runs ~500 lines/s under -race
	o.DataDir, o.WorkDir, o.StateDir, o.RepoDir = filepath.Join(dir, "data"), filepath.Join(dir, "work"), testenv.StateDir(), testenv.RepoDir()
	o.Timeout = 10 * time.Minute
	// the race detector slows the stages several times: a partition waiting its turn for the
	// CPU must not look idle (60 min at 200x = 18 s of wall clock)
	o.IdleAdvance = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	res, err := benchrun.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	benchrun.Text(&sb, res)
	t.Log("\n" + sb.String())

	c := res.Correctness
	if c.RawRecords < res.Lines {
		t.Errorf("raw topic holds %d records for %d lines", c.RawRecords, res.Lines)
	} else if c.RawRecords > res.Lines { // at least once: a retried produce may write a batch twice
		t.Logf("raw topic holds %d records for %d lines", c.RawRecords, res.Lines)
	}
	if res.EnrichGenerations != 1 {
		t.Logf("the enricher's group rebalanced: %d generations", res.EnrichGenerations)
	}
	if !c.OK || c.Lost != 0 || c.Extra != 0 || c.DupAfter != 0 || c.Unique != int64(c.Truth) || c.Matched != c.Truth || c.Truth < 5000 {
		t.Errorf("correctness: %+v", c)
	}
	if c.Agree != c.Truth {
		t.Errorf("%d of %d sessions disagree with the truth on outcome, recipients, permanence or delivery", c.Truth-c.Agree, c.Truth)
	}
	if res.Lines < 45_000 || res.Lines > 55_000 {
		t.Errorf("lines %d, want about 50000", res.Lines)
	}
	positive := map[string]float64{
		"lines/s": res.LinesPerSec, "wall": res.WallSeconds,
		"kafka cpu": res.Kafka.RawCPUSeconds, "clickhouse cpu": res.ClickHouse.RawCPUSeconds,
		"latency samples": float64(res.Latency.Samples), "p50": res.Latency.P50ms,
		"grok lines/s": res.Grok.LinesPerCoreSec, "router lines/s": res.Grok.RouterLinesPerCoreSec,
		"native rows/s": res.Native.RowsPerSec, "enricher vs grok": res.Ratios.EnricherVsGrok,
		"sink vs native": res.Ratios.SinkVsNative, "ram": float64(res.Machine.RAMMiB), "machine busy": res.MachineBusy, "bench cpu": res.BenchCPUSeconds, "cores": float64(res.Machine.Cores),
	}
	if len(res.Stages) != 3 {
		t.Fatalf("stages: %+v", res.Stages)
	}
	for _, s := range res.Stages {
		positive[s.Name+" cpu µs"], positive[s.Name+" rss"], positive[s.Name+" units"] = s.CPUMicros, s.PeakRSSMiB, float64(s.Units)
		if s.Killed {
			t.Errorf("%s did not stop on SIGTERM", s.Name)
		}
	}
	for k, v := range positive {
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", k, v)
		}
	}
	// the servers are shared with the other packages' tests: what is left after subtracting
	// their background may be anything from 0 to what they used
	for _, s := range []benchrun.Server{res.Kafka, res.ClickHouse} {
		if s.CPUSeconds < 0 || s.CPUSeconds > s.RawCPUSeconds || s.BackgroundCPUSeconds < 0 || s.Pid == 0 {
			t.Errorf("server CPU out of range: %+v", s)
		}
	}
	if res.Latency.P99ms < res.Latency.P50ms || res.Latency.Maxms < res.Latency.P99ms {
		t.Errorf("latency quantiles out of order: %+v", res.Latency)
	}
	if n := len(res.Timeline); n < 2 || res.Timeline[n-1].Shipped < res.Lines || res.Timeline[n-1].EnrichLag != 0 || res.Timeline[n-1].Sessions < uint64(c.Truth) {
		t.Errorf("timeline does not end with everything shipped, enriched and written: %+v", res.Timeline)
	}
	if res.Native.Rows != c.Final {
		t.Errorf("native baseline inserted %d rows, the table holds %d", res.Native.Rows, c.Final)
	}
	if res.Grok.RouterParsed == 0 || res.Grok.Matched == 0 {
		t.Errorf("baseline parsed nothing: %+v", res.Grok)
	}
	for k, v := range map[string]string{"kafka": res.Machine.Kafka, "clickhouse": res.Machine.ClickHouse, "cpu": res.Machine.CPU, "kernel": res.Machine.Kernel, "commit": res.Commit, "bottleneck": res.Bottleneck} {
		if v == "" || v == "unknown" {
			t.Errorf("%s is %q", k, v)
		}
	}
	if len(res.Targets) != 6 {
		t.Errorf("targets: %+v", res.Targets)
	}

	results := filepath.Join(dir, "results")
	jp, mp, err := benchrun.Write(results, res)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(jp)
	if err != nil {
		t.Fatal(err)
	}
	var back benchrun.Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("results JSON does not parse: %v", err)
	}
	if !reflect.DeepEqual(back.Correctness, res.Correctness) || back.LinesPerSec != res.LinesPerSec || len(back.Stages) != 3 {
		t.Errorf("results JSON lost figures: %+v", back)
	}
	md, err := os.ReadFile(mp)
	if err != nil || !strings.Contains(string(md), "| end to end") || !strings.Contains(string(md), "Bottleneck:") {
		t.Errorf("latest.md: %v\n%s", err, md)
	}
	readme := filepath.Join(dir, "README.md")
	if err := os.WriteFile(readme, []byte("# x\n\n"+benchrun.ReadmeBegin+"\nold\n"+benchrun.ReadmeEnd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := benchrun.UpdateReadme(readme, string(md)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(readme); !strings.Contains(string(b), benchrun.ReadmeBegin+"\n"+strings.TrimSpace(string(md))+"\n"+benchrun.ReadmeEnd) {
		t.Errorf("README block not rewritten:\n%s", b)
	}
	// nothing left behind on the shared servers
	conn, err := chsink.Open(ctx, o.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var dbs uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = '"+res.Run.Database+"'").Scan(&dbs); err != nil || dbs != 0 {
		t.Errorf("database %s left behind (%d, %v)", res.Run.Database, dbs, err)
	}
	kc, err := kafka.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	// all topics' metadata (asking for the topic by name would re-create it: the local broker
	// auto-creates topics); deletion is asynchronous, so give the broker a moment
	prefix := strings.TrimSuffix(res.Run.RawTopic, "raw")
	for i := 0; ; i++ {
		ps, err := kc.ReadPartitions()
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, p := range ps {
			if strings.HasPrefix(p.Topic, prefix) && !slices.Contains(left, p.Topic) {
				left = append(left, p.Topic)
			}
		}
		if len(left) == 0 {
			break
		}
		if i == 40 {
			t.Errorf("topics left behind: %v", left)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(o.WorkDir)); err == nil {
		if ents, _ := os.ReadDir(o.WorkDir); len(ents) > 0 {
			t.Errorf("run directory left behind: %v", ents)
		}
	}
}

// Bad flags and a missing broker are reported at once, before anything is generated.
func TestBenchFlags(t *testing.T) {
	t.Setenv("MXTRAIL_KAFKA_BROKERS", "")
	var out, errOut strings.Builder
	if rc := dispatch([]string{"bench", "--lines", "10", "--hosts", "0", "--data", t.TempDir()}, nil, &out, &errOut); rc != 2 {
		t.Errorf("exit %d, want 2", rc)
	}
	for _, want := range []string{"kafka.brokers", "real broker", "lines 10", "hosts 0"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	errOut.Reset()
	if rc := dispatch([]string{"bench", "--update-readme", "--results", ""}, nil, &out, &errOut); rc != 2 || !strings.Contains(errOut.String(), "--update-readme needs --results") {
		t.Errorf("exit %d: %s", rc, errOut.String())
	}
	errOut.Reset()
	if rc := dispatch([]string{"bench", "extra"}, nil, &out, &errOut); rc != 2 || !strings.Contains(errOut.String(), `unexpected argument "extra"`) {
		t.Errorf("exit %d: %s", rc, errOut.String())
	}
	if out.Len() != 0 {
		t.Errorf("stdout: %s", out.String())
	}
}
