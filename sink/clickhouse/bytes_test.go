package clickhouse

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/alert"
	"github.com/mxtrail/mxtrail/internal/testenv"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// Batch.Bytes is the size of the Native columns the server receives: for session rows it
// matches the bytes clickhouse-go encodes the batch's columns into (on column types without
// LowCardinality, whose dictionaries make the wire smaller than the values), on an old server
// (DateTime, the address as text) and a modern one (DateTime64, IPv6), within the length
// prefixes of values of 128 bytes and more, which Bytes leaves out. It is not the records'
// JSON: a session record's JSON is about twice its column bytes.
func TestBatchBytesIsTheInsertSize(t *testing.T) {
	ss := genSessions(31, 5000)
	for _, sv := range []schema.ServerVersion{{Major: 18, Minor: 16}, {Major: 26, Minor: 1}} {
		f := schema.FeaturesFor(sv)
		f.LowCardinality, f.LowCardinalityArrays = false, false
		b := NewBatch(f, 256<<10)
		now := time.Now()
		json := 0
		for i := range ss {
			v := ss[i].AppendJSON(nil)
			json += len(v)
			b.Add(KindSessions, &Message{Topic: "t", Offset: int64(i), Value: v}, now)
		}
		if _, _, d := b.Rows(); d != 0 {
			t.Fatalf("%v: %d records dead-lettered", sv, d)
		}
		types := sessionColumnTypes(f)
		w := NewWriter(nil, "db", f, NewMetrics(nil), time.Second, time.Second)
		wire := 0
		for i, v := range b.sessions.values() {
			c, err := types[i].Column(sessionColumnNames[i], serverContext)
			if err != nil {
				t.Fatal(err)
			}
			w.reserve(c, v)
			if err := w.appendColumn(c, v); err != nil {
				t.Fatalf("%v %s: %v", sv, sessionColumnNames[i], err)
			}
			wire += len(encodeFull(t, c))
		}
		got := b.Bytes()
		if got > wire || float64(wire-got) > 0.005*float64(wire) {
			t.Errorf("%v: Bytes() = %d, the encoded columns are %d bytes (want at most 0.5%% fewer, never more)", sv, got, wire)
		}
		if b.ValueBytes() != json {
			t.Errorf("%v: ValueBytes() = %d, want the %d JSON bytes added", sv, b.ValueBytes(), json)
		}
		if 2*json < 3*got {
			t.Errorf("%v: JSON %d bytes against %d insert bytes: the records are not what the test assumes", sv, json, got)
		}
		t.Logf("%v: %d session rows: %d insert bytes (%.0f a row), %d JSON bytes (%.2fx): 32 MiB closes at ~%d rows",
			sv, len(ss), got, float64(got)/float64(len(ss)), json, float64(json)/float64(got), (32<<20)*len(ss)/got)
		b.Reset()
		if b.Bytes() != 0 || b.ValueBytes() != 0 {
			t.Errorf("%v: after Reset Bytes() = %d, ValueBytes() = %d", sv, b.Bytes(), b.ValueBytes())
		}
	}
}

