package clickhouse

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/mxtrail/mxtrail/internal/testenv"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// sessionColumnTypes are the sessions table's column types as migration 0001 creates them for
// features f (what the server announces to an INSERT).
func sessionColumnTypes(f schema.Features) []column.Type {
	lc := func(t string) string {
		if f.LowCardinality {
			return "LowCardinality(" + t + ")"
		}
		return t
	}
	lcarr := func(t string) string {
		if f.LowCardinalityArrays {
			return "LowCardinality(" + t + ")"
		}
		return t
	}
	dt, ip := "DateTime('UTC')", "String"
	if f.DateTime64 {
		dt = "DateTime64(3, 'UTC')"
	}
	if f.IPv6 {
		ip = "IPv6"
	}
	types := map[string]string{
		"session_id": "String", "host": lc("String"), "product": lc("String"), "session_key": "String",
		"start_time": dt, "end_time": dt, "client_ip": ip, "client_ptr": "String", "helo": "String",
		"auth_user": "String", "tls": "UInt8", "mail_from": "String", "rcpt_address": "Array(String)",
		"rcpt_outcome": "Array(" + lcarr("String") + ")", "rcpt_smtp_code": "Array(UInt16)",
		"rcpt_reply": "Array(String)", "outcome": lc("String"), "reason": lc("String"), "smtp_code": "UInt16",
		"smtp_reply": "String", "message_id": "String", "size": "UInt64", "delivery": lc("String"),
		"closed_by": lc("String"), "permanent": "UInt8", "flags": "Array(" + lcarr("String") + ")",
		"event_count": "UInt32", "max_severity": lc("String"), "outcome_version": "UInt16",
		"first_source": lc("String"), "first_offset": "Int64", "last_source": lc("String"),
		"last_offset": "Int64", "sender_domain": lc("String"), "client_net": ip,
	}
	out := make([]column.Type, len(sessionColumnNames))
	for i, n := range sessionColumnNames {
		out[i] = column.Type(types[n])
	}
	return out
}

var serverContext = &column.ServerContext{Timezone: time.UTC}

// encodeFull encodes a column as a block carries it, with its state prefix.
func encodeFull(t testing.TB, c column.Interface) []byte {
	t.Helper()
	var buf chproto.Buffer
	if cs, ok := c.(column.CustomSerialization); ok {
		if err := cs.WriteStatePrefix(&buf); err != nil {
			t.Fatal(err)
		}
	}
	c.Encode(&buf)
	return buf.Buf
}

// Every session column appended the writer's way encodes exactly like clickhouse-go's own
// generic Append of the same values, on an old server (LowCardinality scalars, String arrays)
// and a modern one (LowCardinality arrays, DateTime64, IPv6), for whole batches and the row
// ranges the isolate path sends.
func TestAppendColumnEncodesLikeGenericAppend(t *testing.T) {
	ss := genSessions(23, 3000)
	// Values that share a slot of appendLCRows' cache must still get their own keys.
	collide := [][]string{
		{"mx-collideA.mail.example.net", "mx-collideB.mail.example.net", "mx-collideC.mail.example.net"},
		{"abc1e", "abc2e", "abc3e"},
	}
	for _, vs := range collide {
		for _, v := range vs[1:] {
			if lcSlotOf(v) != lcSlotOf(vs[0]) {
				t.Fatalf("%q and %q do not share a cache slot: the test no longer covers collisions", v, vs[0])
			}
		}
	}
	for i := range ss {
		if i%3 == 0 {
			ss[i].Host = collide[0][i%9/3]
		}
		if i%5 == 0 {
			ss[i].Reason = collide[1][i%15/5]
		}
	}
	for _, sv := range []schema.ServerVersion{{Major: 18, Minor: 16}, {Major: 26, Minor: 1}} {
		f := schema.FeaturesFor(sv)
		b := NewBatch(f, 256<<10)
		now := time.Now()
		for i := range ss {
			b.Add(KindSessions, &Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}, now)
		}
		if _, _, d := b.Rows(); d != 0 {
			t.Fatalf("%v: %d records dead-lettered", sv, d)
		}
		types := sessionColumnTypes(f)
		w := NewWriter(nil, "db", f, NewMetrics(nil), time.Second, time.Second)
		for i, v := range b.sessions.values() {
			for _, rows := range [][2]int{{0, len(ss)}, {100, 101}, {7, 7}, {1500, len(ss)}} {
				part, err := sliceRows(v, rows[0], rows[1])
				if err != nil {
					t.Fatal(err)
				}
				generic, err := types[i].Column(sessionColumnNames[i], serverContext)
				if err != nil {
					t.Fatal(err)
				}
				plain := part
				if r, ok := part.(strRows); ok {
					plain = r.views()
				}
				if r, ok := part.(arrRows); ok {
					plain = r.views()
				}
				if r, ok := part.(u16ArrRows); ok {
					plain = r.views()
				}
				if _, err := generic.Append(plain); err != nil {
					t.Fatalf("%v %s: generic append: %v", sv, sessionColumnNames[i], err)
				}
				mine, _ := types[i].Column(sessionColumnNames[i], serverContext)
				w.reserve(mine, part)
				if err := w.appendColumn(mine, part); err != nil {
					t.Fatalf("%v %s: %v", sv, sessionColumnNames[i], err)
				}
				if mine.Rows() != rows[1]-rows[0] {
					t.Fatalf("%v %s rows %v: %d rows appended", sv, sessionColumnNames[i], rows, mine.Rows())
				}
				if !bytes.Equal(encodeFull(t, generic), encodeFull(t, mine)) {
					t.Fatalf("%v %s (%s) rows %v: encodes differently from the generic append", sv, sessionColumnNames[i], types[i], rows)
				}
			}
		}
	}
}

