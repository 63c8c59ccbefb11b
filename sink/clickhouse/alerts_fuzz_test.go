package clickhouse

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mxtrail/mxtrail/enrich/alert"
)

// FuzzDecodeAlert: no input crashes the alert decoder; what it accepts, encoding/json reads
// the same way (strings and numbers), and re-encoding an accepted record decodes to the same
// record (the sink never changes an alert on the way into the table).
func FuzzDecodeAlert(f *testing.F) {
	r := sampleAlert()
	f.Add(string(r.AppendJSON(nil)))
	r.ResolvedAt, r.Version = r.FiredAt.Add(10*60e9), r.Version|1
	f.Add(string(r.AppendJSON(nil)))
	f.Add(`{"alert_id":"a","rule":"r","fired_at":"2026-01-01T00:00:00+02:00","resolved_at":null,"count":1,"value":1e3,"version":2,"x":[1,{"y":"\ud800"}]}`)
	var got, again alert.Record
	f.Fuzz(func(t *testing.T, in string) {
		l := lexer{s: in, maxField: 1 << 16}
		if err := decodeAlert(&l, &got); err != nil {
			return
		}
		if !utf8.ValidString(in) {
			return // kept byte for byte (a String column), which encoding/json would replace by U+FFFD
		}
		l = lexer{s: string(got.AppendJSON(nil)), maxField: 1 << 20}
		if err := decodeAlert(&l, &again); err != nil {
			t.Fatalf("re-encoded record does not decode: %v\n%s", err, l.s)
		}
		if !sameAlert(&got, &again) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", got, again)
		}
		if in != strings.ToLower(in) { // encoding/json matches keys case-insensitively
			return
		}
		var want alert.Record
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			return
		}
		if got.AlertID != want.AlertID || got.Rule != want.Rule || got.Example != want.Example ||
			got.Count != want.Count || got.Version != want.Version || !got.FiredAt.Equal(want.FiredAt) {
			t.Fatalf("decoded %+v\nencoding/json %+v", got, want)
		}
	})
}

func sameAlert(a, b *alert.Record) bool {
	return a.AlertID == b.AlertID && a.Rule == b.Rule && a.Code == b.Code && a.Severity == b.Severity &&
		a.SeverityRaw == b.SeverityRaw && a.Host == b.Host && a.Product == b.Product &&
		a.FiredAt.Equal(b.FiredAt) && a.LastSeen.Equal(b.LastSeen) && a.ResolvedAt.Equal(b.ResolvedAt) &&
		a.Count == b.Count && a.Value == b.Value && a.Threshold == b.Threshold && a.SessionID == b.SessionID &&
		a.Example == b.Example && a.Summary == b.Summary && a.Version == b.Version
}
