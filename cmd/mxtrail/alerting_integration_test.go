package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/enrich/alert"
	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/internal/testenv"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// alertLine is one catalogue line on its own host, laid out at event time t.
type alertLine struct {
	host, rule string
	format     func(t time.Time) string
}

func syslogAt(t time.Time, host, rest string) string {
	return t.Format("Jan _2 15:04:05") + " " + host + " " + rest
}

// catalogueAlertLines: every fatal/critical id of the catalogue, the open relay (logged at
// info) and the DNSBL failures, each on a host of its own.
var catalogueAlertLines = []alertLine{
	{"iso-a1", "isode_critical", func(t time.Time) string {
		return t.Format("2006-01-02 15:04:05.000") + " critical MTA_SMTP Critical 14 smtpserver[4711]: Inconsistent queue state, please report"
	}},
	{"iso-a1", "isode_fatal", func(t time.Time) string {
		return t.Format("2006-01-02 15:04:05.000") + " fatal MTA_SMTP Fatal 13 smtpserver[4711]: Cannot open configuration"
	}},
	{"iso-a1", "isode_fatal", func(t time.Time) string {
		return t.Format("2006-01-02 15:04:05.000") + " fatal MTA_SMTP FatalS 29 smtpserver[4711]: Cannot open channel smtp"
	}},
	{"iso-a1", "isode_listen_error", func(t time.Time) string {
		return t.Format("2006-01-02 15:04:05.000") + " fatal MTA_SMTP ListenError 101 smtpserver[4711]: Cannot listen on 0.0.0.0:25"
	}},
	{"smf-a1", "smtpf_out_of_memory", func(t time.Time) string {
		return syslogAt(t, "smf-a1", "smtpf[28585]: #538 out of memory cache.c(120)")
	}},
	{"smf-a1", "smtpf_resources", func(t time.Time) string {
		return syslogAt(t, "smf-a1", "smtpf[28585]: #556 resources error server.c(88): Too many open files (24)")
	}},
	{"smf-a1", "smtpf_interface", func(t time.Time) string {
		return syslogAt(t, "smf-a1", "smtpf[28585]: #596 interface=eth0 error: Cannot assign requested address (99)")
	}},
	{"smf-a1", "smtpf_interface", func(t time.Time) string {
		return syslogAt(t, "smf-a1", `smtpf[28585]: #812 no matching interfaces="eth9"`)
	}},
	{"smf-a1", "smtpf_licence", func(t time.Time) string {
		return syslogAt(t, "smf-a1", "smtpf[28585]: #398 license key has expired")
	}},
	{"smf-a1", "smtpf_licence", func(t time.Time) string {
		return syslogAt(t, "smf-a1", "smtpf[28585]: #406 not licensed for IP [192.0.2.7]")
	}},
	{"smf-a1", "smtpf_accept", func(t time.Time) string {
		return syslogAt(t, "smf-a1", "smtpf[28585]: #602 socket accept: Too many open files (24); th=10 cn=200")
	}},
	{"smf-a1", "dnsbl_failure", func(t time.Time) string {
		return syslogAt(t, "smf-a1", "smtpf[28585]: k4G9Bh285856336700 #446 MX example.org lookup: SERVFAIL (2)")
	}},
	{"me-a1", "open_relay", func(t time.Time) string {
		return t.Format("01/02/06 15:04:05") + " ME-I0110: Relay Granted: Server is configured to allow anyone to relay."
	}},
	{"im-a1", "dnsbl_failure", func(t time.Time) string {
		return t.Format("01:02 15:04") + " SMTPD(00180250) BLACKLIST:failed to connect to service (Spamhaus:zen.spamhaus.org:zen.spamhaus.org)"
	}},
}

