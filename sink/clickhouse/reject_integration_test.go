package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/internal/testenv"
	"github.com/segmentio/kafka-go"
)

// A batch holding rows the server always refuses (here: a column whose expression throws for
// them, error 395, not retryable) is not dropped and does not stop the sink: the refused rows
// land in deadletter as they arrived, with the server's error, and every other row is inserted.
// The raw bytes come from the batch's own messages ("kept"), or, for a batch that kept none
// (Batch.SetRereadSessions, as the sink runs with a GroupSource), from Kafka: the real broker
// ("reread"), whose messages are overwritten in memory after Add to prove the batch kept no
// reference to them, or a broker that never answers ("reread fails"), which leaves raw empty
// and says so in the error rather than holding up the batch.
func TestWriterIsolatesRejectedRowsIntegration(t *testing.T) {
	for _, mode := range []string{"kept", "reread", "reread fails"} {
		t.Run(mode, func(t *testing.T) { testWriterIsolatesRejectedRows(t, mode) })
	}
}

func testWriterIsolatesRejectedRows(t *testing.T, mode string) {
	ctx := context.Background()
	conn, db, f := testDB(t, ctx, "reject")
	if err := conn.Exec(ctx, "ALTER TABLE "+db+".sessions ADD COLUMN guard UInt8 MATERIALIZED throwIf(session_key = 'refuse-me')"); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	ss := genSessions(41, n)
	bad := map[int]bool{0: true, 1717: true, 1718: true, n - 1: true}
	topic, part, base := "mxtest.sessions", 3, int64(1000)
	raws := map[int64]string{}
	msgs := make([]kafka.Message, n)
	for i := range ss {
		if bad[i] {
			ss[i].SessionKey = "refuse-me"
		}
		raw := ss[i].AppendJSON(nil)
		raws[base+int64(i)] = string(raw)
		msgs[i] = kafka.Message{Key: []byte(ss[i].Host), Value: raw}
	}
	m := NewMetrics(nil)
	w := NewWriter(conn, db, f, m, 10*time.Millisecond, 100*time.Millisecond)
	b := NewBatch(f, 256<<10)
	switch mode {
	case "reread":
		brokers := testenv.KafkaBrokers(t)
		st := newStream(t, ctx, brokers)
		topic, base = st.sessions, 0
		clear(raws)
		for i := range msgs {
			raws[int64(i)] = string(msgs[i].Value)
		}
		// All to one partition, in order: offset i is record i.
		kw := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchSize: n,
			Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return part })}
		if err := kw.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
		kw.Close()
		src, err := NewGroupSource(GroupConfig{Brokers: brokers, GroupID: st.group, Topics: []string{topic}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.SetReread(src.Reread)
		b.SetRereadSessions(true)
	case "reread fails":
		w.SetReread(func(ctx context.Context, topic string, partition int, offset int64) ([]byte, []byte, error) {
			return nil, nil, fmt.Errorf("dial broker: connection refused")
		})
		b.SetRereadSessions(true)
	}
	for i := range msgs {
		b.Add(KindSessions, &Message{Topic: topic, Partition: part, Offset: base + int64(i), Key: msgs[i].Key, Value: msgs[i].Value}, time.Now())
		if b.rereadSessions {
			// The fetch buffer is reused at once: nothing of the batch may point into it.
			for j := range msgs[i].Value {
				msgs[i].Value[j] = 'x'
			}
			for j := range msgs[i].Key {
				msgs[i].Key[j] = 'x'
			}
		}
	}
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
	// The rows the server took are the records as sent, though their messages were overwritten.
	if got := count(t, ctx, conn, "SELECT count() FROM "+db+".sessions WHERE position(mail_from, 'xxxx') > 0 OR position(session_id, 'xxxx') > 0"); got != 0 {
		t.Errorf("%d rows hold overwritten message bytes", got)
	}
	rows, err := conn.Query(ctx, "SELECT reason, error, topic, partition, offset, key, raw FROM "+db+".deadletter FINAL ORDER BY offset")
	if err != nil {
		t.Fatal(err)
	}
	var seen []int64
	for rows.Next() {
		var reason, msg, dtopic, key, raw string
		var dpart int32
		var off int64
		if err := rows.Scan(&reason, &msg, &dtopic, &dpart, &off, &key, &raw); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, off-base)
		wantRaw, wantKey := raws[off], strings.Trim(key, "x") != ""
		if mode == "reread fails" {
			wantRaw, wantKey = "", key == "" && strings.Contains(msg, "raw left empty: dial broker: connection refused")
		}
		if reason != ReasonRejected || !strings.Contains(msg, "throwIf") || dtopic != topic || int(dpart) != part || raw != wantRaw || !wantKey {
			t.Errorf("deadletter row at offset %d: reason %q error %q topic %q partition %d key %q, raw matches %v",
				off, reason, msg, dtopic, dpart, key, raw == wantRaw)
		}
	}
	if fmt.Sprint(seen) != "[0 1717 1718 4999]" {
		t.Errorf("dead-lettered offsets %v (from %d), want [0 1717 1718 4999]", seen, base)
	}
	if got := counterValue(m.DeadLettered.WithLabelValues(ReasonRejected)); got != float64(len(bad)) {
		t.Errorf("dead-lettered metric %v, want %d", got, len(bad))
	}
}

// Refusals that are not about the rows still stop the write: here every row is refused, and
// the search gives up (after 100 inserts here, maxIsolateInserts
// in the sink) instead of inserting the batch one row at a time.
func TestWriterGivesUpWhenEveryRowIsRefusedIntegration(t *testing.T) {
	ctx := context.Background()
	conn, db, f := testDB(t, ctx, "refuseall")
	if err := conn.Exec(ctx, "ALTER TABLE "+db+".sessions ADD COLUMN guard UInt8 MATERIALIZED throwIf(session_id != '')"); err != nil {
		t.Fatal(err)
	}
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
