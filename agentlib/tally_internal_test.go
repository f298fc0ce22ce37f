package agentlib

import (
	"testing"
	"time"

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
	t.Run("a report on a clock read before the crossing still sees the calls it counted", func(t *testing.T) {
		// The flusher reads the agent's clock (103), then the clock loop
		// crosses at 104 and counts the call as hung before it stores
		// the new tick: the report that carries the hung count must
		// carry the call as waiting too.
		tl := newTally(nil, statestore.Snapshot{})
		r := tl.enableTracking(100)
		tl.begin(100)
		if n := r.cross(104, hang); n != 1 {
			t.Fatalf("tick 104: %d counted, want 1", n)
		}
		if w, oldest := r.waiting(103, hang); w != 1 || oldest != 4 {
			t.Fatalf("waiting %d oldest %d ticks, want 1 and 4 (as the crossing saw them)", w, oldest)
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

// A tick's calls spread over the slot's parts (by goroutine): crossing,
// waiting and reuse see every part.
func TestRing_SeesEveryPartOfASlot(t *testing.T) {
	const hang = 3
	tl := newTally(nil, statestore.Snapshot{})
	r := tl.enableTracking(100)
	s := r.slots[100%ringSize].Load()
	// Three calls in three parts, as three goroutines' Allows would.
	for _, i := range []int{0, 3, slotShards - 1} {
		s.part[i].state.Add(beginDelta)
	}
	if s.reuse(100 + ringSize) {
		t.Fatal("a slot with calls in its parts was reused")
	}
	if n := r.cross(104, hang); n != 3 {
		t.Fatalf("crossed %d calls, want the 3 of every part", n)
	}
	if w, _ := r.waiting(104, hang); w != 3 {
		t.Fatalf("%d waiting, want 3", w)
	}
	if !s.part[3].respond() {
		t.Fatal("a call of part 3 did not learn it was counted as hung")
	}
	s.part[0].finish(Ignored(), false, false)
	s.part[3].finish(Ignored(), true, true)
	if s.reuse(100 + ringSize) {
		t.Fatal("reused while one call still runs")
	}
	s.part[slotShards-1].finish(Ignored(), false, false)
	if !s.reuse(100 + ringSize) {
		t.Fatal("an idle slot was not reused")
	}
	for i := range s.part {
		if st := s.part[i].state.Load(); st != 0 {
			t.Fatalf("part %d kept state %x after reuse", i, st)
		}
	}
}

// A new state's ring has the slots of its first two ticks; the clock
// loop makes the others as their ticks come, and a call in a tick with
// no slot is counted but not tracked.
func TestRing_MakesSlotsAsTheirTicksCome(t *testing.T) {
	tl := newTally(nil, statestore.Snapshot{})
	r := tl.enableTracking(100)
	made := 0
	for i := range r.slots {
		if r.slots[i].Load() != nil {
			made++
		}
	}
	if made != 2 {
		t.Fatalf("a new ring has %d slots, want 2 (ticks 100 and 101)", made)
	}
	if tl.begin(101) == nil {
		t.Fatal("tick 101 has no slot")
	}
	if tl.begin(102) != nil {
		t.Fatal("a call in a tick the clock loop has not prepared was tracked")
	}
	r.advance(102)
	if tl.begin(102) == nil {
		t.Fatal("tick 102 has no slot after advance")
	}
	if n := r.cross(110, 3); n != 2 {
		t.Fatalf("crossed %d, want the 2 tracked calls", n)
	}
}

// A report's last_ok_age_ms is the longest the last success can have
// waited: it completed somewhere in its tick.
func TestTally_LastSuccessAgeIsAtMostItsTicks(t *testing.T) {
	a := &Agent{}
	b := &Breaker{a: a}
	tl := newTally(b, statestore.Snapshot{})
	a.tick.Store(10)
	tl.record(Success(), nil)
	for _, c := range []struct{ now, want int64 }{{10, 100}, {12, 300}} {
		tl.ok[0].Add(1) // something to report
		tl.dirty.Store(true)
		r, ok := tl.take("x", c.now, 0, 100*time.Millisecond)
		if !ok || r.LastOKAgeMS != c.want {
			t.Errorf("taken at tick %d: last_ok_age_ms %d (%v), want %d", c.now, r.LastOKAgeMS, ok, c.want)
		}
	}
}
