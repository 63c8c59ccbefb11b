package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mxtrail/mxtrail/enrich/gen"
	"github.com/mxtrail/mxtrail/internal/testenv"
)

// runEnv points `mxtrail run` at a throw-away database on the local ClickHouse and at the
// embedded broker (no brokers configured), with no metrics listener (tests run in parallel
// packages). It returns a connection for the checks and the database name.
func runEnv(t *testing.T) (driver.Conn, string) {
	t.Helper()
	addrs := testenv.ClickHouseAddrs(t)
	conn, db := scratchDatabase(t, "mxtrail_run")
	t.Setenv("MXTRAIL_KAFKA_BROKERS", "")
	t.Setenv("MXTRAIL_CLICKHOUSE_ADDR", strings.Join(addrs, ","))
	t.Setenv("MXTRAIL_CLICKHOUSE_DATABASE", db)
	t.Setenv("MXTRAIL_HTTP_LISTEN", "")
	return conn, db
}

// runOnce runs `mxtrail run --once` with args and returns stdout and stderr; it fails the
// test unless the exit code is 0.
func runOnce(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	began := time.Now()
	code := dispatch(append([]string{"run", "--once", "--timeout", "150s", "--progress", "2s"}, args...), nil, &out, &errb)
	t.Logf("mxtrail run %v: exit %d in %v", args, code, time.Since(began).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// outcomeCounts reads sessions per "product outcome" from ClickHouse, collapsing replays.
func outcomeCounts(t *testing.T, conn driver.Conn, db string) (final map[string]int, rows uint64) {
	t.Helper()
	ctx := context.Background()
	rs, err := conn.Query(ctx, "SELECT toString(product), toString(outcome), count() FROM "+db+".sessions FINAL GROUP BY product, outcome")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	final = map[string]int{}
	for rs.Next() {
		var p, o string
		var n uint64
		if err := rs.Scan(&p, &o, &n); err != nil {
			t.Fatal(err)
		}
		final[p+" "+o] = int(n)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".sessions").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	return final, rows
}

func countRows(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func diffCounts(want, got map[string]int) string {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		if want[k] != got[k] {
			fmt.Fprintf(&b, "\n  %-40s want %6d, got %6d", k, want[k], got[k])
		}
	}
	return b.String()
}

// TestRunOnceIntegration runs the whole pipeline on a generated fleet (10 hosts, every
// product) with the embedded broker and the local ClickHouse, and checks what ClickHouse
// holds against the generator's ground truth; a second run on the same data directory must
// ship nothing again and leave the totals exact.
func TestRunOnceIntegration(t *testing.T) {
	conn, db := runEnv(t)
	data := t.TempDir()
	const lines = 60_000
	out, errs := runOnce(t, "--data", data, "--hosts", "10", "--lines", fmt.Sprint(lines), "--seed", "7")

	b, err := os.ReadFile(filepath.Join(data, "logs", gen.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var sum gen.Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Hosts) != 10 || len(sum.Sessions) != len(gen.Products()) || sum.Total.Lines < lines*9/10 {
		t.Fatalf("fleet: %d hosts, %d products, %d lines; want 10 hosts, every product, ~%d lines", len(sum.Hosts), len(sum.Sessions), sum.Total.Lines, lines)
	}
	want := map[string]int{}
	for p, m := range sum.Sessions {
		for o, n := range m {
			want[p+" "+o] = n
		}
	}
	got, rows := outcomeCounts(t, conn, db)
	if d := diffCounts(want, got); d != "" {
		t.Fatalf("sessions per product and outcome in ClickHouse differ from the ground truth:%s\nstderr:\n%s", d, errs)
	}
	// every garbage line is a dead letter, inspectable in ClickHouse
	if n := countRows(t, conn, "SELECT count() FROM "+db+".deadletter FINAL"); n != uint64(sum.Total.Garbage) {
		t.Errorf("dead letters = %d, want the generator's %d garbage lines", n, sum.Total.Garbage)
	}
	if n := countRows(t, conn, "SELECT count() FROM "+db+".events FINAL"); n == 0 {
		t.Error("no notable events in ClickHouse")
	}
	// the sample fleet raises alerts (its AUTH failure bursts), and the summary shows the
	// alerts table's count
	alerts := countRows(t, conn, "SELECT count() FROM "+db+".alerts FINAL")
	if alerts == 0 {
		t.Error("no alerts in ClickHouse from the sample fleet")
	}
	// the summary printed is the one read back
	for _, s := range []string{
		fmt.Sprintf("%d sessions", sum.Total.Sessions),
		"equal to what ClickHouse holds",
		"Top denied client addresses:",
		fmt.Sprintf("Alerts raised: %d", alerts),
		"mxtrail query",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("summary lacks %q:\n%s", s, out)
		}
	}
	for _, s := range []string{"generating a sample fleet", "embedded Kafka-protocol broker", "done: every line shipped"} {
		if !strings.Contains(errs, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errs)
		}
	}
	if m := regexp.MustCompile(`shipped ([\d,]+) lines`).FindAllStringSubmatch(errs, -1); len(m) == 0 ||
		m[len(m)-1][1] != count(float64(sum.Total.Lines)) {
		t.Errorf("the last progress line does not show all %d lines shipped:\n%s", sum.Total.Lines, errs)
	}

	// Again on the same data directory: the fleet is reused, nothing is shipped twice, and
	// neither the totals nor the stored rows change.
	out2, errs2 := runOnce(t, "--data", data, "--hosts", "10", "--lines", fmt.Sprint(lines), "--seed", "7")
	for _, s := range []string{"reusing the sample fleet", "not shipping them again"} {
		if !strings.Contains(errs2, s) {
			t.Errorf("second run: stderr lacks %q:\n%s", s, errs2)
		}
	}
	got2, rows2 := outcomeCounts(t, conn, db)
	if d := diffCounts(want, got2); d != "" {
		t.Fatalf("second run: sessions per product and outcome differ from the ground truth:%s", d)
	}
	if rows2 != rows {
		t.Errorf("second run: %d session rows stored, first run %d", rows2, rows)
	}
	if !strings.Contains(out2, fmt.Sprintf("%d sessions", sum.Total.Sessions)) {
		t.Errorf("second run summary:\n%s", out2)
	}
}

// TestRunLogsIntegration runs `mxtrail run --logs` on real published log lines (every
// dialect) and checks ClickHouse against `mxtrail sessions` on the same files.
func TestRunLogsIntegration(t *testing.T) {
	conn, db := runEnv(t)
	files, err := filepath.Glob("testdata/run/*.log")
	if err != nil || len(files) < 6 {
		t.Fatalf("corpus sample: %v %v", files, err)
	}
	total := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		total += bytes.Count(b, []byte("\n"))
	}
	// the offline oracle: one time-ordered stream per host, as run replays them
	var off, offErr bytes.Buffer
	if code := dispatch(append([]string{"sessions", "--year", "2021", "--host", "corpus"}, files...), nil, &off, &offErr); code != 0 {
		t.Fatalf("mxtrail sessions: exit %d: %s", code, offErr.String())
	}
	want := map[string]int{}
	for sc := bufio.NewScanner(&off); sc.Scan(); {
		var r struct{ Product, Outcome string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		want[r.Product+" "+r.Outcome]++
	}
	if len(want) < 4 {
		t.Fatalf("the offline oracle found too little: %v", want)
	}

	out, errs := runOnce(t, "--data", t.TempDir(), "--logs", "testdata/run/*.log", "--host", "corpus", "--year", "2021")
	got, _ := outcomeCounts(t, conn, db)
	if d := diffCounts(want, got); d != "" {
		t.Fatalf("sessions per product and outcome differ from `mxtrail sessions`:%s\nstdout:\n%s\nstderr:\n%s", d, out, errs)
	}
	if !strings.Contains(errs, fmt.Sprintf("shipped %s lines", count(float64(total)))) {
		t.Errorf("progress does not show all %d lines shipped:\n%s", total, errs)
	}
	// lines naming their own host keep it; the others take --host
	hosts := map[string]bool{}
	rs, err := conn.Query(context.Background(), "SELECT DISTINCT toString(host) FROM "+db+".sessions FINAL")
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var h string
		if err := rs.Scan(&h); err != nil {
			t.Fatal(err)
		}
		hosts[h] = true
	}
	rs.Close()
	if !hosts["gateway4"] || !hosts["corpus"] {
		t.Errorf("hosts in ClickHouse = %v, want gateway4 (named in the smtpf lines) and corpus (--host)", hosts)
	}
}

