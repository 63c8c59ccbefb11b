package query

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
)

// Open connects to ClickHouse with database as the default database, so the saved queries'
// unqualified table names (sessions, events, alerts, sessions_per_minute) resolve there, as
// they do in clickhouse-client --database and in the Grafana data source.
func Open(ctx context.Context, c chsink.ConnConfig, database string) (driver.Conn, error) {
	c.Database = database
	return chsink.Open(ctx, c)
}
