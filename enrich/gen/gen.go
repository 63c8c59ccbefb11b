// Package gen owns `mxtrail gen`: a deterministic, seeded generator of realistic fleet logs for
// every seed product (spamdyke, qmail, ICDSoft, smtpf, Isode, MailEnable, IMail), with a
// ground-truth file that says, per SMTP session, what the session assembler must find.
//
// Each host is simulated as a stream of overlapping SMTP sessions in event time: sessions
// arrive at random, their lines are merged by time, so sessions interleave within a file, pids
// and sockets are reused, and hosts have clock skew. Lines are written exactly in the on-disk
// layouts of /work/shared/FORMATS.md and corpus/real (see doc.go for each dialect's layout and
// for the layouts that had to be chosen because no real sample exists: Isode, the MailEnable
// debug log and the IMail antispam log). Garbage lines are sprinkled in and counted.
//
// Output: one log file per host and dialect, truth.jsonl (one Truth object per session, in the
// order sessions end within each host, hosts in order) and summary.json (a Summary). The same
// Options give byte-identical output. Memory is bounded by the open sessions of one host.
package gen

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// Product names, as the parser and the session record spell them.
const (
	ProductSpamdyke   = "spamdyke"
	ProductQmail      = "qmail"
	ProductICDSoft    = "icdsoft"
	ProductSmtpf      = "smtpf"
	ProductIsode      = "isode"
	ProductMailEnable = "mailenable"
	ProductIMail      = "imail"
)

// Products lists every product the generator can simulate, in the order hosts are assigned.
func Products() []string {
	return []string{ProductSmtpf, ProductICDSoft, ProductSpamdyke, ProductQmail, ProductIsode,
		ProductMailEnable, ProductIMail}
}

// Options configure a run. The zero value is not valid; start from Defaults().
type Options struct {
	Seed        uint64        // every random choice derives from it
	Hosts       int           // number of hosts; products are assigned round-robin over Products (or ProductList)
	Sessions    int           // total sessions over the fleet; 0 means: stop at Lines
	Lines       int           // approximate total lines over the fleet when Sessions is 0
	Start       time.Time     // wall-clock time of the first session (before skew)
	Concurrency float64       // mean number of concurrently open sessions per host
	GarbageRate float64       // probability that a garbage line precedes a log line (0..0.5)
	Reorder     float64       // probability that a line is written after the next line of its file (0..0.5)
	MaxSkew     time.Duration // each host's clock is off by a random amount in [-MaxSkew, MaxSkew]
	ProductList []string      // products to use; empty means all of Products()
	OutDir      string        // where files go (ignored when Create is set)
	// Create opens an output file by base name; nil means create it under OutDir. Tests and
	// benchmarks use it to keep output in memory or discard it.
	Create func(name string) (io.WriteCloser, error)
}

// Defaults returns the options used by `mxtrail gen` without flags.
func Defaults() Options {
	return Options{
		Seed:        1,
		Hosts:       10,
		Lines:       1_000_000,
		Start:       time.Date(2021, 3, 9, 0, 0, 0, 0, time.UTC),
		Concurrency: 12,
		GarbageRate: 0.001,
		MaxSkew:     90 * time.Second,
	}
}

// Validate reports every problem with o at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Hosts < 1 || o.Hosts > 10000 {
		errs = append(errs, fmt.Errorf("hosts %d: must be 1..10000", o.Hosts))
	}
	if o.Sessions < 0 {
		errs = append(errs, fmt.Errorf("sessions %d: must not be negative", o.Sessions))
	}
	if o.Lines < 0 {
		errs = append(errs, fmt.Errorf("lines %d: must not be negative", o.Lines))
	}
	if o.Sessions == 0 && o.Lines == 0 {
		errs = append(errs, errors.New("one of sessions or lines must be positive"))
	}
	if o.Start.IsZero() {
		errs = append(errs, errors.New("start time is not set"))
	}
	if !(o.Concurrency >= 1 && o.Concurrency <= 10000) {
		errs = append(errs, fmt.Errorf("concurrency %v: must be 1..10000", o.Concurrency))
	}
	if !(o.GarbageRate >= 0 && o.GarbageRate <= 0.5) {
		errs = append(errs, fmt.Errorf("garbage rate %v: must be 0..0.5", o.GarbageRate))
	}
	if !(o.Reorder >= 0 && o.Reorder <= 0.5) {
		errs = append(errs, fmt.Errorf("reorder rate %v: must be 0..0.5", o.Reorder))
	}
	if o.MaxSkew < 0 || o.MaxSkew > 24*time.Hour {
		errs = append(errs, fmt.Errorf("max skew %v: must be 0..24h", o.MaxSkew))
	}
	known := map[string]bool{}
	for _, p := range Products() {
		known[p] = true
	}
	for _, p := range o.ProductList {
		if !known[p] {
			errs = append(errs, fmt.Errorf("product %q: unknown (want one of %s)", p, strings.Join(Products(), ", ")))
		}
	}
	if o.Create == nil && o.OutDir == "" {
		errs = append(errs, errors.New("output directory is not set"))
	}
	return errors.Join(errs...)
}

