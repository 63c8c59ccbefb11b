package parse

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
)

func readLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRealCorpus: every public real line parses, with auto-detection, into the right
// product, dialect and code.
func TestRealCorpus(t *testing.T) {
	p := testParser(t)
	cases := []struct {
		file    string
		dialect event.Dialect
		codes   []string
	}{
		{"spamdyke.log", event.DialectSpamdyke, []string{"DENIED_RDNS_MISSING", "ALLOWED"}},
		{"smtpf.log", event.DialectSmtpf, []string{"", "", "", "", "", "", "", "", "", "", "", "", ""}},
		{"icdsoft_smtp.log", event.DialectICDSoftSMTP, []string{"from", "resp", "to", "resp", "from", "resp", "to", "check", "resp", "size", "resp", "from", "resp", "to", "check", "resp", "size", "resp"}},
		{"icdsoft_delivery.log", event.DialectICDSoftDelivery, []string{"init", "try", "result", "init", "try", "result"}},
		{"mailenable.log", event.DialectMailEnableActivity, []string{"AUTH", "AUTH", "RCPT"}},
		{"imail.log", event.DialectIMail, []string{"CONNECT", "EHLO", "MAIL_FROM", "RCPT_TO", "MESSAGE_ACCEPTED", "DELIVERY_PROCESSING", "DELIVERY", "DELIVERY_FINISHED", "PREMIUM_SPAM"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			lines := readLines(t, filepath.Join("testdata", "corpus", c.file))
			if len(lines) != len(c.codes) {
				t.Fatalf("%d lines, table has %d codes", len(lines), len(c.codes))
			}
			for i, ln := range lines {
				ev := parseTwice(t, p, ln, &event.Source{Host: "mx1"})
				expect(t, ev, want{product: c.dialect.Product(), dialect: c.dialect, code: c.codes[i]})
			}
		})
	}
}

