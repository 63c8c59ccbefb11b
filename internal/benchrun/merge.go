package benchrun

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/gen"
	"github.com/mxtrail/mxtrail/enrich/parse"
)

// Why merge: a generated host writes several files (ICDSoft: SMTP, delivery and spamdyke logs;
// MailEnable: activity and debug; IMail: SMTP and antispam) whose lines join into one session.
// Live, a shipper tails them as they are written, so their lines reach Kafka in about the
// order of their time stamps; replaying whole files as fast as possible would send one file
// minutes of event time ahead of the other and split those sessions. The bench therefore ships
// one file per host holding that host's lines in event-time order (as a syslog relay writes
// them, and as `mxtrail sessions` reads several files), with no dialect hint: the enricher
// detects each line's dialect, as for a syslog feed.

// mergedName is the per-host file the bench ships.
func mergedName(host string) string { return host + ".merged.log" }

type lineSource struct {
	br  *bufio.Reader
	src event.Source
	ev  event.Event
	ok  bool
	err error
}

func (l *lineSource) next(p *parse.Parser) {
	line, err := l.br.ReadSlice('\n')
	for err == bufio.ErrBufferFull { // longer than the buffer: keep it whole
		more := bytes.Clone(line)
		line, err = l.br.ReadSlice('\n')
		line = append(more, line...)
	}
	if err != nil && err != io.EOF {
		l.ok, l.err = false, err
		return
	}
	if len(line) == 0 {
		l.ok = false
		return
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	p.Parse(&l.ev, line, &l.src)
	l.ok = true
}

// mergeHost writes host's files (in genDir) into out in event-time order. Unparsed lines
// (the generator's garbage) stay where they are relative to their file's parsed lines.
func mergeHost(p *parse.Parser, genDir, host string, files []string, out io.Writer) (int, error) {
	var srcs []*lineSource
	for _, name := range files {
		fh, err := os.Open(filepath.Join(genDir, name))
		if err != nil {
			return 0, fmt.Errorf("merge %s: %w", host, err)
		}
		defer fh.Close()
		srcs = append(srcs, &lineSource{br: bufio.NewReaderSize(fh, 64<<10), src: event.Source{Host: host, File: name, Loc: time.UTC}})
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	n := 0
	emit := func(l *lineSource) {
		bw.Write(l.ev.Raw())
		bw.WriteByte('\n')
		n++
	}
	// a file's leading unparsed lines have no time: they go first
	for _, l := range srcs {
		for l.next(p); l.ok && !l.ev.Parsed; l.next(p) {
			emit(l)
		}
	}
	for {
		var best *lineSource
		for _, l := range srcs {
			if l.ok && (best == nil || l.ev.Time.Before(best.ev.Time)) {
				best = l
			}
		}
		if best == nil {
			break
		}
		emit(best)
		// the unparsed lines after a parsed one follow it
		for best.next(p); best.ok && !best.ev.Parsed; best.next(p) {
			emit(best)
		}
	}
	for _, l := range srcs {
		if l.err != nil {
			return n, fmt.Errorf("merge %s: read %s: %w", host, l.src.File, l.err)
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("merge %s: %w", host, err)
	}
	return n, nil
}

// mergeFleet writes one merged file per host of sum into dir and checks every line arrived.
func mergeFleet(genDir, dir string, sum *gen.Summary, year int) error {
	p, err := parse.New(parse.Options{DefaultYear: year, Location: time.UTC})
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	for _, h := range sum.Hosts {
		var files []string
		want := 0
		for _, f := range sum.Files {
			if f.Host == h.Host {
				files = append(files, f.Name)
				want += f.Lines
			}
		}
		f, err := os.Create(filepath.Join(dir, mergedName(h.Host)))
		if err != nil {
			return fmt.Errorf("merge %s: %w", h.Host, err)
		}
		n, err := mergeHost(p, genDir, h.Host, files, f)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("merge %s: %w", h.Host, cerr)
		}
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("merge %s: wrote %d lines, the generator wrote %d", h.Host, n, want)
		}
	}
	return nil
}
