package clickhouse

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the sink's Prometheus series. Labels come from fixed sets: table (sessions,
// events, deadletter, alerts), reason (the dead-letter reasons), topic (the three consumed topics).
type Metrics struct {
	Rows          *prometheus.CounterVec
	Bytes         *prometheus.CounterVec
	BatchRows     prometheus.Histogram
	InsertSeconds *prometheus.HistogramVec
	Retries       *prometheus.CounterVec
	// InsertFailures counts failed INSERT attempts per table, before any retry (retryable or
	// not): the alerting rule sink_insert_failing reads it.
	InsertFailures *prometheus.CounterVec
	DeadLettered   *prometheus.CounterVec
	Lag            *prometheus.GaugeVec
	Commits        prometheus.Counter
	CommitErrors   prometheus.Counter
	// Revoked counts batches left uncommitted because a rebalance moved their partitions.
	Revoked prometheus.Counter
	// Skipped counts records retention deleted before the sink read them.
	Skipped prometheus.Counter
	// Waits is the time the batcher spent idle, by what it waited for: "kafka" (no fetch
	// ready) or "clickhouse" (every batch full or in flight): which side limits the sink.
	Waits *prometheus.CounterVec
	// Batches counts the batches handed to the writer by what closed them: rows, bytes, age,
	// tail (a drained backlog's last batch, see Sink.Run), lease (a rebalance) or shutdown.
	Batches *prometheus.CounterVec
}

// NewMetrics builds the sink's metrics and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_sink_rows_total",
			Help: "Rows acknowledged by ClickHouse, per table."}, []string{"table"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_sink_bytes_total",
			Help: "Kafka message bytes whose rows ClickHouse acknowledged, per table."}, []string{"table"}),
		BatchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mxtrail_sink_batch_messages",
			Help: "Messages per flushed batch.", Buckets: prometheus.ExponentialBuckets(100, 4, 8)}),
		InsertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mxtrail_sink_insert_seconds",
			Help: "Latency of one successful INSERT, per table.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)},
			[]string{"table"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_sink_insert_retries_total",
			Help: "INSERT attempts that failed with a retryable error, per table."}, []string{"table"}),
		InsertFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_sink_insert_failures_total",
			Help: "INSERT attempts that failed, per table, before any retry."}, []string{"table"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_sink_deadlettered_total",
			Help: "Records written to the deadletter table, per reason."}, []string{"reason"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mxtrail_sink_consumer_lag",
			Help: "Messages behind the high watermark, summed over the partitions this instance owns, per topic (as of each partition's last fetch)."}, []string{"topic"}),
		Commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "mxtrail_sink_offset_commits_total",
			Help: "Offset commits after acknowledged batches."}),
		CommitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "mxtrail_sink_offset_commit_errors_total",
			Help: "Offset commits that failed after an acknowledged insert (the rows replay and collapse)."}),
		Revoked: prometheus.NewCounter(prometheus.CounterOpts{Name: "mxtrail_sink_revoked_batches_total",
			Help: "Batches not committed because a rebalance moved their partitions (the new owner re-reads them; rows already inserted collapse)."}),
		Skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "mxtrail_sink_records_skipped_total",
			Help: "Records deleted by retention before this sink read them (offset out of range)."}),
		Waits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_sink_batcher_wait_seconds_total",
			Help: "Time the batcher spent idle, by what it waited for: kafka (no fetch ready) or clickhouse (every batch full or being inserted)."},
			[]string{"for"}),
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mxtrail_sink_batches_total",
			Help: "Batches handed to the writer, by what closed them: rows, bytes, age, tail (the last batch of a drained backlog), lease or shutdown."},
			[]string{"closed_by"}),
	}
	if reg != nil {
		reg.MustRegister(m.Rows, m.Bytes, m.BatchRows, m.InsertSeconds, m.Retries, m.InsertFailures, m.DeadLettered, m.Lag, m.Commits, m.CommitErrors, m.Revoked, m.Skipped, m.Waits, m.Batches)
	}
	return m
}
