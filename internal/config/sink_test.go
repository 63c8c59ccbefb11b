package config

import (
	"strings"
	"testing"
)

func TestSinkDefaultsValidate(t *testing.T) {
	cfg := Default()
	var ps Problems
	cfg.Sink.validate(&ps, "sink")
	if len(ps) != 0 {
		t.Fatalf("defaults have problems: %v", ps)
	}
	if cfg.Sink.BatchRows != 100_000 || cfg.Sink.BatchBytes != 32<<20 || cfg.Sink.BatchAge.Seconds() != 2 {
		t.Fatalf("batch defaults %d/%s/%s, want 100k rows, 32MiB, 2s", cfg.Sink.BatchRows, cfg.Sink.BatchBytes, cfg.Sink.BatchAge)
	}
}

func TestSinkValidateReportsEveryProblem(t *testing.T) {
	cfg := Default()
	err := Decode([]byte("sink:\n  group_id: \"\"\n  batch_rows: 0\n  batch_bytes: 0\n  max_in_flight: -1\n  retry_initial: 5s\n  retry_max: 1s\n  retention:\n    events: -3\n"), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.Validate()
	want := []string{"sink.group_id", "sink.batch_rows", "sink.batch_bytes", "sink.max_in_flight", "sink.retry_max", "sink.retention.events"}
	got := ps.Error()
	for _, w := range want {
		if !strings.Contains(got, w+":") {
			t.Errorf("problems lack %s:\n%s", w, got)
		}
	}
}

// batch_bytes is capped at 1 GiB (the sink's 32-bit arena offsets); the cap itself is allowed.
func TestSinkBatchBytesMaximum(t *testing.T) {
	for _, c := range []struct {
		v  string
		ok bool
	}{{"1GiB", true}, {"1025MiB", false}, {"64GiB", false}} {
		cfg := Default()
		if err := Decode([]byte("sink:\n  batch_bytes: "+c.v+"\n"), &cfg); err != nil {
			t.Fatal(err)
		}
		ps := cfg.Validate()
		got := ""
		if ps != nil {
			got = ps.Error()
		}
		if bad := strings.Contains(got, "sink.batch_bytes: must be at most 1GiB, got "+c.v); bad == c.ok {
			t.Errorf("batch_bytes %s: problems %q", c.v, got)
		}
	}
}

func TestSinkUnknownKey(t *testing.T) {
	cfg := Default()
	err := Decode([]byte("sink:\n  batch_row: 5\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), `sink.batch_row`) {
		t.Fatalf("want an unknown-key problem at sink.batch_row, got %v", err)
	}
}
