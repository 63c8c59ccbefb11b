package dashboards_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/dashboards/internal/grafanasql"
	"github.com/mxtrail/mxtrail/dashboards/internal/testfleet"
	"github.com/mxtrail/mxtrail/dashboards/query"
	"github.com/mxtrail/mxtrail/internal/testenv"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
)

// stmt is one expanded ClickHouse query from a dashboard: a panel target or a variable query.
type stmt struct {
	key        string // uid#id or uid$variable
	uid, title string
	panelType  string
	sql        string
}

// testRange is the time range and interval the panels are expanded with: the generated
// window, at five-minute buckets.
var testRange = grafanasql.Range{From: testfleet.T0, To: testfleet.T0.Add(testfleet.Span), Interval: 5 * time.Minute}

func expandAll(t *testing.T, tr testfleet.Truth) []stmt {
	t.Helper()
	vars := map[string]string{
		"ds_clickhouse": "unused", "ds_prometheus": "unused",
		"host": testfleet.Hosts[0].Name, "product": testfleet.Hosts[0].Product,
		"ip": testfleet.Offender, "sender": tr.TraceSender, "recipient": tr.TraceRecipient,
	}
	var out []stmt
	for _, dd := range loadDashboards(t) {
		d := dd.d
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			sql, err := grafanasql.Expand(v.QueryText(), vars, testRange)
			if err != nil {
				t.Fatalf("%s: variable %s: %v", dd.file, v.Name, err)
			}
			out = append(out, stmt{key: d.UID + "$" + v.Name, uid: d.UID, title: "$" + v.Name, sql: sql})
		}
		for _, p := range d.AllPanels() {
			if p.DataSource == nil || p.DataSource.Type != grafanasql.ClickHouseType {
				continue
			}
			for _, tg := range p.Targets {
				sql, err := grafanasql.Expand(tg.RawSQL, vars, testRange)
				if err != nil {
					t.Fatalf("%s: panel %s: %v", dd.file, p.Title, err)
				}
				out = append(out, stmt{key: fmt.Sprintf("%s#%d%s", d.UID, p.ID, tg.RefID), uid: d.UID, title: p.Title, panelType: p.Type, sql: sql})
			}
		}
	}
	return out
}

type answer struct {
	cols []string
	rows [][]string
}

func (a answer) num(t *testing.T, col string, row int) float64 {
	t.Helper()
	for i, c := range a.cols {
		if c == col {
			v, err := strconv.ParseFloat(a.rows[row][i], 64)
			if err != nil {
				t.Fatalf("column %s row %d: %q is not a number", col, row, a.rows[row][i])
			}
			return v
		}
	}
	t.Fatalf("no column %s in %v", col, a.cols)
	return 0
}

func (a answer) sum(t *testing.T, col string) float64 {
	t.Helper()
	var s float64
	for r := range a.rows {
		s += a.num(t, col, r)
	}
	return s
}

func (a answer) byKey(t *testing.T, key, col string) map[string]int {
	t.Helper()
	k := -1
	for i, c := range a.cols {
		if c == key {
			k = i
		}
	}
	if k < 0 {
		t.Fatalf("no column %s in %v", key, a.cols)
	}
	m := map[string]int{}
	for r := range a.rows {
		m[a.rows[r][k]] += int(a.num(t, col, r))
	}
	return m
}

