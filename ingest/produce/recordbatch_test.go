package produce

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// realisticLine is a ~200-byte spamdyke line, distinct per i.
func realisticLine(i int) []byte {
	return fmt.Appendf(nil, "Mar  9 11:%02d:%02d mx1 spamdyke[%d]: ALLOWED from: user%d@example.com to: rcpt@example.org origin_ip: 192.0.2.%d origin_rdns: mail%d.example.net auth: (unknown) encryption: TLS reason: 250_ok_seq=%d",
		i/60%60, i%60, 10000+i%50000, i%977, i%250, i%1000, i)
}

func testHeaders(host string) []kafka.Header {
	return []kafka.Header{
		{Key: "host", Value: []byte(host)},
		{Key: "source", Value: []byte("file")},
		{Key: "dialect", Value: []byte{}}, // empty, not null
		{Key: "ingest_time", Value: []byte("2026-11-23T15:04:05.123456789Z")},
		{Key: "nil", Value: nil}, // a null header value stays null
	}
}

// decodeRecordSet decodes one record set with kafka-go's own reader (an independent decoder)
// and checks the CRC-32C the broker verifies.
func decodeRecordSet(t *testing.T, data []byte) (attr int16, recs []protocol.Record, values, keys [][]byte) {
	t.Helper()
	b := data[sizePrefix:]
	if got := int(binary.BigEndian.Uint32(data)); got != len(b) {
		t.Fatalf("size prefix %d, record set is %d bytes", got, len(b))
	}
	if got := int(binary.BigEndian.Uint32(b[8:])); got != len(b)-12 {
		t.Fatalf("batch length %d, want %d", got, len(b)-12)
	}
	if want, got := crc32.Checksum(b[offAttributes:], crc32.MakeTable(crc32.Castagnoli)), binary.BigEndian.Uint32(b[offCRC:]); want != got {
		t.Fatalf("crc %08x, want %08x", got, want)
	}
	var rs protocol.RecordSet
	if _, err := rs.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatalf("kafka-go cannot read the record set: %v", err)
	}
	for {
		r, err := rs.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		k, _ := protocol.ReadAll(r.Key)
		v, _ := protocol.ReadAll(r.Value)
		keys, values = append(keys, k), append(values, v)
		recs = append(recs, *r)
	}
	return int16(rs.Attributes), recs, values, keys
}

func TestRecordBatchReadsBackWithKafkaGo(t *testing.T) {
	odd := [][]byte{
		{}, // empty line
		[]byte("caf\xc3\xa9 \xff\xfe\x00 nul and invalid UTF-8"), // shipped as is
		bytes.Repeat([]byte("x"), 70000),                         // longer than one varint byte and one zstd block
	}
	for _, name := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(name, func(t *testing.T) {
			c, err := newCodec(name, zstd.SpeedDefault, 1<<20, true)
			if err != nil {
				t.Fatal(err)
			}
			hdr := testHeaders("mx1.example.org")
			var want [][]byte
			var recs []byte
			for i := range 500 {
				v := realisticLine(i)
				if i < len(odd) {
					v = odd[i]
				}
				want = append(want, v)
				recs = appendRecord(recs, i, "mx1.example.org", hdr, v)
			}
			ms := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC).UnixMilli()
			data, err := c.appendBatch([]byte("prefix kept"), recs, len(want), ms)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte("prefix kept")) {
				t.Fatal("appendBatch overwrote dst")
			}
			attr, got, values, keys := decodeRecordSet(t, data[len("prefix kept"):])
			if attr&7 != int16(c.kc) {
				t.Errorf("attributes %#x, want compression %d", attr, c.kc)
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(values[i], want[i]) || string(keys[i]) != "mx1.example.org" {
					t.Fatalf("record %d: key %q value %.60q, want %.60q", i, keys[i], values[i], want[i])
				}
				if got[i].Offset != int64(i) || got[i].Time.UnixMilli() != ms {
					t.Fatalf("record %d: offset %d time %v", i, got[i].Offset, got[i].Time)
				}
				h := got[i].Headers
				if len(h) != len(hdr) {
					t.Fatalf("record %d: %d headers", i, len(h))
				}
				for j := range h {
					if h[j].Key != hdr[j].Key || !bytes.Equal(h[j].Value, hdr[j].Value) || (h[j].Value == nil) != (hdr[j].Value == nil) {
						t.Fatalf("record %d header %d: %q=%q (nil %v), want %q=%q", i, j, h[j].Key, h[j].Value, h[j].Value == nil, hdr[j].Key, hdr[j].Value)
					}
				}
			}
		})
	}
}

