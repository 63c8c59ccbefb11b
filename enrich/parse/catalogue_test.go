package parse

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/event"
)

// The catalogue tests render a realistic line from each catalogue entry's format string
// and check product, code, name, severity and key fields.

var convRE = regexp.MustCompile(`%[-+ #0]*[0-9]*(?:\.[0-9]+)?(?:l|ll|h|z)?[sdiufxXcp]`)

// fillFormat fills printf conversions with plausible values chosen by context: an address
// inside <>, an IP inside [], a reply inside x="", numbers for %d/%u/%lu.
func fillFormat(f string) string {
	var b strings.Builder
	last := 0
	for _, loc := range convRE.FindAllStringIndex(f, -1) {
		b.WriteString(f[last:loc[0]])
		conv := f[loc[0]:loc[1]]
		prev := f[:loc[0]]
		switch c := conv[len(conv)-1]; {
		case c != 's':
			b.WriteString("42")
		case strings.HasSuffix(prev, "<"):
			b.WriteString("sender@example.org")
		case strings.HasSuffix(prev, "["):
			b.WriteString("192.0.2.25")
		case strings.HasSuffix(prev, `x="`):
			b.WriteString("550 5.7.1 rejected #525 (k4G9Bh123450000100)")
		case strings.HasSuffix(prev, `="`), strings.HasSuffix(prev, `"`):
			b.WriteString("mail.example.org")
		default:
			b.WriteString("mail.example.org")
		}
		last = loc[1]
	}
	b.WriteString(f[last:])
	return strings.ReplaceAll(b.String(), "%%", "%")
}

