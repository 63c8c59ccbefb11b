package alert

import "sort"

// sortKeys orders keys by window start, rule and host, so Expire's output does not depend on
// map iteration order.
func sortKeys(ks []key, open map[key]*state) {
	sort.Slice(ks, func(i, j int) bool {
		a, b := open[ks[i]], open[ks[j]]
		if !a.start.Equal(b.start) {
			return a.start.Before(b.start)
		}
		if ks[i].rule != ks[j].rule {
			return ks[i].rule < ks[j].rule
		}
		return ks[i].host < ks[j].host
	})
}
