package clickhouse

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// genSessions makes n realistic session records: a fleet of hosts running the filter and
// mail-server products, a mix of outcomes with their usual SMTP replies, one to several
// recipients, IPv4 and IPv6 clients, spread over several days ending now.
func genSessions(seed uint64, n int) []record.Session {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	hosts := make([]string, 24)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("mx%02d.mail.example.net", i+1)
	}
	products := []string{"spamdyke", "qmail", "postfix", "exim", "smtpf"}
	domains := []string{"example.org", "gmail.com", "outlook.com", "corp.example.com", "mailbox.org", "ex\u00e4mple.de"}
	type verdict struct {
		o     record.Outcome
		code  int
		reply string
	}
	verdicts := []verdict{
		{record.Allowed, 250, "2.0.0 Ok: queued as 4F1C2A3B"},
		{record.Allowed, 250, "2.0.0 Ok: queued as 7D2E9F01"},
		{record.Allowed, 250, "2.0.0 Ok"},
		{record.DeniedRBL, 554, "5.7.1 Refused. Your IP is listed in zen.spamhaus.org"},
		{record.DeniedRDNS, 554, "5.7.1 Refused. Your reverse DNS entry is missing"},
		{record.DeniedGreylist, 451, "4.7.1 Greylisted, try again later"},
		{record.DeniedUnknownRecipient, 550, "5.1.1 <user@example.org>: Recipient address rejected: User unknown"},
		{record.DeniedRelay, 554, "5.7.1 Relaying denied"},
		{record.DeniedSpamScore, 550, "5.7.1 Message scored 12.3 \"spam\" \\ rejected"},
		{record.Timeout, 0, ""},
		{record.Disconnected, 0, ""},
		{record.TempFail, 421, "4.3.0 Temporary failure\ttry later"},
	}
	end := time.Now().UTC().Truncate(time.Millisecond)
	span := 4 * 24 * time.Hour
	out := make([]record.Session, n)
	for i := range out {
		s := &out[i]
		s.Host = hosts[r.IntN(len(hosts))]
		s.Product = products[r.IntN(len(products))]
		s.StartTime = end.Add(-time.Duration(r.Int64N(int64(span)))).Truncate(time.Second)
		s.EndTime = s.StartTime.Add(time.Duration(r.IntN(30000)) * time.Millisecond).Truncate(time.Second)
		s.SessionKey = fmt.Sprintf("%d", 10000+r.IntN(90000))
		src := fmt.Sprintf("/var/log/%s/current", s.Product)
		s.FirstPos = record.Position{Source: src, Offset: int64(r.IntN(1 << 30))}
		s.LastPos = record.Position{Source: src, Offset: s.FirstPos.Offset + int64(r.IntN(4000))}
		s.SessionID = record.NewSessionID(s.Host, s.Product, s.SessionKey, s.FirstPos)
		if r.IntN(10) == 0 {
			s.ClientIP = fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(65536), r.IntN(65536), r.IntN(65536))
		} else {
			s.ClientIP = fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(223), r.IntN(256), r.IntN(256), 1+r.IntN(254))
		}
		if r.IntN(4) > 0 {
			s.ClientPTR = fmt.Sprintf("host-%d.dyn.isp%d.net", r.IntN(100000), r.IntN(50))
		}
		s.HELO = "[" + s.ClientIP + "]"
		s.TLS = r.IntN(3) > 0
		dom := domains[r.IntN(len(domains))]
		s.MailFrom = fmt.Sprintf("sender%d@%s", r.IntN(5000), dom)
		v := verdicts[r.IntN(len(verdicts))]
		s.Outcome, s.SMTPCode, s.SMTPReply = v.o, v.code, v.reply
		s.Permanent = v.code >= 500
		nr := 1 + r.IntN(3)
		if r.IntN(50) == 0 {
			nr = 0
		}
		for j := 0; j < nr; j++ {
			s.Recipients = append(s.Recipients, record.Recipient{
				Address: fmt.Sprintf("user%d@%s", r.IntN(800), domains[r.IntN(len(domains))]),
				Outcome: v.o, SMTPCode: v.code, Reply: v.reply,
			})
		}
		if v.o == record.Allowed {
			s.MessageID = fmt.Sprintf("<%x.%d@%s>", r.Uint64(), i, dom)
			s.Size = int64(500 + r.IntN(2_000_000))
			s.Delivery = record.DeliveryDelivered
		} else {
			s.Reason = string(v.o)
		}
		s.ClosedBy = record.ClosedByEnd
		if v.o == record.Timeout {
			s.ClosedBy = record.ClosedByTimeout
		}
		if r.IntN(5) == 0 {
			s.Flags = []string{"pipelining"}
		}
		s.EventCount = 3 + r.IntN(20)
		s.MaxSeverity = []string{"info", "notice", "warning", "err"}[r.IntN(4)]
		s.OutcomeVersion = record.OutcomeVersion
	}
	return out
}

func genEvents(seed uint64, n int) []record.Event {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]record.Event, n)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i := range out {
		out[i] = record.Event{
			Time: now.Add(-time.Duration(r.IntN(86400)) * time.Second), Host: fmt.Sprintf("mx%02d.mail.example.net", 1+r.IntN(24)),
			Product: "spamdyke", Dialect: "spamdyke5", Code: "TLS_ERROR", Name: "tls_handshake_failed", Severity: "err",
			RawSeverity: "ERROR", SessionID: fmt.Sprintf("%032x", r.Uint64()), ClientIP: "192.0.2.1",
			Raw: fmt.Sprintf("Nov 23 10:00:%02d mx01 spamdyke[%d]: ERROR: TLS handshake failed: \"bad record mac\"", r.IntN(60), r.IntN(99999)),
			Pos: record.Position{Source: "/var/log/maillog", Offset: int64(i) * 120},
		}
	}
	return out
}
