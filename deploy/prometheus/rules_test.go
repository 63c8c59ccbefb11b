// Package prometheus_test checks the Prometheus alerting rules, their promtool unit tests, the
// example Prometheus and Alertmanager configurations, and the README alert catalogue against
// each other and against the alerting contract's rule ids and metric names.
package prometheus_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// The rule ids of the alerting contract (enrich/alert raises the event rules; see README).
var (
	contractEventRules = []string{"isode_critical", "isode_fatal", "isode_listen_error",
		"smtpf_out_of_memory", "smtpf_resources", "smtpf_interface", "smtpf_licence", "smtpf_accept",
		"open_relay", "relay_unexpected", "dnsbl_failure", "critical_other"}
	contractBehaviourRules = []string{"host_silent", "deny_ratio_jump", "auth_failure_burst", "ip_denied_many_hosts"}
	contractPipelineRules  = []string{"enrich_consumer_lag", "sink_consumer_lag", "deadletter_rate",
		"sink_insert_failing", "shipper_checkpoint_stale", "shipper_kafka_down"}
	// Rules added on this side of the contract (it allows that).
	addedRules = []string{"stage_down", "enrich_stalled"}
)

// The metrics the rules may read: the contract's list plus Prometheus' own `up`.
var contractMetrics = map[string]bool{
	"mxtrail_events_total": true, "mxtrail_alert_events_total": true, "mxtrail_alerts_raised_total": true,
	"mxtrail_host_lines_total": true, "mxtrail_host_sessions_total": true, "mxtrail_host_auth_failures_total": true,
	"mxtrail_enrich_commit_lag_offsets": true, "mxtrail_enrich_deadletters_total": true,
	"mxtrail_enrich_lines_in_total": true, "mxtrail_sink_consumer_lag": true,
	"mxtrail_sink_deadlettered_total": true, "mxtrail_sink_insert_retries_total": true,
	"mxtrail_sink_rows_total": true, "mxtrail_ship_checkpoint_age_seconds": true,
	"mxtrail_ship_kafka_up": true, "mxtrail_ship_acked_lines_total": true,
	"mxtrail_sink_insert_failures_total": true, "up": true,
}

var ruleFiles = map[string]string{ // file → the group's label `group`
	"rules/events.rules.yml": "events", "rules/behaviour.rules.yml": "behaviour", "rules/pipeline.rules.yml": "pipeline",
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	file        string
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var out []rule
	for f := range ruleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []struct {
				Name     string `yaml:"name"`
				Interval string `yaml:"interval"`
				Rules    []rule `yaml:"rules"`
			} `yaml:"groups"`
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				r.file = f
				out = append(out, r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alert < out[j].Alert })
	return out
}

type catalogueRow struct {
	rule, condition, products, severity, raisedBy, why, todo string
}

// readmeCatalogue parses the table under "### Alert catalogue" in the README.
func readmeCatalogue(t *testing.T) map[string]catalogueRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoDir(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n### Alert catalogue\n")
	if !ok {
		t.Fatal(`README.md has no "### Alert catalogue" section`)
	}
	rows := map[string]catalogueRow{}
	inTable := false
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			if strings.HasPrefix(line, "#") {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[0] == "rule" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		if len(cells) != 7 {
			t.Errorf("README catalogue row has %d cells, want 7: %q", len(cells), line)
			continue
		}
		id := strings.Trim(cells[0], "`")
		if _, dup := rows[id]; dup {
			t.Errorf("README catalogue lists %q twice", id)
		}
		for i, c := range cells {
			if c == "" {
				t.Errorf("README catalogue row %q: cell %d is empty", id, i+1)
			}
		}
		rows[id] = catalogueRow{id, cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]}
	}
	if len(rows) == 0 {
		t.Fatal("README alert catalogue table is empty")
	}
	return rows
}

func set(xs ...[]string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		for _, s := range x {
			m[s] = true
		}
	}
	return m
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var (
	quotedRE     = regexp.MustCompile(`"[^"]*"`)
	metricNameRE = regexp.MustCompile(`\b(mxtrail_[a-zA-Z0-9_:]*|up)\b`)
)

