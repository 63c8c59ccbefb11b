package main

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mxtrail/mxtrail/internal/testenv"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
)

// scratchDatabase connects to the local ClickHouse and names a throw-away database, dropped
// when the test ends (testenv.ScratchDatabase).
func scratchDatabase(t testing.TB, prefix string) (driver.Conn, string) {
	t.Helper()
	conn, err := chsink.Open(context.Background(), chsink.ConnConfig{Addrs: testenv.ClickHouseAddrs(t), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return conn, testenv.ScratchDatabase(t, conn, prefix)
}
