package session

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/record"
)

// FuzzAssembler feeds arbitrary lines (seeded with every golden input) through parse and the
// assembler with a small cap and periodic Expire, and checks the invariants: no panic, every
// record labelled from the vocabulary with an id, nothing left open after Flush, every line
// counted.
func FuzzAssembler(f *testing.F) {
	ins, _ := filepath.Glob("testdata/*/input.log")
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err == nil {
			f.Add(b, uint8(3))
		}
	}
	f.Add([]byte("Mar  9 12:00:00 mx spamdyke[1]: TIMEOUT from: (unknown) to: (unknown) origin_ip: 0.0.0.0 origin_rdns: (unknown) auth: (unknown) encryption: (none) reason: (empty)\n"), uint8(1))
	p, err := parse.New(parse.Options{DefaultYear: 2021})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input []byte, knob uint8) {
		cfg := Defaults()
		cfg.MaxOpen = 1 + int(knob%8)
		cfg.Lateness = time.Duration(knob%3) * time.Minute
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		check := func(rs []record.Session) {
			for i := range rs {
				r := &rs[i]
				if !r.Outcome.Valid() || r.SessionID == "" || r.OutcomeVersion != record.OutcomeVersion || r.ClosedBy == "" {
					t.Fatalf("bad record %+v", r)
				}
				for _, rc := range r.Recipients {
					if !rc.Outcome.Valid() {
						t.Fatalf("bad recipient label %+v in %+v", rc, r)
					}
				}
				if r.Permanent && (r.SMTPCode < 500 || r.SMTPCode > 599) {
					t.Fatalf("permanent without a 5xx: %+v", r)
				}
			}
		}
		src := &event.Source{Host: "fz", File: "fuzz"}
		var ev event.Event
		var last time.Time
		lines := bytes.Split(input, []byte("\n"))
		for i, l := range lines {
			src.Line++
			p.Parse(&ev, l, src)
			src.Offset += int64(len(l)) + 1
			check(a.Add(&ev))
			if ev.Time.After(last) {
				last = ev.Time
			}
			if i%7 == int(knob%7) {
				check(a.Expire(last))
			}
		}
		check(a.Flush())
		if a.Open() != 0 {
			t.Fatalf("%d sessions open after Flush", a.Open())
		}
		if st := a.Stats(); st.Lines != int64(len(lines)) {
			t.Fatalf("lines %d, want %d", st.Lines, len(lines))
		}
	})
}
