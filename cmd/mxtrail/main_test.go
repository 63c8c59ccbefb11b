package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// An unknown command says so and exits 2.
func TestUnknownCommandExit2(t *testing.T) {
	if code, _, stderr := run(t, "frobnicate"); code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, stderr)
	}
}

func TestConfigCheck(t *testing.T) {
	t.Setenv("MXTRAIL_KAFKA_BROKERS", "127.0.0.1:19092")
	code, stdout, stderr := run(t, "config", "check", filepath.Join("..", "..", "mxtrail.yaml"))
	if code != 0 || !strings.Contains(stdout, "ok") {
		t.Fatalf("example config: exit %d, %q %q", code, stdout, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("kafka:\n  topics:\n    raw: 'a b'\n  nope: 1\nhttp:\n  log_level: loud\n"), 0o644)
	code, _, stderr = run(t, "config", "check", bad)
	if code != 1 {
		t.Fatalf("bad config: exit %d", code)
	}
	for _, want := range []string{
		`kafka.nope (line 4): unknown key "nope"`,
		`kafka.topics.raw: "a b" is not a valid Kafka topic name`,
		`http.log_level: "loud" is not debug, info, warn or error`,
		"3 problem(s)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "mxtrail ") {
		t.Fatalf("version: %d %q", code, stdout)
	}
}
