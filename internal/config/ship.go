package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// Ship configures `mxtrail ship`.
type Ship struct {
	// Files are the file inputs.
	Files []ShipFile `yaml:"files"`
	// Syslog is the syslog receiver; empty addresses disable it.
	Syslog ShipSyslog `yaml:"syslog"`
	// Host overrides the machine's host name as the default host of file and stdin lines.
	Host string `yaml:"host"`
	// CheckpointFile holds the acknowledged file positions.
	CheckpointFile string `yaml:"checkpoint_file"`
	// CheckpointInterval is how often positions are written (and always on shutdown).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Poll is how often files are read and globs re-evaluated.
	Poll time.Duration `yaml:"poll"`
	// RotateGrace keeps reading a renamed file until it has been idle this long.
	RotateGrace time.Duration `yaml:"rotate_grace"`
	// MaxLine truncates (and flags) longer lines.
	MaxLine ByteSize `yaml:"max_line"`
	// FingerprintBytes is how many leading bytes identify a file besides device+inode.
	FingerprintBytes int `yaml:"fingerprint_bytes"`
	// Compression of produced batches: none, gzip, snappy, lz4, zstd.
	Compression string `yaml:"compression"`
	// ZstdLevel is the zstd encoder level: fastest, default, better, best.
	ZstdLevel string `yaml:"zstd_level"`
	// BatchBytes and Linger bound a batch by bytes and by time.
	BatchBytes ByteSize      `yaml:"batch_bytes"`
	Linger     time.Duration `yaml:"linger"`
	// MaxInFlight bounds the bytes read but not yet acknowledged by Kafka.
	MaxInFlight ByteSize `yaml:"max_in_flight"`
	// MaxMessageBytes bounds one request's record set (the broker's message.max.bytes); the
	// producer lowers it to the topic's max.message.bytes when that is smaller.
	MaxMessageBytes ByteSize `yaml:"max_message_bytes"`
	// BackoffMin and BackoffMax bound the retry delay while Kafka is unreachable.
	BackoffMin   time.Duration `yaml:"backoff_min"`
	BackoffMax   time.Duration `yaml:"backoff_max"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// ShutdownTimeout bounds the final drain on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// CreateTopic creates the raw topic with Partitions partitions when missing.
	CreateTopic       bool `yaml:"create_topic"`
	Partitions        int  `yaml:"partitions"`
	ReplicationFactor int  `yaml:"replication_factor"`
}

// ShipFile is one glob of files to follow.
type ShipFile struct {
	Path    string `yaml:"path"`    // a glob
	Dialect string `yaml:"dialect"` // hint for the enricher, may be empty
	Host    string `yaml:"host"`    // overrides ship.host and the machine's name
	TZ      string `yaml:"tz"`      // IANA zone of zone-less timestamps
	Start   string `yaml:"start"`   // beginning or end, for files found at start-up without a checkpoint
}

// ShipSyslog is the syslog receiver.
type ShipSyslog struct {
	UDP     string `yaml:"udp"` // e.g. 0.0.0.0:514
	TCP     string `yaml:"tcp"`
	Dialect string `yaml:"dialect"`
	// IdleTimeout closes silent TCP connections (0: never).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

func defaultShip() Ship {
	return Ship{
		CheckpointFile:     "data/ship-positions.json",
		CheckpointInterval: 2 * time.Second,
		Poll:               250 * time.Millisecond,
		RotateGrace:        5 * time.Second,
		MaxLine:            64 << 10,
		FingerprintBytes:   1024,
		Compression:        "zstd",
		ZstdLevel:          "fastest",
		BatchBytes:         2 << 20,
		Linger:             50 * time.Millisecond,
		MaxInFlight:        4 << 20,
		MaxMessageBytes:    1 << 20,
		BackoffMin:         100 * time.Millisecond,
		BackoffMax:         10 * time.Second,
		WriteTimeout:       10 * time.Second,
		ShutdownTimeout:    10 * time.Second,
		Partitions:         12,
		ReplicationFactor:  1,
	}
}

func (s *Ship) validate(ps *Problems, path string) {
	p := func(k string) string { return path + "." + k }
	for i, f := range s.Files {
		fp := fmt.Sprintf("%s.files[%d]", path, i)
		if f.Path == "" {
			ps.add(fp+".path", "must not be empty")
		} else if _, err := filepath.Match(f.Path, ""); err != nil {
			ps.add(fp+".path", "%q is not a valid glob: %v", f.Path, err)
		}
		switch f.Start {
		case "", "beginning", "end":
		default:
			ps.add(fp+".start", "%q is not beginning or end", f.Start)
		}
		if f.TZ != "" {
			if _, err := time.LoadLocation(f.TZ); err != nil {
				ps.add(fp+".tz", "%q: %v", f.TZ, err)
			}
		}
	}
	for _, a := range []struct{ k, v string }{{"syslog.udp", s.Syslog.UDP}, {"syslog.tcp", s.Syslog.TCP}} {
		if a.v != "" && !isHostPort(a.v) {
			ps.add(p(a.k), "%q is not host:port", a.v)
		}
	}
	if s.Syslog.IdleTimeout < 0 {
		ps.add(p("syslog.idle_timeout"), "must not be negative")
	}
	if s.CheckpointFile == "" {
		ps.add(p("checkpoint_file"), "must not be empty")
	}
	for _, d := range []struct {
		k string
		v time.Duration
	}{{"checkpoint_interval", s.CheckpointInterval}, {"poll", s.Poll}, {"linger", s.Linger},
		{"backoff_min", s.BackoffMin}, {"backoff_max", s.BackoffMax}, {"write_timeout", s.WriteTimeout}, {"shutdown_timeout", s.ShutdownTimeout}} {
		if d.v <= 0 {
			ps.add(p(d.k), "must be positive, got %s", d.v)
		}
	}
	if s.RotateGrace < 0 {
		ps.add(p("rotate_grace"), "must not be negative")
	}
	if s.BackoffMax < s.BackoffMin {
		ps.add(p("backoff_max"), "%s is below backoff_min %s", s.BackoffMax, s.BackoffMin)
	}
	if s.MaxLine < 1 {
		ps.add(p("max_line"), "must be at least 1 byte")
	}
	if s.MaxMessageBytes < 1024 {
		ps.add(p("max_message_bytes"), "must be at least 1KiB, got %s", s.MaxMessageBytes)
	} else if s.MaxLine+512 > s.MaxMessageBytes {
		ps.add(p("max_line"), "%s does not fit max_message_bytes %s with headers (leave 512 bytes)", s.MaxLine, s.MaxMessageBytes)
	}
	if s.FingerprintBytes < 16 || s.FingerprintBytes > 64<<10 {
		ps.add(p("fingerprint_bytes"), "must be between 16 and 65536, got %d", s.FingerprintBytes)
	}
	switch s.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		ps.add(p("compression"), "%q is not none, gzip, snappy, lz4 or zstd", s.Compression)
	}
	switch s.ZstdLevel {
	case "fastest", "default", "better", "best":
	default:
		ps.add(p("zstd_level"), "%q is not fastest, default, better or best", s.ZstdLevel)
	}
	if s.BatchBytes < 1 {
		ps.add(p("batch_bytes"), "must be positive")
	}
	if s.MaxInFlight < s.BatchBytes || s.MaxInFlight < s.MaxLine {
		ps.add(p("max_in_flight"), "%s must be at least batch_bytes %s and max_line %s", s.MaxInFlight, s.BatchBytes, s.MaxLine)
	}
	if s.CreateTopic && (s.Partitions < 1 || s.ReplicationFactor < 1) {
		ps.add(p("partitions"), "create_topic needs partitions >= 1 and replication_factor >= 1, got %d and %d", s.Partitions, s.ReplicationFactor)
	}
}
