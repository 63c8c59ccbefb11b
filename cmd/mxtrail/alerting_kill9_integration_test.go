package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/alert"
	"github.com/mxtrail/mxtrail/internal/testenv"
)

// TestAlertsKill9Integration: `mxtrail enrich` is killed with SIGKILL while alert windows are
// open and alert records are in flight, then restarted on the rest of the stream. The commit
// must have stayed before every open window and every unacknowledged record, so after the
// replay the newest version of every alert is exactly what one uninterrupted run gives: one
// alert id per (host, 10-minute window), resolved, with the count and first/last sighting of
// all its lines; no alert id outside them; duplicates byte-identical; and the group commits
// the end once every window has closed.
func TestAlertsKill9Integration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	const (
		parts   = 3
		nHosts  = 6
		perHost = 720 // one line every 20 s: 4 hours, 24 windows of 30 lines per host
		every   = 20 * time.Second
		rule    = "smtpf_out_of_memory"
	)
	st := newStreamTopics(t, brokers, parts)
	start := time.Date(2021, 3, 9, 0, 0, 0, 0, time.UTC)
	type win struct {
		count       uint64
		first, last time.Time
	}
	want := map[string]*win{} // alert_id -> expected final state
	var msgs []kafka.Message
	for i := 0; i < perHost; i++ {
		for h := 0; h < nHosts; h++ {
			host := fmt.Sprintf("smf-k%d", h)
			at := start.Add(time.Duration(i)*every + time.Duration(h)*time.Second)
			line := at.Format("Jan _2 15:04:05") + " " + host + " smtpf[28585]: #538 out of memory cache.c(120)"
			msgs = append(msgs, kafka.Message{Key: []byte(host), Value: []byte(line),
				Headers: []kafka.Header{{Key: "host", Value: []byte(host)}}})
			id := alert.ID(rule, host, at.Truncate(10*time.Minute))
			w := want[id]
			if w == nil {
				w = &win{first: at}
				want[id] = w
			}
			w.count++
			w.last = at
		}
	}
	if len(want) != nHosts*perHost*int(every/time.Second)/600 {
		t.Fatalf("%d windows", len(want))
	}

	bin := buildMxtrail(t)
	cfg := filepath.Join(t.TempDir(), "enrich.yaml")
	y := fmt.Sprintf(`kafka:
  brokers: [%s]
  topics: {raw: %s, sessions: %s, events: %s, deadletter: %s, alerts: %s}
http:
  listen: ""
  log_level: warn
enrich:
  parser: {default_year: 2021}
  stream:
    group_id: %s
    lateness: 1m
    idle_advance: 30m
    idle_clock_speed: 100
    commit_interval: 100ms
`, strings.Join(brokers, ", "), st.Raw, st.Sessions, st.Events, st.DeadLetter, st.Alerts, st.group)
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}

	// The first part ends in the middle of a window of every host. The kill comes once the
	// enricher has committed on every partition (so the commit had the chance to run past an
	// open window) and before the idle watermark (18 s of silence) could close one.
	half := (perHost*2/3 + 5) * nHosts
	produceAll(t, brokers, st.Raw, msgs[:half])
	child, errb := startChild(t, bin, cfg)
	deadline := time.Now().Add(2 * time.Minute)
	for countTopic(t, brokers, st.Alerts, parts) < 150 || !committedSome(t, brokers, st, parts) {
		if time.Now().After(deadline) {
			t.Fatalf("no alert records or commits before the kill; stderr:\n%s", errb.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second) // more commits, on every partition
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	t.Logf("killed after %d alert records", countTopic(t, brokers, st.Alerts, parts))
	produceAll(t, brokers, st.Raw, msgs[half:])
	child, errb = startChild(t, bin, cfg)

	type rec struct {
		alert.Record
		raw []byte
	}
	best := map[string]rec{}
	byVersion := map[string][]byte{} // alert_id/version -> first copy
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: st.Alerts, GroupID: fmt.Sprintf("reader-%d", rand.Uint64()),
		StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 200 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond})
	defer r.Close()
	done := func() bool {
		if len(best) < len(want) {
			return false
		}
		for id, w := range want {
			if b, ok := best[id]; !ok || b.Version != w.count<<1|1 {
				return false
			}
		}
		return true
	}
	for end := time.Now().Add(3 * time.Minute); !done(); {
		ctx, cancel := context.WithDeadline(context.Background(), end)
		m, err := r.FetchMessage(ctx) // no commits: a throw-away group (see readTopicKeys)
		cancel()
		if err != nil {
			break // the checks below say what is missing
		}
		var got alert.Record
		if err := json.Unmarshal(m.Value, &got); err != nil {
			t.Fatalf("alert record %q: %v", m.Value, err)
		}
		if string(m.Key) != got.AlertID {
			t.Errorf("key %q for alert %s", m.Key, got.AlertID)
		}
		k := fmt.Sprintf("%s/%d", got.AlertID, got.Version)
		if first, ok := byVersion[k]; ok && !bytes.Equal(first, m.Value) {
			t.Errorf("two different copies of %s:\n%s\n%s", k, first, m.Value)
		} else if !ok {
			byVersion[k] = bytes.Clone(m.Value)
		}
		if b, ok := best[got.AlertID]; !ok || got.Version > b.Version {
			best[got.AlertID] = rec{got, m.Value}
		}
	}
	time.Sleep(time.Second)
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("enrich after SIGTERM: %v; stderr:\n%s", err, errb.String())
	}
	for id, w := range want {
		b, ok := best[id]
		if !ok {
			t.Errorf("alert %s (%d lines from %s) never emitted", id, w.count, w.first)
			continue
		}
		if b.Count != w.count || b.Version != w.count<<1|1 || b.Open() || !b.FiredAt.Equal(w.first) || !b.LastSeen.Equal(w.last) {
			t.Errorf("alert %s: newest version %s\nwant count %d resolved, fired %s, last seen %s", id, b.raw, w.count, w.first, w.last)
		}
	}
	for id, b := range best {
		if want[id] == nil {
			t.Errorf("alert outside the expected windows: %s", b.raw)
		}
	}
	t.Logf("%d alert ids, %d distinct versions", len(best), len(byVersion))
	committedAll(t, brokers, st, parts)
}

// committedSome reports whether the enricher's group committed an offset on every partition.
func committedSome(t testing.TB, brokers []string, st streamTopics, partitions int) bool {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	of, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: st.group, Topics: map[string][]int{st.Raw: ps}})
	if err != nil {
		return false
	}
	n := 0
	for _, p := range of.Topics[st.Raw] {
		if p.CommittedOffset > 0 {
			n++
		}
	}
	return n == partitions
}
