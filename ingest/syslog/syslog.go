// Package syslog owns the shipper's syslog receiver: UDP datagrams and TCP streams with
// newline or octet-counting framing (RFC 6587), RFC 3164 and RFC 5424 headers (only the host
// name is read from them; the message is shipped as received). TCP connections are read only
// as fast as Kafka accepts, so a slow Kafka pushes back on the sender instead of filling
// memory; UDP cannot push back, and the kernel's drop count for the socket is exported.
package syslog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/ingest/produce"
	"github.com/mxtrail/mxtrail/ingest/wire"
)

// Sender is the Kafka output as the receiver uses it.
type Sender interface {
	Send(ctx context.Context, in produce.Input, key string, headers []kafka.Header, value []byte, acker produce.Acker, seq uint64) error
}

// Config of the receiver.
type Config struct {
	UDP, TCP string // listen addresses; empty disables
	// Host is used when a message's header has no usable host name.
	Host    string
	Dialect string
	MaxLine int
	// IdleTimeout closes a TCP connection that sent nothing for this long (0: never).
	IdleTimeout time.Duration
	Logger      *slog.Logger
	Counters    *produce.Metrics
	Metrics     *Metrics
}

// Validate returns every problem with c.
func (c *Config) Validate() []error {
	var errs []error
	if c.UDP == "" && c.TCP == "" {
		errs = append(errs, errors.New("syslog: neither udp nor tcp listen address"))
	}
	if c.Host == "" {
		errs = append(errs, errors.New("syslog: empty fallback host"))
	}
	if c.MaxLine < 1 {
		errs = append(errs, fmt.Errorf("syslog: max line %d < 1", c.MaxLine))
	}
	return errs
}

// Metrics of the receiver.
type Metrics struct {
	conns        prometheus.Gauge
	framingErrs  prometheus.Counter
	udpDropsFunc prometheus.CounterFunc
	port         int
	mu           sync.Mutex
}

// NewMetrics registers the receiver's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		conns:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "mxtrail_ship_syslog_tcp_connections", Help: "Open syslog TCP connections."}),
		framingErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "mxtrail_ship_syslog_framing_errors_total", Help: "TCP streams closed because of a broken octet count."}),
	}
	m.udpDropsFunc = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "mxtrail_ship_syslog_udp_kernel_drops_total", Help: "Datagrams the kernel dropped on the syslog UDP socket (from /proc/net/udp).",
	}, func() float64 {
		m.mu.Lock()
		port := m.port
		m.mu.Unlock()
		if port == 0 {
			return 0
		}
		n, _ := UDPDrops(port)
		return float64(n)
	})
	if reg != nil {
		reg.MustRegister(m.conns, m.framingErrs, m.udpDropsFunc)
	}
	return m
}

// Receiver listens for syslog.
type Receiver struct {
	cfg  Config
	out  Sender
	udp  *net.UDPConn
	tcp  net.Listener
	log  *slog.Logger
	m    *Metrics
	c    *produce.Metrics
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{}
	// fallback is cfg.Host, the host of messages without one in their header.
	fallback []byte
}

// Listen opens the sockets (so the caller learns of a busy port at once).
func Listen(cfg Config, out Sender) (*Receiver, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Counters == nil {
		cfg.Counters = produce.NewMetrics(nil)
	}
	r := &Receiver{cfg: cfg, out: out, log: cfg.Logger, m: cfg.Metrics, c: cfg.Counters, open: map[net.Conn]struct{}{}, fallback: []byte(cfg.Host)}
	if cfg.UDP != "" {
		a, err := net.ResolveUDPAddr("udp", cfg.UDP)
		if err != nil {
			return nil, fmt.Errorf("syslog udp address %q: %w", cfg.UDP, err)
		}
		if r.udp, err = net.ListenUDP("udp", a); err != nil {
			return nil, fmt.Errorf("syslog listen udp %q: %w", cfg.UDP, err)
		}
		_ = r.udp.SetReadBuffer(8 << 20) // best effort: fewer drops in bursts
		r.m.mu.Lock()
		r.m.port = r.udp.LocalAddr().(*net.UDPAddr).Port
		r.m.mu.Unlock()
	}
	if cfg.TCP != "" {
		l, err := net.Listen("tcp", cfg.TCP)
		if err != nil {
			if r.udp != nil {
				r.udp.Close()
			}
			return nil, fmt.Errorf("syslog listen tcp %q: %w", cfg.TCP, err)
		}
		r.tcp = l
	}
	return r, nil
}

// UDPAddr and TCPAddr return the bound addresses (useful with port 0).
func (r *Receiver) UDPAddr() net.Addr { return r.udp.LocalAddr() }

// TCPAddr returns the TCP listener's address.
func (r *Receiver) TCPAddr() net.Addr { return r.tcp.Addr() }

// Run serves until ctx ends, then closes the sockets and waits for the connection goroutines.
func (r *Receiver) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		if r.udp != nil {
			r.udp.Close()
		}
		if r.tcp != nil {
			r.tcp.Close()
		}
		r.mu.Lock()
		for c := range r.open {
			c.Close()
		}
		r.mu.Unlock()
	}()
	if r.udp != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.serveUDP(ctx) }()
	}
	if r.tcp != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.serveTCP(ctx) }()
	}
	r.wg.Wait()
	return nil
}

