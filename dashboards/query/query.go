// Package query owns the saved investigation queries (dashboards/queries/*.sql): parsing their
// header comments, binding user parameters as real query parameters (never by building SQL
// from user text), running them on ClickHouse and printing the result as a table, JSON or CSV.
//
// A saved query is one ClickHouse statement with `{name:Type}` placeholders, the syntax
// clickhouse-client's --param_name=value understands. On servers that support query parameters
// in the native protocol the values travel apart from the SQL; on older servers (18.16) the
// placeholders are rewritten to the driver's `@name` form and clickhouse-go's binder writes
// each value as an escaped, typed literal.
package query

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/mxtrail/mxtrail/dashboards"
)

// Param is one parameter a saved query declares in its header.
type Param struct {
	Name     string
	Type     string // ClickHouse type of the placeholder: String, DateTime, UInt32, UInt64
	Required bool
	Default  string // used when the caller gives no value (see ParseValue for time forms)
	Doc      string
}

// Query is one saved query.
type Query struct {
	Name    string // file name without .sql
	Purpose string
	Params  []Param
	Example string
	SQL     string // the statement, header comment included (ClickHouse ignores it)
}

// Param returns the declared parameter called name.
func (q *Query) Param(name string) (Param, bool) {
	for _, p := range q.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

var (
	paramLineRE = regexp.MustCompile(`^(\w+)\s+(\w+)\s+(required|default=\S*)\s+(.+)$`)
	nameRE      = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

// supportedTypes are the placeholder types ParseValue converts.
var supportedTypes = map[string]bool{"String": true, "DateTime": true, "UInt32": true, "UInt64": true}

// Parse reads a saved query from its file text. The header is a run of `--` comment lines at
// the top with `purpose:`, `param:` (one per parameter) and `example:` entries; the statement
// follows. Parse checks that every placeholder is declared and every declared parameter used.
func Parse(name, text string) (Query, error) {
	q := Query{Name: name, SQL: strings.TrimSpace(text)}
	if !nameRE.MatchString(name) {
		return q, fmt.Errorf("saved query %q: name must be lower-case letters, digits, '-' or '_'", name)
	}
	var problems []string
	var last *string // the entry a continuation line extends
	body := 0
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if !strings.HasPrefix(t, "--") {
			body = i
			break
		}
		t = strings.TrimSpace(strings.TrimPrefix(t, "--"))
		key, val, ok := strings.Cut(t, ":")
		if !ok || strings.ContainsAny(key, " \t") {
			// A line without "key:" continues the entry above it.
			if last != nil && t != "" {
				*last += " " + t
			}
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "purpose":
			q.Purpose, last = val, &q.Purpose
		case "example":
			q.Example, last = val, &q.Example
		case "param":
			m := paramLineRE.FindStringSubmatch(val)
			if m == nil {
				problems = append(problems, fmt.Sprintf("param line %q: want NAME TYPE required|default=VALUE DESCRIPTION", val))
				continue
			}
			p := Param{Name: m[1], Type: m[2], Doc: m[4], Required: m[3] == "required"}
			if !p.Required {
				p.Default = strings.TrimPrefix(m[3], "default=")
			}
			if !supportedTypes[p.Type] {
				problems = append(problems, fmt.Sprintf("param %q: type %q is not one of String, DateTime, UInt32, UInt64", p.Name, p.Type))
			} else if !p.Required {
				if _, err := ParseValue(p.Type, p.Default, time.Unix(0, 0)); err != nil {
					problems = append(problems, fmt.Sprintf("param %q: default: %v", p.Name, err))
				}
			}
			if _, dup := q.Param(p.Name); dup {
				problems = append(problems, fmt.Sprintf("param %q declared twice", p.Name))
			}
			q.Params = append(q.Params, p)
			last = &q.Params[len(q.Params)-1].Doc
		default:
			problems = append(problems, fmt.Sprintf("header entry %q: want purpose:, param: or example:", key))
		}
	}
	if q.Purpose == "" {
		problems = append(problems, "header has no purpose: line")
	}
	if q.Example == "" {
		problems = append(problems, "header has no example: line")
	}
	if strings.TrimSpace(strings.Join(lines[body:], "\n")) == "" {
		problems = append(problems, "no statement after the header")
	}
	used := map[string]bool{}
	for _, ph := range placeholders(q.SQL) {
		used[ph.name] = true
		p, ok := q.Param(ph.name)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("placeholder {%s:%s} is not declared in the header", ph.name, ph.typ))
		case p.Type != ph.typ:
			problems = append(problems, fmt.Sprintf("placeholder {%s:%s} has type %s in the header", ph.name, ph.typ, p.Type))
		}
	}
	for _, p := range q.Params {
		if !used[p.Name] {
			problems = append(problems, fmt.Sprintf("param %q is declared but not used", p.Name))
		}
	}
	if hasStatementBreak(q.SQL) {
		problems = append(problems, "more than one statement")
	}
	if len(problems) > 0 {
		return q, fmt.Errorf("saved query %q: %s", name, strings.Join(problems, "; "))
	}
	return q, nil
}

