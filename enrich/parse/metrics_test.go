package parse

import (
	"testing"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	p := testParser(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var ev event.Event
	for _, l := range []string{"Mar  9 11:10:37 mx1 spamdyke[7]: " + spamdykeMsg, "garbage", "", "2021-03-09 11:10:37, from, a@b"} {
		p.Parse(&ev, []byte(l), nil)
		m.Observe(&ev)
	}
	// two registries must not collide (no global metrics)
	NewMetrics(prometheus.NewRegistry())
	if got := testutil.ToFloat64(m.lines[event.DialectSpamdyke][1]); got != 1 {
		t.Errorf("spamdyke parsed = %v", got)
	}
	if got := testutil.ToFloat64(m.lines[event.DialectAuto][0]); got != 2 {
		t.Errorf("unknown unparsed = %v", got)
	}
	if got := testutil.ToFloat64(m.unparsed[ReasonEmpty]); got != 1 {
		t.Errorf("empty = %v", got)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Errorf("gather: %d %v", n, err)
	}
}
