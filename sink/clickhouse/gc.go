package clickhouse

import (
	"math"
	"os"
	"runtime/debug"
)

// GCPercent is the sink's GOGC. A running sink's heap is mostly its batches (reused arenas and
// the Kafka messages they decode), so at Go's default of 100 the collector runs every time
// another batch's worth is allocated and rescans the live batches each time; at 400 it runs a
// quarter as often. MEASURED.md: the columnar insert alone went from 303-351k to ~375k rows/s.
const GCPercent = 400

// TuneGC sets GOGC to GCPercent and, when memLimit > 0, a soft memory limit that makes the
// collector run sooner rather than let the larger GOGC grow the heap past it. Either is left
// alone when the environment sets it (GOGC, GOMEMLIMIT). It returns a function that restores
// the previous settings.
func TuneGC(memLimit int64) (restore func()) {
	prevPct, prevLim := -2, int64(-1)
	if os.Getenv("GOGC") == "" {
		prevPct = debug.SetGCPercent(GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && memLimit > 0 {
		prevLim = debug.SetMemoryLimit(memLimit)
	}
	return func() {
		if prevPct != -2 {
			debug.SetGCPercent(prevPct)
		}
		if prevLim >= 0 {
			debug.SetMemoryLimit(prevLim)
		}
	}
}

// MemoryLimitFor is the soft limit TuneGC should get for batches of batchBytes (Batch.Bytes:
// insert bytes) with maxInFlight in flight. What a batch holds, per insert byte: its column
// arenas and their per-value index slices ~1.5; for events, alerts and dead letters (whose
// columns point into their messages), and for sessions when the source cannot read a record
// again (Batch.Pins), also the JSON values of the fetches it decoded ~2 and the fetches'
// message headers ~0.4 -- ~4 in all; each insert in flight adds the driver's block buffer
// (~10 MiB). A sessions batch from a GroupSource keeps only its arenas, so a sink on the
// sessions topic lives well inside the limit (peak RSS ~300-320 MiB on 1M records at the
// defaults); the limit still budgets for batches that keep their fetches, ~16x batchBytes
// live at the default two in flight (~0.5 GiB at 32 MiB), with half as much again for
// garbage, and a floor keeps small configurations from collecting constantly. A limit below
// the live heap makes the collector run back to back: the sink's CPU per row doubled when
// batches outgrew it.
func MemoryLimitFor(batchBytes, maxInFlight int) int64 {
	if batchBytes <= 0 || maxInFlight <= 0 {
		return math.MaxInt64
	}
	return max(512<<20, int64(maxInFlight+1)*int64(batchBytes)*8)
}

// FetchPoolBytes is the GroupConfig.BufferPoolBytes for batches of batchBytes (insert bytes)
// with maxInFlight in flight: a batch that keeps its fetches (Batch.Pins) holds ~2x its
// insert bytes of them (see MemoryLimitFor), and that many fetch buffers circulate between the
// readers and the batches being filled or inserted; the pool keeps them instead of the
// garbage collector. Sessions fetches come back as soon as they are decoded, so on the
// sessions topic the pool holds little more than the fetches in flight.
func FetchPoolBytes(batchBytes, maxInFlight int) int {
	return 2 * (maxInFlight + 1) * batchBytes
}
