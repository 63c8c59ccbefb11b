package testfleet

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mxtrail/mxtrail/internal/testenv"
)

// Statement is one query to run on chdb, with its query parameters (SET param_x = ...).
type Statement struct {
	Name   string
	SQL    string
	Params map[string]string // name -> SQL literal, e.g. "'1.2.3.4'" or "20"
}

const marker = "mxtrail_marker"

// RunChdb loads the fleet into database db on a fresh chdb session (modern schema) and runs
// every statement there, in one process. It returns, per statement name, the header row and
// the data rows (TSVWithNames, cells still escaped). A failing statement fails the run, and
// the error names it.
func RunChdb(t testing.TB, db string, f *Fleet, stmts []Statement) (map[string][][]string, error) {
	t.Helper()
	script, err := ChdbScript(db, f)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(script)
	b.WriteString("USE " + db + ";\n")
	for _, s := range stmts {
		fmt.Fprintf(&b, "SELECT %s AS %s;\n", lit(s.Name), marker)
		for k, v := range s.Params {
			fmt.Fprintf(&b, "SET param_%s = %s;\n", k, v)
		}
		b.WriteString(strings.TrimRight(strings.TrimSpace(s.SQL), ";") + ";\n")
	}
	out, err := testenv.Chdb(t, b.String())
	if err != nil {
		return nil, err
	}
	res := map[string][][]string{}
	cur := ""
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] == marker && i+1 < len(lines) {
			cur = lines[i+1]
			res[cur] = nil
			i++
			continue
		}
		if cur == "" || lines[i] == "" {
			continue
		}
		res[cur] = append(res[cur], strings.Split(lines[i], "\t"))
	}
	return res, nil
}

// Lit quotes a test value as a ClickHouse string literal (for Statement.Params).
func Lit(s string) string { return lit(s) }