func TestSmtpfCatalogue(t *testing.T) {
	p := testParser(t)
	if len(smtpfCatalogue) != 223 {
		t.Fatalf("smtpf catalogue has %d entries, seed 001 has 223", len(smtpfCatalogue))
	}
	first := map[int]smtpfEntry{}
	for _, e := range smtpfCatalogue {
		if _, ok := first[e.Num]; !ok {
			first[e.Num] = e
		}
	}
	keyed := 0
	defer func() {
		if keyed == 0 {
			t.Error("no host/client entry was checked for its key fields")
		}
	}()
	for _, e := range smtpfCatalogue {
		text := fillFormat(e.Format)
		code := fmt.Sprintf("#%d", e.Num)
		want := first[e.Num]
		for _, line := range []string{
			fmt.Sprintf("Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 %s %s", code, text),
			fmt.Sprintf("Mar 19 12:43:51 mx1 smtpf[28585]: %s %s", code, text), // process-level form
		} {
			ev := parseTwice(t, p, line, nil)
			w := want_(event.ProductSmtpf, code, want.Name, smtpfSeverity(want.Sev), want.Sev)
			if strings.HasPrefix(line[strings.Index(line, "]: ")+3:], "k4G9Bh") &&
				(strings.HasPrefix(e.Format, "host %s [%s]") || strings.HasPrefix(e.Format, "client %s [%s]")) {
				// the client's name and address lead these messages
				w.fields = map[event.Field]string{event.FieldClientPTR: "mail.example.org", event.FieldClientIP: "192.0.2.25"}
				w.session = "k4G9Bh285856336700"
				keyed++
			}
			expect(t, ev, w)
		}
	}
	// key fields of the session summary lines
	for _, c := range []struct {
		line   string
		fields map[event.Field]string
	}{
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #637 start mail.example.org [192.0.2.25] f="" th=1 cn=2 cs=3`,
			map[event.Field]string{event.FieldClientPTR: "mail.example.org", event.FieldClientIP: "192.0.2.25"}},
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #717 sender <a@example.org> f="white" spf-mail=Pass spf-helo=None x="250 2.1.0 sender <a@example.org> OK #290 (k4G9Bh285856336700)"`,
			map[event.Field]string{event.FieldSender: "a@example.org", event.FieldSPF: "Pass", event.FieldReplyCode: "250", event.FieldFlags: "white"}},
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #718 recipient <b@example.com> f="black" x="550 5.7.1 recipient <b@example.com> black listed #135 (k4G9Bh285856336700)"`,
			map[event.Field]string{event.FieldRecipient: "b@example.com", event.FieldReplyCode: "550", event.FieldEnhancedCode: "5.7.1", event.FieldFlags: "black"}},
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #720 message <k4G9Bh285856336700AB> f="ok" b=2048 m=<1@x> s="hi there" x="250 2.0.0 message accepted #554"`,
			map[event.Field]string{event.FieldMessageID: "k4G9Bh285856336700AB", event.FieldSize: "2048", event.FieldReplyCode: "250"}},
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #721 end i=192.0.2.25 p="mail.example.org" f="quit" h="helo.example.org" b=100 t=3 p0f`,
			map[event.Field]string{event.FieldClientIP: "192.0.2.25", event.FieldClientPTR: "mail.example.org", event.FieldHelo: "helo.example.org", event.FieldSize: "100"}},
		// 2.6 (git HEAD) forms of the summary lines, same numbers
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #637 start mail.example.org [192.0.2.25]:41234 f="" th=1 cn=2 cs=3`,
			map[event.Field]string{event.FieldClientPTR: "mail.example.org", event.FieldClientIP: "192.0.2.25", event.FieldClientPort: "41234"}},
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #717 sender a@example.org tid=k4G9Bh285856336700AB f="" spf-mail=Fail spf-helo=None x="550 5.7.1 sender a@example.org SPF result Fail #702 k4G9Bh285856336700"`,
			map[event.Field]string{event.FieldSender: "a@example.org", event.FieldMessageID: "k4G9Bh285856336700AB", event.FieldSPF: "Fail", event.FieldReplyCode: "550", event.FieldEnhancedCode: "5.7.1"}},
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #718 recipient b@example.com tid=k4G9Bh285856336700AB f="" x="250 2.1.5 recipient b@example.com accepted #290 k4G9Bh285856336700"`,
			map[event.Field]string{event.FieldRecipient: "b@example.com", event.FieldReplyCode: "250", event.FieldMessageID: "k4G9Bh285856336700AB"}},
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #720 message tid=k4G9Bh285856336700AB f="ok" b=2048 r=1/1 m=<1@x> R=0 s="hi there" x="250 2.0.0 message k4G9Bh285856336700AB accepted #554"`,
			map[event.Field]string{event.FieldMessageID: "k4G9Bh285856336700AB", event.FieldSize: "2048", event.FieldReplyCode: "250"}},
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #721 end i=192.0.2.25 p="mail.example.org" f="quit" h="helo.example.org" m=1/1 b=100 R=1 t=3 l="550 5.7.1 black listed"`,
			map[event.Field]string{event.FieldClientIP: "192.0.2.25", event.FieldHelo: "helo.example.org", event.FieldSize: "100", event.FieldStatus: "1", event.FieldReplyText: "550 5.7.1 black listed"}},
		{`Mar  9 12:43:51 mx1 smtpf[28585]: k4G9Bh285856336700 #523 dns-bl found 192.0.2.25 zen.spamhaus.org`,
			map[event.Field]string{event.FieldClientIP: "192.0.2.25", event.FieldDNSBL: "zen.spamhaus.org"}},
	} {
		ev := parseTwice(t, p, c.line, nil)
		expect(t, ev, want{product: event.ProductSmtpf, code: ev.CodeString(), session: "k4G9Bh285856336700", fields: c.fields})
	}
}

func want_(p event.Product, code, name string, sev event.Severity, sevRaw string) want {
	return want{product: p, code: code, name: name, severity: sev, sevRaw: sevRaw}
}

// isodeText is a plausible free text per event (synthetic: no real Isode line is public).
func isodeText(name string) string {
	switch name {
	case "Connection":
		return "Connection from [192.0.2.25]:41234"
	case "DNSBLfailed":
		return "DNSBL zen.spamhaus.org lists 192.0.2.25"
	case "rDNSfailed":
		return "192.0.2.25 maps to mail.example.org which does not resolve to it"
	case "ReadPDU", "WritePDU":
		return "EHLO mail.example.org"
	}
	return "see log entry for details"
}

func TestIsodeCatalogue(t *testing.T) {
	p := testParser(t)
	if len(isodeCatalogue) != 25 { // 24 of seed 000 + Close (R19)
		t.Fatalf("isode catalogue has %d events", len(isodeCatalogue))
	}
	for _, e := range isodeCatalogue {
		// synthetic line in the documented default header layout
		line := fmt.Sprintf("2026-03-09 12:43:51.250 %s MTA_SMTP %s %d smtpserver[4711]: %s", e.Sev, e.Name, e.ID, isodeText(e.Name))
		ev := parseTwice(t, p, line, &event.Source{Host: "mta1"})
		expect(t, ev, want{product: event.ProductIsode, dialect: event.DialectIsode, code: fmt.Sprint(e.ID), name: e.Name,
			severity: isodeSeverity([]byte(e.Sev)), sevRaw: e.Sev, session: "mta1 smtpserver[4711]",
			fields: map[event.Field]string{event.FieldFacility: "MTA_SMTP", event.FieldText: isodeText(e.Name), event.FieldProcess: "smtpserver", event.FieldPID: "4711"}})
		if ev.Time.Nanosecond() != 250000000 {
			t.Errorf("isode time %s lost its fraction", ev.Time)
		}
	}
}

