package config

import "time"

// Stream configures the Kafka loop of `mxtrail enrich` (enrich/stream).
type Stream struct {
	// GroupID is the consumer group every enricher instance joins.
	GroupID string `yaml:"group_id"`
	// Lateness: a partition's watermark trails its newest event time by this much, so hosts
	// sharing a partition may lag each other that much.
	Lateness time.Duration `yaml:"lateness"`
	// IdleAdvance: wall-clock silence after which a partition's watermark follows the clock.
	IdleAdvance time.Duration `yaml:"idle_advance"`
	// CommitInterval: how often each partition commits its safe offset.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// DrainTimeout bounds the wait for outstanding acknowledgements at shutdown.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// MaxLine: longer records are dead-lettered (reason too_long).
	MaxLine ByteSize `yaml:"max_line"`
	// MaxDeadLetterBytes clips the raw value kept in a dead letter.
	MaxDeadLetterBytes ByteSize `yaml:"max_deadletter_bytes"`
	// MaxUnackedBytes bounds the output bytes handed to Kafka and not yet acknowledged,
	// summed over the instance; over it, partitions wait before their next fetch.
	MaxUnackedBytes ByteSize `yaml:"max_unacked_bytes"`
	// HeartbeatInterval and SessionTimeout of the consumer group.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	SessionTimeout    time.Duration `yaml:"session_timeout"`
	// IdleClockSpeed makes the wall clock of the idle advance run this many times faster
	// (default 1). For tests and for replaying old logs into a quiet topic, so the last
	// sessions close in seconds rather than after idle_timeout + lateness of real time.
	IdleClockSpeed float64 `yaml:"idle_clock_speed"`
	// Compression of the produced record batches (sessions, events, dead letters, alerts):
	// none (default), gzip, snappy, lz4 or zstd. zstd shrinks session JSON ~8x, which cuts the
	// broker's disk and network and the sink's reading (sink benchmark: 0.4-0.6 instead of ~1.1
	// broker CPU µs per row), for CPU in the enricher: +0.8-1.0 µs per line with zstd, +1.2
	// with lz4 (kafka-go's codecs at their default levels; 2M-line bench fleet, 2 runs each).
	Compression string `yaml:"compression"`
}

func defaultStream() Stream {
	return Stream{GroupID: "mxtrail-enrich", Lateness: time.Minute, IdleAdvance: 30 * time.Second,
		CommitInterval: time.Second, DrainTimeout: 30 * time.Second, MaxLine: 64 << 10,
		MaxDeadLetterBytes: 256 << 10, MaxUnackedBytes: 64 << 20, HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 6 * time.Second, IdleClockSpeed: 1,
		Compression: "none"}
}

func (s *Stream) validate(ps *Problems, p string) {
	if s.GroupID == "" {
		ps.add(join(p, "group_id"), "must not be empty")
	}
	if s.Lateness < 0 {
		ps.add(join(p, "lateness"), "%v must not be negative", s.Lateness)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"idle_advance", s.IdleAdvance}, {"commit_interval", s.CommitInterval}, {"drain_timeout", s.DrainTimeout}, {"heartbeat_interval", s.HeartbeatInterval}, {"session_timeout", s.SessionTimeout}} {
		if d.v <= 0 {
			ps.add(join(p, d.key), "%v must be positive", d.v)
		}
	}
	if s.HeartbeatInterval > 0 && s.SessionTimeout > 0 && s.HeartbeatInterval*3 > s.SessionTimeout {
		ps.add(join(p, "heartbeat_interval"), "%v must be at most a third of session_timeout %v", s.HeartbeatInterval, s.SessionTimeout)
	}
	if s.IdleClockSpeed < 1 || s.IdleClockSpeed > 10000 {
		ps.add(join(p, "idle_clock_speed"), "%v must be in 1..10000", s.IdleClockSpeed)
	}
	if s.MaxLine <= 0 {
		ps.add(join(p, "max_line"), "%v must be positive", s.MaxLine)
	}
	if s.MaxUnackedBytes < 1<<20 {
		ps.add(join(p, "max_unacked_bytes"), "%v must be at least 1MiB", s.MaxUnackedBytes)
	}
	switch s.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		ps.add(join(p, "compression"), "%q is not none, gzip, snappy, lz4 or zstd", s.Compression)
	}
	if s.MaxDeadLetterBytes <= 0 || s.MaxDeadLetterBytes > 900<<10 {
		ps.add(join(p, "max_deadletter_bytes"), "%v must be positive and at most 900KiB (the broker's default message limit is 1MiB)", s.MaxDeadLetterBytes)
	}
}