// Events, deadletter and alerts rows count the same way: each string with its length prefix,
// fixed widths as the columns hold them.
func TestBatchBytesOtherTables(t *testing.T) {
	for _, sv := range []schema.ServerVersion{{Major: 18, Minor: 16}, {Major: 26, Minor: 1}} {
		f := schema.FeaturesFor(sv)
		timeW := 4
		if f.DateTime64 {
			timeW = 8
		}
		now := time.Now()

		b := NewBatch(f, 256<<10)
		ev := genEvents(7, 1)[0]
		ev.Raw = strings.Repeat("r", 300) // a two-byte length prefix
		b.Add(KindEvents, &Message{Topic: "e", Value: ev.AppendJSON(nil)}, now)
		want := timeW + 8 + 302
		for _, s := range []string{ev.Host, ev.Product, ev.Dialect, ev.Code, ev.Name, ev.Severity, ev.RawSeverity,
			ev.SessionID, ev.ClientIP, ev.Pos.Source} {
			want += 1 + len(s)
		}
		if _, e, _ := b.Rows(); e != 1 || b.Bytes() != want {
			t.Errorf("%v: one event: %d rows, Bytes() = %d, want %d", sv, e, b.Bytes(), want)
		}

		b = NewBatch(f, 256<<10)
		raw := `{"session_id":`
		b.Add(KindSessions, &Message{Topic: "s", Partition: 2, Offset: 9, Key: []byte("key"), Value: []byte(raw)}, now)
		if _, _, d := b.Rows(); d != 1 {
			t.Fatalf("%v: a broken record was not dead-lettered", sv)
		}
		errText := b.dead.errText[0]
		want = timeW + 4 + 8 + 1 + len(ReasonDecode) + 1 + len(errText) + 1 + len("s") + 1 + len("key") + 1 + len(raw)
		if b.Bytes() != want {
			t.Errorf("%v: one dead letter: Bytes() = %d, want %d", sv, b.Bytes(), want)
		}

		b = NewBatch(f, 256<<10)
		a := alert.Record{AlertID: "a1", Rule: alert.RuleAuthFailureBurst.String(), Code: "AUTH_FAILED", Severity: "warning",
			Host: "mx1", Product: "smtpf", FiredAt: now.UTC().Truncate(time.Second), Version: 1, Count: 3,
			Summary: "burst", SessionID: "s1", Example: "line", SeverityRaw: "warn"}
		b.Add(KindAlerts, &Message{Topic: "a", Value: a.AppendJSON(nil)}, now)
		if b.alerts.len() != 1 {
			_, _, d := b.Rows()
			t.Fatalf("%v: the alert was not added (%d dead letters: %v)", sv, d, b.dead.errText)
		}
		want = 3*timeW + 4*8
		for _, s := range []string{a.AlertID, a.Rule, a.Code, a.Severity, a.Host, a.Product, a.Code /* outcome */, a.Summary,
			"severity_raw=" + a.SeverityRaw, a.SessionID, a.Example} {
			want += 1 + len(s)
		}
		if b.Bytes() != want {
			t.Errorf("%v: one alert: Bytes() = %d, want %d", sv, b.Bytes(), want)
		}
	}
}

// The sessions' count reads the arenas, so every string column of the table must be in it:
// a column added to sessionColumns but not to wireBytes fails here.
func TestSessionWireBytesCountsEveryStringColumn(t *testing.T) {
	f := schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16})
	b := NewBatch(f, 256<<10)
	ss := genSessions(3, 50)
	for i := range ss {
		b.Add(KindSessions, &Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}, time.Now())
	}
	want := 0
	rows := b.sessions.len()
	for i, v := range b.sessions.values() {
		switch v := v.(type) {
		case strRows:
			buf, _ := v.bytes()
			want += len(buf) + (v.hi - v.lo)
		case arrRows:
			el := v.elems()
			buf, _ := el.bytes()
			want += 8*rows + len(buf) + (el.hi - el.lo)
		case u16ArrRows:
			e, _ := v.elems()
			want += 8*rows + 2*len(e)
		case []time.Time:
			want += 4 * len(v)
		case []uint8:
			want += len(v)
		case []uint16:
			want += 2 * len(v)
		case []uint32:
			want += 4 * len(v)
		case []uint64:
			want += 8 * len(v)
		case []int64:
			want += 8 * len(v)
		default:
			t.Fatalf("column %s: no size for %T", sessionColumnNames[i], v)
		}
	}
	if got := b.sessions.wireBytes(4); got != want {
		t.Errorf("wireBytes = %d, the columns hold %d", got, want)
	}
}

// A batch grown to another's SizeHint fills with the same records without growing any column
// (no copy on the way), and Reset keeps the room.
func TestBatchGrowToHint(t *testing.T) {
	f := schema.FeaturesFor(schema.ServerVersion{Major: 26, Minor: 1})
	ss := genSessions(41, 2000)
	msgs := make([]Message, len(ss))
	for i := range ss {
		msgs[i] = Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}
	}
	fill := func(b *Batch) {
		for i := range msgs {
			b.Add(KindSessions, &msgs[i], time.Now())
		}
	}
	first := NewBatch(f, 256<<10)
	fill(first)
	fresh := NewBatch(f, 256<<10)
	fresh.Grow(first.SizeHint())
	caps := batchCaps
	before := caps(fresh)
	fill(fresh)
	if after := caps(fresh); !slices.Equal(before, after) {
		t.Errorf("columns grew while filling a batch grown to the hint:\nbefore %v\nafter  %v", before, after)
	}
	fresh.Reset()
	if after := caps(fresh); !slices.Equal(before, after) {
		t.Errorf("Reset dropped the room: %v, was %v", after, before)
	}
}