func (r *Receiver) serveUDP(ctx context.Context) {
	buf := make([]byte, 65536)
	for {
		n, _, err := r.udp.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("syslog udp read", "err", err)
			continue
		}
		msg := bytes.TrimRight(buf[:n], "\r\n\x00")
		r.c.Read(produce.InputSyslogUDP, 1, n)
		if err := r.send(ctx, produce.InputSyslogUDP, msg, 0, nil, 0); err != nil {
			return
		}
	}
}

func (r *Receiver) serveTCP(ctx context.Context) {
	for {
		c, err := r.tcp.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("syslog tcp accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		r.mu.Lock()
		r.open[c] = struct{}{}
		r.mu.Unlock()
		r.m.conns.Inc()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() {
				r.mu.Lock()
				delete(r.open, c)
				r.mu.Unlock()
				r.m.conns.Dec()
				c.Close()
			}()
			if err := r.serveConn(ctx, c); err != nil && ctx.Err() == nil {
				r.log.Warn("syslog tcp connection closed", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// serveConn reads one TCP stream. Each message picks its framing by its first byte: a digit
// starts an octet count ("LEN SP MSG"), anything else is newline-terminated. A message is
// sent (and blocks) before the next is read: that is the backpressure.
func (r *Receiver) serveConn(ctx context.Context, c net.Conn) error {
	cr := &countingReader{r: c}
	br := bufio.NewReaderSize(cr, 64<<10)
	line := make([]byte, 0, 4096)
	var hc headerCache
	for {
		if r.cfg.IdleTimeout > 0 {
			c.SetReadDeadline(time.Now().Add(r.cfg.IdleTimeout))
		}
		b, err := br.Peek(1)
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		var orig int
		if b[0] >= '1' && b[0] <= '9' && octetCounted(br) {
			line, orig, err = r.readCounted(br, line[:0])
		} else {
			line, orig, err = r.readNewline(br, line[:0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				// A last message without a newline at connection end still counts.
				err = nil
			} else {
				return err
			}
		}
		msg := bytes.TrimRight(line, "\r\n\x00")
		if len(msg) == 0 && orig == 0 {
			continue // empty line between messages
		}
		r.c.Read(produce.InputSyslogTCP, 1, len(line))
		if err := r.send(ctx, produce.InputSyslogTCP, msg, orig, &hc, cr.reads); err != nil {
			return err
		}
	}
}

// octetCounted reports whether the stream continues with "DIGITS SP": a newline-framed
// message that merely starts with a digit (a headerless date) is not mistaken for a count.
func octetCounted(br *bufio.Reader) bool {
	p, _ := br.Peek(11)
	for i, c := range p {
		if c == ' ' {
			return i > 0
		}
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(p) == 11 // 11 digits and no space: a broken count, reported by readCounted
}

// readCounted reads "LEN SP MSG". orig > 0 reports a message longer than MaxLine, of which
// only MaxLine bytes were kept.
func (r *Receiver) readCounted(br *bufio.Reader, dst []byte) ([]byte, int, error) {
	digits, err := br.ReadSlice(' ')
	if err != nil || len(digits) > 10 {
		r.m.framingErrs.Inc()
		return dst, 0, fmt.Errorf("syslog octet count %q: not digits and a space", truncate(digits, 16))
	}
	n, err := strconv.Atoi(string(digits[:len(digits)-1]))
	if err != nil || n <= 0 {
		r.m.framingErrs.Inc()
		return dst, 0, fmt.Errorf("syslog octet count %q: %w", digits, errors.Join(err, errors.New("want a positive length")))
	}
	keep := min(n, r.cfg.MaxLine)
	start := len(dst)
	dst = slices.Grow(dst, keep)[:start+keep]
	if _, err := io.ReadFull(br, dst[start:]); err != nil {
		return dst[:start], 0, fmt.Errorf("syslog message of %d octets: %w", n, err)
	}
	if n > keep {
		if _, err := br.Discard(n - keep); err != nil {
			return dst, 0, fmt.Errorf("syslog message of %d octets: %w", n, err)
		}
		return dst, n, nil
	}
	return dst, 0, nil
}

func (r *Receiver) readNewline(br *bufio.Reader, dst []byte) ([]byte, int, error) {
	total := 0
	for {
		frag, err := br.ReadSlice('\n')
		total += len(frag)
		if room := r.cfg.MaxLine + 2 - len(dst); room > 0 { // +2: the CRLF trimmed later
			dst = append(dst, frag[:min(room, len(frag))]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		content := total - len(frag) + len(bytes.TrimRight(frag, "\r\n"))
		if content > r.cfg.MaxLine {
			return dst[:r.cfg.MaxLine], content, err
		}
		return dst, 0, err
	}
}

// countingReader counts the reads from a connection: a message that needed none since the
// last headers were built was received at the same moment as the message before it.
type countingReader struct {
	r     io.Reader
	reads uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// headerCache holds the headers of a connection's last message. The next message shares
// them when it arrived in the same read (same ingest_time) from the same host with the same
// RFC, which is the common case for a busy forwarder: it saves a header slice, the host
// string and the time formatting per message. Shared slices are never modified (the producer
// keeps them until Kafka acknowledges the line).
type headerCache struct {
	host, rfc string
	readNo    uint64
	h         []kafka.Header
}

// send ships one message; hc (nil for UDP) and readNo let messages of one TCP read share
// headers.
func (r *Receiver) send(ctx context.Context, in produce.Input, msg []byte, orig int, hc *headerCache, readNo uint64) error {
	hb, rfc := hostBytes(msg)
	if len(hb) == 0 {
		hb = r.fallback
	}
	if orig == 0 && len(msg) > r.cfg.MaxLine { // UDP
		orig, msg = len(msg), msg[:r.cfg.MaxLine]
	}
	if orig == 0 && hc != nil && hc.h != nil && hc.readNo == readNo && hc.rfc == rfc && hc.host == string(hb) {
		return r.out.Send(ctx, in, hc.host, hc.h, msg, nil, 0)
	}
	host := string(hb)
	h := make([]kafka.Header, 0, 6)
	h = append(h,
		kafka.Header{Key: wire.HeaderHost, Value: []byte(host)},
		kafka.Header{Key: wire.HeaderSource, Value: []byte(in.String())},
		kafka.Header{Key: wire.HeaderDialect, Value: []byte(r.cfg.Dialect)},
		kafka.Header{Key: wire.HeaderIngestTime, Value: time.Now().UTC().AppendFormat(nil, wire.IngestTimeLayout)},
	)
	if rfc != "" {
		h = append(h, kafka.Header{Key: wire.HeaderSyslog, Value: []byte(rfc)})
	}
	if orig > 0 {
		h = append(h, kafka.Header{Key: wire.HeaderTruncated, Value: []byte(strconv.Itoa(orig))})
		r.c.Truncated(in)
	} else if hc != nil {
		*hc = headerCache{host: host, rfc: rfc, readNo: readNo, h: h}
	}
	return r.out.Send(ctx, in, host, h, msg, nil, 0)
}

// Host returns the host name in a syslog header and which RFC the header looks like; ""
// when there is none (the caller falls back to its configured host).
//
//	RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME ...   ("-" is a nil host)
//	RFC 3164: <PRI>Mmm dd hh:mm:ss HOSTNAME TAG: ...   (also with an RFC 3339 timestamp)
func Host(msg []byte) (host, rfc string) {
	h, rfc := hostBytes(msg)
	return string(h), rfc
}

// hostBytes is Host without allocating: the host is a sub-slice of msg.
func hostBytes(msg []byte) (host []byte, rfc string) {
	var fb [3][]byte
	rest := msg
	if len(rest) > 0 && rest[0] == '<' {
		i := bytes.IndexByte(rest, '>')
		if i < 2 || i > 4 {
			return nil, ""
		}
		rest = rest[i+1:]
	}
	if len(rest) > 2 && rest[0] >= '1' && rest[0] <= '9' && rest[1] == ' ' {
		f := fields(rest, fb[:0:3])
		if len(f) == 3 && string(f[2]) != "-" {
			return f[2], wire.SyslogRFC5424
		}
		return nil, wire.SyslogRFC5424
	}
	if len(rest) >= 16 && isMonth(rest[:3]) && rest[3] == ' ' && rest[6] == ' ' && rest[9] == ':' && rest[15] == ' ' {
		f := fields(rest[16:], fb[:0:2])
		if len(f) == 2 && !bytes.HasSuffix(f[0], []byte(":")) {
			return f[0], wire.SyslogRFC3164
		}
		return nil, wire.SyslogRFC3164
	}
	if f := fields(rest, fb[:0:3]); len(f) == 3 && len(f[0]) >= 19 && f[0][4] == '-' && f[0][10] == 'T' {
		return f[1], wire.SyslogRFC3164
	}
	return nil, ""
}

// fields appends up to cap(out) space-separated words of b to out, without allocating.
func fields(b []byte, out [][]byte) [][]byte {
	for len(out) < cap(out) {
		b = bytes.TrimLeft(b, " ")
		if len(b) == 0 {
			break
		}
		i := bytes.IndexByte(b, ' ')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i])
		b = b[i:]
	}
	return out
}

func isMonth(b []byte) bool {
	i := strings.Index("JanFebMarAprMayJunJulAugSepOctNovDec", string(b))
	return len(b) == 3 && i >= 0 && i%3 == 0
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// UDPDrops reads the kernel's drop counter for the UDP sockets bound to port from
// /proc/net/udp and /proc/net/udp6 (Linux only; 0 elsewhere).
func UDPDrops(port int) (uint64, error) {
	var total uint64
	want := fmt.Sprintf(":%04X", port)
	for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for _, ln := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(ln)
			if len(f) < 13 || !strings.HasSuffix(f[1], want) {
				continue
			}
			n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
			if err != nil {
				return total, fmt.Errorf("parse %s drops %q: %w", name, f[len(f)-1], err)
			}
			total += n
		}
	}
	return total, nil
}
