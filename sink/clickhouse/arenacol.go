package clickhouse

import (
	"encoding/binary"
	"reflect"
	"slices"
	"unsafe"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// arenaStrColumn is a String column of an insert that encodes rows of a batch arena itself. The
// writer puts it in the insert's block in place of clickhouse-go's *column.String (blockOf),
// which it embeds for the methods an insert does not use on it. clickhouse-go's column needs
// a ch-go position pair (16 bytes) per value, built from the arena's end offsets before Send
// (appendStrRows) and read again by ColStr.EncodeColumn, which appends each length and each
// value separately: ~4.6% of the sink's CPU in perf, and a 33 MB position buffer. Encode here
// walks the arena's 4-byte end offsets once, into a buffer grown once.
type arenaStrColumn struct {
	*column.String
	r strRows
}

func (a *arenaStrColumn) Rows() int { return a.r.hi - a.r.lo }

// Encode appends the rows as a Native String column: each value's uvarint length, then its
// bytes.
func (a *arenaStrColumn) Encode(b *chproto.Buffer) {
	b.Buf = appendArenaStrings(b.Buf, a.r)
}

func appendArenaStrings(dst []byte, r strRows) []byte {
	ends := r.c.end[r.lo:r.hi]
	start, end := endRange(r.c.end, r.lo, r.hi)
	// Values of up to shortValue bytes are copied as four 8-byte words, without a call to
	// memmove (~half of this function's cost when each value called it): the words read past
	// the value stay within the arena's capacity, and those written past it land in the
	// buffer's spare room, where the next value or nothing (past the length) goes.
	arena := r.c.buf[:cap(r.c.buf)]
	// One length byte per value; a value of 128 bytes or more needs more, and append grows
	// the buffer for those (rare: reply texts, long addresses).
	dst = slices.Grow(dst, end-start+len(ends)+shortValue)
	prev := start
	for _, e := range ends {
		n := int(e) - prev
		if at := len(dst); n <= shortValue && prev+shortValue <= len(arena) && cap(dst)-at > shortValue {
			w := dst[at : at+1+shortValue]
			w[0] = byte(n)
			v := arena[prev : prev+shortValue]
			binary.LittleEndian.PutUint64(w[1:], binary.LittleEndian.Uint64(v))
			binary.LittleEndian.PutUint64(w[9:], binary.LittleEndian.Uint64(v[8:]))
			binary.LittleEndian.PutUint64(w[17:], binary.LittleEndian.Uint64(v[16:]))
			binary.LittleEndian.PutUint64(w[25:], binary.LittleEndian.Uint64(v[24:]))
			dst = dst[:at+1+n]
		} else {
			v := arena[prev:e]
			if n < 0x80 {
				dst = append(dst, byte(n))
			} else {
				dst = binary.AppendUvarint(dst, uint64(n))
			}
			dst = append(dst, v...)
		}
		prev = int(e)
	}
	return dst
}

// shortValue is the longest value appendArenaStrings copies word by word.
const shortValue = 32

// blockLayout is where clickhouse-go's batch keeps the block its Send encodes: a *proto.Block
// field of the concrete type behind driver.Batch, found by reflection and type-checked. A
// Writer keeps its own (inserts of one Writer run one at a time). Without it (another
// clickhouse-go layout) the writer fills clickhouse-go's own columns (TestBatchBlockLayout
// fails, to say so).
type blockLayout struct {
	typ reflect.Type
	off uintptr
	ok  bool
}

// blockOf returns the block batch will send, or nil when its layout is not the known one.
func (l *blockLayout) blockOf(batch driver.Batch) *proto.Block {
	v := reflect.ValueOf(batch)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	t := v.Type()
	if l.typ != t {
		l.typ, l.ok = t, false
		if t.Elem().Kind() == reflect.Struct {
			f, ok := t.Elem().FieldByName("block")
			l.off, l.ok = f.Offset, ok && f.Type == reflect.TypeOf((*proto.Block)(nil))
		}
	}
	if !l.ok {
		return nil
	}
	return *(**proto.Block)(unsafe.Add(v.UnsafePointer(), l.off))
}
