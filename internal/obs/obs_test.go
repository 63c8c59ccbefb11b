package obs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerEndpoints(t *testing.T) {
	s := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "mxtrail_test_lines_total", Help: "x"})
	s.Registry.MustRegister(c)
	c.Add(3)
	kafkaDown := errors.New("dial tcp 127.0.0.1:19092: connection refused")
	var down atomic.Bool
	down.Store(true)
	s.AddCheck("kafka", func(context.Context) error {
		if down.Load() {
			return kafkaDown
		}
		return nil
	})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr()

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	code, body := get(t, base+"/readyz")
	if code != 503 || !strings.Contains(body, "kafka: dial tcp 127.0.0.1:19092: connection refused") {
		t.Fatalf("/readyz while kafka is down = %d %q", code, body)
	}
	down.Store(false)
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz when ready = %d %q", code, body)
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{"mxtrail_test_lines_total 3", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

type drainingService struct{ drained chan struct{} }

func (d drainingService) Run(ctx context.Context) error {
	<-ctx.Done()
	time.Sleep(20 * time.Millisecond) // flush and commit
	close(d.drained)
	return ctx.Err()
}

func TestRunServiceDrainsOnCancel(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	svc := drainingService{drained: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- RunService(ctx, log, NewServer(log), "127.0.0.1:0", 5*time.Second, svc) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunService after a clean drain: %v", err)
	}
	select {
	case <-svc.drained:
	default:
		t.Fatal("RunService returned before the service drained")
	}
	if !strings.Contains(logs.String(), "draining") {
		t.Fatalf("no shutdown log: %s", logs.String())
	}
}

func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	l, err := NewLogger(&b, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if s := b.String(); strings.Contains(s, "hidden") || !strings.Contains(s, `"msg":"shown"`) {
		t.Fatalf("json logger wrote %q", s)
	}
	if _, err := NewLogger(&b, "xml", "info"); err == nil {
		t.Fatal("want an error for format xml")
	}
	if _, err := NewLogger(&b, "text", "loud"); err == nil {
		t.Fatal("want an error for level loud")
	}
}