// TestAlertsEndToEndIntegration: a generated fleet's traffic with every catalogue line
// repeated three times mixed in, through the enricher and the sink on the real Kafka and
// ClickHouse. Each (rule, host) becomes exactly one row of the alerts table whose count is the
// number of matching lines (throttled repeats raise count, not rows), resolved once the
// watermark passes its window; the metrics count the same lines; the commit reaches the end.
func TestAlertsEndToEndIntegration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	conn, db := scratchDatabase(t, "mxtrail_alerts")
	ctx := context.Background()
	f := newStreamFleet(t, 300)
	const parts = 3
	st := newStreamTopics(t, brokers, parts)

	// lay each catalogue line three times right after a fleet line, at that line's event time,
	// so the lines share the partitions' watermarks with ordinary traffic
	p, err := parse.New(parse.Options{DefaultYear: 2021, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	const repeats = 3
	var msgs []kafka.Message
	wantCount := map[string]uint64{} // rule/host -> lines
	next, step := 0, len(f.msgs)/(len(catalogueAlertLines)+2)
	var ev event.Event
	for i, m := range f.msgs {
		msgs = append(msgs, m)
		if next >= len(catalogueAlertLines) || i < (next+1)*step || len(m.Headers) == 0 {
			continue
		}
		p.Parse(&ev, m.Value, &event.Source{Host: string(m.Key)})
		if !ev.Parsed || ev.Time.IsZero() {
			continue
		}
		c := catalogueAlertLines[next]
		next++
		line := c.format(ev.Time.UTC())
		for r := 0; r < repeats; r++ {
			msgs = append(msgs, kafka.Message{Key: []byte(c.host), Value: []byte(line),
				Headers: []kafka.Header{{Key: "host", Value: []byte(c.host)}}})
		}
		wantCount[c.rule+"/"+c.host] += repeats
	}
	if next != len(catalogueAlertLines) {
		t.Fatalf("placed %d of %d catalogue lines", next, len(catalogueAlertLines))
	}

	res, err := schema.Migrate(ctx, conn, schema.Options{Database: db})
	if err != nil {
		t.Fatal(err)
	}

	produceAll(t, brokers, st.Raw, msgs)
	cfg := testEnricherConfig(brokers, st)
	ac := alert.Defaults()
	ac.SessionDelay = 15 * time.Minute
	cfg.Alerts = &ac
	areg := prometheus.NewRegistry()
	cfg.AlertMetrics = alert.NewMetrics(areg, 1000)
	stopEnrich := startEnricher(t, cfg)

	// the sink, in-process, on the four output topics
	sm := chsink.NewMetrics(nil)
	src, err := chsink.NewGroupSource(chsink.GroupConfig{Brokers: brokers, GroupID: "sink-" + st.group,
		Topics: []string{st.Sessions, st.Events, st.DeadLetter, st.Alerts}, WatchPartitionChanges: true},
		sm, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	w := chsink.NewWriter(conn, db, schema.FeaturesFor(res.Server), sm, 100*time.Millisecond, 2*time.Second)
	sink, err := chsink.New(chsink.Config{Database: db, Topics: map[string]chsink.Kind{st.Sessions: chsink.KindSessions,
		st.Events: chsink.KindEvents, st.DeadLetter: chsink.KindDeadLetter, st.Alerts: chsink.KindAlerts},
		BatchRows: 20000, BatchBytes: 32 << 20, BatchAge: 300 * time.Millisecond, MaxInFlight: 2,
		RetryInitial: 100 * time.Millisecond, RetryMax: 2 * time.Second, MaxField: 256 << 10},
		src, w, sm, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopSink := context.WithCancel(ctx)
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- sink.Run(sctx) }()
	defer func() {
		stopSink()
		if err := <-sinkDone; err != nil {
			t.Errorf("sink: %v", err)
		}
	}()

	hosts := "'iso-a1','smf-a1','me-a1','im-a1'"
	type row struct {
		Rule, Host, Severity, Code, Example string
		Count, Version                      uint64
		Resolved                            uint32
	}
	var rows []row
	deadline := time.Now().Add(3 * time.Minute)
	for {
		rows = rows[:0]
		rs, err := conn.Query(ctx, "SELECT rule, host, severity, code, example, count, version, toUInt32(resolved_at) FROM "+db+
			".alerts FINAL WHERE host IN ("+hosts+") ORDER BY rule, host")
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.Rule, &r.Host, &r.Severity, &r.Code, &r.Example, &r.Count, &r.Version, &r.Resolved); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, r)
		}
		rs.Close()
		resolved := 0
		for _, r := range rows {
			if r.Resolved > 0 {
				resolved++
			}
		}
		if len(rows) >= len(wantCount) && resolved == len(rows) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes %d alert rows (%d resolved), want %d resolved: %+v", len(rows), resolved, len(wantCount), rows)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// every window closes once the idle watermark passes it, so the commit reaches the end
	for end := time.Now().Add(time.Minute); !allCommitted(t, brokers, st, parts) && time.Now().Before(end); {
		time.Sleep(300 * time.Millisecond)
	}
	if err := stopEnrich(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		k := r.Rule + "/" + r.Host
		if seen[k] {
			t.Errorf("two rows for %s: repeats must raise count, not rows", k)
		}
		seen[k] = true
		want, ok := wantCount[k]
		if !ok {
			t.Errorf("unexpected alert %+v", r)
			continue
		}
		if r.Count != want || r.Version != want<<1|1 {
			t.Errorf("%s: count %d version %d, want count %d (every repeat counted) resolved", k, r.Count, r.Version, want)
		}
		if r.Example == "" || r.Code == "" {
			t.Errorf("%s: no example or code: %+v", k, r)
		}
		wantSev := "critical"
		if r.Rule == "dnsbl_failure" {
			wantSev = map[string]string{"smf-a1": "warning", "im-a1": "error"}[r.Host]
		}
		if r.Severity != wantSev {
			t.Errorf("%s: severity %s, want %s", k, r.Severity, wantSev)
		}
	}
	for k := range wantCount {
		if !seen[k] {
			t.Errorf("no alert row for %s", k)
		}
	}
	if !seen["open_relay/me-a1"] {
		t.Error("the info-level ME-I0110 line raised no open_relay alert")
	}
	// the events table carries the normalised severity too; the product's word stays raw
	for _, c := range []struct{ host, code, sev, raw string }{
		{"me-a1", "ME-I0110", "critical", "I"}, {"smf-a1", "#538", "critical", "ERR"}, {"smf-a1", "#446", "warning", "ERR"},
	} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".events WHERE host = ? AND code = ? AND severity = ? AND raw_severity = ?",
			c.host, c.code, c.sev, c.raw).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != repeats {
			t.Errorf("events %s %s: %d rows at %s (raw %s), want %d", c.host, c.code, n, c.sev, c.raw, repeats)
		}
	}
	// every row of the table, whatever the host, is one alert id
	var total, ids uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(alert_id) FROM "+db+".alerts FINAL").Scan(&total, &ids); err != nil {
		t.Fatal(err)
	}
	if total != ids {
		t.Errorf("%d rows for %d alert ids after FINAL", total, ids)
	}

	// the metrics count the same lines; our hosts raised one alert per rule and host
	byRule := map[string]uint64{}
	for k, n := range wantCount {
		byRule[strings.Split(k, "/")[0]] += n
	}
	for rule, n := range byRule {
		got := labelled(t, areg, "mxtrail_alert_events_total", "rule", rule)
		if got < float64(n) {
			t.Errorf("mxtrail_alert_events_total{rule=%q} = %v, want at least %d", rule, got, n)
		}
		if rule != "dnsbl_failure" && rule != "critical_other" && got != float64(n) {
			t.Errorf("mxtrail_alert_events_total{rule=%q} = %v, want %d", rule, got, n)
		}
		if raised := labelled(t, areg, "mxtrail_alerts_raised_total", "rule", rule); raised < 1 {
			t.Errorf("mxtrail_alerts_raised_total{rule=%q} = %v", rule, raised)
		}
	}
	if late := gathered(t, areg, "mxtrail_alert_late_events_total"); late != 0 {
		t.Errorf("%v alert lines arrived after their window closed", late)
	}
	if crit := labelled(t, areg, "mxtrail_events_total", "severity", "critical"); crit < float64(len(catalogueAlertLines)*repeats-2*repeats) {
		t.Errorf("mxtrail_events_total{severity=critical} = %v", crit)
	}
	if lines := labelled(t, areg, "mxtrail_host_lines_total", "host", "me-a1"); lines != repeats {
		t.Errorf("mxtrail_host_lines_total{host=me-a1} = %v, want %d", lines, repeats)
	}
	if s := gathered(t, areg, "mxtrail_host_sessions_total"); s == 0 {
		t.Error("no sessions counted per host")
	}
	committedAll(t, brokers, st, parts)
}

// allCommitted reports whether the enricher's group committed every partition's end.
func allCommitted(t testing.TB, brokers []string, st streamTopics, partitions int) bool {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	ps := make([]int, partitions)
	reqs := make([]kafka.OffsetRequest, partitions)
	for i := range ps {
		ps[i], reqs[i] = i, kafka.LastOffsetOf(i)
	}
	of, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: st.group, Topics: map[string][]int{st.Raw: ps}})
	if err != nil {
		return false
	}
	lo, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{st.Raw: reqs}})
	if err != nil {
		return false
	}
	ends := map[int]int64{}
	for _, p := range lo.Topics[st.Raw] {
		ends[p.Partition] = p.LastOffset
	}
	for _, p := range of.Topics[st.Raw] {
		if p.CommittedOffset != ends[p.Partition] {
			return false
		}
	}
	return true
}

// labelled sums the samples of metric name whose label has value.
func labelled(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var s float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == label && lp.GetValue() == value {
					s += m.GetCounter().GetValue()
				}
			}
		}
	}
	return s
}
