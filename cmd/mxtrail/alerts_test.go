package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/internal/testenv"
	"github.com/mxtrail/mxtrail/sink/schema"
)

func TestAlertsUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"alerts", "--format", "xml"}, `--format "xml": want table or json`},
		{[]string{"alerts", "--since", "-1h"}, `--since -1h0m0s: want a positive duration`},
		{[]string{"alerts", "--since", "soon"}, `invalid value "soon" for flag -since`},
		{[]string{"alerts", "--limit", "0", "extra"}, `unexpected arguments ["extra"]; --limit 0: want a positive number`},
	} {
		code, _, stderr := run(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

type alertVersion struct {
	id, rule, code, severity, host, product, session, example, summary string
	fired, last, resolved                                              time.Time
	count, version                                                     uint64
}

// TestAlertsCommandIntegration writes alert records, several versions each in separate
// inserts (so separate parts, unmerged), into a migrated throw-away database on the local
// ClickHouse and reads them back with mxtrail alerts.
func TestAlertsCommandIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	ctx := context.Background()
	conn, db := scratchDatabase(t, "mxtrail_alerts")
	if _, err := schema.Migrate(ctx, conn, schema.Options{Database: db}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	var zero time.Time = time.Unix(0, 0).UTC()
	isode := "2026-11-23T10:00:01Z mx1 pp[1]: 14 Critical\tqueue manager lost its database"
	versions := []alertVersion{
		// Open critical, first version then a repeat: one row with count 3.
		{"a1", "isode_critical", "14", "critical", "mx1", "isode", "s-1", isode, "Isode Critical event on mx1", ago(20 * time.Minute), ago(20 * time.Minute), zero, 1, 2},
		{"a1", "isode_critical", "14", "critical", "mx1", "isode", "s-1", isode, "Isode Critical event on mx1", ago(20 * time.Minute), ago(5 * time.Minute), zero, 3, 6},
		// Resolved: only with --all.
		{"a2", "dnsbl_failure", "BLACKLIST", "error", "mx2", "imail", "", "BLACKLIST:failed to connect to service", "DNSBL lookups fail on mx2", ago(50 * time.Minute), ago(50 * time.Minute), zero, 1, 2},
		{"a2", "dnsbl_failure", "BLACKLIST", "error", "mx2", "imail", "", "BLACKLIST:failed to connect to service", "DNSBL lookups fail on mx2", ago(50 * time.Minute), ago(40 * time.Minute), ago(30 * time.Minute), 2, 5},
		// Open but last seen 3 hours ago: only with --since 4h.
		{"a3", "smtpf_licence", "#401", "critical", "mx4", "smtpf", "", "smtpf #401 licence expired", "smtpf licence error on mx4", ago(3 * time.Hour), ago(3 * time.Hour), zero, 1, 2},
		// Open, logged at info level by MailEnable, critical once normalised.
		{"a4", "open_relay", "ME-I0110", "critical", "mx3", "mailenable", "s-4", "ME-I0110 server is configured to allow anyone to relay", "open relay on mx3", ago(10 * time.Minute), ago(10 * time.Minute), zero, 1, 2},
		// Open and the most recent, but only a warning: listed after every critical one.
		{"a6", "dnsbl_failure", "#446", "warning", "mx2", "smtpf", "s-6", "smtpf #446 MX example.org lookup: SERVFAIL (2)", "DNS lookups fail on mx2", ago(time.Minute), ago(time.Minute), zero, 1, 2},
		// Open, the most severe: listed first.
		{"a5", "critical_other", "E1", "emergency", "mx5", "isode", "", "emergency line", "emergency on mx5", ago(2 * time.Minute), ago(2 * time.Minute), zero, 1, 2},
	}
	for _, v := range versions {
		b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".alerts (alert_id, rule, code, severity, host, product, session_id, example, summary, fired_at, last_seen, resolved_at, count, version, value, threshold)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(v.id, v.rule, v.code, v.severity, v.host, v.product, v.session, v.example, v.summary, v.fired, v.last, v.resolved, v.count, v.version, float64(v.count), 1.0); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("MXTRAIL_CLICKHOUSE_ADDR", strings.Join(addrs, ","))
	t.Setenv("MXTRAIL_CLICKHOUSE_DATABASE", db)

	ids := func(out string) []string {
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) > 0 && len(f[len(f)-1]) == 2 && f[len(f)-1][0] == 'a' {
				got = append(got, f[0]+":"+f[len(f)-1])
			}
		}
		return got
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"alerts"}, "open:a5 open:a1 open:a4 open:a6"},
		{[]string{"alerts", "--since", "1h", "--all"}, "open:a5 open:a1 open:a4 open:a6 resolved:a2"},
		{[]string{"alerts", "--since", "4h"}, "open:a5 open:a1 open:a4 open:a3 open:a6"},
		{[]string{"alerts", "--since", "4h", "--limit", "2"}, "open:a5 open:a1"},
	} {
		code, stdout, stderr := run(t, c.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, stderr)
		}
		if got := strings.Join(ids(stdout), " "); got != c.want {
			t.Errorf("%v: got %q, want %q:\n%s", c.args, got, c.want, stdout)
		}
	}
	code, stdout, stderr := run(t, "alerts")
	if code != 0 || !strings.HasPrefix(stdout, "state ") || !strings.Contains(stdout, `14 Critical\tqueue manager`) ||
		!strings.Contains(stdout, "open   critical   isode_critical  14") || !strings.HasSuffix(stdout, "(4 rows)\n") {
		t.Errorf("alerts table: exit %d, stderr %q:\n%s", code, stderr, stdout)
	}

	code, stdout, stderr = run(t, "alerts", "--all", "--format", "json")
	if code != 0 {
		t.Fatalf("alerts json: exit %d: %s", code, stderr)
	}
	got := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("alerts json line %q: %v", l, err)
		}
		got[m["alert_id"].(string)] = m
	}
	a1, a2 := got["a1"], got["a2"]
	if len(got) != 5 || a1 == nil || a2 == nil {
		t.Fatalf("alerts --all json: %d alerts:\n%s", len(got), stdout)
	}
	if a1["count"] != 3.0 || a1["example"] != isode || a1["session_id"] != "s-1" || a1["resolved_at"] != nil ||
		a1["last_seen"] != ago(5*time.Minute).Format(time.RFC3339Nano) || a1["fired_at"] != ago(20*time.Minute).Format(time.RFC3339Nano) {
		t.Errorf("a1 (two versions) should read as its latest: %v", a1)
	}
	if a2["state"] != "resolved" || a2["resolved_at"] != ago(30*time.Minute).Format(time.RFC3339Nano) || a2["count"] != 2.0 {
		t.Errorf("a2 should be resolved with count 2: %v", a2)
	}

	t.Setenv("MXTRAIL_CLICKHOUSE_DATABASE", db+"_missing")
	if code, _, stderr := run(t, "alerts"); code != 1 || !strings.Contains(stderr, "mxtrail alerts: ") || !strings.Contains(stderr, "_missing") {
		t.Errorf("missing database: exit %d, %q", code, stderr)
	}
	// An alerts table without the columns of migration 0003: say what to do.
	old := db + "_old"
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+old) })
	for _, q := range []string{"CREATE DATABASE " + old,
		"CREATE TABLE " + old + ".alerts (alert_id String, fired_at DateTime, version UInt64) ENGINE = MergeTree ORDER BY alert_id"} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("MXTRAIL_CLICKHOUSE_DATABASE", old)
	if code, _, stderr := run(t, "alerts"); code != 1 || !strings.Contains(stderr, "run mxtrail migrate") {
		t.Errorf("unmigrated database: exit %d, %q", code, stderr)
	}
}

