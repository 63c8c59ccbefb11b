// Package stdin owns the shipper's pipe input (mxtrail ship --stdin): lines from a reader,
// one host, no checkpoint (a pipe cannot be re-read), with a progress report.
package stdin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/ingest/produce"
	"github.com/mxtrail/mxtrail/ingest/wire"
)

// Sender is the Kafka output as this input uses it.
type Sender interface {
	Send(ctx context.Context, in produce.Input, key string, headers []kafka.Header, value []byte, acker produce.Acker, seq uint64) error
}

// Progress counts what was read; safe to read from another goroutine.
type Progress struct {
	Lines, Bytes atomic.Int64
	Start        time.Time
}

// String is the progress line: lines, bytes and rate.
func (p *Progress) String() string {
	el := time.Since(p.Start).Seconds()
	l, b := p.Lines.Load(), p.Bytes.Load()
	if el <= 0 {
		el = 1e-9
	}
	return fmt.Sprintf("%d lines, %.1f MiB, %.0f lines/s, %.1f MiB/s", l, float64(b)/(1<<20), float64(l)/el, float64(b)/(1<<20)/el)
}

// Run ships every line of r under host until EOF or ctx ends. A last line without a newline
// is shipped too. Lines longer than maxLine are truncated and flagged.
func Run(ctx context.Context, r io.Reader, host, dialect string, maxLine int, out Sender, c *produce.Metrics, p *Progress) error {
	br := bufio.NewReaderSize(r, 256<<10)
	hdr := func(trunc int) []kafka.Header {
		h := []kafka.Header{
			{Key: wire.HeaderHost, Value: []byte(host)},
			{Key: wire.HeaderSource, Value: []byte(wire.SourceStdin)},
			{Key: wire.HeaderDialect, Value: []byte(dialect)},
			{Key: wire.HeaderIngestTime, Value: time.Now().UTC().AppendFormat(nil, wire.IngestTimeLayout)},
		}
		if trunc > 0 {
			h = append(h, kafka.Header{Key: wire.HeaderTruncated, Value: []byte(strconv.Itoa(trunc))})
		}
		return h
	}
	var shared []kafka.Header
	line := make([]byte, 0, 4096)
	for {
		line = line[:0]
		total, term := 0, 0
		buffered := br.Buffered()
		var err error
		for {
			var frag []byte
			frag, err = br.ReadSlice('\n')
			total += len(frag)
			if room := maxLine + 2 - len(line); room > 0 {
				line = append(line, frag[:min(room, len(frag))]...)
			}
			if err != bufio.ErrBufferFull {
				if err == nil { // ends with the newline; "\r\n" counts as the terminator too
					term = 1
					if len(frag) >= 2 && frag[len(frag)-2] == '\r' {
						term = 2
					}
				}
				break
			}
		}
		if total > 0 {
			p.Lines.Add(1)
			p.Bytes.Add(int64(total))
			c.Read(produce.InputStdin, 1, total)
			orig := total - term // the line's length without its terminator
			content := orig
			// ingest_time is when the line was read from the source: lines that were already
			// in the buffer share the headers of the read that brought them; a line that
			// needed a new read gets fresh ones (a slow pipe must not stamp a line with the
			// time of an earlier one, and a fast one costs a clock read per 256 KiB).
			if total > buffered || shared == nil {
				shared = hdr(0)
			}
			h := shared
			if orig > maxLine {
				content = maxLine
				h = hdr(orig)
				c.Truncated(produce.InputStdin)
			}
			if serr := out.Send(ctx, produce.InputStdin, host, h, line[:content], nil, 0); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
	}
}