// TruthRecipient is one RCPT TO of a ground-truth session.
type TruthRecipient struct {
	Address   string         `json:"address"`
	Outcome   record.Outcome `json:"outcome"`
	SMTPCode  int            `json:"smtp_code"`
	Permanent bool           `json:"permanent"`
}

// TruthPos locates a line: file base name, byte offset and 1-based line number.
type TruthPos struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	Line   int    `json:"line"`
}

// Truth is the expected session record of one generated session.
type Truth struct {
	Host       string           `json:"host"`
	Product    string           `json:"product"`
	SessionKey string           `json:"session_key"`
	StartTime  time.Time        `json:"start_time"` // as written in the first line (host clock, read as UTC)
	EndTime    time.Time        `json:"end_time"`   // as written in the last line
	ClientIP   string           `json:"client_ip"`
	HELO       string           `json:"helo"`
	MailFrom   string           `json:"mail_from"`
	AuthUser   string           `json:"auth_user"`
	TLS        bool             `json:"tls"`
	Outcome    record.Outcome   `json:"outcome"`
	Permanent  bool             `json:"permanent"`
	SMTPCode   int              `json:"smtp_code"`
	Reason     string           `json:"reason"` // the product's raw code or reply that decided it
	Flags      []string         `json:"flags"`
	Recipients []TruthRecipient `json:"recipients"`
	Delivery   record.Delivery  `json:"delivery"`
	Lines      int              `json:"lines"`
	First      TruthPos         `json:"first"`
	Last       TruthPos         `json:"last"`
}

// FileSummary counts what went into one output file.
type FileSummary struct {
	Name    string `json:"name"`
	Host    string `json:"host"`
	Dialect string `json:"dialect"` // the parser's --format name
	Lines   int    `json:"lines"`   // every line, garbage included
	Garbage int    `json:"garbage"` // garbage lines among them
	Late    int    `json:"late"`    // lines written after a line of a later session step (Reorder)
	Bytes   int64  `json:"bytes"`
}

// HostSummary describes one simulated host.
type HostSummary struct {
	Host        string  `json:"host"`
	Product     string  `json:"product"`
	SkewSeconds float64 `json:"skew_seconds"`
	Sessions    int     `json:"sessions"`
	MaxOpen     int     `json:"max_open"` // most sessions open at once: what bounds memory
}

// Summary is written to summary.json and returned by Generate.
type Summary struct {
	Seed     uint64                    `json:"seed"`
	Start    time.Time                 `json:"start"`
	Hosts    []HostSummary             `json:"hosts"`
	Files    []FileSummary             `json:"files"`
	Sessions map[string]map[string]int `json:"sessions"` // product -> outcome -> count
	Partial  int                       `json:"partial"`  // ALLOWED sessions with a refused recipient
	Total    struct {
		Sessions int   `json:"sessions"`
		Lines    int   `json:"lines"`
		Garbage  int   `json:"garbage"`
		Bytes    int64 `json:"bytes"`
	} `json:"total"`
}

// Truth and summary file names.
const (
	TruthFile   = "truth.jsonl"
	SummaryFile = "summary.json"
)