// checkPanels asserts every statement returned rows, and a handful against the ground truth.
func checkPanels(t *testing.T, server string, stmts []stmt, res map[string]answer, f *testfleet.Fleet) {
	tr := f.Truth
	find := func(uid, title, typ string) answer {
		t.Helper()
		for _, s := range stmts {
			if s.uid == uid && s.title == title && (typ == "" || s.panelType == typ) {
				return res[s.key]
			}
		}
		t.Fatalf("no panel %q (%s) in %s", title, typ, uid)
		return answer{}
	}
	for _, s := range stmts {
		if len(res[s.key].rows) == 0 {
			t.Errorf("%s: %s %q returned no rows:\n%s", server, s.uid, s.title, s.sql)
		}
	}
	if t.Failed() {
		return
	}
	eq := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s: %s = %v, want %v", server, what, got, want)
		}
	}
	eq("fleet sessions", find("mxtrail-fleet", "Sessions", "stat").num(t, "sessions", 0), float64(tr.Sessions))
	eq("fleet recipients", find("mxtrail-fleet", "Recipients", "stat").num(t, "recipients", 0), float64(tr.Recipients))
	eq("hosts reporting", find("mxtrail-fleet", "Hosts reporting", "stat").num(t, "hosts", 0), float64(len(testfleet.Hosts)))
	// Per-minute rates times the bucket length in minutes add up to the sessions.
	eq("sessions per minute x minutes", find("mxtrail-fleet", "Sessions per minute by outcome", "").sum(t, "sessions_per_minute")*testRange.Interval.Minutes(), float64(tr.Sessions))
	eq("recipients per minute x minutes", find("mxtrail-fleet", "Recipients per minute by outcome", "").sum(t, "recipients_per_minute")*testRange.Interval.Minutes(), float64(tr.Recipients))
	g := find("mxtrail-filters", "Greylisting effectiveness", "")
	eq("greylisted pairs", g.num(t, "greylisted_pairs", 0), float64(tr.GreyTriplets))
	eq("greylisted pairs accepted later", g.num(t, "accepted_later", 0), float64(tr.GreyPassed))
	eq("greylisted senders that got through (rows)", float64(len(find("mxtrail-filters", "Greylisted senders that later got through", "").rows)), float64(tr.GreyPassed))
	if got := find("mxtrail-filters", "Hits per DNSBL", "").byKey(t, "dnsbl", "refused_sessions"); fmt.Sprint(got) != fmt.Sprint(tr.DNSBLHits) {
		t.Errorf("%s: hits per DNSBL %v, want %v", server, got, tr.DNSBLHits)
	}
	want := tr.PerHostOutcome[testfleet.Hosts[0].Name]
	if got := find("mxtrail-host", "Outcome mix", "").byKey(t, "outcome", "sessions"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: host drill-down outcome mix %v, want %v", server, got, want)
	}
	eq("open alerts", find("mxtrail-alerts", "Open alerts", "stat").num(t, "open_alerts", 0), float64(tr.OpenAlerts))
	eq("open alerts (table rows)", float64(len(find("mxtrail-alerts", "Open alerts", "table").rows)), float64(tr.OpenAlerts))
	eq("alerts fired", find("mxtrail-alerts", "Fired in range", "").num(t, "fired", 0), float64(tr.Alerts))
	// Repeats raise count on the latest version; FINAL must not add the earlier versions.
	eq("open alert lines", find("mxtrail-alerts", "Open alerts", "table").sum(t, "count"), float64(tr.OpenAlertLines))
	byRule := find("mxtrail-alerts", "Alerts by rule and code", "")
	eq("alerts by rule and code", byRule.sum(t, "alerts"), float64(tr.Alerts))
	eq("alert lines by rule and code", byRule.sum(t, "lines"), float64(tr.AlertLines))
	eq("offender sessions", find("mxtrail-abuse", "Client IP: hosts and outcomes", "").sum(t, "sessions"), float64(tr.OffenderTotal))
	eq("offender sessions listed", float64(len(find("mxtrail-abuse", "Client IP: sessions", "").rows)), float64(tr.OffenderTotal))
	eq("dead letters", find("mxtrail-pipeline", "Dead letters stored, by reason", "").sum(t, "records"), float64(len(f.Poison)))
}

// TestDashboardPanelsIntegration executes every ClickHouse panel and variable query of every
// dashboard, macros and variables expanded, on ClickHouse 18.16 (old-server schema) and on
// chdb (ClickHouse 26.x, modern schema), both loaded with the same generated fleet.
func TestDashboardPanelsIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := testfleet.Generate(11, 3000)
	stmts := expandAll(t, f.Truth)
	if len(stmts) < 50 {
		t.Fatalf("only %d statements found in the dashboards", len(stmts))
	}
	t.Logf("%d panel and variable queries, fleet of %d sessions (%d replayed), %d events", len(stmts), f.Truth.Sessions, f.Truth.ReplayedRecords, len(f.Events))

	t.Run("clickhouse-18.16", func(t *testing.T) {
		admin, err := chsink.Open(ctx, chsink.ConnConfig{Addrs: addrs, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		db := testenv.ScratchDatabase(t, admin, "mxtrail_dash")
		if err := testfleet.Load(ctx, admin, db, f); err != nil {
			t.Fatal(err)
		}
		conn, err := query.Open(ctx, chsink.ConnConfig{Addrs: addrs, DialTimeout: 5 * time.Second}, db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		res := map[string]answer{}
		for _, s := range stmts {
			r, err := query.Run(ctx, conn, query.Query{Name: s.key, SQL: s.sql}, nil, time.Now())
			if err != nil {
				t.Errorf("%s %q: %v\n%s", s.uid, s.title, err, s.sql)
				continue
			}
			a := answer{cols: r.Columns}
			for _, row := range r.Rows {
				var cells []string
				for _, v := range row {
					cells = append(cells, query.Text(v))
				}
				a.rows = append(a.rows, cells)
			}
			res[s.key] = a
		}
		if !t.Failed() {
			checkPanels(t, "18.16", stmts, res, f)
		}
	})

	t.Run("chdb", func(t *testing.T) {
		var cs []testfleet.Statement
		for _, s := range stmts {
			cs = append(cs, testfleet.Statement{Name: s.key, SQL: s.sql})
		}
		out, err := testfleet.RunChdb(t, "mxtrail_dash", f, cs)
		if err != nil {
			t.Fatal(err)
		}
		res := map[string]answer{}
		for _, s := range stmts {
			rows := out[s.key]
			if len(rows) == 0 {
				continue // reported by checkPanels as no rows
			}
			res[s.key] = answer{cols: rows[0], rows: rows[1:]}
		}
		checkPanels(t, "chdb", stmts, res, f)
	})
}
