package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/internal/testenv"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
	"github.com/mxtrail/mxtrail/sink/schema"
)

func TestQueryUsageAndErrors(t *testing.T) {
	code, stdout, _ := run(t, "query", "-list")
	if code != 0 {
		t.Fatalf("query -list: exit %d", code)
	}
	for _, want := range []string{"top-offenders\n", "--param ip=String  (required)", "example: mxtrail query session"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("query -list lacks %q:\n%s", want, stdout)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"query"}, "usage: mxtrail query NAME"},
		{[]string{"query", "nope"}, `no saved query "nope" (have: host-summary, ip,`},
		{[]string{"query", "ip"}, `parameter "ip" is required`},
		{[]string{"query", "ip", "--param", "ip=1.2.3.4", "--param", "from=last week"}, `parameter "from": value "last week" is not a time`},
		{[]string{"query", "ip", "--param", "ip=1", "--param", "ip=2"}, `parameter "ip" given twice`},
		{[]string{"query", "ip", "--param", "ip"}, `"ip": want name=value`},
		{[]string{"query", "ip", "--format", "xml"}, `--format "xml"`},
		{[]string{"query", "top-offenders", "--param", "limit=ten"}, `value "ten" is not a UInt32`},
	} {
		code, _, stderr := run(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// TestQueryCommandIntegration writes three sessions through the sink and reads them back
// with mxtrail query on the local ClickHouse, in every output format.
func TestQueryCommandIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	ctx := context.Background()
	conn, db := scratchDatabase(t, "mxtrail_qcmd")
	res, err := schema.Migrate(ctx, conn, schema.Options{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	f := schema.FeaturesFor(res.Server)
	b := chsink.NewBatch(f, 1<<20)
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i, o := range []record.Outcome{record.DeniedRBL, record.DeniedRBL, record.Allowed} {
		pos := record.Position{Source: "/var/log/maillog", Offset: int64(1000 * i)}
		s := record.Session{Host: "mx1.test.example", Product: "spamdyke", SessionKey: fmt.Sprint(i), StartTime: start.Add(time.Duration(i) * time.Minute),
			EndTime: start.Add(time.Duration(i)*time.Minute + time.Second), ClientIP: "203.0.113.9", HELO: "spam, \"quoted\"",
			MailFrom: "x@bulk.example", Outcome: o, Reason: "zen.spamhaus.org", OutcomeVersion: 1, FirstPos: pos, LastPos: pos}
		s.SessionID = record.NewSessionID(s.Host, s.Product, s.SessionKey, pos)
		b.Add(chsink.KindSessions, &chsink.Message{Topic: "mxtrail.sessions", Offset: int64(i), Value: s.AppendJSON(nil)}, time.Now())
	}
	if err := chsink.NewWriter(conn, db, f, chsink.NewMetrics(nil), 10*time.Millisecond, time.Second).Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MXTRAIL_CLICKHOUSE_ADDR", strings.Join(addrs, ","))
	t.Setenv("MXTRAIL_CLICKHOUSE_DATABASE", db)

	code, stdout, stderr := run(t, "query", "ip", "--param", "ip=203.0.113.9", "--param", "from=now-1d")
	if code != 0 {
		t.Fatalf("query ip: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "host ") || !strings.HasPrefix(lines[2], "mx1.test.example  spamdyke  DENIED_RBL  2 ") ||
		!strings.HasPrefix(lines[3], "mx1.test.example  spamdyke  ALLOWED     1 ") || lines[4] != "(2 rows)" {
		t.Errorf("query ip table:\n%s", stdout)
	}
	code, stdout, stderr = run(t, "query", "top-offenders", "--format", "json", "--param", "from=now-1d")
	if code != 0 || !strings.Contains(stdout, `"client":"203.0.113.9"`) || !strings.Contains(stdout, `"refused":2`) {
		t.Errorf("query top-offenders json: exit %d, %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "query", "--format", "csv", "ip", "--param", "ip=203.0.113.9", "--param", "from=now-1d")
	if code != 0 || !strings.HasPrefix(stdout, "host,product,outcome,sessions,") || !strings.Contains(stdout, `"spam, ""quoted"""`) {
		t.Errorf("query ip csv: exit %d, %q %q", code, stdout, stderr)
	}
	t.Setenv("MXTRAIL_CLICKHOUSE_DATABASE", db+"_missing")
	if code, _, stderr := run(t, "query", "top-offenders"); code != 1 || !strings.Contains(stderr, "mxtrail query:") {
		t.Errorf("missing database: exit %d, %q", code, stderr)
	}
}
