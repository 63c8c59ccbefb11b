package clickhouse

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/internal/testenv"
)

// computedCases are the addresses and senders where the Go copies of the DEFAULT expressions
// could drift from the server's: no address, IPv4-mapped text, IPv6 with a zero group, an
// address whose /48 is all zeros, no '@', several '@', upper case and non-ASCII domains.
var computedCases = []struct{ ip, from string }{
	{"", ""},
	{"192.0.2.77", "Alice@Example.ORG"},
	{"8.8.8.8", "bounce"},
	{"::ffff:198.51.100.9", "a@b@C.example"},
	{"2001:db8:0:1::5", "x@EXÄMPLE.de"},
	{"2001:0:5:6::1", "@"},
	{"::1", "user@"},
	{"fe80::1:2:3:4", "<>"},
	{"10.255.255.255", "MiXeD@MixEd.Net"},
}

func computedSessions(t testing.TB) []record.Session {
	ss := genSessions(31, 2000)
	for i, c := range computedCases {
		ss[i].ClientIP, ss[i].MailFrom = c.ip, c.from
	}
	return ss
}

// On the old server the sink writes sender_domain and client_net itself; every row must hold
// exactly what the columns' DEFAULT expressions (read back from system.columns, so the test
// follows the migration) compute from the stored mail_from and client_ip.
func TestComputedColumnsMatchServerIntegration(t *testing.T) {
	ctx := context.Background()
	conn, db, f := testDB(t, ctx, "computed")
	b := NewBatch(f, 256<<10)
	ss := computedSessions(t)
	for i := range ss {
		b.Add(KindSessions, &Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}, time.Now())
	}
	if _, _, d := b.Rows(); d != 0 {
		t.Fatalf("%d records dead-lettered", d)
	}
	if err := NewWriter(conn, db, f, NewMetrics(nil), 10*time.Millisecond, 100*time.Millisecond).Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"sender_domain", "client_net"} {
		var kind, expr string
		if err := conn.QueryRow(ctx, "SELECT default_kind, default_expression FROM system.columns WHERE database = ? AND table = 'sessions' AND name = ?", db, col).Scan(&kind, &expr); err != nil {
			t.Fatal(err)
		}
		if kind != "DEFAULT" {
			t.Fatalf("%s is %s, want DEFAULT (migration 0002)", col, kind)
		}
		q := fmt.Sprintf("SELECT count(), countIf(%s != %s), any(%s) FROM %s.sessions", col, expr, col, db)
		var n, bad uint64
		var sample string
		if err := conn.QueryRow(ctx, q).Scan(&n, &bad, &sample); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n != uint64(len(ss)) || bad != 0 {
			rows, _ := conn.Query(ctx, fmt.Sprintf("SELECT mail_from, client_ip, %s, %s FROM %s.sessions WHERE %s != %s LIMIT 5", col, expr, db, col, expr))
			for rows != nil && rows.Next() {
				var a, b, c, d string
				_ = rows.Scan(&a, &b, &c, &d)
				t.Logf("mail_from %q client_ip %q: sink wrote %q, server computes %q", a, b, c, d)
			}
			t.Fatalf("%s: %d of %d rows differ from the DEFAULT expression", col, bad, n)
		}
	}
}

// On IPv6 servers client_net is IPv6CIDRToRange(...).1; chdb (ClickHouse 26.x) computes it for
// each case and must agree with clientNet6 byte for byte.
func TestClientNet6MatchesServerOnChdbIntegration(t *testing.T) {
	var sql strings.Builder
	var want []string
	for _, c := range computedCases {
		if c.ip == "" {
			continue
		}
		ip, err := checkSession(&record.Session{ClientIP: c.ip}, true)
		if err != nil {
			t.Fatal(err)
		}
		net := clientNet6(ip)
		fmt.Fprintf(&sql, "SELECT hex(IPv6CIDRToRange(toIPv6('%s'), if(startsWith(IPv6NumToString(toIPv6('%s')), '::ffff:'), 120, 48)).1) AS n;\n", c.ip, c.ip)
		want = append(want, fmt.Sprintf("%X", net[:]))
	}
	out, err := testenv.Chdb(t, sql.String())
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("case %d: server's network %s missing from chdb output:\n%s", i, w, out)
		}
	}
}

// parseIPv4 takes dotted quads only, and gives netip.ParseAddr's address for them; the IPv4
// client_net it leads to is the address's first three fields and a zero.
func TestParseIPv4MatchesNetip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fast bool
	}{
		{"192.0.2.77", true}, {"0.0.0.0", true}, {"255.255.255.255", true}, {"10.0.10.100", true},
		{"1.2.3.4", true}, {"01.2.3.4", false}, {"1.2.3.04", false}, {"1.2.3.00", false},
		{"256.1.1.1", false}, {"1.2.3.256", false}, {"1.2.3", false}, {"1.2.3.4.5", false},
		{"1..3.4", false}, {".1.2.3.4", false}, {"1.2.3.4.", false}, {"1.2.3.4 ", false},
		{"1.2.3.4%eth0", false}, {"::ffff:1.2.3.4", false}, {"1234.1.1.1", false}, {"", false},
		{"1.2.3.-4", false}, {"1.2.3.999", false},
	} {
		got, ok := parseIPv4(tc.in)
		if ok != tc.fast {
			t.Errorf("parseIPv4(%q) ok = %v, want %v", tc.in, ok, tc.fast)
			continue
		}
		checkIPv4(t, tc.in, got, ok)
	}
}

func FuzzParseIPv4(f *testing.F) {
	for _, s := range []string{"192.0.2.77", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3.256", "::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := parseIPv4(in)
		checkIPv4(t, in, got, ok)
	})
}

// checkIPv4 fails t unless parseIPv4(in) = got, ok is netip.ParseAddr's answer where ok, and
// unless an IPv4 address netip takes gets client_net's a.b.c.0 from its bytes.
func checkIPv4(t *testing.T, in string, got [16]byte, ok bool) {
	t.Helper()
	a, err := netip.ParseAddr(in)
	if ok && (err != nil || !a.Is4() || a.As16() != got) {
		t.Fatalf("parseIPv4(%q) = %v; netip: %v, %v", in, got, a, err)
	}
	if err != nil || !a.Is4() {
		return
	}
	var c strCol
	c.addClientNet(in, a.As16())
	b := a.As4()
	if want := fmt.Sprintf("%d.%d.%d.0", b[0], b[1], b[2]); c.views()[0] != want {
		t.Fatalf("client_net of %q = %q, want %q", in, c.views()[0], want)
	}
}

// BenchmarkParseIPv4 parses generated sessions' client addresses, against the baseline of
// netip.ParseAddr.
func BenchmarkParseIPv4(b *testing.B) {
	var ips []string
	for _, s := range genSessions(5, 4096) {
		if _, ok := parseIPv4(s.ClientIP); ok {
			ips = append(ips, s.ClientIP)
		}
	}
	b.Run("baseline_netip", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := netip.ParseAddr(ips[i%len(ips)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parseIPv4", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, ok := parseIPv4(ips[i%len(ips)]); !ok {
				b.Fatal(ips[i%len(ips)])
			}
		}
	})
}
