// Package obs is the observability skeleton every long-running mxtrail service reuses: a
// Prometheus registry per process (never the global one, so two services can run in one test),
// an HTTP listener with /metrics, /healthz and /readyz, and slog set-up.
package obs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewLogger returns a slog.Logger writing text (default) or JSON at the given level.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// NewRegistry returns a registry with the Go runtime and process collectors registered.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Check reports whether one dependency is reachable; nil means ready.
type Check func(ctx context.Context) error

// Server serves /metrics, /healthz (the process is alive) and /readyz (every registered
// dependency check passes, each with a short timeout).
type Server struct {
	Registry *prometheus.Registry
	log      *slog.Logger

	mu     sync.Mutex
	checks map[string]Check

	srv *http.Server
	ln  net.Listener
}

// NewServer builds a server on a fresh registry; nothing listens until Start.
func NewServer(log *slog.Logger) *Server {
	s := &Server{Registry: NewRegistry(), log: log, checks: map[string]Check{}}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", s.readyz)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s
}

// AddCheck registers a readiness check under name (e.g. "kafka", "clickhouse").
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// Ready runs every check and returns their failures by name (empty when ready).
func (s *Server) Ready(ctx context.Context) map[string]error {
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()
	failed := map[string]error{}
	for name, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := c(cctx); err != nil {
			failed[name] = err
		}
		cancel()
	}
	return failed
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	failed := s.Ready(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(failed) == 0 {
		io.WriteString(w, "ready\n")
		return
	}
	names := make([]string, 0, len(failed))
	for n := range failed {
		names = append(names, n)
	}
	sort.Strings(names)
	w.WriteHeader(http.StatusServiceUnavailable)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s: %v\n", n, failed[n])
	}
	io.WriteString(w, b.String())
}

// Start listens on addr (host:port; port 0 picks a free one) and serves in the background.
// An empty addr serves nothing.
func (s *Server) Start(addr string) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for metrics on %q: %w", addr, err)
	}
	s.ln = ln
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener stopped", "err", err)
		}
	}()
	s.log.Info("serving /metrics, /healthz, /readyz", "addr", ln.Addr().String())
	return nil
}

// Addr is the address the server listens on, or "" before Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the listener, letting in-flight scrapes finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// Service is a long-running stage: Run blocks until ctx is cancelled or it fails; when ctx is
// cancelled it must drain (flush produced output, commit acknowledged offsets) before returning.
type Service interface {
	Run(ctx context.Context) error
}

// RunService runs svc with the observability server around it. When ctx is cancelled (SIGINT
// or SIGTERM in main), the service drains within drain; then the listener stops.
func RunService(ctx context.Context, log *slog.Logger, srv *Server, listen string, drain time.Duration, svc Service) error {
	if err := srv.Start(listen); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(ctx) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("shutting down: draining", "timeout", drain)
		select {
		case err = <-errc:
		case <-time.After(drain):
			err = fmt.Errorf("service did not drain within %s", drain)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
