package dashboards_test

import (
	"io/fs"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/dashboards"
	"github.com/mxtrail/mxtrail/dashboards/internal/grafanasql"
	"github.com/mxtrail/mxtrail/dashboards/internal/testfleet"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
	"github.com/prometheus/client_golang/prometheus"
)

type dash struct {
	file string
	d    *grafanasql.Dashboard
}

func loadDashboards(t *testing.T) []dash {
	t.Helper()
	files, err := fs.Glob(dashboards.Grafana, "grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards embedded: %v", err)
	}
	var out []dash
	for _, f := range files {
		b, err := dashboards.Grafana.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := grafanasql.Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, dash{f, d})
	}
	return out
}

// Metrics the pipeline-health dashboard may query. The sink's come from its registered
// collectors; the others are the shipper's (ingest/produce, ingest/tail) and the parser's
// (enrich/parse) as they define them.
var otherStageMetrics = map[string]bool{
	"mxtrail_ship_read_lines_total": true, "mxtrail_ship_acked_lines_total": true,
	"mxtrail_ship_lag_bytes": true, "mxtrail_ship_send_errors_total": true,
	"mxtrail_parse_lines_total": true, "mxtrail_parse_unparsed_total": true,
}

func sinkMetricNames(t *testing.T) map[string]bool {
	m := chsink.NewMetrics(nil)
	names := map[string]bool{}
	fqRE := regexp.MustCompile(`fqName: "([a-z0-9_]+)"`)
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		ch := make(chan *prometheus.Desc, 4)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if sm := fqRE.FindStringSubmatch(d.String()); sm != nil {
				names[sm[1]] = true
			}
		}
	}
	if !names["mxtrail_sink_insert_seconds"] {
		t.Fatalf("could not read the sink's metric names: %v", names)
	}
	return names
}

var (
	hostLiteralRE = regexp.MustCompile(`(?i)\bhost\s*(=|!=|IN|LIKE)\s*\(?\s*'`)
	metricRE      = regexp.MustCompile(`\bmxtrail_[a-z0-9_]+`)
	// A read of a ReplacingMergeTree table must collapse replays: FINAL right after the name.
	replacingRE = regexp.MustCompile(`(?i)\bFROM\s+(sessions|events|alerts|deadletter)\b(\s+FINAL\b)?`)
	dsVarRE     = regexp.MustCompile(`^\$\{(ds_[a-z]+)\}$`)
)

// TestDashboardLint checks the dashboard JSON without a server: unique uids and panel ids,
// a data source (by variable, never a hard-coded uid) and a query on every panel, every
// variable a query uses defined, no hard-coded host names, the time range respected,
// replays collapsed, macros that expand, and Prometheus metrics that exist.
func TestDashboardLint(t *testing.T) {
	sinkNames := sinkMetricNames(t)
	uids := map[string]string{}
	hostNames := []string{}
	for _, h := range testfleet.Hosts {
		hostNames = append(hostNames, h.Name)
	}
	for _, dd := range loadDashboards(t) {
		d, file := dd.d, dd.file
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid %q, title %q: want both", file, d.UID, d.Title)
		}
		if prev, dup := uids[d.UID]; dup {
			t.Errorf("%s: uid %q also used by %s", file, d.UID, prev)
		}
		uids[d.UID] = file
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				if v.DataSource == nil || !dsVarRE.MatchString(v.DataSource.UID) {
					t.Errorf("%s: variable %s: data source %+v, want a ${ds_...} variable", file, v.Name, v.DataSource)
				}
				checkSQL(t, file+": variable "+v.Name, v.QueryText(), d, hostNames)
			}
		}
		ids := map[int]bool{}
		panels := d.AllPanels()
		if len(panels) == 0 {
			t.Errorf("%s: no panels", file)
		}
		for _, p := range panels {
			where := file + ": panel " + p.Title
			if p.ID <= 0 || ids[p.ID] {
				t.Errorf("%s: id %d is missing or not unique", where, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			if p.DataSource == nil || p.DataSource.Type == "" {
				t.Errorf("%s: no data source", where)
				continue
			}
			checkDataSource(t, where, p.DataSource, d)
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			for _, tg := range p.Targets {
				if tg.DataSource != nil {
					checkDataSource(t, where, tg.DataSource, d)
					if *tg.DataSource != *p.DataSource {
						t.Errorf("%s: target %s data source %+v differs from the panel's %+v", where, tg.RefID, tg.DataSource, p.DataSource)
					}
				}
				switch p.DataSource.Type {
				case grafanasql.ClickHouseType:
					if strings.TrimSpace(tg.RawSQL) == "" {
						t.Errorf("%s: target %s has no rawSql", where, tg.RefID)
						continue
					}
					if tg.QueryType != "table" && tg.QueryType != "timeseries" {
						t.Errorf("%s: queryType %q", where, tg.QueryType)
					}
					if p.Type == "timeseries" && tg.QueryType != "timeseries" {
						t.Errorf("%s: a time series panel needs queryType timeseries", where)
					}
					checkSQL(t, where, tg.RawSQL, d, hostNames)
				case grafanasql.PrometheusType:
					if strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("%s: target %s has no expr", where, tg.RefID)
					}
					for _, m := range metricRE.FindAllString(tg.Expr, -1) {
						base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
						if !sinkNames[m] && !sinkNames[base] && !otherStageMetrics[m] {
							t.Errorf("%s: metric %s is exported by no stage", where, m)
						}
					}
				default:
					t.Errorf("%s: data source type %q", where, p.DataSource.Type)
				}
			}
		}
	}
}

