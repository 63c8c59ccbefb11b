package clickhouse

import (
	"bytes"
	"slices"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/mxtrail/mxtrail/sink/schema"
)

// reserveColumns are a batch's String and Array(String) columns as the writer appends them.
func reserveColumns(t testing.TB, n int) (names []string, types []column.Type, values []any) {
	t.Helper()
	ss := genSessions(21, n)
	b := NewBatch(schema.FeaturesFor(schema.ServerVersion{Major: 18, Minor: 16}), 256<<10)
	now := time.Now()
	for i := range ss {
		b.Add(KindSessions, &Message{Topic: "t", Offset: int64(i), Value: ss[i].AppendJSON(nil)}, now)
	}
	if got := b.sessions.len(); got != n {
		t.Fatalf("batch holds %d sessions, want %d", got, n)
	}
	for i, v := range b.sessions.values() {
		// The public path, still used when the fast paths' layout checks fail.
		if r, ok := v.(strRows); ok {
			v = slices.Clone(r.views())
		}
		if r, ok := v.(arrRows); ok {
			v = slices.Clone(r.views())
		}
		switch v.(type) {
		case []string:
			types = append(types, "String")
		case [][]string:
			types = append(types, "Array(String)")
		default:
			continue
		}
		names, values = append(names, sessionColumnNames[i]), append(values, v)
	}
	return names, types, values
}

func encodeColumn(c column.Interface) []byte {
	var buf chproto.Buffer
	c.Encode(&buf)
	return buf.Buf
}

// A reserved column encodes exactly like one appended without reservation, also when reused
// for a smaller and an empty batch, and sliced rows (the isolate path) stay intact.
func TestReserveKeepsValues(t *testing.T) {
	names, types, values := reserveColumns(t, 3000)
	w := &Writer{canon: map[string]*string{}}
	for i, v := range values {
		for _, rows := range [][2]int{{0, 3000}, {100, 101}, {5, 5}, {1500, 3000}} {
			part, err := sliceRows(v, rows[0], rows[1])
			if err != nil {
				t.Fatal(err)
			}
			plain, err := types[i].Column(names[i], nil)
			if err != nil {
				t.Fatal(err)
			}
			reserved, _ := types[i].Column(names[i], nil)
			if err := w.appendColumn(plain, part); err != nil {
				t.Fatalf("%s: %v", names[i], err)
			}
			w.reserve(reserved, part)
			if reserved.Rows() != 0 {
				t.Fatalf("%s rows %v: reserve left %d rows in the column", names[i], rows, reserved.Rows())
			}
			if err := w.appendColumn(reserved, part); err != nil {
				t.Fatalf("%s: %v", names[i], err)
			}
			if reserved.Rows() != rows[1]-rows[0] {
				t.Fatalf("%s rows %v: %d rows after append", names[i], rows, reserved.Rows())
			}
			if !bytes.Equal(encodeColumn(plain), encodeColumn(reserved)) {
				t.Fatalf("%s rows %v: the reserved column encodes differently", names[i], rows)
			}
		}
	}
	for _, s := range w.fill {
		if s != "" {
			t.Fatalf("reserve left a value in its fill slice (%d bytes)", len(s))
		}
	}
}

// BenchmarkAppendColumns appends a 100k-row batch's String and Array(String) columns into
// fresh clickhouse-go columns, as every insert does, with reserve against the plain append
// (the baseline): B/op is what the columns allocated.
func BenchmarkAppendColumns(b *testing.B) {
	names, types, values := reserveColumns(b, 100_000)
	for _, reserve := range []bool{true, false} {
		name := "reserved"
		if !reserve {
			name = "baseline_plain_append"
		}
		b.Run(name, func(b *testing.B) {
			w := &Writer{canon: map[string]*string{}}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for j, v := range values {
					c, err := types[j].Column(names[j], nil)
					if err != nil {
						b.Fatal(err)
					}
					if reserve {
						w.reserve(c, v)
					}
					if err := w.appendColumn(c, v); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/row")
		})
	}
}

// Every column of every table can be sliced by rows (the isolate path inserts row ranges),
// on old and modern servers alike: a column type sliceRows does not know fails the whole
// insert as not retryable.
func TestEveryColumnSlices(t *testing.T) {
	for _, sv := range []schema.ServerVersion{{Major: 18, Minor: 16}, {Major: 26, Minor: 9}} {
		b := NewBatch(schema.FeaturesFor(sv), 256<<10)
		for _, tb := range tables {
			vs := tb.values(b)
			if len(vs) != len(tb.cols) {
				t.Fatalf("%v %s: %d values for %d columns", sv, tb.name, len(vs), len(tb.cols))
			}
			for i, v := range vs {
				if _, err := sliceRows(v, 0, 0); err != nil {
					t.Errorf("%v %s.%s: %v", sv, tb.name, tb.cols[i], err)
				}
			}
		}
	}
}
