package clickhouse

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-faster/city"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/internal/testenv"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// stream is one test's private topics, database and consumer group.
type stream struct {
	brokers                []string
	sessions, events, dead string
	group, db              string
	compression            kafka.Compression // of produce: 0 none
}

func newStream(t testing.TB, ctx context.Context, brokers []string) stream {
	t.Helper()
	sfx := strconv.FormatUint(rand.Uint64(), 36)
	st := stream{brokers: brokers, sessions: "mxtest.sessions." + sfx, events: "mxtest.events." + sfx,
		dead: "mxtest.deadletter." + sfx, group: "mxtest-sink-" + sfx, db: "mxtest_sink_" + sfx}
	client := &kafka.Client{Addr: kafka.TCP(brokers[0]), Timeout: 10 * time.Second}
	var tcs []kafka.TopicConfig
	for _, tp := range []string{st.sessions, st.events, st.dead} {
		tcs = append(tcs, kafka.TopicConfig{Topic: tp, NumPartitions: 4, ReplicationFactor: 1})
	}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: tcs})
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	for tp, err := range res.Errors {
		if err != nil {
			t.Fatalf("create topic %q: %v", tp, err)
		}
	}
	// The benchmark's topics hold hundreds of MB on the shared broker: drop them afterwards.
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.DeleteTopics(dctx, &kafka.DeleteTopicsRequest{Topics: []string{st.sessions, st.events, st.dead}}); err != nil {
			t.Logf("delete topics of %s: %v", st.group, err)
		}
	})
	// A group that joins before the new topics' metadata is visible gets no partitions and
	// waits for a rebalance that never comes: wait until every partition has a leader.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{st.sessions, st.events, st.dead}})
		ready := err == nil && len(md.Topics) == 3
		if ready {
			for _, tp := range md.Topics {
				if tp.Error != nil || len(tp.Partitions) != 4 {
					ready = false
				}
				for _, p := range tp.Partitions {
					if p.Leader.ID < 0 || p.Error != nil {
						ready = false
					}
				}
			}
		}
		if ready {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("topics of %s not ready after 30 s: %v", st.group, err)
		}
	}
}

