// Package tail owns following log files: glob discovery, identity by device+inode plus a
// fingerprint of the first bytes, rotation by rename+create and by copytruncate, line
// splitting with a maximum length, and moving each file's checkpoint only when Kafka has
// acknowledged every line before it.
package tail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/ingest/checkpoint"
	"github.com/mxtrail/mxtrail/ingest/produce"
	"github.com/mxtrail/mxtrail/ingest/wire"
)

// Sender is the Kafka output as the tailer uses it (produce.Producer implements it).
type Sender interface {
	Send(ctx context.Context, in produce.Input, key string, headers []kafka.Header, value []byte, acker produce.Acker, seq uint64) error
}

// Input is one configured glob.
type Input struct {
	Glob    string
	Dialect string
	Host    string // required here; the command fills in the machine's host name
	TZ      string
	// StartAtEnd applies to files found at the first scan with no checkpoint; files that
	// appear later (rotation) are always read from the beginning so nothing is lost.
	StartAtEnd bool
}

// Config of the tailer.
type Config struct {
	Inputs []Input
	// Poll is how often open files are read and globs re-evaluated.
	Poll time.Duration
	// MaxLine truncates longer lines (flagged in the "truncated" header).
	MaxLine int
	// FingerprintSize is how many leading bytes identify a file's content.
	FingerprintSize int
	// RotateGrace keeps reading a file after it left its path (rename rotation) until it has
	// been idle at EOF this long, for writers that still hold it open.
	RotateGrace time.Duration
	// ReadBuffer is the read size per syscall.
	ReadBuffer int
	Logger     *slog.Logger
	Metrics    *Metrics
	// Counters receives per-input read and truncation counts (shared with other inputs).
	Counters *produce.Metrics
}

// Validate returns every problem with c.
func (c *Config) Validate() []error {
	var errs []error
	for i, in := range c.Inputs {
		if _, err := filepath.Match(in.Glob, ""); err != nil || in.Glob == "" {
			errs = append(errs, fmt.Errorf("tail: input %d: bad glob %q", i, in.Glob))
		}
		if in.Host == "" {
			errs = append(errs, fmt.Errorf("tail: input %d (%q): empty host", i, in.Glob))
		}
	}
	if c.Poll <= 0 || c.RotateGrace < 0 {
		errs = append(errs, errors.New("tail: poll must be positive and rotate grace not negative"))
	}
	if c.MaxLine < 1 || c.FingerprintSize < 1 || c.ReadBuffer < 512 {
		errs = append(errs, fmt.Errorf("tail: need max line >= 1 (%d), fingerprint size >= 1 (%d), read buffer >= 512 (%d)", c.MaxLine, c.FingerprintSize, c.ReadBuffer))
	}
	return errs
}

// Tailer follows the configured files. Run it once.
type Tailer struct {
	cfg   Config
	out   Sender
	store *checkpoint.Store
	log   *slog.Logger
	m     *Metrics

	files []*file // open files in discovery order: a rotated file is read before its successor
	// snap is files as of the last scan or reap, for the lag gauge's own goroutine: the Run
	// loop can block for as long as an outage lasts (sending waits for room), which is when
	// the lag matters.
	snap      atomic.Pointer[[]*file]
	closing   []*file // closed, waiting for their last acknowledgements before the position is dropped
	firstRun  bool
	buf       []byte
	linesRead int // lines emitted since the last metrics update
}

// New builds a tailer that sends to out and keeps positions in store.
func New(cfg Config, out Sender, store *checkpoint.Store) (*Tailer, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Counters == nil {
		cfg.Counters = produce.NewMetrics(nil)
	}
	return &Tailer{cfg: cfg, out: out, store: store, log: cfg.Logger, m: cfg.Metrics, firstRun: true,
		buf: make([]byte, cfg.ReadBuffer)}, nil
}

// file is one open file. The tail goroutine owns every field but ack, which the producer's
// goroutine uses through Acked.
type file struct {
	// ackNow is ack for the lag gauge's goroutine (ack is replaced after a truncation).
	ackNow  atomic.Pointer[ackState]
	key     checkpoint.Key
	path    string
	f       *os.File
	in      *Input
	host    string
	readOff int64 // next byte to read
	fp      []byte
	carry   []byte // partial line (no newline yet), at most MaxLine bytes
	over    int    // bytes of the current over-long line beyond carry
	gone    bool   // no longer at any globbed path
	idle    time.Time
	size    int64
	ack     *ackState
}

// ackState is shared with the producer goroutine. gen changes when the file is truncated, so
// late acknowledgements for the old content cannot move the new content's position.
type ackState struct {
	mu    sync.Mutex
	t     *checkpoint.Tracker
	store *checkpoint.Store
	pos   checkpoint.Position
	stale bool // replaced after a truncation: acknowledgements no longer move the position
}

