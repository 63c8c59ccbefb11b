package clickhouse

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/segmentio/kafka-go"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/internal/testenv"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// BenchmarkDecode compares the sink's decode-and-append of one session record (into a reused
// columnar batch) with the encoding/json baseline that only decodes into a struct. cpu-ns/op
// is the process's CPU from rusage (collector included), steadier than wall time when other
// work shares the cores.
func BenchmarkDecode(b *testing.B) {
	ss := genSessions(9, 4096)
	lines := make([][]byte, len(ss))
	var total int
	for i := range ss {
		lines[i] = ss[i].AppendJSON(nil)
		total += len(lines[i])
	}
	avg := int64(total / len(lines))
	b.Run("mxtrail_decode_append", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(avg)
		batch := NewBatch(schema.FeaturesFor(schema.ServerVersion{Major: 26, Minor: 1}), 256<<10)
		now := time.Now()
		m := Message{Topic: "t"}
		// Steady state: the sink reuses its batches, so grow the columns once before timing.
		for i := 0; i < 100_000; i++ {
			m.Offset, m.Value = int64(i), lines[i%len(lines)]
			batch.Add(KindSessions, &m, now)
		}
		batch.Reset()
		b.ResetTimer()
		cpu0 := testenv.ProcessCPU()
		for i := 0; i < b.N; i++ {
			if batch.Len() == 100_000 {
				batch.Reset()
			}
			m.Offset, m.Value = int64(i), lines[i%len(lines)]
			batch.Add(KindSessions, &m, now)
		}
		b.ReportMetric(float64((testenv.ProcessCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		if _, _, d := batch.Rows(); d != 0 {
			b.Fatalf("%d records dead-lettered", d)
		}
	})
	b.Run("baseline_encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(avg)
		var s record.Session
		cpu0 := testenv.ProcessCPU()
		for i := 0; i < b.N; i++ {
			s = record.Session{}
			if err := json.Unmarshal(lines[i%len(lines)], &s); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((testenv.ProcessCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
}

// BenchmarkSinkIntegration drains a pre-filled sessions topic into ClickHouse and reports
// rows/s, the CPU µs per row of the sink (a child process running the `mxtrail sink` command,
// built for the run, from its rusage: start-up, group join and shutdown included; in-process the
// benchmark's own 200k records made the collector's work several times the sink's) and of the
// ClickHouse server (its
// /proc/<pid>/stat, so merges count too, as do other clients' queries on a shared server:
// "server-query-cpu-µs/row" is the query threads only, from system.events). In the same run,
// with the same server figures: the baseline, the same records as JSONEachRow through
// `clickhouse-client`, and the server's ceiling, the rows the sink wrote (every column the sink
// sends) re-inserted as Native blocks of 100k rows through `clickhouse-client`.
// Records per run: MXTRAIL_SINK_BENCH_RECORDS (default 200000); MXTRAIL_SINK_BENCH_BIN runs that
// mxtrail binary instead of building ./cmd/mxtrail (to compare two builds in interleaved runs); MXTRAIL_SINK_BENCH_SINK_YAML adds
// lines to the sink section of its config (e.g. "  batch_bytes: 128MiB\n"). They are time-ordered like a
// live stream (2,000 sessions a second, see liveOrder); MXTRAIL_SINK_BENCH_SPREAD=1 keeps
// genSessions' random spread over four days, which costs the server about twice as much per
// row: every insert writes a part into each day's partition, and the rollup view aggregates
// ~1 row per (minute, host, product, outcome) group instead of dozens (measured with
// INSERT ... SELECT of 200k rows on 18.16, query-thread CPU: table alone 3.4-4.8 µs/row
// spread vs 2.6-3.4 live; with the rollup view 6.0-8.3 vs 3.2-4.1).
func BenchmarkSinkIntegration(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	addrs := testenv.ClickHouseAddrs(b)
	n := 200_000
	if v := os.Getenv("MXTRAIL_SINK_BENCH_RECORDS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ss := genSessions(11, n)
	if os.Getenv("MXTRAIL_SINK_BENCH_SPREAD") == "" {
		liveOrder(ss, 2000)
	}
	msgs := sessionMessages(ss)
	var bytesTotal int64
	for _, m := range msgs {
		bytesTotal += int64(len(m.Value))
	}
	srv := newServerCPU(b, addrs)
	var native []byte // the sink's rows as Native, for the ceiling baseline
	host, port := splitHostPort(addrs[0])
	client, _ := exec.LookPath("clickhouse-client")

	brokerPID, ok := testenv.KafkaBrokerPID()
	if !ok {
		b.Logf("broker CPU not reported: no Kafka broker pid file under %s", testenv.StateDir())
	}
	bin := buildMxtrail(b, ctx)
	b.Run("mxtrail_sink", func(b *testing.B) {
		b.SetBytes(bytesTotal)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			st := newStream(b, ctx, brokers)
			if os.Getenv("MXTRAIL_SINK_BENCH_ZSTD") != "" {
				st.compression = kafka.Zstd
			}
			conn := openTest(b, ctx, addrs, st.db)
			st.produce(b, ctx, st.sessions, msgs)
			metricsAddr := freeAddr(b)
			args := []string{"sink", "--config", writeSinkConfig(b, st, addrs, metricsAddr)}
			if p := os.Getenv("MXTRAIL_SINK_BENCH_CPUPROFILE"); p != "" {
				args = append(args, "--cpuprofile", p)
			}
			if p := os.Getenv("MXTRAIL_SINK_BENCH_MEMPROFILE"); p != "" {
				args = append(args, "--memprofile", p)
			}
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = sinkEnv()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			srv0 := srv.read(b, ctx, conn)
			broker0, brokerOK := testenv.PIDCPU(brokerPID)
			t0 := time.Now()
			b.StartTimer()
			if err := cmd.Start(); err != nil {
				b.Fatalf("start %s sink: %v", bin, err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var first time.Time // the first fetched message: the consumer group has joined
			// The steady state: from when a quarter of the records were read (the lag, once seen
			// near n with every partition reporting, fell to 3/4 n) to the end, the sink's CPU per
			// row read in between -- start-up, the first fills of the batches and the heap's
			// growth (page faults: minflt) excluded. Inserts still pending for rows read before
			// the mark count in the window, so it errs high.
			var end time.Time
			var lagFull bool
			var steadyCPU time.Duration
			var steadyRead float64
			lagSeries := `mxtrail_sink_consumer_lag{topic="` + st.sessions + `"}`
			partsRows := "SELECT sum(rows) FROM system.parts WHERE active AND database = '" + st.db + "' AND table = 'sessions'"
			for {
				if first.IsZero() || steadyRead == 0 {
					if mt, err := scrape(ctx, metricsAddr); err == nil && strings.Contains(mt, "mxtrail_sink_consumer_lag{") {
						if first.IsZero() {
							first = time.Now()
						}
						lag := metricValue(mt, lagSeries)
						if lag > 0.9*float64(n) {
							lagFull = true
						} else if lagFull && lag <= 0.75*float64(n) {
							if c, ok := testenv.PIDCPU(cmd.Process.Pid); ok {
								steadyCPU, steadyRead = c, float64(n)-lag
							}
						}
					}
				}
				// The rows are in when the table's parts hold n: read from the parts' metadata,
				// as SELECT count() read a column of every part each time (on 18.16), ~4% of
				// the server's CPU during a run at one poll per 50 ms (perf). Rows an insert
				// retried after a lost acknowledgement are in twice until they collapse: count
				// sessions, not rows, once the rows are there (the run ended when they were).
				if count(b, ctx, conn, partsRows) >= uint64(n) {
					end = time.Now()
					if count(b, ctx, conn, "SELECT uniqExact(session_id) FROM "+st.db+".sessions") >= uint64(n) {
						break
					}
				}
				select {
				case err := <-exited:
					b.Fatalf("mxtrail sink exited before writing %d rows: %v\n%s", n, err, stderr.Bytes())
				case <-time.After(50 * time.Millisecond):
				}
			}
			b.StopTimer()
			srv.report(b, ctx, conn, srv0, n)
			if broker1, ok := testenv.PIDCPU(brokerPID); ok && brokerOK {
				// The broker serves the sink's fetches and commits on the same cores.
				b.ReportMetric(float64((broker1-broker0).Microseconds())/float64(n), "broker-cpu-µs/row")
			}
			mt, err := scrape(ctx, metricsAddr)
			if err != nil {
				b.Fatalf("scrape the sink's metrics: %v", err)
			}
			// The child's own high-water mark: its rusage's ru_maxrss also counts the memory
			// of this (much larger) test process it was forked from before exec.
			hwm := vmHWM(cmd.Process.Pid)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if err := <-exited; err != nil {
				b.Fatalf("mxtrail sink did not stop cleanly on SIGTERM: %v\n%s", err, stderr.Bytes())
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			b.ReportMetric(float64(n)/end.Sub(t0).Seconds(), "rows/s")
			if !first.IsZero() {
				// The consumer-group join takes seconds before the first message; without it:
				b.ReportMetric(float64(n)/end.Sub(first).Seconds(), "rows/s-after-join")
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/row")
			if steadyRead > 0 {
				b.ReportMetric(float64((cpu-steadyCPU).Microseconds())/(float64(n)-steadyRead), "steady-cpu-µs/row")
			}
			// Minor page faults: the first touch of memory costs ~3 µs per 4 KiB page here
			// (memory the runtime got from, or gave back to, the OS).
			b.ReportMetric(float64(ru.Minflt)/float64(n)*1000, "minflt/1k-rows")
			b.ReportMetric(float64(ru.Stime.Nano())/1e3/float64(n), "sys-cpu-µs/row")
			if hwm > 0 {
				b.ReportMetric(float64(hwm)/1024, "peak-rss-MiB")
			}
			// Where the wall time goes: waiting for ClickHouse to acknowledge inserts.
			sum, cnt := metricValue(mt, `mxtrail_sink_insert_seconds_sum{table="sessions"}`), metricValue(mt, `mxtrail_sink_insert_seconds_count{table="sessions"}`)
			b.ReportMetric(sum*1e6/float64(n), "insert-wall-µs/row")
			b.ReportMetric(cnt, "inserts")
			// Where the batcher idles: no fetch ready (Kafka) or no free batch (ClickHouse).
			b.ReportMetric(metricValue(mt, `mxtrail_sink_batcher_wait_seconds_total{for="kafka"}`), "wait-kafka-s")
			b.ReportMetric(metricValue(mt, `mxtrail_sink_batcher_wait_seconds_total{for="clickhouse"}`), "wait-clickhouse-s")
			if r := metricValue(mt, `mxtrail_sink_insert_retries_total{table="sessions"}`); r > 0 {
				b.ReportMetric(r, "retries")
				b.Logf("the sink retried %v inserts; its log:\n%s", r, stderr.Bytes())
			}
			if client != "" && native == nil {
				cmd := exec.CommandContext(ctx, client, "--host", host, "--port", port, "--max_block_size", "100000", "--query",
					"SELECT "+joinCols()+" FROM "+st.db+".sessions FINAL FORMAT Native")
				if native, err = cmd.Output(); err != nil {
					b.Fatalf("dump the sink's rows as Native: %v", err)
				}
			}
		}
	})

	// runClient times clickhouse-client inserting input in format into a fresh database.
	runClient := func(b *testing.B, format, cols string, input []byte) {
		if client == "" {
			b.Skip("clickhouse-client not installed")
		}
		if input == nil {
			b.Skip("no rows from the mxtrail_sink run to re-insert")
		}
		b.SetBytes(bytesTotal)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			db := "mxtest_sinkbase_" + strconv.FormatInt(time.Now().UnixNano(), 36)
			conn := openTest(b, ctx, addrs, db)
			cmd := exec.CommandContext(ctx, client, "--host", host, "--port", port, "--query",
				"INSERT INTO "+db+".sessions ("+cols+") FORMAT "+format)
			cmd.Stdin = bytes.NewReader(input)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			srv0 := srv.read(b, ctx, conn)
			b.StartTimer()
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatalf("clickhouse-client: %v: %s", err, stderr.String())
			}
			el := time.Since(t0)
			b.StopTimer()
			srv.report(b, ctx, conn, srv0, n)
			if got := count(b, ctx, conn, "SELECT count() FROM "+db+".sessions"); got != uint64(n) {
				b.Fatalf("baseline inserted %d rows, want %d", got, n)
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			b.ReportMetric(float64(n)/el.Seconds(), "rows/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/row")
		}
	}
	b.Run("baseline_clickhouse_client_JSONEachRow", func(b *testing.B) {
		// The session columns only: the server fills sender_domain and client_net (DEFAULT).
		var buf bytes.Buffer
		for i := range ss {
			flatJSON(&buf, &ss[i])
		}
		runClient(b, "JSONEachRow", strings.Join(sessionColumnNames[:len(sessionColumnNames)-2], ", "), buf.Bytes())
	})
	b.Run("baseline_clickhouse_client_Native", func(b *testing.B) {
		runClient(b, "Native", joinCols(), native)
	})
}

// serverCPU reads the ClickHouse server's CPU time: the whole process from /proc (the shared
// stack's server, found by its config under MXTRAIL_STATE_DIR, or the only clickhouse-server)
// and its query threads from system.events.
type serverCPU struct{ pid int }

type serverSample struct {
	proc, query time.Duration
}

func newServerCPU(b *testing.B, addrs []string) *serverCPU {
	out, _ := exec.Command("pgrep", "-f", "clickhouse-server").Output()
	var pids []int
	var mine int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + f + "/cmdline")
		if !strings.Contains(string(cmdline), "clickhouse-server") {
			continue
		}
		pids = append(pids, pid)
		if strings.Contains(string(cmdline), filepath.Join(testenv.StateDir(), "clickhouse")) {
			mine = pid
		}
	}
	if mine == 0 && len(pids) == 1 {
		mine = pids[0]
	}
	if mine == 0 {
		b.Logf("server CPU from /proc not reported: cannot tell which of clickhouse-server %v serves %v", pids, addrs)
	}
	return &serverCPU{pid: mine}
}

func (s *serverCPU) read(b *testing.B, ctx context.Context, conn driver.Conn) serverSample {
	var out serverSample
	if s.pid != 0 {
		out.proc, _ = testenv.PIDCPU(s.pid)
	}
	var us uint64
	if err := conn.QueryRow(ctx, "SELECT sum(value) FROM system.events WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')").Scan(&us); err == nil {
		out.query = time.Duration(us) * time.Microsecond
	}
	return out
}

func (s *serverCPU) report(b *testing.B, ctx context.Context, conn driver.Conn, before serverSample, n int) {
	after := s.read(b, ctx, conn)
	if s.pid != 0 {
		b.ReportMetric(float64((after.proc-before.proc).Microseconds())/float64(n), "server-cpu-µs/row")
	}
	if after.query > 0 {
		b.ReportMetric(float64((after.query-before.query).Microseconds())/float64(n), "server-query-cpu-µs/row")
	}
}

// flatJSON writes s as one JSONEachRow line shaped like the sessions table (for the baseline).
func flatJSON(buf *bytes.Buffer, s *record.Session) {
	var addr, outc, reply []string
	var codes []int
	for _, r := range s.Recipients {
		addr, outc, reply, codes = append(addr, r.Address), append(outc, string(r.Outcome)), append(reply, r.Reply), append(codes, r.SMTPCode)
	}
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }
	row := map[string]any{
		"session_id": s.SessionID, "host": s.Host, "product": s.Product, "session_key": s.SessionKey,
		"start_time": ts(s.StartTime), "end_time": ts(s.EndTime), "client_ip": s.ClientIP, "client_ptr": s.ClientPTR,
		"helo": s.HELO, "auth_user": s.AuthUser, "tls": b2u(s.TLS), "mail_from": s.MailFrom,
		"rcpt_address": nonNil(addr), "rcpt_outcome": nonNil(outc), "rcpt_smtp_code": nonNilInt(codes), "rcpt_reply": nonNil(reply),
		"outcome": s.Outcome, "reason": s.Reason, "smtp_code": s.SMTPCode, "smtp_reply": s.SMTPReply,
		"message_id": s.MessageID, "size": s.Size, "delivery": s.Delivery, "closed_by": s.ClosedBy,
		"permanent": b2u(s.Permanent), "flags": nonNil(s.Flags), "event_count": s.EventCount,
		"max_severity": s.MaxSeverity, "outcome_version": s.OutcomeVersion, "first_source": s.FirstPos.Source,
		"first_offset": s.FirstPos.Offset, "last_source": s.LastPos.Source, "last_offset": s.LastPos.Offset,
	}
	line, _ := json.Marshal(row)
	buf.Write(line)
	buf.WriteByte('\n')
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilInt(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}

func splitHostPort(a string) (string, string) {
	h, p, _ := net.SplitHostPort(a)
	return h, p
}

func joinCols() string { return strings.Join(sessionColumnNames, ", ") }

// BenchmarkInsertIntegration isolates the insert: one decoded batch of 100k session records
// written by Writer.Write into a fresh database per iteration, reporting wall and client CPU
// per row, over a plain connection (writer) and one with LZ4 block compression (writer_lz4).
// The baseline in the same run is the server's own write path for the same rows:
// `INSERT INTO ... SELECT` from a table already holding them (parts, sorting and the rollup
// view, but no client and no protocol).
func BenchmarkInsertIntegration(b *testing.B) {
	addrs := testenv.ClickHouseAddrs(b)
	ctx := context.Background()
	const n = 100_000
	ss := genSessions(13, n)
	liveOrder(ss, 2000)
	src := "mxtest_insrc_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	conn := openTest(b, ctx, addrs, src)
	f := serverFeatures(b, conn)
	batch := NewBatch(f, 256<<10)
	now := time.Now()
	for i := range ss {
		batch.Add(KindSessions, &Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}, now)
	}
	w := NewWriter(conn, src, f, NewMetrics(nil), 100*time.Millisecond, time.Second)
	if err := w.Write(ctx, batch); err != nil {
		b.Fatal(err)
	}
	srv := newServerCPU(b, addrs)
	// The writer's connection without and with LZ4 block compression (conn.go, Compression).
	lz4, err := Open(ctx, ConnConfig{Addrs: addrs, Username: "default", DialTimeout: 5 * time.Second, Compression: "lz4"})
	if err != nil {
		b.Fatal(err)
	}
	defer lz4.Close()
	for _, wc := range []struct {
		name string
		conn driver.Conn
	}{{"writer", conn}, {"writer_lz4", lz4}} {
		b.Run(wc.name, func(b *testing.B) { benchWriter(b, ctx, wc.conn, addrs, f, batch, srv) })
	}
	// The same without the per-minute rollup view, to show what the view costs the server.
	for _, view := range []bool{true, false} {
		name := "baseline_insert_select_in_server"
		if !view {
			name += "_without_rollup_view"
		}
		b.Run(name, func(b *testing.B) { benchInsertSelect(b, ctx, conn, addrs, src, view, srv) })
	}
	// The same rows sent by clickhouse-client as one Native block: the server's cost when the
	// client is not clickhouse-go.
	b.Run("baseline_clickhouse_client_native", func(b *testing.B) {
		client, err := exec.LookPath("clickhouse-client")
		if err != nil {
			b.Skip("clickhouse-client not installed")
		}
		host, port := splitHostPort(addrs[0])
		native, err := exec.CommandContext(ctx, client, "--host", host, "--port", port, "--max_block_size", "100000", "--query",
			"SELECT "+joinCols()+" FROM "+src+".sessions FORMAT Native").Output()
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			db := "mxtest_ins_" + strconv.FormatInt(time.Now().UnixNano(), 36)
			openTest(b, ctx, addrs, db)
			cmd := exec.CommandContext(ctx, client, "--host", host, "--port", port, "--query", "INSERT INTO "+db+".sessions ("+joinCols()+") FORMAT Native")
			cmd.Stdin = bytes.NewReader(native)
			srv0 := srv.read(b, ctx, conn)
			t0 := time.Now()
			b.StartTimer()
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
			b.StopTimer()
			b.ReportMetric(float64(time.Since(t0).Microseconds())/n, "wall-µs/row")
			srv.report(b, ctx, conn, srv0, n)
		}
	})
}

func benchWriter(b *testing.B, ctx context.Context, conn driver.Conn, addrs []string, f schema.Features, batch *Batch, srv *serverCPU) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := "mxtest_ins_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		openTest(b, ctx, addrs, db)
		w := NewWriter(conn, db, f, NewMetrics(nil), 100*time.Millisecond, time.Second)
		batch.done = [len(batch.done)]bool{}
		srv0 := srv.read(b, ctx, conn)
		cpu0, t0 := testenv.ProcessCPU(), time.Now()
		b.StartTimer()
		if err := w.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		el, cpu := time.Since(t0), testenv.ProcessCPU()-cpu0
		srv.report(b, ctx, conn, srv0, n)
		b.ReportMetric(float64(el.Microseconds())/n, "wall-µs/row")
		b.ReportMetric(float64(cpu.Microseconds())/n, "client-cpu-µs/row")
	}
}

func benchInsertSelect(b *testing.B, ctx context.Context, conn driver.Conn, addrs []string, src string, view bool, srv *serverCPU) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := "mxtest_ins_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		openTest(b, ctx, addrs, db)
		if !view {
			if err := conn.Exec(ctx, "DROP TABLE "+db+".sessions_per_minute_mv"); err != nil {
				b.Fatal(err)
			}
		}
		cols := joinCols()
		srv0 := srv.read(b, ctx, conn)
		t0 := time.Now()
		b.StartTimer()
		if err := conn.Exec(ctx, "INSERT INTO "+db+".sessions ("+cols+") SELECT "+cols+" FROM "+src+".sessions"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(time.Since(t0).Microseconds())/n, "wall-µs/row")
		srv.report(b, ctx, conn, srv0, n)
	}
}

// buildMxtrail builds the mxtrail command into a temporary directory.
func buildMxtrail(b *testing.B, ctx context.Context) string {
	b.Helper()
	if bin := os.Getenv("MXTRAIL_SINK_BENCH_BIN"); bin != "" {
		return bin // a binary built elsewhere, to compare builds in interleaved runs
	}
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(gomod)) == 0 {
		b.Fatalf("find the module root: %v", err)
	}
	bin := filepath.Join(b.TempDir(), "mxtrail")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mxtrail")
	cmd.Dir = filepath.Dir(string(bytes.TrimSpace(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/mxtrail: %v\n%s", err, out)
	}
	return bin
}

// writeSinkConfig writes an mxtrail.yaml for a sink on st's topics, group and database.
func writeSinkConfig(b *testing.B, st stream, addrs []string, metricsAddr string) string {
	b.Helper()
	q := func(ss ...string) string { return `["` + strings.Join(ss, `", "`) + `"]` }
	y := "kafka:\n  brokers: " + q(st.brokers...) + "\n  topics:\n    sessions: " + st.sessions +
		"\n    events: " + st.events + "\n    deadletter: " + st.dead +
		"\nclickhouse:\n  addrs: " + q(addrs...) + "\n  database: " + st.db +
		"\nhttp:\n  listen: " + metricsAddr + "\nsink:\n  group_id: " + st.group + "\n" +
		os.Getenv("MXTRAIL_SINK_BENCH_SINK_YAML") // more sink settings, e.g. "  batch_bytes: 128MiB\n"
	p := filepath.Join(b.TempDir(), "mxtrail.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

// sinkEnv is the environment without the MXTRAIL_* overrides that would replace the config
// file's database or listener.
func sinkEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MXTRAIL_CLICKHOUSE_DATABASE=") && !strings.HasPrefix(kv, "MXTRAIL_HTTP_LISTEN=") {
			env = append(env, kv)
		}
	}
	return env
}

func freeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape returns the text exposition of the sink's /metrics.
func scrape(ctx context.Context, addr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// metricValue is the value of the series named exactly series in a text exposition (0 if absent).
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// liveOrder rewrites the start and end times of ss as a live stream delivers them: in order,
// perSecond sessions a second, ending now (durations kept). An enricher closes sessions in
// time order, so this is what a pre-filled sessions topic holds.
func liveOrder(ss []record.Session, perSecond int) {
	end := time.Now().UTC().Truncate(time.Second)
	first := end.Add(-time.Duration(len(ss)/perSecond) * time.Second)
	for i := range ss {
		d := ss[i].EndTime.Sub(ss[i].StartTime)
		ss[i].StartTime = first.Add(time.Duration(i/perSecond) * time.Second)
		ss[i].EndTime = ss[i].StartTime.Add(d)
	}
}

// vmHWM is the peak resident set of process pid in KiB, from /proc (0 if unavailable).
func vmHWM(pid int) int64 {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
