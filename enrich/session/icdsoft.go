package session

import (
	"bytes"
	"strconv"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/record"
)

// ICDSoft (FORMATS.md §2): the SMTP log has no session id, so a group is the run of lines from
// `from` on, in one file (one file per port); it settles once its host's event time has moved
// Lateness past its last line (ICDSoft writes a group at once). Settling joins, on the same
// host, the spamdyke connection with the same sender, recipients and time (and, for an
// accepted message, spamdyke's reason equal to the final `resp` with spaces turned into `_`),
// and the delivery-log group with the same sender, time and recipients.

type delivTry struct {
	num, rcpt, result, detail string
}

type delivGroup struct {
	sender string
	at     time.Time
	first  record.Position
	last   record.Position
	lines  int
	tries  []delivTry
}

func (a *Assembler) icdsoft(hs *hostState, ev *event.Event) *sess {
	hs.icd = true
	if ev.Dialect == event.DialectICDSoftDelivery {
		return a.icdDelivery(hs, ev)
	}
	if hs.icdCur == nil {
		hs.icdCur = map[string]*sess{}
	}
	file := ev.Pos.File
	code := string(ev.Bytes(ev.Code))
	g := hs.icdCur[file]
	if code == "from" {
		g = a.create(hs, event.ProductICDSoft, nil, "", ev)
		g.group = true
		hs.icdCur[file] = g
		hs.icdGroups = append(hs.icdGroups, g)
		a.touch(g, ev)
		setStr(&g.rec.MailFrom, ev.Field(event.FieldSender))
		g.lastCmd = 'f'
		return g
	}
	if g == nil || g.closed {
		a.stats.Orphans++
		return &orphan
	}
	a.touch(g, ev)
	switch code {
	case "to":
		g.rcpt(ev.Field(event.FieldRecipient))
		g.chkReject = false
		g.lastCmd = 't'
	case "check":
		ip := ev.Field(event.FieldClientIP)
		if g.rec.ClientIP == "" {
			setStr(&g.rec.ClientIP, ip)
		}
		if bytes.HasPrefix(ev.Field(event.FieldReason), []byte("rejected")) {
			g.chkReject = true
		}
	case "size":
		g.rec.Size, _ = strconv.ParseInt(string(ev.Field(event.FieldSize)), 10, 64)
		g.lastCmd = 'z'
	case "resp":
		c := code3(ev.Field(event.FieldReplyCode))
		text := ev.Field(event.FieldReplyText)
		reply := string(ev.Field(event.FieldReplyCode)) + " " + string(text)
		if ev.Fields[event.FieldPID].Len > 0 { // "250 ok <ts> qp <pid>": the text is the whole tail
			reply = string(ev.Field(event.FieldReplyCode)) + " " + string(text)
		}
		switch g.lastCmd {
		case 'f':
			if c >= 400 {
				g.setVerdict(replyLabel(c, text, record.DeniedSender), c, reply, "resp")
			}
		case 't':
			if len(g.rec.Recipients) > 0 {
				o := replyLabel(c, text, record.DeniedOther)
				if g.chkReject && c >= 500 && (o == record.DeniedOther || o == record.DeniedRecipient) {
					o = record.DeniedUnknownRecipient
				}
				raw := "resp"
				if g.chkReject {
					raw = "chkuser rejected rcpt"
				}
				g.label(g.cur, o, c, reply, raw)
			}
		case 'z':
			g.dataCode, g.dataReply = c, reply
			g.icdFinal = true
			if c >= 400 {
				g.refuseAccepted(replyLabel(c, text, record.DeniedOther), c, reply)
				g.rec.Reason = "resp"
			}
		}
		g.lastCmd = 0
	}
	return g
}

