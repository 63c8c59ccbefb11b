package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

var long = flag.Bool("long", false, "run the kill -9 test with the issue's full 1M lines")

// buildShipper builds the mxtrail binary once per test binary run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mxtrail-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mxtrail")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mxtrail")
	cmd.Dir = testenv.RepoDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func shipperBinary(t testing.TB) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func uniqueTopic(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	return fmt.Sprintf("mxtrail.raw.test-%s-%d", name, rand.Uint32())
}

// line is a realistic ~200-byte spamdyke line carrying its host and sequence number.
func line(host string, seq int) string {
	return fmt.Sprintf("Mar  9 11:%02d:%02d %s spamdyke[%d]: ALLOWED from: user%d@example.com to: rcpt@example.org origin_ip: 192.0.2.%d origin_rdns: mail%d.example.net auth: (unknown) encryption: TLS reason: 250_ok_seq=%d",
		seq/60%60, seq%60, host, 10000+seq%50000, seq%977, seq%250, seq%1000, seq)
}

func seqOf(t testing.TB, v []byte) int {
	s := string(v)
	i := strings.LastIndex(s, "seq=")
	n, err := strconv.Atoi(s[i+4:])
	if i < 0 || err != nil {
		t.Fatalf("unexpected value %q", s)
	}
	return n
}

type shipConfig struct {
	brokers    string
	topic      string
	dir        string
	files      map[string]string // glob -> host
	httpListen string
	extra      string
}

func (c shipConfig) write(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\n  topics: {raw: %s}\n", c.brokers, c.topic)
	fmt.Fprintf(&b, "http:\n  listen: %q\n", c.httpListen)
	fmt.Fprintf(&b, "ship:\n  create_topic: true\n  partitions: 4\n  checkpoint_file: %s\n  checkpoint_interval: 100ms\n  poll: 20ms\n  rotate_grace: 200ms\n  backoff_max: 1s\n  write_timeout: 3s\n%s", filepath.Join(c.dir, "positions.json"), c.extra)
	b.WriteString("  files:\n")
	if len(c.files) == 0 {
		b.WriteString("    []\n")
	}
	for glob, host := range c.files {
		fmt.Fprintf(&b, "    - {path: %q, host: %s, dialect: spamdyke}\n", glob, host)
	}
	p := filepath.Join(c.dir, "mxtrail.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startShipper runs `mxtrail ship` as a child process.
func startShipper(t testing.TB, cfgPath string) *exec.Cmd {
	t.Helper()
	args := []string{"ship", "-config", cfgPath}
	if prof := os.Getenv("MXTRAIL_BENCH_CPUPROFILE"); prof != "" {
		args = append(args, "-cpuprofile", prof) // go test -bench ShipFile1M with this set: profile the child
	}
	cmd := exec.Command(shipperBinary(t), args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "MXTRAIL_KAFKA_BROKERS=") { // the config file names the broker
			cmd.Env = append(cmd.Env, e)
		}
	}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(cfgPath), "shipper.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			keep := filepath.Join(os.TempDir(), "mxtrail-"+strings.ReplaceAll(t.Name(), "/", "-")+".log")
			os.WriteFile(keep, data, 0o644)
			t.Logf("shipper log kept in %s", keep)
		}
	})
	return cmd
}

func stopShipper(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("shipper exit: %v (log in %s)", err, cmd.Stdout.(*os.File).Name())
	}
}

// readTopic reads every partition of topic from the start up to its end offset as of the call
// (after want messages exist in total, or the timeout) and returns the sequence numbers per
// host in partition order. A host found on two partitions fails the test.
func readTopic(t testing.TB, broker, topic string, want int, timeout time.Duration) map[string][]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var ends map[int]int64
	for {
		ends = endOffsets(t, broker, topic)
		var total int64
		for _, e := range ends {
			total += e
		}
		if total >= int64(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := map[string][]int{}
	hostPart := map[string]int{}
	for p, end := range ends {
		if end == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: p, MaxBytes: 8 << 20, MaxWait: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read partition %d: %v", p, err)
			}
			host := string(m.Key)
			for _, h := range m.Headers {
				if h.Key == "host" && string(h.Value) != host {
					t.Errorf("host header %q != key %q", h.Value, host)
				}
			}
			if q, ok := hostPart[host]; ok && q != p {
				t.Errorf("host %s on partitions %d and %d (message %d)", host, q, p, m.Offset)
			}
			hostPart[host] = p
			if !strings.Contains(string(m.Value), " "+host+" ") {
				t.Fatalf("partition %d offset %d: key %q but value %q", p, m.Offset, host, m.Value)
			}
			got[host] = append(got[host], seqOf(t, m.Value))
			if m.Offset+1 >= end {
				break
			}
		}
		cancel()
		r.Close()
	}
	return got
}

