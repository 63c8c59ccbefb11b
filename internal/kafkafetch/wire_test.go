package kafkafetch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// testRecord is one record for encodeBatch.
type testRecord struct {
	key, value []byte // nil: a null key or value
	headers    []kafka.Header
	tsDelta    int64
}

// encodeBatch writes a v2 record batch the way a producer does (the encoder the decoder is
// checked against; the real brokers' batches are checked in fetch_test.go).
func encodeBatch(base int64, firstTS int64, codec compress.Compression, control bool, recs []testRecord) []byte {
	var body []byte
	for i, r := range recs {
		var rec []byte
		rec = append(rec, 0)
		rec = binary.AppendVarint(rec, r.tsDelta)
		rec = binary.AppendVarint(rec, int64(i))
		rec = appendVarBytes(rec, r.key)
		rec = appendVarBytes(rec, r.value)
		rec = binary.AppendVarint(rec, int64(len(r.headers)))
		for _, h := range r.headers {
			rec = appendVarBytes(rec, []byte(h.Key))
			rec = appendVarBytes(rec, h.Value)
		}
		body = binary.AppendVarint(body, int64(len(rec)))
		body = append(body, rec...)
	}
	if codec != compress.None {
		var buf bytes.Buffer
		w := codec.Codec().NewWriter(&buf)
		w.Write(body)
		w.Close()
		body = buf.Bytes()
	}
	attrs := int16(codec)
	if control {
		attrs |= attrControl
	}
	var maxTS int64 = firstTS
	for _, r := range recs {
		maxTS = max(maxTS, firstTS+r.tsDelta)
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(base))
	b = binary.BigEndian.AppendUint32(b, 0) // length, below
	b = binary.BigEndian.AppendUint32(b, 0) // partition leader epoch
	b = append(b, magicV2)
	b = binary.BigEndian.AppendUint32(b, 0) // crc, below
	b = binary.BigEndian.AppendUint16(b, uint16(attrs))
	b = binary.BigEndian.AppendUint32(b, uint32(max(len(recs)-1, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(firstTS))
	b = binary.BigEndian.AppendUint64(b, uint64(maxTS))
	b = binary.BigEndian.AppendUint64(b, ^uint64(0)) // producer id -1
	b = binary.BigEndian.AppendUint16(b, 0xffff)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	b = binary.BigEndian.AppendUint32(b, uint32(len(recs)))
	b = append(b, body...)
	fixBatch(b)
	return b
}

// fixBatch sets the length and CRC of the batch at the start of b from b's length.
func fixBatch(b []byte) {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
}

func appendVarBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}

func randomRecords(r *rand.Rand, n int) []testRecord {
	recs := make([]testRecord, n)
	for i := range recs {
		rec := &recs[i]
		if r.IntN(5) > 0 {
			rec.key = []byte(fmt.Sprintf("mx%d.example.net", r.IntN(9)))
		}
		switch r.IntN(10) {
		case 0:
			rec.value = nil
		case 1:
			rec.value = []byte{}
		case 2:
			rec.value = bytes.Repeat([]byte{byte(r.IntN(256))}, r.IntN(300_000)) // beyond one-byte varints and pages
		default:
			rec.value = []byte(strings.Repeat("Nov 23 18:39:46 mx1 smtpf[1234]: connect ", 1+r.IntN(4)))
		}
		for h := r.IntN(4); h > 0; h-- {
			rec.headers = append(rec.headers, kafka.Header{Key: []string{"mxtrail-host", "mxtrail-src", "x"}[r.IntN(3)], Value: []byte(fmt.Sprint(r.IntN(100)))})
		}
		rec.tsDelta = int64(r.IntN(5000))
	}
	return recs
}

// TestDecodeBatches: random batches, every codec, a control batch in between, a truncated
// batch at the end and a start offset inside the first batch decode to exactly the records
// encoded after that offset.
func TestDecodeBatches(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, codec := range []compress.Compression{compress.None, compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			a, b := randomRecords(r, 40), randomRecords(r, 25)
			ts := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC).UnixMilli()
			var recs []byte
			recs = append(recs, encodeBatch(100, ts, codec, false, a)...)
			recs = append(recs, encodeBatch(140, ts, compress.None, true, []testRecord{{value: []byte{0, 0, 0, 0}}})...) // a commit marker
			recs = append(recs, encodeBatch(141, ts+1000, codec, false, b)...)
			trunc := encodeBatch(166, ts, codec, false, randomRecords(r, 3))
			recs = append(recs, trunc[:len(trunc)/2]...)

			var d decoder
			const from = 117
			got, next, err := d.decodeBatches(nil, recs, "t", 3, from, 999)
			if err != nil {
				t.Fatal(err)
			}
			if next != 166 {
				t.Fatalf("next %d, want 166 (after the last whole batch)", next)
			}
			want := append(append([]testRecord{}, a[from-100:]...), b...)
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i, m := range got {
				w := want[i]
				off, base, first := int64(from+i), int64(100), ts
				if i >= len(a)-(from-100) {
					off, base, first = int64(141+i-(len(a)-(from-100))), 141, ts+1000
				}
				_ = base
				if m.Offset != off || m.Topic != "t" || m.Partition != 3 || m.HighWaterMark != 999 {
					t.Fatalf("record %d: offset %d topic %q partition %d hwm %d, want offset %d", i, m.Offset, m.Topic, m.Partition, m.HighWaterMark, off)
				}
				if !bytes.Equal(m.Key, w.key) || (m.Key == nil) != (w.key == nil) || !bytes.Equal(m.Value, w.value) || (m.Value == nil) != (w.value == nil) {
					t.Fatalf("record %d (offset %d): key %q value %d bytes, want %q, %d bytes", i, off, m.Key, len(m.Value), w.key, len(w.value))
				}
				if len(m.Headers) != len(w.headers) {
					t.Fatalf("record %d: headers %v, want %v", i, m.Headers, w.headers)
				}
				for j := range w.headers {
					if m.Headers[j].Key != w.headers[j].Key || !bytes.Equal(m.Headers[j].Value, w.headers[j].Value) {
						t.Fatalf("record %d: headers %v, want %v", i, m.Headers, w.headers)
					}
				}
				if !m.Time.Equal(time.UnixMilli(first + w.tsDelta)) {
					t.Fatalf("record %d: time %v, want %v", i, m.Time, time.UnixMilli(first+w.tsDelta))
				}
			}
		})
	}
}

