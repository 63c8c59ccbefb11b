package kafkafetch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// The fetch request and response, version 4 (Kafka 0.11+, the oldest version Kafka 4 still
// serves), encoded and decoded here instead of through kafka-go's Conn.ReadBatch.
//
// Why: kafka-go's Batch.ReadMessage reads each record through a bufio.Reader of 4 KiB (a read
// syscall every few records) and allocates its key, value and header slices one by one; in
// the enricher that was ~1.8 µs of CPU per record out of ~4. Here one fetch response is read
// into one buffer with a few large reads and its records are sliced out of it in place: keys,
// values and header values alias the buffer, header slices are carved from one array per fetch
// and header keys are interned, so a fetch costs a handful of allocations, not several per
// record.
const (
	apiFetch       = 1
	fetchVersion   = 4
	magicV2        = 2
	batchHeaderLen = 61 // base offset .. record count of a v2 record batch

	attrCompression   = 0x07
	attrLogAppendTime = 0x08
	attrControl       = 0x20
)

// maxDecompressed bounds one batch's records after decompression (a corrupt or hostile batch
// must not exhaust memory); 1 MiB batches of log lines compress about 10:1. A variable for
// the tests.
var maxDecompressed = 256 << 20

// zstdDecoders are single-threaded decoders bounded by maxDecompressed, reused across
// fetches and partitions (a decoder holds its window buffers).
var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20),
		zstd.WithDecoderLowmem(false))
	if err != nil {
		panic(fmt.Sprintf("kafkafetch: zstd decoder: %v", err)) // only for invalid options
	}
	return d
}}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errOldFormat is a record batch in message format v0/v1, which only kafka-go's reader
// decodes: the Fetcher falls back to it for that fetch.
var errOldFormat = errors.New("message format older than v2")

// appendFetchRequest appends one size-prefixed fetch v4 request for a single partition.
func appendFetchRequest(b []byte, corr int32, clientID, topic string, partition int32, offset int64, minBytes, maxBytes int32, maxWait time.Duration) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0) // size, set below
	b = binary.BigEndian.AppendUint16(b, apiFetch)
	b = binary.BigEndian.AppendUint16(b, fetchVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = appendString(b, clientID)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // replica id -1: a consumer
	b = binary.BigEndian.AppendUint32(b, uint32(maxWait.Milliseconds()))
	b = binary.BigEndian.AppendUint32(b, uint32(minBytes))
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes))
	b = append(b, 0)                        // isolation level: read uncommitted (kafka-go's default)
	b = binary.BigEndian.AppendUint32(b, 1) // one topic
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint32(b, 1) // one partition
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes))
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// partitionData is the part of a fetch response for the one partition asked for.
type partitionData struct {
	errCode       int16
	highWaterMark int64
	records       []byte // the record batches, possibly ending in a truncated one
}

// reader walks a big-endian buffer; the first overrun sets err and every later read returns 0.
type reader struct {
	b   []byte
	err error
}

func (r *reader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b) < n {
		r.err = io.ErrUnexpectedEOF
		return false
	}
	return true
}

func (r *reader) i8() int8 {
	if !r.need(1) {
		return 0
	}
	v := int8(r.b[0])
	r.b = r.b[1:]
	return v
}

