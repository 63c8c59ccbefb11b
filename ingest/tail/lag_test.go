package tail

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/ingest/checkpoint"
	"github.com/mxtrail/mxtrail/ingest/produce"
)

// blocking is a Sender that takes one line and then blocks until ctx ends, as the producer
// does when its in-flight bound is full during a broker outage.
type blocking struct{ got chan struct{} }

func (b *blocking) Send(ctx context.Context, _ produce.Input, _ string, _ []kafka.Header, _ []byte, _ produce.Acker, _ uint64) error {
	select {
	case b.got <- struct{}{}:
		return nil
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestLagWhileSendingBlocks: with the reader stuck in Send, the lag gauge still follows the
// file as it grows (it reflected the size the reader last saw: an outage looked like no lag).
func TestLagWhileSendingBlocks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	line := strings.Repeat("x", 99) + "\n"
	if err := os.WriteFile(path, []byte(line+line), 0o644); err != nil {
		t.Fatal(err)
	}
	store, _ := checkpoint.Open(filepath.Join(dir, "pos.json"))
	m := NewMetrics(nil)
	cfg := testConfig(filepath.Join(dir, "*.log"))
	cfg.Metrics = m
	out := &blocking{got: make(chan struct{}, 1)}
	stop := start(t, cfg, out, store)
	defer stop()
	<-out.got // the first line went out unacknowledged; the second blocks the reader
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		f.WriteString(line)
	}
	f.Close()
	want := float64(1002 * len(line))
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(m.lag) != want {
		if time.Now().After(deadline) {
			t.Fatalf("lag = %v bytes, want %v (the whole file: nothing acknowledged)", testutil.ToFloat64(m.lag), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