// BenchmarkAppendEncode is the client side of a sessions insert without the network: a 100k-row
// batch's columns appended into fresh clickhouse-go columns of an 18.16 server's types and
// encoded, as Writer.insert does, with the sink's GOGC (TuneGC). The baseline in the same run
// encodes columns already filled (the part no append path can save): the difference is what
// appending costs. cpu-ns/row is the process's CPU (rusage: the collector's threads count),
// steadier than wall time on a shared box.
func BenchmarkAppendEncode(b *testing.B) {
	defer TuneGC(0)()
	const n = 100_000
	ss := genSessions(25, n)
	f := schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16})
	batch := NewBatch(f, 256<<10)
	now := time.Now()
	for i := range ss {
		batch.Add(KindSessions, &Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}, now)
	}
	types := sessionColumnTypes(f)
	w := NewWriter(nil, "db", f, NewMetrics(nil), time.Second, time.Second)
	var buf chproto.Buffer
	fill := func(b *testing.B) []column.Interface {
		cols := make([]column.Interface, len(types))
		for i, v := range batch.sessions.values() {
			c, err := types[i].Column(sessionColumnNames[i], serverContext)
			if err != nil {
				b.Fatal(err)
			}
			w.reserve(c, v)
			if err := w.appendColumn(c, v); err != nil {
				b.Fatal(err)
			}
			cols[i] = c
		}
		return cols
	}
	encode := func(cols []column.Interface) {
		buf.Reset()
		for _, c := range cols {
			if cs, ok := c.(column.CustomSerialization); ok {
				_ = cs.WriteStatePrefix(&buf)
			}
			c.Encode(&buf)
		}
	}
	b.Run("append_encode", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := testenv.ProcessCPU()
		for i := 0; i < b.N; i++ {
			encode(fill(b))
		}
		b.ReportMetric(float64((testenv.ProcessCPU()-cpu0).Nanoseconds())/float64(b.N)/n, "cpu-ns/row")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/row")
	})
	b.Run("baseline_encode_only", func(b *testing.B) {
		b.ReportAllocs()
		var cpu time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			cols := fill(b)
			cpu0 := testenv.ProcessCPU()
			b.StartTimer()
			encode(cols)
			cpu += testenv.ProcessCPU() - cpu0
		}
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/n, "cpu-ns/row")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/row")
	})
}

// The String fast path depends on clickhouse-go's column.String holding a ch-go ColStr in its
// field col. If an upgrade changes that, the writer falls back to the public Append (correct,
// slower); this test says so, so the fast path can be adapted or dropped knowingly.
func TestColStrLayout(t *testing.T) {
	if !colStrOK {
		t.Fatal("clickhouse-go's column.String no longer holds a proto.ColStr in field col: String columns take the slower public Append")
	}
	c, err := column.Type("String").Column("s", serverContext)
	if err != nil {
		t.Fatal(err)
	}
	var a strCol
	a.buf = make([]byte, 0, 64) // room to spare: a careless append would write into it
	for _, v := range []string{"a", "", "héllo", "x", "tail"} {
		a.add(v)
	}
	// Rows 1-3 of 5, shared with the column; then rows appended to it must not touch the arena.
	appendStrRows(colStr(c.(*column.String)), strRows{&a, 1, 4}, nil)
	if err := c.AppendRow("zz"); err != nil {
		t.Fatal(err)
	}
	appendStrRows(colStr(c.(*column.String)), strRows{&a, 0, 1}, nil)
	want := []string{"", "héllo", "x", "zz", "a"}
	if c.Rows() != len(want) {
		t.Fatalf("column holds %d rows, want %d", c.Rows(), len(want))
	}
	for i, w := range want {
		if got := c.Row(i, false); got != w {
			t.Fatalf("row %d: %q, want %q", i, got, w)
		}
	}
	if got := string(a.buf); got != "ahéllox"+"tail" {
		t.Fatalf("arena now %q", got)
	}
}

