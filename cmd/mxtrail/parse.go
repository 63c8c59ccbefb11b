package main

import (
	"bufio"
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
	"github.com/mxtrail/mxtrail/internal/config"
)

func init() {
	register("parse", "parse log lines into JSON events", runParse)
}

// maxLine is the longest line parsed whole; longer lines become an unparsed event holding
// their first maxLine bytes (counted, never dropped).
const maxLine = 1 << 20

const reasonTooLong = "line longer than 1 MiB (truncated)"

func runParse(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "auto", "dialect: "+strings.Join(event.DialectNames(), ", "))
	host := fs.String("host", "", "host name for lines that carry none")
	year := fs.Int("year", 0, "year of yearless lines (default: each file's mtime, else the current year)")
	tz := fs.String("tz", "UTC", "IANA time zone of lines without one")
	patterns := fs.String("patterns", "", "directory of extra *.grok pattern files")
	isodeHeader := fs.String("isode-header", "", "grok expression replacing the Isode header pattern")
	cfgPath := fs.String("config", "", "mxtrail.yaml whose enrich.parser settings apply (flags win)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mxtrail parse [--config FILE] [--format F] [--host H] [--year Y] [--tz Z] [--patterns DIR] [FILE...]")
		fmt.Fprintln(stderr, "Writes one JSON object per input line, in input order; a summary goes to stderr.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var pc config.Parser
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "mxtrail parse: %s: %v\n", *cfgPath, err)
			return 2
		}
		pc = cfg.Enrich.Parser
		if !set["patterns"] {
			*patterns = pc.PatternDir
		}
		if !set["isode-header"] {
			*isodeHeader = pc.IsodeHeader
		}
		if !set["tz"] && pc.TimeZone != "" {
			*tz = pc.TimeZone
		}
		if !set["year"] {
			*year = pc.DefaultYear
		}
	}
	d, loc, err := lineFlags(*format, *tz, *year)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail parse: %v\n", err)
		return 2
	}
	defYear := *year
	if defYear == 0 {
		defYear = time.Now().Year()
	}
	p, err := parse.New(parse.Options{PatternDir: *patterns, IsodeHeader: *isodeHeader, DefaultYear: defYear, Location: loc})
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail parse: %v\n", err)
		return 1
	}
	out := bufio.NewWriterSize(stdout, 256<<10)
	st := &parseStats{byDialect: map[string]int{}, byReason: map[string]int{}}
	run := func(name string, r io.Reader, ref time.Time) error {
		src := &event.Source{Host: *host, Dialect: d, File: name, Loc: loc}
		if *year == 0 {
			src.YearRef = ref
		}
		// a per-source rule of the config pins what the flags left open
		if rule := pc.Match(*host, name); rule != nil {
			if rd, ok := event.ParseDialect(rule.Format); ok && rule.Format != "" && !set["format"] {
				src.Dialect = rd
			}
			if rule.TimeZone != "" && !set["tz"] {
				if l, err := time.LoadLocation(rule.TimeZone); err == nil {
					src.Loc = l
				}
			}
			if rule.Year != 0 && !set["year"] {
				src.YearRef = time.Date(rule.Year, 12, 31, 23, 59, 59, 0, loc)
			}
		}
		return parseStream(ctx, p, r, src, out, st)
	}
	files := fs.Args()
	code := 0
	if len(files) == 0 {
		if err := run("-", stdin, time.Time{}); err != nil {
			fmt.Fprintf(stderr, "mxtrail parse: stdin: %v\n", err)
			code = 1
		}
	}
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintf(stderr, "mxtrail parse: %v\n", err)
			code = 1
			continue
		}
		var ref time.Time
		if fi, err := fh.Stat(); err == nil {
			ref = fi.ModTime()
		}
		if err := run(f, fh, ref); err != nil {
			fmt.Fprintf(stderr, "mxtrail parse: read %q: %v\n", f, err)
			code = 1
		}
		fh.Close()
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "mxtrail parse: write: %v\n", err)
		code = 1
	}
	st.print(stderr)
	if ctx.Err() != nil && code == 0 {
		code = 130
	}
	return code
}

type parseStats struct {
	lines, parsed int
	byDialect     map[string]int
	byReason      map[string]int
}

func (s *parseStats) add(ev *event.Event) {
	s.lines++
	name := ev.Dialect.String()
	if ev.Dialect == event.DialectAuto {
		name = "unknown"
	}
	s.byDialect[name]++
	if ev.Parsed {
		s.parsed++
	} else {
		s.byReason[ev.Reason]++
	}
}

func (s *parseStats) print(w io.Writer) {
	share := 0.0
	if s.lines > 0 {
		share = 100 * float64(s.parsed) / float64(s.lines)
	}
	fmt.Fprintf(w, "lines %d, parsed %d (%.1f%%)\n", s.lines, s.parsed, share)
	for _, kv := range sortedCounts(s.byDialect) {
		fmt.Fprintf(w, "  dialect %-20s %d\n", kv.k, kv.v)
	}
	for _, kv := range sortedCounts(s.byReason) {
		fmt.Fprintf(w, "  unparsed: %-40s %d\n", kv.k, kv.v)
	}
}

type kv struct {
	k string
	v int
}

func sortedCounts(m map[string]int) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].v > out[j].v || (out[i].v == out[j].v && out[i].k < out[j].k) })
	return out
}

// parseStream parses r line by line (LF or CRLF; a final line without LF counts) and writes
// one JSON object per line. A line longer than maxLine keeps its first maxLine bytes and
// becomes an unparsed event.
func parseStream(ctx context.Context, p *parse.Parser, r io.Reader, src *event.Source, out *bufio.Writer, st *parseStats) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		ev    event.Event
		long  []byte // the current line when it spans reader buffers
		cut   bool   // bytes of the current line were dropped beyond maxLine
		js    []byte
		off   int64 // bytes consumed
		start int64 // offset of the current line
	)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		frag, err := br.ReadSlice('\n')
		off += int64(len(frag))
		if err == bufio.ErrBufferFull {
			keep := min(len(frag), max(0, maxLine-len(long)))
			long = append(long, frag[:keep]...)
			cut = cut || keep < len(frag)
			continue
		}
		if len(frag) == 0 && len(long) == 0 && !cut {
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
		if len(frag) > 0 && frag[len(frag)-1] == '\n' {
			frag = frag[:len(frag)-1]
			if len(frag) > 0 && frag[len(frag)-1] == '\r' {
				frag = frag[:len(frag)-1]
			}
		}
		line := frag
		if len(long) > 0 || cut {
			keep := min(len(frag), max(0, maxLine-len(long)))
			long = append(long, frag[:keep]...)
			cut = cut || keep < len(frag)
			line = long
		}
		src.Line++
		src.Offset = start
		start = off
		if cut || len(line) > maxLine {
			p.Parse(&ev, line[:min(len(line), maxLine)], src)
			ev.Parsed = false
			ev.Reason = reasonTooLong
		} else {
			p.Parse(&ev, line, src)
		}
		st.add(&ev)
		js = event.AppendJSON(js[:0], &ev)
		js = append(js, '\n')
		if _, werr := out.Write(js); werr != nil {
			return werr
		}
		long, cut = long[:0], false
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