// Acked implements produce.Acker.
func (a *ackState) Acked(seq uint64) { a.AckedRange(seq, seq) }

// AckedRange implements produce.RangeAcker: one lock, clock read and store update for a run
// of lines instead of one per line.
func (a *ackState) AckedRange(first, last uint64) {
	off := a.t.AckRange(first, last)
	a.mu.Lock()
	if !a.stale && off != a.pos.Offset {
		a.pos.Offset = off
		a.pos.Seen = time.Now()
		a.store.Set(a.pos)
	}
	a.mu.Unlock()
}

func (a *ackState) acked() int64 { return a.t.Acked() }

// Run follows files until ctx ends. It returns nil on cancellation; errors of single files
// are logged and counted, never fatal.
func (t *Tailer) Run(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.Poll)
	defer tick.Stop()
	defer func() {
		for _, f := range t.files {
			f.f.Close()
		}
	}()
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		t.lagLoop(lagCtx)
	}()
	defer func() { stopLag(); <-lagDone }() // before the files close
	for {
		t.scan()
		t.publish()
		if err := t.readAll(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		t.reap()
		t.publish()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// scan evaluates the globs, opens new files and marks files that left their paths.
func (t *Tailer) scan() {
	if t.firstRun {
		t.recoverRotated()
	}
	seen := map[checkpoint.Key]bool{}
	for i := range t.cfg.Inputs {
		in := &t.cfg.Inputs[i]
		paths, _ := filepath.Glob(in.Glob) // the pattern was validated
		sort.Strings(paths)
		for _, p := range paths {
			st, err := os.Stat(p)
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					t.fileError("stat", p, err)
				}
				continue
			}
			if !st.Mode().IsRegular() {
				continue
			}
			k := keyOf(st)
			if seen[k] {
				continue // two globs match the same file: read it once
			}
			seen[k] = true
			if f := t.find(k); f != nil {
				f.path = p
				f.gone = false
				continue
			}
			t.open(in, p, k)
		}
	}
	for _, f := range t.files {
		if f.gone {
			seen[f.key] = true // recovered at start-up, or already known to have left its path
		}
		if !seen[f.key] && !f.gone {
			f.gone = true
			f.idle = time.Now()
			t.log.Info("file left its path (rotated or removed); reading it to the end", "path", f.path)
		}
	}
	t.firstRun = false
	t.m.files.Set(float64(len(t.files)))
}

// recoverRotated finishes files that were rotated to a name outside the globs while the
// shipper was down: a checkpointed inode no longer at its path is looked for in the same
// directory and, if its first bytes still match, read from the checkpoint to its end before
// anything else -- before its successor at the old path.
func (t *Tailer) recoverRotated() {
	for _, pos := range t.store.All() {
		in := t.inputFor(pos.Path)
		if in == nil {
			continue
		}
		if st, err := os.Stat(pos.Path); err == nil && keyOf(st) == pos.Key {
			continue // still at its path: the glob finds it
		}
		dir := filepath.Dir(pos.Path)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() || keyOf(info) != pos.Key {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if t.inputFor(p) != nil || info.Size() <= pos.Offset {
				break // matched by a glob (read normally), or nothing left to read
			}
			t.log.Info("finishing a file rotated while the shipper was down", "path", p, "was", pos.Path)
			t.open(in, p, pos.Key)
			if f := t.find(pos.Key); f != nil {
				f.gone, f.idle = true, time.Now()
			}
			break
		}
	}
}

// inputFor returns the input whose glob matches path.
func (t *Tailer) inputFor(path string) *Input {
	for i := range t.cfg.Inputs {
		if ok, _ := filepath.Match(t.cfg.Inputs[i].Glob, path); ok {
			return &t.cfg.Inputs[i]
		}
	}
	return nil
}

func (t *Tailer) find(k checkpoint.Key) *file {
	for _, f := range t.files {
		if f.key == k {
			return f
		}
	}
	return nil
}

func keyOf(st os.FileInfo) checkpoint.Key {
	s := st.Sys().(*syscall.Stat_t)
	return checkpoint.Key{Dev: uint64(s.Dev), Ino: uint64(s.Ino)}
}

