package parse

import (
	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts parsed lines by dialect and unparsed lines by reason. Labels come from
// fixed sets (dialect names, the Reason* constants), never from line content.
type Metrics struct {
	lines    [event.NumDialects][2]prometheus.Counter
	unparsed map[string]prometheus.Counter
}

// Reasons lists every value Event.Reason can take.
var Reasons = []string{ReasonEmpty, ReasonNoDialect, ReasonNoPattern, ReasonBadTime, ReasonUnknownProgram}

// NewMetrics registers the parser's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lines := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_parse_lines_total",
		Help: "Lines parsed, by dialect (unknown when no dialect recognised the line) and outcome.",
	}, []string{"dialect", "parsed"})
	unparsed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_parse_unparsed_total",
		Help: "Lines that did not parse, by reason.",
	}, []string{"reason"})
	reg.MustRegister(lines, unparsed)
	m := &Metrics{unparsed: map[string]prometheus.Counter{}}
	for d := event.Dialect(0); d < event.NumDialects; d++ {
		name := d.String()
		if d == event.DialectAuto {
			name = "unknown"
		}
		m.lines[d][0] = lines.WithLabelValues(name, "false")
		m.lines[d][1] = lines.WithLabelValues(name, "true")
	}
	for _, r := range Reasons {
		m.unparsed[r] = unparsed.WithLabelValues(r)
	}
	return m
}

// Observe counts one parsed event.
func (m *Metrics) Observe(ev *event.Event) {
	d := ev.Dialect
	if d >= event.NumDialects {
		d = event.DialectAuto
	}
	if ev.Parsed {
		m.lines[d][1].Inc()
		return
	}
	m.lines[d][0].Inc()
	if c, ok := m.unparsed[ev.Reason]; ok {
		c.Inc()
	}
}
