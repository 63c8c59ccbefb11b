package query_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/dashboards/internal/testfleet"
	"github.com/mxtrail/mxtrail/dashboards/query"
	"github.com/mxtrail/mxtrail/internal/testenv"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
)

// table is a result as text, the common ground of the native driver and chdb's TSV.
type table struct {
	cols []string
	rows [][]string
}

func (tb table) col(t *testing.T, name string) int {
	t.Helper()
	for i, c := range tb.cols {
		if c == name {
			return i
		}
	}
	t.Fatalf("no column %q in %v", name, tb.cols)
	return -1
}

func (tb table) sum(t *testing.T, name string) int {
	t.Helper()
	i, n := tb.col(t, name), 0
	for _, r := range tb.rows {
		v, err := strconv.Atoi(r[i])
		if err != nil {
			t.Fatalf("column %s: %q is not a number", name, r[i])
		}
		n += v
	}
	return n
}

func paramValues(tr testfleet.Truth) map[string]string {
	return map[string]string{
		"ip": testfleet.Offender, "sender": tr.TraceSender, "recipient": tr.TraceRecipient,
		"session_id": tr.TraceSession, "host": testfleet.Hosts[0].Name, "limit": "20",
		"min_hosts": strconv.Itoa(tr.OffenderHosts),
		"from":      testfleet.T0.Format("2006-01-02 15:04:05"), "to": testfleet.T0.Add(testfleet.Span).Format("2006-01-02 15:04:05"),
	}
}

// checkTruth asserts each saved query's answer against the generator's ground truth.
func checkTruth(t *testing.T, server string, f *testfleet.Fleet, res map[string]table) {
	tr := f.Truth
	for name, tb := range res {
		if len(tb.rows) == 0 {
			t.Errorf("%s: query %s returned no rows", server, name)
		}
	}
	ip := res["ip"]
	if got := ip.sum(t, "sessions"); got != tr.OffenderTotal {
		t.Errorf("%s: ip: %d sessions, want %d", server, got, tr.OffenderTotal)
	}
	if len(ip.rows) != tr.OffenderHosts {
		t.Errorf("%s: ip: %d host/outcome rows, want %d (one DENIED_RBL row per host)", server, len(ip.rows), tr.OffenderHosts)
	}
	if got := res["sender"].sum(t, "sessions"); got != tr.SenderSessions {
		t.Errorf("%s: sender %s: %d sessions, want %d", server, tr.TraceSender, got, tr.SenderSessions)
	}
	if got := res["recipient"].sum(t, "sessions"); got != tr.RecipientHits {
		t.Errorf("%s: recipient %s: %d, want %d", server, tr.TraceRecipient, got, tr.RecipientHits)
	}
	s := res["session"]
	if len(s.rows) != 1+tr.TraceEvents || s.rows[0][s.col(t, "kind")] != "session" {
		t.Errorf("%s: session: rows %v, want the session then %d lines", server, s.rows, tr.TraceEvents)
	}
	top := res["top-offenders"]
	t.Logf("%s: top-offenders %v / first row %v; session rows %d", server, top.cols, top.rows[0], len(s.rows))
	if len(top.rows) != 20 || top.rows[0][top.col(t, "client")] != testfleet.Offender ||
		top.rows[0][top.col(t, "refused")] != strconv.Itoa(tr.OffenderTotal) || top.rows[0][top.col(t, "hosts")] != strconv.Itoa(tr.OffenderHosts) {
		t.Errorf("%s: top-offenders: first row %v of %d, want %s with %d refused on %d hosts", server, top.rows[0], len(top.rows), testfleet.Offender, tr.OffenderTotal, tr.OffenderHosts)
	}
	// The offender is refused on every host it touched; the threshold is that many hosts.
	many := res["ip-denied-many-hosts"]
	if r := many.rows[0]; r[many.col(t, "client")] != testfleet.Offender || r[many.col(t, "hosts")] != strconv.Itoa(tr.OffenderHosts) ||
		r[many.col(t, "refused")] != strconv.Itoa(tr.OffenderTotal) || r[many.col(t, "top_outcome")] != "DENIED_RBL" {
		t.Errorf("%s: ip-denied-many-hosts: first row %v, want %s refused %d times on %d hosts (DENIED_RBL)", server, r, testfleet.Offender, tr.OffenderTotal, tr.OffenderHosts)
	}
	for _, r := range many.rows {
		if n, _ := strconv.Atoi(r[many.col(t, "hosts")]); n < tr.OffenderHosts {
			t.Errorf("%s: ip-denied-many-hosts lists %v below min_hosts=%d", server, r, tr.OffenderHosts)
		}
	}
	hs := res["host-summary"]
	want := tr.PerHostOutcome[testfleet.Hosts[0].Name]
	got := map[string]int{}
	for _, r := range hs.rows {
		n, _ := strconv.Atoi(r[hs.col(t, "sessions")])
		got[r[hs.col(t, "outcome")]] = n
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: host-summary per outcome %v, want %v", server, got, want)
	}
}

func TestSavedQueriesIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := testfleet.Generate(7, 3000)
	all, err := query.All()
	if err != nil {
		t.Fatal(err)
	}
	vals := paramValues(f.Truth)
	bind := func(q query.Query) map[string]string {
		m := map[string]string{}
		for _, p := range q.Params {
			m[p.Name] = vals[p.Name]
		}
		return m
	}

	t.Run("clickhouse-18.16", func(t *testing.T) {
		admin, err := chsink.Open(ctx, chsink.ConnConfig{Addrs: addrs, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		db := testenv.ScratchDatabase(t, admin, "mxtrail_dashq")
		if err := testfleet.Load(ctx, admin, db, f); err != nil {
			t.Fatal(err)
		}
		conn, err := query.Open(ctx, chsink.ConnConfig{Addrs: addrs, DialTimeout: 5 * time.Second}, db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Hostile values come back exactly as given: bound, never pasted into the SQL.
		echo, err := query.Parse("echo", "-- purpose: p\n-- param: v String required x\n-- param: t DateTime required x\n"+
			"-- param: n UInt64 required x\n-- example: e\nSELECT {v:String} AS v, toUInt32({t:DateTime}) AS t, {n:UInt64} AS n, length({v:String}) AS l")
		if err != nil {
			t.Fatal(err)
		}
		hostile := `x' OR 1=1 -- \' @v {v:String} ` + "\n\t;"
		r, err := query.Run(ctx, conn, echo, map[string]string{"v": hostile, "t": "2026-11-20 01:02:03", "n": "18446744073709551615"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Rows) != 1 || r.Rows[0][0] != hostile || r.Rows[0][1] != uint32(1795136523) || r.Rows[0][2] != uint64(18446744073709551615) || r.Rows[0][3] != uint64(len(hostile)) {
			t.Errorf("echo of bound values: %#v, want %q", r.Rows, hostile)
		}
		res := map[string]table{}
		for _, q := range all {
			r, err := query.Run(ctx, conn, q, bind(q), time.Now())
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			tb := table{cols: r.Columns}
			for _, row := range r.Rows {
				var cells []string
				for _, v := range row {
					cells = append(cells, query.Text(v))
				}
				tb.rows = append(tb.rows, cells)
			}
			res[q.Name] = tb
		}
		if !t.Failed() {
			checkTruth(t, "18.16", f, res)
		}
	})

	t.Run("chdb", func(t *testing.T) {
		var stmts []testfleet.Statement
		for _, q := range all {
			ps := map[string]string{}
			for _, p := range q.Params {
				if p.Type == "String" || p.Type == "DateTime" {
					ps[p.Name] = testfleet.Lit(vals[p.Name])
				} else {
					ps[p.Name] = vals[p.Name]
				}
			}
			stmts = append(stmts, testfleet.Statement{Name: q.Name, SQL: q.SQL, Params: ps})
		}
		out, err := testfleet.RunChdb(t, "mxtrail_dashq", f, stmts)
		if err != nil {
			t.Fatal(err)
		}
		res := map[string]table{}
		for _, q := range all {
			rows, ok := out[q.Name]
			if !ok || len(rows) == 0 {
				t.Errorf("chdb: query %s produced no output", q.Name)
				continue
			}
			res[q.Name] = table{cols: rows[0], rows: rows[1:]}
		}
		if !t.Failed() {
			// chdb prints IPv6 columns in full; the queries strip the IPv4-mapped prefix.
			for _, r := range res["top-offenders"].rows {
				if strings.HasPrefix(r[0], "::ffff:") {
					t.Errorf("chdb: top-offenders client %q kept its ::ffff: prefix", r[0])
				}
			}
			checkTruth(t, "chdb", f, res)
		}
	})
}