// Like TestColStrLayout, for the LowCardinality fast path.
func TestLowCardinalityLayout(t *testing.T) {
	if !lcLayout.ok {
		t.Fatal("clickhouse-go's column.LowCardinality changed its fields: LowCardinality columns take the slower public AppendRow")
	}
	c, err := column.Type("LowCardinality(String)").Column("s", serverContext)
	if err != nil {
		t.Fatal(err)
	}
	var a strCol
	for _, v := range []string{"x", "b", "", "b", "a"} {
		a.add(v)
	}
	w := &Writer{}
	if !w.appendLCRows(c.(*column.LowCardinality), strRows{&a, 1, 5}) {
		t.Fatal("appendLCRows declined an empty LowCardinality(String) column")
	}
	generic, _ := column.Type("LowCardinality(String)").Column("s", serverContext)
	if _, err := generic.Append([]string{"b", "", "b", "a"}); err != nil {
		t.Fatal(err)
	}
	if c.Rows() != 4 || !bytes.Equal(encodeFull(t, c), encodeFull(t, generic)) {
		t.Fatalf("%d rows, encoded %x, want %x", c.Rows(), encodeFull(t, c), encodeFull(t, generic))
	}
	// More than 255 distinct values: the keys are encoded as UInt16, sized by the distinct count.
	var many strCol
	var vals []string
	for i := 0; i < 3000; i++ {
		v := strconv.Itoa(i % 700)
		many.add(v)
		vals = append(vals, v)
	}
	wide, _ := column.Type("LowCardinality(String)").Column("s", serverContext)
	generic, _ = column.Type("LowCardinality(String)").Column("s", serverContext)
	if _, err := generic.Append(vals); err != nil {
		t.Fatal(err)
	}
	if !w.appendLCRows(wide.(*column.LowCardinality), many.rows()) || !bytes.Equal(encodeFull(t, wide), encodeFull(t, generic)) {
		t.Fatal("700 distinct values encode differently from the generic append")
	}
	if w.appendLCRows(c.(*column.LowCardinality), strRows{&a, 0, 1}) {
		t.Fatal("appendLCRows appended to a column that already has rows")
	}
	// The keys are handed over at the width Encode would choose, on both sides of each
	// boundary, and left to Encode past UInt16.
	if !lcKeyLayout.ok {
		t.Fatal("clickhouse-go's column.LowCardinality changed its key fields: Encode converts the keys itself")
	}
	for _, distinct := range []int{1, 253, 254, 255, 256, 65533, 65534, 65535, 70000} {
		var col strCol
		var vals []string
		for i := 0; i < distinct+500; i++ {
			v := "v" + strconv.Itoa(i%distinct)
			col.add(v)
			vals = append(vals, v)
		}
		mine, _ := column.Type("LowCardinality(String)").Column("s", serverContext)
		generic, _ := column.Type("LowCardinality(String)").Column("s", serverContext)
		if _, err := generic.Append(vals); err != nil {
			t.Fatal(err)
		}
		if !w.appendLCRows(mine.(*column.LowCardinality), col.rows()) {
			t.Fatalf("%d distinct: appendLCRows declined", distinct)
		}
		if !bytes.Equal(encodeFull(t, mine), encodeFull(t, generic)) {
			t.Fatalf("%d distinct values encode differently from the generic append", distinct)
		}
	}
}

