package schema

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

var testRetention = Retention{Sessions: 90, Events: 30, Alerts: 365, DeadLetter: 14, Rollup: 400}

func render(t *testing.T, version string) Plan {
	t.Helper()
	v, err := ParseServerVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Render(Options{Database: "mx", Server: v, Retention: testRetention})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRenderOldServerUsesFallbacks(t *testing.T) {
	p := render(t, "18.16.1")
	sql := p.Script("mx", true)
	for _, banned := range []string{"DateTime64", "IPv6 ", "CODEC(", "TTL ", "non_replicated_deduplication_window", "Array(LowCardinality", "IF NOT EXISTS code"} {
		if strings.Contains(sql, banned) {
			t.Errorf("18.16 DDL contains %q, which that server does not support", banned)
		}
	}
	if !strings.Contains(sql, "SET allow_experimental_low_cardinality_type = 1;") || p.Settings["allow_experimental_low_cardinality_type"] != 1 {
		t.Errorf("18.16 plan must enable experimental LowCardinality, settings %v", p.Settings)
	}
	if !strings.Contains(sql, "host            LowCardinality(String)") {
		t.Error("18.16 DDL should still use LowCardinality for host")
	}
	for _, want := range []string{"ALTER TABLE mx.alerts ADD COLUMN code LowCardinality(String) AFTER rule",
		"ALTER TABLE mx.alerts ADD COLUMN last_seen DateTime('UTC') DEFAULT fired_at AFTER fired_at",
		"ALTER TABLE mx.alerts ADD COLUMN example String;"} {
		if !strings.Contains(sql, want) {
			t.Errorf("18.16 DDL lacks %q", want)
		}
	}
}

func TestRenderModernServerUsesModernTypes(t *testing.T) {
	p := render(t, "26.1")
	sql := p.Script("mx", true)
	for _, want := range []string{"DateTime64(3, 'UTC')", "client_ip       IPv6", "CODEC(ZSTD(1))",
		"TTL toDateTime(start_time) + INTERVAL 90 DAY", "TTL toDateTime(time) + INTERVAL 14 DAY",
		"Array(LowCardinality(String))", "non_replicated_deduplication_window",
		"ALTER TABLE mx.alerts ADD COLUMN IF NOT EXISTS code LowCardinality(String) AFTER rule",
		"ADD COLUMN IF NOT EXISTS last_seen DateTime64(3, 'UTC') DEFAULT fired_at",
		"ADD COLUMN IF NOT EXISTS example String CODEC(ZSTD(3))"} {
		if !strings.Contains(sql, want) {
			t.Errorf("26.1 DDL lacks %q", want)
		}
	}
	if len(p.Settings) != 0 {
		t.Errorf("26.1 needs no session settings, got %v", p.Settings)
	}
	zero, err := Render(Options{Database: "mx", Server: ServerVersion{26, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(zero.Script("mx", false), "TTL ") {
		t.Error("retention 0 must mean no TTL")
	}
}

func TestRenderRejectsBadDatabase(t *testing.T) {
	if _, err := Render(Options{Database: "mx; DROP TABLE x", Server: ServerVersion{18, 16}}); err == nil ||
		!strings.Contains(err.Error(), `"mx; DROP TABLE x"`) {
		t.Fatalf("want an error quoting the bad name, got %v", err)
	}
}

func TestParseServerVersion(t *testing.T) {
	for in, want := range map[string]ServerVersion{"18.16.1": {18, 16}, "26.1": {26, 1}, "24.3.2.23": {24, 3}} {
		got, err := ParseServerVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseServerVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "18", "a.b", "-1.2"} {
		if _, err := ParseServerVersion(bad); err == nil {
			t.Errorf("ParseServerVersion(%q) should fail", bad)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- c\nCREATE TABLE a (x UInt8);\n\nSELECT 1\nFROM b;\n")
	if len(got) != 2 || got[0] != "CREATE TABLE a (x UInt8)" || got[1] != "SELECT 1\nFROM b" {
		t.Fatalf("got %q", got)
	}
}

// The modern variant of every statement runs on chdb (ClickHouse 26.x), followed by inserts
// that prove the replay-collapsing and rollup semantics on that version too (times are
// recent: rows older than the TTL vanish).
func TestModernDDLOnChdbIntegration(t *testing.T) {
	p := render(t, "26.1")
	// The whole script twice: every CREATE and ALTER must be idempotent on a modern server.
	sql := p.Script("mx", true) + p.Script("mx", false) + `
INSERT INTO mx.alerts (alert_id, fired_at, last_seen, resolved_at, rule, code, severity, host, product, count, value, threshold, session_id, example, summary, version)
SELECT 'a1', toDateTime64(toStartOfHour(now()), 3, 'UTC'), toDateTime64(toStartOfHour(now()) + 30, 3, 'UTC'), toDateTime64(0, 3, 'UTC'), 'isode_critical', '14', 'critical', 'mx1', 'isode', 1, 1, 1, 's1', 'first line', 'x', 2;
INSERT INTO mx.alerts (alert_id, fired_at, last_seen, resolved_at, rule, code, severity, host, product, count, value, threshold, session_id, example, summary, version)
SELECT 'a1', toDateTime64(toStartOfHour(now()), 3, 'UTC'), toDateTime64(toStartOfHour(now()) + 50, 3, 'UTC'), toDateTime64(0, 3, 'UTC'), 'isode_critical', '14', 'critical', 'mx1', 'isode', 3, 3, 1, 's1', 'first line', 'x', 6;
SELECT 'alerts', count(), any(code), any(count), any(last_seen) > any(fired_at), countIf(toUInt32(resolved_at) = 0) FROM mx.alerts FINAL;
INSERT INTO mx.sessions (session_id, host, product, start_time, end_time, client_ip, mail_from, outcome, outcome_version)
SELECT 'a', 'h1', 'spamdyke', toStartOfDay(now()), toStartOfDay(now()), toIPv6('192.0.2.7'), 'x@Example.ORG', 'ALLOWED', 1;
INSERT INTO mx.sessions (session_id, host, product, start_time, end_time, client_ip, mail_from, outcome, outcome_version)
SELECT 'a', 'h1', 'spamdyke', toStartOfDay(now()), toStartOfDay(now()), toIPv6('192.0.2.7'), 'x@Example.ORG', 'ALLOWED', 1;
SELECT count() AS n, any(sender_domain) AS dom, IPv6NumToString(any(client_net)) AS net FROM mx.sessions FINAL;
SELECT uniqExactMerge(sessions) AS u FROM mx.sessions_per_minute;
SELECT groupArray(default_kind) AS kinds FROM (SELECT default_kind FROM system.columns WHERE database = 'mx' AND table = 'sessions' AND name IN ('sender_domain', 'client_net'));
`
	out, err := testenv.Chdb(t, sql)
	if err != nil {
		t.Fatalf("modern DDL failed on chdb: %v", err)
	}
	for _, want := range []string{"1\texample.org\t::ffff:192.0.2.0", "u\n1", "['DEFAULT','DEFAULT']"} {
		if !strings.Contains(out, want) {
			t.Errorf("chdb output lacks %q:\n%s", want, out)
		}
	}
	// Migration 0003: the latest version of the alert, one row, open, with its count.
	if want := "alerts\t1\t14\t3\t1\t1"; !strings.Contains(out, want) {
		t.Errorf("chdb output lacks %q:\n%s", want, out)
	}
}

func TestMigrateIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := ch.Open(&ch.Options{Addr: addrs})
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.ScratchDatabase(t, conn, "mxtest_migrate")
	o := Options{Database: db, Retention: testRetention}

	if _, err := Check(ctx, conn, db); !errors.Is(err, ErrSchemaOlder) {
		t.Fatalf("Check on an empty server: want ErrSchemaOlder, got %v", err)
	}
	res, err := Migrate(ctx, conn, o)
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := sources()
	if err != nil {
		t.Fatal(err)
	}
	if res.Before != 0 || len(res.Applied) != len(srcs) || res.Applied[len(res.Applied)-1] != Latest() {
		t.Fatalf("first migrate: %+v", res)
	}
	before := columns(t, ctx, conn, db)
	res, err = Migrate(ctx, conn, o)
	if err != nil || len(res.Applied) != 0 || res.Before != Latest() {
		t.Fatalf("second migrate must change nothing: %+v, %v", res, err)
	}
	if after := columns(t, ctx, conn, db); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatal("second migrate changed the columns")
	}
	if _, err := Check(ctx, conn, db); err != nil {
		t.Fatalf("Check after migrate: %v", err)
	}
	// Every table's columns, with the old-server types.
	want := map[string]string{
		"sessions.session_id": "String", "sessions.host": "LowCardinality(String)",
		"sessions.start_time": "DateTime('UTC')", "sessions.client_ip": "String",
		"sessions.rcpt_address": "Array(String)", "sessions.rcpt_smtp_code": "Array(UInt16)",
		"sessions.sender_domain": "LowCardinality(String)", "sessions.client_net": "String",
		"sessions.size": "UInt64", "sessions.last_offset": "Int64",
		"events.raw": "String", "events.pos_offset": "Int64", "events.time": "DateTime('UTC')",
		"alerts.alert_id": "String", "alerts.value": "Float64",
		"alerts.code": "LowCardinality(String)", "alerts.last_seen": "DateTime('UTC')", "alerts.count": "UInt64",
		"alerts.session_id": "String", "alerts.example": "String",
		"deadletter.raw": "String", "deadletter.partition": "Int32", "deadletter.offset": "Int64",
		"sessions_per_minute.sessions": "AggregateFunction(uniqExact, String)",
		"schema_migrations.version":    "UInt32",
	}
	got := map[string]string{}
	for _, c := range before {
		f := strings.SplitN(c, " ", 2)
		got[f[0]] = f[1]
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s: got type %q, want %q", k, got[k], v)
		}
	}
	if n := countPrefix(before, "sessions."); n != len(strings.Split("session_id host product session_key start_time end_time client_ip client_ptr helo auth_user tls mail_from rcpt_address rcpt_outcome rcpt_smtp_code rcpt_reply outcome reason smtp_code smtp_reply message_id size delivery closed_by permanent flags event_count max_severity outcome_version first_source first_offset last_source last_offset sender_domain client_net", " ")) {
		t.Errorf("sessions has %d columns", n)
	}

	// A newer mxtrail migrated this database: refuse.
	if err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name, applied_at) SELECT %d, 'future', now()", db, Latest()+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, conn, db); !errors.Is(err, ErrSchemaNewer) {
		t.Fatalf("Check on a newer schema: want ErrSchemaNewer, got %v", err)
	}
	if _, err := Migrate(ctx, conn, o); !errors.Is(err, ErrSchemaNewer) {
		t.Fatalf("Migrate on a newer schema: want ErrSchemaNewer, got %v", err)
	}
}

func countPrefix(xs []string, p string) int {
	n := 0
	for _, x := range xs {
		if strings.HasPrefix(x, p) {
			n++
		}
	}
	return n
}

func columns(t *testing.T, ctx context.Context, conn driver.Conn, db string) []string {
	t.Helper()
	rows, err := conn.Query(ctx, "SELECT table, name, type FROM system.columns WHERE database = ?", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var tb, n, ty string
		if err := rows.Scan(&tb, &n, &ty); err != nil {
			t.Fatal(err)
		}
		out = append(out, tb+"."+n+" "+ty)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// A database at schema 0001 holding an alert row is upgraded on the real 18.16: the row reads
// last_seen = fired_at and count = 1, a column added earlier by an interrupted or concurrent
// run (18.x has no ADD COLUMN IF NOT EXISTS) does not fail the migration, and a database that
// records a later version but lacks an earlier one (a migration merged out of order) is older.
func TestMigrateUpgradesAlertsIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := ch.Open(&ch.Options{Addr: addrs})
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.ScratchDatabase(t, conn, "mxtest_upgrade")
	sv, err := DetectServer(conn)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Render(Options{Database: db, Server: sv})
	if err != nil {
		t.Fatal(err)
	}
	sctx := ch.Context(ctx, ch.WithSettings(ch.Settings(plan.Settings)))
	stmts := []string{CreateDatabase(db), createMigrationsTable(db)}
	stmts = append(stmts, plan.Migrations[0].Statements...)
	stmts = append(stmts,
		fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name, applied_at) SELECT 1, 'tables', now()", db),
		fmt.Sprintf("INSERT INTO %s.alerts (alert_id, fired_at, resolved_at, rule, severity, host, product, value, threshold, summary, version) "+
			"SELECT 'old1', toDateTime('2026-11-20 10:00:00', 'UTC'), toDateTime(0, 'UTC'), 'isode_critical', 'critical', 'mx1', 'isode', 1, 1, 'before 0003', 1", db),
		// As if a run died after its first ALTER of 0003.
		fmt.Sprintf("ALTER TABLE %s.alerts ADD COLUMN code %s AFTER rule", db, map[bool]string{true: "LowCardinality(String)", false: "String"}[plan.Features.LowCardinality]))
	for _, q := range stmts {
		if err := conn.Exec(sctx, q); err != nil {
			t.Fatalf("%s: %v", firstLine(q), err)
		}
	}
	if _, err := Check(ctx, conn, db); !errors.Is(err, ErrSchemaOlder) {
		t.Fatalf("Check at version 1: want ErrSchemaOlder, got %v", err)
	}
	res, err := Migrate(ctx, conn, Options{Database: db})
	if err != nil {
		t.Fatalf("upgrade from 0001 with code already added: %v", err)
	}
	if res.Before != 1 || len(res.Applied) == 0 || res.Applied[len(res.Applied)-1] != Latest() {
		t.Fatalf("upgrade: %+v", res)
	}
	if _, err := Check(ctx, conn, db); err != nil {
		t.Fatalf("Check after upgrade: %v", err)
	}
	var (
		code, session, example string
		count                  uint64
		same                   uint8
	)
	q := "SELECT code, count, session_id, example, last_seen = fired_at FROM " + db + ".alerts FINAL WHERE alert_id = 'old1'"
	if err := conn.QueryRow(ctx, q).Scan(&code, &count, &session, &example, &same); err != nil {
		t.Fatal(err)
	}
	if code != "" || count != 1 || session != "" || example != "" || same != 1 {
		t.Errorf("pre-0003 row reads code=%q count=%d session=%q example=%q last_seen=fired_at:%d", code, count, session, example, same)
	}

	// A later version recorded without an earlier one: Check must not call that current.
	gap := db + "_gap"
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+gap) })
	for _, q := range []string{CreateDatabase(gap), createMigrationsTable(gap),
		fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name, applied_at) SELECT %d, 'latest', now()", gap, Latest())} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Check(ctx, conn, gap); !errors.Is(err, ErrSchemaOlder) || !strings.Contains(err.Error(), "not applied") {
		t.Fatalf("Check with version 1 missing: want ErrSchemaOlder naming it, got %v", err)
	}
}
