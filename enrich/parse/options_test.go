package parse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/event"
)

func TestIsodeHeaderConfigurable(t *testing.T) {
	hdr := `%{ISODE_TS:ts} \[%{MX_DIGITS:pid}\] %{WORD:severity} %{NOTSPACE:facility}/%{WORD:name}\(%{MX_DIGITS:event_id}\): %{GREEDYDATA:text}`
	p, err := New(Options{DefaultYear: 2026, IsodeHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	// synthetic line in the custom layout
	ev := parseTwice(t, p, "2026-03-09 12:43:51 [4711] warning MTA_SMTP/DNSBLfailed(106): DNSBL hit for 192.0.2.25", &event.Source{Dialect: event.DialectIsode})
	expect(t, ev, want{product: event.ProductIsode, code: "106", name: "DNSBLfailed", severity: event.SeverityWarning, sevRaw: "warning",
		fields: map[event.Field]string{event.FieldPID: "4711", event.FieldFacility: "MTA_SMTP", event.FieldText: "DNSBL hit for 192.0.2.25"}})
}

func TestExtraPatternDir(t *testing.T) {
	dir := t.TempDir()
	// a fast-path addition and a raw-regex one (runs through vjeantet/grok)
	grok := strings.Join([]string{
		"# site additions",
		`SPAMDYKE_L95_CUSTOM CUSTOM_%{MX_UPPER:code} client=%{MX_IP:client_ip}`,
		`QMAIL_L58_REGEX (?:tcpserver|sslserver): (?:ok|deny) %{INT:pid} %{NOTSPACE:remote_host}:%{IP:client_ip}`,
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "site.grok"), []byte(grok), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{DefaultYear: 2026, PatternDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ev := parseTwice(t, p, "Mar  9 11:10:37 mx1 spamdyke[7]: CUSTOM_THING client=192.0.2.1", nil)
	expect(t, ev, want{product: event.ProductSpamdyke, code: "THING", fields: map[event.Field]string{event.FieldClientIP: "192.0.2.1"}})
	var got []string
	for _, c := range p.dialects[event.DialectQmail].pats {
		if c.slow {
			got = append(got, c.Name)
		}
	}
	if strings.Join(got, ",") != "QMAIL_L58_REGEX" {
		t.Fatalf("slow patterns: %v", got)
	}
	ev = parseTwice(t, p, "Mar  9 11:10:37 mx1 qmail: tcpserver: ok 4242 mx.example.net:192.0.2.7", nil)
	expect(t, ev, want{product: event.ProductQmail, fields: map[event.Field]string{event.FieldPID: "4242", event.FieldClientIP: "192.0.2.7", event.FieldRemoteHost: "mx.example.net"}})
}

func TestPatternErrorsNameThePattern(t *testing.T) {
	for _, c := range []struct{ grok, want string }{
		{"SPAMDYKE_L96_BAD %{NOPE:x}", `"SPAMDYKE_L96_BAD"`},
		{"SPAMDYKE_L96_BAD %{NOTSPACE:not_a_field}", `capture "not_a_field"`},
		{"SPAMDYKE_L96_BAD (unclosed", `"SPAMDYKE_L96_BAD"`},
		{"justonetoken", "want \"NAME expression\""},
		{"SMTPF_L16A_MINE %{GREEDYDATA:text}", "two digits, then _"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x.grok"), []byte(c.grok), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := New(Options{DefaultYear: 2026, PatternDir: dir})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to mention %s", c.grok, err, c.want)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("a missing default year must be an error")
	}
}
