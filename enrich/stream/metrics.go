package stream

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/session"
)

// BytesPerOpenSession is the calibrated heap cost of one open session: enrich/session's
// BenchmarkOpenSessionBytes (a generated fleet of every product, added without closing,
// heap growth after GC divided by the open count) measured 1,496 bytes at 25k open. The
// open-session memory gauge is Open × this calibration, not a walk of the assembler's state
// (that would cost more than the lines themselves); sessions with many recipients weigh
// more, so treat the gauge as an estimate within a factor of about two.
const BytesPerOpenSession = 1500

// Dead-letter reasons besides the input ones (input.go): a small fixed set, used as labels.
const (
	ReasonUnparsed = "unparsed"  // no dialect or pattern matched the line
	ReasonTooLong  = "too_long"  // longer than MaxLine (or truncated by the shipper)
	ReasonBadValue = "bad_value" // binary garbage: NUL bytes or not UTF-8 enough to be a log line
)

// DeadLetterReasons lists every reason a dead letter can carry.
var DeadLetterReasons = []string{ReasonBadEnvelope, ReasonBadHeader, ReasonEmpty, ReasonUnparsed, ReasonTooLong, ReasonBadValue}

// Metrics exports the stream loop. Labels come from fixed sets (product, outcome, severity,
// dead-letter reason); partition numbers are summed, never used as labels.
type Metrics struct {
	Parse   *parse.Metrics
	Session *session.Metrics

	linesIn     prometheus.Counter
	sessionsOut *prometheus.CounterVec
	eventsOut   *prometheus.CounterVec
	deadLetters map[string]prometheus.Counter
	open        prometheus.Gauge
	openBytes   prometheus.Gauge
	evicted     prometheus.Counter
	lag         prometheus.Gauge
	commits     prometheus.Counter
	writeErrors prometheus.Counter
	revoked     prometheus.Counter
	skipped     prometheus.Counter
	unacked     prometheus.Gauge
	waits       prometheus.Counter
	straddles   prometheus.Counter
	latency     prometheus.Histogram
}

// NewMetrics registers the enricher's metrics (and the parser's and assembler's) with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Parse:   parse.NewMetrics(reg),
		Session: session.NewMetrics(reg),
		linesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrail_enrich_lines_in_total", Help: "Raw-topic records consumed.",
		}),
		sessionsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrail_enrich_sessions_out_total", Help: "Session records produced, by product and outcome.",
		}, []string{"product", "outcome"}),
		eventsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrail_enrich_events_out_total", Help: "Notable events produced, by severity.",
		}, []string{"severity"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxtrail_enrich_open_sessions", Help: "Sessions open in this instance (all partitions; capped by enrich.sessions.max_open).",
		}),
		openBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxtrail_enrich_open_sessions_bytes", Help: "Estimated heap held by open sessions: open sessions × 1,500 bytes, the per-session heap calibrated by enrich/session BenchmarkOpenSessionBytes (1,496 B at 25k open, generated fleet).",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrail_enrich_sessions_evicted_total", Help: "Sessions closed early because the open-session cap was reached (closed_by=evicted).",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxtrail_enrich_commit_lag_offsets", Help: "Consumed minus committed offsets, summed over assigned partitions (what a crash would replay).",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrail_enrich_commits_total", Help: "Offset commits sent to the group coordinator.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrail_enrich_write_errors_total", Help: "Output batches Kafka did not acknowledge after the writer's retries (the enricher stops; replay redoes them).",
		}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrail_enrich_partitions_revoked_total", Help: "Partitions whose state was dropped on a rebalance.",
		}),
		unacked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxtrail_enrich_unacked_output_bytes", Help: "Output bytes handed to Kafka and not yet acknowledged (bounded by enrich.stream.max_unacked_bytes).",
		}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrail_enrich_backpressure_waits_total", Help: "Fetches held back because unacknowledged outputs were over enrich.stream.max_unacked_bytes.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrail_enrich_records_skipped_total", Help: "Raw records deleted by retention before this enricher read them (offset out of range).",
		}),
		straddles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrail_enrich_commit_straddles_total", Help: "Commits placed inside a closed session because holding them at its first line would replay more than 1,048,576 records; a replay from one rebuilds that session's tail as a separate record.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mxtrail_enrich_processing_seconds",
			Help:    "Time to decode, parse and assemble one record, sampled (one record in 16); its outputs go to the producer after the whole fetch.",
			Buckets: []float64{1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3, 1e-2, 0.1},
		}),
	}
	dl := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_enrich_deadletters_total", Help: "Records sent to the dead-letter topic, by reason.",
	}, []string{"reason"})
	m.deadLetters = map[string]prometheus.Counter{}
	for _, r := range DeadLetterReasons {
		m.deadLetters[r] = dl.WithLabelValues(r)
	}
	reg.MustRegister(m.linesIn, m.sessionsOut, m.eventsOut, dl, m.open, m.openBytes, m.evicted, m.lag,
		m.commits, m.writeErrors, m.revoked, m.skipped, m.straddles, m.latency, m.unacked, m.waits)
	// severities are a fixed set: create them so dashboards see zeros
	for s := event.Severity(1); s <= 8; s++ {
		m.eventsOut.WithLabelValues(s.String())
	}
	return m
}

func (m *Metrics) addOpen(delta int) {
	m.open.Add(float64(delta))
	m.openBytes.Add(float64(delta * BytesPerOpenSession))
}
