package parse

import (
	"bytes"
	"sync"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/event"
)

// One Parser, many goroutines: results equal the sequential ones (run under -race).
func TestConcurrentUse(t *testing.T) {
	p := testParser(t)
	var lines [][]byte
	for d := event.Dialect(1); d < event.NumDialects; d++ {
		for _, s := range fuzzSeeds[d] {
			lines = append(lines, []byte(s))
		}
	}
	want := make([][]byte, len(lines))
	var ev event.Event
	for i, l := range lines {
		p.Parse(&ev, l, nil)
		want[i] = event.AppendJSON(nil, &ev)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var ev event.Event
			var batch []event.Event
			for r := 0; r < 20; r++ {
				batch = batch[:0]
				for i := range lines {
					k := (i + g) % len(lines)
					p.Parse(&ev, lines[k], nil)
					if js := event.AppendJSON(nil, &ev); !bytes.Equal(js, want[k]) {
						errs <- string(js)
						return
					}
					batch = p.ParseAppend(batch, lines[k], nil)
				}
				for i := range batch {
					k := (i + g) % len(lines)
					if js := event.AppendJSON(nil, &batch[i]); !bytes.Equal(js, want[k]) {
						errs <- "ParseAppend: " + string(js)
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
