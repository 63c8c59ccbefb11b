package produce

import "github.com/prometheus/client_golang/prometheus"

// Input is the bounded label naming where a line came from.
type Input uint8

// Inputs. The label values are fixed; a path or address never becomes a label.
const (
	InputFile Input = iota
	InputSyslogUDP
	InputSyslogTCP
	InputStdin
	numInputs
)

var inputNames = [numInputs]string{"file", "syslog_udp", "syslog_tcp", "stdin"}

func (i Input) String() string { return inputNames[i] }

// Metrics of the Kafka output.
type Metrics struct {
	readLines  [numInputs]prometheus.Counter
	readBytes  [numInputs]prometheus.Counter
	truncated  [numInputs]prometheus.Counter
	sentLines  [numInputs]prometheus.Counter
	sentBytes  [numInputs]prometheus.Counter
	ackedLines [numInputs]prometheus.Counter
	ackedBytes [numInputs]prometheus.Counter
	inflight   prometheus.Gauge
	sendErrors prometheus.Counter
	retries    prometheus.Counter
	up         prometheus.Gauge
}

// NewMetrics registers the producer's metrics with reg (nil: unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lines := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_ship_acked_lines_total", Help: "Lines Kafka acknowledged (acks=all).",
	}, []string{"input"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_ship_acked_bytes_total", Help: "Value bytes Kafka acknowledged.",
	}, []string{"input"})
	slines := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_ship_sent_lines_total", Help: "Lines handed to a Kafka produce request (first attempt).",
	}, []string{"input"})
	sbytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_ship_sent_bytes_total", Help: "Value bytes handed to a Kafka produce request (first attempt).",
	}, []string{"input"})
	rlines := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_ship_read_lines_total", Help: "Lines read from an input.",
	}, []string{"input"})
	rbytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_ship_read_bytes_total", Help: "Bytes read from an input (files and stdin: including newlines).",
	}, []string{"input"})
	trunc := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxtrail_ship_truncated_lines_total", Help: "Lines longer than the maximum, shipped truncated and flagged in a header.",
	}, []string{"input"})
	m := &Metrics{
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxtrail_ship_inflight_bytes", Help: "Value bytes accepted for Kafka and not yet acknowledged.",
		}),
		sendErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrail_ship_send_errors_total", Help: "Failed Kafka write attempts.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrail_ship_send_retries_total", Help: "Kafka write retries after backoff.",
		}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxtrail_ship_kafka_up", Help: "1 while the last Kafka write succeeded.",
		}),
	}
	for i := range numInputs {
		m.ackedLines[i] = lines.WithLabelValues(inputNames[i])
		m.ackedBytes[i] = bytes.WithLabelValues(inputNames[i])
		m.readLines[i] = rlines.WithLabelValues(inputNames[i])
		m.readBytes[i] = rbytes.WithLabelValues(inputNames[i])
		m.truncated[i] = trunc.WithLabelValues(inputNames[i])
		m.sentLines[i] = slines.WithLabelValues(inputNames[i])
		m.sentBytes[i] = sbytes.WithLabelValues(inputNames[i])
	}
	if reg != nil {
		reg.MustRegister(rlines, rbytes, trunc, lines, bytes, slines, sbytes, m.inflight, m.sendErrors, m.retries, m.up)
	}
	return m
}

func (m *Metrics) acked(in Input, lines, n int) {
	m.ackedLines[in].Add(float64(lines))
	m.ackedBytes[in].Add(float64(n))
}

// count sums a batch per input and reports it once: per-line counter updates cost more than
// the rest of the bookkeeping.
func (m *Metrics) count(entries []entry, report func(in Input, lines, n int)) {
	var lines, bytes [numInputs]int
	for i := range entries {
		lines[entries[i].input]++
		bytes[entries[i].input] += int(entries[i].n)
	}
	for in := range numInputs {
		if lines[in] > 0 {
			report(in, lines[in], bytes[in])
		}
	}
}

func (m *Metrics) sent(in Input, lines, n int) {
	m.sentLines[in].Add(float64(lines))
	m.sentBytes[in].Add(float64(n))
}

// Read counts lines and bytes read by an input (inputs report here so every per-input series
// lives in one family).
func (m *Metrics) Read(in Input, lines, bytes int) {
	m.readLines[in].Add(float64(lines))
	m.readBytes[in].Add(float64(bytes))
}

// Truncated counts one over-long line shipped truncated.
func (m *Metrics) Truncated(in Input) { m.truncated[in].Inc() }