func TestSpamdykeCatalogue(t *testing.T) {
	p := testParser(t)
	if len(spamdykeCodes) != 37 { // 36 of 5.0.1 + DENIED_ACCESS_DENIED of 4.x
		t.Fatalf("spamdyke table has %d codes", len(spamdykeCodes))
	}
	for _, c := range spamdykeCodes {
		base := c.Code + " from: bad@spam.example.net to: user@example.com origin_ip: 203.0.113.66 origin_rdns: (unknown) auth: (unknown)"
		fields := map[event.Field]string{event.FieldSender: "bad@spam.example.net", event.FieldRecipient: "user@example.com",
			event.FieldClientIP: "203.0.113.66", event.FieldClientPTR: "(unknown)", event.FieldAuthUser: "(unknown)"}
		for _, v := range []struct{ msg, tls, reason string }{
			{base + " encryption: TLS reason: 554_Refused", "TLS", "554_Refused"}, // >= 4.2.1
			{base + " encryption: (none)", "(none)", ""},                          // 4.1
			{base + " reason: (empty)", "", "(empty)"},                            // 3.x TIMEOUT form
			{base, "", ""}, // 3.x
		} {
			for _, hdr := range []string{"Mar  9 11:10:37 server spamdyke[29207]: ", "Mar 9 11:10:37 server spamdyke[29207]: ", "<22>Mar 19 11:10:37 spamdyke[29207]: ", "spamdyke[29207]: "} {
				ev := parseTwice(t, p, hdr+v.msg, &event.Source{Host: "server"})
				f := map[event.Field]string{event.FieldTLS: v.tls, event.FieldReason: v.reason}
				for k, x := range fields {
					f[k] = x
				}
				expect(t, ev, want{product: event.ProductSpamdyke, code: c.Code, name: c.Code, session: "server spamdyke[29207]", fields: f})
			}
		}
	}
	// pre-3.0 key and the verbose/error lines
	for _, c := range []struct {
		line, code string
		sev        event.Severity
		fields     map[event.Field]string
	}{
		{"Mar  9 11:10:37 server spamdyke[1]: DENIED_RBL_MATCH from: a@b.example to: c@d.example origin: 203.0.113.66 origin_rdns: x.example auth: (unknown)", "DENIED_RBL_MATCH", event.SeverityInfo, map[event.Field]string{event.FieldClientIP: "203.0.113.66"}},
		{"Mar  9 11:10:37 server spamdyke[1]: ERROR(filter_rdns_missing()@filter.c:123): unable to resolve: timeout", "ERROR", event.SeverityError, map[event.Field]string{event.FieldProcess: "filter_rdns_missing()@filter.c:123", event.FieldText: "unable to resolve: timeout"}},
		{"Mar  9 11:10:37 server spamdyke[1]: FILTER_RBL_MATCH ip: 203.0.113.66 rbl: zen.spamhaus.org", "FILTER_RBL_MATCH", event.SeverityInfo, map[event.Field]string{event.FieldClientIP: "203.0.113.66", event.FieldDNSBL: "zen.spamhaus.org"}},
		{"Mar  9 11:10:37 server spamdyke[1]: FILTER_RDNS_MISSING ip: 203.0.113.66", "FILTER_RDNS_MISSING", event.SeverityInfo, map[event.Field]string{event.FieldClientIP: "203.0.113.66"}},
		{"Mar  9 11:10:37 server spamdyke[1]: FILTER_GRAYLISTED sender: a@b.example recipient: c@d.example path: /var/qmail/graylist/d.example/c/a@b.example", "FILTER_GRAYLISTED", event.SeverityInfo, map[event.Field]string{event.FieldSender: "a@b.example", event.FieldRecipient: "c@d.example"}},
		{`Mar  9 11:10:37 server spamdyke[1]: FILTER_OTHER response: "553 sorry, no mailbox here by that name"`, "FILTER_OTHER", event.SeverityInfo, map[event.Field]string{event.FieldReplyText: "553 sorry, no mailbox here by that name"}},
		{"Mar  9 11:10:37 server spamdyke[1]: DEBUG(main()@spamdyke.c:99): child exited", "DEBUG", event.SeverityDebug, nil},
		{"<19>Mar  9 11:10:37 server spamdyke[1]: TIMEOUT from: (unknown) to: (unknown) origin_ip: 203.0.113.66 origin_rdns: (unknown) auth: (unknown) encryption: (none) reason: (empty)", "TIMEOUT", event.SeverityError, nil},
	} {
		ev := parseTwice(t, p, c.line, nil)
		expect(t, ev, want{product: event.ProductSpamdyke, code: c.code, severity: c.sev, fields: c.fields})
	}
}