// batchCaps lists the capacities of b's session columns: equal before and after a fill when
// no column grew.
func batchCaps(b *Batch) []int {
	var out []int
	for _, s := range b.sessions.strCols() {
		out = append(out, cap(s.buf), cap(s.end))
	}
	c := &b.sessions
	return append(out, cap(c.startTime), cap(c.clientIP6), cap(c.size), cap(c.flags.rowEnd), cap(c.rcptCode.elems), cap(b.sessSrc))
}

// fillSampled adds msgs to b as the sink's batcher does on a slot's first fill: once the batch
// holds a sixteenth of batchBytes (or of batchRows), read every 16 messages, it grows b to the
// whole batch the sample predicts (GrowFor). It returns b's capacities right after that.
func fillSampled(b *Batch, msgs []Message, batchRows, batchBytes int) (grown []int) {
	now := time.Now()
	for i := range msgs {
		b.Add(KindSessions, &msgs[i], now)
		if grown == nil && (i+1)%16 == 0 && b.GrowFor(batchRows, batchBytes, b.Bytes()) {
			grown = batchCaps(b)
		}
	}
	return grown
}

// A batch grown from its first sixteenth (GrowFor) holds the whole batch without growing any
// column again, whichever limit closes it; and it reserves no more than about a sixteenth
// over what the batch needs.
func TestBatchGrowForPredictsTheBatch(t *testing.T) {
	for _, v := range []schema.ServerVersion{{Major: 18, Minor: 16}, {Major: 26, Minor: 1}} {
		f := schema.FeaturesFor(v)
		ss := genSessions(47, 8000)
		msgs := make([]Message, len(ss))
		for i := range ss {
			msgs[i] = Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}
		}
		whole := NewBatch(f, 256<<10)
		for i := range msgs {
			whole.Add(KindSessions, &msgs[i], time.Now())
		}
		lens := whole.SizeHint()
		for _, limit := range []struct {
			name             string
			rows, bytes, cut int // cut: the message the batch closes at
		}{
			{"bytes", 1 << 30, whole.Bytes(), len(msgs)},
			{"rows", len(msgs), 1 << 30, len(msgs)},
		} {
			b := NewBatch(f, 256<<10)
			grown := fillSampled(b, msgs[:limit.cut], limit.rows, limit.bytes)
			if grown == nil {
				t.Fatalf("%v %s: the batch never reached a sixteenth of its limits", v, limit.name)
			}
			if after := batchCaps(b); !slices.Equal(grown, after) {
				t.Errorf("%v %s: columns grew after GrowFor:\ngrown %v\nafter %v", v, limit.name, grown, after)
			}
			// Room: within the sixteenth's margin plus sampling error of each arena's size.
			z := lens.sessions
			for i := range z.str {
				if n, c := z.str[i][0], cap(b.sessions.strCols()[i].buf); n > 4096 && c > n*5/4 {
					t.Errorf("%v %s: arena %s reserved %d bytes for %d", v, limit.name, sessionColumnNames[i], c, n)
				}
			}
		}
	}
}

// BenchmarkBatchFirstFill fills a never-used batch with 65k session records (what 32 MiB of
// insert bytes holds), grown to the previous batch's SizeHint first, or grown by its first
// sixteenth (GrowFor, the sink's first batch), against the baseline of the same fill from
// empty columns that grow by append (what each of the sink's MaxInFlight+1 batches did on its
// first use). cpu-ns/row is the process's CPU (rusage, collector included).
func BenchmarkBatchFirstFill(b *testing.B) {
	f := schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16})
	ss := genSessions(43, 65_000)
	msgs := make([]Message, len(ss))
	for i := range ss {
		msgs[i] = Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}
	}
	prev := NewBatch(f, 256<<10)
	now := time.Now()
	for i := range msgs {
		prev.Add(KindSessions, &msgs[i], now)
	}
	hint, full := prev.SizeHint(), prev.Bytes()
	for _, name := range []string{"baseline_from_empty", "grown_to_hint", "grown_by_sample"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				batch := NewBatch(f, 256<<10)
				cpu0 := testenv.ProcessCPU()
				b.StartTimer()
				switch name {
				case "grown_to_hint":
					batch.Grow(hint)
				case "grown_by_sample":
					fillSampled(batch, msgs, 100_000, full)
					b.StopTimer()
					cpu += testenv.ProcessCPU() - cpu0
					continue
				}
				for j := range msgs {
					batch.Add(KindSessions, &msgs[j], now)
				}
				b.StopTimer()
				cpu += testenv.ProcessCPU() - cpu0
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(len(msgs)), "cpu-ns/row")
		})
	}
}
