package stdin

import (
	"bytes"
	"context"
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
