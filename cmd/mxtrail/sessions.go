package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/enrich/session"
)

func init() {
	register("sessions", "join parsed lines into session records offline", runSessions)
}

// lineSource yields the parsed lines of one file in order. A line longer than maxLine keeps
// its first maxLine bytes and becomes an unparsed event (counted, never dropped), as in
// `mxtrail parse`.
type lineSource struct {
	name string
	br   *bufio.Reader
	src  event.Source
	ev   event.Event
	long []byte
	off  int64
	ok   bool // ev holds the next line
	err  error
	idx  int
}

func (l *lineSource) next(p *parse.Parser) {
	l.ok = false
	if l.br == nil {
		return
	}
	l.long = l.long[:0]
	cut := false
	n := int64(0)
	for {
		frag, err := l.br.ReadSlice('\n')
		n += int64(len(frag))
		if err == bufio.ErrBufferFull {
			keep := min(len(frag), max(0, maxLine-len(l.long)))
			l.long = append(l.long, frag[:keep]...)
			cut = cut || keep < len(frag)
			continue
		}
		if err != nil && err != io.EOF {
			l.err, l.br = err, nil
			return
		}
		if len(frag) == 0 && len(l.long) == 0 && !cut {
			l.br = nil // EOF
			return
		}
		if err == io.EOF {
			l.br = nil // last line without LF; nothing follows
		}
		frag = bytes.TrimSuffix(frag, []byte("\n"))
		frag = bytes.TrimSuffix(frag, []byte("\r"))
		line := frag
		if len(l.long) > 0 || cut {
			keep := min(len(frag), max(0, maxLine-len(l.long)))
			l.long = append(l.long, frag[:keep]...)
			cut = cut || keep < len(frag)
			line = l.long
		}
		l.src.Line++
		l.src.Offset = l.off
		l.off += n
		p.Parse(&l.ev, line, &l.src)
		if cut {
			l.ev.Parsed, l.ev.Reason = false, reasonTooLong
		}
		l.ok = true
		return
	}
}

