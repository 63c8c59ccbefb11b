// Package testenv locates the real Kafka and ClickHouse servers for integration tests.
//
// Integration tests are named TestXxxIntegration. When CI=true a server that is not reachable
// fails the test (never skips it); outside CI the test is skipped with a message saying how to
// start the local stack.
package testenv

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

const startHint = "start the local stack with 'make up' (or run 'make test', which does) and export " +
	"MXTRAIL_KAFKA_BROKERS=127.0.0.1:19092 MXTRAIL_CLICKHOUSE_ADDR=127.0.0.1:19000"

// InCI reports whether the tests run under CI (CI=true), where missing servers are failures.
func InCI() bool { return os.Getenv("CI") == "true" }

// KafkaBrokers returns the real broker addresses from MXTRAIL_KAFKA_BROKERS after checking
// that the first one accepts TCP connections.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	return need(t, "Kafka", "MXTRAIL_KAFKA_BROKERS")
}

// ClickHouseAddrs returns the native-protocol addresses from MXTRAIL_CLICKHOUSE_ADDR after
// checking that the first one accepts TCP connections.
func ClickHouseAddrs(t testing.TB) []string {
	t.Helper()
	return need(t, "ClickHouse", "MXTRAIL_CLICKHOUSE_ADDR")
}

func need(t testing.TB, what, env string) []string {
	t.Helper()
	var addrs []string
	for _, a := range strings.Split(os.Getenv(env), ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		unavailable(t, "%s: %s is not set; %s", what, env, startHint)
		return nil
	}
	c, err := net.DialTimeout("tcp", addrs[0], 3*time.Second)
	if err != nil {
		unavailable(t, "%s at %s is not reachable (%v); %s", what, addrs[0], err, startHint)
		return nil
	}
	c.Close()
	return addrs
}

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("integration test needs a server (CI=true, so this is a failure): "+format, args...)
	}
	t.Skipf("skipping integration test: "+format, args...)
}