func TestMailEnableCatalogue(t *testing.T) {
	p := testParser(t)
	texts := map[string]string{
		"ME-I0101": "Local Delivery: Address (user@example.com) is local.",
		"ME-I0102": "Address ([SMTP:nobody@example.com]) is to be delivered to Catch-All address.",
		"ME-I0106": "Relay Granted: [user@example.com] is in local address map.",
		"ME-I0107": "Relay Granted: Sender IP (192.0.2.25) is within an authorized IP range.",
		"ME-I0108": "Relay Granted: Sender has authenticated.",
		"ME-I0110": "Relay Granted: Server is configured to allow anyone to relay.",
		"ME-I0111": "Relay Denied: Failed to meet all relay criteria.",
		"ME-E0109": "Relay Denied: Failed to meet all relay criteria.",
		"ME-I0112": "Relay Denied: Server is configured not to allow relaying",
		"ME-I0073": "IP Address 123.123.123.123 banned.",
	}
	if len(texts) != len(mailEnableCodes) {
		t.Fatalf("test has %d texts, catalogue %d codes", len(texts), len(mailEnableCodes))
	}
	for _, c := range mailEnableCodes {
		sev := event.SeverityInfo
		if c.Code[3] == 'E' {
			sev = event.SeverityError
		}
		for _, line := range []string{
			c.Code + ": " + texts[c.Code],
			"06/20/23 06:12:50 " + c.Code + ": " + texts[c.Code],
			"06/20/23 06:12:50 [1448] SMTP " + c.Code + ": " + texts[c.Code],
		} {
			ev := parseTwice(t, p, line, nil)
			expect(t, ev, want{product: event.ProductMailEnable, dialect: event.DialectMailEnableDebug, code: c.Code, name: c.Name, severity: sev, sevRaw: c.Code[3:4],
				fields: map[event.Field]string{event.FieldText: texts[c.Code]}})
		}
	}
}