// The same query on a current ClickHouse (chdb, DateTime64 and LowCardinality columns): the
// latest version of each alert, open ones only, most severe first.
func TestAlertsQueryOnChdbIntegration(t *testing.T) {
	p, err := schema.Render(schema.Options{Database: "mx", Server: schema.ServerVersion{Major: 26, Minor: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ins := func(id, sev string, lastAgo, resolvedAgo, count, version int) string {
		resolved := "toDateTime64(0, 3, 'UTC')"
		if resolvedAgo > 0 {
			resolved = fmt.Sprintf("now64(3) - %d", resolvedAgo)
		}
		return fmt.Sprintf("INSERT INTO mx.alerts (alert_id, rule, code, severity, host, product, fired_at, last_seen, resolved_at, count, version, example) "+
			"SELECT '%s', 'isode_critical', '14', '%s', 'mx1', 'isode', toDateTime64(toStartOfHour(now()), 3, 'UTC'), now64(3) - %d, %s, %d, %d, 'line %s %d';\n",
			id, sev, lastAgo, resolved, count, version, id, count)
	}
	q := strings.Replace(fmt.Sprintf(alertsSQL, "mx", "toUInt32(l_resolved_at) = 0", 100), "?", "toUInt32(now()) - 3600", 1)
	sql := p.Script("mx", true) +
		ins("a1", "critical", 60, 0, 1, 2) + ins("a1", "critical", 30, 0, 4, 8) +
		ins("a2", "error", 120, 0, 1, 2) + ins("a2", "error", 100, 60, 1, 3) +
		ins("a3", "emergency", 10, 0, 1, 2) + ins("a4", "critical", 7200, 0, 1, 2) +
		q + ";\n"
	out, err := testenv.Chdb(t, sql)
	if err != nil {
		t.Fatalf("chdb: %v", err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Split(l, "\t")
		got = append(got, f[0]+"/"+f[3]+"/"+f[9]+"/"+f[13])
	}
	if want := "a3/emergency/1/line a3 1 a1/critical/4/line a1 4"; strings.Join(got, " ") != want {
		t.Errorf("chdb: got %q, want %q:\n%s", strings.Join(got, " "), want, out)
	}
}
