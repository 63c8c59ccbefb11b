package stream

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

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

// TestDecoderMatchesWire: the Decoder takes the string headers itself (to intern them) and
// leaves the rest to wire.Decode; both must agree on every field, the last header winning.
func TestDecoderMatchesWire(t *testing.T) {
	var d Decoder
	for _, tc := range []struct {
		key     string
		headers []wire.Header
	}{
		{key: "k"},
		{key: "k", headers: []wire.Header{{Key: "host", Value: []byte("")}}},
		{key: "k", headers: []wire.Header{{Key: "host", Value: []byte("a")}, {Key: "host", Value: []byte("b")},
			{Key: "source", Value: []byte("file")}, {Key: "dialect", Value: []byte("smtpf")}, {Key: "tz", Value: []byte("Europe/Sofia")},
			{Key: "syslog", Value: []byte("rfc3164")}, {Key: "ingest_time", Value: []byte("2026-03-09T12:43:52.5Z")},
			{Key: "truncated", Value: []byte("70000")}, {Key: "other", Value: []byte("x")}}},
	} {
		for i := 0; i < 2; i++ {
			var in Input
			if err := d.Decode(&in, []byte(tc.key), tc.headers, []byte(spamdykeLine)); err != nil {
				t.Fatal(err)
			}
			var want wire.Raw
			if err := wire.Decode(&want, []byte(tc.key), tc.headers, []byte(spamdykeLine)); err != nil {
				t.Fatal(err)
			}
			if in.Host != want.Host || in.Source != want.Source || in.Dialect != want.Dialect || in.TZ != want.TZ ||
				in.Syslog != want.Syslog || !in.IngestTime.Equal(want.IngestTime) || in.TruncatedFrom != want.TruncatedFrom ||
				string(in.Value) != string(want.Value) {
				t.Fatalf("%+v: decoder %+v, wire %+v", tc.headers, in.Raw, want)
			}
		}
	}
}

// TestDecodeSameHeaders: DecodeSameHeaders after a Decode with some headers gives exactly
// what Decode with those headers gives (every field, the error and its reason), for any
// next key and value, on an Input still holding the previous record.
func TestDecodeSameHeaders(t *testing.T) {
	it := wire.Header{Key: "ingest_time", Value: []byte("2026-03-09T12:43:52.5Z")}
	headerSets := [][]wire.Header{
		nil,
		{{Key: "host", Value: []byte("mx1")}, {Key: "source", Value: []byte("file")}, {Key: "dialect", Value: []byte("spamdyke")}, it},
		{{Key: "host", Value: []byte("")}, it},
		{{Key: "source", Value: []byte("syslog")}, {Key: "syslog", Value: []byte("rfc5424")}, {Key: "tz", Value: []byte("Europe/Sofia")}},
		{{Key: "host", Value: []byte("mx1")}, {Key: "truncated", Value: []byte("70000")}, {Key: "other", Value: []byte("x")}},
		{{Key: "host", Value: []byte("mx1")}, {Key: "ingest_time", Value: []byte("yesterday")}},
		{{Key: "truncated", Value: []byte("many")}},
	}
	values := []string{
		spamdykeLine,
		`{"message":"` + spamdykeLine + `","host":"env"}`,
		`{"hostname":"mx5","message":"x"}`,
		`{"message":42}`,
		" \r\n",
		"",
		"Nov 23 18:39:46 mx1 smtpf[1234]: connect",
	}
	keys := []string{"", "mx9", "mx1"}
	for hi, hs := range headerSets {
		for _, k1 := range keys {
			for _, v1 := range values {
				for _, k2 := range keys {
					for _, v2 := range values {
						var d, fresh Decoder
						var in, want Input
						_ = d.Decode(&in, []byte(k1), hs, []byte(v1))
						err := d.DecodeSameHeaders(&in, []byte(k2), []byte(v2))
						wantErr := fresh.Decode(&want, []byte(k2), hs, []byte(v2))
						if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
							t.Fatalf("headers %d, key %q, value %q after %q: error %v, want %v", hi, k2, v2, v1, err, wantErr)
						}
						if err != nil {
							continue
						}
						if in.Raw.Host != want.Host || in.Source != want.Source || in.Dialect != want.Dialect || in.TZ != want.TZ ||
							in.Syslog != want.Syslog || !in.IngestTime.Equal(want.IngestTime) || in.TruncatedFrom != want.TruncatedFrom ||
							string(in.Value) != string(want.Value) || in.Form != want.Form {
							t.Fatalf("headers %d, key %q, value %q after %q:\n got %+v %v\nwant %+v %v", hi, k2, v2, v1, in.Raw, in.Form, want.Raw, want.Form)
						}
					}
				}
			}
		}
	}
}

