package clickhouse

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/record"
	"github.com/mxtrail/mxtrail/sink/schema"
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
		if ok, err := decodeSessionCanonical(&l, &s, &noTargets); !ok || err != nil {
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
		if ok, _ := decodeSessionCanonical(&l, &s, &noTargets); !ok {
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
	good := string(genSessions(9, 1)[0].AppendJSON(nil))
	f.Fuzz(func(t *testing.T, in string) {
		sameAsGeneral(t, in, 1<<12)
		sameBatchAsCopy(t, []string{good, in, good, in}, 1<<12, len(in)%2 == 0)
	})
}

// sameBatchAsCopy adds the inputs to a batch (whose canonical records go straight into the
// arenas, see sessionTargets) and, the way the batch did before that, decodes each into a
// record, checks it and appends it with appendSession; it fails unless every input gets the
// same error and both batches end with the same columns. Failed records between good ones
// check that what a record left in the arenas is dropped.
func sameBatchAsCopy(t *testing.T, ins []string, maxField int, ipv6 bool) {
	t.Helper()
	f := schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16})
	f.IPv6 = ipv6
	got, want := NewBatch(f, maxField), NewBatch(f, maxField)
	var s record.Session
	for i, in := range ins {
		errGot := got.addSession(&Message{Value: []byte(in)})
		l := lexer{s: in, maxField: maxField, esc: make([]byte, 0, 64)}
		errWant := decodeSession(&l, &s)
		var ip [16]byte
		if errWant != nil {
			errWant = fmt.Errorf("decode session record: %w", errWant)
		} else if ip, errWant = checkSession(&s, f.DateTime64); errWant != nil {
			errWant = fmt.Errorf("convert session %q: %w", s.SessionID, errWant)
		} else {
			want.sessions.appendSession(&s, ip)
		}
		if fmt.Sprint(errGot) != fmt.Sprint(errWant) {
			t.Fatalf("input %d: error %v, decode-then-append %v\ninput %q", i, errGot, errWant, in)
		}
	}
	g, w := sessionValues(&got.sessions), sessionValues(&want.sessions)
	for i := range w {
		if !reflect.DeepEqual(g[i], w[i]) {
			t.Fatalf("column %s:\n %q\ndecode-then-append\n %q", sessionColumnNames[i], g[i], w[i])
		}
	}
	if gb, wb := got.sessions.wireBytes(4), want.sessions.wireBytes(4); gb != wb {
		t.Fatalf("wire bytes %d, decode-then-append %d", gb, wb)
	}
}

// sessionValues copies the columns out of the arenas, comparable with reflect.DeepEqual.
func sessionValues(c *sessionColumns) []any {
	var out []any
	for _, v := range c.values() {
		switch v := v.(type) {
		case strRows:
			out = append(out, slices.Clone(v.views()))
		case arrRows:
			var rows [][]string
			for _, r := range v.views() {
				rows = append(rows, slices.Clone(r))
			}
			out = append(out, rows)
		case u16ArrRows:
			var rows [][]uint16
			for _, r := range v.views() {
				rows = append(rows, slices.Clone(r))
			}
			out = append(out, rows)
		default:
			out = append(out, v)
		}
	}
	return out
}

// The canonical decoder's strings go straight into the arenas: the columns end up exactly as
// decoding into a record and appending it gave them, whatever mix of good, damaged and
// unconvertible records came in, on old (client_ip as String) and IPv6 servers, with
// escapes, values at and over the field limit, and arenas too full to take a value in place.
func TestFusedSessionAppend(t *testing.T) {
	ss := genSessions(41, 400)
	ss[3].ClientIP = "not-an-ip"                 // decodes, fails the check
	ss[4].SMTPCode = 70000                       // out of range
	ss[5].Reason = strings.Repeat("r", 300)      // over the limit of 256 below
	ss[6].Reason = strings.Repeat("s", 256)      // at the limit
	ss[7].SMTPReply = strings.Repeat(`\"`, 200)  // escaped, 200 bytes unescaped
	ss[8].SMTPReply = strings.Repeat(`é\t`, 100) // 300 bytes unescaped: over
	ss[9].Flags = []string{"A", `b"c`, "", "\u2028"}
	ss[10].Recipients = nil
	ss[11].SMTPReply = strings.Repeat("x", 250) + `"` + strings.Repeat("y", 10) // over, after the escape
	ss[12].SMTPReply = strings.Repeat("x", 250) + `"` + strings.Repeat("y", 5)  // at the limit
	var ins []string
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range ss {
		line := string(ss[i].AppendJSON(nil))
		ins = append(ins, line)
		switch rng.IntN(4) {
		case 0:
			ins = append(ins, line[:rng.IntN(len(line))]) // truncated: some values read already
		case 1:
			ins = append(ins, strings.Replace(line, `,"flags":[`, `, "flags":[`, 1)) // not canonical late on
		case 2:
			b := []byte(line)
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
			ins = append(ins, string(b))
		}
	}
	// Records that fail only after every value was read, each followed by a good one.
	for _, i := range []int{3, 4, 5, 8, 11} {
		ins = append(ins, string(ss[i].AppendJSON(nil)), string(ss[20+i].AppendJSON(nil)))
	}
	for _, ipv6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ipv6=%v", ipv6), func(t *testing.T) {
			sameBatchAsCopy(t, ins, 256, ipv6)
		})
	}
}
