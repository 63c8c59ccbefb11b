package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RepoDir is the repository root (where go.mod is).
func RepoDir() string {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	}
	wd, _ := os.Getwd()
	return wd
}

// StateDir is where deploy/local keeps the shared stack's state and caches.
func StateDir() string {
	if d := os.Getenv("MXTRAIL_STATE_DIR"); d != "" {
		return d
	}
	return filepath.Join(RepoDir(), ".cache")
}

// Server is a private server started by a deploy/local script for one test, on free ports and
// a temporary state dir, so a fault test may stop and start it without disturbing the shared
// stack. It is stopped when the test ends.
type Server struct {
	Addr   string // host:port clients connect to
	script string
	env    []string
}

// PrivateKafka starts an Apache Kafka broker of its own for t (about 5-10 s) and returns it
// running. Its jars come from the shared cache.
func PrivateKafka(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("private Kafka broker skipped in -short mode")
	}
	port, cport := freePort(t), freePort(t)
	s := &Server{
		Addr:   "127.0.0.1:" + strconv.Itoa(port),
		script: filepath.Join(RepoDir(), "deploy", "local", "kafka.sh"),
		env: []string{
			"MXTRAIL_STATE_DIR=" + t.TempDir(),
			"MXTRAIL_KAFKA_PORT=" + strconv.Itoa(port),
			"MXTRAIL_KAFKA_CONTROLLER_PORT=" + strconv.Itoa(cport),
			"MXTRAIL_KAFKA_JARS=" + filepath.Join(StateDir(), "kafka-jars"),
			"MXTRAIL_KAFKA_HEAP=512m",
		},
	}
	s.start(t)
	return s
}

// PrivateClickHouse starts a ClickHouse server of its own for t and returns it running.
func PrivateClickHouse(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("private ClickHouse skipped in -short mode")
	}
	port, hport := freePort(t), freePort(t)
	s := &Server{
		Addr:   "127.0.0.1:" + strconv.Itoa(port),
		script: filepath.Join(RepoDir(), "deploy", "local", "clickhouse.sh"),
		env: []string{
			"MXTRAIL_STATE_DIR=" + t.TempDir(),
			"MXTRAIL_CLICKHOUSE_TCP_PORT=" + strconv.Itoa(port),
			"MXTRAIL_CLICKHOUSE_HTTP_PORT=" + strconv.Itoa(hport),
		},
	}
	s.start(t)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	if err := s.run("up"); err != nil {
		unavailable(t, "starting a private server with %s: %v", filepath.Base(s.script), err)
		return
	}
	t.Cleanup(func() { _ = s.run("down") })
}

// Start starts the server again after Stop, keeping its data.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.run("up"); err != nil {
		t.Fatalf("restart %s: %v", filepath.Base(s.script), err)
	}
}

// Stop stops the server gracefully (TERM, then KILL after 30 s), keeping its data.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.run("down"); err != nil {
		t.Fatalf("stop %s: %v", filepath.Base(s.script), err)
	}
}

func (s *Server) run(verb string) error {
	cmd := exec.Command("bash", s.script, verb)
	cmd.Env = append(os.Environ(), s.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(s.script), verb, err, out.String())
	}
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Chdb runs sql (statements separated by ';') in one fresh chdb session (ClickHouse 26.x) and
// returns what the statements printed (TSVWithNames). It fails the test in CI, and skips it
// elsewhere, when the chdb virtualenv of deploy/local/chdb.sh is missing.
func Chdb(t testing.TB, sql string) (string, error) {
	t.Helper()
	py := filepath.Join(StateDir(), "venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		unavailable(t, "chdb virtualenv %s is missing; run 'bash deploy/local/chdb.sh up' (make up does)", py)
		return "", err
	}
	f := filepath.Join(t.TempDir(), "stmts.sql")
	if err := os.WriteFile(f, []byte(sql), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join(RepoDir(), "deploy", "local", "chdb_run.py"), f)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start chdb: %w", err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return stdout.String(), fmt.Errorf("chdb: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		return stdout.String(), fmt.Errorf("chdb did not finish within 5 minutes")
	}
	return stdout.String(), nil
}
