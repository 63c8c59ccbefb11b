package clickhouse

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/mxtrail/mxtrail/internal/testenv"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// An arena String column encodes exactly as clickhouse-go's String column holding the same
// values: one-byte and multi-byte lengths, empty values, whole arenas and the row ranges the
// isolate path sends (from the middle, to the end, empty), every length around the
// word-by-word copy's limit (shortValue), and an arena filled to its capacity (the last values
// are too near its end to be read a word past them).
func TestArenaStrColumnEncodesLikeColStr(t *testing.T) {
	vals := []string{"a", "", "héllo wörld", strings.Repeat("x", 127), strings.Repeat("y", 128), "",
		strings.Repeat("z", 300), "<1234@example.org>", strings.Repeat("q", 16384), "tail"}
	for n := 0; n <= shortValue+9; n++ {
		vals = append(vals, strings.Repeat(string(rune('a'+n%26)), n))
	}
	vals = append(vals, "<20261123184240.1234@mx1.example.net>", strings.Repeat("7", shortValue), "ab", "x")
	total := 0
	for _, v := range vals {
		total += len(v)
	}
	tight := strCol{buf: make([]byte, 0, total), end: make([]uint32, 0, len(vals))}
	var grown strCol
	for _, v := range vals {
		tight.add(v)
		grown.add(v)
	}
	if cap(tight.buf) != len(tight.buf) {
		t.Fatalf("the tight arena grew: %d bytes of %d", len(tight.buf), cap(tight.buf))
	}
	for _, a := range []*strCol{&grown, &tight} {
		testArenaStrRanges(t, a, vals)
	}
}

func testArenaStrRanges(t *testing.T, a *strCol, vals []string) {
	t.Helper()
	for _, rg := range [][2]int{{0, len(vals)}, {1, 4}, {3, 5}, {len(vals) - 1, len(vals)}, {4, 4}, {0, 0}, {10, len(vals) - 3}, {len(vals) - 3, len(vals)}} {
		c, err := column.Type("String").Column("s", serverContext)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals[rg[0]:rg[1]] {
			if err := c.AppendRow(v); err != nil {
				t.Fatal(err)
			}
		}
		want := encodeFull(t, c)
		fresh, _ := column.Type("String").Column("s", serverContext)
		ac := &arenaStrColumn{String: fresh.(*column.String), r: strRows{a, rg[0], rg[1]}}
		if ac.Rows() != rg[1]-rg[0] {
			t.Errorf("rows %v: Rows() = %d", rg, ac.Rows())
		}
		// Appended after bytes already in the buffer, as a block's columns are.
		got := appendArenaStrings([]byte("prefix"), ac.r)
		if !bytes.Equal(got[len("prefix"):], want) || string(got[:len("prefix")]) != "prefix" {
			t.Errorf("rows %v: encoded %d bytes, clickhouse-go %d; differ", rg, len(got)-len("prefix"), len(want))
		}
		if got := encodeFull(t, ac); !bytes.Equal(got, want) {
			t.Errorf("rows %v: Encode differs from clickhouse-go's", rg)
		}
	}
}

// The writer's arena String columns depend on clickhouse-go's batch keeping the block it sends
// in a field block. If an upgrade changes that, the writer fills clickhouse-go's own columns
// (correct, slower); this test says so. It also checks that the block found is the one whose
// columns the batch hands out.
func TestBatchBlockLayoutIntegration(t *testing.T) {
	addrs := testenv.ClickHouseAddrs(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := "mxtest_block_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	conn := openTest(t, ctx, addrs, db)
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".sessions (session_id, helo)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = batch.Abort() }()
	var l blockLayout
	blk := l.blockOf(batch)
	if blk == nil {
		t.Fatalf("clickhouse-go's %T has no *proto.Block field named block: String columns take clickhouse-go's own encoding", batch)
	}
	cols := batch.Columns()
	if len(blk.Columns) != len(cols) || blk.Columns[0] != cols[0] || blk.Columns[1] != cols[1] {
		t.Fatalf("the block found holds %d columns, not the batch's %d", len(blk.Columns), len(cols))
	}
	if l.blockOf(nil) != nil {
		t.Fatal("a nil batch has a block")
	}
}

// BenchmarkArenaStrEncode encodes the plain String columns of a 65k-row session batch (what
// 32 MiB of insert bytes holds) as an insert sends them: arenaStrColumn, against the baseline
// of clickhouse-go's column filled from the arena (appendStrRows: a position pair per value)
// and its ColStr.EncodeColumn. ns/row is per session row, all the columns together.
func BenchmarkArenaStrEncode(b *testing.B) {
	ss := genSessions(53, 65_000)
	batch := NewBatch(schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16}), 256<<10)
	now := time.Now()
	for i := range ss {
		m := Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}
		batch.Add(KindSessions, &m, now)
	}
	c := &batch.sessions
	cols := []*strCol{&c.sessionID, &c.sessionKey, &c.clientIP, &c.clientPTR, &c.helo, &c.authUser,
		&c.mailFrom, &c.smtpReply, &c.messageID, &c.clientNet}
	buf := make([]byte, 0, 64<<20)
	lent := make([]colBufs, len(cols))
	for _, name := range []string{"baseline_colstr", "arena"} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				buf = buf[:0]
				for j, sc := range cols {
					r := sc.rows()
					if name == "arena" {
						buf = appendArenaStrings(buf, r)
						continue
					}
					col, _ := column.Type("String").Column("s", serverContext)
					cs := colStr(col.(*column.String))
					appendStrRows(cs, r, &lent[j])
					cb := chproto.Buffer{Buf: buf}
					cs.EncodeColumn(&cb)
					buf = cb.Buf
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ss)), "ns/row")
		})
	}
}
