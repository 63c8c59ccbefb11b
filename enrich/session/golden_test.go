package session

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/enrich/record"
)

var update = flag.Bool("update", false, "rewrite testdata/*/expected.jsonl from the assembler's output")

// assembleFile parses input line by line (host for lines without one, year 2021) and returns
// the JSON lines of every session, in close order, Flush at the end.
func assembleFile(t *testing.T, cfg Config, input []byte, host string) ([]byte, *Assembler) {
	t.Helper()
	p, err := parse.New(parse.Options{DefaultYear: 2021})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := &event.Source{Host: host, File: "input.log"}
	var ev event.Event
	var out []byte
	emit := func(rs []record.Session) {
		for i := range rs {
			out = rs[i].AppendJSON(out)
			out = append(out, '\n')
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(input))
	var off int64
	for sc.Scan() {
		src.Line++
		src.Offset = off
		off += int64(len(sc.Bytes())) + 1
		p.Parse(&ev, sc.Bytes(), src)
		emit(a.Add(&ev))
	}
	emit(a.Flush())
	return out, a
}

// TestGolden runs every testdata/<case>/input.log (host in testdata/<case>/host) through
// parse + assemble and compares the session records with expected.jsonl.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/input.log")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, in := range dirs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			input, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			host, _ := os.ReadFile(filepath.Join(dir, "host"))
			got, _ := assembleFile(t, Defaults(), input, strings.TrimSpace(string(host)))
			// parse twice with fresh state: the output must be identical (no hidden state,
			// deterministic ids)
			again, _ := assembleFile(t, Defaults(), input, strings.TrimSpace(string(host)))
			if !bytes.Equal(got, again) {
				t.Fatal("two runs over the same input differ")
			}
			exp := filepath.Join(dir, "expected.jsonl")
			if *update {
				if err := os.WriteFile(exp, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(exp)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
				for i := 0; i < len(gl) || i < len(wl); i++ {
					var g, w string
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("record %d differs:\ngot  %s\nwant %s", i+1, g, w)
					}
				}
			}
		})
	}
}

// TestSeed004 pins the acceptance case on the real ICDSoft example (seed 004): three
// messages, the first DENIED_RDNS with the 554 reply, the second ALLOWED and DELIVERED, the
// third ALLOWED with an authenticated sender.
func TestSeed004(t *testing.T) {
	input, err := os.ReadFile("testdata/icdsoft-seed004/input.log")
	if err != nil {
		t.Fatal(err)
	}
	out, a := assembleFile(t, Defaults(), input, "server")
	rs := decodeAll(t, out)
	if len(rs) != 3 {
		t.Fatalf("got %d records, want 3:\n%s", len(rs), out)
	}
	r := rs[0]
	if r.Product != "icdsoft" || r.Outcome != record.DeniedRDNS || r.SMTPCode != 554 || !r.Permanent ||
		r.SessionKey != "29207" || r.ClientIP != "203.0.113.66" || r.Reason != "DENIED_RDNS_MISSING" ||
		!strings.HasPrefix(r.SMTPReply, "554 Refused. You have no reverse DNS entry") {
		t.Errorf("message 1: %+v", r)
	}
	r = rs[1]
	if r.Outcome != record.Allowed || r.Delivery != record.DeliveryDelivered || r.SessionKey != "15280" ||
		r.Size != 23533 || r.SMTPReply != "250 ok 1615286631 qp 15309" || r.ClientPTR != "elsewhere.example.net" || r.EventCount != 11 {
		t.Errorf("message 2: %+v", r)
	}
	r = rs[2]
	if r.Outcome != record.Allowed || r.AuthUser != "sender@example.com" || r.Delivery != record.DeliveryDelivered || r.ClientIP != "127.0.0.1" {
		t.Errorf("message 3: %+v", r)
	}
	if st := a.Stats(); st.Joined != 2 || st.Orphans != 0 || st.Unparsed != 0 || st.Lines != 26 {
		t.Errorf("stats %+v", st)
	}
	_ = time.Second
}