func checkDataSource(t *testing.T, where string, ds *grafanasql.DataSource, d *grafanasql.Dashboard) {
	t.Helper()
	m := dsVarRE.FindStringSubmatch(ds.UID)
	if m == nil {
		t.Errorf("%s: data source uid %q is hard-coded; use ${ds_clickhouse} or ${ds_prometheus}", where, ds.UID)
		return
	}
	v, ok := d.Variable(m[1])
	if !ok || v.Type != "datasource" || v.QueryText() != ds.Type {
		t.Errorf("%s: data source variable %s is not a %s datasource variable", where, m[1], ds.Type)
	}
}

func checkSQL(t *testing.T, where, sql string, d *grafanasql.Dashboard, hostNames []string) {
	t.Helper()
	for _, name := range grafanasql.VariableRefs(sql) {
		if _, ok := d.Variable(name); !ok {
			t.Errorf("%s: uses variable $%s, which the dashboard does not define", where, name)
		}
	}
	if hostLiteralRE.MatchString(sql) {
		t.Errorf("%s: compares host with a literal; use the $host variable", where)
	}
	for _, h := range hostNames {
		if strings.Contains(sql, h) {
			t.Errorf("%s: hard-coded host name %s", where, h)
		}
	}
	if !strings.Contains(sql, "$__timeFilter(") && !strings.Contains(sql, "$__toTime") {
		t.Errorf("%s: ignores the dashboard time range", where)
	}
	for _, m := range replacingRE.FindAllStringSubmatch(sql, -1) {
		if m[2] == "" {
			t.Errorf("%s: reads %s without FINAL, so replays would count twice", where, m[1])
		}
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = "x"
	}
	if _, err := grafanasql.Expand(sql, vars, grafanasql.Range{From: testfleet.T0, To: testfleet.T0.Add(time.Hour), Interval: time.Minute}); err != nil {
		t.Errorf("%s: %v", where, err)
	}
}

func TestExpand(t *testing.T) {
	r := grafanasql.Range{From: time.Unix(1795132800, 0), To: time.Unix(1795143600, 0), Interval: 30 * time.Second}
	got, err := grafanasql.Expand("SELECT intDiv(toUInt32(t), $__interval_s) FROM s WHERE $__timeFilter(start_time) AND host = ${host:sqlstring} AND p = '$product' AND x <= $__toTime AND d >= $__fromTime AND $__dateFilter(day)",
		map[string]string{"host": "o'brien", "product": "smtpf"}, r)
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT intDiv(toUInt32(t), 30) FROM s WHERE start_time >= toDateTime(1795132800) AND start_time <= toDateTime(1795143600) AND host = 'o''brien' AND p = 'smtpf' AND x <= toDateTime(1795143600) AND d >= toDateTime(1795132800) AND day >= toDate('2026-11-20') AND day <= toDate('2026-11-20')"
	if got != want {
		t.Errorf("Expand:\n got %s\nwant %s", got, want)
	}
	for sql, wantErr := range map[string]string{
		"SELECT $__timeInterval(t)":       "toStartOfInterval",
		"SELECT $__nope":                  "unknown macro $__nope",
		"SELECT ${missing}":               `no value for variable "missing"`,
		"SELECT ${host:csv}":              `format "csv" is not supported`,
		"WHERE $__timeFilter(a, b)":       "wants one argument",
		"rate(x[$__rate_interval]) > 0":   "Prometheus-side",
		"SELECT 1 WHERE $__timeFilter()":  "wants one argument",
		"SELECT $__timeFilter_ms(t) AND ": "",
	} {
		_, err := grafanasql.Expand(sql, map[string]string{"host": "h"}, r)
		if wantErr == "" {
			if err != nil {
				t.Errorf("%q: %v", sql, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want %q", sql, err, wantErr)
		}
	}
	refs := grafanasql.VariableRefs("a = $ip AND b = ${sender:sqlstring} AND c = ${ip} AND $__interval_s")
	sort.Strings(refs)
	if strings.Join(refs, ",") != "ip,sender" {
		t.Errorf("VariableRefs = %v", refs)
	}
}
