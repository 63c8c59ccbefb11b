package tail

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the file input. No label carries a path. Lines and bytes read are counted in
// produce.Metrics with input="file".
type Metrics struct {
	truncations prometheus.Counter
	fileErrors  prometheus.Counter
	files       prometheus.Gauge
	lag         prometheus.Gauge
}

// NewMetrics registers the tailer's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		truncations: prometheus.NewCounter(prometheus.CounterOpts{Name: "mxtrail_ship_file_truncations_total", Help: "Files found truncated (copytruncate) and re-read from the start."}),
		fileErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "mxtrail_ship_file_errors_total", Help: "Files that could not be opened, stated or read."}),
		files:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "mxtrail_ship_files_tracked", Help: "Open files being followed."}),
		lag:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "mxtrail_ship_lag_bytes", Help: "File bytes not yet acknowledged by Kafka, summed over files."}),
	}
	if reg != nil {
		reg.MustRegister(m.truncations, m.fileErrors, m.files, m.lag)
	}
	return m
}