// Like TestColStrLayout, for the Array fast path.
func TestArrayLayout(t *testing.T) {
	if !arrLayout.ok {
		t.Fatal("clickhouse-go's column.Array changed its offsets' fields: Array columns take the slower public AppendRow")
	}
	if !arrBase.ok {
		t.Fatal("clickhouse-go's column.Array no longer keeps its elements in field values: Array(String) elements are filled into clickhouse-go's String column")
	}
	var a strArrCol
	for _, row := range [][]string{{"a"}, {}, {"b", "c", ""}, {"d"}} {
		for _, v := range row {
			a.elems.add(v)
		}
		a.endRow()
	}
	for _, typ := range []column.Type{"Array(String)", "Array(LowCardinality(String))"} {
		c, err := typ.Column("s", serverContext)
		if err != nil {
			t.Fatal(err)
		}
		generic, _ := typ.Column("s", serverContext)
		if _, err := generic.Append([][]string{{}, {"b", "c", ""}, {"d"}}); err != nil {
			t.Fatal(err)
		}
		w := &Writer{}
		if !w.appendArrRows(c.(*column.Array), arrRows{&a, 1, 4}) {
			t.Fatalf("%s: appendArrRows declined an empty column", typ)
		}
		if c.Rows() != 3 || !bytes.Equal(encodeFull(t, c), encodeFull(t, generic)) {
			t.Fatalf("%s: %d rows, encoded %x, want %x", typ, c.Rows(), encodeFull(t, c), encodeFull(t, generic))
		}
		if w.appendArrRows(c.(*column.Array), arrRows{&a, 0, 1}) {
			t.Fatalf("%s: appendArrRows appended to a column that already has rows", typ)
		}
	}
	if !u16ColOK {
		t.Fatal("clickhouse-go's column.UInt16 no longer holds a proto.ColUInt16 in field col: Array(UInt16) takes the public AppendRow")
	}
	codes := u16ArrCol{elems: []uint16{250, 550, 451, 554}, rowEnd: []int{1, 1, 3, 4}}
	c, _ := column.Type("Array(UInt16)").Column("s", serverContext)
	generic, _ := column.Type("Array(UInt16)").Column("s", serverContext)
	if _, err := generic.Append([][]uint16{{}, {550, 451}, {554}}); err != nil {
		t.Fatal(err)
	}
	w := &Writer{}
	if !w.appendU16ArrRows(c.(*column.Array), u16ArrRows{&codes, 1, 4}) {
		t.Fatal("appendU16ArrRows declined an empty Array(UInt16) column")
	}
	if c.Rows() != 3 || !bytes.Equal(encodeFull(t, c), encodeFull(t, generic)) {
		t.Fatalf("Array(UInt16): %d rows, encoded %x, want %x", c.Rows(), encodeFull(t, c), encodeFull(t, generic))
	}
}

// Like TestColStrLayout, for the fixed-width columns the writer shares with the batch: the
// column must hold exactly the shared rows, and a later append must not write into them.
func TestFixedLayout(t *testing.T) {
	for name, f := range map[string]fixedField{"UInt8": fixedUInt8, "UInt16": fixedUInt16, "UInt32": fixedUInt32,
		"UInt64": fixedUInt64, "Int32": fixedInt32, "Int64": fixedInt64, "IPv6": fixedIPv6} {
		if !f.ok {
			t.Errorf("clickhouse-go's column.%s no longer holds its ch-go column in field col: it takes the slower public Append", name)
		}
	}
	c, err := column.Type("Int64").Column("n", serverContext)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]int64, 3, 8)
	rows[0], rows[1], rows[2] = 7, -1, 1<<40
	w := NewWriter(nil, "db", schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16}), NewMetrics(nil), time.Second, time.Second)
	if err := w.appendColumn(c, rows[:2]); err != nil {
		t.Fatal(err)
	}
	if err := c.AppendRow(int64(5)); err != nil {
		t.Fatal(err)
	}
	if c.Rows() != 3 || c.Row(0, false) != int64(7) || c.Row(1, false) != int64(-1) || c.Row(2, false) != int64(5) {
		t.Fatalf("column holds %d rows %v %v %v", c.Rows(), c.Row(0, false), c.Row(1, false), c.Row(2, false))
	}
	if rows[2] != 1<<40 {
		t.Fatalf("an append to the column wrote into the batch's rows: %v", rows)
	}
}

// Like TestColStrLayout, for DateTime and DateTime64 columns: filled the writer's way, they
// encode like the generic Append, zero times, fractions and times before 1970 included.
func TestTimeLayout(t *testing.T) {
	if !timeLayout.dt.ok || !timeLayout.dt64.ok {
		t.Fatal("clickhouse-go's DateTime or DateTime64 no longer holds its ch-go column in field col: it takes the slower public Append")
	}
	times := []time.Time{{}, time.Unix(0, 0), time.Date(2026, 11, 23, 18, 42, 40, 123456789, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999000000, time.UTC), time.Date(2105, 1, 1, 0, 0, 0, 0, time.UTC)}
	w := NewWriter(nil, "db", schema.FeaturesFor(schema.ServerVersion{Major: 26, Minor: 1}), NewMetrics(nil), time.Second, time.Second)
	for _, typ := range []column.Type{"DateTime('UTC')", "DateTime64(3, 'UTC')", "DateTime64(6, 'UTC')"} {
		mine, err := typ.Column("t", serverContext)
		if err != nil {
			t.Fatal(err)
		}
		generic, _ := typ.Column("t", serverContext)
		if _, err := generic.Append(times); err != nil {
			t.Fatal(err)
		}
		if !w.appendTimes(mine, times) {
			t.Fatalf("%s: appendTimes declined an empty column", typ)
		}
		if mine.Rows() != len(times) || !bytes.Equal(encodeFull(t, mine), encodeFull(t, generic)) {
			t.Fatalf("%s: encoded %x, want %x", typ, encodeFull(t, mine), encodeFull(t, generic))
		}
		if w.appendTimes(mine, times) {
			t.Fatalf("%s: appendTimes appended to a column that already has rows", typ)
		}
	}
}