func (r *reader) i16() int16 {
	if !r.need(2) {
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	return v
}

func (r *reader) i32() int32 {
	if !r.need(4) {
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

func (r *reader) i64() int64 {
	if !r.need(8) {
		return 0
	}
	v := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if !r.need(n) {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// varint reads a zig-zag varint (the record fields of a v2 batch).
func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) > 0 && r.b[0] < 0x80 { // most lengths and deltas fit one byte
		u := r.b[0]
		r.b = r.b[1:]
		return int64(u>>1) ^ -int64(u&1)
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("bad varint at % x", r.b[:min(len(r.b), 10)])
		return 0
	}
	r.b = r.b[n:]
	return v
}

// parseFetchResponse finds topic/partition in a fetch v4 response body (after the
// correlation id).
func parseFetchResponse(body []byte, topic string, partition int32) (partitionData, error) {
	r := reader{b: body}
	r.i32() // throttle time
	var out partitionData
	found := false
	for nt := r.i32(); nt > 0 && r.err == nil; nt-- {
		name := r.bytes(int(r.i16()))
		for np := r.i32(); np > 0 && r.err == nil; np-- {
			p := r.i32()
			code := r.i16()
			hwm := r.i64()
			r.i64() // last stable offset
			if na := r.i32(); na > 0 {
				r.bytes(int(na) * 16) // aborted transactions: producer id, first offset
			}
			var recs []byte
			if n := r.i32(); n > 0 {
				recs = r.bytes(int(n))
			}
			if r.err == nil && p == partition && string(name) == topic {
				out, found = partitionData{errCode: code, highWaterMark: hwm, records: recs}, true
			}
		}
	}
	if r.err != nil {
		return out, fmt.Errorf("malformed fetch response: %w", r.err)
	}
	if !found {
		return out, fmt.Errorf("fetch response has no partition %s/%d", topic, partition)
	}
	return out, nil
}

// decoder turns record batches into kafka.Messages. It keeps the header keys it has seen
// (a small set: the shipper's) so each is one string, not one allocation per record.
type decoder struct {
	keys   map[string]string
	hdrs   []kafka.Header // the current response's header arena
	zratio int            // the largest zstd decompression ratio seen, rounded up
	// prev is the headers of the last record decoded from this response: a record whose
	// headers are byte for byte the same gets this slice too. A shipper stamps the lines of
	// one read with one set of headers, so most records repeat their predecessor's: sharing
	// saves a header slice per record (~200 bytes of pointers for the collector to scan) and
	// lets a consumer see, by identity, that nothing in them changed.
	prev    []kafka.Header
	scratch []rawHeader
	// pool, when set, supplies the zstd outputs, each appended to bufs (the fetch's).
	pool *Pool
	bufs [][]byte
}

// rawHeader is a header as sliced from a record, before it is compared or kept.
type rawHeader struct{ key, value []byte }

// decodeBatches appends the records of recs at or after offset to dst. next is one past the
// last offset of the last whole batch (control batches and compacted gaps included), or
// offset when none is whole; a truncated batch at the end is normal (the broker cuts the
// response at its byte limit) and is read again by the next fetch. Keys, values and header
// values alias recs (or a decompressed copy of a batch). A batch that does not decode is an
// error, with the records of the batches before it and next at its start: a corrupt batch
// stops the partition there, loudly, rather than being skipped.
func (d *decoder) decodeBatches(dst []kafka.Message, recs []byte, topic string, partition int, offset, hwm int64) ([]kafka.Message, int64, error) {
	next := offset
	// Headers alias this response only: a new arena (started when a record has headers) and
	// no sharing with earlier records. An arena spanning responses kept every response any of
	// its headers pointed into alive (440 MB of decompressed batches on 17 partitions).
	d.prev, d.hdrs = nil, nil
	for len(recs) >= batchHeaderLen {
		base := int64(binary.BigEndian.Uint64(recs))
		size := int(int32(binary.BigEndian.Uint32(recs[8:])))
		if size < batchHeaderLen-12 {
			return dst, next, fmt.Errorf("record batch at offset %d: length %d is shorter than a batch header", base, size)
		}
		if len(recs)-12 < size {
			break // truncated at the end of the response
		}
		batch := recs[:12+size]
		recs = recs[12+size:]
		if magic := batch[16]; magic != magicV2 {
			return dst, next, fmt.Errorf("record batch at offset %d: magic %d: %w", base, magic, errOldFormat)
		}
		attrs := int16(binary.BigEndian.Uint16(batch[21:]))
		last := base + int64(int32(binary.BigEndian.Uint32(batch[23:])))
		// An uncompressed batch of records is checksummed record by record as it is decoded
		// (decodeRecords), while each record is in the cache: checksumming the whole batch
		// first left a batch of several MiB to be read from memory a second time, and the
		// first byte of each record was the sink's costliest load (perf: ~3% of its CPU).
		fused := last >= next && attrs&attrControl == 0 && compress.Compression(attrs&attrCompression) == compress.None
		want := binary.BigEndian.Uint32(batch[17:])
		if !fused {
			if got := crc32.Checksum(batch[21:], castagnoli); want != got {
				return dst, next, fmt.Errorf("record batch at offset %d: %w", base, crcError(got, want))
			}
		}
		if last < next {
			continue // wholly before the offset asked for
		}
		if attrs&attrControl == 0 {
			n := len(dst)
			var err error
			if dst, err = d.decodeRecords(dst, batch, attrs, topic, partition, offset, hwm, fused); err != nil {
				if fused { // a corrupt batch: say so, not what it decoded to
					if got := crc32.Checksum(batch[21:], castagnoli); got != want {
						err = crcError(got, want)
					}
				}
				// None of a corrupt batch: the caller goes on from next, its start.
				return dst[:n], next, fmt.Errorf("record batch at offset %d: %w", base, err)
			}
		}
		next = last + 1
	}
	return dst, next, nil
}

// crcChunk is how many bytes of records decodeRecords checksums at a time: in the cache still
// (the socket read just wrote them) and long enough for crc32's fast path. 0 sums record by
// record (BenchmarkDecodeBatches' baseline).
var crcChunk = 16 << 10

// crcError says a batch's records do not match its CRC-32C.
func crcError(got, want uint32) error {
	return fmt.Errorf("crc32c %08x, header says %08x", got, want)
}

// decodeRecords appends the records of batch at or after offset to dst. With crc set (an
// uncompressed batch), it also checks the batch's CRC-32C, summing the records a stretch ahead of
// decoding them, and returns crcError when they differ: the caller then drops what it appended.
func (d *decoder) decodeRecords(dst []kafka.Message, batch []byte, attrs int16, topic string, partition int, offset, hwm int64, crc bool) ([]kafka.Message, error) {
	base := int64(binary.BigEndian.Uint64(batch))
	firstTS := int64(binary.BigEndian.Uint64(batch[27:]))
	maxTS := int64(binary.BigEndian.Uint64(batch[35:]))
	last := base + int64(int32(binary.BigEndian.Uint32(batch[23:])))
	count := int(int32(binary.BigEndian.Uint32(batch[57:])))
	body := batch[batchHeaderLen:]
	if c := compress.Compression(attrs & attrCompression); c == compress.Zstd {
		// DecodeAll sizes the output from the frame header (the shipper's batches are zstd):
		// streaming into a growing buffer cost ~0.5 µs per line in copies and clears.
		// The shipper streams its frames, so they carry no content size: size the output
		// from the largest ratio seen on this partition, or DecodeAll grows it by copying
		// (1.2 s of 14 in a profile of 2M lines).
		guess := min(len(body)*max(d.zratio, 4)+len(body)/8, maxDecompressed+1)
		var into []byte
		if d.pool != nil {
			into = d.pool.get(guess)[:0]
		} else {
			into = make([]byte, 0, guess)
		}
		zd := zstdDecoders.Get().(*zstd.Decoder)
		out, err := zd.DecodeAll(body, into)
		zstdDecoders.Put(zd)
		if d.pool != nil {
			// The output, or the buffer DecodeAll outgrew: either way the caller's now.
			d.bufs = append(d.bufs, out)
		}
		if r := len(out)/max(len(body), 1) + 1; err == nil && r > d.zratio {
			d.zratio = r
		}
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) || err == nil && len(out) > maxDecompressed {
			return dst, fmt.Errorf("%s batch of %d bytes decompresses to more than %d bytes", c, len(body), maxDecompressed)
		}
		if err != nil {
			return dst, fmt.Errorf("decompress %s: %w", c, err)
		}
		body = out
	} else if c != compress.None {
		codec := c.Codec()
		if codec == nil {
			return dst, fmt.Errorf("unknown compression codec %d", c)
		}
		zr := codec.NewReader(bytes.NewReader(body))
		var buf bytes.Buffer
		buf.Grow(4 * len(body))
		_, err := buf.ReadFrom(io.LimitReader(zr, int64(maxDecompressed)+1))
		zr.Close()
		if err != nil {
			return dst, fmt.Errorf("decompress %s: %w", c, err)
		}
		if buf.Len() > maxDecompressed {
			return dst, fmt.Errorf("%s batch of %d bytes decompresses to more than %d bytes", c, len(body), maxDecompressed)
		}
		body = buf.Bytes()
	}
	if count < 0 || count > len(body) { // a record takes at least 7 bytes: a bound, not a count
		return dst, fmt.Errorf("record count %d for %d bytes of records", count, len(body))
	}
	r := reader{b: body}
	var sum uint32
	crcTo := 0 // body[:crcTo] is in sum
	if crc {
		sum = crc32.Update(0, castagnoli, batch[21:batchHeaderLen])
	}
	prev := base - 1
	// One growth per batch at most, not a doubling series of copies within it (bounded: the
	// count and the offsets are the batch's word until its records are read, and a corrupt
	// header can make their difference negative).
	if n := min(int64(count), last-max(offset, base)+1, 1<<16); n > 0 {
		dst = slices.Grow(dst, int(n))
	}
	for i := 0; i < count; i++ {
		n := r.varint()
		if r.err != nil || n < 0 || int64(len(r.b)) < n {
			return dst, fmt.Errorf("record %d of %d: length %d with %d bytes left", i, count, n, len(r.b))
		}
		rec := reader{b: r.b[:n]}
		r.b = r.b[n:]
		if end := len(body) - len(r.b); crc && end > crcTo {
			// The records ahead, the length included, while they are in the cache: a
			// stretch of crcChunk at a time, as crc32 sums a record-sized piece (~1 KB)
			// at half the speed of a longer one (its three-way path needs 504 bytes).
			to := min(len(body), max(end, crcTo+crcChunk))
			sum = crc32.Update(sum, castagnoli, body[crcTo:to])
			crcTo = to
		}
		rec.i8() // attributes, unused
		tsDelta := rec.varint()
		off := base + rec.varint()
		var key []byte
		if kl := rec.varint(); kl >= 0 {
			key = rec.bytes(int(kl))
		}
		var value []byte
		if vl := rec.varint(); vl >= 0 {
			value = rec.bytes(int(vl))
		}
		var hs []kafka.Header
		if nh := int(rec.varint()); nh > 0 && rec.err == nil {
			if nh > len(rec.b) {
				return dst, fmt.Errorf("record at offset %d: %d headers in %d bytes", off, nh, len(rec.b))
			}
			d.scratch = d.scratch[:0]
			for j := 0; j < nh && rec.err == nil; j++ {
				k := rec.bytes(int(rec.varint()))
				var v []byte
				if vl := rec.varint(); vl >= 0 {
					v = rec.bytes(int(vl))
				}
				d.scratch = append(d.scratch, rawHeader{k, v})
			}
			hs = d.headers()
		}
		if rec.err != nil {
			return dst, fmt.Errorf("record at offset %d: %w", off, rec.err)
		}
		if off <= prev || off > last { // a broker never sends this; consumers rely on the order
			return dst, fmt.Errorf("record %d of %d: offset %d out of order (after %d, batch ends at %d)", i, count, off, prev, last)
		}
		prev = off
		if off < offset {
			continue
		}
		ts := firstTS + tsDelta
		if attrs&attrLogAppendTime != 0 {
			ts = maxTS
		}
		dst = append(dst, kafka.Message{Topic: topic, Partition: partition, Offset: off, HighWaterMark: hwm,
			Key: key, Value: value, Headers: hs, Time: time.UnixMilli(ts)})
	}
	if crc {
		if want, got := binary.BigEndian.Uint32(batch[17:]), crc32.Update(sum, castagnoli, body[crcTo:]); got != want {
			return dst, crcError(got, want)
		}
	}
	return dst, nil
}

// headers returns d.scratch as kafka headers: the previous record's slice when they are the
// same (keys, values, and which values are null), else a new slice from the arena.
func (d *decoder) headers() []kafka.Header {
	if len(d.prev) == len(d.scratch) {
		same := true
		for j, h := range d.scratch {
			p := d.prev[j]
			if p.Key != string(h.key) || !bytes.Equal(p.Value, h.value) || (p.Value == nil) != (h.value == nil) {
				same = false
				break
			}
		}
		if same {
			return d.prev
		}
	}
	nh := len(d.scratch)
	if cap(d.hdrs)-len(d.hdrs) < nh {
		// Chunks double from 16 to 1024 headers: a response with few distinct header sets
		// (most are) costs one small chunk.
		d.hdrs = make([]kafka.Header, 0, min(max(16, 2*cap(d.hdrs), 2*nh), max(1024, 2*nh)))
	}
	start := len(d.hdrs)
	for _, h := range d.scratch {
		d.hdrs = append(d.hdrs, kafka.Header{Key: d.intern(h.key), Value: h.value})
	}
	d.prev = d.hdrs[start:len(d.hdrs):len(d.hdrs)]
	return d.prev
}

// intern returns k as a string, allocating only the first time a key is seen (bounded: a
// topic whose records carry ever new header keys stops being interned at 1024 keys).
func (d *decoder) intern(k []byte) string {
	if s, ok := d.keys[string(k)]; ok {
		return s
	}
	s := string(k)
	if d.keys == nil {
		d.keys = map[string]string{}
	}
	if len(d.keys) < 1024 {
		d.keys[s] = s
	}
	return s
}