func runSessions(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sessions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := session.Defaults()
	format := fs.String("format", "auto", "dialect: "+strings.Join(event.DialectNames(), ", "))
	host := fs.String("host", "", "host name for lines that carry none (ICDSoft, IMail, MailEnable, Isode files)")
	year := fs.Int("year", 0, "year of yearless lines (default: each file's mtime, else the current year)")
	tz := fs.String("tz", "UTC", "IANA time zone of lines without one")
	patterns := fs.String("patterns", "", "directory of extra *.grok pattern files")
	isodeHeader := fs.String("isode-header", "", "grok expression replacing the Isode header pattern")
	idle := fs.Duration("idle-timeout", def.IdleTimeout, "close a session idle this long (event time)")
	late := fs.Duration("lateness", def.Lateness, "join late lines this long after a session's end")
	maxOpen := fs.Int("max-open", def.MaxOpen, "cap on open sessions (the least recently active is evicted)")
	isodeKey := fs.String("isode-key", def.IsodeKeyPrefix, "prefix of the Isode session key token in the event text")
	eventsPath := fs.String("events", "", "also write the notable events (severity error or worse) as JSON lines to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mxtrail sessions [--format F] [--host H] [--year Y] [--tz Z] [FILE...]")
		fmt.Fprintln(stderr, "Joins the lines of all FILEs (stdin when none), one time-ordered stream per host,")
		fmt.Fprintln(stderr, "into session records written as JSON lines; outcome counts go to stderr.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	d, loc, err := lineFlags(*format, *tz, *year)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail sessions: %v\n", err)
		return 2
	}
	cfg := session.Config{IdleTimeout: *idle, Lateness: *late, MaxOpen: *maxOpen, PidReuseGap: def.PidReuseGap, IsodeKeyPrefix: *isodeKey}
	asm, err := session.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail sessions: %v\n", err)
		return 2
	}
	defYear := *year
	if defYear == 0 {
		defYear = time.Now().Year()
	}
	p, err := parse.New(parse.Options{PatternDir: *patterns, IsodeHeader: *isodeHeader, DefaultYear: defYear, Location: loc})
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail sessions: %v\n", err)
		return 1
	}
	code := 0
	var evOut *bufio.Writer
	if *eventsPath != "" {
		ef, err := os.Create(*eventsPath)
		if err != nil {
			fmt.Fprintf(stderr, "mxtrail sessions: %v\n", err)
			return 1
		}
		defer ef.Close()
		evOut = bufio.NewWriterSize(ef, 64<<10)
	}
	var srcs []*lineSource
	add := func(name string, r io.Reader, ref time.Time) {
		l := &lineSource{name: name, br: bufio.NewReaderSize(r, 64<<10), idx: len(srcs), src: event.Source{Host: *host, Dialect: d, File: name, Loc: loc}}
		if *year == 0 {
			l.src.YearRef = ref
		}
		srcs = append(srcs, l)
	}
	files := fs.Args()
	if len(files) == 0 {
		add("-", stdin, time.Time{})
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintf(stderr, "mxtrail sessions: %v\n", err)
			code = 1
			continue
		}
		defer fh.Close()
		var ref time.Time
		if fi, err := fh.Stat(); err == nil {
			ref = fi.ModTime()
		}
		add(f, fh, ref)
	}
	st := newSessionStats()
	// The host of a file is the host of its first parsed line; files are merged by event
	// time into one stream per host (hosts in name order).
	byHost := map[string][]*lineSource{}
	for _, l := range srcs {
		for l.next(p); l.ok && !l.ev.Parsed; l.next(p) {
			asm.Add(&l.ev) // counted as unparsed
		}
		h := ""
		if l.ok {
			h = string(l.ev.Bytes(l.ev.Host))
		}
		byHost[h] = append(byHost[h], l)
	}
	hosts := make([]string, 0, len(byHost))
	for h := range byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	out := bufio.NewWriterSize(stdout, 256<<10)
	var js []byte
	emit := func(rs []record.Session) {
		for i := range rs {
			st.add(&rs[i])
			js = rs[i].AppendJSON(js[:0])
			js = append(js, '\n')
			out.Write(js)
		}
	}
	var evs []record.Event
	writeEvents := func() {
		evs = asm.NotableEvents(evs[:0])
		if evOut == nil {
			return
		}
		for i := range evs {
			js = evs[i].AppendJSON(js[:0])
			js = append(js, '\n')
			evOut.Write(js)
		}
	}
	for _, h := range hosts {
		group := byHost[h]
		var now time.Time
		n := 0
		for ctx.Err() == nil {
			var best *lineSource
			for _, l := range group {
				if l.ok && (best == nil || l.ev.Time.Before(best.ev.Time)) {
					best = l
				}
			}
			if best == nil {
				break
			}
			if best.ev.Time.After(now) {
				now = best.ev.Time
			}
			emit(asm.Add(&best.ev))
			best.next(p)
			if n++; n%4096 == 0 {
				emit(asm.Expire(now))
				writeEvents()
			}
		}
		emit(asm.Flush())
		writeEvents()
	}
	for _, l := range srcs {
		if l.err != nil {
			fmt.Fprintf(stderr, "mxtrail sessions: read %q: %v\n", l.name, l.err)
			code = 1
		}
	}
	if evOut != nil {
		if err := evOut.Flush(); err != nil {
			fmt.Fprintf(stderr, "mxtrail sessions: write %q: %v\n", *eventsPath, err)
			code = 1
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "mxtrail sessions: write: %v\n", err)
		code = 1
	}
	st.print(stderr, asm.Stats())
	if ctx.Err() != nil && code == 0 {
		code = 130
	}
	return code
}

type sessionStats struct {
	total     int
	byOutcome map[string]int
	byProduct map[string]int
	partial   int
}

func newSessionStats() *sessionStats {
	return &sessionStats{byOutcome: map[string]int{}, byProduct: map[string]int{}}
}

func (s *sessionStats) add(r *record.Session) {
	s.total++
	s.byOutcome[string(r.Outcome)]++
	s.byProduct[r.Product]++
	for _, f := range r.Flags {
		if f == "partial" {
			s.partial++
		}
	}
}

func (s *sessionStats) print(w io.Writer, a session.Stats) {
	fmt.Fprintf(w, "lines %d, unparsed %d, sessionless %d, orphans %d, notable events %d\n", a.Lines, a.Unparsed, a.Sessionless, a.Orphans, a.Notable)
	fmt.Fprintf(w, "sessions %d (partial %d), closed by end %d, timeout %d, evicted %d, eof %d; key reused %d; icdsoft spamdyke joins %d\n",
		s.total, s.partial, a.Closed[record.ClosedByEnd], a.Closed[record.ClosedByTimeout], a.Closed[record.ClosedByEvicted], a.Closed[record.ClosedByEOF], a.KeyReused, a.Joined)
	for _, kv := range sortedCounts(s.byProduct) {
		fmt.Fprintf(w, "  product %-26s %d\n", kv.k, kv.v)
	}
	for _, kv := range sortedCounts(s.byOutcome) {
		fmt.Fprintf(w, "  outcome %-26s %d\n", kv.k, kv.v)
	}
}
