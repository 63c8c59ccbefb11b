// Package alert owns what the logs mean for an operator: the severity of every event
// normalised onto syslog levels across products (keeping the product's own word), the alert
// catalogue (stable rule ids, matched by a table lookup on (product, code), never a regex per
// line), the pure alert engine that turns matching events and closed sessions into
// de-duplicated, throttled alert records, and the metrics the Prometheus rules read.
//
// Nothing here does I/O, starts a goroutine or reads a clock: time is the events' time, so a
// replay re-emits identical records (same alert_id and version).
package alert

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/record"
)

// Rule is a stable alert-catalogue id (metrics label, alert record, README, Prometheus rules).
type Rule uint8

// Rules. Event rules match single parsed lines; RuleAuthFailureBurst is behavioural (closed
// sessions). The other behavioural and pipeline rules of the catalogue live on the Prometheus
// side and read this package's metrics.
const (
	RuleNone Rule = iota
	RuleIsodeCritical
	RuleIsodeFatal
	RuleIsodeListenError
	RuleSmtpfOutOfMemory
	RuleSmtpfResources
	RuleSmtpfInterface
	RuleSmtpfLicence
	RuleSmtpfAccept
	RuleOpenRelay
	RuleRelayUnexpected
	RuleDNSBLFailure
	RuleCriticalOther
	RuleAuthFailureBurst
	numRules
)

var ruleNames = [numRules]string{"", "isode_critical", "isode_fatal", "isode_listen_error",
	"smtpf_out_of_memory", "smtpf_resources", "smtpf_interface", "smtpf_licence", "smtpf_accept",
	"open_relay", "relay_unexpected", "dnsbl_failure", "critical_other", "auth_failure_burst"}

func (r Rule) String() string {
	if r < numRules {
		return ruleNames[r]
	}
	return ""
}

// Rules lists every rule id this package can raise, for metrics and documentation.
func Rules() []Rule {
	rs := make([]Rule, 0, numRules-1)
	for r := RuleNone + 1; r < numRules; r++ {
		rs = append(rs, r)
	}
	return rs
}

// entry is what the catalogue knows about one (product, code).
type entry struct {
	sev  event.Severity // normalised severity; SeverityUnset keeps the parser's
	rule Rule
}

// Catalogue is the compiled normalisation and rule table. Build it once with NewCatalogue;
// it is read-only afterwards and safe for concurrent use.
type Catalogue struct {
	codes   [16]map[string]entry // by event.Product
	trusted []netip.Prefix
}

// Class is the verdict of the catalogue on one event.
type Class struct {
	Severity event.Severity // normalised
	Rule     Rule           // RuleNone when no event rule matches
}

func smtpfCodes(sev event.Severity, rule Rule, nums ...int) map[string]entry {
	m := map[string]entry{}
	for _, n := range nums {
		m["#"+strconv.Itoa(n)] = entry{sev, rule}
	}
	return m
}

// NewCatalogue compiles the tables; trusted are the networks relaying is expected from
// (relay_unexpected fires for a relay grant to a client outside them; with none configured
// the rule is off).
func NewCatalogue(trusted []netip.Prefix) *Catalogue {
	c := &Catalogue{trusted: trusted}
	for i := range c.codes {
		c.codes[i] = map[string]entry{}
	}
	add := func(p event.Product, m map[string]entry) {
		for k, v := range m {
			c.codes[p][k] = v
		}
	}
	crit := event.SeverityCritical
	// Isode: the parser maps the level word (critical, fatal → critical; authfail → warning;
	// detail, pdu → debug); the event ID picks the rule.
	add(event.ProductIsode, map[string]entry{
		"14": {crit, RuleIsodeCritical}, "13": {crit, RuleIsodeFatal}, "29": {crit, RuleIsodeFatal},
		"101": {crit, RuleIsodeListenError},
	})
	// smtpf: the catalogue's ERR/WARN/INFO is a syslog priority, and ERR covers both server
	// faults and per-message verdicts (FORMATS.md §3.4). Faults that stop or cripple the
	// filter are critical; verdicts on one message or client are notice; DNS lookup failures
	// (filtering silently degrades) are warning.
	add(event.ProductSmtpf, smtpfCodes(crit, RuleSmtpfOutOfMemory, 538))
	add(event.ProductSmtpf, smtpfCodes(crit, RuleSmtpfResources, 556))
	add(event.ProductSmtpf, smtpfCodes(crit, RuleSmtpfInterface, 596, 812))
	// #396–#412 except #408 (INFO "found valid licensed IP").
	add(event.ProductSmtpf, smtpfCodes(crit, RuleSmtpfLicence, 396, 397, 398, 399, 400, 401, 402, 403, 404, 405, 406, 407, 409, 410, 411, 412))
	add(event.ProductSmtpf, smtpfCodes(crit, RuleSmtpfAccept, 602))
	add(event.ProductSmtpf, smtpfCodes(event.SeverityWarning, RuleDNSBLFailure, 446, 453, 468, 473))
	// a session end whose client may relay (Engine.Line): only outside the trusted networks
	add(event.ProductSmtpf, map[string]entry{relayGrantCode: {event.SeverityInfo, RuleRelayUnexpected}})
	add(event.ProductSmtpf, smtpfCodes(event.SeverityNotice, RuleNone,
		161, 207, 375, // a virus found by avastd, clamd, fpscand
		616,      // SIQ verdict text
		785,      // message discarded by uri-bl policy
		312, 331, // the forward host rejected the message
		435, 490, 465, 467, 469, 470, 472, 474, // sender domain has no MX / does not exist
		519,                               // connection rate exceeded by a client
		568,                               // mail loop from a client
		630,                               // client talked before the greeting
		257, 262, 314, 316, 320, 628, 639, // a client's I/O error
		319,                     // client timeout after DOT-LF
		260, 261, 265, 268, 270, // a client's broken AUTH encoding
	))
	// MailEnable: ME-I0110 (anyone may relay) is logged at info and is the worst thing in the
	// log; ME-E0109 is a relay denial, a verdict, despite its E.
	add(event.ProductMailEnable, map[string]entry{
		"ME-I0110": {crit, RuleOpenRelay},
		"ME-E0109": {event.SeverityNotice, RuleNone},
		"ME-I0111": {event.SeverityNotice, RuleNone}, "ME-I0112": {event.SeverityNotice, RuleNone},
		"ME-I0073": {event.SeverityNotice, RuleNone},
		"ME-I0107": {event.SeverityInfo, RuleRelayUnexpected}, // only outside the trusted networks
	})
	// IMail: severities derived from the message by the parser; a DNSBL service that cannot be
	// reached means mail is no longer checked against it.
	add(event.ProductIMail, map[string]entry{
		"BLACKLIST_FAILED_CONNECT": {event.SeverityError, RuleDNSBLFailure},
	})
	// spamdyke: ERROR(...) lines are errors (parser); an AUTH failure is Isode's "authfail".
	add(event.ProductSpamdyke, map[string]entry{
		"FAILED_AUTH": {event.SeverityWarning, RuleNone}, "UNKNOWN_AUTH": {event.SeverityWarning, RuleNone},
	})
	return c
}