func (t *Tailer) open(in *Input, path string, k checkpoint.Key) {
	fd, err := os.Open(path)
	if err != nil {
		t.fileError("open", path, err)
		return
	}
	st, err := fd.Stat()
	if err != nil || keyOf(st) != k {
		fd.Close()
		return // replaced between stat and open: the next scan sees the new one
	}
	f := &file{key: k, path: path, f: fd, in: in, host: in.Host, size: st.Size()}
	f.fp = t.readPrefix(fd, t.cfg.FingerprintSize)
	start := int64(0)
	how := "new file, from the beginning"
	if pos, ok := t.store.Get(k); ok {
		// Same inode: the same file only if its first bytes are what we fingerprinted.
		if len(f.fp) >= len(pos.Fingerprint) && bytes.Equal(f.fp[:len(pos.Fingerprint)], pos.Fingerprint) && pos.Offset <= st.Size() {
			start, how = pos.Offset, "resumed from checkpoint"
		} else {
			how = "checkpointed inode has other content (reused inode or truncated): from the beginning"
		}
	} else if t.firstRun && in.StartAtEnd {
		start, how = st.Size(), "new file, from the end"
	}
	f.readOff = start
	f.ack = &ackState{t: checkpoint.NewTracker(start), store: t.store,
		pos: checkpoint.Position{Key: k, Path: path, Fingerprint: f.fp, Offset: start, Seen: time.Now()}}
	f.ackNow.Store(f.ack)
	t.store.Set(f.ack.pos)
	t.files = append(t.files, f)
	t.log.Info("following file", "path", path, "inode", k.Ino, "offset", start, "how", how)
}

func (t *Tailer) readPrefix(fd *os.File, n int) []byte {
	b := make([]byte, n)
	m, err := fd.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return nil
	}
	return b[:m]
}

// readAll reads every open file to its current end, oldest first.
func (t *Tailer) readAll(ctx context.Context) error {
	for _, f := range t.files {
		if err := t.read(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tailer) read(ctx context.Context, f *file) error {
	st, err := f.f.Stat()
	if err != nil {
		t.fileError("stat", f.path, err)
		return nil
	}
	f.size = st.Size()
	if t.truncated(f) {
		t.m.truncations.Inc()
		t.log.Warn("file truncated (copytruncate?); reading it again from the beginning", "path", f.path, "was_at", f.readOff, "size", f.size)
		f.readOff, f.carry, f.over = 0, f.carry[:0], 0
		f.ack.mu.Lock()
		f.ack.stale = true
		f.ack.mu.Unlock()
		f.fp = t.readPrefix(f.f, t.cfg.FingerprintSize)
		f.ack = &ackState{t: checkpoint.NewTracker(0), store: t.store,
			pos: checkpoint.Position{Key: f.key, Path: f.path, Fingerprint: f.fp, Seen: time.Now()}}
		f.ackNow.Store(f.ack)
		t.store.Set(f.ack.pos)
	}
	progressed := false
	for f.readOff < f.size {
		n, err := f.f.ReadAt(t.buf, f.readOff)
		if n > 0 {
			progressed = true
			err := t.lines(ctx, f, t.buf[:n])
			t.cfg.Counters.Read(produce.InputFile, t.linesRead, n) // once per read, not per line
			t.linesRead = 0
			if err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.fileError("read", f.path, err)
			break
		}
	}
	if len(f.fp) < t.cfg.FingerprintSize && f.size > int64(len(f.fp)) {
		// The file was shorter than the fingerprint when opened; extend it so a restart
		// compares more bytes. Positions already stored keep their shorter prefix, which
		// remains a valid prefix.
		fp := t.readPrefix(f.f, t.cfg.FingerprintSize)
		if bytes.HasPrefix(fp, f.fp) {
			f.fp = fp
			f.ack.mu.Lock()
			f.ack.pos.Fingerprint = fp
			f.ack.mu.Unlock()
		}
	}
	if progressed {
		f.idle = time.Now()
	}
	return nil
}

// truncated reports whether f's content was replaced under us: smaller than what we read,
// or its first bytes changed.
func (t *Tailer) truncated(f *file) bool {
	if f.size < f.readOff {
		return true
	}
	if len(f.fp) == 0 {
		return false
	}
	now := make([]byte, len(f.fp))
	n, _ := f.f.ReadAt(now, 0)
	return !bytes.Equal(now[:n], f.fp)
}

// lines splits chunk (read at f.readOff) into lines and sends each complete one.
func (t *Tailer) lines(ctx context.Context, f *file, chunk []byte) error {
	hdr := t.headers(f, nil)
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			t.appendCarry(f, chunk)
			f.readOff += int64(len(chunk))
			return nil
		}
		seg := chunk[:i]
		f.readOff += int64(i + 1)
		chunk = chunk[i+1:]
		var line []byte
		if len(f.carry) == 0 && f.over == 0 {
			line = seg
			if len(line) > t.cfg.MaxLine {
				if err := t.emit(ctx, f, hdr, line[:t.cfg.MaxLine], len(line)); err != nil {
					return err
				}
				continue
			}
		} else {
			t.appendCarry(f, seg)
			line = f.carry
		}
		total := len(line) + f.over
		if f.over > 0 {
			if err := t.emit(ctx, f, hdr, line, total); err != nil {
				return err
			}
		} else if err := t.emit(ctx, f, hdr, line, 0); err != nil {
			return err
		}
		f.carry, f.over = f.carry[:0], 0
	}
	return nil
}

