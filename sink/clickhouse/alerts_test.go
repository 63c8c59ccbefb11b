package clickhouse

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/alert"
	"github.com/mxtrail/mxtrail/sink/schema"
)

func sampleAlert() alert.Record {
	at := time.Date(2026, 3, 9, 12, 43, 51, 250_000_000, time.UTC)
	return alert.Record{AlertID: alert.ID("open_relay", "me1", at.Truncate(10*time.Minute)), Rule: "open_relay",
		Code: "ME-I0110", Severity: "critical", SeverityRaw: "I", Host: "me1", Product: "mailenable",
		FiredAt: at, LastSeen: at.Add(3 * time.Minute), Count: 7, Value: 7, Threshold: 1, SessionID: "",
		Example: "03/09/26 12:43:51 ME-I0110: Relay Granted: Server is configured to allow anyone to relay. \"quoted\" é",
		Summary: "MailEnable is configured to let anyone relay (open relay) on me1", Version: 14}
}

func TestDecodeAlertRoundTrip(t *testing.T) {
	want := sampleAlert()
	var got alert.Record
	for _, resolved := range []bool{false, true} {
		if resolved {
			want.ResolvedAt, want.Version = want.FiredAt.Truncate(10*time.Minute).Add(10*time.Minute), want.Version|1
		}
		line := want.AppendJSON(nil)
		for pass := 0; pass < 2; pass++ { // decode twice into one value: no stale fields
			l := lexer{s: string(line), maxField: 1 << 20}
			if err := decodeAlert(&l, &got); err != nil {
				t.Fatalf("%v\n%s", err, line)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("pass %d:\n got %+v\nwant %+v", pass, got, want)
			}
		}
	}
}

func TestAlertBatchRowsAndDeadLetters(t *testing.T) {
	for _, f := range []schema.Features{schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16}), schema.FeaturesFor(schema.ServerVersion{Major: 26, Minor: 1})} {
		b := NewBatch(f, 1<<10)
		ok := sampleAlert()
		now := time.Now()
		b.Add(KindAlerts, &Message{Topic: "a", Offset: 0, Key: []byte(ok.AlertID), Value: ok.AppendJSON(nil)}, now)
		bad := []struct{ value, reason string }{
			{`{"alert_id":"x"`, ReasonDecode},
			{`{"alert_id":"x","rule":"r","fired_at":"2026-03-09T12:00:00Z","count":-1,"version":2}`, ReasonDecode},
			{`{"alert_id":"x","rule":"r","fired_at":"2026-03-09T12:00:00Z","value":"high","version":2}`, ReasonDecode},
			{`{"alert_id":"","rule":"r","fired_at":"2026-03-09T12:00:00Z","version":2}`, ReasonConvert},
			{`{"alert_id":"x","rule":"r","fired_at":"2026-03-09T12:00:00Z","version":0}`, ReasonConvert},
			{`{"alert_id":"x","rule":"r","version":2}`, ReasonConvert},
			{`{"alert_id":"x","rule":"r","fired_at":"2026-03-09T12:00:00Z","version":2,"example":"` + strings.Repeat("a", 2<<10) + `"}`, ReasonTooLarge},
		}
		for i, c := range bad {
			b.Add(KindAlerts, &Message{Topic: "a", Offset: int64(i + 1), Value: []byte(c.value)}, now)
		}
		if b.alerts.len() != 1 || b.dead.len() != len(bad) {
			t.Fatalf("alerts %d, dead %d", b.alerts.len(), b.dead.len())
		}
		for i, c := range bad {
			if b.dead.reason[i] != c.reason {
				t.Errorf("%s: reason %s, want %s (%s)", c.value[:min(60, len(c.value))], b.dead.reason[i], c.reason, b.dead.errText[i])
			}
		}
		if b.alerts.resolvedAt[0].Unix() != 0 || b.alerts.count[0] != 7 || b.alerts.version[0] != 14 || b.alerts.code[0] != "ME-I0110" {
			t.Errorf("open alert row: resolved %v count %d version %d", b.alerts.resolvedAt[0], b.alerts.count[0], b.alerts.version[0])
		}
		if len(b.alerts.values()) != len(alertColumnNames) {
			t.Fatalf("%d values for %d columns", len(b.alerts.values()), len(alertColumnNames))
		}
		if b.Offsets()["a"][0] != int64(len(bad)) {
			t.Errorf("offsets %v", b.Offsets())
		}
		b.Reset()
		if b.alerts.len() != 0 {
			t.Fatal("reset kept alert rows")
		}
	}
}
