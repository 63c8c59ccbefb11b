package prometheus_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// Labels Prometheus adds to every scraped series.
var targetLabels = map[string]bool{"job": true, "instance": true}

// codeMetrics finds every metric the Go code defines (prometheus.NewXxx(prometheus.XxxOpts{Name:
// "..."}, []string{labels...})) and returns its label names.
func codeMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	root := testenv.RepoDir()
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !strings.HasPrefix(sel.Sel.Name, "New") {
				return true
			}
			opts, ok := call.Args[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			name := ""
			for _, e := range opts.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
						if lit, ok := kv.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							name, _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
			if !strings.HasPrefix(name, "mxtrail_") {
				return true
			}
			labels := []string{}
			if len(call.Args) > 1 {
				if ls, ok := call.Args[1].(*ast.CompositeLit); ok {
					for _, e := range ls.Elts {
						if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							l, _ := strconv.Unquote(lit.Value)
							labels = append(labels, l)
						}
					}
				}
			}
			sort.Strings(labels)
			if prev, dup := out[name]; dup && strings.Join(prev, ",") != strings.Join(labels, ",") {
				t.Errorf("%s: metric %s defined again with labels %v (elsewhere %v)", fset.Position(call.Pos()), name, labels, prev)
			}
			out[name] = labels
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d metric definitions in the code: the AST walk is broken", len(out))
	}
	return out
}

var (
	selectorRE = regexp.MustCompile(`\b(mxtrail_[a-z0-9_]+)\s*(\{([^}]*)\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	groupingRE = regexp.MustCompile(`\b(by|on|without|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
)

func labelNames(list string) []string {
	var out []string
	for _, l := range strings.Split(list, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestRulesMatchCodeMetrics checks the rules and their promtool tests against the metrics the
// Go code really defines: every metric a rule reads exists, every label a rule selects, groups
// or joins on is one of its metrics' labels (or job/instance), and every synthetic series in the
// tests carries exactly the labels the real series would, so the tests exercise real shapes.
func TestRulesMatchCodeMetrics(t *testing.T) {
	code := codeMetrics(t)
	has := func(metric, label string) bool {
		for _, l := range code[metric] {
			if l == label {
				return true
			}
		}
		return targetLabels[label]
	}
	known := func(where, metric string) bool {
		if _, ok := code[metric]; ok {
			return true
		}
		t.Errorf("%s: metric %s is defined nowhere in the Go code", where, metric)
		return false
	}
	for _, r := range loadRules(t) {
		where := r.file + " " + r.Alert
		expr := quotedRE.ReplaceAllString(r.Expr, `""`)
		var metrics []string
		for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
			if !known(where, m[1]) {
				continue
			}
			metrics = append(metrics, m[1])
			for _, mm := range matcherRE.FindAllStringSubmatch(m[3], -1) {
				if !has(m[1], mm[1]) {
					t.Errorf("%s: selects label %q of %s, which has labels %v", where, mm[1], m[1], code[m[1]])
				}
			}
		}
		for _, g := range groupingRE.FindAllStringSubmatch(expr, -1) {
			for _, l := range labelNames(g[2]) {
				ok := targetLabels[l]
				for _, m := range metrics {
					ok = ok || has(m, l)
				}
				if !ok && len(metrics) > 0 {
					t.Errorf("%s: %s (%s) names label %q, which none of %v has", where, g[1], g[2], l, metrics)
				}
			}
		}
	}

	files, _ := filepath.Glob("tests/*.test.yml")
	seriesRE := regexp.MustCompile(`^(mxtrail_[a-z0-9_]+)\{(.*)\}$`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var u struct {
			Tests []struct {
				Name        string `yaml:"name"`
				InputSeries []struct {
					Series string `yaml:"series"`
				} `yaml:"input_series"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(b, &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range u.Tests {
			for _, s := range tc.InputSeries {
				m := seriesRE.FindStringSubmatch(s.Series)
				if m == nil {
					continue // up{...}
				}
				where := f + " " + tc.Name
				if !known(where, m[1]) {
					continue
				}
				var got []string
				for _, mm := range matcherRE.FindAllStringSubmatch(quotedRE.ReplaceAllString(m[2], `""`), -1) {
					if !targetLabels[mm[1]] {
						got = append(got, mm[1])
					}
				}
				sort.Strings(got)
				if strings.Join(got, ",") != strings.Join(code[m[1]], ",") {
					t.Errorf("%s: series %s has labels %v besides job/instance; the code's %s has %v", where, s.Series, got, m[1], code[m[1]])
				}
			}
		}
	}
}

// TestEnricherRulesMatchCatalogue checks the rule ids the enricher raises (the ruleNames table
// of enrich/alert) are exactly the README catalogue rows marked "raised by enricher".
func TestEnricherRulesMatchCatalogue(t *testing.T) {
	dir := filepath.Join(testenv.RepoDir(), "enrich", "alert")
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(names) == 0 {
		t.Fatalf("list %s: %v (%d files)", dir, err, len(names))
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	code := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "ruleNames" || len(vs.Values) != 1 {
				return true
			}
			if cl, ok := vs.Values[0].(*ast.CompositeLit); ok {
				for _, e := range cl.Elts {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, _ := strconv.Unquote(lit.Value); s != "" {
							code[s] = true
						}
					}
				}
			}
			return false
		})
	}
	if len(code) == 0 {
		t.Fatal("enrich/alert has no ruleNames table of rule ids: update this test to where the ids live")
	}
	readme := map[string]bool{}
	for id, row := range readmeCatalogue(t) {
		if strings.Contains(row.raisedBy, "enricher") {
			readme[id] = true
		}
	}
	if got, want := strings.Join(keys(code), " "), strings.Join(keys(readme), " "); got != want {
		t.Errorf("enrich/alert raises %s\nthe README catalogue says the enricher raises %s", got, want)
	}
}
