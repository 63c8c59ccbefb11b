// Package grafanasql reads mxtrail's Grafana dashboard JSON and expands a panel's SQL the way
// Grafana and the official ClickHouse data source plugin (grafana-clickhouse-datasource v4)
// would: dashboard variables first ($var, ${var}, ${var:sqlstring}, ${var:singlequote},
// ${var:raw}), then the plugin's macros ($__timeFilter(col), $__fromTime, $__interval_s...).
// The tests use it to execute every panel on real servers.
package grafanasql

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ClickHouseType and PrometheusType are the data source plugin ids the dashboards use.
const (
	ClickHouseType = "grafana-clickhouse-datasource"
	PrometheusType = "prometheus"
)

// DataSource is a panel's or target's data source reference.
type DataSource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	DataSource *DataSource `json:"datasource"`
	RawSQL     string      `json:"rawSql"`
	Expr       string      `json:"expr"`
	QueryType  string      `json:"queryType"`
	Format     *int        `json:"format"`
}

// Panel is one dashboard panel (rows with nested panels are flattened by Panels).
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	DataSource *DataSource `json:"datasource"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"`
}

// Variable is one template variable.
type Variable struct {
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Query      json.RawMessage `json:"query"`
	DataSource *DataSource     `json:"datasource"`
}

// QueryText returns a query variable's SQL (the query field is a string for the ClickHouse plugin).
func (v Variable) QueryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	return ""
}

// Dashboard is the part of the dashboard model the tests check.
type Dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Parse decodes a dashboard JSON file.
func Parse(b []byte) (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode dashboard json: %w", err)
	}
	return &d, nil
}

// AllPanels returns every panel, nested row panels included.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func(ps []Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Variable returns the template variable called name.
func (d *Dashboard) Variable(name string) (Variable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return Variable{}, false
}

// Range is what Grafana sends with a query: the time range and the interval it chose.
type Range struct {
	From, To time.Time
	Interval time.Duration
}

var (
	// $name, ${name} and ${name:format}; $__ names are Grafana's and the plugin's own.
	varRE   = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
	macroRE = regexp.MustCompile(`\$__([A-Za-z_]+)(\(([^()]*)\))?`)
)

// Builtin reports whether name is a Grafana global variable or a plugin macro, not a
// dashboard variable.
func Builtin(name string) bool { return strings.HasPrefix(name, "__") }

// VariableRefs returns the dashboard variables text refers to (built-ins excluded), sorted.
func VariableRefs(text string) []string {
	seen := map[string]bool{}
	for _, m := range varRE.FindAllStringSubmatch(text, -1) {
		name := m[1]
		if name == "" {
			name = m[3]
		}
		if !Builtin(name) {
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ExpandVariables substitutes dashboard variables as Grafana does for a single value.
func ExpandVariables(sql string, vars map[string]string) (string, error) {
	var problems []string
	out := varRE.ReplaceAllStringFunc(sql, func(m string) string {
		sm := varRE.FindStringSubmatch(m)
		name, format := sm[1], sm[2]
		if name == "" {
			name = sm[3]
		}
		if Builtin(name) {
			return m
		}
		v, ok := vars[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("no value for variable %q", name))
			return m
		}
		switch format {
		case "", "raw":
			return v
		case "singlequote":
			return "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
		case "sqlstring":
			return "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		problems = append(problems, fmt.Sprintf("variable %q: format %q is not supported", name, format))
		return m
	})
	if len(problems) > 0 {
		return "", fmt.Errorf("expand variables: %s", strings.Join(problems, "; "))
	}
	return out, nil
}

// ExpandMacros expands the ClickHouse plugin's macros exactly as its pkg/macros does.
// $__timeInterval is rejected: it expands to toStartOfInterval, which ClickHouse 18.16 lacks;
// the dashboards bucket with intDiv on $__interval_s instead.
func ExpandMacros(sql string, r Range) (string, error) {
	dt := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	dt64 := func(t time.Time) string { return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli()) }
	date := func(t time.Time) string { return fmt.Sprintf("toDate('%s')", t.UTC().Format("2006-01-02")) }
	var problems []string
	out := macroRE.ReplaceAllStringFunc(sql, func(m string) string {
		sm := macroRE.FindStringSubmatch(m)
		name, hasArgs, args := sm[1], sm[2] != "", strings.TrimSpace(sm[3])
		one := func() string {
			if !hasArgs || args == "" || strings.Contains(args, ",") {
				problems = append(problems, fmt.Sprintf("macro $__%s wants one argument, got %q", name, args))
			}
			return args
		}
		switch name {
		case "timeFilter":
			c := one()
			return fmt.Sprintf("%s >= %s AND %s <= %s", c, dt(r.From), c, dt(r.To))
		case "timeFilter_ms":
			c := one()
			return fmt.Sprintf("%s >= %s AND %s <= %s", c, dt64(r.From), c, dt64(r.To))
		case "dateFilter":
			c := one()
			return fmt.Sprintf("%s >= %s AND %s <= %s", c, date(r.From), c, date(r.To))
		case "fromTime":
			return dt(r.From) + sm[2]
		case "toTime":
			return dt(r.To) + sm[2]
		case "interval_s":
			return fmt.Sprintf("%d", int(math.Max(r.Interval.Seconds(), 1))) + sm[2]
		case "rate_interval", "interval", "range", "range_s":
			problems = append(problems, fmt.Sprintf("$__%s is a Prometheus-side variable, not a ClickHouse macro", name))
			return m
		case "timeInterval", "timeInterval_ms":
			problems = append(problems, fmt.Sprintf("$__%s expands to toStartOfInterval, which ClickHouse 18.16 lacks; bucket with intDiv(toUInt32(col), $__interval_s)", name))
			return m
		}
		problems = append(problems, fmt.Sprintf("unknown macro $__%s", name))
		return m
	})
	if len(problems) > 0 {
		return "", fmt.Errorf("expand macros: %s", strings.Join(problems, "; "))
	}
	return out, nil
}

// Expand expands variables, then macros.
func Expand(sql string, vars map[string]string, r Range) (string, error) {
	s, err := ExpandVariables(sql, vars)
	if err != nil {
		return "", err
	}
	return ExpandMacros(s, r)
}
