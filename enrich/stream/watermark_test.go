package stream

import (
	"testing"
	"time"
)

func TestWatermark(t *testing.T) {
	wall := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ev := time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC) // logs replayed months later
	w := Watermark{Lateness: 30 * time.Second, IdleAfter: time.Minute}
	if !w.At(wall).IsZero() {
		t.Fatal("watermark before any event must be zero")
	}
	w.Observe(ev, wall)
	if got := w.At(wall); !got.Equal(ev.Add(-30 * time.Second)) {
		t.Fatalf("watermark %v", got)
	}
	// An older (late) event does not move it back.
	w.Observe(ev.Add(-time.Hour), wall.Add(time.Second))
	if got := w.At(wall.Add(time.Second)); !got.Equal(ev.Add(-30 * time.Second)) {
		t.Fatalf("late event moved the watermark to %v", got)
	}
	// Within IdleAfter of silence it stays; after it, it follows the wall clock.
	if got := w.At(wall.Add(time.Minute)); !got.Equal(ev.Add(-30 * time.Second)) {
		t.Fatalf("after 59 s idle: %v", got)
	}
	if got := w.At(wall.Add(time.Second + 11*time.Minute)); !got.Equal(ev.Add(-30*time.Second + 10*time.Minute)) {
		t.Fatalf("after 11 min idle: %v, want +10 min", got)
	}
	// New traffic resets idleness but never moves the watermark back.
	w.Observe(ev.Add(time.Minute), wall.Add(12*time.Minute))
	if got := w.At(wall.Add(12 * time.Minute)); !got.Equal(ev.Add(-30*time.Second + 10*time.Minute)) {
		t.Fatalf("after new traffic the watermark went back to %v", got)
	}
	w.Observe(ev.Add(time.Hour), wall.Add(13*time.Minute))
	if got := w.At(wall.Add(13 * time.Minute)); !got.Equal(ev.Add(time.Hour - 30*time.Second)) {
		t.Fatalf("after newer traffic: %v", got)
	}
}

// A partition with a backlog is never idle, however long it has been since the last event.
func TestWatermarkBusyIsNotIdle(t *testing.T) {
	wall := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ev := time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)
	w := Watermark{Lateness: 30 * time.Second, IdleAfter: time.Minute}
	w.Busy(wall) // before any event: no effect, still zero
	if !w.At(wall).IsZero() {
		t.Fatal("Busy before any event made a watermark")
	}
	w.Observe(ev, wall)
	w.Busy(wall.Add(10 * time.Minute)) // stalled behind a backlog for 10 min
	if got := w.At(wall.Add(10*time.Minute + 30*time.Second)); !got.Equal(ev.Add(-30 * time.Second)) {
		t.Fatalf("a busy partition advanced to %v", got)
	}
}
