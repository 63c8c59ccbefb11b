package query

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

func TestEmbeddedQueriesParse(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"host-summary", "ip", "ip-denied-many-hosts", "recipient", "sender", "session", "top-offenders"}
	var got []string
	for _, q := range all {
		got = append(got, q.Name)
		if q.Purpose == "" || q.Example == "" || !strings.Contains(q.Example, "mxtrail query "+q.Name) {
			t.Errorf("%s: purpose %q, example %q: want both, the example running this query", q.Name, q.Purpose, q.Example)
		}
		for _, p := range q.Params {
			if p.Doc == "" {
				t.Errorf("%s: param %s has no description", q.Name, p.Name)
			}
			if !p.Required {
				if _, err := ParseValue(p.Type, p.Default, time.Now()); err != nil {
					t.Errorf("%s: default of %s: %v", q.Name, p.Name, err)
				}
			}
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("saved queries %v, want %v", got, want)
	}
}

func TestParseRejects(t *testing.T) {
	const good = "-- purpose: x\n-- param: ip String required the address\n-- example: mxtrail query t --param ip=1\nSELECT {ip:String}\n"
	if _, err := Parse("t", good); err != nil {
		t.Fatalf("good query rejected: %v", err)
	}
	cases := []struct{ name, text, want string }{
		{"undeclared", "-- purpose: x\n-- example: e\nSELECT {ip:String}", `placeholder {ip:String} is not declared`},
		{"unused", "-- purpose: x\n-- param: ip String required a\n-- example: e\nSELECT 1", `param "ip" is declared but not used`},
		{"type mismatch", "-- purpose: x\n-- param: ip String required a\n-- example: e\nSELECT {ip:UInt32}", `has type String in the header`},
		{"bad type", "-- purpose: x\n-- param: ip Float64 required a\n-- example: e\nSELECT {ip:Float64}", `type "Float64" is not one of`},
		{"no purpose", "-- example: e\nSELECT 1", "no purpose"},
		{"no example", "-- purpose: p\nSELECT 1", "no example"},
		{"two statements", "-- purpose: p\n-- example: e\nSELECT 1; DROP TABLE sessions", "more than one statement"},
		{"bad param line", "-- purpose: p\n-- param: ip\n-- example: e\nSELECT 1", `param line "ip"`},
		{"unknown key", "-- purpose: p\n-- author: me\n-- example: e\nSELECT 1", `header entry "author"`},
		{"no statement", "-- purpose: p\n-- example: e\n", "no statement"},
		{"bad default", "-- purpose: p\n-- param: n UInt32 default=ten x\n-- example: e\nSELECT {n:UInt32}", `param "n": default: value "ten" is not a UInt32`},
	}
	for _, c := range cases {
		_, err := Parse("t", c.text)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestPlaceholdersSkipLiteralsAndComments(t *testing.T) {
	q, err := Parse("t", "-- purpose: p\n-- param: a String required x\n-- example: e\n"+
		"SELECT '{b:String}', `{c:String}` /* {d:String} */, {a:String} -- {e:String}\n, '@x', {a:String}")
	if err != nil {
		t.Fatal(err)
	}
	got := q.LegacySQL()
	if !strings.Contains(got, "'{b:String}', `{c:String}` /* {d:String} */, @a -- {e:String}\n, '@x', @a") {
		t.Errorf("LegacySQL = %q", got)
	}
}

func TestBind(t *testing.T) {
	q, err := Lookup("top-offenders")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	args, err := q.Bind(map[string]string{"from": "now-6h", "limit": "5"}, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, a := range args {
		nv := a.(driver.NamedValue)
		got[nv.Name] = nv.Value
	}
	if got["from"] != now.Add(-6*time.Hour) || got["to"] != now || got["limit"] != uint64(5) {
		t.Errorf("bound %v", got)
	}
	// Every problem at once, each naming the parameter and quoting the input.
	_, err = q.Bind(map[string]string{"from": "yesterday", "limit": "-1", "ip": "1.2.3.4"}, now)
	for _, want := range []string{`unknown parameter "ip"`, `parameter "from": value "yesterday" is not a time`, `parameter "limit": value "-1" is not a UInt32`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	ip, _ := Lookup("ip")
	if _, err := ip.Bind(nil, now); err == nil || !strings.Contains(err.Error(), `parameter "ip" is required`) {
		t.Errorf("missing required parameter: error %v", err)
	}
}

func TestParseValueTimes(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 30, 15, 500, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  now.Truncate(time.Second),
		"now-2d":               now.Add(-48 * time.Hour).Truncate(time.Second),
		"now-1w":               now.Add(-7 * 24 * time.Hour).Truncate(time.Second),
		"2026-11-20":           time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		"2026-11-20 01:02:03":  time.Date(2026, 11, 20, 1, 2, 3, 0, time.UTC),
		"2026-11-20T01:02:03Z": time.Date(2026, 11, 20, 1, 2, 3, 0, time.UTC),
		"1795132800":           time.Unix(1795132800, 0).UTC(),
	} {
		got, err := ParseValue("DateTime", in, now)
		if err != nil || !got.(time.Time).Equal(want) {
			t.Errorf("ParseValue(DateTime, %q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"now-", "now+1h", "2026-13-01", "-5", "tomorrow"} {
		if _, err := ParseValue("DateTime", bad, now); err == nil {
			t.Errorf("ParseValue(DateTime, %q) accepted", bad)
		}
	}
}

func TestWriteFormats(t *testing.T) {
	r := &Result{Columns: []string{"client", "sessions", "last_seen", "raw"}, Rows: [][]any{
		{"203.0.113.66", uint64(150), time.Date(2026, 11, 20, 2, 49, 0, 0, time.UTC), "a\tb\nc"},
		{"2001:db8::1", uint64(3), time.Date(2026, 11, 20, 1, 0, 0, 0, time.UTC), `say "hi", ok`},
	}}
	var b bytes.Buffer
	if err := r.Write(&b, "table"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[2], "203.0.113.66  150       2026-11-20 02:49:00  a\\tb\\nc") || lines[4] != "(2 rows)" {
		t.Errorf("table output:\n%s", b.String())
	}
	b.Reset()
	if err := r.Write(&b, "json"); err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(strings.Split(b.String(), "\n")[0]), &obj); err != nil {
		t.Fatal(err)
	}
	if obj["sessions"] != float64(150) || obj["last_seen"] != "2026-11-20T02:49:00Z" {
		t.Errorf("json row %v", obj)
	}
	b.Reset()
	if err := r.Write(&b, "csv"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `2001:db8::1,3,2026-11-20 01:00:00,"say ""hi"", ok"`) {
		t.Errorf("csv output:\n%s", b.String())
	}
	if err := r.Write(&b, "yaml"); err == nil || !strings.Contains(err.Error(), `"yaml"`) {
		t.Errorf("unknown format: error %v", err)
	}
}