// NotableCodes are the codes the assembler must emit as notable events whatever their
// severity, so every line an event rule can match reaches the engine.
func (c *Catalogue) NotableCodes() []string {
	var out []string
	for _, m := range c.codes {
		for code, e := range m {
			if e.rule != RuleNone && code != relayGrantCode { // that one reaches Engine.Line
				out = append(out, code)
			}
		}
	}
	return out
}

// Severity normalises one parsed event (hot path: one map lookup, no allocation).
func (c *Catalogue) Severity(ev *event.Event) event.Severity {
	sev := ev.Severity
	if int(ev.Product) >= len(c.codes) {
		return sev
	}
	if e, ok := c.codes[ev.Product][string(ev.Bytes(ev.Code))]; ok && e.sev != event.SeverityUnset {
		return e.sev
	}
	if ev.Product == event.ProductSpamdyke {
		if code := ev.Bytes(ev.Code); len(code) > 7 && string(code[:7]) == "DENIED_" {
			return event.SeverityNotice // a verdict on a client, logged without a level
		}
	}
	return sev
}

// Classify normalises and matches one notable event given as strings (the record the
// assembler emits, with its session id); clientIP and text feed relay_unexpected.
func (c *Catalogue) Classify(product, code string, parserSev event.Severity, clientIP, raw string) Class {
	p := productOf(product)
	cl := Class{Severity: parserSev}
	e, ok := c.codes[p][code]
	if ok {
		if e.sev != event.SeverityUnset {
			cl.Severity = e.sev
		}
		cl.Rule = e.rule
	} else if p == event.ProductSpamdyke && strings.HasPrefix(code, "DENIED_") {
		cl.Severity = event.SeverityNotice
	}
	if cl.Rule == RuleRelayUnexpected {
		cl.Rule = RuleNone
		if ip, ok := relayIP(clientIP, raw); ok && len(c.trusted) > 0 && !c.isTrusted(ip) {
			cl.Rule, cl.Severity = RuleRelayUnexpected, event.SeverityCritical
		}
	}
	if cl.Rule == RuleNone && cl.Severity != event.SeverityUnset && cl.Severity <= event.SeverityCritical {
		cl.Rule = RuleCriticalOther
	}
	return cl
}

// NormaliseEvent replaces the parser's level of a notable event by the normalised one (the
// product's own word stays in RawSeverity), so the events topic and table agree with the
// metrics and the alert records. Classifying a normalised event again gives the same class.
func (c *Catalogue) NormaliseEvent(ev *record.Event) {
	if cl := c.Classify(ev.Product, ev.Code, SeverityByName(ev.Severity), ev.ClientIP, ev.Raw); cl.Severity != event.SeverityUnset {
		ev.Severity = cl.Severity.String()
	}
}

func (c *Catalogue) isTrusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range c.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// relayIP finds the client of a relay grant: the event's client_ip, or MailEnable's
// "Sender IP (a.b.c.d)".
func relayIP(clientIP, raw string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(clientIP); err == nil {
		return ip, true
	}
	const marker = "Sender IP ("
	i := strings.Index(raw, marker)
	if i < 0 {
		return netip.Addr{}, false
	}
	rest := raw[i+len(marker):]
	j := strings.IndexByte(rest, ')')
	if j < 0 {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(rest[:j])
	return ip, err == nil
}

var productByName = func() map[string]event.Product {
	m := map[string]event.Product{}
	for p := event.ProductUnknown; p <= event.ProductIMail; p++ {
		m[p.String()] = p
	}
	return m
}()

func productOf(name string) event.Product { return productByName[name] }

// SeverityByName maps a normalised level name ("critical") back to its Severity.
func SeverityByName(name string) event.Severity {
	for s := event.SeverityEmergency; s <= event.SeverityDebug; s++ {
		if s.String() == name {
			return s
		}
	}
	return event.SeverityUnset
}
