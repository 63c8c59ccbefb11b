package gen

import (
	"strconv"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// Ipswitch IMail: the SMTP/system log (corpus/real/imail.log, FORMATS.md §6.1) and the
// antispam log (seed 002). Timestamps are "MM:DD HH:MM" (no year, no seconds).
//
//	03:09 12:43 SMTPD(00180250) [192.168.1.131] connect 209.221.59.70 port 2539
//	03:09 12:43 SMTPD(00180250) [209.221.59.70] EHLO jetbn.net
//	03:09 12:43 SMTPD(00180250) [209.221.59.70] MAIL FROM:<info@infostreet.example>
//	03:09 12:43 SMTPD(00180250) [209.221.59.70] RCPT To:<user@example.com>
//	03:09 12:43 SMTPD(00180250) [209.221.59.70] C:\IMail\spool\D28de0018025017cd.SMD 3827
//	03:09 12:43 SMTP-(00000260) processing C:\IMail\spool\Q28de0018025017cd.SMD
//	03:09 12:43 SMTP-(00000260) ldeliver example.com user (1) <info@infostreet.example> 2354
//	03:09 12:43 SMTP-(00000260) finished C:\IMail\spool\Q28de0018025017cd.SMD status=1
//
// Antispam lines carry the same "MM:DD HH:MM SMTPD(connid)" prefix (IMail 8.1 UG ch. 18: "All
// log messages are preceded by ... month:day hour:minute app_name(connection_ID)") and one
// message of seed 002, e.g. "BLACKLIST:203.0.113.9 was found on list (Spamhaus:zen.spamhaus.org:zen.spamhaus.org)->127.0.0.2".
// The session key is the SMTPD connection id; a refused message is deleted by IMail, so the
// refusal has no reply code (smtp_code 0, permanent false).

type imailModel struct {
	connID   uint32
	serverIP string
	clk      clock
}

func newIMailModel(h *host) *imailModel {
	return &imailModel{connID: 0x00100000 + uint32(h.rng.IntN(0x00f00000)), serverIP: "192.168.1." + strconv.Itoa(2+h.rng.IntN(250))}
}

func (m *imailModel) dialects() []string { return []string{"imail", "imail-antispam"} }

const (
	imAllowed = iota
	imRBL
	imHELO
	imSender
	imRDNS
	imScore
	imPremium
)

var imWeights = weighted{32, 25, 8, 8, 10, 10, 7}

func (m *imailModel) build(h *host, s *session, at int64) {
	r := h.rng
	s.res = resMinute
	kind := imWeights.pick(r)
	c := newClient(r, kind != imAllowed)
	m.connID += 1 + uint32(r.IntN(40))
	cid := string(appendHex(nil, uint64(m.connID), 8))
	s.t.SessionKey = cid
	s.t.ClientIP, s.t.HELO = c.ipStr, c.helo
	main := func(t int64, app, id, bracket, text string) {
		st := s.mark()
		m.clk.set(t)
		b := appendIMailTS(s.buf, &m.clk)
		b = append(b, ' ')
		b = append(b, app...)
		b = append(b, '(')
		b = append(b, id...)
		b = append(b, ')', ' ')
		if bracket != "" {
			b = append(b, '[')
			b = append(b, bracket...)
			b = append(b, ']', ' ')
		}
		s.buf = append(b, text...)
		s.push(t, 0, st)
	}
	spam := func(t int64, text string) {
		st := s.mark()
		m.clk.set(t)
		b := appendIMailTS(s.buf, &m.clk)
		b = append(b, " SMTPD("...)
		b = append(b, cid...)
		b = append(b, ") "...)
		s.buf = append(b, text...)
		s.push(t, 1, st)
	}
	t := at
	main(t, "SMTPD", cid, m.serverIP, "connect "+c.ipStr+" port "+strconv.Itoa(1024+r.IntN(64000)))
	// Connection filtering runs at connect: traces first, then the verdict, if any.
	list := rbls[int(c.ip)%len(rbls)]
	listSpec := " (" + listName(list) + ":" + list + ":" + list + ")"
	t += 10 + r.Int64N(300)
	spam(t, "BLACKLIST:connecting to service"+listSpec)
	label, reason := record.OutcomeNone, ""
	switch kind {
	case imRBL:
		spam(t, "BLACKLIST:"+c.ipStr+" was found on list"+listSpec+"->127.0.0."+strconv.Itoa(2+r.IntN(10)))
		label, reason = record.DeniedRBL, "BLACKLIST found"
	default:
		spam(t, "BLACKLIST:"+c.ipStr+" was not found on list"+listSpec)
	}
	t += 100 + r.Int64N(1500)
	main(t, "SMTPD", cid, c.ipStr, "EHLO "+c.helo)
	if kind == imHELO {
		spam(t, "VALIDATION: (HELO) "+c.helo+" domain failed active validation")
		label, reason = record.DeniedHELO, "VALIDATION (HELO)"
	}
	t += 100 + r.Int64N(1500)
	s.t.MailFrom = c.sender
	main(t, "SMTPD", cid, c.ipStr, "MAIL FROM:<"+c.sender+">")
	switch kind {
	case imSender:
		spam(t, "VALIDATION: (MAIL FROM) domain FAILED to resolve MX/A record for mail server "+c.sender)
		label, reason = record.DeniedSender, "VALIDATION (MAIL FROM)"
	case imRDNS:
		spam(t, "VALIDATION: (REVDNS) domain performing reverse dns lookup on address "+c.ipStr)
		spam(t, "VALIDATION: (REVDNS) "+c.ipStr+" address does not have a valid MX or A record, message rejected")
		label, reason = record.DeniedRDNS, "VALIDATION (REVDNS)"
	case imAllowed:
		spam(t, "validation: (mail from) domain suceeded for user "+c.sender)
	}
	n := 1 + weighted{60, 25, 10, 5}.pick(r)
	var rcpts []string
	for i := 0; i < n; i++ {
		t += 100 + r.Int64N(1500)
		addr := h.local()
		rcpts = append(rcpts, addr)
		main(t, "SMTPD", cid, c.ipStr, "RCPT To:<"+addr+">")
	}
	t += 500 + r.Int64N(5000)
	switch kind {
	case imRBL:
		spam(t, "message failed check"+listName(list)+" which was marked as trusted, deleting")
	case imScore:
		total := 4 + r.IntN(4)
		spam(t, "message failed "+strconv.Itoa(2+r.IntN(total-2))+" of "+strconv.Itoa(total)+" checks, deleting")
		label, reason = record.DeniedSpamScore, "message failed checks"
	case imPremium:
		spam(t, "email determined to be spam by Premium filter, Tag = "+string(appendHexUpper(appendHexUpper(nil, r.Uint64(), 16), r.Uint64(), 16)))
		label, reason = record.DeniedSpamScore, "Premium filter"
	}
	if label != record.OutcomeNone {
		for _, a := range rcpts {
			s.rcpt(a, label, 0)
		}
		s.rollUp(label, 0, reason)
		return
	}
	// Accepted: spool file D<4 hex><connid><4 hex>.SMD, then the delivery worker on Q….
	suffix := string(appendHex(nil, uint64(r.IntN(0x10000)), 4))
	prefix := string(appendHex(nil, uint64(r.IntN(0x10000)), 4))
	spool := prefix + cid + suffix + ".SMD"
	size := 900 + r.IntN(60000)
	main(t, "SMTPD", cid, c.ipStr, `C:\IMail\spool\D`+spool+" "+strconv.Itoa(size))
	for _, a := range rcpts {
		s.rcpt(a, record.Allowed, 250)
	}
	s.rollUp(record.OutcomeNone, 0, "")
	s.t.Reason = "spooled"
	worker := string(appendHex(nil, uint64(0x200+r.IntN(0x80)), 8))
	t += 100 + r.Int64N(3000)
	main(t, "SMTP-", worker, "", `processing C:\IMail\spool\Q`+spool)
	for _, a := range rcpts {
		t += 10 + r.Int64N(300)
		at := 0
		for i := range a {
			if a[i] == '@' {
				at = i
			}
		}
		main(t, "SMTP-", worker, "", "ldeliver "+a[at+1:]+" "+a[:at]+" (1) <"+c.sender+"> "+strconv.Itoa(size-200-r.IntN(400)))
	}
	t += 10 + r.Int64N(300)
	main(t, "SMTP-", worker, "", `finished C:\IMail\spool\Q`+spool+" status=1")
	s.t.Delivery = record.DeliveryDelivered
}

func listName(list string) string {
	switch list {
	case "zen.spamhaus.org":
		return "Spamhaus"
	case "bl.spamcop.net":
		return "SpamCop"
	case "b.barracudacentral.org":
		return "Barracuda"
	}
	return "SORBS"
}
