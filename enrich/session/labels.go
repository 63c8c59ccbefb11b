package session

import (
	"bytes"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// Mapping tables from each product's raw codes into the unified vocabulary (FORMATS.md §7,
// record.OutcomeVersion). README.md lists them with every deviation from FORMATS.md.

// sdCode is a spamdyke CODE: its label and the reply spamdyke itself sends (FORMATS.md §1.3).
type sdCode struct {
	name  string // the CODE itself (set in init: a static string, no allocation per line)
	label record.Outcome
	reply int
	end   bool // the connection is over after this line
	none  bool // no verdict on the message (TLS passthrough)
}

func init() {
	for k, c := range spamdykeCodes {
		c.name = k
		spamdykeCodes[k] = c
	}
}

var spamdykeCodes = map[string]sdCode{
	"ALLOWED":                           {"", record.Allowed, 250, false, false},
	"ALLOWED_AUTHENTICATED":             {"", record.Allowed, 235, false, false},
	"ALLOWED_TLS":                       {"", record.Allowed, 220, false, false},
	"ALLOWED_DATA":                      {"", record.Allowed, 354, false, false},
	"TLS_ENCRYPTED":                     {"", record.Encrypted, 0, true, true},
	"DENIED_UNPARSEABLE":                {"", record.DeniedProtocol, 554, false, false},
	"DENIED_TOO_MANY_RECIPIENTS":        {"", record.DeniedRecipient, 421, false, false},
	"DENIED_UNQUALIFIED_RECIPIENT":      {"", record.DeniedRecipient, 554, false, false},
	"DENIED_GRAYLISTED":                 {"", record.DeniedGreylist, 421, false, false},
	"DENIED_RDNS_MISSING":               {"", record.DeniedRDNS, 421, false, false},
	"DENIED_RDNS_RESOLVE":               {"", record.DeniedRDNS, 421, false, false},
	"DENIED_IP_IN_CC_RDNS":              {"", record.DeniedRDNS, 554, false, false},
	"DENIED_IP_IN_RDNS":                 {"", record.DeniedRDNS, 554, false, false},
	"DENIED_EARLYTALKER":                {"", record.DeniedProtocol, 554, false, false},
	"DENIED_BLACKLIST_NAME":             {"", record.DeniedBlacklist, 554, false, false},
	"DENIED_BLACKLIST_IP":               {"", record.DeniedBlacklist, 554, false, false},
	"DENIED_ACCESS_DENIED":              {"", record.DeniedBlacklist, 554, false, false},
	"TIMEOUT":                           {"", record.Timeout, 421, true, false},
	"DENIED_SENDER_BLACKLISTED":         {"", record.DeniedSender, 554, false, false},
	"DENIED_RECIPIENT_BLACKLISTED":      {"", record.DeniedRecipient, 554, false, false},
	"DENIED_SENDER_NO_MX":               {"", record.DeniedSender, 421, false, false},
	"DENIED_RBL_MATCH":                  {"", record.DeniedRBL, 554, false, false},
	"DENIED_RHSBL_MATCH":                {"", record.DeniedRHSBL, 554, false, false},
	"FAILED_AUTH":                       {"", record.AuthFailed, 535, false, false},
	"UNKNOWN_AUTH":                      {"", record.AuthFailed, 504, false, false},
	"DENIED_RELAYING":                   {"", record.DeniedRelay, 554, false, false},
	"DENIED_OTHER":                      {"", record.DeniedOther, 421, false, false},
	"DENIED_ZERO_RECIPIENTS":            {"", record.DeniedRecipient, 554, false, false},
	"DENIED_AUTH_REQUIRED":              {"", record.DeniedAuthRequired, 554, false, false},
	"DENIED_REJECT_ALL":                 {"", record.DeniedPolicy, 554, false, false},
	"DENIED_IDENTICAL_SENDER_RECIPIENT": {"", record.DeniedRecipient, 554, false, false},
	"DENIED_HEADER_BLACKLISTED":         {"", record.DeniedContent, 554, false, false},
	"DENIED_INVALID_RECIPIENT":          {"", record.DeniedUnknownRecipient, 554, false, false},
	"DENIED_UNAVAILABLE_RECIPIENT":      {"", record.DeniedUnknownRecipient, 554, false, false},
	"DENIED_SENDER_NOT_LOCAL":           {"", record.DeniedSender, 554, false, false},
	"DENIED_SENDER_NOT_AUTH":            {"", record.DeniedSender, 554, false, false},
	"FAILED_TLS":                        {"", record.TLSFailed, 454, false, false},
}

// spamdykeLabel maps a CODE line to a label and reply code. DENIED_OTHER carries the
// downstream reply (qmail, chkuser, simscan, SpamAssassin) underscored in reason: its code
// and meaning come from that text. ALLOWED carries qmail's reply ("250_ok_<ts>_qp_<pid>").
func spamdykeLabel(code, reason []byte) (record.Outcome, int, bool) {
	c, ok := spamdykeCodes[string(code)]
	if !ok {
		return record.OutcomeNone, 0, false
	}
	o, n := c.label, c.reply
	if rc := code3(reason); rc != 0 && (o == record.Allowed || o == record.DeniedOther) {
		n = rc
	}
	if o == record.DeniedOther {
		o = replyLabel(n, reason, record.DeniedOther)
	}
	return o, n, true
}

// textRule refines a refusal by words of its reply text (spaces or underscores).
type textRule struct {
	words []string // any of them, case-insensitive
	label record.Outcome
}

// replyRules classify reply texts that name their reason: spamdyke's rejection texts as
// ICDSoft shows them, qmail/chkuser/simscan/SpamAssassin replies, generic MTA texts.
var replyRules = []textRule{
	{[]string{"no mailbox", "no_mailbox", "mailbox unavailable", "mailbox_unavailable", "unknown user", "unknown_user", "user unknown", "user_unknown", "does not exist", "does_not_exist", "not existing recipient"}, record.DeniedUnknownRecipient},
	{[]string{"virus", "infected"}, record.DeniedVirus},
	{[]string{"graylist", "greylist", "grey list", "gray list"}, record.DeniedGreylist},
	{[]string{"reverse dns", "reverse_dns", "ptr record", "ptr_record"}, record.DeniedRDNS},
	{[]string{"rhsbl", "uribl"}, record.DeniedRHSBL},
	{[]string{"rbl", "dnsbl", "blocked using", "blocked_using", "black listed by"}, record.DeniedRBL},
	{[]string{"spam", "score"}, record.DeniedSpamScore},
	{[]string{"relaying", "relay"}, record.DeniedRelay},
	{[]string{"authentication is required", "authentication_is_required", "requires authentication", "must auth"}, record.DeniedAuthRequired},
	{[]string{"blacklisted", "denied access", "denied_access"}, record.DeniedBlacklist},
	{[]string{"mail exchanger", "mail_exchanger", "no mx", "no_mx", "sender address", "sender_address"}, record.DeniedSender},
	{[]string{"too many recipients", "too_many_recipients", "not being accepted at this address"}, record.DeniedRecipient},
	{[]string{"smtp protocol", "smtp_protocol", "line too long", "syntax"}, record.DeniedProtocol},
	{[]string{"header"}, record.DeniedContent},
	{[]string{"does not accept mail"}, record.DeniedPolicy},
}

// replyLabel labels a refusal from its code and text: a text rule when one matches, else
// TEMPFAIL for 4xx, else def.
func replyLabel(code int, text []byte, def record.Outcome) record.Outcome {
	if code >= 200 && code < 400 {
		return record.Allowed
	}
	if o := textLabel(text); o != record.OutcomeNone {
		return o
	}
	if code >= 400 && code < 500 {
		return record.TempFail
	}
	return def
}

func textLabel(text []byte) record.Outcome {
	var low [512]byte
	n := copy(low[:], text)
	l := low[:n]
	for i, c := range l {
		if c >= 'A' && c <= 'Z' {
			l[i] = c + 'a' - 'A'
		}
	}
	for _, r := range replyRules {
		for _, w := range r.words {
			if bytes.Contains(l, []byte(w)) {
				return r.label
			}
		}
	}
	return record.OutcomeNone
}

// smtpfReplies maps smtpf reply/log numbers (FORMATS.md §3.4) to labels.
var smtpfReplies = map[int]record.Outcome{
	290: record.Allowed, 297: record.Allowed, 554: record.Allowed, 281: record.Allowed,
	523: record.DeniedRBL, 525: record.DeniedRBL, 873: record.DeniedRBL,
	790: record.DeniedRHSBL, 792: record.DeniedRHSBL, 794: record.DeniedRHSBL, 900: record.DeniedRHSBL,
	894: record.DeniedRHSBL, 895: record.DeniedRHSBL, 940: record.DeniedRHSBL, 762: record.DeniedRHSBL, 763: record.DeniedRHSBL,
	416: record.DeniedRDNS, 418: record.DeniedRDNS,
	415: record.TempFail,
	552: record.DeniedGreylist, 553: record.DeniedGreylist, 387: record.DeniedGreylist, 388: record.DeniedGreylist,
	701: record.DeniedSPF, 702: record.DeniedSPF,
	207: record.DeniedVirus, 161: record.DeniedVirus, 375: record.DeniedVirus,
	208: record.DeniedVirus, 162: record.DeniedVirus, 376: record.DeniedVirus, 847: record.DeniedVirus,
	692: record.DeniedSpamScore, 617: record.DeniedSpamScore, 618: record.DeniedSpamScore, 960: record.DeniedSpamScore, 666: record.DeniedSpamScore,
	288: record.DeniedRelay, 293: record.DeniedRelay, 296: record.DeniedRelay, 131: record.DeniedRelay,
	292: record.DeniedUnknownRecipient, 245: record.DeniedUnknownRecipient, 244: record.DeniedUnknownRecipient, 300: record.DeniedUnknownRecipient,
	434: record.DeniedSender, 439: record.DeniedSender, 572: record.DeniedSender,
	436: record.TempFail, 907: record.TempFail,
	120: record.DeniedBlacklist, 854: record.DeniedBlacklist, 125: record.DeniedBlacklist, 855: record.DeniedBlacklist,
	127: record.DeniedBlacklist, 856: record.DeniedBlacklist, 135: record.DeniedBlacklist, 137: record.DeniedBlacklist,
	139: record.DeniedBlacklist, 926: record.DeniedBlacklist,
	424: record.DeniedHELO, 427: record.DeniedHELO, 428: record.DeniedHELO, 430: record.DeniedHELO, 432: record.DeniedHELO,
	630: record.DeniedProtocol, 643: record.DeniedProtocol, 640: record.DeniedProtocol, 641: record.DeniedProtocol, 404: record.DeniedProtocol,
	329: record.DeniedRateLimit, 522: record.DeniedRateLimit, 475: record.DeniedRateLimit, 505: record.DeniedRateLimit,
	625: record.DeniedSize, 901: record.DeniedSize,
	275: record.AuthFailed, 269: record.AuthFailed,
	826: record.DeniedContent, 870: record.DeniedContent, 945: record.DeniedContent, 927: record.DeniedContent,
	456: record.DeniedContent, 462: record.DeniedContent,
	331: record.DeniedOther, 312: record.DeniedOther,
	639: record.Disconnected, 628: record.Disconnected, 314: record.Disconnected, 316: record.Disconnected,
	320: record.Disconnected, 644: record.Disconnected,
	1022: record.TLSFailed,
	549:  record.TempFail, 550: record.TempFail, 551: record.TempFail, 966: record.TempFail,
}

// smtpfReplyNumber finds the "#NNN" reply number in an smtpf reply text (the last one before
// the SID), 0 when there is none (2.0.x replies).
func smtpfReplyNumber(text []byte) int {
	n := 0
	for i := len(text) - 1; i >= 0; i-- {
		if text[i] != '#' {
			continue
		}
		v, j := 0, i+1
		for j < len(text) && text[j] >= '0' && text[j] <= '9' && j-i <= 4 {
			v = v*10 + int(text[j]-'0')
			j++
		}
		if j > i+1 {
			n = v
			break
		}
	}
	return n
}

// smtpfLabel labels an smtpf reply: by reply number, else by text, else by code class
// (other 4xx TEMPFAIL, other 5xx DENIED_OTHER). A 4xx "unknown recipient" is TEMPFAIL.
func smtpfLabel(code int, text []byte) record.Outcome {
	if code >= 200 && code < 400 {
		return record.Allowed
	}
	if o, ok := smtpfReplies[smtpfReplyNumber(text)]; ok && o != record.Allowed {
		if code >= 400 && code < 500 && o == record.DeniedUnknownRecipient {
			return record.TempFail
		}
		return o
	}
	return replyLabel(code, text, record.DeniedOther)
}