func TestIMailCatalogue(t *testing.T) {
	p := testParser(t)
	const pre = "03:19 03:22 SMTPD(00180250) "
	cases := []struct {
		msg, code string
		fields    map[event.Field]string
	}{
		{"BLACKLIST:203.0.113.66 was found on list (Spamhaus:zen.spamhaus.org:zen.spamhaus.org)->Listed by SBL", "BLACKLIST_FOUND", map[event.Field]string{event.FieldClientIP: "203.0.113.66", event.FieldDNSBL: "Spamhaus:zen.spamhaus.org:zen.spamhaus.org", event.FieldReplyText: "Listed by SBL"}},
		{"BLACKLIST:failed to connect to service (Spamhaus:zen.spamhaus.org:zen.spamhaus.org)", "BLACKLIST_FAILED_CONNECT", map[event.Field]string{event.FieldDNSBL: "Spamhaus:zen.spamhaus.org:zen.spamhaus.org"}},
		{"VALIDATION: (HELO) domain FAILED to receive response from DNS server for HELO domain helo.example.net", "VALIDATION_HELO_DNS_FAILED", map[event.Field]string{event.FieldHelo: "helo.example.net"}},
		{"VALIDATION: (HELO) no HELO sent", "VALIDATION_HELO_MISSING", nil},
		{"VALIDATION: (HELO) helo.example.net domain failed active validation", "VALIDATION_HELO_ACTIVE_FAILED", map[event.Field]string{event.FieldHelo: "helo.example.net"}},
		{"VALIDATION: (MAIL FROM) domain FAILED to resolve MX/A record for mail server bad@nomx.example", "VALIDATION_MAILFROM_NO_MX", map[event.Field]string{event.FieldSender: "bad@nomx.example"}},
		{"VALIDATION: (MAIL FROM) domain FAILED to connect to mx.example.net", "VALIDATION_MAILFROM_CONNECT_FAILED", map[event.Field]string{event.FieldRemoteHost: "mx.example.net"}},
		{"VALIDATION: (MAIL FROM) domain FAILED to communicate with server mx.example.net", "VALIDATION_MAILFROM_COMM_FAILED", map[event.Field]string{event.FieldRemoteHost: "mx.example.net"}},
		{"VALIDATION (MAIL FROM) no MAIL FROM sent", "VALIDATION_MAILFROM_MISSING", nil},
		{"VALIDATION:(MAIL FROM) <ghost@example.net> user does not exist on remote system", "VALIDATION_MAILFROM_NO_USER", map[event.Field]string{event.FieldSender: "ghost@example.net"}},
		{"VALIDATION: (MAIL FROM) domain FAILED SMTP server error:421 try later", "VALIDATION_MAILFROM_SMTP_ERROR", map[event.Field]string{event.FieldReplyText: "421 try later"}},
		{"VALIDATION: (REVDNS) 203.0.113.66 address does not have a valid MX or A record, message rejected", "VALIDATION_REVDNS_NO_RECORD", map[event.Field]string{event.FieldClientIP: "203.0.113.66"}},
		{"VALIDATION: (REVDNS) domain FAILED to receive reply from DNS server", "VALIDATION_REVDNS_DNS_FAILED", nil},
		{"VALIDATION: (REVDNS) domain FAILED reverse DNS validation for address (203.0.113.66)", "VALIDATION_REVDNS_FAILED", map[event.Field]string{event.FieldClientIP: "203.0.113.66"}},
		{"message failed checkSpamhaus which was marked as trusted, deleting", "MESSAGE_FAILED_TRUSTED", map[event.Field]string{event.FieldDNSBL: "Spamhaus"}},
		{"message failed 3 of 5 checks, deleting", "MESSAGE_FAILED_CHECKS", map[event.Field]string{event.FieldStatus: "3"}},
		{"BLACKLIST:connecting to service(Spamhaus:zen.spamhaus.org:zen.spamhaus.org)", "BLACKLIST_CONNECTING", nil},
		{"BLACKLIST:retrying service (Spamhaus:zen.spamhaus.org:zen.spamhaus.org)", "BLACKLIST_RETRYING", nil},
		{"BLACKLIST:192.0.2.25 was not found on list (Spamhaus:zen.spamhaus.org:zen.spamhaus.org)", "BLACKLIST_NOT_FOUND", map[event.Field]string{event.FieldClientIP: "192.0.2.25"}},
		{"BLACKLIST:received a reply from service (Spamhaus:zen.spamhaus.org:zen.spamhaus.org)", "BLACKLIST_REPLY", nil},
		{"VALIDATION: (HELO) domain performing DNS lookup for HELO domain helo.example.net", "VALIDATION_HELO_LOOKUP", map[event.Field]string{event.FieldHelo: "helo.example.net"}},
		{"VALIDATION: (HELO) domain received reply from DNS server for HELO domain helo.example.net", "VALIDATION_HELO_REPLY", map[event.Field]string{event.FieldHelo: "helo.example.net"}},
		{"VALIDATION: (MAIL FROM) domain validating MAIL FROM address a@example.net", "VALIDATION_MAILFROM_VALIDATING", map[event.Field]string{event.FieldSender: "a@example.net"}},
		{"validation: (mail from) domain suceeded for user a@example.net", "VALIDATION_MAILFROM_SUCCEEDED", map[event.Field]string{event.FieldSender: "a@example.net"}},
		{"VALIDATION: (REVDNS) domain performing reverse dns lookup on address 192.0.2.25", "VALIDATION_REVDNS_LOOKUP", map[event.Field]string{event.FieldClientIP: "192.0.2.25"}},
		{"VALIDATION: (REVDNS) domain reverse DNS validation SUCEEDED for address (192.0.2.25)", "VALIDATION_REVDNS_SUCCEEDED", map[event.Field]string{event.FieldClientIP: "192.0.2.25"}},
		{"ADMIN: reloading connection filtering settings for domain:example.com", "ADMIN_RELOADING", nil},
		{"ADMIN: finished reloading connection filtering settings for domain: example.com", "ADMIN_RELOADED", nil},
	}
	for _, c := range cases {
		ev := parseTwice(t, p, pre+c.msg, nil)
		expect(t, ev, want{product: event.ProductIMail, code: c.code, name: c.code, session: "SMTPD(00180250)", fields: c.fields})
	}
}