// All parses every embedded saved query, sorted by name.
func All() ([]Query, error) {
	ents, err := fs.ReadDir(dashboards.Queries, "queries")
	if err != nil {
		return nil, fmt.Errorf("read embedded saved queries: %w", err)
	}
	var out []Query
	var errs []string
	for _, e := range ents {
		if path.Ext(e.Name()) != ".sql" {
			continue
		}
		b, err := dashboards.Queries.ReadFile("queries/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read saved query %q: %w", e.Name(), err)
		}
		q, err := Parse(strings.TrimSuffix(e.Name(), ".sql"), string(b))
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out = append(out, q)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Lookup returns the embedded saved query called name.
func Lookup(name string) (Query, error) {
	all, err := All()
	if err != nil {
		return Query{}, err
	}
	var names []string
	for _, q := range all {
		if q.Name == name {
			return q, nil
		}
		names = append(names, q.Name)
	}
	return Query{}, fmt.Errorf("no saved query %q (have: %s)", name, strings.Join(names, ", "))
}

type placeholder struct {
	name, typ  string
	start, end int // byte range of {name:Type} in the SQL
}

// placeholders finds {name:Type} outside string literals, quoted identifiers and comments.
func placeholders(sql string) []placeholder {
	var out []placeholder
	scan(sql, func(i int) int {
		if sql[i] != '{' {
			return i + 1
		}
		j := strings.IndexByte(sql[i:], '}')
		if j < 0 {
			return i + 1
		}
		name, typ, ok := strings.Cut(sql[i+1:i+j], ":")
		name, typ = strings.TrimSpace(name), strings.TrimSpace(typ)
		if !ok || !identRE.MatchString(name) || typ == "" {
			return i + 1
		}
		out = append(out, placeholder{name: name, typ: typ, start: i, end: i + j + 1})
		return i + j + 1
	})
	return out
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// scan calls visit for each byte offset outside literals and comments; visit returns the
// offset to continue from.
func scan(sql string, visit func(i int) int) {
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i++
			for i < len(sql) && sql[i] != c {
				if sql[i] == '\\' {
					i++
				}
				i++
			}
			i++
		case strings.HasPrefix(sql[i:], "--"):
			if k := strings.IndexByte(sql[i:], '\n'); k >= 0 {
				i += k + 1
			} else {
				i = len(sql)
			}
		case strings.HasPrefix(sql[i:], "/*"):
			if k := strings.Index(sql[i+2:], "*/"); k >= 0 {
				i += k + 4
			} else {
				i = len(sql)
			}
		default:
			i = visit(i)
		}
	}
}

// hasStatementBreak reports a ';' outside literals and comments that is followed by more SQL.
func hasStatementBreak(sql string) bool {
	found := false
	scan(sql, func(i int) int {
		if sql[i] == ';' && strings.TrimSpace(sql[i+1:]) != "" {
			found = true
		}
		return i + 1
	})
	return found
}

// LegacySQL rewrites every {name:Type} placeholder to the driver's client-side form @name,
// for servers without query parameters in the native protocol.
func (q *Query) LegacySQL() string {
	var b strings.Builder
	last := 0
	for _, ph := range placeholders(q.SQL) {
		b.WriteString(q.SQL[last:ph.start])
		b.WriteString("@" + ph.name)
		last = ph.end
	}
	b.WriteString(q.SQL[last:])
	return b.String()
}
