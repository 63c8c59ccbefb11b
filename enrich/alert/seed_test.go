package alert

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
)

// TestSmtpfNormalisationAgainstParserCatalogue walks every smtpf message number the parser
// knows (its catalogue is seed 001's 223 entries) and checks the normalisation table against
// it: every number the alert catalogue re-levels is an ERR of the parser's catalogue (a typo or
// an INFO such as #408 "found valid licensed IP" would show here), exactly the issue's
// fatal/critical numbers end up critical, WARN and INFO are never raised, and every ERR stays
// between critical and notice.
func TestSmtpfNormalisationAgainstParserCatalogue(t *testing.T) {
	p, err := parse.New(parse.Options{DefaultYear: 2026})
	if err != nil {
		t.Fatal(err)
	}
	cat := NewCatalogue(nil)
	var ev event.Event
	known := map[string]event.Severity{} // code -> parser severity
	var critical []int
	for n := 1; n < 1000; n++ {
		line := fmt.Sprintf("Mar  9 12:43:51 mx1 smtpf[28585]: #%d something happened", n)
		src := event.Source{Host: "mx1", File: "raw/0"}
		p.Parse(&ev, []byte(line), &src)
		if !ev.Parsed || ev.Product != event.ProductSmtpf || string(ev.Bytes(ev.Code)) != "#"+strconv.Itoa(n) {
			continue
		}
		if ev.Severity == event.SeverityUnset {
			continue // not in the catalogue: the parser sets no level
		}
		known["#"+strconv.Itoa(n)] = ev.Severity
		got := cat.Severity(&ev)
		switch ev.Severity {
		case event.SeverityError:
			if got < event.SeverityCritical || got > event.SeverityNotice {
				t.Errorf("ERR #%d normalised to %s", n, got)
			}
		default:
			if got < ev.Severity {
				t.Errorf("%s #%d raised to %s", ev.Severity, n, got)
			}
		}
		if got == event.SeverityCritical {
			critical = append(critical, n)
		}
		cl := cat.Classify("smtpf", "#"+strconv.Itoa(n), got, "", line)
		if (got <= event.SeverityCritical) != (cl.Rule != RuleNone && cl.Rule != RuleDNSBLFailure) {
			t.Errorf("#%d at %s matched rule %q", n, got, cl.Rule)
		}
	}
	if len(known) < 200 {
		t.Fatalf("the parser knows only %d smtpf numbers: is the line form still right?", len(known))
	}
	for code, e := range cat.codes[event.ProductSmtpf] {
		if code == relayGrantCode {
			continue // not a message number: the relay flag of a session end (Engine.Line)
		}
		if sev, ok := known[code]; !ok || sev != event.SeverityError {
			t.Errorf("alert catalogue re-levels %s (to %s), which the parser's catalogue has at %s", code, e.sev, sev)
		}
	}
	want := []int{396, 397, 398, 399, 400, 401, 402, 403, 404, 405, 406, 407, 409, 410, 411, 412, 538, 556, 596, 602, 812}
	if !slices.Equal(critical, want) {
		t.Errorf("critical smtpf numbers %v, want the issue's %v", critical, want)
	}
}

// TestIsodeCatalogueIDs: the Isode IDs the rules match carry the level words the issue names.
func TestIsodeCatalogueIDs(t *testing.T) {
	p, err := parse.New(parse.Options{DefaultYear: 2026})
	if err != nil {
		t.Fatal(err)
	}
	cat := NewCatalogue(nil)
	var ev event.Event
	for _, c := range []struct {
		level, name, id, rule string
	}{
		{"critical", "Critical", "14", "isode_critical"}, {"fatal", "Fatal", "13", "isode_fatal"},
		{"fatal", "FatalS", "29", "isode_fatal"}, {"fatal", "ListenError", "101", "isode_listen_error"},
		{"error", "Error", "12", ""}, {"warning", "DNSBLfailed", "106", ""}, {"notice", "Listen", "100", ""},
	} {
		line := "2026-03-09 12:43:51.250 " + c.level + " MTA_SMTP " + c.name + " " + c.id + " smtpserver[4711]: text"
		src := event.Source{Host: "iso1", File: "raw/0"}
		p.Parse(&ev, []byte(line), &src)
		if !ev.Parsed || string(ev.Bytes(ev.Code)) != c.id {
			t.Fatalf("%q: parsed=%v code=%q", line, ev.Parsed, ev.Bytes(ev.Code))
		}
		sev := cat.Severity(&ev)
		cl := cat.Classify("isode", c.id, sev, "", line)
		if cl.Rule.String() != c.rule {
			t.Errorf("%s %s: rule %q, want %q", c.name, c.id, cl.Rule, c.rule)
		}
		if (c.rule != "") != (sev == event.SeverityCritical) {
			t.Errorf("%s %s: normalised %s", c.name, c.id, sev)
		}
	}
}
