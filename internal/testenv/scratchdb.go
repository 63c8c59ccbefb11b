package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// ClickHouseConn is what ScratchDatabase needs of a ClickHouse connection (clickhouse-go's
// driver.Conn has it).
type ClickHouseConn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Close() error
}

// ScratchDatabase names a throw-away database (prefix, an underscore and a random number:
// engineers share the server) and takes conn over: when the test ends the database is
// dropped through conn, then conn is closed. Do not also `defer conn.Close()`: a defer runs
// before t.Cleanup, and the drop through a closed connection fails, leaving the database
// behind (131 such databases had piled up on the shared server). A failed drop fails the test.
func ScratchDatabase(t testing.TB, conn ClickHouseConn, prefix string) string {
	t.Helper()
	db := fmt.Sprintf("%s_%d", prefix, rand.Uint32())
	t.Cleanup(func() {
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop scratch database %s: %v", db, err)
		}
		conn.Close()
	})
	return db
}
