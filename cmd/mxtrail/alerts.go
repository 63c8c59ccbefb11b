package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mxtrail/mxtrail/dashboards/query"
	"github.com/mxtrail/mxtrail/internal/config"
)

func init() {
	register("alerts", "print the open alerts from ClickHouse (mxtrail alerts --since 1h)", runAlerts)
}

var dbNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// alertRow is the latest version of one alert record.
type alertRow struct {
	AlertID, Rule, Code, Severity, Host, Product, SessionID, Example, Summary string
	FiredAt, LastSeen, ResolvedAt                                             time.Time
	Count                                                                     uint64
	Value, Threshold                                                          float64
}

func (a alertRow) open() bool { return a.ResolvedAt.Unix() <= 0 }

// alertsSQL reads the latest version of every alert seen since the bound time (argMax by
// version, grouped by alert_id: exact before merges, on 18.16 and on current servers alike).
// last_seen only grows with the version, so filtering rows on it before grouping never drops
// an alert's latest version. Severity ranks by the syslog order, most severe first.
const alertsSQL = `SELECT alert_id, l_rule, l_code, l_severity, l_host, l_product, l_fired_at, l_last_seen, l_resolved_at,
    l_count, l_value, l_threshold, l_session_id, l_example, l_summary
FROM (
    SELECT alert_id,
        argMax(rule, version) AS l_rule, argMax(code, version) AS l_code, argMax(severity, version) AS l_severity,
        argMax(host, version) AS l_host, argMax(product, version) AS l_product,
        argMax(fired_at, version) AS l_fired_at, argMax(last_seen, version) AS l_last_seen,
        argMax(resolved_at, version) AS l_resolved_at, argMax(count, version) AS l_count,
        argMax(value, version) AS l_value, argMax(threshold, version) AS l_threshold,
        argMax(session_id, version) AS l_session_id, argMax(example, version) AS l_example,
        argMax(summary, version) AS l_summary
    FROM %s.alerts
    WHERE last_seen >= toDateTime(?, 'UTC')
    GROUP BY alert_id
)
WHERE %s
ORDER BY toUInt32(l_resolved_at) != 0,
    indexOf(['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'], l_severity) = 0,
    indexOf(['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'], l_severity),
    l_last_seen DESC, alert_id
LIMIT %d`

// queryAlerts returns the alerts of database seen since since (open ones only unless all),
// open first, most severe first, most recent first.
func queryAlerts(ctx context.Context, conn driver.Conn, database string, since time.Time, all bool, limit int) ([]alertRow, error) {
	if !dbNameRE.MatchString(database) {
		return nil, fmt.Errorf("database %q is not a plain identifier", database)
	}
	filter := "toUInt32(l_resolved_at) = 0"
	if all {
		filter = "1"
	}
	q := fmt.Sprintf(alertsSQL, database, filter, limit)
	rows, err := conn.Query(ctx, q, since.Unix())
	if err != nil {
		var ex *clickhouse.Exception
		if errors.As(err, &ex) && (ex.Code == 47 || ex.Code == 60 || ex.Code == 81) { // unknown column, table, database
			return nil, fmt.Errorf("read %s.alerts: %w (is the database migrated? run mxtrail migrate)", database, err)
		}
		return nil, fmt.Errorf("read %s.alerts: %w", database, err)
	}
	defer rows.Close()
	var out []alertRow
	for rows.Next() {
		var a alertRow
		if err := rows.Scan(&a.AlertID, &a.Rule, &a.Code, &a.Severity, &a.Host, &a.Product, &a.FiredAt, &a.LastSeen,
			&a.ResolvedAt, &a.Count, &a.Value, &a.Threshold, &a.SessionID, &a.Example, &a.Summary); err != nil {
			return nil, fmt.Errorf("read %s.alerts: %w", database, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.alerts: %w", database, err)
	}
	return out, nil
}

// alertsResult lays the alerts out for query.Result's writers: the table keeps to what fits a
// terminal (the example cut to 120 bytes), json carries every field.
func alertsResult(as []alertRow, format string) *query.Result {
	r := &query.Result{}
	if format == "json" {
		r.Columns = []string{"alert_id", "state", "severity", "rule", "code", "host", "product", "count", "fired_at",
			"last_seen", "resolved_at", "value", "threshold", "session_id", "summary", "example"}
	} else {
		r.Columns = []string{"state", "severity", "rule", "code", "host", "product", "count", "fired_at", "last_seen", "summary", "example", "alert_id"}
	}
	for _, a := range as {
		state := "open"
		if !a.open() {
			state = "resolved"
		}
		if format == "json" {
			var resolved any
			if !a.open() {
				resolved = a.ResolvedAt
			}
			r.Rows = append(r.Rows, []any{a.AlertID, state, a.Severity, a.Rule, a.Code, a.Host, a.Product, a.Count,
				a.FiredAt, a.LastSeen, resolved, a.Value, a.Threshold, a.SessionID, a.Summary, a.Example})
			continue
		}
		ex := a.Example
		if len(ex) > 120 {
			ex = ex[:117] + "..."
		}
		r.Rows = append(r.Rows, []any{state, a.Severity, a.Rule, a.Code, a.Host, a.Product, a.Count,
			a.FiredAt.UTC().Format("2006-01-02 15:04:05"), a.LastSeen.UTC().Format("2006-01-02 15:04:05"), a.Summary, ex, a.AlertID})
	}
	return r
}

func runAlerts(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("alerts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.Duration("since", time.Hour, "alerts seen (last_seen, in event time) within this long before now")
	all := fs.Bool("all", false, "include alerts already resolved")
	format := fs.String("format", "table", "output format: table or json (one object per alert)")
	limit := fs.Int("limit", 500, "print at most this many alerts")
	cfgPath := fs.String("config", "", "configuration file (default: defaults and MXTRAIL_* environment)")
	timeout := fs.Duration("timeout", time.Minute, "give up on the query after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mxtrail alerts [--since 1h] [--all] [--format table|json] [--limit N] [--config FILE]")
		fmt.Fprintln(stderr, "Prints the open alerts (latest version of each alert record in ClickHouse), most severe first.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if *since <= 0 {
		problems = append(problems, fmt.Sprintf("--since %v: want a positive duration such as 1h or 30m", *since))
	}
	if *format != "table" && *format != "json" {
		problems = append(problems, fmt.Sprintf("--format %q: want table or json", *format))
	}
	if *limit <= 0 {
		problems = append(problems, fmt.Sprintf("--limit %d: want a positive number", *limit))
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "mxtrail alerts: %s\n", strings.Join(problems, "; "))
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail alerts: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := query.Open(ctx, connConfig(cfg), cfg.ClickHouse.Database)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail alerts: %v\n", err)
		return 1
	}
	defer conn.Close()
	as, err := queryAlerts(ctx, conn, cfg.ClickHouse.Database, time.Now().Add(-*since), *all, *limit)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail alerts: %v\n", err)
		return 1
	}
	if err := alertsResult(as, *format).Write(stdout, *format); err != nil {
		fmt.Fprintf(stderr, "mxtrail alerts: %v\n", err)
		return 1
	}
	return 0
}
