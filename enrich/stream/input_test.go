package stream

import (
	"errors"
	"testing"

	"github.com/mxtrail/mxtrail/ingest/wire"
)

const spamdykeLine = "Mar  9 12:43:51 server spamdyke[15280]: ALLOWED from: correspondent@elsewhere.example.net to: recipient@example.com origin_ip: 192.0.2.12 origin_rdns: elsewhere.example.net auth: (unknown) encryption: (none) reason: 250_ok_1615286631_qp_15309"

func TestDecodeInputForms(t *testing.T) {
	for _, tc := range []struct {
		name     string
		key      string
		headers  []wire.Header
		value    string
		wantHost string
		wantLine string
		wantForm Form
		dialect  string
	}{
		{name: "mxtrail shipper", key: "mx1", headers: []wire.Header{
			{Key: "host", Value: []byte("mx1")}, {Key: "source", Value: []byte("file")},
			{Key: "dialect", Value: []byte("spamdyke")}, {Key: "ingest_time", Value: []byte("2026-03-09T12:43:52.5Z")},
		}, value: spamdykeLine, wantHost: "mx1", wantLine: spamdykeLine, wantForm: FormRaw, dialect: "spamdyke"},
		{name: "raw, key only", key: "mx2", value: spamdykeLine, wantHost: "mx2", wantLine: spamdykeLine},
		{name: "raw, nothing: the parser takes the syslog host", value: spamdykeLine, wantLine: spamdykeLine},
		{name: "filebeat ECS", key: "", value: `{"@timestamp":"2026-03-09T12:43:52.000Z","message":"` + spamdykeLine + `","host":{"name":"mx3.example.net","hostname":"mx3"},"log":{"file":{"path":"/var/log/maillog"}}}`,
			wantHost: "mx3.example.net", wantLine: spamdykeLine, wantForm: FormJSON},
		{name: "vector", value: `{"message":"` + spamdykeLine + `","host":"mx4","source_type":"file","timestamp":"2026-03-09T12:43:52Z"}`,
			wantHost: "mx4", wantLine: spamdykeLine, wantForm: FormJSON},
		{name: "rsyslog omkafka template", key: "ignored-key", value: ` {"hostname":"mx5","programname":"spamdyke","message":"` + spamdykeLine + `"}`,
			wantHost: "mx5", wantLine: spamdykeLine, wantForm: FormJSON},
		{name: "ECS event.original", value: `{"event":{"original":"` + spamdykeLine + `"},"host":{"name":"mx6"}}`,
			wantHost: "mx6", wantLine: spamdykeLine, wantForm: FormJSON},
		{name: "header beats envelope", headers: []wire.Header{{Key: "host", Value: []byte("hdr")}},
			value: `{"message":"x","host":"env"}`, wantHost: "hdr", wantLine: "x", wantForm: FormJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < 2; i++ { // twice: the Input is reused
				var in Input
				if err := DecodeInput(&in, []byte(tc.key), tc.headers, []byte(tc.value)); err != nil {
					t.Fatal(err)
				}
				if in.Host != tc.wantHost || string(in.Value) != tc.wantLine || in.Form != tc.wantForm || in.Dialect != tc.dialect {
					t.Fatalf("got host %q form %v dialect %q line %q", in.Host, in.Form, in.Dialect, in.Value)
				}
			}
		})
	}
}

func TestDecodeInputPoison(t *testing.T) {
	for _, tc := range []struct {
		name, value, reason string
		headers             []wire.Header
	}{
		{name: "truncated JSON", value: `{"message":"Mar  9 12:43:51 server spamdyke[1`, reason: ReasonBadEnvelope},
		{name: "JSON without message", value: `{"msg":"x","host":"mx"}`, reason: ReasonBadEnvelope},
		{name: "message of the wrong type", value: `{"message":42}`, reason: ReasonBadEnvelope},
		{name: "empty", value: "  \r\n", reason: ReasonEmpty},
		{name: "bad ingest_time", value: "x", reason: ReasonBadHeader, headers: []wire.Header{{Key: "ingest_time", Value: []byte("yesterday")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in Input
			err := DecodeInput(&in, nil, tc.headers, []byte(tc.value))
			var ie *InputError
			if !errors.As(err, &ie) || ie.Reason != tc.reason {
				t.Fatalf("want reason %s, got %v", tc.reason, err)
			}
		})
	}
}

func FuzzDecodeInput(f *testing.F) {
	f.Add([]byte("mx1"), []byte(spamdykeLine))
	f.Add([]byte(""), []byte(`{"message":"a","host":{"name":"b"}}`))
	f.Add([]byte("k"), []byte(`{"host":[1,2],"message":"`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		var in Input
		err := DecodeInput(&in, key, nil, value)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Reason == "" {
				t.Fatalf("error without a reason: %v", err)
			}
		}
	})
}
