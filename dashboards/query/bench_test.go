package query

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"testing"
	"time"
)

func benchResult(n int) *Result {
	r := &Result{Columns: []string{"client", "refused", "sessions", "deny_share", "hosts", "top_outcome", "first_seen", "last_seen"}}
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		r.Rows = append(r.Rows, []any{fmt.Sprintf("45.%d.%d.%d", 80+i%4, i%16, i%250), uint64(i * 3), uint64(i*3 + 7),
			float64(i%1000) / 1000, uint64(1 + i%6), "DENIED_RBL", t0.Add(time.Duration(i) * time.Second), t0.Add(time.Duration(i) * time.Minute)})
	}
	return r
}

// BenchmarkWrite measures printing a 10k-row answer in each format against the baseline of
// encoding/csv writing the same cells pre-rendered as strings (the least any format can do).
// The table format buffers every row to align columns, so it costs a multiple of that.
func BenchmarkWrite(b *testing.B) {
	r := benchResult(10000)
	var size int64
	{
		var buf bytes.Buffer
		if err := r.Write(&buf, "csv"); err != nil {
			b.Fatal(err)
		}
		size = int64(buf.Len())
	}
	cells := make([][]string, len(r.Rows))
	for i, row := range r.Rows {
		for _, v := range row {
			cells[i] = append(cells[i], Text(v))
		}
	}
	var base float64
	b.Run("baseline_encoding_csv_prerendered", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			w := csv.NewWriter(io.Discard)
			_ = w.WriteAll(cells)
		}
		base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	for _, f := range Formats {
		b.Run(f, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				if err := r.Write(io.Discard, f); err != nil {
					b.Fatal(err)
				}
			}
			if base > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x-baseline")
			}
		})
	}
}
