package session

import (
	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports the assembler's work. Labels come from fixed sets (product names, the
// outcome vocabulary, closed_by), never from line content. The assembler itself stays pure:
// the caller feeds Metrics with the sessions it got and the assembler's Stats.
type Metrics struct {
	sessions *prometheus.CounterVec
	open     prometheus.Gauge
	counters map[string]prometheus.Counter
	last     Stats
}

// NewMetrics registers the assembler's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrail_sessions_closed_total",
			Help: "Session records emitted, by product, outcome and why they were closed.",
		}, []string{"product", "outcome", "closed_by"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxtrail_sessions_open",
			Help: "Sessions currently open in the assembler (bounded by max_open).",
		}),
		counters: map[string]prometheus.Counter{},
	}
	lines := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_sessions_lines_total",
		Help: "Lines given to the assembler, by what became of them.",
	}, []string{"kind"})
	for _, k := range []string{"unparsed", "sessionless", "orphan", "evicted", "key_reused", "icdsoft_join", "notable"} {
		m.counters[k] = lines.WithLabelValues(k)
	}
	reg.MustRegister(m.sessions, m.open, lines)
	return m
}

// ObserveSessions counts closed session records.
func (m *Metrics) ObserveSessions(rs []record.Session) {
	for i := range rs {
		m.sessions.WithLabelValues(rs[i].Product, string(rs[i].Outcome), string(rs[i].ClosedBy)).Inc()
	}
}

// ObserveStats adds what the assembler counted since the previous call, and its open count.
func (m *Metrics) ObserveStats(a *Assembler) {
	s := a.stats
	m.counters["unparsed"].Add(float64(s.Unparsed - m.last.Unparsed))
	m.counters["sessionless"].Add(float64(s.Sessionless - m.last.Sessionless))
	m.counters["orphan"].Add(float64(s.Orphans - m.last.Orphans))
	m.counters["evicted"].Add(float64(s.Evicted - m.last.Evicted))
	m.counters["key_reused"].Add(float64(s.KeyReused - m.last.KeyReused))
	m.counters["icdsoft_join"].Add(float64(s.Joined - m.last.Joined))
	m.counters["notable"].Add(float64(s.Notable - m.last.Notable))
	m.last = s
	m.last.Closed = nil
	m.open.Set(float64(a.nOpen))
}