// TestCatalogueAgrees checks the README table, the rules files and the contract against each
// other: same rule ids, same severities, every Prometheus rule where the README says so (and
// only there), event rules in the events file, and only the contract's metric names.
func TestCatalogueAgrees(t *testing.T) {
	rows := readmeCatalogue(t)
	rules := loadRules(t)
	want := set(contractEventRules, contractBehaviourRules, contractPipelineRules, addedRules)
	for id := range want {
		if _, ok := rows[id]; !ok {
			t.Errorf("README catalogue lacks rule %q", id)
		}
	}
	for id := range rows {
		if !want[id] {
			t.Errorf("README catalogue lists %q, which is neither a contract rule id nor in addedRules", id)
		}
	}

	promSev := map[string]map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			continue
		}
		if r.Alert == "" {
			t.Errorf("%s: a rule with neither alert nor record", r.file)
			continue
		}
		if !want[r.Alert] {
			t.Errorf("%s: alert %q is not a catalogue rule id", r.file, r.Alert)
		}
		if g := ruleFiles[r.file]; r.Labels["group"] != g {
			t.Errorf("%s: alert %q has group label %q, want %q", r.file, r.Alert, r.Labels["group"], g)
		}
		if isEvent := set(contractEventRules)[r.Alert]; isEvent != (r.file == "rules/events.rules.yml") {
			t.Errorf("alert %q is in %s; event rules (and only they) belong in rules/events.rules.yml", r.Alert, r.file)
		}
		sev := r.Labels["severity"]
		if sev != "critical" && sev != "warning" {
			t.Errorf("%s: alert %q has severity %q, want critical or warning (Alertmanager routes on it)", r.file, r.Alert, sev)
		}
		if promSev[r.Alert] == nil {
			promSev[r.Alert] = map[string]bool{}
		}
		promSev[r.Alert][sev] = true
		for _, a := range []string{"summary", "description", "runbook"} {
			if r.Annotations[a] == "" {
				t.Errorf("%s: alert %q has no %s annotation", r.file, r.Alert, a)
			}
		}
		for _, m := range metricNameRE.FindAllStringSubmatch(quotedRE.ReplaceAllString(r.Expr, `""`), -1) {
			if name := m[1]; !contractMetrics[name] {
				t.Errorf("%s: alert %q reads metric %q, which is not in the alerting contract", r.file, r.Alert, name)
			}
		}
		if !strings.Contains(r.Expr, "mxtrail_") && !strings.Contains(r.Expr, `job=~"mxtrail-`) {
			t.Errorf("%s: alert %q reads no mxtrail metric", r.file, r.Alert)
		}
	}
	for id, row := range rows {
		byProm := strings.Contains(row.raisedBy, "Prometheus")
		if byProm != (promSev[id] != nil) {
			t.Errorf("rule %q: README says raised by %q, but the rules files %s it", id, row.raisedBy,
				map[bool]string{true: "have", false: "do not have"}[promSev[id] != nil])
		}
		if set(contractEventRules)[id] && !strings.Contains(row.raisedBy, "enricher") {
			t.Errorf("event rule %q: README must say the enricher raises it (alert records), says %q", id, row.raisedBy)
		}
		if byProm {
			readmeSev := map[string]bool{}
			for _, s := range strings.Split(row.severity, ",") {
				readmeSev[strings.TrimSpace(s)] = true
			}
			if got, w := strings.Join(keys(promSev[id]), ","), strings.Join(keys(readmeSev), ","); got != w {
				t.Errorf("rule %q: severity in the rules files %q, in the README %q", id, got, w)
			}
		}
	}
	if len(rules) < len(want)-1 { // ip_denied_many_hosts is a ClickHouse query
		t.Errorf("only %d rules loaded", len(rules))
	}
}

type unitTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryRuleHasFiringAndQuietTests checks the promtool tests cover every rule both ways:
// each alerting rule (name and static labels) is expected to fire, with its annotations, in
// some test, and each alert name is expected to stay quiet in some test. promtool itself
// (TestPromtoolIntegration) then checks those expectations hold.
func TestEveryRuleHasFiringAndQuietTests(t *testing.T) {
	rules := loadRules(t)
	files, err := filepath.Glob("tests/*.test.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool test files: %v", err)
	}
	type firing struct{ labels map[string]string }
	fires := map[string][]firing{}
	quiet := map[string]bool{}
	tested := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var u unitTests
		if err := yaml.Unmarshal(b, &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, rf := range u.RuleFiles {
			tested[filepath.ToSlash(filepath.Clean(filepath.Join("tests", rf)))] = true
		}
		for _, tc := range u.Tests {
			for _, at := range tc.AlertRuleTest {
				if len(at.ExpAlerts) == 0 {
					quiet[at.Alertname] = true
				}
				for _, ea := range at.ExpAlerts {
					if len(ea.ExpAnnotations) == 0 {
						t.Errorf("%s %q: expected %s alert lists no annotations (promtool would then demand none)", f, tc.Name, at.Alertname)
					}
					fires[at.Alertname] = append(fires[at.Alertname], firing{ea.ExpLabels})
				}
			}
		}
	}
	for f := range ruleFiles {
		if !tested[f] {
			t.Errorf("no promtool test file loads %s", f)
		}
	}
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		if !quiet[r.Alert] {
			t.Errorf("no promtool test expects %q to stay quiet", r.Alert)
		}
		found := false
		for _, f := range fires[r.Alert] {
			match := true
			for k, v := range r.Labels {
				if f.labels[k] != v {
					match = false
				}
			}
			found = found || match
		}
		if !found {
			t.Errorf("no promtool test expects %q with labels %v to fire", r.Alert, r.Labels)
		}
	}
}

// tool returns the path of promtool or amtool, fetched by deploy/local/promtool.sh when it is
// not installed. Missing: a failure under CI=true, a skip elsewhere.
func tool(t *testing.T, name string) string {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(testenv.RepoDir(), "deploy", "local", "promtool.sh"), "path", name)
	cmd.Env = append(os.Environ(), "MXTRAIL_STATE_DIR="+testenv.StateDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := fmt.Sprintf("%s is not available (%v): %s; install Debian's %s package or run deploy/local/promtool.sh %s",
			name, err, strings.TrimSpace(stderr.String()), map[string]string{"promtool": "prometheus", "amtool": "prometheus-alertmanager"}[name], name)
		if testenv.InCI() {
			t.Fatal("CI=true, so this is a failure: " + msg)
		}
		t.Skip("skipping: " + msg)
	}
	p := strings.TrimSpace(stdout.String())
	if p == "" {
		t.Fatalf("deploy/local/promtool.sh printed no path for %s", name)
	}
	return p
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		t.Fatalf("%s %s failed after %v: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err, out.String(), errOut.String())
	}
	return out.String()
}

// TestPromtoolIntegration runs promtool's checks and every unit test of the rules.
func TestPromtoolIntegration(t *testing.T) {
	promtool := tool(t, "promtool")
	files, _ := filepath.Glob("rules/*.yml")
	out := run(t, promtool, append([]string{"check", "rules"}, files...)...)
	if n := strings.Count(out, "SUCCESS"); n != len(files) {
		t.Fatalf("promtool check rules: %d of %d files passed:\n%s", n, len(files), out)
	}
	run(t, promtool, "check", "config", "prometheus.yml")
	tests, _ := filepath.Glob("tests/*.test.yml")
	// promtool resolves rule_files relative to the test file's directory.
	abs := make([]string, len(tests))
	for i, f := range tests {
		abs[i], _ = filepath.Abs(f)
	}
	out = run(t, promtool, append([]string{"test", "rules"}, abs...)...)
	if n := strings.Count(out, "SUCCESS"); n != len(tests) {
		t.Fatalf("promtool test rules: %d of %d files passed:\n%s", n, len(tests), out)
	}
}

// TestAlertmanagerConfigIntegration validates the example Alertmanager configuration and its
// routing: critical pages, warning goes to chat, anything else is dropped.
func TestAlertmanagerConfigIntegration(t *testing.T) {
	amtool := tool(t, "amtool")
	run(t, amtool, "check-config", "alertmanager.yml")
	for labels, want := range map[string]string{
		"alertname=open_relay severity=critical":         "mail-oncall-pager",
		"alertname=deny_ratio_jump severity=warning":     "mail-team-chat",
		"alertname=host_silent severity=critical host=x": "mail-oncall-pager",
		"alertname=whatever severity=info":               "blackhole",
	} {
		args := append([]string{"config", "routes", "test", "--config.file=alertmanager.yml"}, strings.Fields(labels)...)
		if got := strings.TrimSpace(run(t, amtool, args...)); got != want {
			t.Errorf("route for %s: got %q, want %q", labels, got, want)
		}
	}
}