func (st stream) produce(t testing.TB, ctx context.Context, topic string, msgs []kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(st.brokers...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchSize: 5000, BatchBytes: 8 << 20, BatchTimeout: 20 * time.Millisecond,
		Compression: st.compression}
	defer w.Close()
	for len(msgs) > 0 {
		n := min(len(msgs), 20000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
		msgs = msgs[n:]
	}
}

func sessionMessages(ss []record.Session) []kafka.Message {
	out := make([]kafka.Message, len(ss))
	for i := range ss {
		out[i] = kafka.Message{Key: []byte(ss[i].Host), Value: ss[i].AppendJSON(nil)}
	}
	return out
}

// runSink runs a sink on st until cond holds (checked every 500 ms) or the deadline passes.
func runSink(t *testing.T, ctx context.Context, st stream, conn driver.Conn, addrs []string, cond func(m *Metrics) bool) *Metrics {
	t.Helper()
	features := serverFeatures(t, conn)
	m := NewMetrics(nil)
	src := groupSource(t, st, []string{st.sessions, st.events, st.dead}, m)
	defer src.Close()
	w := NewWriter(conn, st.db, features, m, 100*time.Millisecond, 2*time.Second)
	s, err := New(Config{Database: st.db, Topics: map[string]Kind{st.sessions: KindSessions, st.events: KindEvents, st.dead: KindDeadLetter},
		BatchRows: 20000, BatchBytes: 32 << 20, BatchAge: 300 * time.Millisecond, MaxInFlight: 2,
		RetryInitial: 100 * time.Millisecond, RetryMax: 2 * time.Second, MaxField: 256 << 10},
		src, w, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for !cond(m) {
		select {
		case err := <-done:
			t.Fatalf("sink stopped early: %v", err)
		case <-ctx.Done():
			cancel()
			<-done
			t.Fatalf("timed out waiting for the sink: %v", ctx.Err())
		case <-tick.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sink shutdown: %v", err)
	}
	return m
}

// groupSource is a consumer-group source of st's group on topics.
func groupSource(t testing.TB, st stream, topics []string, m *Metrics) *GroupSource {
	t.Helper()
	src, err := NewGroupSource(GroupConfig{Brokers: st.brokers, GroupID: st.group, Topics: topics,
		HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 10 * time.Second, WatchPartitionChanges: true,
		BufferPoolBytes: 64 << 20}, // recycled buffers: the content checks catch a reuse too early
		m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func count(t testing.TB, ctx context.Context, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func openTest(t testing.TB, ctx context.Context, addrs []string, db string) driver.Conn {
	t.Helper()
	conn, err := Open(ctx, ConnConfig{Addrs: addrs, Username: "default", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	if _, err := schema.Migrate(ctx, conn, schema.Options{Database: db}); err != nil {
		t.Fatal(err)
	}
	return conn
}

// testDB opens a connection to a freshly migrated database named mxtest_<prefix>_<nanos>,
// dropped when the test ends, and returns it with the database's name and what the server
// supports.
func testDB(t testing.TB, ctx context.Context, prefix string) (driver.Conn, string, schema.Features) {
	t.Helper()
	db := fmt.Sprintf("mxtest_%s_%d", prefix, time.Now().UnixNano())
	conn := openTest(t, ctx, testenv.ClickHouseAddrs(t), db)
	return conn, db, serverFeatures(t, conn)
}

// serverFeatures detects the version of the server conn talks to and what it supports.
func serverFeatures(t testing.TB, conn driver.Conn) schema.Features {
	t.Helper()
	sv, err := schema.DetectServer(conn)
	if err != nil {
		t.Fatalf("detect the ClickHouse server's version: %v", err)
	}
	return schema.FeaturesFor(sv)
}

// N generated session records (plus replays, events and poison records) go through Kafka and
// the sink into ClickHouse 18.16; content is compared by checksums of chosen columns. N is
// 20k by default (the race-enabled suite); MXTRAIL_SINK_RECORDS=1000000 runs the 1M
// case, which `make test` runs after the suite.
func TestSinkEndToEndIntegration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	addrs := testenv.ClickHouseAddrs(t)
	n := 20000
	if v := os.Getenv("MXTRAIL_SINK_RECORDS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st := newStream(t, ctx, brokers)
	conn := openTest(t, ctx, addrs, st.db)

	ss := genSessions(42, n)
	msgs := sessionMessages(ss)
	// Replays: the first 1000 records again, as after an enricher restart.
	replays := sessionMessages(ss[:min(1000, n)])
	good := ss[0]
	good.SessionID = "poison-wrong-type"
	wrongType := strings.Replace(string(good.AppendJSON(nil)), `"size":`, `"size":"big","was":`, 1)
	big := ss[1]
	big.SessionID = "poison-huge"
	big.SMTPReply = strings.Repeat("R", 1<<20)
	poison := []kafka.Message{
		{Key: []byte("p"), Value: []byte(`{"session_id":"poison-bad-json",`)},
		{Key: []byte("p"), Value: []byte(wrongType)},
		{Key: []byte("p"), Value: big.AppendJSON(nil)},
	}
	st.produce(t, ctx, st.sessions, append(append(msgs, poison...), replays...))
	evs := genEvents(43, 700)
	var emsgs []kafka.Message
	for i := range evs {
		emsgs = append(emsgs, kafka.Message{Key: []byte(evs[i].Host), Value: evs[i].AppendJSON(nil)})
	}
	st.produce(t, ctx, st.events, emsgs)
	st.produce(t, ctx, st.dead, []kafka.Message{{Key: []byte("mx01"), Value: []byte("Nov 23 unparseable line \xff"),
		Headers: []kafka.Header{{Key: HeaderReason, Value: []byte("parse")}, {Key: HeaderSourceTopic, Value: []byte("mxtrail.raw")},
			{Key: HeaderSourcePartition, Value: []byte("2")}, {Key: HeaderSourceOffset, Value: []byte("991")}}}})

	total := uint64(len(msgs) + len(replays))
	// Wait on the sink's own acknowledged-row counters: count() on the tables can fall while
	// background merges collapse the replays.
	runSink(t, ctx, st, conn, addrs, func(m *Metrics) bool {
		return counterValue(m.Rows.WithLabelValues("sessions")) >= float64(total) &&
			counterValue(m.Rows.WithLabelValues("events")) >= float64(len(evs)) &&
			counterValue(m.Rows.WithLabelValues("deadletter")) >= 4
	})

	db := st.db
	if got := count(t, ctx, conn, "SELECT count() FROM "+db+".sessions FINAL"); got != uint64(n) {
		t.Errorf("sessions FINAL: %d rows, want %d", got, n)
	}
	if got := count(t, ctx, conn, "SELECT uniqExact(session_id) FROM "+db+".sessions"); got != uint64(n) {
		t.Errorf("distinct session ids: %d, want %d", got, n)
	}
	// Checksums of chosen columns, computed the same way in Go (cityHash64 is ClickHouse's CH64).
	var wantSize, wantRcpt, wantEvents, wantID, wantFrom, wantReply, wantStart uint64
	for i := range ss {
		s := &ss[i]
		wantSize += uint64(s.Size)
		wantRcpt += uint64(len(s.Recipients))
		wantEvents += uint64(s.EventCount)
		wantID += city.CH64([]byte(s.SessionID))
		wantFrom += city.CH64([]byte(s.MailFrom))
		wantReply += city.CH64([]byte(s.SMTPReply))
		wantStart += uint64(s.StartTime.Unix())
	}
	var gSize, gRcpt, gEvents, gID, gFrom, gReply, gStart uint64
	q := "SELECT sum(size), sum(length(rcpt_address)), sum(event_count), sum(cityHash64(session_id)), " +
		"sum(cityHash64(mail_from)), sum(cityHash64(smtp_reply)), sum(toUInt64(toUInt32(start_time))) FROM " + db + ".sessions FINAL"
	if err := conn.QueryRow(ctx, q).Scan(&gSize, &gRcpt, &gEvents, &gID, &gFrom, &gReply, &gStart); err != nil {
		t.Fatal(err)
	}
	if gSize != wantSize || gRcpt != wantRcpt || gEvents != wantEvents || gID != wantID || gFrom != wantFrom || gReply != wantReply || gStart != wantStart {
		t.Errorf("checksums differ: got size %d rcpt %d events %d id %x from %x reply %x start %d; want %d %d %d %x %x %x %d",
			gSize, gRcpt, gEvents, gID, gFrom, gReply, gStart, wantSize, wantRcpt, wantEvents, wantID, wantFrom, wantReply, wantStart)
	}
	// Every other string column, plain, LowCardinality or array, hashed row by row: the sink
	// builds these columns from its own buffers, so a mix-up of rows or values shows here.
	var wantRow, wantCodes uint64
	for i := range ss {
		s := &ss[i]
		var a, o, r []string
		for _, rc := range s.Recipients {
			a, o, r = append(a, rc.Address), append(o, string(rc.Outcome)), append(r, rc.Reply)
			wantCodes += uint64(rc.SMTPCode)
		}
		row := strings.Join([]string{s.Host, s.Product, s.SessionKey, s.ClientPTR, s.HELO, s.AuthUser,
			string(s.Outcome), s.Reason, s.MessageID, string(s.Delivery), string(s.ClosedBy), s.MaxSeverity,
			s.FirstPos.Source, s.LastPos.Source, strings.Join(a, ","), strings.Join(o, ","),
			strings.Join(r, ","), strings.Join(s.Flags, ",")}, "|")
		wantRow += city.CH64([]byte(row))
	}
	var gRow, gCodes uint64
	q = "SELECT sum(cityHash64(concat(CAST(host AS String), '|', CAST(product AS String), '|', session_key, '|', " +
		"client_ptr, '|', helo, '|', auth_user, '|', CAST(outcome AS String), '|', CAST(reason AS String), '|', message_id, '|', " +
		"CAST(delivery AS String), '|', CAST(closed_by AS String), '|', CAST(max_severity AS String), '|', " +
		"CAST(first_source AS String), '|', CAST(last_source AS String), '|', arrayStringConcat(rcpt_address, ','), '|', " +
		"arrayStringConcat(CAST(rcpt_outcome AS Array(String)), ','), '|', arrayStringConcat(rcpt_reply, ','), '|', " +
		"arrayStringConcat(CAST(flags AS Array(String)), ',')))), sum(arraySum(rcpt_smtp_code)) FROM " + db + ".sessions FINAL"
	if err := conn.QueryRow(ctx, q).Scan(&gRow, &gCodes); err != nil {
		t.Fatal(err)
	}
	if gRow != wantRow || gCodes != wantCodes {
		t.Errorf("row checksums differ: got %x codes %d, want %x %d", gRow, gCodes, wantRow, wantCodes)
	}
	// Per-recipient rows through ARRAY JOIN.
	if got := count(t, ctx, conn, "SELECT count() FROM "+db+".sessions FINAL ARRAY JOIN rcpt_address AS a, rcpt_outcome AS o"); got != wantRcpt {
		t.Errorf("ARRAY JOIN gives %d recipient rows, want %d", got, wantRcpt)
	}
	checkRollup(t, ctx, conn, db)
	if got := count(t, ctx, conn, "SELECT count() FROM "+db+".events"); got != uint64(len(evs)) {
		t.Errorf("events: %d, want %d", got, len(evs))
	}
	// Poison records are inspectable in deadletter, with reasons and source coordinates.
	rows, err := conn.Query(ctx, "SELECT reason, topic, partition, offset, error, length(raw) FROM "+db+".deadletter ORDER BY reason, length(raw)")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var reason, topic, errText string
		var part int32
		var off int64
		var rawLen uint64
		if err := rows.Scan(&reason, &topic, &part, &off, &errText, &rawLen); err != nil {
			t.Fatal(err)
		}
		got = append(got, reason)
		if reason == ReasonUpstream && (topic != "mxtrail.raw" || part != 2 || off != 991) {
			t.Errorf("upstream dead letter kept %s/%d/%d, want mxtrail.raw/2/991", topic, part, off)
		}
		if reason == ReasonTooLarge && rawLen < 1<<20 {
			t.Errorf("too_large dead letter kept %d raw bytes, want the whole record", rawLen)
		}
		if reason != ReasonUpstream && (topic != st.sessions || errText == "") {
			t.Errorf("dead letter %s: topic %q error %q", reason, topic, errText)
		}
	}
	rows.Close()
	if strings.Join(got, ",") != "decode,decode,too_large,upstream" {
		t.Errorf("dead-letter reasons %v, want decode (bad JSON), decode (wrong type), too_large, upstream", got)
	}
}

// checkRollup compares the per-minute rollup with a recount from sessions.
func checkRollup(t *testing.T, ctx context.Context, conn driver.Conn, db string) {
	t.Helper()
	q := "SELECT count(), sum(a = b) FROM (" +
		"SELECT minute, host, product, outcome, uniqExactMerge(sessions) AS a FROM " + db + ".sessions_per_minute GROUP BY minute, host, product, outcome) " +
		"ALL FULL OUTER JOIN (" +
		"SELECT toStartOfMinute(start_time) AS minute, host, product, outcome, toUInt64(count()) AS b FROM " + db + ".sessions FINAL GROUP BY minute, host, product, outcome) " +
		"USING (minute, host, product, outcome)"
	var groups, equal uint64
	if err := conn.QueryRow(ctx, q).Scan(&groups, &equal); err != nil {
		t.Fatalf("rollup recount: %v", err)
	}
	if groups == 0 || groups != equal {
		t.Errorf("rollup: %d of %d (minute, host, product, outcome) groups match the recount", equal, groups)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return -1
	}
	return d.GetCounter().GetValue()
}
