package main

import (
	"testing"

	"github.com/mxtrail/mxtrail/internal/config"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
)

// The configuration refuses a sink.batch_bytes the sink would refuse at start-up, and no less:
// internal/config keeps its own copy of the sink's bound (the library packages do not import
// the configuration), so the two must not drift.
func TestConfigBatchBytesBoundIsTheSinks(t *testing.T) {
	if config.MaxBatchBytes != chsink.MaxBatchBytes {
		t.Fatalf("config.MaxBatchBytes %d, sink/clickhouse.MaxBatchBytes %d", config.MaxBatchBytes, chsink.MaxBatchBytes)
	}
}
