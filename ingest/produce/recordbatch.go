package produce

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go"
)

// This file encodes Kafka record batches (message format v2, KIP-98) straight from the
// producer's reused buffers. kafka-go's Writer builds a Message per line, looks up the
// partition count per message and streams every varint through the compressor; measured
// here that cost more CPU than the shipper's whole budget. The format is small and stable:
//
//	size int32 (of what follows; kafka-go's RawRecordSet carries it)
//	baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 = 2 |
//	crc uint32 (CRC-32C of attributes..end) | attributes int16 | lastOffsetDelta int32 |
//	firstTimestamp int64 | maxTimestamp int64 | producerId int64 | producerEpoch int16 |
//	baseSequence int32 | recordCount int32 | records (compressed as one block)
//
// record: length varint | attributes int8 | timestampDelta varint | offsetDelta varint |
// key varbytes | value varbytes | headerCount varint | (key varstring, value varbytes)...
// where varints are zig-zag LEB128 (encoding/binary's Varint) and a nil byte slice is -1.

const (
	batchHeaderSize = 61 // from baseOffset to recordCount
	sizePrefix      = 4
	offCRC          = 17
	offAttributes   = 21
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zstdWindow is the zstd match window. Log lines repeat within a few lines, so 256 KiB
// compresses as well as 1 MiB (ratio 13.7 vs 12.7 on spamdyke lines, BenchmarkEncodeBatch),
// and with the low-memory encoder a window much larger than a 128 KiB block costs a memmove
// of the whole window per block: 1 MiB took 2.5x the CPU of 256 KiB.
const zstdWindow = 256 << 10

// codec streams one record set at a time into a byte slice, compressing the records. It is
// used by one goroutine.
type codec struct {
	attr int16 // the compression bits of the batch attributes
	zstd *zstd.Encoder
	kc   kafka.Compression

	// State of the record set being written.
	aw    appendWriter
	start int
	w     io.Writer
	cl    io.Closer
	err   error
}

func newCodec(name string, zstdLevel zstd.EncoderLevel, window int, lowMem bool) (*codec, error) {
	kc, err := compressionCodec(name)
	if err != nil {
		return nil, err
	}
	c := &codec{attr: int16(kc), kc: kc}
	if kc == kafka.Zstd {
		// One goroutine writes one frame at a time: a single synchronous encoder, and a small
		// window: the default 8 MiB window only costs memory and CPU here. No frame checksum:
		// the batch CRC-32C already covers the compressed bytes.
		w := zstd.MinWindowSize
		for w < window && w < zstd.MaxWindowSize {
			w <<= 1
		}
		c.zstd, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstdLevel),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(w),
			zstd.WithLowerEncoderMem(lowMem),
			zstd.WithEncoderCRC(false),
			zstd.WithZeroFrames(true),
		)
		if err != nil {
			return nil, fmt.Errorf("produce: zstd encoder: %w", err)
		}
	}
	return c, nil
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// begin starts a record set at the end of dst.
func (c *codec) begin(dst []byte) {
	c.start = len(dst)
	var hdr [sizePrefix + batchHeaderSize]byte
	c.aw.b = append(dst, hdr[:]...)
	c.err = nil
	switch {
	case c.kc == 0:
		c.w, c.cl = &c.aw, nil
	case c.zstd != nil:
		c.zstd.Reset(&c.aw)
		c.w, c.cl = c.zstd, c.zstd
	default: // gzip, snappy, lz4: kafka-go's codecs
		cw := c.kc.Codec().NewWriter(&c.aw)
		c.w, c.cl = cw, cw
	}
}

// write adds encoded records (whole or in pieces: the compressor sees one stream).
func (c *codec) write(recs []byte) {
	if c.err == nil && len(recs) > 0 {
		_, c.err = c.w.Write(recs)
	}
}

// finish completes the record set of count records, all stamped ms, and returns dst with it.
// On error dst is returned as it was before begin.
func (c *codec) finish(count int, ms int64) ([]byte, error) {
	if c.cl != nil {
		if err := c.cl.Close(); c.err == nil {
			c.err = err
		}
	}
	if c.zstd != nil {
		c.zstd.Reset(nil) // do not keep the output buffer reachable
	}
	dst := c.aw.b
	c.aw.b = nil
	if c.err != nil {
		return dst[:c.start], fmt.Errorf("produce: %s compression: %w", c.kc, c.err)
	}
	b := dst[c.start+sizePrefix:]
	be := binary.BigEndian
	be.PutUint32(dst[c.start:], uint32(len(b)))
	// baseOffset 0 (b[0:8] is zero), batch length, leader epoch -1, magic 2, crc last
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint16(b[21:], uint16(c.attr))
	be.PutUint32(b[23:], uint32(count-1))
	be.PutUint64(b[27:], uint64(ms))
	be.PutUint64(b[35:], uint64(ms))
	be.PutUint64(b[43:], 0xffffffffffffffff) // no producer id, epoch, sequence
	be.PutUint16(b[51:], 0xffff)
	be.PutUint32(b[53:], 0xffffffff)
	be.PutUint32(b[57:], uint32(count))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return dst, nil
}

// appendBatch appends a complete record set of count records already encoded in recs.
func (c *codec) appendBatch(dst, recs []byte, count int, ms int64) ([]byte, error) {
	c.begin(dst)
	c.write(recs)
	return c.finish(count, ms)
}

func sizeVarint(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func sizeVarBytes(b []byte) int {
	if b == nil {
		return sizeVarint(-1)
	}
	return sizeVarint(int64(len(b))) + len(b)
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	return append(binary.AppendVarint(dst, int64(len(b))), b...)
}

// appendRecord appends one record (timestamp delta 0: a batch carries one timestamp).
func appendRecord(dst []byte, offsetDelta int, key string, headers []kafka.Header, value []byte) []byte {
	n := 1 + 1 + sizeVarint(int64(offsetDelta)) +
		sizeVarint(int64(len(key))) + len(key) +
		sizeVarBytes(value) + sizeVarint(int64(len(headers)))
	for i := range headers {
		n += sizeVarint(int64(len(headers[i].Key))) + len(headers[i].Key) + sizeVarBytes(headers[i].Value)
	}
	dst = binary.AppendVarint(dst, int64(n))
	dst = append(dst, 0, 0) // attributes, timestamp delta 0
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	dst = binary.AppendVarint(dst, int64(len(key)))
	dst = append(dst, key...)
	dst = appendVarBytes(dst, value)
	dst = binary.AppendVarint(dst, int64(len(headers)))
	for i := range headers {
		h := &headers[i]
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendVarBytes(dst, h.Value)
	}
	return dst
}
