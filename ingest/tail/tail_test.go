package tail

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/ingest/checkpoint"
	"github.com/mxtrail/mxtrail/ingest/produce"
	"github.com/mxtrail/mxtrail/ingest/wire"
)

type sent struct {
	host    string
	value   []byte
	headers map[string]string
}

// recorder is a Sender that keeps what it got and acknowledges it (unless noAck).
type recorder struct {
	mu    sync.Mutex
	lines []sent
	noAck bool
}

func (r *recorder) Send(_ context.Context, in produce.Input, key string, hdr []kafka.Header, v []byte, a produce.Acker, seq uint64) error {
	h := map[string]string{}
	for _, x := range hdr {
		h[x.Key] = string(x.Value)
	}
	r.mu.Lock()
	r.lines = append(r.lines, sent{host: key, value: bytes.Clone(v), headers: h})
	r.mu.Unlock()
	if !r.noAck {
		a.Acked(seq)
	}
	return nil
}

func (r *recorder) values() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.lines))
	for i, l := range r.lines {
		out[i] = string(l.value)
	}
	return out
}

func (r *recorder) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if v := r.values(); len(v) >= n {
			return v
		}
		time.Sleep(5 * time.Millisecond)
	}
	v := r.values()
	t.Fatalf("got %d lines, want %d", len(v), n)
	return nil
}

func testConfig(glob string) Config {
	return Config{
		Inputs:          []Input{{Glob: glob, Dialect: "spamdyke", Host: "mx1"}},
		Poll:            5 * time.Millisecond,
		MaxLine:         64 << 10,
		FingerprintSize: 64,
		RotateGrace:     50 * time.Millisecond,
		ReadBuffer:      4096, // small, so lines straddle reads
	}
}

func start(t *testing.T, cfg Config, out Sender, store *checkpoint.Store) (stop func()) {
	t.Helper()
	tl, err := New(cfg, out, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}

func spamdykeLine(i int) string {
	return fmt.Sprintf("Mar  9 11:10:%02d mx1 spamdyke[%d]: ALLOWED from: a%d@example.com to: b@example.org origin_ip: 192.0.2.%d origin_rdns: mail.example.com auth: (unknown) encryption: TLS reason: 250_ok_%d_qp_%d", i%60, 1000+i, i, i%250, i, i)
}

func appendLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < to; i++ {
		if _, err := io.WriteString(f, spamdykeLine(i)+"\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func checkSeq(t *testing.T, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d lines, want %d", len(got), n)
	}
	for i := range n {
		if got[i] != spamdykeLine(i) {
			t.Fatalf("line %d = %q, want %q", i, got[i], spamdykeLine(i))
		}
	}
}

