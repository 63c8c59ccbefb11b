package parse

import "github.com/mxtrail/mxtrail/enrich/event"

// Catalogues: facts (identifier, name, severity) of each product's messages, from the seeds
// and FORMATS.md. The parser looks codes up here to fill Event.Name and Event.Severity.

type smtpfEntry struct {
	Num    int
	Sev    string // syslog priority label of the catalogue: ERR, WARN, INFO
	Name   string
	Format string
}

func smtpfSeverity(s string) event.Severity {
	switch s {
	case "ERR":
		return event.SeverityError
	case "WARN":
		return event.SeverityWarning
	case "INFO":
		return event.SeverityInfo
	}
	return event.SeverityUnset
}

// isodeEvent is one event of the MTA_SMTP facility (seed 000; Close is from the R19 table).
type isodeEvent struct {
	Name string
	ID   int
	Sev  string
}

var isodeCatalogue = []isodeEvent{
	{"BufferTooBig", 103, "error"}, {"Connection", 102, "info"}, {"Critical", 14, "critical"},
	{"DNSBLfailed", 106, "warning"}, {"Error", 12, "error"}, {"ErrorS", 28, "error"},
	{"Fatal", 13, "fatal"}, {"FatalS", 29, "fatal"}, {"Listen", 100, "notice"},
	{"ListenError", 101, "fatal"}, {"Notice", 6, "notice"}, {"NoticeS", 22, "notice"},
	{"rDNSfailed", 107, "warning"}, {"ReadPDU", 31, "pdu"}, {"SASLinit", 104, "error"},
	{"SPFfail", 108, "error"}, {"SPFneutral", 110, "info"}, {"SPFnone", 112, "warning"},
	{"SPFpass", 111, "info"}, {"SPFpermerror", 114, "error"}, {"SPFsoftfail", 109, "warning"},
	{"SPFtemperror", 113, "error"}, {"Timeout", 105, "info"}, {"WritePDU", 30, "pdu"},
	{"Close", 212, "notice"},
}

// isodeSeverity maps Isode's severity words (FORMATS.md §4.1) onto syslog levels.
func isodeSeverity(s []byte) event.Severity {
	switch string(s) {
	case "critical":
		return event.SeverityCritical
	case "fatal":
		return event.SeverityCritical
	case "error":
		return event.SeverityError
	case "warning", "authfail":
		return event.SeverityWarning
	case "notice", "authok":
		return event.SeverityNotice
	case "info", "information", "success":
		return event.SeverityInfo
	case "detail", "debug", "pdu":
		return event.SeverityDebug
	}
	return event.SeverityUnset
}

// spamdykeCodes are the 36 CODE labels of spamdyke 5.0.1 + 4.x (FORMATS.md §1.3) with the
// reply class spamdyke itself sends (0: none of its own).
var spamdykeCodes = []struct {
	Code  string
	Reply int
}{
	{"ALLOWED", 0}, {"ALLOWED_AUTHENTICATED", 235}, {"ALLOWED_TLS", 220}, {"ALLOWED_DATA", 354},
	{"TLS_ENCRYPTED", 0}, {"DENIED_UNPARSEABLE", 554}, {"DENIED_TOO_MANY_RECIPIENTS", 421},
	{"DENIED_UNQUALIFIED_RECIPIENT", 554}, {"DENIED_GRAYLISTED", 421}, {"DENIED_RDNS_MISSING", 421},
	{"DENIED_RDNS_RESOLVE", 421}, {"DENIED_IP_IN_CC_RDNS", 554}, {"DENIED_IP_IN_RDNS", 554},
	{"DENIED_EARLYTALKER", 554}, {"DENIED_BLACKLIST_NAME", 554}, {"DENIED_BLACKLIST_IP", 554},
	{"TIMEOUT", 421}, {"DENIED_SENDER_BLACKLISTED", 554}, {"DENIED_RECIPIENT_BLACKLISTED", 554},
	{"DENIED_SENDER_NO_MX", 421}, {"DENIED_RBL_MATCH", 554}, {"DENIED_RHSBL_MATCH", 554},
	{"FAILED_AUTH", 535}, {"UNKNOWN_AUTH", 504}, {"DENIED_ACCESS_DENIED", 554},
	{"DENIED_RELAYING", 554}, {"DENIED_OTHER", 421}, {"DENIED_ZERO_RECIPIENTS", 554},
	{"DENIED_AUTH_REQUIRED", 554}, {"DENIED_REJECT_ALL", 554}, {"DENIED_IDENTICAL_SENDER_RECIPIENT", 554},
	{"DENIED_HEADER_BLACKLISTED", 554}, {"DENIED_INVALID_RECIPIENT", 554},
	{"DENIED_UNAVAILABLE_RECIPIENT", 554}, {"DENIED_SENDER_NOT_LOCAL", 554},
	{"DENIED_SENDER_NOT_AUTH", 554}, {"FAILED_TLS", 454},
}

