package clickhouse

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// A private ClickHouse is stopped for 30 s while records keep arriving, then restarted: the
// sink retries, nothing is lost, and after OPTIMIZE ... FINAL no session_id appears twice and
// the per-minute rollup equals a recount.
func TestSinkSurvivesClickHouseOutageIntegration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	srv := testenv.PrivateClickHouse(t)
	addrs := []string{srv.Addr}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st := newStream(t, ctx, brokers)
	conn := openTest(t, ctx, addrs, st.db)

	const n, chunks = 30000, 30
	ss := genSessions(77, n)
	msgs := sessionMessages(ss)
	var prod sync.WaitGroup
	prod.Add(1)
	go func() { // keep records coming before, during and after the outage
		defer prod.Done()
		w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: st.sessions, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchTimeout: 10 * time.Millisecond}
		defer w.Close()
		per := n / chunks
		for i := 0; i < chunks; i++ {
			if err := w.WriteMessages(ctx, msgs[i*per:(i+1)*per]...); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			time.Sleep(1500 * time.Millisecond)
		}
	}()

	var once sync.Once
	outageDone := make(chan struct{})
	m := runSink(t, ctx, st, conn, addrs, func(m *Metrics) bool {
		select {
		case <-outageDone:
		default:
			once.Do(func() {
				go func() {
					defer close(outageDone)
					// Wait for the first rows, then take the server away for 30 s.
					for {
						var c uint64
						if err := conn.QueryRow(ctx, "SELECT count() FROM "+st.db+".sessions").Scan(&c); err == nil && c > 0 {
							break
						}
						time.Sleep(200 * time.Millisecond)
					}
					srv.Stop(t)
					time.Sleep(30 * time.Second)
					srv.Start(t)
				}()
			})
			return false
		}
		return counterValue(m.Rows.WithLabelValues("sessions")) >= n
	})
	prod.Wait()
	if r := counterValue(m.Retries.WithLabelValues("sessions")); r == 0 {
		t.Error("no insert was retried: the outage did not hit the stream")
	} else {
		t.Logf("%v insert attempts retried during the outage", r)
	}
	total, distinct := optimizeFinal(t, ctx, conn, st.db, n)
	if total != n || distinct != n {
		t.Errorf("after OPTIMIZE FINAL: %d rows, %d distinct session ids; want %d of each", total, distinct, n)
	}
	checkRollup(t, ctx, conn, st.db)
}
