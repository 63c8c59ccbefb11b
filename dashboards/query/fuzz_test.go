package query

import (
	"testing"
	"time"
)

// FuzzParse feeds arbitrary saved-query text to Parse: it must not panic, and whatever it
// accepts must rewrite to legacy SQL with no declared placeholder left and bind its defaults.
func FuzzParse(f *testing.F) {
	all, err := All()
	if err != nil {
		f.Fatal(err)
	}
	for _, q := range all {
		f.Add(q.SQL)
	}
	f.Add("-- purpose: p\n-- param: a String required x\n-- example: e\nSELECT '{a:String}', {a:String} /* {a:String */")
	f.Add("-- purpose: p\n-- example: e\nSELECT '\\'' ; -- ;\n")
	f.Fuzz(func(t *testing.T, text string) {
		q, err := Parse("fuzz", text)
		if err != nil {
			return
		}
		legacy := q.LegacySQL()
		for _, ph := range placeholders(legacy) {
			if _, declared := q.Param(ph.name); declared {
				t.Fatalf("placeholder {%s:%s} survived LegacySQL in %q", ph.name, ph.typ, legacy)
			}
		}
		vals := map[string]string{}
		for _, p := range q.Params {
			if p.Required {
				vals[p.Name] = map[string]string{"String": "x'y", "DateTime": "now", "UInt32": "1", "UInt64": "2"}[p.Type]
			}
		}
		args, err := q.Bind(vals, time.Unix(1795132800, 0))
		if err != nil {
			t.Fatalf("bind the defaults and valid values of an accepted query: %v", err)
		}
		if len(args) != len(q.Params) {
			t.Fatalf("bound %d args for %d params", len(args), len(q.Params))
		}
	})
}
