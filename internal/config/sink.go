package config

import (
	"fmt"
	"time"
)

// Sink configures `mxtrail sink` and `mxtrail migrate` (owned by the sink work).
type Sink struct {
	// GroupID is the Kafka consumer group of the sink.
	GroupID string `yaml:"group_id"`
	// BatchRows, BatchBytes and BatchAge close a batch at whichever limit comes first.
	// BatchBytes counts the insert bytes the server receives (the Native columns,
	// uncompressed: ~0.5 KB per session row), not the records' JSON; a batch holds ~4x that
	// in memory (see sink/clickhouse.MemoryLimitFor). The tail of a backlog ships as soon as
	// every partition is read to its end, without waiting out BatchAge.
	BatchRows  int           `yaml:"batch_rows"`
	BatchBytes ByteSize      `yaml:"batch_bytes"`
	BatchAge   time.Duration `yaml:"batch_age"`
	// MaxInFlight bounds the batches fetched but not yet acknowledged by ClickHouse.
	MaxInFlight int `yaml:"max_in_flight"`
	// RetryInitial and RetryMax bound the exponential backoff between insert attempts.
	RetryInitial time.Duration `yaml:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max"`
	// Retention is how many days each table keeps (TTL; 0 keeps forever). Applied only on
	// servers that support TTL (19.6+); older servers keep everything.
	Retention Retention `yaml:"retention"`
}

// Retention in days per table.
type Retention struct {
	Sessions   int `yaml:"sessions"`
	Events     int `yaml:"events"`
	Alerts     int `yaml:"alerts"`
	DeadLetter int `yaml:"deadletter"`
	Rollup     int `yaml:"rollup"`
}

func defaultSink() Sink {
	return Sink{
		GroupID:      "mxtrail-sink",
		BatchRows:    100_000,
		BatchBytes:   32 << 20,
		BatchAge:     2 * time.Second,
		MaxInFlight:  2,
		RetryInitial: 200 * time.Millisecond,
		RetryMax:     30 * time.Second,
		Retention:    Retention{Sessions: 90, Events: 90, Alerts: 365, DeadLetter: 30, Rollup: 400},
	}
}

// MaxBatchBytes bounds batch_bytes: the sink indexes each column arena of a batch with 32-bit
// offsets (sink/clickhouse.MaxBatchBytes, the same bound).
const MaxBatchBytes = 1 << 30

func (s *Sink) validate(ps *Problems, path string) {
	if s.GroupID == "" {
		ps.add(path+".group_id", "must not be empty")
	}
	if s.BatchRows <= 0 {
		ps.add(path+".batch_rows", "must be positive, got %d", s.BatchRows)
	}
	if s.BatchBytes <= 0 {
		ps.add(path+".batch_bytes", "must be positive, got %s", s.BatchBytes)
	} else if s.BatchBytes > MaxBatchBytes {
		ps.add(path+".batch_bytes", "must be at most %s, got %s", ByteSize(MaxBatchBytes), s.BatchBytes)
	}
	if s.BatchAge <= 0 {
		ps.add(path+".batch_age", "must be positive, got %s", s.BatchAge)
	}
	if s.MaxInFlight <= 0 {
		ps.add(path+".max_in_flight", "must be positive, got %d", s.MaxInFlight)
	}
	if s.RetryInitial <= 0 {
		ps.add(path+".retry_initial", "must be positive, got %s", s.RetryInitial)
	}
	if s.RetryMax < s.RetryInitial {
		ps.add(path+".retry_max", "must be at least retry_initial (%s), got %s", s.RetryInitial, s.RetryMax)
	}
	for _, r := range []struct {
		k string
		v int
	}{{"sessions", s.Retention.Sessions}, {"events", s.Retention.Events}, {"alerts", s.Retention.Alerts},
		{"deadletter", s.Retention.DeadLetter}, {"rollup", s.Retention.Rollup}} {
		if r.v < 0 {
			ps.add(fmt.Sprintf("%s.retention.%s", path, r.k), "must be 0 (keep forever) or a number of days, got %d", r.v)
		}
	}
}