// TestRunFlags checks the usage errors, which need no server.
func TestRunFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--host", "h"}, "--host and --year apply to --logs only"},
		{[]string{"--logs", "x", "--year", "20"}, "--year 20 out of range"},
		{[]string{"--logs", filepath.Join(t.TempDir(), "none-*.log")}, "matches no regular file"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--logs", "testdata/run/imail.log", "--year", "2021"}, "no host name in its first 1000 lines: give --host"},
	} {
		var out, errb bytes.Buffer
		if code := dispatch(append([]string{"run"}, c.args...), nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("run %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
}

func TestCount(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", 99.6: "100"} {
		if got := count(in); got != want {
			t.Errorf("count(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestRunResumeIntegration interrupts a run halfway (as Ctrl-C does) and runs again on the
// same data directory: the second run ships exactly the lines Kafka had not acknowledged, and
// ClickHouse ends up with every session of the ground truth.
//
// Exactly the ground truth: the enricher resumes from its committed offset, which never lies
// inside a session (the first line of the oldest open session, held further back at the first
// line of any closed session straddling it), so replayed sessions are rebuilt whole under
// the same ids and collapse in ClickHouse; a commit inside a closed session would rebuild its
// tail as an extra fragment session (seen before that rule: 0-14 of 13,400).
func TestRunResumeIntegration(t *testing.T) {
	conn, db := runEnv(t)
	data := t.TempDir()
	const lines, interruptAt = 40_000, 15_000
	args := []string{"--data", data, "--hosts", "10", "--lines", fmt.Sprint(lines), "--seed", "11", "--progress", "1s"}
	statePath := filepath.Join(data, "replay-state.json")
	readState := func() (replayState, bool) {
		var st replayState
		b, err := os.ReadFile(statePath)
		return st, err == nil && json.Unmarshal(b, &st) == nil
	}
	// Ctrl-C after interruptAt lines were sent: the enricher and the sink are halfway too
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	replaySentHook = func(n int64) {
		if n == interruptAt {
			cancel()
		}
	}
	t.Cleanup(func() { replaySentHook = nil })
	var out1, errs1 bytes.Buffer
	if code := runRun(ctx, append([]string{"--once", "--timeout", "150s"}, args...), nil, &out1, &errs1); code != 0 {
		t.Fatalf("interrupted run: exit %d\n%s", code, errs1.String())
	}
	st, ok := readState()
	replaySentHook = nil
	// every line sent was acknowledged while the shipper drained
	if !ok || st.Done || st.Lines != interruptAt {
		t.Fatalf("after the interrupted run the replay state is %+v (ok %v); want %d lines acknowledged, not done\n%s", st, ok, interruptAt, errs1.String())
	}
	if !strings.Contains(errs1.String(), "interrupted") {
		t.Errorf("interrupted run does not say so:\n%s", errs1.String())
	}
	b, err := os.ReadFile(filepath.Join(data, "logs", gen.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var sum gen.Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	t.Logf("interrupted after %d of %d lines acknowledged", st.Lines, sum.Total.Lines)
	if st.Lines >= int64(sum.Total.Lines) {
		t.Fatalf("the interrupted run acknowledged all %d lines: interrupted too late to test a resume", sum.Total.Lines)
	}

	_, errs2 := runOnce(t, args...)
	m := regexp.MustCompile(`shipped ([\d,]+) lines`).FindAllStringSubmatch(errs2, -1)
	if want := count(float64(int64(sum.Total.Lines) - st.Lines)); len(m) == 0 || m[len(m)-1][1] != want {
		t.Errorf("the resumed run should ship the %s lines not acknowledged before (%d of %d were):\n%s", want, st.Lines, sum.Total.Lines, errs2)
	}
	if st2, ok := readState(); !ok || !st2.Done || st2.Lines != int64(sum.Total.Lines) {
		t.Errorf("replay state after the resumed run: %+v; want done with all %d lines", st2, sum.Total.Lines)
	}
	got, _ := outcomeCounts(t, conn, db)
	extra, missing := 0, ""
	for p, m := range sum.Sessions {
		for o, n := range m {
			if g := got[p+" "+o]; g < n {
				missing += fmt.Sprintf("\n  %-40s want %6d, got %6d", p+" "+o, n, g)
			}
		}
	}
	total := 0
	for _, n := range got {
		total += n
	}
	extra = total - sum.Total.Sessions
	if missing != "" {
		t.Fatalf("after an interrupted and a resumed run, ground-truth sessions are missing:%s\nfirst run:\n%s\nsecond run:\n%s", missing, errs1.String(), errs2)
	}
	// a fragment shares its key with the complete session (keys are also reused legitimately)
	frags := countRows(t, conn, "SELECT count() FROM (SELECT host, product, session_key FROM "+db+".sessions FINAL GROUP BY host, product, session_key HAVING count() > 1)")
	t.Logf("%d sessions in ClickHouse, %d in the ground truth: %d extra; %d keys with more than one session", total, sum.Total.Sessions, extra, frags)
	if extra != 0 {
		t.Errorf("%d extra sessions (%d keys with more than one session); want exactly the %d of the ground truth", extra, frags, sum.Total.Sessions)
	}
}

// TestRunReplayStateIntegration: the replay state follows the files and the broker. Lines
// appended to a file after a complete run are all a re-run ships; a file rewritten in place
// is shipped from its start; a broker log that lost what the state counts (deleted) makes
// the next run ship everything again rather than skip lines the topic no longer holds.
func TestRunReplayStateIntegration(t *testing.T) {
	runEnv(t)
	src, err := filepath.Glob("testdata/run/*.log")
	if err != nil || len(src) < 6 {
		t.Fatalf("corpus sample: %v %v", src, err)
	}
	dir := t.TempDir()
	total := 0
	for _, f := range src {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		total += bytes.Count(b, []byte("\n"))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := t.TempDir()
	args := []string{"--data", data, "--logs", filepath.Join(dir, "*.log"), "--host", "corpus", "--year", "2021"}
	shipped := func(errs string) string {
		t.Helper()
		m := regexp.MustCompile(`shipped ([\d,]+) lines`).FindAllStringSubmatch(errs, -1)
		if len(m) == 0 {
			t.Fatalf("no progress line:\n%s", errs)
		}
		return m[len(m)-1][1]
	}

	if _, errs := runOnce(t, args...); shipped(errs) != count(float64(total)) {
		t.Fatalf("first run shipped %s lines, want %d:\n%s", shipped(errs), total, errs)
	}
	// append two lines to one file
	smtpf := filepath.Join(dir, "smtpf.log")
	b, err := os.ReadFile(smtpf)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	fh, err := os.OpenFile(smtpf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write(lines[0])
	fh.Write(lines[1])
	fh.Close()
	_, errs := runOnce(t, args...)
	if shipped(errs) != "2" || !strings.Contains(errs, "resuming where an earlier run stopped") {
		t.Errorf("after appending 2 lines the re-run shipped %s lines, want 2:\n%s", shipped(errs), errs)
	}

	// rewrite smtpf.log in place with the same first KiB and size (its last two lines
	// swapped): the bytes before the recorded position differ, so it is shipped again
	b, err = os.ReadFile(smtpf)
	if err != nil {
		t.Fatal(err)
	}
	ls := bytes.SplitAfter(b, []byte("\n"))
	n := len(ls) - 1 // ls ends with an empty element
	if bytes.Equal(ls[n-2], ls[n-1]) || len(b)-len(ls[n-1])-len(ls[n-2]) < 1024 {
		t.Fatal("smtpf sample: need two different last lines after the first KiB")
	}
	rewritten := slices.Concat(ls[:n-2], [][]byte{ls[n-1], ls[n-2]})
	if err := os.WriteFile(smtpf, bytes.Join(rewritten, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs = runOnce(t, args...)
	if want := count(float64(n)); shipped(errs) != want {
		t.Errorf("after rewriting smtpf.log the re-run shipped %s lines, want its %s:\n%s", shipped(errs), want, errs)
	}

	// the broker's log is gone: everything again
	if err := os.RemoveAll(filepath.Join(data, "kafka")); err != nil {
		t.Fatal(err)
	}
	_, errs = runOnce(t, args...)
	if shipped(errs) != count(float64(total+2)) || !strings.Contains(errs, "shipping every file from its start") {
		// every file, the appended lines included
		t.Errorf("after deleting the broker's log the re-run shipped %s lines, want all %d:\n%s", shipped(errs), total+2, errs)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunServeIntegration: without --once the summary is printed once everything is through,
// then the stages keep running, ready and serving /metrics, until Ctrl-C drains them (exit 0).
func TestRunServeIntegration(t *testing.T) {
	runEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("MXTRAIL_HTTP_LISTEN", addr)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runRun(ctx, []string{"--data", t.TempDir(), "--logs", "testdata/run/*.log", "--host", "corpus", "--year", "2021"}, nil, &out, &errs)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(errs.String(), "keep running") {
		select {
		case c := <-code:
			t.Fatalf("run exited (%d) before serving:\n%s", c, errs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving after 2 minutes:\n%s", errs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "Read back from ClickHouse") {
		t.Errorf("no summary before serving:\n%s", out.String())
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if c, body := get("/readyz"); c != http.StatusOK {
		t.Errorf("/readyz while serving: %d %s", c, body)
	}
	// one registry for every stage: the shipper's, the enricher's and the sink's metrics
	_, metrics := get("/metrics")
	for _, m := range []string{"mxtrail_ship_acked_lines_total", "mxtrail_enrich_lines_in_total", "mxtrail_sink_rows_total"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 || !strings.Contains(errs.String(), "stages drained") {
			t.Errorf("after Ctrl-C: exit %d\n%s", c, errs.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("not stopped a minute after Ctrl-C")
	}
}

// TestRunReuseFleet: the sample fleet is generated once per options and reused only while its
// files are intact; other options or a changed file regenerate it.
func TestRunReuseFleet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	var errb bytes.Buffer
	r := &runner{f: runFlags{seed: 5, hosts: 10, lines: 5000}, errw: &errb}
	sum, err := r.generate(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "generating a sample fleet") {
		t.Fatalf("first call did not generate:\n%s", errb.String())
	}
	want := genStamp{Seed: 5, Hosts: 10, Lines: 5000}
	got, ok := reuseFleet(dir, want)
	if !ok || got.Total != sum.Total || len(got.Files) != len(sum.Files) {
		t.Fatalf("same options: reuse %v, summary %+v; want the generated one %+v", ok, got, sum.Total)
	}
	for _, other := range []genStamp{{Seed: 6, Hosts: 10, Lines: 5000}, {Seed: 5, Hosts: 11, Lines: 5000}, {Seed: 5, Hosts: 10, Lines: 6000}} {
		if _, ok := reuseFleet(dir, other); ok {
			t.Errorf("fleet generated with %+v reused for %+v", want, other)
		}
	}
	// a file that lost its tail (an interrupted copy, a truncation) means generating again
	victim := filepath.Join(dir, sum.Files[0].Name)
	if err := os.Truncate(victim, sum.Files[0].Bytes/2); err != nil {
		t.Fatal(err)
	}
	if _, ok := reuseFleet(dir, want); ok {
		t.Error("fleet with a truncated file reused")
	}
	errb.Reset()
	if _, err := r.generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "generating a sample fleet") {
		t.Errorf("a truncated fleet was not generated again:\n%s", errb.String())
	}
	if st, err := os.Stat(victim); err != nil {
		t.Error(err)
	} else if st.Size() != sum.Files[0].Bytes {
		t.Errorf("%s after generating again: %d bytes, want %d", victim, st.Size(), sum.Files[0].Bytes)
	}
	errb.Reset()
	if _, err := r.generate(context.Background(), dir); err != nil || !strings.Contains(errb.String(), "reusing the sample fleet") {
		t.Errorf("an intact fleet was not reused (%v):\n%s", err, errb.String())
	}
}
