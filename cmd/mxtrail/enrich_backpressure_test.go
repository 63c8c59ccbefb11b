package main

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A broker that stops answering the enricher's produce requests stops its reading once the
// unacknowledged outputs pass max_unacked_bytes (memory stays bounded instead of the outputs
// piling up while the raw topic flows in), and when the broker answers again every session
// record arrives: the oracle holds. The broker is kfake, which can hold produce requests.
func TestEnrichBackpressure(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	st := newStreamTopics(t, brokers, 2)
	f := newStreamFleet(t, 3000)
	produceAll(t, brokers, st.Raw, f.msgs)

	// From now on produce requests to the output topics are held until release is closed.
	var hold atomic.Bool
	hold.Store(true)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unhold := func() { releaseOnce.Do(func() { hold.Store(false); close(release) }) }
	defer unhold()
	var held atomic.Int64
	outputs := map[string]bool{st.Sessions: true, st.Events: true, st.DeadLetter: true, st.Alerts: true}
	cluster.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !hold.Load() {
			return nil, nil, false
		}
		for _, tp := range kreq.(*kmsg.ProduceRequest).Topics {
			if outputs[tp.Topic] {
				held.Add(1)
				cluster.SleepControl(func() { <-release })
				break
			}
		}
		return nil, nil, false
	})

	cfg := testEnricherConfig(brokers, st)
	const limit = 64 << 10
	cfg.MaxUnackedBytes = limit
	stop, reg := startEnricherReg(t, cfg)
	deadline := time.Now().Add(time.Minute)
	for gathered(t, reg, "mxtrail_enrich_backpressure_waits_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no backpressure within a minute: %v lines in, %v unacked bytes, %d produce requests held",
				gathered(t, reg, "mxtrail_enrich_lines_in_total"), gathered(t, reg, "mxtrail_enrich_unacked_output_bytes"), held.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // fetches past the check finish
	in1 := gathered(t, reg, "mxtrail_enrich_lines_in_total")
	time.Sleep(2 * time.Second)
	in2 := gathered(t, reg, "mxtrail_enrich_lines_in_total")
	unacked := gathered(t, reg, "mxtrail_enrich_unacked_output_bytes")
	t.Logf("held: %d produce requests; %v of %d lines read; %v output bytes unacknowledged (limit %d)", held.Load(), in2, len(f.msgs), unacked, limit)
	if in2 != in1 || int(in2) >= len(f.msgs) {
		t.Errorf("reading went on while Kafka held the outputs: %v then %v lines of %d", in1, in2, len(f.msgs))
	}
	// Over the limit by at most what the partitions' fetches in hand produced (a fetch is at
	// most 1 MiB of raw lines; its outputs are a fraction of that).
	if unacked <= limit || unacked > limit+2*(1<<20) {
		t.Errorf("%v output bytes unacknowledged: want over the limit %d (that is why reading stopped) by at most two fetches' outputs", unacked, limit)
	}

	unhold()
	got := readTopic(t, brokers, st.Sessions, len(f.want), 5*time.Second, 3*time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkOracle(t, f, got)
	if u := gathered(t, reg, "mxtrail_enrich_unacked_output_bytes"); u != 0 {
		t.Errorf("%v output bytes still counted unacknowledged after the drain", u)
	}
}
