package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ErrSchemaNewer is returned when the database was migrated by a newer mxtrail.
var ErrSchemaNewer = errors.New("schema is newer than this binary knows")

// ErrSchemaOlder is returned when the database needs `mxtrail migrate`.
var ErrSchemaOlder = errors.New("schema is older than this binary needs; run mxtrail migrate")

// DetectServer asks the connected server for its version.
func DetectServer(conn driver.Conn) (ServerVersion, error) {
	sv, err := conn.ServerVersion()
	if err != nil {
		return ServerVersion{}, fmt.Errorf("detect clickhouse server version: %w", err)
	}
	return ServerVersion{Major: int(sv.Version.Major), Minor: int(sv.Version.Minor)}, nil
}

// Result says what Migrate did.
type Result struct {
	Server  ServerVersion
	Before  int   // schema version found (0: empty database)
	Applied []int // migrations run now
}

// Migrate brings o.Database up to Latest. It is idempotent and safe to run from several
// instances at once: every statement is IF NOT EXISTS (future ALTERs must be IF [NOT] EXISTS
// too), and schema_migrations is a ReplacingMergeTree keyed by version, so two instances
// recording the same version leave one row after merge and are read with DISTINCT meanwhile.
// o.Server is ignored: the version is detected from conn.
func Migrate(ctx context.Context, conn driver.Conn, o Options) (Result, error) {
	sv, err := DetectServer(conn)
	if err != nil {
		return Result{}, err
	}
	o.Server = sv
	plan, err := Render(o)
	if err != nil {
		return Result{}, err
	}
	res := Result{Server: sv}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings(plan.Settings)))
	for _, q := range []string{CreateDatabase(o.Database), createMigrationsTable(o.Database)} {
		if err := conn.Exec(ctx, q); err != nil {
			return res, fmt.Errorf("migrate: %q: %w", firstLine(q), err)
		}
	}
	applied, err := appliedVersions(ctx, conn, o.Database)
	if err != nil {
		return res, err
	}
	cur := maxVersion(applied)
	res.Before = cur
	if cur > Latest() {
		return res, fmt.Errorf("migrate database %q: found version %d, know up to %d: %w", o.Database, cur, Latest(), ErrSchemaNewer)
	}
	for _, m := range plan.Migrations {
		// By set, not by the highest version: a migration numbered below one already applied
		// (0002 merged after 0003 ran) still runs.
		if applied[m.Version] {
			continue
		}
		for _, q := range m.Statements {
			if err := conn.Exec(ctx, q); err != nil {
				if !plan.Features.AlterIfNotExists && columnExists(q, err) {
					continue // 18.x has no ADD COLUMN IF NOT EXISTS: an earlier or concurrent run added it
				}
				return res, fmt.Errorf("migration %04d_%s: %q: %w", m.Version, m.Name, firstLine(q), err)
			}
		}
		// INSERT ... SELECT: a VALUES insert through Exec hangs on 18.16 (the server waits for a
		// data block); version and name are ours and safe to inline.
		ins := fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name, applied_at) SELECT %d, '%s', toDateTime(%d, 'UTC')",
			o.Database, m.Version, m.Name, time.Now().Unix())
		if err := conn.Exec(ctx, ins); err != nil {
			return res, fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
		}
		res.Applied = append(res.Applied, m.Version)
	}
	return res, nil
}

// Check returns nil when database is exactly at Latest, ErrSchemaNewer (wrapped) when a newer
// mxtrail migrated it, and ErrSchemaOlder when it needs migrating. The sink calls it at start-up.
func Check(ctx context.Context, conn driver.Conn, database string) (int, error) {
	if !identRE.MatchString(database) {
		return 0, fmt.Errorf("check schema: database %q is not a plain identifier", database)
	}
	var n uint64
	q := "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'"
	if err := conn.QueryRow(ctx, q, database).Scan(&n); err != nil {
		return 0, fmt.Errorf("check schema of database %q: %w", database, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("check schema of database %q: no schema_migrations table: %w", database, ErrSchemaOlder)
	}
	applied, err := appliedVersions(ctx, conn, database)
	if err != nil {
		return 0, err
	}
	cur := maxVersion(applied)
	switch {
	case cur > Latest():
		return cur, fmt.Errorf("check schema of database %q: found version %d, know up to %d: %w", database, cur, Latest(), ErrSchemaNewer)
	case cur < Latest():
		return cur, fmt.Errorf("check schema of database %q: found version %d, need %d: %w", database, cur, Latest(), ErrSchemaOlder)
	}
	if missing := missingVersions(applied); len(missing) > 0 {
		return cur, fmt.Errorf("check schema of database %q: migrations %v not applied: %w", database, missing, ErrSchemaOlder)
	}
	return cur, nil
}

// appliedVersions reads the set of recorded migration versions.
func appliedVersions(ctx context.Context, conn driver.Conn, db string) (map[int]bool, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+db+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", db, err)
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read %s.schema_migrations: %w", db, err)
		}
		out[int(v)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", db, err)
	}
	return out, nil
}

func maxVersion(applied map[int]bool) int {
	m := 0
	for v := range applied {
		m = max(m, v)
	}
	return m
}

// missingVersions lists the embedded migrations not in applied.
func missingVersions(applied map[int]bool) []int {
	srcs, err := sources()
	if err != nil {
		return nil
	}
	var out []int
	for _, s := range srcs {
		if !applied[s.version] {
			out = append(out, s.version)
		}
	}
	return out
}

// columnExists reports whether err is the server refusing an ADD COLUMN because the column is
// already there (code 44, "column with this name already exists").
func columnExists(stmt string, err error) bool {
	var ex *clickhouse.Exception
	return strings.Contains(stmt, "ADD COLUMN") && errors.As(err, &ex) && ex.Code == 44
}

func firstLine(q string) string {
	for i := 0; i < len(q); i++ {
		if q[i] == '\n' {
			return q[:i] + " ..."
		}
	}
	return q
}
