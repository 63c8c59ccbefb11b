package parse

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
)

const spamdykeMsg = "DENIED_RBL_MATCH from: a@b.example to: c@d.example origin_ip: 203.0.113.66 origin_rdns: (unknown) auth: (unknown) encryption: (none) reason: zen.spamhaus.org"

func TestSyslogWrappers(t *testing.T) {
	p := testParser(t)
	src := &event.Source{Host: "fallback"}
	for _, c := range []struct {
		name, line, host string
		time             time.Time
		sev              event.Severity
	}{
		{"3164 padded day", "Mar  9 11:10:37 mx1 spamdyke[7]: " + spamdykeMsg, "mx1", time.Date(2021, 3, 9, 11, 10, 37, 0, time.UTC), event.SeverityInfo},
		{"3164 unpadded day", "Mar 9 11:10:37 mx1 spamdyke[7]: " + spamdykeMsg, "mx1", time.Date(2021, 3, 9, 11, 10, 37, 0, time.UTC), event.SeverityInfo},
		{"3164 with PRI", "<20>Mar 19 11:10:37 mx1 spamdyke[7]: " + spamdykeMsg, "mx1", time.Date(2021, 3, 19, 11, 10, 37, 0, time.UTC), event.SeverityWarning},
		{"3164 without host", "Mar 19 11:10:37 spamdyke[7]: " + spamdykeMsg, "fallback", time.Date(2021, 3, 19, 11, 10, 37, 0, time.UTC), event.SeverityInfo},
		{"3164 fractional seconds", "Mar 19 11:10:37.250 mx1 spamdyke[7]: " + spamdykeMsg, "mx1", time.Date(2021, 3, 19, 11, 10, 37, 250000000, time.UTC), event.SeverityInfo},
		{"5424", "<22>1 2021-03-09T11:10:37.5+02:00 mx2 spamdyke 7 - - " + spamdykeMsg, "mx2", time.Date(2021, 3, 9, 9, 10, 37, 500000000, time.UTC), event.SeverityInfo},
		{"5424 with SD", `<19>1 2021-03-09T11:10:37Z mx2 spamdyke 7 ID47 [origin ip="192.0.2.1"][x a="\]"] ` + spamdykeMsg, "mx2", time.Date(2021, 3, 9, 11, 10, 37, 0, time.UTC), event.SeverityError},
		{"stripped header", "spamdyke[7]: " + spamdykeMsg, "fallback", time.Time{}, event.SeverityInfo},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := parseTwice(t, p, c.line, src)
			expect(t, ev, want{product: event.ProductSpamdyke, code: "DENIED_RBL_MATCH", host: c.host, time: c.time, severity: c.sev,
				session: c.host + " spamdyke[7]", fields: map[event.Field]string{event.FieldClientIP: "203.0.113.66", event.FieldReason: "zen.spamhaus.org"}})
			if c.time.IsZero() && !ev.Time.IsZero() {
				t.Errorf("a line without a timestamp got time %s", ev.Time)
			}
		})
	}
	// a bare message only parses when the source pins its dialect
	ev := parseTwice(t, p, spamdykeMsg, &event.Source{Dialect: event.DialectSpamdyke})
	expect(t, ev, want{product: event.ProductSpamdyke, code: "DENIED_RBL_MATCH"})
	ev = parseTwice(t, p, spamdykeMsg, nil)
	if ev.Parsed || ev.Reason != ReasonNoDialect {
		t.Errorf("bare message without a pin: parsed=%v reason=%q", ev.Parsed, ev.Reason)
	}
}

