package benchrun

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/gen"
	"github.com/mxtrail/mxtrail/enrich/parse"
)

// The generator's default fleet: with 12 partitions imail07 and srv02 share one (the split
// sessions seen in the first bench runs); the automatic choice separates every host.
func TestHostPartitions(t *testing.T) {
	hosts := []string{"gw01", "srv02", "mx03", "qm04", "mswitch05", "me06", "imail07", "gw08", "srv09", "mx10"}
	shared := sharedPartitions(hosts, 12)
	if !slices.Contains(shared, "10: imail07, srv02") {
		t.Errorf("12 partitions: shared %q, want imail07 and srv02 on partition 10", shared)
	}
	n := hostPartitions(hosts, MinPartitions, maxAutoPartitions)
	if n < MinPartitions || len(sharedPartitions(hosts, n)) != 0 {
		t.Fatalf("automatic partitions %d: shared %q", n, sharedPartitions(hosts, n))
	}
	seen := map[int]string{}
	for _, h := range hosts {
		p := partitionOf(h, n)
		if p < 0 || p >= n {
			t.Fatalf("%s -> partition %d of %d", h, p, n)
		}
		if o, ok := seen[p]; ok {
			t.Errorf("%s and %s share partition %d of %d", h, o, p, n)
		}
		seen[p] = h
	}
	for m := MinPartitions; m < n; m++ {
		if len(sharedPartitions(hosts, m)) == 0 {
			t.Errorf("%d partitions already separate the hosts, the choice was %d", m, n)
		}
	}
	// more hosts than the bound allows to separate: the lower bound, reported as shared
	many := make([]string, 40)
	for i := range many {
		many[i] = "h" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	if got := hostPartitions(many, 12, 40); got != 12 && len(sharedPartitions(many, got)) != 0 {
		t.Errorf("40 hosts over at most 40 partitions: got %d with shares %q", got, sharedPartitions(many, got))
	}
}

// The bench ships one merged file per host: every generated line exactly once, parsed lines in
// event-time order; a second run with the same options reuses the fleet.
func TestFleetMerge(t *testing.T) {
	dir := t.TempDir()
	o := Options{Seed: 7, Hosts: 10, Lines: 6000, DataDir: filepath.Join(dir, "data")}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var log strings.Builder
	fd, sum, err := fleet(context.Background(), &o, now, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Hosts) != 10 || sum.Total.Lines < 5000 {
		t.Fatalf("summary: %d hosts, %d lines", len(sum.Hosts), sum.Total.Lines)
	}
	truth, err := readTruth(fd)
	if err != nil || len(truth) != sum.Total.Sessions {
		t.Fatalf("truth: %d records, summary %d sessions, %v", len(truth), sum.Total.Sessions, err)
	}

	// the same fleet generated again, unmerged, as the reference
	g := gen.Defaults()
	g.Seed, g.Hosts, g.Lines, g.Start, g.OutDir = o.Seed, o.Hosts, o.Lines, fleetStart(now), filepath.Join(dir, "ref")
	ref, err := gen.Generate(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parse.New(parse.Options{DefaultYear: fleetStart(now).Year(), Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	products := map[string]bool{}
	for _, h := range ref.Hosts {
		products[h.Product] = true
		var want []string
		for _, f := range ref.Files {
			if f.Host == h.Host {
				want = append(want, readLines(t, filepath.Join(g.OutDir, f.Name))...)
			}
		}
		got := readLines(t, filepath.Join(fd, mergedName(h.Host)))
		// order: parsed lines never go back in time
		var last time.Time
		var ev event.Event
		src := event.Source{Host: h.Host, Loc: time.UTC}
		parsed := 0
		for i, l := range got {
			p.Parse(&ev, []byte(l), &src)
			if !ev.Parsed {
				continue
			}
			parsed++
			// a syslog stamp (whole seconds) may follow a qmail-send one (microseconds) of
			// the same second in its file
			if ev.Time.Before(last.Truncate(time.Second)) {
				t.Errorf("%s line %d goes back in time: %s after %s: %q", h.Host, i+1, ev.Time, last, l)
				break
			}
			if ev.Time.After(last) {
				last = ev.Time
			}
		}
		if parsed < len(got)*9/10 {
			t.Errorf("%s: only %d of %d merged lines parse", h.Host, parsed, len(got))
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s: merged file holds %d lines, the generator wrote %d (or different ones)", h.Host, len(got), len(want))
		}
	}
	if len(products) < 5 {
		t.Errorf("fleet covers only %d products", len(products))
	}

	log.Reset()
	fd2, sum2, err := fleet(context.Background(), &o, now, &log)
	if err != nil || fd2 != fd || sum2.Total.Lines != sum.Total.Lines || !strings.Contains(log.String(), "reusing") {
		t.Errorf("second run: %s %v %v %q", fd2, sum2, err, log.String())
	}
	// an interrupted generation is not reused
	if err := os.Remove(filepath.Join(fd, fleetDone)); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if _, _, err := fleet(context.Background(), &o, now, &log); err != nil || strings.Contains(log.String(), "reusing") {
		t.Errorf("incomplete fleet reused: %v %q", err, log.String())
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFleetStart(t *testing.T) {
	for _, c := range []struct {
		now  string
		want int
	}{{"2026-11-23", 2026}, {"2026-04-01", 2026}, {"2026-03-31", 2025}, {"2027-01-02", 2026}} {
		now, _ := time.Parse("2006-01-02", c.now)
		if got := fleetStart(now); got.Year() != c.want || got.Month() != time.March || got.After(now) {
			t.Errorf("fleetStart(%s) = %s, want March %d, not after now", c.now, got, c.want)
		}
	}
}

func TestReplaceBlock(t *testing.T) {
	doc := "# title\n\n" + ReadmeBegin + "\nold table\n" + ReadmeEnd + "\n\nafter\n"
	out, err := replaceBlock([]byte(doc), "| new | table |\n\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# title\n\n" + ReadmeBegin + "\n| new | table |\n" + ReadmeEnd + "\n\nafter\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	again, err := replaceBlock(out, "| new | table |\n")
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("not idempotent: %q %v", again, err)
	}
	for _, bad := range []string{"no markers", ReadmeBegin + " only", ReadmeEnd + "\n" + ReadmeBegin} {
		if _, err := replaceBlock([]byte(bad), "x"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateReadme(path, "| new | table |"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("UpdateReadme wrote\n%s", b)
	}
	if err := UpdateReadme(filepath.Join(t.TempDir(), "missing.md"), "x"); err == nil {
		t.Error("missing README: no error")
	}
}

func TestQuantile(t *testing.T) {
	var xs []float64
	for i := 1; i <= 100; i++ {
		xs = append(xs, float64(i))
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := quantile(xs, c.q); got != c.want {
			t.Errorf("quantile(1..100, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantile([]float64{7}, 0.99); got != 7 {
		t.Errorf("one sample: %v", got)
	}
}

func TestServerCPU(t *testing.T) {
	s := serverCPU(42, 10*time.Second, 16*time.Second, 0.5, 4*time.Second, 1_000_000)
	if s.RawCPUSeconds != 6 || s.BackgroundCPUSeconds != 2 || s.CPUSeconds != 4 || s.CPUMicros != 4 {
		t.Errorf("6 CPU-s used, 0.5 cores of background over 4 s, 1M lines: %+v", s)
	}
	s = serverCPU(42, 0, time.Second, 2, 4*time.Second, 100)
	if s.CPUSeconds != 0 || s.BackgroundCPUSeconds != 1 {
		t.Errorf("background larger than the use is capped: %+v", s)
	}
	if s := serverCPU(0, 0, time.Second, 0, time.Second, 100); s.CPUSeconds != 0 || s.RawCPUSeconds != 0 {
		t.Errorf("no process: %+v", s)
	}
}

func TestProcCPU(t *testing.T) {
	end := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(end) { // burn a little CPU so the ticks are not zero
	}
	d, err := procCPU(os.Getpid())
	if err != nil || d <= 0 {
		t.Errorf("own CPU: %v %v", d, err)
	}
	if _, err := procCPU(1 << 30); err == nil {
		t.Error("no such process: no error")
	}
}

func TestKafkaVersion(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kafka_2.13-4.3.1.jar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for cmd, want := range map[string]string{
		"java -Xmx1G -cp /opt/kafka/libs/kafka_2.13-3.9.0.jar:/x.jar kafka.Kafka server.properties": "3.9.0",
		"java -cp " + filepath.Join(dir, "*") + " kafka.Kafka /state/server.properties":             "4.3.1",
		"java -cp /nowhere/* kafka.Kafka": "unknown",
		"":                                "unknown",
	} {
		if got := kafkaVersion(cmd); got != want {
			t.Errorf("kafkaVersion(%q) = %q, want %q", cmd, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	o := Options{Lines: 10, Partitions: -1, Poll: -1}
	err := o.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"executable", "kafka.brokers", "clickhouse.addrs", "lines 10", "hosts 0", "partitions -1", "grok sample", "data directory", "poll"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	d := Defaults()
	d.Exe, d.DataDir = "/bin/true", "x"
	d.Config.Kafka.Brokers, d.ClickHouse.Addrs = []string{"127.0.0.1:9092"}, []string{"127.0.0.1:9000"}
	if err := d.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// sampleResult is a run as the figures of a real one look, for the report functions.
func sampleResult() *Result {
	r := &Result{Started: time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC), Commit: "abc1234", Lines: 2_000_000, WallSeconds: 20, LinesPerSec: 100_000}
	r.Machine = Machine{CPU: "AMD EPYC", Cores: 2, RAMMiB: 8000, Kernel: "6.1", Go: "go1.26", Kafka: "4.3.1", ClickHouse: "18.16.1"}
	r.Run.Hosts, r.Run.Seed = 10, 1
	r.Stages = []Stage{
		{Name: "ship", Per: "line", Units: 2_000_000, CPUSeconds: 3, CPUMicros: 1.5, UnitsPerCPUSecond: 666_667, PeakRSSMiB: 60},
		{Name: "enrich", Per: "line", Units: 2_000_000, CPUSeconds: 14, CPUMicros: 7, UnitsPerCPUSecond: 142_857, PeakRSSMiB: 250},
		{Name: "sink", Per: "row", Units: 500_000, CPUSeconds: 2, CPUMicros: 4, UnitsPerCPUSecond: 250_000, PeakRSSMiB: 80},
	}
	r.Kafka = Server{Pid: 1, CPUSeconds: 6, CPUMicros: 3, RawCPUSeconds: 7, BackgroundCPUSeconds: 1}
	r.ClickHouse = Server{Pid: 2, CPUSeconds: 4, CPUMicros: 2, RawCPUSeconds: 4}
	r.Correctness = Correctness{Truth: 440_000, Rows: 440_000, Unique: 440_000, Final: 440_000, Matched: 440_000, Agree: 440_000, OK: true}
	r.Grok = GrokBaseline{Lines: 50_000, Matched: 49_000, LinesPerCoreSec: 9_000, RouterLinesPerCoreSec: 1_500_000}
	r.Native = NativeBaseline{Rows: 440_000, RowsPerSec: 400_000}
	ratios(r)
	targets(r)
	r.Bottleneck = bottleneck(r)
	return r
}

func TestReport(t *testing.T) {
	r := sampleResult()
	if got := r.Ratios.EnricherVsGrok; got < 15.8 || got > 15.9 {
		t.Errorf("enricher vs grok %v, want 142857/9000", got)
	}
	if got := r.Ratios.SinkVsNative; got != 0.625 {
		t.Errorf("sink vs native %v", got)
	}
	met := map[string]bool{}
	for _, tg := range r.Targets {
		met[tg.Name] = tg.Met
	}
	if want := map[string]bool{"end to end": false, "ship CPU": true, "enrich CPU": false, "sink CPU": false, "sink rows per CPU-second": true, "correctness": true}; !equalMaps(met, want) {
		t.Errorf("targets %v, want %v", met, want)
	}
	// 14 of 29 CPU-s: the enricher; 29 CPU-s over 20 s of 2 cores is 72% busy
	if !strings.HasPrefix(r.Bottleneck, "mxtrail enrich: 48%") || !strings.Contains(r.Bottleneck, "72% of 2 cores") ||
		!strings.Contains(r.Bottleneck, "next Kafka broker") || !strings.Contains(r.Bottleneck, "not saturated") {
		t.Errorf("bottleneck: %s", r.Bottleneck)
	}
	r.MachineBusy = 0.97
	if b := bottleneck(r); !strings.Contains(b, "other processes kept the machine busy (97%") || strings.Contains(b, "not saturated") {
		t.Errorf("contention not named: %s", b)
	}
	r.MaxLag.Enrich = 1_000_000
	if b := bottleneck(r); !strings.Contains(b, "the enricher fell behind the shipper (max lag 1000000 lines)") {
		t.Errorf("lag not named: %s", b)
	}
	r.Notes = []string{"the Kafka broker was busy before the run"}
	md := Markdown(r)
	for _, want := range []string{"commit `abc1234`", "AMD EPYC (2 cores", "Apache Kafka 4.3.1", "**100000 lines/s**", "`mxtrail enrich` CPU | 7.00 µs/line", "1.0 of its 7.0 CPU-s", "15.9×", "Bottleneck: mxtrail enrich", "| machine busy while the stages ran (every process) | 97% of 2 cores", "Note: the Kafka broker was busy before the run."} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	var sb strings.Builder
	Text(&sb, r)
	for _, want := range []string{"100000 lines/s", "enrich", "7.00 µs/line", "ok=true", "MISSED", "bottleneck"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("Text lacks %q:\n%s", want, sb.String())
		}
	}
	dir := t.TempDir()
	jp, mp, err := Write(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(jp) != "2026-11-23-abc1234.json" || filepath.Base(mp) != "latest.md" {
		t.Errorf("paths %s %s", jp, mp)
	}
}

func equalMaps(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestMachineCPU(t *testing.T) {
	busy, total, err := parseStatCPU("cpu  100 5 50 800 40 3 2 0 0 0")
	if err != nil || busy != 1600*time.Millisecond || total != 10*time.Second {
		t.Errorf("busy %v total %v %v, want 1.6 s of 10 s", busy, total, err)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5 6"} {
		if _, _, err := parseStatCPU(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	busy, total, err = machineCPU()
	if err != nil || total <= 0 || busy < 0 || busy > total {
		t.Errorf("this machine: busy %v of %v, %v", busy, total, err)
	}
}

func TestVmHWM(t *testing.T) {
	kib, err := parseVmHWM([]byte("Name:\tmxtrail\nVmPeak:\t  900000 kB\nVmHWM:\t   61234 kB\nVmRSS:\t   50000 kB\n"))
	if err != nil || kib != 61234 {
		t.Errorf("got %d %v, want 61234", kib, err)
	}
	for _, bad := range []string{"Name:\tx\n", "VmHWM:\t lots kB\n"} {
		if _, err := parseVmHWM([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if kib, err := vmHWM(os.Getpid()); err != nil || kib <= 0 {
		t.Errorf("own VmHWM: %d %v", kib, err)
	}
}

// A stage's peak RSS is its own, not the bench's: Linux carries the parent's high-water mark
// into a forked and exec'd child's ru_maxrss.
func TestChildPeakRSSIsItsOwn(t *testing.T) {
	big := make([]byte, 300<<20) // the parent's peak: 300 MiB touched
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1
	}
	c, err := startChild("sleep", "/bin/sleep", []string{"5"}, os.Environ(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	c.stop(5 * time.Second)
	_, kib := c.usage()
	if kib <= 0 || kib > 50<<10 {
		t.Errorf("sleep's peak RSS %d KiB (the parent touched 300 MiB)", kib)
	}
	if c.killed {
		t.Error("sleep ignored SIGTERM?")
	}
	big[len(big)-1] = 2 // keep it alive until the child ran
}

func TestCountLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enrich.log")
	log := `time=x level=INFO msg="consumer group generation" generation=1 partitions=17
time=x level=INFO msg="partition assigned" partition=15 offset=-2
time=x level=INFO msg="consumer group generation" generation=2 partitions=17
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := countLines(path, `msg="consumer group generation"`); n != 2 {
		t.Errorf("generations %d, want 2", n)
	}
	if n := countLines(filepath.Join(t.TempDir(), "none"), "x"); n != 0 {
		t.Errorf("missing file: %d", n)
	}
}
