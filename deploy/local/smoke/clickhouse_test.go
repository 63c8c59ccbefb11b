package smoke

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-faster/city"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

func openCH(t *testing.T, addrs []string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: addrs, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open clickhouse %v: %v", addrs, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// 100k rows in one batch with an explicit column list (18.16 needs it), read back with a count
// and checksums computed independently on both sides.
func TestClickHouseSmokeIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	conn := openCH(t, addrs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := "smoke_" + strconv.FormatUint(rand.Uint64()%1e9, 10)
	if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	if err := conn.Exec(ctx, `CREATE TABLE `+db+`.lines (
		ts DateTime, host String, id UInt64, line String
	) ENGINE = MergeTree() PARTITION BY toYYYYMMDD(ts) ORDER BY (host, ts, id)`); err != nil {
		t.Fatal(err)
	}

	const n = 100000
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".lines (ts, host, id, line)")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	var sumID uint64
	var xorHash uint64
	for i := 0; i < n; i++ {
		line := fmt.Sprintf("Mar  9 12:43:51 mx%d spamdyke[%d]: DENIED_RBL_MATCH from: s%d@spam.example", i%11, 3000+i, i)
		if err := batch.Append(base.Add(time.Duration(i)*time.Second), fmt.Sprintf("mx%d", i%11), uint64(i), line); err != nil {
			t.Fatal(err)
		}
		sumID += uint64(i)
		xorHash ^= city.CH64([]byte(line))
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}

	var count, gotSum, gotXor uint64
	if err := conn.QueryRow(ctx, "SELECT count(), sum(id), groupBitXor(cityHash64(line)) FROM "+db+".lines").
		Scan(&count, &gotSum, &gotXor); err != nil {
		t.Fatal(err)
	}
	if count != n || gotSum != sumID || gotXor != xorHash {
		t.Fatalf("read back count=%d sum=%d xor=%x, want %d %d %x", count, gotSum, gotXor, n, sumID, xorHash)
	}
}

func TestPrivateClickHouseStopStartIntegration(t *testing.T) {
	testenv.ClickHouseAddrs(t)
	ch := testenv.PrivateClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := openCH(t, []string{ch.Addr})
	if err := conn.Exec(ctx, "CREATE TABLE default.keep (x UInt8) ENGINE = MergeTree ORDER BY x"); err != nil {
		t.Fatal(err)
	}
	// On 18.16 an INSERT ... VALUES through Exec waits for a data block that never comes;
	// inserts go through batches with an explicit column list.
	b, err := conn.PrepareBatch(ctx, "INSERT INTO default.keep (x)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint8(7)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	ch.Stop(t)
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("ping succeeded while the server was stopped")
	}
	ch.Start(t)
	conn2 := openCH(t, []string{ch.Addr})
	var x uint8
	if err := conn2.QueryRow(ctx, "SELECT x FROM default.keep").Scan(&x); err != nil || x != 7 {
		t.Fatalf("after restart: %d, %v", x, err)
	}
}