// Generate runs the simulation described by opts and writes the logs, truth.jsonl and
// summary.json. It honours ctx between sessions.
func Generate(ctx context.Context, opts Options) (*Summary, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("gen options: %w", err)
	}
	create := opts.Create
	if create == nil {
		if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
			return nil, fmt.Errorf("create output directory %q: %w", opts.OutDir, err)
		}
		dir := opts.OutDir
		create = func(name string) (io.WriteCloser, error) { return os.Create(filepath.Join(dir, name)) }
	}
	products := opts.ProductList
	if len(products) == 0 {
		products = Products()
	}
	tf, err := create(TruthFile)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", TruthFile, err)
	}
	truthW := bufio.NewWriterSize(tf, 256<<10)
	sum := &Summary{Seed: opts.Seed, Start: opts.Start.UTC(), Sessions: map[string]map[string]int{}}

	// Budgets are split evenly over hosts; the first hosts take the remainder.
	var firstErr error
	for i := 0; i < opts.Hosts && firstErr == nil; i++ {
		var sessions, lines int
		if opts.Sessions > 0 {
			sessions = opts.Sessions / opts.Hosts
			if i < opts.Sessions%opts.Hosts {
				sessions++
			}
		} else {
			lines = opts.Lines / opts.Hosts
			if i < opts.Lines%opts.Hosts {
				lines++
			}
		}
		h, err := newHost(&opts, i, products[i%len(products)], create, truthW, sum)
		if err != nil {
			firstErr = err
			break
		}
		if err := h.run(ctx, sessions, lines); err != nil {
			firstErr = err
		}
		if err := h.close(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if err := truthW.Flush(); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("write %s: %w", TruthFile, err)
	}
	if err := tf.Close(); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("close %s: %w", TruthFile, err)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	for _, f := range sum.Files {
		sum.Total.Lines += f.Lines
		sum.Total.Garbage += f.Garbage
		sum.Total.Bytes += f.Bytes
	}
	sf, err := create(SummaryFile)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", SummaryFile, err)
	}
	enc := json.NewEncoder(sf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sum); err != nil {
		sf.Close()
		return nil, fmt.Errorf("write %s: %w", SummaryFile, err)
	}
	if err := sf.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", SummaryFile, err)
	}
	return sum, nil
}

// ---------------------------------------------------------------------------------------
// One host: files, clock, id spaces and the merge of its sessions' lines by time.

type outFile struct {
	sum  *FileSummary
	wc   io.WriteCloser
	w    *bufio.Writer
	held *item // a line held back by Reorder
}

// item is one pending log line (or an atomically written block of lines) of a session.
type item struct {
	at    int64 // host-clock milliseconds
	seq   uint64
	file  uint8
	lines uint16 // lines in the block (ICDSoft writes whole groups at once)
	start int32  // byte range in sess.buf
	end   int32
	sess  *session
}

type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int)  { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)    { *h = append(*h, x.(*item)) }
func (h *itemHeap) Pop() (x any)  { old := *h; n := len(old); x, *h = old[n-1], old[:n-1]; return }
func (h itemHeap) peek() *item    { return h[0] }
func (h *itemHeap) push(it *item) { heap.Push(h, it) }

type session struct {
	t       Truth
	buf     []byte
	items   []item
	pending int
	first   bool
	res     resolution // time resolution of start/end as written
	release func()     // frees the session's pid/socket once its last line is out
}

// resolution says how precisely a dialect writes time, so truth times equal what is written.
type resolution int64

const (
	resMilli  resolution = 1
	resSecond resolution = 1000
	resMinute resolution = 60000
)

type host struct {
	opts     *Options
	name     string
	product  string
	skew     int64 // ms added to every timestamp
	rng      *rand.Rand
	files    []*outFile
	create   func(string) (io.WriteCloser, error)
	truth    *bufio.Writer
	sum      *Summary
	hsum     *HostSummary
	pq       itemHeap
	seq      uint64
	lines    int // log lines written (garbage excluded)
	tbuf     []byte
	gbuf     []byte
	free     []*session
	model    productModel
	now      int64 // wall-clock ms (before skew) of the next arrival
	meanGap  float64
	queued   int // lines scheduled but not yet written
	open     int // sessions with lines still queued
	zoneList []string
}

// productModel builds one product's sessions on a host.
type productModel interface {
	// dialects lists the files of the host, in file-index order.
	dialects() []string
	// build fills s with the lines and truth of a session that starts at host-clock ms.
	build(h *host, s *session, at int64)
}

