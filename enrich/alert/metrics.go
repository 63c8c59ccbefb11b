package alert

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/record"
)

// OtherHost is the host label of every host beyond the per-instance host label limit.
const OtherHost = "_other"

// Metrics are the series the Prometheus alerting rules read. Labels are bounded: product (the
// parser's products + unknown), severity (the nine normalised levels), rule (the catalogue),
// verdict (allowed, denied, other) and host, which is capped per instance at the host label
// limit (hosts beyond it are summed under host="_other").
type Metrics struct {
	events       [8][9]prometheus.Counter // [product][severity]
	alertEvents  *prometheus.CounterVec
	raised       *prometheus.CounterVec
	hostLines    *prometheus.CounterVec
	hostSessions *prometheus.CounterVec
	hostAuth     *prometheus.CounterVec
	late         prometheus.Counter

	limit int
	mu    sync.Mutex
	hosts map[string]struct{}
}

// NewMetrics builds the metrics and registers them on reg (nil: not registered); hostLimit
// caps the distinct host label values of this instance.
func NewMetrics(reg prometheus.Registerer, hostLimit int) *Metrics {
	eventsVec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_events_total",
		Help: "Parsed events by product and normalised severity (unset: the line carries none)."}, []string{"product", "severity"})
	m := &Metrics{
		alertEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_alert_events_total",
			Help: "Lines matching an event rule of the alert catalogue, by rule, product and normalised severity."}, []string{"rule", "product", "severity"}),
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_alerts_raised_total",
			Help: "Alert records opened (one per rule, host and throttle window)."}, []string{"rule", "severity"}),
		hostLines: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_host_lines_total",
			Help: "Parsed lines per host (hosts beyond the host label limit count as _other)."}, []string{"host"}),
		hostSessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_host_sessions_total",
			Help: "Closed sessions per host and verdict (allowed, denied = any DENIED_* outcome, other)."}, []string{"host", "verdict"}),
		hostAuth: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_host_auth_failures_total",
			Help: "Closed sessions that failed AUTH, per host."}, []string{"host"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Name: "mxtrail_alert_late_events_total",
			Help: "Alert-rule lines that arrived after their throttle window had closed (counted in metrics, left out of the alert record)."}),
		limit: hostLimit,
		hosts: map[string]struct{}{},
	}
	for p := range m.events {
		for s := range m.events[p] {
			m.events[p][s] = eventsVec.WithLabelValues(event.Product(p).String(), severityLabel(event.Severity(s)))
		}
	}
	if reg != nil {
		reg.MustRegister(eventsVec, m.alertEvents, m.raised, m.hostLines, m.hostSessions, m.hostAuth, m.late)
	}
	return m
}

func severityLabel(s event.Severity) string {
	if s == event.SeverityUnset {
		return "unset"
	}
	return s.String()
}

// Event counts one parsed event (hot path: an array index, no map, no allocation).
func (m *Metrics) Event(p event.Product, s event.Severity) {
	if int(p) >= len(m.events) || int(s) >= len(m.events[0]) {
		p, s = event.ProductUnknown, event.SeverityUnset
	}
	m.events[p][s].Inc()
}

// Matched counts one line that matched an event rule.
func (m *Metrics) Matched(c Class, product string) {
	if c.Rule == RuleNone {
		return
	}
	m.alertEvents.WithLabelValues(c.Rule.String(), product, severityLabel(c.Severity)).Inc()
}

// Raised counts the alert records among rs that open a window (their first version).
func (m *Metrics) Raised(rs []Record) {
	for i := range rs {
		if rs[i].Open() && rs[i].Version>>1 == firstCount(rs[i].Rule, rs[i].Threshold) {
			m.raised.WithLabelValues(rs[i].Rule, rs[i].Severity).Inc()
		}
	}
}

// firstCount is the count of an alert's first version: 1 for event rules, the threshold for
// bursts.
func firstCount(rule string, threshold float64) uint64 {
	if rule == RuleAuthFailureBurst.String() {
		return uint64(threshold)
	}
	return 1
}

// Late adds n late alert-rule lines.
func (m *Metrics) Late(n int64) {
	if n > 0 {
		m.late.Add(float64(n))
	}
}

// hostLabel returns host, or OtherHost once the instance has limit distinct hosts.
func (m *Metrics) hostLabel(host string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.hosts[host]; ok {
		return host
	}
	if len(m.hosts) >= m.limit {
		return OtherHost
	}
	m.hosts[host] = struct{}{}
	return host
}

// Verdict is the host_sessions_total verdict of a session outcome.
func Verdict(o record.Outcome) string {
	switch {
	case o == record.Allowed:
		return "allowed"
	case strings.HasPrefix(string(o), "DENIED_"):
		return "denied"
	}
	return "other"
}

// HostCounters caches one partition's per-host counters, so counting a line is one map
// lookup without allocation and without the instance-wide lock.
type HostCounters struct {
	m        *Metrics
	lines    map[string]prometheus.Counter
	sessions map[string]*[3]prometheus.Counter // allowed, denied, other
	auth     map[string]prometheus.Counter
}

// Hosts returns a new per-partition cache.
func (m *Metrics) Hosts() *HostCounters {
	return &HostCounters{m: m, lines: map[string]prometheus.Counter{},
		sessions: map[string]*[3]prometheus.Counter{}, auth: map[string]prometheus.Counter{}}
}

// Line counts one parsed line of host.
func (c *HostCounters) Line(host []byte) {
	if ctr, ok := c.lines[string(host)]; ok {
		ctr.Inc()
		return
	}
	h := string(host)
	ctr := c.m.hostLines.WithLabelValues(c.m.hostLabel(h))
	c.bound(len(c.lines), func() { clear(c.lines) })
	c.lines[h] = ctr
	ctr.Inc()
}

// Session counts one closed session.
func (c *HostCounters) Session(s *record.Session) {
	cs, ok := c.sessions[s.Host]
	if !ok {
		label := c.m.hostLabel(s.Host)
		cs = &[3]prometheus.Counter{c.m.hostSessions.WithLabelValues(label, "allowed"),
			c.m.hostSessions.WithLabelValues(label, "denied"), c.m.hostSessions.WithLabelValues(label, "other")}
		c.bound(len(c.sessions), func() { clear(c.sessions) })
		c.sessions[s.Host] = cs
	}
	switch Verdict(s.Outcome) {
	case "allowed":
		cs[0].Inc()
	case "denied":
		cs[1].Inc()
	default:
		cs[2].Inc()
	}
	if AuthFailed(s) {
		a, ok := c.auth[s.Host]
		if !ok {
			a = c.m.hostAuth.WithLabelValues(c.m.hostLabel(s.Host))
			c.bound(len(c.auth), func() { clear(c.auth) })
			c.auth[s.Host] = a
		}
		a.Inc()
	}
}

// bound keeps a cache from growing without limit when a partition sees more hosts than the
// label limit (the _other ones would otherwise each keep an entry).
func (c *HostCounters) bound(n int, reset func()) {
	if n >= 2*c.m.limit+64 {
		reset()
	}
}