// mailEnableCodes: seed 003 and FORMATS.md §5.3.
var mailEnableCodes = []struct{ Code, Name string }{
	{"ME-I0101", "local_delivery"}, {"ME-I0102", "catch_all_delivery"},
	{"ME-I0106", "relay_granted_local_address"}, {"ME-I0107", "relay_granted_ip_range"},
	{"ME-I0108", "relay_granted_authenticated"}, {"ME-I0110", "relay_granted_open_relay"},
	{"ME-I0111", "relay_denied_criteria"}, {"ME-E0109", "relay_denied_sender_not_defined"},
	{"ME-I0112", "relay_denied_relaying_disabled"}, {"ME-I0073", "ip_address_banned"},
}

// imailMessage classifies IMail antispam and SMTP lines by a fixed text prefix after
// "APP(CONNID) ". Code is ours (IMail prints none); the severity is our reading of the
// guide: verbose trace is debug, verdicts notice, lookup failures warning.
type imailMessage struct {
	Prefix string
	Code   string
	Sev    event.Severity
}

var imailMessages = []imailMessage{
	{"BLACKLIST:connecting to service", "BLACKLIST_CONNECTING", event.SeverityDebug},
	{"BLACKLIST:retrying service", "BLACKLIST_RETRYING", event.SeverityDebug},
	{"BLACKLIST:received a reply from service", "BLACKLIST_REPLY", event.SeverityDebug},
	{"BLACKLIST:failed to connect to service", "BLACKLIST_FAILED_CONNECT", event.SeverityWarning},
	{"VALIDATION: (HELO) domain FAILED to receive response from DNS server", "VALIDATION_HELO_DNS_FAILED", event.SeverityWarning},
	{"VALIDATION: (HELO) no HELO sent", "VALIDATION_HELO_MISSING", event.SeverityNotice},
	{"VALIDATION: (HELO) domain performing DNS lookup", "VALIDATION_HELO_LOOKUP", event.SeverityDebug},
	{"VALIDATION: (HELO) domain received reply from DNS server", "VALIDATION_HELO_REPLY", event.SeverityDebug},
	{"VALIDATION: (MAIL FROM) domain FAILED to resolve MX/A record", "VALIDATION_MAILFROM_NO_MX", event.SeverityNotice},
	{"VALIDATION: (MAIL FROM) domain FAILED to connect to", "VALIDATION_MAILFROM_CONNECT_FAILED", event.SeverityNotice},
	{"VALIDATION: (MAIL FROM) domain FAILED to communicate with server", "VALIDATION_MAILFROM_COMM_FAILED", event.SeverityNotice},
	{"VALIDATION: (MAIL FROM) domain FAILED SMTP server error:", "VALIDATION_MAILFROM_SMTP_ERROR", event.SeverityNotice},
	{"VALIDATION: (MAIL FROM) domain validating MAIL FROM address", "VALIDATION_MAILFROM_VALIDATING", event.SeverityDebug},
	{"VALIDATION (MAIL FROM) no MAIL FROM sent", "VALIDATION_MAILFROM_MISSING", event.SeverityNotice},
	{"VALIDATION: (MAIL FROM) no MAIL FROM sent", "VALIDATION_MAILFROM_MISSING", event.SeverityNotice},
	{"validation: (mail from) domain suceeded for user", "VALIDATION_MAILFROM_SUCCEEDED", event.SeverityDebug},
	{"VALIDATION: (REVDNS) domain FAILED to receive reply from DNS server", "VALIDATION_REVDNS_DNS_FAILED", event.SeverityWarning},
	{"VALIDATION: (REVDNS) domain FAILED reverse DNS validation", "VALIDATION_REVDNS_FAILED", event.SeverityNotice},
	{"VALIDATION: (REVDNS) domain performing reverse dns lookup", "VALIDATION_REVDNS_LOOKUP", event.SeverityDebug},
	{"VALIDATION: (REVDNS) domain reverse DNS validation SUCEEDED", "VALIDATION_REVDNS_SUCCEEDED", event.SeverityDebug},
	{"ADMIN: reloading connection filtering settings", "ADMIN_RELOADING", event.SeverityInfo},
	{"ADMIN: finished reloading connection filtering settings", "ADMIN_RELOADED", event.SeverityInfo},
	{"email determined to be spam by Premium filter", "PREMIUM_SPAM", event.SeverityNotice},
	{"processing ", "DELIVERY_PROCESSING", event.SeverityInfo},
	{"finished ", "DELIVERY_FINISHED", event.SeverityInfo},
	{"connect ", "CONNECT", event.SeverityInfo},
	{"EHLO ", "EHLO", event.SeverityInfo},
	{"HELO ", "HELO", event.SeverityInfo},
	{"MAIL FROM:", "MAIL_FROM", event.SeverityInfo},
	{"RCPT To:", "RCPT_TO", event.SeverityInfo},
	{"RCPT TO:", "RCPT_TO", event.SeverityInfo},
	{"QUIT", "QUIT", event.SeverityInfo},
}

// imailCode finds the code of an IMail message text (after "APP(CONNID) " and, for SMTPD,
// the "[ip] " prefix). Messages with a variable part before the fixed text are handled
// by the caller's pattern name.
func imailCode(text []byte) (string, event.Severity) {
	for i := range imailMessages {
		m := &imailMessages[i]
		if len(text) >= len(m.Prefix) && string(text[:len(m.Prefix)]) == m.Prefix {
			return m.Code, m.Sev
		}
	}
	return "", event.SeverityUnset
}