func TestYearAndZone(t *testing.T) {
	p := testParser(t)
	line := func(mon string) string { return mon + " 31 23:59:59 mx1 spamdyke[7]: " + spamdykeMsg }
	ref := time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC) // a file's mtime just after New Year
	src := &event.Source{YearRef: ref}
	if got := parseTwice(t, p, line("Dec"), src).Time; got.Year() != 2026 {
		t.Errorf("December line in a January file: year %d, want 2026", got.Year())
	}
	if got := parseTwice(t, p, "Jan  1 00:00:01 mx1 spamdyke[7]: "+spamdykeMsg, src).Time; got.Year() != 2027 {
		t.Errorf("January line: year %d, want 2027", got.Year())
	}
	// without a reference the default year applies
	if got := parseTwice(t, p, line("Dec"), nil).Time; got.Year() != 2021 {
		t.Errorf("default year: %d", got.Year())
	}
	// the zone is the source's
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no zoneinfo:", err)
	}
	got := parseTwice(t, p, "Jul  4 12:00:00 mx1 spamdyke[7]: "+spamdykeMsg, &event.Source{Loc: ny}).Time
	if want := time.Date(2021, 7, 4, 16, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("zone: %s, want %s", got.UTC(), want)
	}
	// Feb 29 in a non-leap default year does not exist: unparsed with a reason, not a wrong date
	ev := parseTwice(t, p, "Feb 29 12:00:00 mx1 spamdyke[7]: "+spamdykeMsg, nil)
	if ev.Parsed || ev.Reason != ReasonBadTime {
		t.Errorf("Feb 29 2021: parsed=%v reason=%q", ev.Parsed, ev.Reason)
	}
}

func TestQmail(t *testing.T) {
	p := testParser(t)
	at := time.Unix(1615286631, 123456000).UTC()
	for _, c := range []struct {
		line, code, session string
		fields              map[event.Field]string
		time                time.Time
	}{
		{"Mar  9 10:43:51 mx1 qmail: 1615286631.123456 new msg 3940483", "new_msg", "mx1 qmail msg 3940483", map[event.Field]string{event.FieldQueueID: "3940483"}, at},
		{"Mar  9 10:43:51 mx1 qmail: 1615286631.123456 info msg 3940483: bytes 23533 from <a@example.net> qp 15309 uid 89", "info_msg", "mx1 qmail msg 3940483", map[event.Field]string{event.FieldSize: "23533", event.FieldSender: "a@example.net", event.FieldPID: "15309"}, at},
		{"Mar  9 10:43:51 mx1 qmail: 1615286631.123456 info msg 3940484: bytes 900 from <> qp 15310 uid 89", "info_msg", "mx1 qmail msg 3940484", map[event.Field]string{event.FieldSize: "900"}, at},
		{"Mar  9 10:43:51 mx1 qmail: 1615286631.123456 starting delivery 114878: msg 3940483 to local recipient@example.com", "starting_delivery", "mx1 qmail msg 3940483", map[event.Field]string{event.FieldDeliveryNum: "114878", event.FieldDeliveryChannel: "local", event.FieldRecipient: "recipient@example.com"}, at},
		{"Mar  9 10:43:51 mx1 qmail: 1615286631.123456 delivery 114878: success: did_0+0+1/", "delivery", "mx1 qmail delivery 114878", map[event.Field]string{event.FieldDeliveryResult: "success", event.FieldReason: "did_0+0+1/"}, at},
		{"Mar  9 10:43:51 mx1 qmail: 1615286631.123456 delivery 114879: deferral: Sorry,_I_couldn't_find_any_host_by_that_name._(#4.1.2)/", "delivery", "mx1 qmail delivery 114879", map[event.Field]string{event.FieldDeliveryResult: "deferral"}, at},
		{"Mar  9 10:43:51 mx1 qmail: 1615286631.123456 end msg 3940483", "end_msg", "mx1 qmail msg 3940483", nil, at},
		{"Mar  9 10:43:51 mx1 qmail-send[311]: @4000000060475a3107595f80 end msg 3940483", "end_msg", "mx1 qmail msg 3940483", nil, time.Unix(0x60475a31-10, 0x07595f80).UTC()},
		{"@4000000060475a3107595f80 delivery 7: failure: Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/", "delivery", " qmail delivery 7", map[event.Field]string{event.FieldDeliveryResult: "failure"}, time.Time{}},
		{"Mar  9 10:43:51 mx1 rblsmtpd: 203.0.113.66 pid 4242: 451 http://www.spamhaus.org/query/bl?ip=203.0.113.66", "rblsmtpd", "mx1 rblsmtpd[]", map[event.Field]string{event.FieldClientIP: "203.0.113.66", event.FieldReplyCode: "451"}, time.Time{}},
		{"Mar  9 10:43:51 mx1 qmail-smtpd[4242]: CHKUSER accepted rcpt: from <a@example.net:: remote <helo.example.net:unknown:203.0.113.66> rcpt <r@example.com> : found existing recipient", "", "", nil, time.Time{}},
		{"Mar  9 10:43:51 mx1 qmail-smtpd[4242]: CHKUSER rejected rcpt: from <a@example.net::> remote <helo.example.net:unknown:203.0.113.66> rcpt <nobody@example.com> : not existing recipient", "rejected rcpt", "mx1 qmail-smtpd[4242]", map[event.Field]string{event.FieldRecipient: "nobody@example.com", event.FieldReason: "not existing recipient", event.FieldSender: "a@example.net", event.FieldHelo: "helo.example.net", event.FieldClientPTR: "unknown", event.FieldClientIP: "203.0.113.66"}, time.Time{}},
	} {
		ev := parseTwice(t, p, c.line, nil)
		if c.code == "" { // malformed chkuser: still a qmail event, kept as text
			expect(t, ev, want{product: event.ProductQmail, code: "text"})
			continue
		}
		if c.session == "mx1 rblsmtpd[]" {
			c.session = ""
		}
		if strings.HasPrefix(c.session, " ") {
			c.session = ""
		}
		expect(t, ev, want{product: event.ProductQmail, code: c.code, session: c.session, fields: c.fields, time: c.time})
	}
}

