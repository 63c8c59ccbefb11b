package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/mxtrail/mxtrail/enrich/alert"
	"github.com/mxtrail/mxtrail/enrich/stream"
	"github.com/mxtrail/mxtrail/ingest/produce"
	"github.com/mxtrail/mxtrail/ingest/syslog"
	"github.com/mxtrail/mxtrail/ingest/tail"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
)

// descRegistry records the name and variable labels of every metric registered on it.
type descRegistry map[string][]string

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
)

func (r descRegistry) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		s := d.String()
		n := descName.FindStringSubmatch(s)
		if n == nil {
			continue
		}
		var labels []string
		if l := descLabels.FindStringSubmatch(s); l != nil && l[1] != "" {
			for _, v := range strings.Split(l[1], ",") {
				labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(v, "c("), ")"))
			}
		}
		r[n[1]] = labels
	}
	return nil
}

func (r descRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r descRegistry) Unregister(prometheus.Collector) bool { return true }

var (
	selectorRe = regexp.MustCompile(`\b(mxtrail_[a-z0-9_]+)(\{[^}]*\})?`)
	matcherRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	groupingRe = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
)

// TestAlertRulesReadExportedMetrics checks the Prometheus rules in deploy/prometheus/rules
// against the metrics the stages really export (the two halves of the alerting work were
// built apart): every mxtrail_* series a rule reads is registered by some stage, every label a
// selector matches on is one of that metric's labels, and every label a rule groups or joins
// on is carried by a metric of its expression (or is a scrape target label).
func TestAlertRulesReadExportedMetrics(t *testing.T) {
	reg := descRegistry{}
	alert.NewMetrics(reg, 10)
	stream.NewMetrics(reg)
	chsink.NewMetrics(reg)
	produce.NewMetrics(reg)
	tail.NewMetrics(reg)
	syslog.NewMetrics(reg)
	reg["mxtrail_ship_checkpoint_age_seconds"] = nil // a GaugeFunc registered in ship.go
	lookup := func(name string) ([]string, bool) {
		if l, ok := reg[name]; ok {
			return l, true
		}
		for _, sfx := range []string{"_bucket", "_count", "_sum"} {
			if l, ok := reg[strings.TrimSuffix(name, sfx)]; ok && strings.HasSuffix(name, sfx) {
				if sfx == "_bucket" {
					l = append(l[:len(l):len(l)], "le")
				}
				return l, true
			}
		}
		return nil, false
	}

	files, err := filepath.Glob("../../deploy/prometheus/rules/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rules files (%v)", err)
	}
	targetLabels := map[string]bool{"job": true, "instance": true}
	rules := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []struct {
				Rules []struct {
					Alert  string `yaml:"alert"`
					Record string `yaml:"record"`
					Expr   string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				rules++
				name := r.Alert + r.Record
				expr := stripComments(r.Expr)
				carried := map[string]bool{}
				for _, m := range selectorRe.FindAllStringSubmatch(expr, -1) {
					labels, ok := lookup(m[1])
					if !ok {
						t.Errorf("%s: rule %s reads %s, which no stage exports", filepath.Base(f), name, m[1])
						continue
					}
					for _, l := range labels {
						carried[l] = true
					}
					for _, mm := range matcherRe.FindAllStringSubmatch(m[2], -1) {
						if !contains(labels, mm[1]) && !targetLabels[mm[1]] {
							t.Errorf("%s: rule %s matches %s on label %q; its labels are %v", filepath.Base(f), name, m[1], mm[1], labels)
						}
					}
				}
				for _, gm := range groupingRe.FindAllStringSubmatch(expr, -1) {
					for _, l := range strings.Split(gm[2], ",") {
						l = strings.TrimSpace(l)
						if l != "" && len(carried) > 0 && !carried[l] && !targetLabels[l] {
							t.Errorf("%s: rule %s groups %s (%s) on %q, which none of its metrics carries", filepath.Base(f), name, gm[1], gm[2], l)
						}
					}
				}
			}
		}
	}
	if rules < 10 {
		t.Fatalf("only %d rules found", rules)
	}
	var names []string
	for n := range reg {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, want := range []string{"mxtrail_events_total", "mxtrail_alert_events_total", "mxtrail_alerts_raised_total",
		"mxtrail_host_lines_total", "mxtrail_host_sessions_total", "mxtrail_host_auth_failures_total",
		"mxtrail_sink_insert_failures_total"} {
		if _, ok := reg[want]; !ok {
			t.Errorf("the contract's %s is not exported (have %v)", want, names)
		}
	}
}

func stripComments(expr string) string {
	var b strings.Builder
	for _, l := range strings.Split(expr, "\n") {
		if i := strings.Index(l, "#"); i >= 0 {
			l = l[:i]
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
