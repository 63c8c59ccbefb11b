package testenv

import (
	"strings"
	"testing"
)

// The chdb runner executes modern-only SQL and reports a failing statement as an error.
func TestChdbIntegration(t *testing.T) {
	out, err := Chdb(t, "CREATE TABLE t (ip IPv6, ts DateTime64(3)) ENGINE = MergeTree ORDER BY ip TTL toDateTime(ts) + INTERVAL 1 DAY;\n"+
		"INSERT INTO t VALUES ('::1', now64()), ('2001:db8::1', now64());\nSELECT count() AS n FROM t;\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "n\n2\n") {
		t.Fatalf("unexpected output %q", out)
	}
	if _, err := Chdb(t, "SELECT no_such_function()"); err == nil || !strings.Contains(err.Error(), "no_such_function") {
		t.Fatalf("want an error naming the bad statement, got %v", err)
	}
}
