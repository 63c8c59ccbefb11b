package parse

import "bytes"

// Shared prefixes. A dialect's patterns are tried in order, first match wins, and most lines
// match a pattern far down the list: an smtpf line tried 18.7 patterns on average, and the
// failed attempts cost 4.5× the match itself (BenchmarkParsePatternLoop). Most of those
// attempts fail right after the same leading tokens ("%{MX_SID:session} %{SMTPF_NUM:code} "),
// re-matched each time.
//
// So at start-up each pattern is given the longest leading run of tokens it shares with
// another pattern of its dialect, when that run matches deterministically (see detPrefix);
// patterns with the same run form a group. Per line, a group's run is matched once: if it
// fails, every pattern of the group is skipped; if it matches, each pattern goes on from the
// run's end with the run's captures. The order of the patterns and the first-match rule are
// unchanged, and so is every result (TestPrefixGroupsSameResults, FuzzPrefixGroups).

// maxGroups and maxPrefixCaps bound the per-line state (kept on the stack): groups beyond
// them, or runs holding more captures, are not shared.
const (
	maxGroups     = 12
	maxPrefixCaps = 4
)

type prefixGroup struct {
	toks  []token // the shared leading tokens: they end with a literal
	nCaps int     // the run sets capture slots [0, nCaps) only
}

// groupState is one group's result for the current line.
type groupState struct {
	state uint8 // 0 not tried, 1 failed, 2 matched
	pos   int32
	caps  [maxPrefixCaps]span
}

// detPrefix returns the longest k such that toks[:k] ends with a literal and matches a line
// in at most one way, so that its match can be shared: literals, capture marks, fixed-length
// runs, word runs (taken whole by the engine) and class runs followed by a literal whose
// first byte is not in the class (the run can only end where it stops).
func detPrefix(toks []token) int {
	k := 0
	for i := 0; i < len(toks); i++ {
		t := &toks[i]
		switch t.kind {
		case tokLit:
			k = i + 1
			continue
		case tokOpen, tokClose:
			continue
		}
		switch t.p.kind {
		case primFixed:
			continue
		case primClass:
			if t.p.word {
				continue
			}
			j := i + 1
			for j < len(toks) && (toks[j].kind == tokOpen || toks[j].kind == tokClose) {
				j++
			}
			if j < len(toks) && toks[j].kind == tokLit && !t.p.class[toks[j].lit[0]] {
				continue
			}
		}
		return k
	}
	return k
}

func sameToken(a, b *token) bool {
	return a.kind == b.kind && a.slot == b.slot && bytes.Equal(a.lit, b.lit) &&
		(a.p == b.p || a.p != nil && b.p != nil && *a.p == *b.p) // each use of a primitive is a copy
}

// groupPatterns assigns the dialect's patterns to prefix groups.
func (dp *dialectPatterns) groupPatterns() {
	det := make([]int, len(dp.pats))
	for i, cp := range dp.pats {
		cp.group = -1
		if !cp.slow {
			det[i] = detPrefix(cp.toks)
		}
	}
	for i, cp := range dp.pats {
		if det[i] == 0 {
			continue
		}
		// the longest literal-ended run shared with another pattern
		best := 0
		for j, other := range dp.pats {
			if j == i || det[j] == 0 {
				continue
			}
			n := 0
			for n < det[i] && n < det[j] && sameToken(&cp.toks[n], &other.toks[n]) {
				n++
			}
			for n > best && cp.toks[n-1].kind != tokLit {
				n--
			}
			best = max(best, n)
		}
		// A shorter literal-ended run is shared too: shorten a run holding too many captures.
		nCaps := 0
		for best > 0 {
			nCaps = 0
			for _, t := range cp.toks[:best] {
				if t.slot >= 0 {
					nCaps = max(nCaps, t.slot+1)
				}
			}
			if nCaps <= maxPrefixCaps {
				break
			}
			for best--; best > 0 && cp.toks[best-1].kind != tokLit; best-- {
			}
		}
		if best == 0 {
			continue
		}
		run := cp.toks[:best]
		g := -1
		for gi, pg := range dp.groups {
			if len(pg.toks) == len(run) && sameTokens(pg.toks, run) {
				g = gi
				break
			}
		}
		if g < 0 {
			if len(dp.groups) == maxGroups {
				continue
			}
			g = len(dp.groups)
			dp.groups = append(dp.groups, prefixGroup{toks: run, nCaps: nCaps})
		}
		cp.group, cp.prefixLen = g, best
	}
}

func sameTokens(a, b []token) bool {
	for i := range a {
		if !sameToken(&a[i], &b[i]) {
			return false
		}
	}
	return true
}

// matchPrefix matches a group's run at the start of line, as Pattern.m would (the run
// matches in at most one way, see detPrefix), setting caps[:nCaps].
func matchPrefix(toks []token, line []byte, caps []span) (int, bool) {
	pos := 0
	for i := range toks {
		t := &toks[i]
		switch t.kind {
		case tokLit:
			if !bytes.HasPrefix(line[pos:], t.lit) {
				return 0, false
			}
			pos += len(t.lit)
			continue
		case tokOpen:
			caps[t.slot].start = int32(pos)
			continue
		case tokClose:
			caps[t.slot].end = int32(pos)
			continue
		}
		pr := t.p
		switch pr.kind {
		case primFixed:
			if len(line)-pos < pr.n {
				return 0, false
			}
			for k := pos; k < pos+pr.n; k++ {
				if !pr.class[line[k]] {
					return 0, false
				}
			}
			setCap(caps, t.slot, pos, pos+pr.n)
			pos += pr.n
		case primClass:
			if pr.word && pos > 0 && isWord(line[pos-1]) {
				return 0, false
			}
			e := pos
			for e < len(line) && pr.class[line[e]] {
				e++
			}
			if e == pos && !pr.empty {
				return 0, false
			}
			setCap(caps, t.slot, pos, e)
			pos = e
		default:
			panic("parse: a shared prefix holds a " + pr.regex + " run") // detPrefix excludes it
		}
	}
	return pos, true
}

// matchGrouped matches cp (of group cp.group) against msg, matching the group's run once per
// line through gs.
func (dp *dialectPatterns) matchGrouped(gs *[maxGroups]groupState, cp *compiled, msg []byte, caps []span) bool {
	g := &dp.groups[cp.group]
	st := &gs[cp.group]
	if st.state == 0 {
		for i := range g.nCaps {
			st.caps[i] = span{-1, -1}
		}
		pos, ok := matchPrefix(g.toks, msg, st.caps[:g.nCaps])
		st.state, st.pos = 1, int32(pos)
		if ok {
			st.state = 2
		}
	}
	if st.state == 1 {
		return false
	}
	for i := range caps {
		caps[i] = span{-1, -1}
	}
	copy(caps, st.caps[:g.nCaps])
	return cp.m(msg, cp.prefixLen, int(st.pos), caps)
}
