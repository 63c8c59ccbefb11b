package parse

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
)

var (
	testParserOnce sync.Once
	testParserVal  *Parser
	testParserErr  error
)

// testParser is built once per test binary: compiling the library takes a while.
func testParser(t testing.TB) *Parser {
	t.Helper()
	testParserOnce.Do(func() {
		testParserVal, testParserErr = New(Options{DefaultYear: 2021})
	})
	if testParserErr != nil {
		t.Fatal(testParserErr)
	}
	return testParserVal
}

// parseTwice parses line into a fresh event, then again into an event that last held a
// different, longer line, and fails when the two disagree (buffer-reuse bugs).
func parseTwice(t *testing.T, p *Parser, line string, src *event.Source) *event.Event {
	t.Helper()
	var a event.Event
	p.Parse(&a, []byte(line), src)
	want := event.AppendJSON(nil, &a)
	var b event.Event
	p.Parse(&b, []byte(line+" "+line+"\x00garbage"), src)
	buf := []byte(line)
	p.Parse(&b, buf, src)
	for i := range buf {
		buf[i] = 'X' // the event must not alias the caller's line
	}
	got := event.AppendJSON(nil, &b)
	if !bytes.Equal(want, got) {
		t.Fatalf("second parse differs:\nfirst  %s\nsecond %s", want, got)
	}
	checkSpans(t, &a)
	pinned := event.DialectAuto
	if src != nil {
		pinned = src.Dialect
	}
	grokAgrees(t, p, line, pinned)
	return &a
}

func checkSpans(t testing.TB, ev *event.Event) {
	t.Helper()
	n := uint32(len(ev.Buf))
	ok := func(s event.Span) bool { return s.Off+s.Len <= n && s.Off+s.Len >= s.Off }
	for f, s := range ev.Fields {
		if !ok(s) {
			t.Fatalf("field %s span %v outside buffer of %d", event.Field(f), s, n)
		}
	}
	for _, s := range []event.Span{ev.Host, ev.SessionKey, ev.Code, ev.Name, ev.SeverityRaw} {
		if !ok(s) {
			t.Fatalf("span %v outside buffer of %d", s, n)
		}
	}
	if ev.RawLen > n {
		t.Fatalf("raw length %d outside buffer of %d", ev.RawLen, n)
	}
	if !ev.Parsed && ev.Reason == "" {
		t.Fatalf("unparsed event without a reason: %q", ev.Raw())
	}
}

type want struct {
	product  event.Product
	dialect  event.Dialect
	code     string
	name     string
	severity event.Severity
	sevRaw   string
	session  string
	host     string
	time     time.Time
	fields   map[event.Field]string
}

func expect(t *testing.T, ev *event.Event, w want) {
	t.Helper()
	if !ev.Parsed {
		t.Fatalf("not parsed (%s): %q", ev.Reason, ev.Raw())
	}
	if ev.Product != w.product || (w.dialect != 0 && ev.Dialect != w.dialect) {
		t.Errorf("product/dialect = %s/%s, want %s/%s: %q", ev.Product, ev.Dialect, w.product, w.dialect, ev.Raw())
	}
	if got := string(ev.Bytes(ev.Code)); got != w.code {
		t.Errorf("code = %q, want %q: %q", got, w.code, ev.Raw())
	}
	if w.name != "" {
		if got := string(ev.Bytes(ev.Name)); got != w.name {
			t.Errorf("name = %q, want %q: %q", got, w.name, ev.Raw())
		}
	}
	if w.severity != 0 && ev.Severity != w.severity {
		t.Errorf("severity = %s, want %s: %q", ev.Severity, w.severity, ev.Raw())
	}
	if w.sevRaw != "" {
		if got := string(ev.Bytes(ev.SeverityRaw)); got != w.sevRaw {
			t.Errorf("severity_raw = %q, want %q: %q", got, w.sevRaw, ev.Raw())
		}
	}
	if w.session != "" {
		if got := string(ev.Bytes(ev.SessionKey)); got != w.session {
			t.Errorf("session key = %q, want %q: %q", got, w.session, ev.Raw())
		}
	}
	if w.host != "" {
		if got := string(ev.Bytes(ev.Host)); got != w.host {
			t.Errorf("host = %q, want %q: %q", got, w.host, ev.Raw())
		}
	}
	if !w.time.IsZero() && !ev.Time.Equal(w.time) {
		t.Errorf("time = %s, want %s: %q", ev.Time, w.time, ev.Raw())
	}
	for f, v := range w.fields {
		if got := ev.FieldString(f); got != v {
			t.Errorf("field %s = %q, want %q: %q", f, got, v, ev.Raw())
		}
	}
}