func TestRealCorpusFields(t *testing.T) {
	p := testParser(t)
	eet := time.FixedZone("EET", 2*3600)
	src := &event.Source{Host: "mx1", Loc: eet, YearRef: time.Date(2021, 3, 20, 0, 0, 0, 0, time.UTC)}
	for _, c := range []struct {
		line string
		w    want
	}{
		{"Mar 9 12:43:51 server spamdyke[15280]: ALLOWED from: correspondent@elsewhere.example.net to: recipient@example.com origin_ip: 192.0.2.12 origin_rdns: elsewhere.example.net auth: (unknown) encryption: (none) reason: 250_ok_1615286631_qp_15309",
			want{product: event.ProductSpamdyke, code: "ALLOWED", name: "ALLOWED", host: "server", session: "server spamdyke[15280]",
				time: time.Date(2021, 3, 9, 10, 43, 51, 0, time.UTC),
				fields: map[event.Field]string{event.FieldClientIP: "192.0.2.12", event.FieldClientPTR: "elsewhere.example.net", event.FieldSender: "correspondent@elsewhere.example.net",
					event.FieldRecipient: "recipient@example.com", event.FieldAuthUser: "(unknown)", event.FieldTLS: "(none)", event.FieldReason: "250_ok_1615286631_qp_15309", event.FieldPID: "15280",
					event.FieldReplyCode: "250"}}},
		{"2021-03-09 12:43:51, resp, 250 ok 1615286631 qp 15309",
			want{product: event.ProductICDSoft, code: "resp", name: "reply", host: "mx1", time: time.Date(2021, 3, 9, 10, 43, 51, 0, time.UTC),
				fields: map[event.Field]string{event.FieldReplyCode: "250", event.FieldReplyText: "ok 1615286631 qp 15309", event.FieldPID: "15309"}}},
		{`2021-03-09 11:10:37, resp, 554 "Refused. You have no reverse DNS entry. Contact abuse@hosting_server.com for details."`,
			want{product: event.ProductICDSoft, code: "resp", severity: event.SeverityNotice,
				fields: map[event.Field]string{event.FieldReplyCode: "554", event.FieldReplyText: "Refused. You have no reverse DNS entry. Contact abuse@hosting_server.com for details."}}},
		{"2021-03-09 12:43:51, check, accepted rcpt, h:198.51.100.25, recipient@example.com, found existing recipient",
			want{product: event.ProductICDSoft, code: "check", fields: map[event.Field]string{event.FieldClientIP: "198.51.100.25", event.FieldRecipient: "recipient@example.com", event.FieldReason: "accepted rcpt"}}},
		{"2021-03-10 14:17:33, result, 90352, success, smtp_auth/did_0+0+1/",
			want{product: event.ProductICDSoft, code: "result", session: "mx1 delivery 90352",
				fields: map[event.Field]string{event.FieldDeliveryNum: "90352", event.FieldDeliveryResult: "success", event.FieldReason: "smtp_auth/did_0+0+1/"}}},
		{`Feb  7 05:29:44 gateway4 smtpf[28585]: k165S4285856336700 recipient <rob@LESLIEGROUP.COM> f="white" x="451 4.1.8  recipient <rob@LESLIEGROUP.COM> denied (k165S4285856336700)"`,
			want{product: event.ProductSmtpf, code: "", name: "recipient", session: "k165S4285856336700", host: "gateway4",
				fields: map[event.Field]string{event.FieldRecipient: "rob@LESLIEGROUP.COM", event.FieldFlags: "white", event.FieldReplyCode: "451", event.FieldEnhancedCode: "4.1.8"}}},
		{`Feb  7 05:29:44 gateway4 smtpf[28585]: k165S4285856336700 end i=204.41.5.23 p="ctspotdcemmsg03.service.cihs.gov.on.ca" f="white,ptr_multidomain,quit" h="ctspotdcemmsg03.service.cihs.gov.on.ca" b=0 t=100`,
			want{product: event.ProductSmtpf, name: "end", fields: map[event.Field]string{event.FieldClientIP: "204.41.5.23", event.FieldHelo: "ctspotdcemmsg03.service.cihs.gov.on.ca", event.FieldSize: "0", event.FieldFlags: "white,ptr_multidomain,quit"}}},
		{"09/01/20 00:00:19\tSMTP-IN\t6468E5679CDC4F53AFB8064FA9FA29E6.MAI\t2816\t21.74.49.152\tAUTH\tdmNjMjAxOQ==\t535 Invalid Username or Password\t34\t14\tuser.name@domain.com\t",
			want{product: event.ProductMailEnable, code: "AUTH", session: "mx1 2816/21.74.49.152", time: time.Date(2020, 9, 1, 0, 0, 19, 0, eet),
				fields: map[event.Field]string{event.FieldClientIP: "21.74.49.152", event.FieldReplyCode: "535", event.FieldReplyText: "Invalid Username or Password",
					event.FieldMessageID: "6468E5679CDC4F53AFB8064FA9FA29E6.MAI", event.FieldAuthUser: "user.name@domain.com"}}},
		{"03:19 03:22 SMTPD(00180250) [192.168.1.131] connect 209.221.59.70 port 2539",
			want{product: event.ProductIMail, code: "CONNECT", session: "SMTPD(00180250)", time: time.Date(2021, 3, 19, 3, 22, 0, 0, eet),
				fields: map[event.Field]string{event.FieldServerIP: "192.168.1.131", event.FieldClientIP: "209.221.59.70", event.FieldClientPort: "2539"}}},
		{"03:19 03:22 SMTPD(00180250) [209.221.59.70] MAIL FROM:<info-jjgcdshx@infostreet.us>",
			want{product: event.ProductIMail, code: "MAIL_FROM", fields: map[event.Field]string{event.FieldSender: "info-jjgcdshx@infostreet.us"}}},
		{"03:19 03:22 SMTPD(00180250) [209.221.59.70] C:\\IMail\\spool\\D28de0018025017cd.SMD 3827",
			want{product: event.ProductIMail, code: "MESSAGE_ACCEPTED", fields: map[event.Field]string{event.FieldMessageID: "C:\\IMail\\spool\\D28de0018025017cd.SMD", event.FieldSize: "3827"}}},
		{"03:19 03:22 SMTP-(00000260) ldeliver mail.domain.com user (1) <info-jjgcdshx@infostreet.us> 2354",
			want{product: event.ProductIMail, code: "DELIVERY", session: "SMTP-(00000260)", fields: map[event.Field]string{event.FieldRecipient: "user", event.FieldSender: "info-jjgcdshx@infostreet.us", event.FieldDeliveryNum: "1"}}},
	} {
		ev := parseTwice(t, p, c.line, src)
		expect(t, ev, c.w)
	}
}