// TestDecodeBatchesSharedHeaders: a record whose headers equal its predecessor's (keys,
// values, null values) gets the same slice, one that differs in anything gets its own, and
// no slice is shared across responses; contents are always the record's own.
func TestDecodeBatchesSharedHeaders(t *testing.T) {
	hs := func(kv ...string) []kafka.Header {
		var out []kafka.Header
		for i := 0; i < len(kv); i += 2 {
			var v []byte
			if kv[i+1] != "<null>" {
				v = []byte(kv[i+1])
			}
			out = append(out, kafka.Header{Key: kv[i], Value: v})
		}
		return out
	}
	read1 := hs("host", "mx1", "source", "file", "ingest_time", "2026-11-23T18:00:00.1Z")
	read2 := hs("host", "mx1", "source", "file", "ingest_time", "2026-11-23T18:00:00.2Z")
	cases := []struct {
		headers []kafka.Header
		shared  bool // with the record before
	}{
		{read1, false},
		{read1, true},
		{read1, true},
		{read2, false}, // one value differs
		{read2, true},
		{hs("host", "mx1", "source", "file"), false},                 // fewer headers
		{hs("host", "mx1", "source", "file", "tz", ""), false},       // an empty value
		{hs("host", "mx1", "source", "file", "tz", "<null>"), false}, // a null value is not an empty one
		{hs("host", "mx1", "source", "file", "tz", "<null>"), true},  //
		{hs("host", "mx1", "source", "file", "zt", "<null>"), false}, // a key differs
		{nil, false}, // none
		{hs("host", "mx1", "source", "file", "ingest_time", "2026-11-23T18:00:00.2Z"), false}, // after none
	}
	var recs []testRecord
	for i, c := range cases {
		recs = append(recs, testRecord{value: []byte(fmt.Sprintf("line %d", i)), headers: c.headers})
	}
	ts := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC).UnixMilli()
	for _, codec := range []compress.Compression{compress.None, compress.Zstd} {
		// Two batches in one response: sharing continues across the batch boundary.
		half := 5
		resp := append(encodeBatch(0, ts, codec, false, recs[:half]), encodeBatch(int64(half), ts, codec, false, recs[half:])...)
		var d decoder
		got, _, err := d.decodeBatches(nil, resp, "t", 0, 0, 99)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(cases) {
			t.Fatalf("%s: %d records, want %d", codec, len(got), len(cases))
		}
		for i, m := range got {
			w := cases[i].headers
			if len(m.Headers) != len(w) {
				t.Fatalf("%s record %d: headers %q, want %q", codec, i, m.Headers, w)
			}
			for j := range w {
				if m.Headers[j].Key != w[j].Key || !bytes.Equal(m.Headers[j].Value, w[j].Value) || (m.Headers[j].Value == nil) != (w[j].Value == nil) {
					t.Fatalf("%s record %d: headers %q, want %q", codec, i, m.Headers, w)
				}
			}
			if i == 0 || len(w) == 0 {
				continue
			}
			prev := got[i-1].Headers
			shared := len(prev) > 0 && &prev[0] == &m.Headers[0]
			if shared != cases[i].shared {
				t.Fatalf("%s record %d: shares its predecessor's headers: %v, want %v", codec, i, shared, cases[i].shared)
			}
		}
		// The next response starts afresh: its first record's headers alias it, not the last one.
		again, _, err := d.decodeBatches(nil, encodeBatch(int64(len(cases)), ts, codec, false, recs[len(recs)-1:]), "t", 0, 0, 99)
		if err != nil || len(again) != 1 {
			t.Fatalf("%s: second response: %d records, %v", codec, len(again), err)
		}
		if last := got[len(got)-1].Headers; &again[0].Headers[0] == &last[0] {
			t.Fatalf("%s: a header slice is shared across responses", codec)
		}
	}
}

