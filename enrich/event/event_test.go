package event

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAppendJSONEscapesAndDecodes(t *testing.T) {
	var ev Event
	raw := "a\"b\\c\td\x00e\xff\xfef\u2028g ünï"
	ev.SetRaw([]byte(raw))
	ev.Time = time.Date(2026, 3, 9, 12, 43, 51, 123456789, time.FixedZone("EET", 7200))
	ev.Product, ev.Dialect, ev.Severity, ev.Parsed = ProductSpamdyke, DialectSpamdyke, SeverityWarning, true
	ev.Host = ev.AppendDerivedString("mx1")
	ev.Code = Span{0, 3}
	ev.Fields[FieldSender] = Span{0, 1}
	ev.Fields[FieldText] = Span{Off: 9, Len: 6}
	for round := 0; round < 2; round++ {
		var m map[string]any
		js := AppendJSON(nil, &ev)
		if err := json.Unmarshal(js, &m); err != nil {
			t.Fatalf("invalid JSON %s: %v", js, err)
		}
		if m["time"] != "2026-03-09T12:43:51.123456789+02:00" || m["product"] != "spamdyke" || m["dialect"] != "spamdyke" || m["severity"] != "warning" || m["host"] != "mx1" {
			t.Errorf("header keys: %v", m)
		}
		if m["code"] != `a"b` || m["raw"] != "a\"b\\c\td\x00e\ufffd\ufffdf\u2028g ünï" {
			t.Errorf("escaping: code %q raw %q", m["code"], m["raw"])
		}
		f := m["fields"].(map[string]any)
		if len(f) != 2 || f["sender"] != "a" || f["text"] != "\ufffd\ufffdf\u2028" {
			t.Errorf("fields: %v", f)
		}
		if _, ok := m["error"]; ok {
			t.Error("error key on a parsed event")
		}
		ev.Parsed, ev.Reason = false, "no dialect recognises the line"
		if round == 0 {
			js = AppendJSON(nil, &ev)
			_ = json.Unmarshal(js, &m)
			if m["error"] != ev.Reason || m["parsed"] != false {
				t.Errorf("unparsed: %s", js)
			}
			ev.Parsed = true
		}
	}
}

func TestNames(t *testing.T) {
	for d := Dialect(0); d < NumDialects; d++ {
		got, ok := ParseDialect(d.String())
		if !ok || got != d {
			t.Errorf("dialect %d round trip: %v %v", d, got, ok)
		}
	}
	if DialectICDSoftDelivery.Product() != ProductICDSoft || DialectMailEnableDebug.Product() != ProductMailEnable {
		t.Error("dialect products")
	}
	for f := Field(0); f < NumFields; f++ {
		if got, ok := FieldByName(f.String()); !ok || got != f {
			t.Errorf("field %d round trip", f)
		}
	}
	if SeverityFromSyslog(3) != SeverityError || SeverityFromSyslog(7) != SeverityDebug || SeverityFromSyslog(9) != SeverityUnset {
		t.Error("syslog levels")
	}
}