func TestUnrecognisedAndHostile(t *testing.T) {
	p := testParser(t)
	long := "Mar  9 11:10:37 mx1 spamdyke[7]: ALLOWED from: " + strings.Repeat("a", 1<<20) + " to: x"
	for _, c := range []struct{ name, line, reason string }{
		{"empty", "", ReasonEmpty},
		{"cr only", "\r", ReasonEmpty},
		{"plain text", "hello world", ReasonNoDialect},
		{"unknown program", "Mar  9 11:10:37 mx1 sshd[22]: Accepted publickey for root", ReasonUnknownProgram},
		{"known program, unknown text", "Mar  9 11:10:37 mx1 smtpf[22]: ", ReasonNoPattern},
		{"binary", "\x00\x01\x02\xff\xfe", ReasonNoDialect},
		{"invalid utf8 in a known layout", "2021-03-09 11:10:37, \xff\xfe", ReasonNoPattern},
		{"bad date", "2021-13-45 11:10:37, from, a@b", ReasonBadTime},
		{"one MiB line", long, ReasonNoPattern},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := parseTwice(t, p, c.line, &event.Source{Host: "h"})
			if ev.Parsed || ev.Reason != c.reason {
				t.Fatalf("parsed=%v reason=%q, want reason %q", ev.Parsed, ev.Reason, c.reason)
			}
			if !bytes.Equal(ev.Raw(), []byte(c.line)) {
				t.Fatal("raw line not kept")
			}
			js := event.AppendJSON(nil, ev)
			if !bytes.Contains(js, []byte(`"parsed":false,"error":"`+c.reason+`"`)) {
				t.Fatalf("json lacks the reason: %.200s", js)
			}
		})
	}
	// valid long line: 1 MiB reason text still parses
	ok := "Mar  9 11:10:37 mx1 spamdyke[7]: ALLOWED from: a@b to: c@d origin_ip: 192.0.2.1 origin_rdns: x auth: (unknown) encryption: (none) reason: " + strings.Repeat("r", 1<<20)
	ev := parseTwice(t, p, ok, nil)
	if !ev.Parsed || len(ev.Field(event.FieldReason)) != 1<<20 {
		t.Fatalf("1 MiB reason: parsed=%v len=%d", ev.Parsed, len(ev.Field(event.FieldReason)))
	}
}