func (a *Assembler) icdDelivery(hs *hostState, ev *event.Event) *sess {
	if hs.delivCur == nil {
		hs.delivCur, hs.delivByNum = map[string]*delivGroup{}, map[string]*delivGroup{}
	}
	pos := record.Position{Source: ev.Pos.File, Offset: ev.Pos.Offset}
	switch string(ev.Bytes(ev.Code)) {
	case "init":
		d := &delivGroup{sender: string(ev.Field(event.FieldSender)), at: ev.Time, first: pos, last: pos, lines: 1}
		hs.deliv = append(hs.deliv, d)
		hs.delivCur[ev.Pos.File] = d
	case "try":
		d := hs.delivCur[ev.Pos.File]
		if d == nil {
			a.stats.Orphans++
			break
		}
		num := string(ev.Field(event.FieldDeliveryNum))
		d.tries = append(d.tries, delivTry{num: num, rcpt: string(ev.Field(event.FieldRecipient))})
		d.lines++
		d.last = pos
		hs.delivByNum[num] = d
	case "result":
		num := string(ev.Field(event.FieldDeliveryNum))
		d := hs.delivByNum[num]
		if d == nil {
			a.stats.Orphans++
			break
		}
		delete(hs.delivByNum, num)
		for i := range d.tries {
			if d.tries[i].num == num {
				d.tries[i].result = string(ev.Field(event.FieldDeliveryResult))
				d.tries[i].detail = string(ev.Field(event.FieldReason))
			}
		}
		d.lines++
		d.last = pos
	default:
		return nil
	}
	return &orphan // held by a pending delivery group (or counted as an orphan)
}

// joinWindow bounds how far apart in event time the lines of one ICDSoft message may be:
// ICDSoft and spamdyke stamp the same local clock, in the same second (FORMATS.md §2.3).
func (a *Assembler) joinWindow() time.Duration { return 2 * time.Second }

// settle joins an ICDSoft SMTP group with its spamdyke connection and delivery group and
// emits the record.
func (a *Assembler) settle(g *sess, by record.ClosedBy) {
	if g.closed {
		return
	}
	hs := g.hs
	if hs.icdCur[g.rec.FirstPos.Source] == g {
		delete(hs.icdCur, g.rec.FirstPos.Source)
	}
	if !g.joined {
		if c := a.findSpamdyke(g); c != nil {
			a.absorb(g, c)
		}
	}
	if d := a.findDelivery(g); d != nil {
		applyDelivery(g, d)
	}
	a.detach(g)
	a.spanOf(g)
	a.stats.Closed[by]++
	a.out = append(a.out, a.finish(g, by))
}

func within(t, from, to time.Time, w time.Duration) bool {
	return !t.Before(from.Add(-w)) && !t.After(to.Add(w))
}

// findSpamdyke picks the spamdyke connection of g among the open ones with g's sender: its
// time within the join window, each of its lines matching a recipient of g with the same
// fate (ALLOWED for an accepted recipient, a DENIED code for a refused one), its ALLOWED
// reason equal to g's final reply with spaces turned into '_'. Busy hosts see the same
// sender twice in a second: the candidate with exactly g's recipients and the closest start
// wins.
func (a *Assembler) findSpamdyke(g *sess) *sess {
	w := a.joinWindow()
	var final []byte
	if g.icdFinal {
		final = bytes.ReplaceAll([]byte(g.dataReply), []byte(" "), []byte("_"))
	}
	var best *sess
	bestScore := time.Duration(1 << 62)
	for _, c := range g.hs.sdBySender[g.rec.MailFrom] {
		if c.closed || c.product != event.ProductSpamdyke || len(c.rec.Recipients) == 0 || !within(c.start, g.start, g.lastSeen, w) {
			continue
		}
		if final != nil && c.sdAllowed != "" && c.sdAllowed != string(final) {
			continue
		}
		exact, ok := fatesMatch(g, c)
		if !ok {
			continue
		}
		score := c.start.Sub(g.start)
		if score < 0 {
			score = -score
		}
		if !exact {
			score += time.Hour
		}
		if score < bestScore {
			best, bestScore = c, score
		}
	}
	return best
}

