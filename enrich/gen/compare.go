package gen

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// Comparison is the result of checking assembled session records against the ground truth:
// what the issue's property test asserts ("agrees with the generator's ground truth on every
// session's outcome and recipients").
type Comparison struct {
	Truths     int            // sessions in the truth
	Records    int            // session records compared
	Matched    int            // records paired with a truth session
	Agree      int            // pairs with equal outcome and recipients
	Missing    []Truth        // truth sessions no record was paired with
	Extra      []int          // indexes of records paired with no truth session
	Mismatches []Mismatch     // pairs that disagree
	ByOutcome  map[string]int // mismatches per expected outcome
}

// Mismatch is one paired session whose record disagrees with the truth.
type Mismatch struct {
	Truth  Truth
	Record int    // index into the records given to Compare
	Field  string // "outcome", "recipients", "permanent" or "delivery"
	Want   string
	Got    string
}

// OK reports whether every truth session has exactly one agreeing record.
func (c *Comparison) OK() bool {
	return len(c.Missing) == 0 && len(c.Extra) == 0 && len(c.Mismatches) == 0 && c.Agree == c.Truths
}

// String summarises the comparison and shows up to five examples of each problem.
func (c *Comparison) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d truth sessions, %d records: %d paired, %d agree, %d missing, %d extra, %d disagree",
		c.Truths, c.Records, c.Matched, c.Agree, len(c.Missing), len(c.Extra), len(c.Mismatches))
	for i, m := range c.Mismatches {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "\n  %s %s key %q %s: want %s, got %s", m.Truth.Host, m.Truth.Product, m.Truth.SessionKey, m.Field, m.Want, m.Got)
	}
	for i, t := range c.Missing {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "\n  missing: %s %s key %q at %s:%d (%s)", t.Host, t.Product, t.SessionKey, t.First.File, t.First.Line, t.Outcome)
	}
	return b.String()
}

// Compare pairs records with truth sessions and checks outcome, recipients (address and
// label, in any order), permanence and delivery.
//
// Pairing, in order: the host and the position of the session's first line (file base name
// and byte offset, as record.Session.FirstPos gives them); then, for records whose first line
// is another file of the same session (ICDSoft joins three files), the host, product, session
// key and start second. Each truth session pairs at most once.
func Compare(truth []Truth, records []record.Session) *Comparison {
	c := &Comparison{Truths: len(truth), Records: len(records), ByOutcome: map[string]int{}}
	type posKey struct {
		host, file string
		off        int64
	}
	type idKey struct {
		host, product, key string
		start              int64
	}
	byPos := make(map[posKey]int, len(truth))
	byID := make(map[idKey][]int, len(truth))
	for i := range truth {
		t := &truth[i]
		byPos[posKey{t.Host, t.First.File, t.First.Offset}] = i
		k := idKey{t.Host, t.Product, t.SessionKey, t.StartTime.Unix()}
		byID[k] = append(byID[k], i)
	}
	used := make([]bool, len(truth))
	for ri := range records {
		r := &records[ri]
		ti, ok := byPos[posKey{r.Host, filepath.Base(r.FirstPos.Source), r.FirstPos.Offset}]
		if ok && used[ti] {
			ok = false
		}
		if !ok {
			for _, cand := range byID[idKey{r.Host, r.Product, r.SessionKey, r.StartTime.Unix()}] {
				if !used[cand] {
					ti, ok = cand, true
					break
				}
			}
		}
		if !ok {
			c.Extra = append(c.Extra, ri)
			continue
		}
		used[ti] = true
		c.Matched++
		if field, want, got := differs(&truth[ti], r); field != "" {
			c.Mismatches = append(c.Mismatches, Mismatch{Truth: truth[ti], Record: ri, Field: field, Want: want, Got: got})
			c.ByOutcome[string(truth[ti].Outcome)]++
			continue
		}
		c.Agree++
	}
	for i := range truth {
		if !used[i] {
			c.Missing = append(c.Missing, truth[i])
		}
	}
	return c
}

// differs returns the first field on which r disagrees with t.
func differs(t *Truth, r *record.Session) (field, want, got string) {
	if t.Outcome != r.Outcome {
		return "outcome", string(t.Outcome), string(r.Outcome)
	}
	w, g := rcptSet(t.Recipients, nil), rcptSet(nil, r.Recipients)
	if w != g {
		return "recipients", w, g
	}
	if t.Permanent != r.Permanent {
		return "permanent", fmt.Sprint(t.Permanent), fmt.Sprint(r.Permanent)
	}
	if t.Delivery != r.Delivery {
		return "delivery", string(t.Delivery), string(r.Delivery)
	}
	return "", "", ""
}

// rcptSet renders recipients as a sorted "address=OUTCOME" list; addresses compare
// case-insensitively (SMTP domains are, and products differ in what they log).
func rcptSet(ts []TruthRecipient, rs []record.Recipient) string {
	var parts []string
	for _, x := range ts {
		parts = append(parts, strings.ToLower(x.Address)+"="+string(x.Outcome))
	}
	for _, x := range rs {
		parts = append(parts, strings.ToLower(x.Address)+"="+string(x.Outcome))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
