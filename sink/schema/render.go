// Package schema owns mxtrail's ClickHouse schema: the embedded, versioned migrations, their
// rendering for a given server version (modern types where the server has them, documented
// fall-backs on old servers such as 18.16), and the migration runner behind `mxtrail migrate`.
//
// Fall-backs on old servers (each chosen so the sink writes the same Go values either way):
//   - DateTime64(3, 'UTC') becomes DateTime('UTC') (second precision);
//   - IPv6 becomes String holding the address as logged, and client_net is its /24 or /48 as text;
//   - LowCardinality(String) needs allow_experimental_low_cardinality_type = 1 at CREATE time on
//     18.x (the runner sets it), and arrays of it become Array(String);
//   - codecs and TTL are left out: retention must be enforced by dropping partitions by hand;
//   - ALTER TABLE ... ADD COLUMN has no IF NOT EXISTS on 18.x: migrations add one column per
//     ALTER and the runner treats "column already exists" (code 44) as done.
//
// Migration numbers may have gaps (parallel branches); Migrate applies every embedded version
// not yet recorded in schema_migrations, and Check wants all of them recorded.
//
// Idempotent reads: sessions, events, alerts and deadletter are ReplacingMergeTree tables whose
// sorting key ends in the record's identity (session_id; the source position of an event; the
// alert id; topic/partition/offset), so a replayed record collapses on merge. Queries that must
// be exact before merges happen use FINAL (`SELECT count() FROM sessions FINAL`) or
// `argMax(col, outcome_version)` grouped by session_id. The per-minute rollup counts sessions
// with uniqExactState(session_id), which a replay cannot inflate; read it with
// `uniqExactMerge(sessions)`.
package schema

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Retention in days per table; 0 keeps forever.
type Retention struct {
	Sessions, Events, Alerts, DeadLetter, Rollup int
}

// Options select what the migrations render to.
type Options struct {
	Database  string
	Server    ServerVersion
	Retention Retention
}

// Migration is one rendered, versioned step.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Plan is every migration rendered for one server, with the session settings its statements need.
type Plan struct {
	Features   Features
	Settings   map[string]any // e.g. allow_experimental_low_cardinality_type on 18.x
	Migrations []Migration
}

// Latest is the newest schema version this binary knows. The sink refuses a database whose
// schema_migrations holds a newer one.
func Latest() int {
	ms, err := sources()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

type source struct {
	version int
	name    string
	text    string
}

var fileRE = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

func sources() ([]source, error) {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []source
	for _, e := range ents {
		m := fileRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("embedded migration %q: name must be NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read embedded migration %q: %w", e.Name(), err)
		}
		out = append(out, source{version: v, name: m[2], text: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	// Gaps are allowed (branches add migrations in parallel, e.g. 0003 before 0002 lands);
	// Migrate applies every known version not yet recorded, so a late 0002 still runs.
	for i, s := range out {
		if s.version == 0 || (i > 0 && s.version == out[i-1].version) {
			return nil, fmt.Errorf("embedded migrations: version %04d of %q is zero or used twice", s.version, s.name)
		}
	}
	return out, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Render renders every migration for o.Server.
func Render(o Options) (Plan, error) {
	if !identRE.MatchString(o.Database) {
		return Plan{}, fmt.Errorf("render schema: database %q is not a plain identifier", o.Database)
	}
	f := FeaturesFor(o.Server)
	p := Plan{Features: f, Settings: map[string]any{}}
	if f.LowCardinalityNeedsSetting {
		p.Settings["allow_experimental_low_cardinality_type"] = 1
	}
	retention := map[string]int{
		"sessions": o.Retention.Sessions, "events": o.Retention.Events, "alerts": o.Retention.Alerts,
		"deadletter": o.Retention.DeadLetter, "rollup": o.Retention.Rollup,
	}
	funcs := template.FuncMap{
		"lc": func(t string) string {
			if f.LowCardinality {
				return "LowCardinality(" + t + ")"
			}
			return t
		},
		"lcarr": func(t string) string {
			if f.LowCardinalityArrays {
				return "LowCardinality(" + t + ")"
			}
			return t
		},
		"dt": func() string {
			if f.DateTime64 {
				return "DateTime64(3, 'UTC')"
			}
			return "DateTime('UTC')"
		},
		"ip": func() string {
			if f.IPv6 {
				return "IPv6"
			}
			return "String"
		},
		"codec": func(c string) string {
			if f.Codecs {
				return "CODEC(" + c + ")"
			}
			return ""
		},
		"addcol": func() string {
			if f.AlterIfNotExists {
				return "ADD COLUMN IF NOT EXISTS"
			}
			return "ADD COLUMN"
		},
		"ttl": func(table, col string) (string, error) {
			days, ok := retention[table]
			if !ok {
				return "", fmt.Errorf("no retention setting for table %q", table)
			}
			if !f.TTL || days == 0 {
				return "", nil
			}
			return fmt.Sprintf("TTL toDateTime(%s) + INTERVAL %d DAY", col, days), nil
		},
		"settings": func() string {
			var s []string
			if f.TTL {
				s = append(s, "ttl_only_drop_parts = 1")
			}
			if f.DedupToken {
				// Lets insert_deduplication_token work on non-replicated tables.
				s = append(s, "non_replicated_deduplication_window = 1000")
			}
			if len(s) == 0 {
				return ""
			}
			return "SETTINGS " + strings.Join(s, ", ")
		},
	}
	srcs, err := sources()
	if err != nil {
		return Plan{}, err
	}
	data := struct {
		DB string
		F  Features
	}{o.Database, f}
	for _, s := range srcs {
		t, err := template.New(s.name).Funcs(funcs).Option("missingkey=error").Parse(s.text)
		if err != nil {
			return Plan{}, fmt.Errorf("parse migration %04d_%s: %w", s.version, s.name, err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return Plan{}, fmt.Errorf("render migration %04d_%s: %w", s.version, s.name, err)
		}
		p.Migrations = append(p.Migrations, Migration{Version: s.version, Name: s.name, Statements: splitStatements(buf.String())})
	}
	return p, nil
}

// splitStatements drops comment lines and splits on ';' at the end of a line. Statements must
// not contain a line ending in ';' inside a string literal.
func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--") || t == "" {
			continue
		}
		cur.WriteString(strings.TrimRight(line, " \t"))
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			out = append(out, strings.TrimSpace(s))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Script renders the plan as one SQL script (settings first, then every statement followed by
// ';'), as `mxtrail migrate --print` shows it and as the chdb check executes it.
func (p Plan) Script(database string, createDatabase bool) string {
	var b strings.Builder
	keys := make([]string, 0, len(p.Settings))
	for k := range p.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "SET %s = %v;\n", k, p.Settings[k])
	}
	if createDatabase {
		fmt.Fprintf(&b, "%s;\n", CreateDatabase(database))
		fmt.Fprintf(&b, "%s;\n", createMigrationsTable(database))
	}
	for _, m := range p.Migrations {
		fmt.Fprintf(&b, "-- migration %04d_%s\n", m.Version, m.Name)
		for _, s := range m.Statements {
			b.WriteString(s)
			b.WriteString(";\n\n")
		}
	}
	return b.String()
}

// CreateDatabase is the statement that creates the database.
func CreateDatabase(db string) string { return "CREATE DATABASE IF NOT EXISTS " + db }

func createMigrationsTable(db string) string {
	return "CREATE TABLE IF NOT EXISTS " + db + ".schema_migrations (\n" +
		"    version UInt32,\n    name String,\n    applied_at DateTime('UTC')\n" +
		")\nENGINE = ReplacingMergeTree\nORDER BY version"
}