// An uncompressed batch's CRC is summed record by record as it decodes (decodeRecords): a
// damaged byte anywhere after the CRC field -- the header, a record's length, key, value or
// header, the last byte -- is a crc32c error and none of the batch's records come out, for
// every offset asked for (records before it skipped but summed); an undamaged batch decodes
// the same records from every offset; and a batch after a good one leaves that one's records.
func TestDecodeBatchesChecksumsWhileDecoding(t *testing.T) {
	recs := randomRecords(rand.New(rand.NewPCG(5, 6)), 9)
	first := encodeBatch(0, 0, compress.None, false, recs[:3])
	good := encodeBatch(3, 0, compress.None, false, recs[3:])
	var d decoder
	whole, next, err := d.decodeBatches(nil, append(bytes.Clone(first), good...), "t", 0, 0, 0)
	if err != nil || len(whole) != len(recs) || next != int64(len(recs)) {
		t.Fatalf("good batches: %d records, next %d, %v", len(whole), next, err)
	}
	for off := int64(0); off <= int64(len(recs)); off++ {
		got, _, err := d.decodeBatches(nil, append(bytes.Clone(first), good...), "t", 0, off, 0)
		if err != nil || len(got) != len(recs)-int(off) {
			t.Fatalf("from offset %d: %d records, %v", off, len(got), err)
		}
		for i := range got {
			if w := whole[int(off)+i]; got[i].Offset != w.Offset || !bytes.Equal(got[i].Value, w.Value) {
				t.Fatalf("from offset %d: record %d is offset %d, want %d", off, i, got[i].Offset, w.Offset)
			}
		}
	}
	for pos := 21; pos < len(good); pos++ {
		bad := bytes.Clone(good)
		bad[pos] ^= 0x5a
		for _, off := range []int64{0, 3, 6} {
			got, next, err := d.decodeBatches(nil, append(bytes.Clone(first), bad...), "t", 0, off, 0)
			if err == nil || !strings.Contains(err.Error(), "offset 3: crc32c") {
				t.Fatalf("byte %d damaged, from offset %d: %v", pos, off, err)
			}
			if want := max(0, 3-int(off)); len(got) != want || next != max(off, 3) {
				t.Fatalf("byte %d damaged, from offset %d: %d records and next %d, want the first batch's %d and next %d", pos, off, len(got), next, want, max(off, 3))
			}
		}
	}
}