// groupFor finds the pending ICDSoft group a spamdyke session belongs to, when that session
// must close before the group settles (its pid was reused, it timed out or was evicted).
func (a *Assembler) groupFor(c *sess) *sess {
	w := a.joinWindow()
	var best *sess
	bestScore := time.Duration(1 << 62)
	for _, g := range c.hs.icdGroups {
		if g.closed || g.joined || g.rec.MailFrom != c.rec.MailFrom || !within(c.start, g.start, g.lastSeen, w) {
			continue
		}
		if g.icdFinal && c.sdAllowed != "" && c.sdAllowed != string(bytes.ReplaceAll([]byte(g.dataReply), []byte(" "), []byte("_"))) {
			continue
		}
		exact, ok := fatesMatch(g, c)
		if !ok {
			continue
		}
		score := c.start.Sub(g.start)
		if score < 0 {
			score = -score
		}
		if !exact {
			score += time.Hour
		}
		if score < bestScore {
			best, bestScore = g, score
		}
	}
	return best
}

// fatesMatch pairs every spamdyke line of c with an unpaired recipient of g of the same
// address and fate; exact when every recipient of g is paired too.
func fatesMatch(g, c *sess) (exact, ok bool) {
	var small [16]bool
	var used []bool
	if len(g.rec.Recipients) > len(small) {
		used = make([]bool, len(g.rec.Recipients))
	} else {
		used = small[:len(g.rec.Recipients)]
	}
	for _, cr := range c.rec.Recipients {
		found := false
		for i := range g.rec.Recipients {
			gr := &g.rec.Recipients[i]
			if used[i] || gr.Address != cr.Address || (gr.SMTPCode > 0 && gr.SMTPCode < 400) != (cr.Outcome == record.Allowed) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			return false, false
		}
	}
	return len(c.rec.Recipients) == len(g.rec.Recipients), true
}

// absorb moves spamdyke session c into ICDSoft record g: spamdyke names the reason of each
// refusal, the SMTP log keeps the reply code that was actually sent (seed 004: a
// DENIED_RDNS_MISSING sent with 554).
func (a *Assembler) absorb(g, c *sess) {
	used := make([]bool, len(c.rec.Recipients))
	paired := make([]bool, len(g.rec.Recipients))
	// Pass 0 pairs an address with a line of the same fate (accepted with ALLOWED, refused
	// with a DENIED code): an address named twice may be accepted once and refused once.
	for pass := 0; pass < 2; pass++ {
		for i := range g.rec.Recipients {
			gr := &g.rec.Recipients[i]
			if paired[i] {
				continue
			}
			for j := range c.rec.Recipients {
				cr := &c.rec.Recipients[j]
				if used[j] || cr.Address != gr.Address {
					continue
				}
				if pass == 0 && (gr.SMTPCode > 0 && gr.SMTPCode < 400) != (cr.Outcome == record.Allowed) {
					continue
				}
				used[j], paired[i] = true, true
				o := cr.Outcome
				if o == record.Allowed && gr.Outcome != record.Allowed && gr.Outcome != record.OutcomeNone {
					o = gr.Outcome // the SMTP log saw a refusal spamdyke let through (downstream)
				}
				code, reply := gr.SMTPCode, gr.Reply
				if code == 0 {
					code, reply = cr.SMTPCode, cr.Reply
				}
				g.label(i, o, code, reply, c.raws[j])
				break
			}
		}
	}
	g.rec.SessionKey = c.rec.SessionKey
	if c.rec.ClientIP != "" {
		g.rec.ClientIP = c.rec.ClientIP
	}
	g.rec.ClientPTR = c.rec.ClientPTR
	if c.rec.AuthUser != "" {
		g.rec.AuthUser = c.rec.AuthUser
	}
	g.rec.TLS = g.rec.TLS || c.rec.TLS
	g.rec.EventCount += c.rec.EventCount
	if c.sevMax != event.SeverityUnset && (g.sevMax == event.SeverityUnset || c.sevMax < g.sevMax) {
		g.sevMax = c.sevMax
	}
	if c.rec.FirstPos.Source == g.rec.FirstPos.Source {
		g.low, g.high = min(g.low, c.low), max(g.high, c.high)
	}
	for _, f := range c.rec.Flags {
		g.addFlag(f)
	}
	if c.verdict != record.OutcomeNone {
		g.setVerdict(c.verdict, c.vCode, c.vReply, c.vReason)
	}
	g.joined = true
	a.detach(c)
	a.stats.Joined++
}