func endOffsets(t testing.TB, broker, topic string) map[int]int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	md, err := c.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, p := range md.Topics[0].Partitions {
		req[topic] = append(req[topic], kafka.LastOffsetOf(p.ID))
	}
	res, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	ends := map[int]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		ends[po.Partition] = po.LastOffset
	}
	return ends
}

// checkDelivered asserts that every host's lines 0..n-1 arrived, first occurrences in order,
// and returns how many duplicates there were (re-sent unacknowledged windows).
func checkDelivered(t testing.TB, got map[string][]int, hosts []string, n int) (dups int) {
	t.Helper()
	for _, h := range hosts {
		seqs := got[h]
		next := 0
		for i, s := range seqs {
			switch {
			case s == next:
				next++
			case s < next:
				dups++
			default:
				t.Fatalf("host %s: message %d is line %d but line %d has not arrived yet (lost or reordered); %d messages, first %v", h, i, s, next, len(seqs), seqs[:min(len(seqs), 5)])
			}
		}
		if next != n {
			t.Fatalf("host %s: only lines 0..%d arrived, want %d (got %d messages)", h, next-1, n, len(seqs))
		}
	}
	return dups
}

func writeLines(t testing.TB, path, host string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := from; i < to; i++ {
		w.WriteString(line(host, i))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestShipRotationIntegration: two hosts, one rotated by rename+create, the other by
// copytruncate, while lines are written; every line arrives in order per host.
func TestShipRotationIntegration(t *testing.T) {
	broker := testenv.KafkaBrokers(t)[0]
	dir := t.TempDir()
	topic := uniqueTopic(t)
	a, b := filepath.Join(dir, "a", "maillog"), filepath.Join(dir, "b", "maillog")
	os.MkdirAll(filepath.Dir(a), 0o755)
	os.MkdirAll(filepath.Dir(b), 0o755)
	httpAddr := freeAddr(t)
	cfg := shipConfig{brokers: broker, topic: topic, dir: dir, files: map[string]string{a: "mx-a", b: "mx-b"}, httpListen: httpAddr}.write(t)
	writeLines(t, a, "mx-a", 0, 1)
	writeLines(t, b, "mx-b", 0, 1)
	cmd := startShipper(t, cfg)
	// This test is about rotation while the shipper runs: a file never seen before it was
	// renamed out of the glob cannot be followed (only checkpointed ones are recovered).
	waitForOffset(t, filepath.Join(dir, "positions.json"), a, fileSize(a))
	waitForOffset(t, filepath.Join(dir, "positions.json"), b, fileSize(b))
	const n = 30000
	fa, _ := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0o644)
	fb, _ := os.OpenFile(b, os.O_APPEND|os.O_WRONLY, 0o644)
	for i := 1; i < n; i++ {
		fmt.Fprintln(fa, line("mx-a", i))
		fmt.Fprintln(fb, line("mx-b", i))
		if i%5000 == 0 {
			// rename+create: the writer reopens the path right away.
			os.Rename(a, a+"."+strconv.Itoa(i))
			fa.Close()
			fa, _ = os.OpenFile(a, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			// copytruncate: copy, then truncate in place after the shipper read it (logrotate's
			// own window in which lines may be lost is outside the shipper's control).
			// Exact offset: after an earlier truncation the old, larger offset may still be on
			// disk for a moment, and ">=" would let the test truncate unread lines itself.
			waitForExactOffset(t, filepath.Join(dir, "positions.json"), b, fileSize(b))
			data, _ := os.ReadFile(b)
			os.WriteFile(b+".1", data, 0o644)
			os.Truncate(b, 0)
		}
		if i%1000 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	fa.Close()
	fb.Close()
	got := readTopic(t, broker, topic, 2*n, 15*time.Second)
	for h, s := range got {
		t.Logf("%s: %d messages, first %v", h, len(s), s[:min(5, len(s))])
	}
	logMetrics(t, httpAddr)
	stopShipper(t, cmd)
	dups := checkDelivered(t, got, []string{"mx-a", "mx-b"}, n)
	if dups != 0 {
		t.Errorf("%d duplicates without any crash", dups)
	}
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// waitForOffset waits until the checkpoint file records offset >= want for path.
func waitForOffset(t testing.TB, cpFile, path string, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if positionOf(cpFile, path) >= want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("checkpoint for %s never reached %d", path, want)
}

// waitForExactOffset waits until the checkpoint holds exactly want for path's current
// content (its stored fingerprint is a prefix of the file now): after a truncation the old
// content's offset may still be on disk, and equal by chance.
func waitForExactOffset(t testing.TB, cpFile, path string, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var f struct {
			Positions []struct {
				Path        string
				Fingerprint []byte
				Offset      int64
			}
		}
		data, _ := os.ReadFile(cpFile)
		if json.Unmarshal(data, &f) == nil {
			head, _ := os.ReadFile(path)
			for _, p := range f.Positions {
				if p.Path == path && p.Offset == want && len(p.Fingerprint) > 0 && bytes.HasPrefix(head, p.Fingerprint) {
					return
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("checkpoint for %s never reached %d", path, want)
}

func positionOf(cpFile, path string) int64 {
	data, err := os.ReadFile(cpFile)
	if err != nil {
		return -1
	}
	// {"path": "...", ... "offset": N}: a tiny scan keeps the test independent of the struct.
	s := string(data)
	i := strings.Index(s, strconv.Quote(path))
	if i < 0 {
		return -1
	}
	j := strings.Index(s[i:], `"offset": `)
	if j < 0 {
		return -1
	}
	rest := s[i+j+len(`"offset": `):]
	k := strings.IndexAny(rest, ",\n}")
	n, _ := strconv.ParseInt(rest[:k], 10, 64)
	return n
}

// TestShipKill9Integration: SIGKILL the shipper three times while it ships, restart it each
// time; every line arrives at least once, in order per host; duplicates are reported.
func TestShipKill9Integration(t *testing.T) {
	broker := testenv.KafkaBrokers(t)[0]
	perHost := 100000
	if *long {
		perHost = 500000
	}
	dir := t.TempDir()
	topic := uniqueTopic(t)
	hosts := []string{"mx1", "mx2"}
	files := map[string]string{}
	for _, h := range hosts {
		files[filepath.Join(dir, h+".log")] = h
	}
	cfg := shipConfig{brokers: broker, topic: topic, dir: dir, files: files}.write(t)
	// Half of each file exists at the start, the rest is appended while the shipper runs.
	for _, h := range hosts {
		writeLines(t, filepath.Join(dir, h+".log"), h, 0, perHost/2)
	}
	shipperBinary(t)    // built before the appends start, not during them
	var finalSize int64 // of mx1 once every line is written
	for i := range perHost {
		finalSize += int64(len(line("mx1", i)) + 1)
	}
	// The appends are paced (5000 lines per host every 200 ms, 2 s for 100k lines per host)
	// so that the run lasts longer than three restarts: the shipper reads ~500k lines/s, and
	// unpaced appends were all shipped before the third kill.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := perHost / 2; i < perHost; i += 5000 {
			for _, h := range hosts {
				writeLines(t, filepath.Join(dir, h+".log"), h, i, min(i+5000, perHost))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	cp := filepath.Join(dir, "positions.json")
	mx1 := filepath.Join(dir, "mx1.log")
	cmd := startShipper(t, cfg)
	midRun := 0
	for k := 1; k <= 3; k++ {
		// Kill at a random point after the shipper made progress since its (re)start.
		base := max(positionOf(cp, mx1), 0)
		waitForOffset(t, cp, mx1, base+int64(rand.IntN(int(finalSize/16)+1))+1)
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		at := positionOf(cp, mx1)
		if at < finalSize {
			midRun++
		}
		t.Logf("kill -9 #%d at checkpointed offset %d of %d bytes written, %d in the end (mx1)", k, at, fileSize(mx1), finalSize)
		cmd = startShipper(t, cfg)
	}
	if midRun == 0 {
		t.Errorf("all three kills came after mx1 was shipped completely: the run was too short to test a kill during it")
	}
	wg.Wait()
	for _, h := range hosts {
		waitForOffset(t, cp, filepath.Join(dir, h+".log"), fileSize(filepath.Join(dir, h+".log")))
	}
	stopShipper(t, cmd)
	got := readTopic(t, broker, topic, 2*perHost, 30*time.Second)
	dups := checkDelivered(t, got, hosts, perHost)
	t.Logf("%d lines per host, 3 kills: %d duplicates (%.2f%%) from unacknowledged windows", perHost, dups, 100*float64(dups)/float64(perHost*len(hosts)))
}

// TestShipBrokerOutageIntegration stops a private broker for 15 s mid-run: the shipper stops
// reading, reports not ready, and resumes by itself; nothing is lost.
func TestShipBrokerOutageIntegration(t *testing.T) {
	testenv.KafkaBrokers(t) // the local stack (and its cached jars) must be there
	k := testenv.PrivateKafka(t)
	dir := t.TempDir()
	topic := uniqueTopic(t)
	path := filepath.Join(dir, "maillog")
	httpAddr := freeAddr(t)
	cfg := shipConfig{brokers: k.Addr, topic: topic, dir: dir, files: map[string]string{path: "mx9"}, httpListen: httpAddr,
		extra: "  max_in_flight: 4MiB\n  batch_bytes: 1MiB\n"}.write(t)
	writeLines(t, path, "mx9", 0, 1)
	cmd := startShipper(t, cfg)
	waitForOffset(t, filepath.Join(dir, "positions.json"), path, fileSize(path))
	const n = 60000
	written := 1
	write := func(upto int) {
		for written < upto {
			next := min(written+500, upto)
			writeLines(t, path, "mx9", written, next)
			written = next
			time.Sleep(5 * time.Millisecond)
		}
	}
	write(n / 3)
	waitForOffset(t, filepath.Join(dir, "positions.json"), path, fileSize(path))
	if code := httpStatus(t, "http://"+httpAddr+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d before the outage", code)
	}
	k.Stop(t)
	stopped := time.Now()
	ackedAtStop := fileSize(path) // every byte up to here was acknowledged (waitForOffset)
	write(2 * n / 3)
	unacked := float64(fileSize(path) - ackedAtStop)
	notReady := false
	for time.Since(stopped) < 15*time.Second {
		if httpStatus(t, "http://"+httpAddr+"/readyz") == 503 {
			notReady = true
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !notReady {
		t.Error("/readyz never reported the outage")
	}
	// Reading stopped at the in-flight bound: the rest waits in the file, not in memory.
	if inflight := metric(t, httpAddr, "mxtrail_ship_inflight_bytes"); inflight <= 0 || inflight > 4<<20 {
		t.Errorf("in-flight bytes during the outage = %v, want in (0, 4MiB]", inflight)
	}
	// Every byte written since the broker stopped is unacknowledged. (A fixed 2 MiB floor here
	// failed on a loaded box at 2.04 MB: the lines written in time are fewer there.)
	lag := metric(t, httpAddr, "mxtrail_ship_lag_bytes")
	for end := time.Now().Add(10 * time.Second); lag < unacked && time.Now().Before(end); {
		time.Sleep(200 * time.Millisecond) // the gauge follows the files' sizes as they are polled
		lag = metric(t, httpAddr, "mxtrail_ship_lag_bytes")
	}
	if lag < unacked {
		t.Errorf("lag during the outage = %v bytes, want at least the %v bytes written since the broker stopped", lag, unacked)
	}
	if cmd.ProcessState != nil {
		t.Fatal("shipper exited during the outage")
	}
	k.Start(t)
	write(n)
	waitForOffset(t, filepath.Join(dir, "positions.json"), path, fileSize(path))
	if code := httpStatus(t, "http://"+httpAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d after recovery", code)
	}
	stopShipper(t, cmd)
	got := readTopic(t, k.Addr, topic, n, 30*time.Second)
	dups := checkDelivered(t, got, []string{"mx9"}, n)
	t.Logf("broker down 15 s: %d lines delivered, %d duplicates", n, dups)
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpStatus(t testing.TB, url string) int {
	c := http.Client{Timeout: 3 * time.Second}
	r, err := c.Get(url)
	if err != nil {
		return 0
	}
	r.Body.Close()
	return r.StatusCode
}

// TestShipStdinIntegration: --stdin into a topic the shipper creates; every line arrives.
func TestShipStdinIntegration(t *testing.T) {
	broker := testenv.KafkaBrokers(t)[0]
	dir := t.TempDir()
	topic := uniqueTopic(t)
	cfg := shipConfig{brokers: broker, topic: topic, dir: dir}.write(t)
	in := filepath.Join(dir, "in.log")
	const n = 20000
	writeLines(t, in, "mx-s", 0, n)
	f, _ := os.Open(in)
	defer f.Close()
	cmd := exec.Command(shipperBinary(t), "ship", "-config", cfg, "--stdin", "--host", "mx-s", "--progress")
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "MXTRAIL_KAFKA_BROKERS=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Stdin = f
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ship --stdin: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("%d lines", n)) {
		t.Errorf("progress line missing the count: %s", out)
	}
	got := readTopic(t, broker, topic, n, 30*time.Second)
	if dups := checkDelivered(t, got, []string{"mx-s"}, n); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
}

func logMetrics(t testing.TB, addr string) {
	c := http.Client{Timeout: 3 * time.Second}
	r, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Logf("metrics: %v", err)
		return
	}
	defer r.Body.Close()
	sc := bufio.NewScanner(r.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "mxtrail_ship_") && strings.Contains(l, "file") {
			t.Log(l)
		}
	}
}

func metric(t testing.TB, addr, name string) float64 {
	t.Helper()
	c := http.Client{Timeout: 3 * time.Second}
	r, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer r.Body.Close()
	sc := bufio.NewScanner(r.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, rest)
			}
			return v
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// TestShipSyslogIntegration: UDP and TCP (both framings, both RFCs), a 1 MiB line and invalid
// UTF-8 through the real binary into Kafka, bytes unchanged, keyed by the header's host.
func TestShipSyslogIntegration(t *testing.T) {
	broker := testenv.KafkaBrokers(t)[0]
	dir := t.TempDir()
	topic := uniqueTopic(t)
	udp, tcp := freeUDP(t), freeAddr(t)
	cfg := shipConfig{brokers: broker, topic: topic, dir: dir,
		extra: fmt.Sprintf("  max_line: 2MiB\n  max_message_bytes: 4MiB\n  syslog: {udp: %q, tcp: %q, dialect: spamdyke}\n", udp, tcp)}.write(t)
	cmd := startShipper(t, cfg)
	var c net.Conn
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err = net.Dial("tcp", tcp); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	m3164 := "<22>Mar  9 11:10:37 mx7 spamdyke[15309]: ALLOWED from: a@example.com to: b@example.org reason: 250_ok"
	m5424 := "<22>1 2026-03-09T11:10:37.123+01:00 mx8 smtpf 28585 - - k165S4285856336700 #720 message"
	bad := "<22>Mar  9 11:10:38 mx7 spamdyke[15310]: bad \xff\xfe utf8 \x00 nul"
	big := "<22>Mar  9 11:10:39 mx7 spamdyke[15311]: " + strings.Repeat("x", 1<<20)
	fmt.Fprintf(c, "%s\n%d %s%s\n%d %s", m3164, len(m5424), m5424, bad, len(big), big)
	c.Close()
	u, _ := net.Dial("udp", udp)
	u.Write([]byte(m5424))
	u.Write([]byte(m3164 + "\n"))
	u.Close()
	want := map[string][]string{"mx7": {m3164, bad, big, m3164}, "mx8": {m5424, m5424}}
	got := readValues(t, broker, topic, 6, 30*time.Second)
	stopShipper(t, cmd)
	for h, w := range want {
		// UDP and TCP race each other; per host each transport's order is kept.
		if len(got[h]) != len(w) {
			t.Fatalf("host %s: %d messages, want %d", h, len(got[h]), len(w))
		}
		count := map[string]int{}
		for _, v := range got[h] {
			count[v]++
		}
		for _, v := range w {
			if count[v] == 0 {
				t.Errorf("host %s: message %.60q missing or altered", h, v)
			}
			count[v]--
		}
	}
}

func freeUDP(t testing.TB) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// readValues reads want messages from topic and returns the values per key.
func readValues(t testing.TB, broker, topic string, want int, timeout time.Duration) map[string][]string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var ends map[int]int64
	for {
		ends = endOffsets(t, broker, topic)
		var total int64
		for _, e := range ends {
			total += e
		}
		if total >= int64(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d messages in %s", total, want, topic)
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := map[string][]string{}
	for p, end := range ends {
		if end == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: p, MaxBytes: 8 << 20})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read partition %d: %v", p, err)
			}
			got[string(m.Key)] = append(got[string(m.Key)], string(m.Value))
			if m.Offset+1 >= end {
				break
			}
		}
		cancel()
		r.Close()
	}
	return got
}