// TestDecodeBatchesChecksumsAcrossStretches: a batch of many records, checksummed a stretch at a
// time (crcChunk), is refused whichever of its bytes is damaged, the first, one on each side of
// a stretch's end and the last included.
func TestDecodeBatchesChecksumsAcrossStretches(t *testing.T) {
	var recs []testRecord
	for i := 0; i < 400; i++ {
		recs = append(recs, testRecord{key: []byte(fmt.Sprintf("mx%d", i%7)),
			value: []byte(strings.Repeat(fmt.Sprintf("Nov 23 18:39:%02d mx1 smtpf[%d]: connect ", i%60, i), 1+i%5))})
	}
	recs = append(recs, testRecord{value: bytes.Repeat([]byte("x"), 3*crcChunk)})
	good := encodeBatch(10, 0, compress.None, false, recs)
	if len(good) < 4*crcChunk {
		t.Fatalf("the batch is %d bytes, want several stretches of %d", len(good), crcChunk)
	}
	var d decoder
	if got, _, err := d.decodeBatches(nil, good, "t", 0, 0, 0); err != nil || len(got) != len(recs) {
		t.Fatalf("good batch: %d records, %v", len(got), err)
	}
	var positions []int
	for pos := 21; pos < len(good); pos += 97 {
		positions = append(positions, pos)
	}
	for k := 1; batchHeaderLen+k*crcChunk < len(good); k++ {
		positions = append(positions, batchHeaderLen+k*crcChunk-1, batchHeaderLen+k*crcChunk)
	}
	positions = append(positions, len(good)-1)
	for _, pos := range positions {
		bad := bytes.Clone(good)
		bad[pos] ^= 0x01
		got, next, err := d.decodeBatches(nil, bad, "t", 0, 0, 0)
		if err == nil || !strings.Contains(err.Error(), "offset 10: crc32c") || len(got) != 0 || next != 0 {
			t.Fatalf("byte %d of %d damaged: %d records, next %d, %v", pos, len(good), len(got), next, err)
		}
	}
}

// BenchmarkDecodeBatches decodes a 1 MB batch of 1 KB records, as a fetch of the sessions topic
// brings them, checking its CRC-32C a stretch at a time (crcChunk) against the baseline of
// summing each record on its own.
func BenchmarkDecodeBatches(b *testing.B) {
	var recs []testRecord
	for i := 0; i < 1000; i++ {
		recs = append(recs, testRecord{key: []byte(fmt.Sprintf("mx%d.example.net", i%7)),
			value: bytes.Repeat([]byte{'a' + byte(i%26)}, 950+i%100)})
	}
	batch := encodeBatch(0, 0, compress.None, false, recs)
	chunk := crcChunk
	defer func() { crcChunk = chunk }()
	for _, c := range []struct {
		name  string
		chunk int
	}{{"baseline_record_by_record", 0}, {"stretches", chunk}} {
		b.Run(c.name, func(b *testing.B) {
			crcChunk = c.chunk
			var d decoder
			var dst []kafka.Message
			b.SetBytes(int64(len(batch)))
			for i := 0; i < b.N; i++ {
				var err error
				if dst, _, err = d.decodeBatches(dst[:0], batch, "t", 0, 0, 0); err != nil || len(dst) != len(recs) {
					b.Fatalf("%d records, %v", len(dst), err)
				}
			}
		})
	}
}

// TestDecodeBatchesErrors: a corrupt batch is an error naming its offset, never a panic or
// a silent skip.
func TestDecodeBatchesErrors(t *testing.T) {
	good := encodeBatch(7, 0, compress.None, false, randomRecords(rand.New(rand.NewPCG(3, 4)), 5))
	var d decoder
	crc := bytes.Clone(good)
	crc[len(crc)-1] ^= 0xff
	if _, _, err := d.decodeBatches(nil, crc, "t", 0, 0, 0); err == nil || !strings.Contains(err.Error(), "offset 7: crc32c") {
		t.Fatalf("corrupt body: %v", err)
	}
	old := bytes.Clone(good)
	old[16] = 1
	if _, _, err := d.decodeBatches(nil, old, "t", 0, 0, 0); err == nil || !strings.Contains(err.Error(), "magic 1") {
		t.Fatalf("old magic: %v", err)
	}
	count := bytes.Clone(good)
	binary.BigEndian.PutUint32(count[57:], 6) // one more record than there is
	fixBatch(count)
	if _, _, err := d.decodeBatches(nil, count, "t", 0, 0, 0); err == nil || !strings.Contains(err.Error(), "record 5 of 6") {
		t.Fatalf("short of records: %v", err)
	}
	// After a good batch: its records, and next at the bad batch, none of the bad one's.
	before := encodeBatch(2, 0, compress.None, false, randomRecords(rand.New(rand.NewPCG(7, 8)), 5))
	msgs, next, err := d.decodeBatches(nil, append(before, count...), "t", 0, 0, 0)
	if err == nil || len(msgs) != 5 || msgs[4].Offset != 6 || next != 7 {
		t.Fatalf("good then bad batch: %d records, next %d, %v", len(msgs), next, err)
	}
	defer func(n int) { maxDecompressed = n }(maxDecompressed)
	maxDecompressed = 1 << 20
	bomb := encodeBatch(7, 0, compress.Zstd, false, []testRecord{{value: make([]byte, 2<<20)}})
	if _, _, err := d.decodeBatches(nil, bomb, "t", 0, 0, 0); err == nil || !strings.Contains(err.Error(), "decompresses to more than 1048576 bytes") {
		t.Fatalf("decompression bomb: %v", err)
	}
	short := bytes.Clone(good)
	binary.BigEndian.PutUint32(short[8:], 10)
	if _, _, err := d.decodeBatches(nil, short, "t", 0, 0, 0); err == nil || !strings.Contains(err.Error(), "shorter than a batch header") {
		t.Fatalf("short length: %v", err)
	}
}