// TestEncodeSplitsOversizedSets: a partition's records that compress to more than
// MaxMessageBytes go out as several record sets, in order, each within the limit.
func TestEncodeSplitsOversizedSets(t *testing.T) {
	c, err := newCodec("zstd", zstd.SpeedDefault, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	p := &Producer{cfg: Config{MaxMessageBytes: 64 << 10}, codec: c, nparts: 3, partsAt: time.Now(),
		partIDs: []int{0, 1, 2}, partOf: map[string]int{}, byPart: make([][]int32, 3)}
	b := &batch{}
	// Random-looking values barely compress: 3000 x 100 bytes must split.
	rnd := uint64(1)
	hosts := []string{"mx1", "mx2", "mx3", "mx4"}
	for i := range 3000 {
		v := make([]byte, 100)
		for j := range v {
			rnd = rnd*6364136223846793005 + 1442695040888963407
			v[j] = byte(rnd >> 56)
		}
		v = fmt.Appendf(v, " seq=%d", i)
		off := len(b.arena)
		b.arena = append(b.arena, v...)
		b.entries = append(b.entries, entry{key: hosts[i%len(hosts)], off: int32(off), n: int32(len(v))})
	}
	if err := p.encode(b); err != nil {
		t.Fatal(err)
	}
	perPart := map[int]int{}
	lastSeq := map[string]int{}
	total := 0
	for _, r := range b.reqs {
		data := b.out[r.start:r.end]
		if len(data)-sizePrefix > 64<<10 {
			t.Fatalf("record set of %d bytes exceeds the 64 KiB limit", len(data)-sizePrefix)
		}
		_, _, values, keys := decodeRecordSet(t, data)
		for i, v := range values {
			k := string(keys[i])
			want := kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: keys[i]}, 0, 1, 2)
			if r.partition != want {
				t.Fatalf("key %s on partition %d, murmur2 says %d", k, r.partition, want)
			}
			var seq int
			fmt.Sscanf(string(v[bytes.LastIndex(v, []byte("seq="))+4:]), "%d", &seq)
			if last, ok := lastSeq[k]; ok && seq <= last {
				t.Fatalf("key %s: seq %d after %d", k, seq, last)
			}
			lastSeq[k] = seq
			total++
		}
		perPart[r.partition]++
	}
	if total != 3000 {
		t.Fatalf("%d records encoded, want 3000", total)
	}
	if len(b.reqs) <= len(perPart) {
		t.Fatalf("%d record sets for %d partitions: nothing was split", len(b.reqs), len(perPart))
	}
}

// BenchmarkEncodeBatch encodes and compresses one 2 MiB batch of realistic lines the way the
// producer does (Producer.encode), its whole per-batch CPU. Baseline in the same run: kafka-go's
// own record set encoder (protocol.RecordSet.WriteTo, what kafka.Writer runs) on the same
// lines with its zstd codec; "previous" is the producer's former zstd setting.
//
//	go test -run '^$' -bench EncodeBatch -benchmem ./ingest/produce/
func BenchmarkEncodeBatch(b *testing.B) {
	hdr := testHeaders("mx1")
	var lines [][]byte
	size := 0
	for i := 0; size < 2<<20; i++ {
		l := realisticLine(i)
		lines = append(lines, l)
		size += len(l)
	}
	for _, v := range []struct {
		name   string
		level  zstd.EncoderLevel
		window int
		lowMem bool
	}{
		{"zstd-fastest-256KiB", zstd.SpeedFastest, zstdWindow, true}, // the producer's setting
		{"zstd-default-256KiB", zstd.SpeedDefault, zstdWindow, true},
		{"previous-zstd-default-1MiB", zstd.SpeedDefault, 1 << 20, true},
	} {
		b.Run(v.name, func(b *testing.B) {
			c, err := newCodec("zstd", v.level, v.window, v.lowMem)
			if err != nil {
				b.Fatal(err)
			}
			p := &Producer{cfg: Config{MaxMessageBytes: 1 << 20}, codec: c, nparts: 4, partsAt: time.Now().Add(time.Hour),
				partIDs: []int{0, 1, 2, 3}, partOf: map[string]int{}, byPart: make([][]int32, 4)}
			bt := &batch{}
			for _, l := range lines {
				off := len(bt.arena)
				bt.arena = append(bt.arena, l...)
				bt.entries = append(bt.entries, entry{key: "mx1", headers: hdr, off: int32(off), n: int32(len(l))})
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := p.encode(bt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(lines)), "ns/line")
			b.ReportMetric(float64(size)/float64(len(bt.out)), "ratio")
		})
	}
	b.Run("baseline-kafka-go-RecordSet-zstd", func(b *testing.B) {
		recs := make([]protocol.Record, len(lines))
		var buf bytes.Buffer
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			for i, l := range lines {
				recs[i] = protocol.Record{Key: protocol.NewBytes([]byte("mx1")), Value: protocol.NewBytes(l), Headers: []protocol.Header{
					{Key: hdr[0].Key, Value: hdr[0].Value}, {Key: hdr[1].Key, Value: hdr[1].Value}, {Key: hdr[2].Key, Value: hdr[2].Value},
					{Key: hdr[3].Key, Value: hdr[3].Value}, {Key: hdr[4].Key, Value: hdr[4].Value}}}
			}
			buf.Reset()
			rs := protocol.RecordSet{Version: 2, Attributes: protocol.Attributes(kafka.Zstd), Records: protocol.NewRecordReader(recs...)}
			if _, err := rs.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(lines)), "ns/line")
		b.ReportMetric(float64(size)/float64(buf.Len()), "ratio")
	})
}
