package agentlib

import (
	"testing"

	"github.com/fusebox-io/fusebox/statestore"
)

// The ring's bookkeeping, tick by tick.
func TestRing_CountsEachWaitingCallOnce(t *testing.T) {
	const hang = 3
	t.Run("a call in the tick the ring was made in", func(t *testing.T) {
		tl := newTally(nil, statestore.Snapshot{})
		r := tl.enableTracking(100)
		s := tl.begin(100)
		if s == nil {
			t.Fatal("the ring's first tick is not tracked")
		}
		// Begun anywhere in tick 100: surely waited 3 ticks from tick 104 on.
		for now := int64(101); now <= 103; now++ {
			if n := r.cross(now, hang); n != 0 {
				t.Fatalf("tick %d: %d counted before hang_after surely passed", now, n)
			}
		}
		if n := r.cross(104, hang); n != 1 {
			t.Fatalf("tick 104: %d counted, want 1", n)
		}
		if n := r.cross(106, hang); n != 0 {
			t.Fatalf("counted again: %d", n)
		}
		if w, oldest := r.waiting(106, hang); w != 1 || oldest != 6 {
			t.Fatalf("waiting %d oldest %d ticks, want 1 and 6", w, oldest)
		}
		if !s.respond() {
			t.Fatal("the call's answer did not learn it was counted as hung")
		}
	})
	t.Run("calls begun while the clock loop was late are dated when it ran", func(t *testing.T) {
		tl := newTally(nil, statestore.Snapshot{})
		r := tl.enableTracking(100)
		r.advance(101)
		// The agent's clock says 100; the loop stalls, and a call begins
		// during the stall (at tick 110, but dated 100).
		s := tl.begin(100)
		// The loop runs again at tick 110.
		r.redate(100, 110)
		for next := int64(102); next <= 111; next++ {
			r.advance(next)
		}
		for now := int64(110); now <= 113; now++ {
			if n := r.cross(now, hang); n != 0 {
				t.Fatalf("tick %d: %d counted, though the call may have begun at 110", now, n)
			}
		}
		if n := r.cross(114, hang); n != 1 {
			t.Fatalf("tick 114: %d counted, want 1", n)
		}
		if w, oldest := r.waiting(115, hang); w != 1 || oldest != 5 {
			t.Fatalf("waiting %d oldest %d ticks, want 1 and 5 (from 110)", w, oldest)
		}
		if !s.respond() {
			t.Fatal("the call's answer did not learn it was counted as hung")
		}
		// A call that reads the old clock after the move is tracked in
		// the fresh slot of tick 100.
		if tl.begin(100) == nil {
			t.Fatal("a call on the old clock after the loop moved its slot is not tracked")
		}
	})
	t.Run("calls older than the ring move to its overflow and are still counted", func(t *testing.T) {
		tl := newTally(nil, statestore.Snapshot{})
		r := tl.enableTracking(10)
		tl.begin(10)
		for next := int64(11); next <= 10+ringSize+5; next++ {
			r.advance(next + 1)
		}
		if len(r.overflow) != 1 {
			t.Fatalf("overflow has %d slots, want the one still running", len(r.overflow))
		}
		if n := r.cross(10+ringSize+5, ringSize); n != 1 {
			t.Fatalf("a call older than the ring: %d counted, want 1", n)
		}
		// A slot whose calls ended is reused in place, not moved.
		s := tl.begin(10 + ringSize + 5)
		s.finish(Ignored(), false, false)
		r.advance(10 + 2*ringSize + 5)
		if len(r.overflow) != 1 {
			t.Fatalf("an idle slot went to the overflow: %d", len(r.overflow))
		}
	})
}