// FuzzDecodeBatches: arbitrary bytes, with the batch length and CRC made to match so the
// fuzzer gets past the checksum into the records, never panic; what decodes lies at or after
// the offset asked for, in order.
func FuzzDecodeBatches(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	f.Add(encodeBatch(0, 1, compress.None, false, randomRecords(r, 3)), true)
	f.Add(encodeBatch(0, 1, compress.Gzip, false, randomRecords(r, 3)), false)
	f.Add(encodeBatch(9, 1, compress.None, true, nil), false)
	maxDecompressed = 1 << 20 // decompression bombs: the bound is tested in TestDecodeBatchesErrors
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix && len(b) >= batchHeaderLen {
			// Uncompressed: the codecs are kafka-go's (xerial snappy trusts the decoded length in
			// its header and allocates it, gigabytes for a mutated header, as kafka-go's own reader
			// would on such a batch; the CRC keeps a broker's corruption out).
			b[16], b[22] = magicV2, b[22]&^attrCompression
			fixBatch(b)
		}
		var d decoder
		msgs, next, _ := d.decodeBatches(nil, b, "t", 0, 2, 0)
		prev := int64(1)
		for _, m := range msgs {
			if m.Offset <= prev {
				t.Fatalf("offset %d after %d (asked from 2)", m.Offset, prev)
			}
			prev = m.Offset
		}
		if next <= prev && len(msgs) > 0 {
			t.Fatalf("next %d not past the last record %d", next, prev)
		}
	})
}

// TestParseFetchResponse: the partition asked for is found among others; a truncated
// response is an error.
func TestParseFetchResponse(t *testing.T) {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0) // throttle
	b = binary.BigEndian.AppendUint32(b, 2) // topics
	for _, tp := range []string{"other", "mxtrail.raw"} {
		b = appendString(b, tp)
		b = binary.BigEndian.AppendUint32(b, 2)
		for p := int32(0); p < 2; p++ {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
			b = binary.BigEndian.AppendUint16(b, uint16(p))     // error code
			b = binary.BigEndian.AppendUint64(b, uint64(100+p)) // hwm
			b = binary.BigEndian.AppendUint64(b, uint64(100+p)) // lso
			b = binary.BigEndian.AppendUint32(b, 1)             // one aborted txn
			b = append(b, make([]byte, 16)...)                  //
			b = binary.BigEndian.AppendUint32(b, uint32(3))     // records
			b = append(b, byte(p), byte(len(tp)), 0xee)         //
		}
	}
	p, err := parseFetchResponse(b, "mxtrail.raw", 1)
	if err != nil || p.errCode != 1 || p.highWaterMark != 101 || !bytes.Equal(p.records, []byte{1, 11, 0xee}) {
		t.Fatalf("got %+v, %v", p, err)
	}
	if _, err := parseFetchResponse(b, "mxtrail.raw", 2); err == nil || !strings.Contains(err.Error(), "no partition mxtrail.raw/2") {
		t.Fatalf("missing partition: %v", err)
	}
	if _, err := parseFetchResponse(b[:len(b)-5], "mxtrail.raw", 1); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("truncated: %v", err)
	}
}

