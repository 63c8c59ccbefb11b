package gen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"testing"
	"time"
)

type discard struct{ n int64 }

func (d *discard) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }
func (d *discard) Close() error                { return nil }

const benchLines = 200_000

// BenchmarkGenerate measures the whole generator (simulation, formatting, truth, buffered
// writes) on the default 10-host fleet, against two baselines in the same run:
//   - fprintf: the same number of spamdyke-shaped lines rendered with fmt.Fprintf into a
//     bufio.Writer (what a straightforward generator would do), and
//   - copy: writing already-rendered lines of the same average length through bufio (the
//     ceiling: no generation at all).
//
// Compare lines/s of gen with each baseline for the ratio.
func BenchmarkGenerate(b *testing.B) {
	b.Run("gen", func(b *testing.B) {
		var bytes int64
		b.ReportAllocs()
		lines := 0
		for i := 0; i < b.N; i++ {
			d := &discard{}
			o := Defaults()
			o.Lines = benchLines
			o.Seed = uint64(i + 1)
			o.Create = func(string) (io.WriteCloser, error) { return d, nil }
			sum, err := Generate(context.Background(), o)
			if err != nil {
				b.Fatal(err)
			}
			lines += sum.Total.Lines
			bytes = sum.Total.Bytes
		}
		b.SetBytes(bytes)
		b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
	})
	b.Run("baseline-fprintf", func(b *testing.B) {
		b.ReportAllocs()
		d := &discard{}
		for i := 0; i < b.N; i++ {
			fprintfLines(d, benchLines)
		}
		b.SetBytes(d.n / int64(b.N))
		b.ReportMetric(float64(benchLines*b.N)/b.Elapsed().Seconds(), "lines/s")
	})
	// The machine is shared and noisy: this one alternates the two in every iteration and
	// reports the ratio of their speeds, which load affects far less than either figure.
	b.Run("ratio-vs-fprintf", func(b *testing.B) {
		var genT, baseT time.Duration
		genLines := 0
		for i := 0; i < b.N; i++ {
			d := &discard{}
			o := Defaults()
			o.Lines = benchLines
			o.Seed = uint64(i + 1)
			o.Create = func(string) (io.WriteCloser, error) { return d, nil }
			t0 := time.Now()
			sum, err := Generate(context.Background(), o)
			if err != nil {
				b.Fatal(err)
			}
			genT += time.Since(t0)
			genLines += sum.Total.Lines
			t0 = time.Now()
			fprintfLines(d, benchLines)
			baseT += time.Since(t0)
		}
		gen := float64(genLines) / genT.Seconds()
		base := float64(benchLines*b.N) / baseT.Seconds()
		b.ReportMetric(gen, "gen-lines/s")
		b.ReportMetric(base, "fprintf-lines/s")
		b.ReportMetric(gen/base, "x-fprintf")
	})
	b.Run("baseline-copy", func(b *testing.B) {
		b.ReportAllocs()
		line := []byte("Mar  9 00:00:50 mx03 spamdyke[13556]: DENIED_RBL_MATCH from: prize830@cheapwinner64.top to: heidi@shop.example origin_ip: 20.74.225.88 auth: (unknown)\n")
		d := &discard{}
		for i := 0; i < b.N; i++ {
			w := bufio.NewWriterSize(d, 256<<10)
			for j := 0; j < benchLines; j++ {
				w.Write(line)
			}
			w.Flush()
		}
		b.SetBytes(d.n / int64(b.N))
		b.ReportMetric(float64(benchLines*b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}

// fprintfLines is the baseline: n spamdyke-shaped lines, one fmt.Fprintf each.
func fprintfLines(d io.Writer, n int) {
	start := time.Date(2021, 3, 9, 0, 0, 0, 0, time.UTC)
	w := bufio.NewWriterSize(d, 256<<10)
	for j := 0; j < n; j++ {
		t := start.Add(time.Duration(j) * time.Millisecond * 37)
		fmt.Fprintf(w, "%s %s spamdyke[%d]: %s from: %s to: %s origin_ip: %d.%d.%d.%d origin_rdns: %s auth: %s encryption: %s reason: %s\n",
			t.Format(time.Stamp), "mx03", 300+j%32000, "DENIED_RBL_MATCH", "prize830@cheapwinner64.top", "heidi@shop.example",
			j&0xff, j>>8&0xff, 7, 9, "host-20-74-225-88.cable.provider.example", "(unknown)", "(none)", "zen.spamhaus.org")
	}
	w.Flush()
}
