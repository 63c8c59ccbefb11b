package session

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsCountSessionsAndStats(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	NewMetrics(prometheus.NewRegistry()) // two instances in one process must not collide
	f := newFeeder(t, cfgWith(func(c *Config) { c.Lateness = 0 }), "")
	m.ObserveSessions(f.add(sfStartA, sfStartB, sfRcptA, sfRcptB, sfEndB, "~garbage"))
	m.ObserveStats(f.a)
	if got := testutil.ToFloat64(m.sessions.WithLabelValues("smtpf", "DENIED_UNKNOWN_RECIPIENT", "end")); got != 1 {
		t.Fatalf("closed sessions %v", got)
	}
	if got := testutil.ToFloat64(m.open); got != 1 {
		t.Fatalf("open %v", got)
	}
	m.ObserveStats(f.a) // deltas: nothing new
	if got := testutil.ToFloat64(m.counters["unparsed"]); got != 1 {
		t.Fatalf("unparsed %v", got)
	}
}
