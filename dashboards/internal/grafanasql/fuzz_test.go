package grafanasql

import (
	"strings"
	"testing"
	"time"
)

// FuzzExpand: expansion never panics, and when it succeeds no macro or dashboard variable
// is left in the SQL (only Grafana's own $__ names would be, and those are errors).
func FuzzExpand(f *testing.F) {
	for _, s := range []string{
		"SELECT count() FROM sessions FINAL WHERE $__timeFilter(start_time) AND host = ${host:sqlstring}",
		"SELECT intDiv(toUInt32(t), greatest($__interval_s, 60)) WHERE t <= $__toTime AND $ip = '$ip'",
		"$__timeFilter(", "${host:", "$__dateFilter(d) ${x:raw} $$host",
	} {
		f.Add(s)
	}
	r := Range{From: time.Unix(1795132800, 0), To: time.Unix(1795143600, 0), Interval: time.Minute}
	f.Fuzz(func(t *testing.T, sql string) {
		out, err := Expand(sql, map[string]string{"host": "h'1", "ip": "1.2.3.4", "x": "x"}, r)
		if err != nil {
			return
		}
		if refs := VariableRefs(out); len(refs) > 0 && strings.Count(sql, "$") <= strings.Count(out, "$") {
			// Values never contain '$', so surviving references came from the input itself.
			t.Fatalf("Expand(%q) = %q left variables %v", sql, out, refs)
		}
		if strings.Contains(out, "$__") && !strings.Contains(sql, "$__") {
			t.Fatalf("Expand(%q) introduced a macro: %q", sql, out)
		}
	})
}
