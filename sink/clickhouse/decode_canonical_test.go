package clickhouse

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// sameAsGeneral decodes in with decodeSession (the canonical path, falling back) and with the
// general decoder alone, and fails unless both give the same record and the same error.
func sameAsGeneral(t *testing.T, in string, maxField int) {
	t.Helper()
	var got, want record.Session
	// Reused slices with stale content, as a batch's record has between messages.
	got.Recipients = []record.Recipient{{Address: "stale"}}
	got.Flags = []string{"stale"}
	lg := lexer{s: in, maxField: maxField, esc: make([]byte, 0, 64)}
	errGot := decodeSession(&lg, &got)
	lw := lexer{s: in, maxField: maxField, esc: make([]byte, 0, 64)}
	errWant := decodeSessionGeneral(&lw, &want)
	if fmt.Sprint(errGot) != fmt.Sprint(errWant) {
		t.Fatalf("error %v, general decoder %v\ninput %q", errGot, errWant, in)
	}
	if errWant != nil {
		return
	}
	if !reflect.DeepEqual(normalise(got), normalise(want)) {
		t.Fatalf("decoded\n %+v\ngeneral decoder\n %+v\ninput %q", got, want, in)
	}
	if lg.i != lw.i {
		t.Fatalf("stopped at byte %d, general decoder at %d", lg.i, lw.i)
	}
}

// Every record the encoder writes takes the canonical path, and every input, canonical or
// damaged, decodes as the general decoder decodes it.
func TestDecodeSessionCanonicalSameResults(t *testing.T) {
	ss := genSessions(31, 3000)
	var s record.Session
	var lines []string
	for i := range ss {
		line := string(ss[i].AppendJSON(nil))
		lines = append(lines, line)
		l := lexer{s: line, maxField: 1 << 20}
		if ok, err := decodeSessionCanonical(&l, &s); !ok || err != nil {
			t.Fatalf("record %d did not take the canonical path (ok %v, err %v):\n%s", i, ok, err, line)
		}
		sameAsGeneral(t, line, 1<<20)
	}
	// A record without recipients and with flags, and one with several of each.
	extra := ss[0]
	extra.Recipients, extra.Flags = nil, []string{"TLS", "AUTH", `q"uo<te>`}
	lines = append(lines, string(extra.AppendJSON(nil)))
	extra.Recipients = ss[1].Recipients
	for len(extra.Recipients) < 3 {
		extra.Recipients = append(extra.Recipients, record.Recipient{Address: "x@y", Outcome: "ALLOWED", SMTPCode: 250, Reply: "ok"})
	}
	lines = append(lines, string(extra.AppendJSON(nil)))
	for _, line := range lines[len(lines)-2:] {
		l := lexer{s: line, maxField: 1 << 20}
		if ok, _ := decodeSessionCanonical(&l, &s); !ok {
			t.Fatalf("did not take the canonical path:\n%s", line)
		}
		sameAsGeneral(t, line, 1<<20)
	}

	// Damaged and non-canonical forms of real records.
	rng := rand.New(rand.NewPCG(7, 7))
	edits := []func(string) string{
		func(s string) string { return s[:rng.IntN(len(s))] },                             // truncated
		func(s string) string { return s + " " },                                          // trailing space
		func(s string) string { return s + "x" },                                          // trailing data
		func(s string) string { return strings.Replace(s, `,"`, `, "`, 1+rng.IntN(20)) },  // whitespace
		func(s string) string { return strings.Replace(s, `":`, `" : `, 1+rng.IntN(20)) }, // whitespace
		func(s string) string { return strings.Replace(s, `"host":"`, `"host":null,"h":"`, 1) },
		func(s string) string { return strings.Replace(s, `"recipients":[`, `"recipients":null,"r":[`, 1) },
		func(s string) string { return strings.Replace(s, `"flags":[]`, `"flags":[null]`, 1) },
		func(s string) string { return strings.Replace(s, `"size":`, `"size":"1",`+`"x":`, 1) },
		func(s string) string { return strings.Replace(s, `"smtp_code":`, `"smtp_code":-`, 1) },
		func(s string) string {
			return strings.Replace(s, `"smtp_code":`, `"smtp_code":99999999999999999999,"y":`, 1)
		},
		func(s string) string { return strings.Replace(s, `"session_id":"`, `"session_id":"\u0041`, 1) },
		func(s string) string { return strings.Replace(s, `"session_id":"`, `"session_id":"",`+`"z":"`, 1) },
		func(s string) string { return strings.Replace(s, `"start_time":"`, `"start_time":"",`+`"z":"`, 1) },
		func(s string) string { return strings.Replace(s, `"start_time":"2`, `"start_time":"x`, 1) },
		func(s string) string { return strings.Replace(s, `"helo":"`, `"helo":"`+strings.Repeat("A", 300), 1) },
		func(s string) string { return strings.Replace(s, `"helo":"`, "\"helo\":\"\x01", 1) },
		func(s string) string { return strings.Replace(s, `"tls":`, `"tls":tru,"w":`, 1) },
		func(s string) string { return strings.Replace(s, `,"auth_user":""`, ``, 1) }, // key missing
		func(s string) string {
			return strings.Replace(s, `{"session_id"`, `{"extra":[1,{"a":2}],"session_id"`, 1)
		}, // unknown key
		func(s string) string { return strings.Replace(s, `"last_pos":{`, `"last_pos":{"offset":1,`, 1) },
		func(s string) string { return strings.Replace(s, `"reason":`, `"session_id":"dup","reason":`, 1) }, // duplicate key
		func(s string) string { // one byte flipped
			b := []byte(s)
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
			return string(b)
		},
	}
	for i, line := range lines {
		for j, edit := range edits {
			in := edit(line)
			t.Run(fmt.Sprintf("record%d/edit%d", i, j), func(t *testing.T) {
				sameAsGeneral(t, in, 256)
			})
			if t.Failed() {
				return
			}
		}
		if i == 200 { // the edits of 200 records are plenty
			break
		}
	}
}

func FuzzDecodeSessionCanonical(f *testing.F) {
	for _, s := range genSessions(8, 5) {
		f.Add(string(s.AppendJSON(nil)))
	}
	f.Fuzz(func(t *testing.T, in string) {
		sameAsGeneral(t, in, 1<<12)
	})
}
