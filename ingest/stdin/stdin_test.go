package stdin

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/ingest/produce"
	"github.com/mxtrail/mxtrail/ingest/wire"
)

type rec struct {
	vals  []string
	trunc []string
}

func (r *rec) Send(_ context.Context, in produce.Input, key string, h []kafka.Header, v []byte, _ produce.Acker, _ uint64) error {
	t := ""
	for _, x := range h {
		if x.Key == wire.HeaderTruncated {
			t = string(x.Value)
		}
	}
	r.vals = append(r.vals, string(v))
	r.trunc = append(r.trunc, t)
	return nil
}

func TestRun(t *testing.T) {
	long := strings.Repeat("z", 300<<10) // longer than the reader's buffer
	in := "first\r\n\nbad \xff utf8 \x00\n" + long + "\nlast without newline"
	r := &rec{}
	p := &Progress{Start: time.Now()}
	if err := Run(context.Background(), strings.NewReader(in), "mx1", "smtpf", 1000, r, produce.NewMetrics(nil), p); err != nil {
		t.Fatal(err)
	}
	want := []string{"first", "", "bad \xff utf8 \x00", long[:1000], "last without newline"}
	if len(r.vals) != len(want) {
		t.Fatalf("got %d lines %q", len(r.vals), r.vals)
	}
	for i, w := range want {
		if r.vals[i] != w {
			t.Errorf("line %d = %.40q, want %.40q", i, r.vals[i], w)
		}
	}
	if r.trunc[3] != strconv.Itoa(len(long)) || r.trunc[0] != "" {
		t.Errorf("truncated headers %q", r.trunc)
	}
	if p.Lines.Load() != 5 || p.Bytes.Load() != int64(len(in)) {
		t.Errorf("progress %d lines %d bytes, want 5 and %d", p.Lines.Load(), p.Bytes.Load(), len(in))
	}
	if s := p.String(); !strings.HasPrefix(s, "5 lines, ") || !bytes.Contains([]byte(s), []byte("lines/s")) {
		t.Errorf("progress line %q", s)
	}
}

type timeRec struct{ times []time.Time }

func (r *timeRec) Send(_ context.Context, _ produce.Input, _ string, h []kafka.Header, _ []byte, _ produce.Acker, _ uint64) error {
	for _, x := range h {
		if x.Key == wire.HeaderIngestTime {
			ts, err := time.Parse(wire.IngestTimeLayout, string(x.Value))
			if err != nil {
				return err
			}
			r.times = append(r.times, ts)
		}
	}
	return nil
}

// TestIngestTimeIsWhenTheLineWasRead: on a slow pipe each line carries the time it arrived,
// not the time of an earlier line (headers used to be refreshed only every 4096 lines).
func TestIngestTimeIsWhenTheLineWasRead(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("a\nb\n")) // one read: both lines
		time.Sleep(120 * time.Millisecond)
		pw.Write([]byte("c\n"))
		time.Sleep(120 * time.Millisecond)
		pw.Write([]byte("d"))
		pw.Close()
	}()
	r := &timeRec{}
	if err := Run(context.Background(), pr, "mx1", "", 1000, r, produce.NewMetrics(nil), &Progress{Start: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if len(r.times) != 4 {
		t.Fatalf("%d ingest times, want 4", len(r.times))
	}
	if !r.times[1].Equal(r.times[0]) {
		t.Errorf("lines of one read stamped %v and %v", r.times[0], r.times[1])
	}
	for i := 2; i < 4; i++ {
		if d := r.times[i].Sub(r.times[i-1]); d < 100*time.Millisecond {
			t.Errorf("line %d read 120 ms after line %d but stamped only %v later", i, i-1, d)
		}
	}
}