// TestSkipped: only an offset before the partition's first counts as skipped records.
func TestSkipped(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int64
	}{
		{&OutOfRangeError{Offset: 10, First: 25, Last: 90}, 15},
		{fmt.Errorf("fetch: %w", &OutOfRangeError{Offset: 3, First: 4, Last: 9}), 1},
		{&OutOfRangeError{Offset: 95, First: 25, Last: 90}, 0}, // past the end
		{io.ErrUnexpectedEOF, 0},
		{nil, 0},
	} {
		if got := Skipped(c.err); got != c.want {
			t.Errorf("Skipped(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestDecodeBatchesRetainsNoEarlierResponse: records of a response keep only that response's
// buffer alive. Header values alias the response; an arena of header slices shared with
// the previous response's records kept that response alive for as long as any record of the
// next one lived (decompressed batches piled up in the enricher).
func TestDecodeBatchesRetainsNoEarlierResponse(t *testing.T) {
	recs := func(tag string) []testRecord {
		var out []testRecord
		for i := 0; i < 50; i++ {
			out = append(out, testRecord{value: []byte(fmt.Sprintf("%s line %d", tag, i)), headers: []kafka.Header{
				{Key: "host", Value: []byte("mx1")}, {Key: "ingest_time", Value: []byte(fmt.Sprintf("2026-11-23T18:00:%02d.%sZ", i/10, tag))}}})
		}
		return out
	}
	ts := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC).UnixMilli()
	var d decoder
	first := encodeBatch(0, ts, compress.None, false, recs("1"))
	gone := weak.Make(&first[0])
	got1, _, err := d.decodeBatches(nil, first, "t", 0, 0, 99)
	if err != nil || len(got1) != 50 {
		t.Fatalf("first response: %d records, %v", len(got1), err)
	}
	got2, _, err := d.decodeBatches(nil, encodeBatch(50, ts, compress.None, false, recs("2")), "t", 0, 50, 99)
	if err != nil || len(got2) != 50 {
		t.Fatalf("second response: %d records, %v", len(got2), err)
	}
	got1, first = nil, nil
	runtime.GC()
	runtime.GC()
	if gone.Value() != nil {
		t.Fatal("the first response's buffer is still reachable from the second response's records")
	}
	if string(got2[49].Value) != "2 line 49" || string(got2[49].Headers[1].Value) != "2026-11-23T18:00:04.2Z" {
		t.Fatalf("second response's last record: %q %q", got2[49].Value, got2[49].Headers)
	}
}

// TestDecodeBatchesPooled: zstd batches decompressed into pool buffers that earlier rounds
// used and scribbled over decode to the same records, and the decoder lists every buffer it
// took in bufs.
func TestDecodeBatchesPooled(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ts := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC).UnixMilli()
	a, b := randomRecords(r, 30), randomRecords(r, 30)
	resp := append(encodeBatch(0, ts, compress.Zstd, false, a), encodeBatch(30, ts, compress.Zstd, false, b)...)
	want := append(append([]testRecord{}, a...), b...)
	pool := NewPool(1 << 30)
	seen := map[*byte]bool{}
	reused := 0
	for round := 0; round < 4; round++ {
		var d decoder
		d.pool = pool
		got, _, err := d.decodeBatches(nil, resp, "t", 0, 0, 99)
		if err != nil || len(got) != len(want) {
			t.Fatalf("round %d: %d records, %v", round, len(got), err)
		}
		for i, m := range got {
			if !bytes.Equal(m.Value, want[i].value) || (m.Value == nil) != (want[i].value == nil) {
				t.Fatalf("round %d record %d: value of %d bytes, want %d", round, i, len(m.Value), len(want[i].value))
			}
		}
		if len(d.bufs) != 2 {
			t.Fatalf("round %d: %d buffers taken for 2 zstd batches", round, len(d.bufs))
		}
		for _, buf := range d.bufs {
			p := &buf[:1][0]
			if seen[p] {
				reused++
			}
			seen[p] = true
			full := buf[:cap(buf)]
			for i := range full {
				full[i] = 0xa5 // what a later fetch would find in a recycled buffer
			}
		}
		pool.Put(d.bufs)
	}
	if reused == 0 {
		t.Fatal("no decompression buffer was reused")
	}
}