func TestRotationRenameCreateWhileWriting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	store, _ := checkpoint.Open(filepath.Join(dir, "pos.json"))
	rec := &recorder{}
	appendLines(t, path, 0, 10)
	stop := start(t, testConfig(path), rec, store)
	defer stop()
	const n = 20000
	// The writer keeps its file open across the rename, like syslogd before its HUP, and
	// reopens the path after a few more lines.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	for i := 10; i < n; i++ {
		fmt.Fprintln(f, spamdykeLine(i))
		switch i % 5000 {
		case 1000:
			if err := os.Rename(path, path+"."+strconv.Itoa(i)); err != nil {
				t.Fatal(err)
			}
		case 1100: // the writer notices and reopens
			f.Close()
			f, _ = os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		}
		if i%500 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	f.Close()
	checkSeq(t, rec.waitFor(t, n), n)
	for _, l := range rec.lines[:1] {
		if l.host != "mx1" || l.headers[wire.HeaderSource] != wire.SourceFile || l.headers[wire.HeaderDialect] != "spamdyke" {
			t.Fatalf("headers %+v host %q", l.headers, l.host)
		}
		if _, err := time.Parse(wire.IngestTimeLayout, l.headers[wire.HeaderIngestTime]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRotationCopyTruncateWhileWriting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	store, _ := checkpoint.Open(filepath.Join(dir, "pos.json"))
	rec := &recorder{}
	appendLines(t, path, 0, 1)
	stop := start(t, testConfig(path), rec, store)
	defer stop()
	const n = 12000
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	for i := 1; i < n; i++ {
		fmt.Fprintln(f, spamdykeLine(i))
		if i%3000 == 0 {
			// copytruncate: logrotate copies, then truncates in place; the writer keeps its
			// O_APPEND descriptor. Wait until the shipper read everything, as the copy would
			// otherwise be the only holder of the unread tail (the shipper only follows
			// "maillog", like a real glob that excludes the .1 copies).
			rec.waitFor(t, i+1)
			data, _ := os.ReadFile(path)
			os.WriteFile(path+".1", data, 0o644)
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.Close()
	checkSeq(t, rec.waitFor(t, n), n)
}

func TestResumeFromCheckpointAndReplayUnacked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	cp := filepath.Join(dir, "pos.json")
	appendLines(t, path, 0, 100)

	store, _ := checkpoint.Open(cp)
	rec := &recorder{}
	stop := start(t, testConfig(path), rec, store)
	rec.waitFor(t, 100)
	stop()
	if err := store.Flush(); err != nil {
		t.Fatal(err)
	}

	// Lines 100..149 are read but never acknowledged (Kafka "down"), then we crash.
	appendLines(t, path, 100, 150)
	store2, _ := checkpoint.Open(cp)
	rec2 := &recorder{noAck: true}
	stop = start(t, testConfig(path), rec2, store2)
	got := rec2.waitFor(t, 50)
	stop()
	store2.Flush()
	if got[0] != spamdykeLine(100) {
		t.Fatalf("resume did not start after the acknowledged lines: %q", got[0])
	}

	appendLines(t, path, 150, 160)
	store3, _ := checkpoint.Open(cp)
	rec3 := &recorder{}
	stop = start(t, testConfig(path), rec3, store3)
	got = rec3.waitFor(t, 60)
	stop()
	if got[0] != spamdykeLine(100) || got[59] != spamdykeLine(159) || len(got) != 60 {
		t.Fatalf("unacknowledged lines must be read again: first %q last %q n %d", got[0], got[len(got)-1], len(got))
	}
}

func TestReusedInodeWithOtherContentStartsOver(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	appendLines(t, path, 0, 20)
	st, _ := os.Stat(path)
	store, _ := checkpoint.Open(filepath.Join(dir, "pos.json"))
	// A stale position for this inode from a different, longer-deleted file.
	store.Set(checkpoint.Position{Key: keyOf(st), Path: path, Fingerprint: []byte("Jan  1 00:00:00 other"), Offset: 500})
	rec := &recorder{}
	stop := start(t, testConfig(path), rec, store)
	defer stop()
	checkSeq(t, rec.waitFor(t, 20), 20)
}

func TestStartAtEndOnlyForFilesFoundAtStart(t *testing.T) {
	dir := t.TempDir()
	appendLines(t, filepath.Join(dir, "a.log"), 0, 5)
	store, _ := checkpoint.Open(filepath.Join(dir, "pos.json"))
	cfg := testConfig(filepath.Join(dir, "*.log"))
	cfg.Inputs[0].StartAtEnd = true
	rec := &recorder{}
	stop := start(t, cfg, rec, store)
	defer stop()
	time.Sleep(30 * time.Millisecond)
	appendLines(t, filepath.Join(dir, "b.log"), 0, 3) // appears later: read from its start
	rec.waitFor(t, 3)
	time.Sleep(30 * time.Millisecond)
	if got := rec.values(); len(got) != 3 || got[0] != spamdykeLine(0) {
		t.Fatalf("got %q", got)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	long := bytes.Repeat([]byte("x"), 1<<20)
	content := [][]byte{
		[]byte("ok line"),
		append([]byte("bad utf8 \xff\xfe and NUL \x00 kept"), '\r'),
		long,
		[]byte("after long"),
	}
	var buf bytes.Buffer
	for _, c := range content {
		buf.Write(c)
		buf.WriteByte('\n')
	}
	buf.WriteString("partial, no newline yet")
	os.WriteFile(path, buf.Bytes(), 0o644)
	store, _ := checkpoint.Open(filepath.Join(dir, "pos.json"))
	cfg := testConfig(path)
	cfg.MaxLine = 1000
	counters := produce.NewMetrics(nil)
	cfg.Counters = counters
	rec := &recorder{}
	stop := start(t, cfg, rec, store)
	rec.waitFor(t, 4)
	time.Sleep(30 * time.Millisecond)
	stop()
	if len(rec.lines) != 4 {
		t.Fatalf("a partial last line must wait for its newline; got %d lines", len(rec.lines))
	}
	if got := string(rec.lines[1].value); got != "bad utf8 \xff\xfe and NUL \x00 kept" {
		t.Fatalf("bytes must ship as read (minus CRLF): %q", got)
	}
	tr := rec.lines[2]
	if len(tr.value) != 1000 || tr.headers[wire.HeaderTruncated] != strconv.Itoa(1<<20) {
		t.Fatalf("long line: len %d header %q", len(tr.value), tr.headers[wire.HeaderTruncated])
	}
	if _, ok := rec.lines[0].headers[wire.HeaderTruncated]; ok {
		t.Fatal("short line flagged truncated")
	}
	if string(rec.lines[3].value) != "after long" {
		t.Fatalf("line after the long one: %q", rec.lines[3].value)
	}
	var r wire.Raw
	var hs []wire.Header
	for k, v := range tr.headers {
		hs = append(hs, wire.Header{Key: k, Value: []byte(v)})
	}
	if err := wire.Decode(&r, []byte(tr.host), hs, tr.value); err != nil || r.TruncatedFrom != 1<<20 || r.Dialect != "spamdyke" {
		t.Fatalf("decode: %v %+v", err, r)
	}
}

func TestVanishedFileIsDroppedAndOthersContinue(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendLines(t, a, 0, 3)
	store, _ := checkpoint.Open(filepath.Join(dir, "pos.json"))
	cfg := testConfig(filepath.Join(dir, "*.log"))
	cfg.Metrics = NewMetrics(nil)
	rec := &recorder{}
	stop := start(t, cfg, rec, store)
	defer stop()
	rec.waitFor(t, 3)
	st, _ := os.Stat(a)
	os.Remove(a)
	appendLines(t, b, 3, 6)
	checkSeq(t, rec.waitFor(t, 6), 6)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := store.Get(keyOf(st)); !ok {
			break // the vanished file's position was dropped once fully acknowledged
		}
		if time.Now().After(deadline) {
			t.Fatal("position of the removed file was never dropped")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRotatedWhileDownIsFinishedFirst(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	cp := filepath.Join(dir, "pos.json")
	appendLines(t, path, 0, 10)
	store, _ := checkpoint.Open(cp)
	rec := &recorder{}
	stop := start(t, testConfig(path), rec, store)
	rec.waitFor(t, 10)
	stop()
	store.Flush()

	// While the shipper is down: more lines, then rotation to a name the glob does not match,
	// and new lines in the successor.
	appendLines(t, path, 10, 15)
	os.Rename(path, path+".1")
	f, _ := os.Create(path)
	for i := 15; i < 18; i++ {
		fmt.Fprintln(f, spamdykeLine(i))
	}
	f.Close()

	store2, _ := checkpoint.Open(cp)
	rec2 := &recorder{}
	stop = start(t, testConfig(path), rec2, store2)
	defer stop()
	rec2.waitFor(t, 8)
	time.Sleep(30 * time.Millisecond)
	got := rec2.values()
	if len(got) != 8 {
		t.Fatalf("got %d lines: %q", len(got), got)
	}
	for i, v := range got {
		if v != spamdykeLine(10+i) {
			t.Fatalf("line %d = %q, want line %d", i, v, 10+i)
		}
	}
}
