package stream

import "time"

// Watermark is one partition's notion of "now" in event time, which is what closes idle
// sessions (the assembler's Expire). It is the newest event time seen minus the allowed
// lateness. A partition that goes quiet would otherwise never close its last sessions, so
// after IdleAfter of wall-clock silence the watermark advances with the wall clock from where
// it stood. It reads no clock: callers pass the wall time in.
type Watermark struct {
	Lateness  time.Duration // how late a line may arrive and still join its session
	IdleAfter time.Duration // wall-clock silence after which the watermark follows the wall clock

	maxEvent time.Time // newest event time seen
	lastWall time.Time // wall time of the last observed event
	floor    time.Time // highest watermark returned: it never goes back
}

// Observe records an event time seen at wall time now.
func (w *Watermark) Observe(event, now time.Time) {
	if event.After(w.maxEvent) {
		w.maxEvent = event
	}
	w.lastWall = now
}

// At returns the watermark at wall time now (zero before any event). It never decreases: once
// an idle advance has expired sessions, later traffic cannot move time back behind them.
func (w *Watermark) At(now time.Time) time.Time {
	if w.maxEvent.IsZero() {
		return time.Time{}
	}
	wm := w.maxEvent.Add(-w.Lateness)
	if idle := now.Sub(w.lastWall); w.IdleAfter > 0 && idle > w.IdleAfter {
		// Quiet partition: let event time pass as wall time does, from the moment it went
		// quiet, so the sessions still open time out as they would have with traffic.
		wm = wm.Add(idle - w.IdleAfter)
	}
	if wm.Before(w.floor) {
		return w.floor
	}
	w.floor = wm
	return wm
}

// Busy tells the watermark that the partition is not idle at wall time now even though no
// event was observed: records are waiting to be processed (buffered, or unread at the broker).
// Idleness must mean "caught up and quiet", never "slow": a consumer stalled for longer than
// IdleAfter behind a backlog would otherwise advance time past sessions whose next lines are
// in that backlog, and close them early.
func (w *Watermark) Busy(now time.Time) {
	if !w.maxEvent.IsZero() {
		w.lastWall = now
	}
}
