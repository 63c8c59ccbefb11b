package query

import (
	"context"
	"fmt"
	"math"
	"net"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

var relTimeRE = regexp.MustCompile(`^now(?:-(\d+)([smhdw]))?$`)

// ParseValue converts one user-given value to the Go type the placeholder type binds from.
// DateTime accepts RFC 3339, "2006-01-02 15:04:05" and "2006-01-02" (UTC), Unix seconds, and
// "now" or "now-N{s,m,h,d,w}" relative to now.
func ParseValue(typ, v string, now time.Time) (any, error) {
	switch typ {
	case "String":
		return v, nil
	case "UInt32", "UInt64":
		bits := 64
		if typ == "UInt32" {
			bits = 32
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return nil, fmt.Errorf("value %q is not a %s: %w", v, typ, err)
		}
		return n, nil
	case "DateTime":
		if m := relTimeRE.FindStringSubmatch(v); m != nil {
			if m[1] == "" {
				return now.UTC().Truncate(time.Second), nil
			}
			n, err := strconv.Atoi(m[1])
			if err != nil {
				return nil, fmt.Errorf("value %q: %w", v, err)
			}
			unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
			return now.UTC().Add(-time.Duration(n) * unit).Truncate(time.Second), nil
		}
		for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
				return t.UTC(), nil
			}
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n <= math.MaxUint32 {
			return time.Unix(n, 0).UTC(), nil
		}
		return nil, fmt.Errorf("value %q is not a time: want RFC 3339, 'YYYY-MM-DD hh:mm:ss', YYYY-MM-DD, Unix seconds, now or now-N{s,m,h,d,w}", v)
	}
	return nil, fmt.Errorf("unsupported parameter type %q", typ)
}

// Bind checks the given values against the query's parameters (every problem at once) and
// returns them as named driver arguments, defaults filled in.
func (q *Query) Bind(values map[string]string, now time.Time) ([]any, error) {
	var problems []string
	var unknown []string
	for k := range values {
		if _, ok := q.Param(k); !ok {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		var names []string
		for _, p := range q.Params {
			names = append(names, p.Name)
		}
		problems = append(problems, fmt.Sprintf("unknown parameter %q (query %s takes: %s)", k, q.Name, strings.Join(names, ", ")))
	}
	args := make([]any, 0, len(q.Params))
	for _, p := range q.Params {
		v, ok := values[p.Name]
		if !ok {
			if p.Required {
				problems = append(problems, fmt.Sprintf("parameter %q is required (%s)", p.Name, p.Doc))
				continue
			}
			v = p.Default
		}
		val, err := ParseValue(p.Type, v, now)
		if err != nil {
			problems = append(problems, fmt.Sprintf("parameter %q: %v", p.Name, err))
			continue
		}
		args = append(args, clickhouse.Named(p.Name, val))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("query %s: %s", q.Name, strings.Join(problems, "; "))
	}
	return args, nil
}

// Result is a query's answer: column names and types, and rows of scanned Go values.
type Result struct {
	Columns []string
	Types   []string
	Rows    [][]any
}

// SupportsQueryParameters reports whether the server takes {name:Type} parameters in the
// native protocol (ClickHouse 22.x and later); 18.16 does not.
func SupportsQueryParameters(conn driver.Conn) (bool, error) {
	sv, err := conn.ServerVersion()
	if err != nil {
		return false, fmt.Errorf("read clickhouse server version: %w", err)
	}
	return sv.Revision >= proto.DBMS_MIN_PROTOCOL_VERSION_WITH_PARAMETERS, nil
}

// Run binds values and executes q on conn, whose default database holds the mxtrail tables.
func Run(ctx context.Context, conn driver.Conn, q Query, values map[string]string, now time.Time) (*Result, error) {
	args, err := q.Bind(values, now)
	if err != nil {
		return nil, err
	}
	native, err := SupportsQueryParameters(conn)
	if err != nil {
		return nil, err
	}
	sql := q.SQL
	if !native {
		sql = q.LegacySQL()
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("run query %s: %w", q.Name, err)
	}
	defer rows.Close()
	res := &Result{Columns: rows.Columns()}
	cts := rows.ColumnTypes()
	for _, ct := range cts {
		res.Types = append(res.Types, ct.DatabaseTypeName())
	}
	for rows.Next() {
		ptrs := make([]any, len(cts))
		for i, ct := range cts {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("scan row %d of query %s: %w", len(res.Rows)+1, q.Name, err)
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			row[i] = reflect.ValueOf(p).Elem().Interface()
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rows of query %s: %w", q.Name, err)
	}
	return res, nil
}

// Text renders one value as the table and CSV formats print it.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		if x.Nanosecond() != 0 {
			return x.UTC().Format("2006-01-02 15:04:05.000")
		}
		return x.UTC().Format("2006-01-02 15:04:05")
	case net.IP:
		if v4 := x.To4(); v4 != nil {
			return v4.String()
		}
		return x.String()
	case uint64:
		return strconv.FormatUint(x, 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case uint16:
		return strconv.FormatUint(uint64(x), 10)
	case uint8:
		return strconv.FormatUint(uint64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []string:
		return strings.Join(x, ",")
	case *string:
		if x == nil {
			return ""
		}
		return *x
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = Text(rv.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}
