package clickhouse

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestMemoryLimitFor(t *testing.T) {
	for _, c := range []struct {
		bytes, inFlight int
		want            int64
	}{
		{32 << 20, 2, 768 << 20},     // 3 batches * 32 MiB * 8
		{16 << 20, 2, 512 << 20},     // 3 * 16 MiB * 8 = 384 MiB: the floor
		{64 << 20, 4, 2560 << 20},    // 5 * 64 MiB * 8
		{0, 2, math.MaxInt64},        // no bound configured: no limit
		{32 << 20, 0, math.MaxInt64}, // likewise
	} {
		if got := MemoryLimitFor(c.bytes, c.inFlight); got != c.want {
			t.Errorf("MemoryLimitFor(%d, %d) = %d, want %d", c.bytes, c.inFlight, got, c.want)
		}
	}
}

func TestTuneGCRestores(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	prevPct := debug.SetGCPercent(150)
	prevLim := debug.SetMemoryLimit(3 << 30)
	defer func() {
		debug.SetGCPercent(prevPct)
		debug.SetMemoryLimit(prevLim)
	}()

	restore := TuneGC(700 << 20)
	if got := debug.SetGCPercent(-1); got != GCPercent {
		t.Errorf("GOGC after TuneGC = %d, want %d", got, GCPercent)
	}
	debug.SetGCPercent(GCPercent)
	if got := debug.SetMemoryLimit(-1); got != 700<<20 {
		t.Errorf("memory limit after TuneGC = %d, want %d", got, 700<<20)
	}
	restore()
	if got := debug.SetGCPercent(-1); got != 150 {
		t.Errorf("GOGC after restore = %d, want 150", got)
	}
	debug.SetGCPercent(150)
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Errorf("memory limit after restore = %d, want %d", got, 3<<30)
	}

	// The environment wins: GOGC set means TuneGC leaves the percentage alone.
	t.Setenv("GOGC", "100")
	restore = TuneGC(0)
	if got := debug.SetGCPercent(-1); got != 150 {
		t.Errorf("GOGC with GOGC set in the environment = %d, want 150 (untouched)", got)
	}
	debug.SetGCPercent(150)
	restore()
}
