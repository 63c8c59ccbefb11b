package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/internal/testenv"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// A batch holding rows the server always refuses (here: a column whose expression throws for
// them, error 395, not retryable) is not dropped and does not stop the sink: the refused rows
// land in deadletter as they arrived, with the server's error, and every other row is inserted.
func TestWriterIsolatesRejectedRowsIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	ctx := context.Background()
	db := fmt.Sprintf("mxtest_reject_%d", time.Now().UnixNano())
	conn := openTest(t, ctx, addrs, db)
	if err := conn.Exec(ctx, "ALTER TABLE "+db+".sessions ADD COLUMN guard UInt8 MATERIALIZED throwIf(session_key = 'refuse-me')"); err != nil {
		t.Fatal(err)
	}
	sv, err := schema.DetectServer(conn)
	if err != nil {
		t.Fatal(err)
	}
	f := schema.FeaturesFor(sv)
	const n = 5000
	ss := genSessions(41, n)
	bad := map[int]bool{0: true, 1717: true, 1718: true, n - 1: true}
	b := NewBatch(f, 256<<10)
	raws := map[int64]string{}
	for i := range ss {
		if bad[i] {
			ss[i].SessionKey = "refuse-me"
		}
		raw := ss[i].AppendJSON(nil)
		raws[int64(1000+i)] = string(raw)
		b.Add(KindSessions, &Message{Topic: "mxtest.sessions", Partition: 3, Offset: int64(1000 + i), Key: []byte(ss[i].Host), Value: raw}, time.Now())
	}
	m := NewMetrics(nil)
	w := NewWriter(conn, db, f, m, 10*time.Millisecond, 100*time.Millisecond)
	if err := w.Write(ctx, b); err != nil {
		t.Fatalf("write with refused rows: %v", err)
	}
	if got := count(t, ctx, conn, "SELECT count() FROM "+db+".sessions FINAL"); got != n-uint64(len(bad)) {
		t.Errorf("sessions holds %d rows, want %d", got, n-len(bad))
	}
	if got := count(t, ctx, conn, "SELECT count() FROM "+db+".sessions WHERE session_key = 'refuse-me'"); got != 0 {
		t.Errorf("%d refused rows in sessions", got)
	}
	if got := count(t, ctx, conn, "SELECT uniqExactMerge(sessions) FROM "+db+".sessions_per_minute"); got != n-uint64(len(bad)) {
		t.Errorf("rollup counts %d sessions, want %d", got, n-len(bad))
	}
	rows, err := conn.Query(ctx, "SELECT reason, error, topic, partition, offset, key, raw FROM "+db+".deadletter FINAL ORDER BY offset")
	if err != nil {
		t.Fatal(err)
	}
	var seen []int64
	for rows.Next() {
		var reason, msg, topic, key, raw string
		var part int32
		var off int64
		if err := rows.Scan(&reason, &msg, &topic, &part, &off, &key, &raw); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, off)
		if reason != ReasonRejected || !strings.Contains(msg, "throwIf") || topic != "mxtest.sessions" || part != 3 || raw != raws[off] || key == "" {
			t.Errorf("deadletter row at offset %d: reason %q error %q topic %q partition %d key %q, raw matches %v",
				off, reason, msg, topic, part, key, raw == raws[off])
		}
	}
	if fmt.Sprint(seen) != "[1000 2717 2718 5999]" {
		t.Errorf("dead-lettered offsets %v, want [1000 2717 2718 5999]", seen)
	}
	if got := counterValue(m.DeadLettered.WithLabelValues(ReasonRejected)); got != float64(len(bad)) {
		t.Errorf("dead-lettered metric %v, want %d", got, len(bad))
	}
}

// Refusals that are not about the rows still stop the write: here every row is refused, and
// the search gives up (after 100 inserts here, maxIsolateInserts
// in the sink) instead of inserting the batch one row at a time.
func TestWriterGivesUpWhenEveryRowIsRefusedIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	ctx := context.Background()
	db := fmt.Sprintf("mxtest_refuseall_%d", time.Now().UnixNano())
	conn := openTest(t, ctx, addrs, db)
	if err := conn.Exec(ctx, "ALTER TABLE "+db+".sessions ADD COLUMN guard UInt8 MATERIALIZED throwIf(session_id != '')"); err != nil {
		t.Fatal(err)
	}
	sv, _ := schema.DetectServer(conn)
	f := schema.FeaturesFor(sv)
	ss := genSessions(43, 2000)
	b := NewBatch(f, 256<<10)
	for i := range ss {
		b.Add(KindSessions, &Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}, time.Now())
	}
	w := NewWriter(conn, db, f, NewMetrics(nil), 10*time.Millisecond, 100*time.Millisecond)
	w.isolateMax = 100
	err := w.Write(ctx, b)
	if err == nil || !strings.Contains(err.Error(), "gave up isolating") {
		t.Fatalf("want the isolation to give up, got %v", err)
	}
}