// findDelivery picks the pending delivery group of g: same sender, time within the join
// window, every try to an accepted recipient; the one whose tries cover the accepted
// recipients exactly and is closest in time wins (a sender may send two messages at once).
func (a *Assembler) findDelivery(g *sess) *delivGroup {
	hs := g.hs
	w := a.joinWindow()
	accepted := 0
	for _, r := range g.rec.Recipients {
		if r.Outcome == record.Allowed {
			accepted++
		}
	}
	best, bestScore := -1, time.Duration(1<<62)
	for i, d := range hs.deliv {
		if d.sender != g.rec.MailFrom || !within(d.at, g.start, g.lastSeen, w) || len(d.tries) == 0 {
			continue
		}
		ok := true
		for _, t := range d.tries {
			found := false
			for _, r := range g.rec.Recipients {
				if r.Address == t.rcpt && r.Outcome == record.Allowed {
					found = true
					break
				}
			}
			if !found {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		score := d.at.Sub(g.lastSeen)
		if score < 0 {
			score = -score
		}
		if len(d.tries) != accepted {
			score += time.Hour
		}
		if score < bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return nil
	}
	d := hs.deliv[best]
	hs.deliv = append(hs.deliv[:best], hs.deliv[best+1:]...)
	for _, t := range d.tries {
		if hs.delivByNum[t.num] == d {
			delete(hs.delivByNum, t.num)
		}
	}
	for f, cur := range hs.delivCur {
		if cur == d {
			delete(hs.delivCur, f)
		}
	}
	return d
}

func applyDelivery(g *sess, d *delivGroup) {
	for _, t := range d.tries {
		deliveryResult(g, []byte(t.result))
		if len(t.detail) >= len("smtp_auth/") && t.detail[:len("smtp_auth/")] == "smtp_auth/" {
			g.addFlag("smtp_auth")
			if g.rec.AuthUser == "" {
				g.rec.AuthUser = g.rec.MailFrom // ICDSoft: the sender authenticated (seed 004)
			}
		}
	}
	g.rec.EventCount += d.lines
	if d.first.Source == g.rec.FirstPos.Source {
		g.low = min(g.low, d.first.Offset)
	}
	if d.last.Source == g.rec.FirstPos.Source {
		g.high = max(g.high, d.last.Offset)
	}
}

// dropOrphans counts and drops ICDSoft delivery groups no SMTP group claimed within the idle
// timeout (all of them when watermark is zero, at Flush).
func (a *Assembler) dropOrphans(hs *hostState, watermark time.Time) {
	keep := hs.deliv[:0]
	for _, d := range hs.deliv {
		if !watermark.IsZero() && d.at.Add(a.cfg.IdleTimeout).After(watermark) {
			keep = append(keep, d)
			continue
		}
		a.stats.Orphans += int64(d.lines)
		for _, t := range d.tries {
			if hs.delivByNum[t.num] == d {
				delete(hs.delivByNum, t.num)
			}
		}
		for f, cur := range hs.delivCur {
			if cur == d {
				delete(hs.delivCur, f)
			}
		}
	}
	clear(hs.deliv[len(keep):])
	hs.deliv = keep
}