func TestDecodeEnvelopeTypes(t *testing.T) {
	for _, tc := range []struct{ value, host, line, reason string }{
		{value: `{"message":"a\"b\u00e9","host":"h\u0041"}`, host: "hA", line: `a"bé`},
		{value: `{"message":null,"event":{"original":"x"}}`, line: "x"},
		{value: `{"message":"x","hostname":"h1","host":{"name":"","hostname":"h2"}}`, host: "h2", line: "x"},
		{value: `{"message":"x","hostname":"h1","host":[1]}`, host: "h1", line: "x"},
		{value: `{"message":""}`, line: ""},
		{value: `{"message":"x","hostname":5}`, reason: ReasonBadEnvelope},
		{value: `{"event":5,"message":null}`, reason: ReasonBadEnvelope},
		{value: `{"event":{"original":[]}}`, reason: ReasonBadEnvelope},
		{value: `{"message":"x"} trailing`, reason: ReasonBadEnvelope},
		{value: `{}`, reason: ReasonBadEnvelope},
	} {
		var d Decoder
		var in Input
		err := d.Decode(&in, nil, nil, []byte(tc.value))
		if tc.reason != "" {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Reason != tc.reason {
				t.Errorf("%s: want %s, got %v", tc.value, tc.reason, err)
			}
			continue
		}
		if err != nil || in.Host != tc.host || string(in.Value) != tc.line || in.Form != FormJSON {
			t.Errorf("%s: got host %q line %q form %v err %v", tc.value, in.Host, in.Value, in.Form, err)
		}
	}
}

// BenchmarkDecodeEnvelope: a Filebeat envelope through the Decoder, against the baseline of
// the encoding/json struct decoding the stream used before (same run; ratio = baseline/decoder).
func BenchmarkDecodeEnvelope(b *testing.B) {
	v := []byte(`{"@timestamp":"2026-03-09T12:43:52.000Z","message":"` + spamdykeLine + `","host":{"name":"mx3.example.net","hostname":"mx3"},"agent":{"type":"filebeat"},"log":{"file":{"path":"/var/log/maillog"}}}`)
	b.ReportAllocs()
	var d Decoder
	var in Input
	var dec, base time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		for j := 0; j < 100; j++ {
			if err := d.Decode(&in, nil, nil, v); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for j := 0; j < 100; j++ {
			var env struct {
				Message  *string         `json:"message"`
				Host     json.RawMessage `json:"host"`
				Hostname string          `json:"hostname"`
			}
			if err := json.Unmarshal(v, &env); err != nil {
				b.Fatal(err)
			}
			var h struct{ Name, Hostname string }
			if err := json.Unmarshal(env.Host, &h); err != nil {
				b.Fatal(err)
			}
		}
		dec += t1.Sub(t0)
		base += time.Since(t1)
	}
	n := float64(b.N) * 100
	b.ReportMetric(float64(dec.Nanoseconds())/n, "decoder-ns/envelope")
	b.ReportMetric(float64(base.Nanoseconds())/n, "encoding-json-ns/envelope")
	b.ReportMetric(base.Seconds()/dec.Seconds(), "speedup-vs-encoding-json")
}