func newHost(o *Options, idx int, product string, create func(string) (io.WriteCloser, error), truth *bufio.Writer, sum *Summary) (*host, error) {
	h := &host{
		opts:    o,
		product: product,
		rng:     rand.New(rand.NewPCG(o.Seed, uint64(idx)*0x9e3779b97f4a7c15+1)),
		create:  create,
		truth:   truth,
		sum:     sum,
	}
	h.name = hostName(product, idx)
	if o.MaxSkew > 0 {
		h.skew = h.rng.Int64N(2*o.MaxSkew.Milliseconds()+1) - o.MaxSkew.Milliseconds()
	}
	h.model = newModel(product, h)
	sum.Hosts = append(sum.Hosts, HostSummary{Host: h.name, Product: product, SkewSeconds: float64(h.skew) / 1000})
	h.hsum = &sum.Hosts[len(sum.Hosts)-1]
	for _, d := range h.model.dialects() {
		name := h.name + "." + d + ".log"
		wc, err := create(name)
		if err != nil {
			h.close()
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		sum.Files = append(sum.Files, FileSummary{Name: name, Host: h.name, Dialect: formatOf(d)})
		h.files = append(h.files, &outFile{wc: wc, w: bufio.NewWriterSize(wc, 256<<10)})
	}
	// Pointers into sum.Files are taken after all appends of this host; earlier hosts'
	// pointers are not kept.
	base := len(sum.Files) - len(h.files)
	for i, f := range h.files {
		f.sum = &sum.Files[base+i]
	}
	h.now = o.Start.UnixMilli()
	// A mean session lasts ~10 s of host time; arrivals are spaced so that on average
	// Concurrency sessions are open at once.
	h.meanGap = 10000 / o.Concurrency
	return h, nil
}

// formatOf maps a file's dialect suffix to the parser's --format name: IMail's antispam log
// is a separate file but the same "imail" dialect.
func formatOf(suffix string) string {
	if suffix == "imail-antispam" {
		return "imail"
	}
	return suffix
}

func hostName(product string, idx int) string {
	prefix := map[string]string{
		ProductSmtpf: "gw", ProductICDSoft: "srv", ProductSpamdyke: "mx", ProductQmail: "qm",
		ProductIsode: "mswitch", ProductMailEnable: "me", ProductIMail: "imail",
	}[product]
	return prefix + string(appendPad(nil, idx+1, 2))
}

func (h *host) close() error {
	var first error
	for _, f := range h.files {
		if f == nil {
			continue
		}
		if err := f.w.Flush(); err != nil && first == nil {
			first = fmt.Errorf("write %s: %w", f.sum.Name, err)
		}
		if err := f.wc.Close(); err != nil && first == nil {
			first = fmt.Errorf("close %s: %w", f.sum.Name, err)
		}
	}
	return first
}

// run starts sessions until the session or line budget is spent, then drains every open one.
func (h *host) run(ctx context.Context, sessions, lines int) error {
	started := 0
	for {
		if sessions > 0 && started >= sessions || sessions == 0 && h.lines+h.pendingLines() >= lines {
			break
		}
		if started%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		at := h.now + h.skew
		// Everything due before this arrival goes out first, so files stay in time order.
		if err := h.drain(at); err != nil {
			return err
		}
		s := h.newSession()
		h.model.build(h, s, at)
		h.schedule(s)
		started++
		gap := int64(h.rng.ExpFloat64()*h.meanGap) + 1
		h.now += gap
	}
	if err := h.drain(math.MaxInt64); err != nil {
		return err
	}
	return h.flushHeld()
}

func (h *host) pendingLines() int { return h.queued }

func (h *host) newSession() *session {
	var s *session
	if n := len(h.free); n > 0 {
		s = h.free[n-1]
		h.free = h.free[:n-1]
		buf, items := s.buf[:0], s.items[:0]
		rc, fl := s.t.Recipients[:0], s.t.Flags[:0]
		*s = session{buf: buf, items: items}
		s.t.Recipients, s.t.Flags = rc, fl
	} else {
		s = &session{}
	}
	s.t.Host = h.name
	s.t.Product = h.product
	s.res = resSecond
	return s
}

func (h *host) schedule(s *session) {
	h.open++
	if h.open > h.hsum.MaxOpen {
		h.hsum.MaxOpen = h.open
	}
	s.pending = len(s.items)
	for i := range s.items {
		it := &s.items[i]
		it.sess = s
		h.seq++
		it.seq = h.seq
		h.queued += int(it.lines)
		h.pq.push(it)
	}
}

// drain writes every pending line due strictly before until.
func (h *host) drain(until int64) error {
	for len(h.pq) > 0 && h.pq.peek().at < until {
		it := heap.Pop(&h.pq).(*item)
		if err := h.emit(it); err != nil {
			return err
		}
	}
	return nil
}

// emit writes one due item. With Reorder, an item may instead be held back and written just
// after the next item of the same file: a line arriving late, as through a syslog relay.
func (h *host) emit(it *item) error {
	f := h.files[it.file]
	if held := f.held; held != nil {
		f.held = nil
		if err := h.write(it); err != nil {
			return err
		}
		f.sum.Late += int(held.lines)
		return h.write(held)
	}
	if h.opts.Reorder > 0 && h.rng.Float64() < h.opts.Reorder {
		f.held = it
		return nil
	}
	return h.write(it)
}

// flushHeld writes the items still held back at the end of the run.
func (h *host) flushHeld() error {
	for _, f := range h.files {
		if held := f.held; held != nil {
			f.held = nil
			if err := h.write(held); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *host) write(it *item) error {
	f := h.files[it.file]
	s := it.sess
	if h.opts.GarbageRate > 0 && h.rng.Float64() < h.opts.GarbageRate {
		h.gbuf = appendGarbage(h.gbuf[:0], h.rng, it.at)
		if _, err := f.w.Write(h.gbuf); err != nil {
			return fmt.Errorf("write %s: %w", f.sum.Name, err)
		}
		f.sum.Lines++
		f.sum.Garbage++
		f.sum.Bytes += int64(len(h.gbuf))
	}
	data := s.buf[it.start:it.end]
	h.queued -= int(it.lines)
	pos := TruthPos{File: f.sum.Name, Offset: f.sum.Bytes, Line: f.sum.Lines + 1}
	if !s.first {
		s.first = true
		s.t.First = pos
	}
	if _, err := f.w.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", f.sum.Name, err)
	}
	n := int(it.lines)
	f.sum.Lines += n
	f.sum.Bytes += int64(len(data))
	h.lines += n
	s.t.Lines += n
	// For a block, the last position is its last line.
	if n > 1 {
		lastNL := len(data) - 1
		prev := 0
		for i := lastNL - 1; i >= 0; i-- {
			if data[i] == '\n' {
				prev = i + 1
				break
			}
		}
		pos.Offset += int64(prev)
		pos.Line += n - 1
	}
	s.t.Last = pos
	s.pending--
	if s.pending == 0 {
		return h.finish(s)
	}
	return nil
}

func (r resolution) trunc(ms int64) time.Time {
	ms -= ms % int64(r)
	return time.UnixMilli(ms).UTC()
}

func (h *host) finish(s *session) error {
	lo, hi := s.items[0].at, s.items[0].at
	for _, it := range s.items {
		lo, hi = min(lo, it.at), max(hi, it.at)
	}
	s.t.StartTime, s.t.EndTime = s.res.trunc(lo), s.res.trunc(hi)
	h.tbuf = appendTruth(h.tbuf[:0], &s.t)
	if _, err := h.truth.Write(h.tbuf); err != nil {
		return fmt.Errorf("write %s: %w", TruthFile, err)
	}
	m := h.sum.Sessions[s.t.Product]
	if m == nil {
		m = map[string]int{}
		h.sum.Sessions[s.t.Product] = m
	}
	m[string(s.t.Outcome)]++
	for _, f := range s.t.Flags {
		if f == FlagPartial {
			h.sum.Partial++
		}
	}
	h.sum.Total.Sessions++
	h.hsum.Sessions++
	h.open--
	if s.release != nil {
		s.release()
	}
	h.free = append(h.free, s)
	return nil
}

// FlagPartial marks an ALLOWED session in which some recipient was refused.
const FlagPartial = "partial"

// ---------------------------------------------------------------------------------------
// Session building helpers used by the product models.

// line starts a log line in s.buf and returns the offset to pass to push.
func (s *session) mark() int { return len(s.buf) }

// push ends the line (or block of lines) that started at start and schedules it at host
// time at, into file f.
func (s *session) push(at int64, f uint8, start int) {
	s.buf = append(s.buf, '\n')
	n := bytes.Count(s.buf[start:], newline)
	s.items = append(s.items, item{at: at, file: f, lines: uint16(n), start: int32(start), end: int32(len(s.buf))})
}

var newline = []byte{'\n'}

// rcpt adds a recipient to the truth.
func (s *session) rcpt(addr string, o record.Outcome, code int) {
	s.t.Recipients = append(s.t.Recipients, TruthRecipient{Address: addr, Outcome: o, SMTPCode: code, Permanent: code >= 500})
}

// rollUp sets the session outcome from its recipients (the issue's rule): ALLOWED when any
// recipient was accepted (flag partial when another was refused); otherwise the refusal of the
// earliest stage, the first such recipient on a tie. Sessions without recipients keep the
// label given in sessionLabel.
func (s *session) rollUp(sessionLabel record.Outcome, code int, reason string) {
	t := &s.t
	t.Reason = reason
	if len(t.Recipients) == 0 {
		t.Outcome, t.SMTPCode, t.Permanent = sessionLabel, code, code >= 500
		return
	}
	best := -1
	allowed, refused := false, false
	for i, r := range t.Recipients {
		if r.Outcome == record.Allowed {
			if !allowed {
				t.SMTPCode = r.SMTPCode
			}
			allowed = true
			continue
		}
		refused = true
		if best < 0 || r.Outcome.Stage() < t.Recipients[best].Outcome.Stage() {
			best = i
		}
	}
	if allowed {
		t.Outcome, t.Permanent = record.Allowed, false
		if refused {
			t.Flags = append(t.Flags, FlagPartial)
		}
		return
	}
	r := t.Recipients[best]
	t.Outcome, t.SMTPCode, t.Permanent = r.Outcome, r.SMTPCode, r.Permanent
}

func appendTruth(b []byte, t *Truth) []byte {
	b = append(b, `{"host":`...)
	b = appendJSONString(b, t.Host)
	b = append(b, `,"product":`...)
	b = appendJSONString(b, t.Product)
	b = append(b, `,"session_key":`...)
	b = appendJSONString(b, t.SessionKey)
	b = append(b, `,"start_time":`...)
	b = appendJSONTime(b, t.StartTime)
	b = append(b, `,"end_time":`...)
	b = appendJSONTime(b, t.EndTime)
	b = append(b, `,"client_ip":`...)
	b = appendJSONString(b, t.ClientIP)
	b = append(b, `,"helo":`...)
	b = appendJSONString(b, t.HELO)
	b = append(b, `,"mail_from":`...)
	b = appendJSONString(b, t.MailFrom)
	b = append(b, `,"auth_user":`...)
	b = appendJSONString(b, t.AuthUser)
	b = append(b, `,"tls":`...)
	b = appendBool(b, t.TLS)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, string(t.Outcome))
	b = append(b, `,"permanent":`...)
	b = appendBool(b, t.Permanent)
	b = append(b, `,"smtp_code":`...)
	b = appendInt(b, t.SMTPCode)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, t.Reason)
	b = append(b, `,"flags":[`...)
	for i, f := range t.Flags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f)
	}
	b = append(b, `],"recipients":[`...)
	for i, r := range t.Recipients {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"address":`...)
		b = appendJSONString(b, r.Address)
		b = append(b, `,"outcome":`...)
		b = appendJSONString(b, string(r.Outcome))
		b = append(b, `,"smtp_code":`...)
		b = appendInt(b, r.SMTPCode)
		b = append(b, `,"permanent":`...)
		b = appendBool(b, r.Permanent)
		b = append(b, '}')
	}
	b = append(b, `],"delivery":`...)
	b = appendJSONString(b, string(t.Delivery))
	b = append(b, `,"lines":`...)
	b = appendInt(b, t.Lines)
	b = appendPos(append(b, `,"first":`...), t.First)
	b = appendPos(append(b, `,"last":`...), t.Last)
	return append(b, '}', '\n')
}

func appendPos(b []byte, p TruthPos) []byte {
	b = append(b, `{"file":`...)
	b = appendJSONString(b, p.File)
	b = append(b, `,"offset":`...)
	b = appendInt(b, int(p.Offset))
	b = append(b, `,"line":`...)
	b = appendInt(b, p.Line)
	return append(b, '}')
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// ReadTruth decodes a truth.jsonl stream, calling fn for each session in file order.
func ReadTruth(r io.Reader, fn func(*Truth) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		var t Truth
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			return fmt.Errorf("truth line %d %q: %w", line, truncate(sc.Bytes(), 80), err)
		}
		if err := fn(&t); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read truth: %w", err)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// InMemory returns an Options.Create that keeps every generated file in memory, and the map
// Generate fills with them by base name (for tests and benchmarks).
func InMemory() (create func(name string) (io.WriteCloser, error), files map[string]*bytes.Buffer) {
	files = map[string]*bytes.Buffer{}
	return func(name string) (io.WriteCloser, error) {
		b := &bytes.Buffer{}
		files[name] = b
		return memFile{b}, nil
	}, files
}

type memFile struct{ *bytes.Buffer }

func (memFile) Close() error { return nil }
