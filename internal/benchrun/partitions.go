package benchrun

import (
	"fmt"
	"sort"
	"strings"

	"github.com/segmentio/kafka-go"
)

// Why one partition per host: the enricher's watermark is per partition (the newest event time
// seen there, minus the lateness). Live, every host's lines arrive in about real time, so the
// hosts sharing a partition advance together. The bench replays whole files as fast as the
// shipper reads them, and a host whose file covers more event time per line runs ahead: on a
// shared partition it moves the watermark minutes past the other host's open sessions, which
// then close early and split (seen with 12 partitions: imail07 and srv02 share partition 10,
// srv02 raced ahead and imail07's sessions lost their late lines). Giving each host its own
// partition keeps the replay's event time as ordered as the merged files are, without pacing
// the shipper (which would cap the rate the bench measures).

// MinPartitions is the fewest raw partitions the automatic choice considers.
const MinPartitions = 12

const maxAutoPartitions = 256

// partitionOf is the raw partition the shipper sends host's lines to (its Murmur2 balancer).
func partitionOf(host string, n int) int {
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	return kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: []byte(host)}, parts...)
}

// hostPartitions is the fewest partitions from lo to hi that put every host on its own
// partition; lo when none does.
func hostPartitions(hosts []string, lo, hi int) int {
	for n := max(lo, len(hosts)); n <= hi; n++ {
		if len(sharedPartitions(hosts, n)) == 0 {
			return n
		}
	}
	return lo
}

// sharedPartitions describes the partitions of n that more than one host maps to.
func sharedPartitions(hosts []string, n int) []string {
	by := map[int][]string{}
	for _, h := range hosts {
		p := partitionOf(h, n)
		by[p] = append(by[p], h)
	}
	var out []string
	for p, hs := range by {
		if len(hs) > 1 {
			sort.Strings(hs)
			out = append(out, fmt.Sprintf("%d: %s", p, strings.Join(hs, ", ")))
		}
	}
	sort.Strings(out)
	return out
}