func (t *Tailer) appendCarry(f *file, b []byte) {
	room := t.cfg.MaxLine - len(f.carry)
	if room >= len(b) {
		f.carry = append(f.carry, b...)
		return
	}
	if room > 0 {
		f.carry = append(f.carry, b[:room]...)
	}
	f.over += len(b) - max(room, 0)
}

// emit sends one line that ends just before f.readOff. origLen > 0 marks a truncated line.
func (t *Tailer) emit(ctx context.Context, f *file, hdr []kafka.Header, line []byte, origLen int) error {
	if n := len(line); n > 0 && line[n-1] == '\r' && origLen == 0 {
		line = line[:n-1]
	}
	if origLen > 0 {
		hdr = t.headers(f, []byte(strconv.Itoa(origLen)))
		t.cfg.Counters.Truncated(produce.InputFile)
	}
	seq := f.ack.t.Add(f.readOff)
	t.linesRead++
	return t.out.Send(ctx, produce.InputFile, f.host, hdr, line, f.ack, seq)
}

// headers builds the headers of the lines of one read; they are shared by those lines.
func (t *Tailer) headers(f *file, truncatedFrom []byte) []kafka.Header {
	h := make([]kafka.Header, 0, 6)
	h = append(h,
		kafka.Header{Key: wire.HeaderHost, Value: []byte(f.host)},
		kafka.Header{Key: wire.HeaderSource, Value: []byte(wire.SourceFile)},
		kafka.Header{Key: wire.HeaderDialect, Value: []byte(f.in.Dialect)},
		kafka.Header{Key: wire.HeaderIngestTime, Value: time.Now().UTC().AppendFormat(nil, wire.IngestTimeLayout)},
	)
	if f.in.TZ != "" {
		h = append(h, kafka.Header{Key: wire.HeaderTZ, Value: []byte(f.in.TZ)})
	}
	if truncatedFrom != nil {
		h = append(h, kafka.Header{Key: wire.HeaderTruncated, Value: truncatedFrom})
	}
	return h
}

// reap closes files that left their path and have been idle at EOF for the grace period,
// and drops positions of closed files once every line is acknowledged.
func (t *Tailer) reap() {
	keep := t.files[:0]
	for _, f := range t.files {
		if f.gone && f.readOff >= f.size && time.Since(f.idle) >= t.cfg.RotateGrace {
			if len(f.carry) > 0 || f.over > 0 {
				// A last line without a newline in a finished file still counts.
				line, orig := f.carry, 0
				if f.over > 0 {
					orig = len(f.carry) + f.over
				}
				if err := t.emit(context.Background(), f, t.headers(f, nil), line, orig); err != nil {
					keep = append(keep, f)
					continue
				}
				f.carry, f.over = nil, 0
				t.cfg.Counters.Read(produce.InputFile, t.linesRead, 0)
				t.linesRead = 0
			}
			f.f.Close()
			t.closing = append(t.closing, f)
			t.log.Info("finished rotated file", "path", f.path, "bytes", f.readOff)
			continue
		}
		keep = append(keep, f)
	}
	clear(t.files[len(keep):])
	t.files = keep
	live := t.closing[:0]
	for _, f := range t.closing {
		if f.ack.t.Pending() == 0 {
			t.store.Delete(f.key)
			continue
		}
		live = append(live, f)
	}
	clear(t.closing[len(live):])
	t.closing = live
	t.m.files.Set(float64(len(t.files)))
}

func (t *Tailer) publish() {
	s := slices.Clone(t.files)
	t.snap.Store(&s)
}

// lagLoop sets the lag gauge every poll interval until ctx ends.
func (t *Tailer) lagLoop(ctx context.Context) {
	tick := time.NewTicker(t.cfg.Poll)
	defer tick.Stop()
	for {
		t.updateLag()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// updateLag sets the gauge to the file bytes not yet acknowledged: each file's size now (a
// stat, not the size the reader last saw) minus its acknowledged offset.
func (t *Tailer) updateLag() {
	p := t.snap.Load()
	if p == nil {
		return
	}
	var lag int64
	for _, f := range *p {
		st, err := f.f.Stat()
		if err != nil {
			continue // closed by reap meanwhile: read to its end
		}
		lag += max(st.Size()-f.ackNow.Load().acked(), 0)
	}
	t.m.lag.Set(float64(lag))
}

func (t *Tailer) fileError(op, path string, err error) {
	t.m.fileErrors.Inc()
	t.log.Warn("file error; carrying on", "op", op, "path", path, "err", err)
}
