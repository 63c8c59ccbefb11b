package testfleet

import (
	"reflect"
	"strings"
	"testing"
)

// The ground truth must describe the data exactly, or the exact-number checks downstream
// would prove nothing: recount it here from the records, independently of Generate.
func TestGenerateTruth(t *testing.T) {
	f := Generate(3, 500)
	if g := Generate(3, 500); !reflect.DeepEqual(f, g) {
		t.Fatal("same seed, different fleets")
	}
	ids := map[string]bool{}
	hosts := map[string]bool{}
	offender := 0
	for _, s := range f.Sessions {
		if ids[s.SessionID] {
			t.Fatalf("session id %s generated twice", s.SessionID)
		}
		ids[s.SessionID] = true
		if s.StartTime.Before(T0) || !s.StartTime.Before(T0.Add(Span)) || s.EndTime.Before(s.StartTime) {
			t.Errorf("session %s at %v..%v is outside the window", s.SessionID, s.StartTime, s.EndTime)
		}
		if !s.Outcome.Valid() {
			t.Errorf("session %s: outcome %q not in the vocabulary", s.SessionID, s.Outcome)
		}
		if s.ClientIP == Offender {
			offender++
			hosts[s.Host] = true
		}
	}
	for _, r := range f.Replays {
		if !ids[r.SessionID] {
			t.Errorf("replay %s is not a copy of a generated session", r.SessionID)
		}
	}
	tr := f.Truth
	if tr.Sessions != len(f.Sessions) || offender != tr.OffenderTotal || len(hosts) != tr.OffenderHosts || tr.OffenderHosts != len(Hosts) {
		t.Errorf("truth %+v; counted %d sessions, offender %d on %d hosts", tr, len(f.Sessions), offender, len(hosts))
	}
	lines := 0
	for _, e := range f.Events {
		if !ids[e.SessionID] || !strings.Contains(e.Raw, e.ClientIP) {
			t.Errorf("event %+v belongs to no session or does not name its client", e)
		}
		if e.SessionID == tr.TraceSession {
			lines++
		}
	}
	if lines != tr.TraceEvents || lines < 2 {
		t.Errorf("trace session has %d lines, truth says %d (want at least 2)", lines, tr.TraceEvents)
	}
	if tr.GreyTriplets != 100 || tr.GreyPassed != 70 || tr.ReplayedRecords == 0 || len(f.Poison) == 0 || tr.OpenAlerts == 0 || tr.OpenAlerts == tr.Alerts {
		t.Errorf("truth %+v lacks a case the dashboards need", tr)
	}
}

func TestChdbScriptQuotes(t *testing.T) {
	if got := lit(`it's a \ test` + "\n"); got != `'it\'s a \\ test\n'` {
		t.Errorf("lit = %s", got)
	}
	if got := ip6("203.0.113.66"); got != "'::ffff:203.0.113.66'" {
		t.Errorf("ip6 = %s", got)
	}
	s, err := ChdbScript("db_x", Generate(1, 50))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CREATE TABLE IF NOT EXISTS db_x.sessions", "client_ip       IPv6", "INSERT INTO db_x.deadletter", "INSERT INTO db_x.alerts"} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q", want)
		}
	}
}
