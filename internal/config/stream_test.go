package config

import (
	"strings"
	"testing"
	"time"
)

func TestStreamValidate(t *testing.T) {
	c := Default()
	for _, p := range c.Validate() {
		if strings.HasPrefix(p.Path, "enrich.stream") {
			t.Fatalf("defaults: %v", p)
		}
	}
	c.Enrich.Stream = Stream{Lateness: -time.Second, HeartbeatInterval: 3 * time.Second, SessionTimeout: 6 * time.Second,
		MaxDeadLetterBytes: 2 << 20, IdleClockSpeed: 0.5, Compression: "brotli"}
	var got []string
	for _, p := range c.Validate() {
		if strings.HasPrefix(p.Path, "enrich.stream.") {
			got = append(got, p.Path)
		}
	}
	want := "enrich.stream.group_id enrich.stream.lateness enrich.stream.idle_advance enrich.stream.commit_interval enrich.stream.drain_timeout enrich.stream.heartbeat_interval enrich.stream.idle_clock_speed enrich.stream.max_line enrich.stream.max_unacked_bytes enrich.stream.compression enrich.stream.max_deadletter_bytes"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v\nwant %s", got, want)
	}
}

func TestStreamDecodes(t *testing.T) {
	var c Config = Default()
	err := Decode([]byte("enrich:\n  stream:\n    group_id: g2\n    max_line: 1MiB\n    idle_clock_speed: 50\n    compression: zstd\n"), &c)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Enrich.Stream; s.GroupID != "g2" || s.MaxLine != 1<<20 || s.IdleClockSpeed != 50 || s.CommitInterval != time.Second || s.Compression != "zstd" {
		t.Fatalf("%+v", s)
	}
}
