package agentlib

import (
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// tally counts the outcomes of the calls allowed under one cluster state
// (gen, version) until the flusher takes them: the report names that
// state, and the cluster counts them only against it. A new state gets a
// new tally; calls still running under the old one finish into the old
// one, which nobody reports any more.
//
// With in-flight tracking on (the policy has hang_after or slow_call), a
// tally also keeps a ring of slots, one per coarse tick of the agent's
// clock (Config.HangResolution): each slot counts the calls that began in
// its tick and are still running, so the agent knows how many calls have
// waited longer than hang_after, and how long the oldest has, with no
// per-call record and no allocation.
type tally struct {
	// Read on every call, written once.
	b       *Breaker
	gen     string
	version int64
	doneFn  func(Outcome)        // records an untracked call's outcome (no ring)
	ring    atomic.Pointer[ring] // nil until tracking is on

	// Read on every success, written rarely (a failure, a new tick, a
	// flush): shared reads, on their own cache lines.
	_        [64]byte
	trailing atomic.Int64 // failures since the last success
	_        [56]byte
	lastOK   atomic.Int64 // tick of the last success
	_        [56]byte
	dirty    atomic.Bool
	_        [63]byte

	// Written on every success: one counter per shard, each on its own
	// cache line, so calls on different cores do not share a line.
	ok [okShards]paddedInt64

	// The failure path's: rare.
	fail, slow, misconfigured atomic.Int64
	hung                      atomic.Int64 // calls that crossed hang_after, not yet reported
	lastErr                   atomic.Pointer[string]
}

// okShards counters share the successes; a call picks one by where its
// goroutine's stack is. Goroutines' stacks are apart (2 KiB at least, the
// smallest stack): the pick hashes the address's 2 KiB block, so
// goroutines with neighbouring stacks land on different shards, for one
// multiply; a goroutine whose stack moves just picks another shard.
const okShards = 16

type paddedInt64 struct {
	atomic.Int64
	_ [56]byte
}

func shard() int {
	var here byte
	block := uint64(uintptr(unsafe.Pointer(&here)) >> 11)
	return int(block * 0x9e3779b97f4a7c15 >> 60) // Fibonacci hashing: the top 4 bits
}

func (t *tally) takeOK() int64 {
	var n int64
	for i := range t.ok {
		n += t.ok[i].Swap(0)
	}
	return n
}

func newTally(b *Breaker, s statestore.Snapshot) *tally {
	t := &tally{b: b, gen: s.Gen, version: s.Version}
	t.doneFn = func(o Outcome) { t.record(o, nil) }
	return t
}

// sameState reports whether s is the state the tally counts for. Before
// any transition (version 0) there is one closed state, whichever
// incarnation wrote it first: the cluster counts it the same way.
func (t *tally) sameState(s statestore.Snapshot) bool {
	return t.version == s.Version && (s.Version == 0 || t.gen == s.Gen)
}

// ringSize slots cover ringSize ticks; calls running longer stay counted
// in their slot, which the ring then hands to its overflow list.
const ringSize = 64

// Each slot's state packs three things into one word, so a crossing and
// a call's end never race: the calls not yet done (pending), the calls
// still waiting for a first byte (waiting), and whether the slot's
// waiting calls were counted as hung.
const (
	pendingOne = int64(1)
	waitingOne = int64(1) << 31
	countMask  = waitingOne - 1
	crossedBit = int64(1) << 62
	beginDelta = pendingOne + waitingOne
)

type ring struct {
	t     *tally
	slots [ringSize]atomic.Pointer[slot]

	mu       sync.Mutex
	overflow []*slot // guarded by mu; slots replaced while calls in them still run
	crossed  int64   // guarded by mu; slots up to this tick were checked for hangs
	// crossedAt is the tick of the last cross (guarded by mu): waiting
	// looks at least that far, so a report read on an older clock
	// carries every call its hung count holds.
	crossedAt int64
}

// slot holds the calls that began in one tick, in slotShards parts: a
// call counts in the part its goroutine's stack picks (shard), so calls
// of one tick on different cores do not share a cache line. A call's
// Allow, Responding and Done go to the part its Allow picked.
type slot struct {
	r    *ring
	tick atomic.Int64
	_    [48]byte
	part [slotShards]slotPart
}

// slotShards parts share a slot's calls.
const slotShards = 8

// slotPart is one part of a slot's calls: its state (pending, waiting,
// crossed), alone on its cache line.
type slotPart struct {
	s     *slot
	state atomic.Int64
	done  func(Outcome) // Allow's done for calls of this part
	_     [40]byte
}

// newRing makes a ring whose slots are ready for the ticks now and
// now+1; the agent's clock loop makes the others as their ticks come
// (advance), so a new state's view costs two slots, not the ring's 64.
func newRing(t *tally, now int64) *ring {
	r := &ring{t: t, crossed: now - 1} // calls may begin in tick now
	for tick := now; tick <= now+1; tick++ {
		r.slots[tick%ringSize].Store(r.newSlot(tick))
	}
	return r
}

func (r *ring) newSlot(tick int64) *slot {
	s := &slot{r: r}
	s.tick.Store(tick)
	for i := range s.part {
		p := &s.part[i]
		p.s = s
		p.done = func(o Outcome) { p.finish(o, false, false) }
	}
	return s
}

// pending is how many of the slot's calls are not done.
func (s *slot) pending() int64 {
	var n int64
	for i := range s.part {
		n += s.part[i].state.Load() & countMask
	}
	return n
}

// waitingNow is how many of the slot's calls wait for a first byte.
func (s *slot) waitingNow() int64 {
	var n int64
	for i := range s.part {
		n += (s.part[i].state.Load() >> 31) & countMask
	}
	return n
}

// enableTracking gives the tally a ring, once.
func (t *tally) enableTracking(now int64) *ring {
	if r := t.ring.Load(); r != nil {
		return r
	}
	t.ring.CompareAndSwap(nil, newRing(t, now))
	return t.ring.Load()
}

// begin counts a call allowed at tick now and returns its slot's part;
// nil when tracking is off, or in the rare case that the agent's clock
// loop has not prepared the tick's slot and it is still busy with calls
// from a lap ago (that call is then counted, but not tracked in flight).
func (t *tally) begin(now int64) *slotPart {
	r := t.ring.Load()
	if r == nil {
		return nil
	}
	s := r.slots[now%ringSize].Load()
	if s == nil || s.tick.Load() != now && !s.reuse(now) {
		return nil
	}
	p := &s.part[shard()&(slotShards-1)]
	p.state.Add(beginDelta)
	return p
}

// reuse makes an idle slot of an earlier lap the slot of tick next: it
// clears each part's state, then the slot's tick. It reports false when
// calls still run in it.
func (s *slot) reuse(next int64) bool {
	for {
		old := s.tick.Load()
		if old == next {
			return true
		}
		if old > next {
			return false
		}
		for i := range s.part {
			p := &s.part[i]
			for {
				st := p.state.Load()
				if st&countMask != 0 {
					return false
				}
				if p.state.CompareAndSwap(st, 0) {
					break
				}
			}
		}
		if s.tick.CompareAndSwap(old, next) {
			return true
		}
	}
}

// advance prepares the slot of tick next, so Allow finds it ready: an
// empty place gets a new slot, an idle slot is reused in place, and one
// whose calls still run moves to the overflow list and a new slot takes
// its place. Only the agent's clock loop calls it.
func (r *ring) advance(next int64) {
	i := next % ringSize
	s := r.slots[i].Load()
	if s == nil {
		r.slots[i].Store(r.newSlot(next))
		return
	}
	if s.reuse(next) {
		return
	}
	if s.tick.Load() > next {
		return
	}
	r.mu.Lock()
	r.overflow = append(r.overflow, s)
	r.mu.Unlock()
	r.slots[i].Store(r.newSlot(next))
}

// redate handles a clock loop that ran late: the agent's clock said last
// until the loop, stalled, read tick now. Calls that began in that time
// were dated last but may have begun as late as now: their slot moves to
// the overflow dated now, so none is counted as hung before hang_after
// surely passed (late by the stall instead), and a fresh slot takes tick
// last for calls still to read the old clock. Only the clock loop calls
// it, before it advances the slots and the clock.
func (r *ring) redate(last, now int64) {
	i := last % ringSize
	s := r.slots[i].Load()
	if s == nil || s.tick.Load() != last {
		return
	}
	s.tick.Store(now)
	r.mu.Lock()
	r.overflow = append(r.overflow, s)
	r.mu.Unlock()
	r.slots[i].Store(r.newSlot(last))
}

// cross counts the calls that have surely waited hangTicks or more (a
// tick's calls began anywhere in it: never early, at most two ticks
// late), each once, into the tally's hung count, and returns how many it
// added.
func (r *ring) cross(now, hangTicks int64) int64 {
	if hangTicks <= 0 {
		return 0
	}
	limit := now - hangTicks - 1
	var added int64
	take := func(s *slot) {
		if s == nil || s.tick.Load() > limit {
			return
		}
		for i := range s.part {
			p := &s.part[i]
			for {
				st := p.state.Load()
				if st&crossedBit != 0 {
					break
				}
				if p.state.CompareAndSwap(st, st|crossedBit) {
					added += (st >> 31) & countMask
					break
				}
			}
		}
	}
	r.mu.Lock()
	from := max(r.crossed+1, limit-ringSize+1)
	for tick := from; tick <= limit; tick++ {
		take(r.slots[tick%ringSize].Load())
	}
	r.crossed = max(r.crossed, limit)
	r.crossedAt = max(r.crossedAt, now)
	for _, s := range r.overflow {
		take(s)
	}
	r.mu.Unlock()
	if added > 0 {
		r.t.hung.Add(added)
		r.t.dirty.Store(true)
	}
	return added
}

// waiting returns how many calls have waited hangTicks or more for a first
// byte now, and the oldest one's age in ticks; it also forgets overflow
// slots whose calls all ended.
//
// now is at least the tick of the last cross: the flusher reads the
// agent's clock before it takes the tally, and the clock loop may cross
// the next tick (and count calls as hung) before it stores that tick.
func (r *ring) waiting(now, hangTicks int64) (n, oldest int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now = max(now, r.crossedAt)
	look := func(s *slot) {
		w := s.waitingNow()
		if age := now - s.tick.Load(); w > 0 && age-1 >= hangTicks {
			n += w
			oldest = max(oldest, age)
		}
	}
	for i := range r.slots {
		if s := r.slots[i].Load(); s != nil {
			look(s)
		}
	}
	kept := r.overflow[:0]
	for _, s := range r.overflow {
		look(s)
		if s.pending() != 0 {
			kept = append(kept, s)
		}
	}
	clear(r.overflow[len(kept):])
	r.overflow = kept
	return n, oldest
}

// respond marks one call of the part as no longer waiting for a first
// byte; it reports whether the call had been counted as hung.
func (p *slotPart) respond() (hung bool) {
	return p.state.Add(-waitingOne)&crossedBit != 0
}

// finish ends one call of the part. responded says whether it already
// left the waiting count (Call.Responding), and hung whether it had been
// counted as hung by then.
func (p *slotPart) finish(o Outcome, responded, hung bool) {
	d := -pendingOne
	if !responded {
		d -= waitingOne
	}
	st := p.state.Add(d)
	if !responded {
		hung = st&crossedBit != 0
	}
	t := p.s.r.t
	if hung {
		// Counted as hung while it waited: not counted again.
		t.recordHungEnd(o)
		return
	}
	t.record(o, p.s)
}

// record counts one outcome for the next report. s, when not nil, is the
// slot the call began in (for slow-call detection).
func (t *tally) record(o Outcome, s *slot) {
	switch o.kind {
	case kindSuccess:
		t.ok[shard()].Add(1)
		if t.trailing.Load() != 0 {
			t.trailing.Store(0)
		}
		if now := t.b.a.tick.Load(); t.lastOK.Load() != now {
			t.lastOK.Store(now)
		}
	case kindFailure:
		t.fail.Add(1)
		t.trailing.Add(1)
		t.noteFailure(o)
	default:
		return
	}
	if s != nil {
		if slow := t.b.view.Load().slowTicks; slow > 0 && t.b.a.tick.Load()-s.tick.Load()-1 >= slow {
			t.slow.Add(1)
		}
	}
	if !t.dirty.Load() {
		t.dirty.Store(true)
	}
	if o.kind == kindFailure {
		t.b.a.kickUrgent()
	}
}

// recordHungEnd is the end of a call already counted as hung: only what
// it says about the provider's wishes (Retry-After, the error) is kept.
func (t *tally) recordHungEnd(o Outcome) {
	if o.kind == kindFailure {
		t.noteFailure(o)
	}
}

func (t *tally) noteFailure(o Outcome) {
	if o.misconfigured {
		t.misconfigured.Add(1)
		t.dirty.Store(true)
	}
	if o.err != nil {
		msg := clipError(o.err.Error())
		t.lastErr.Store(&msg)
	}
	if o.retryAfter > 0 {
		// About the provider now, whatever state the call began under.
		t.b.noteRetryAfter(o.retryAfter, o.err)
	}
}

// take empties the tally into a report entry; ok is false when there is
// nothing to send.
func (t *tally) take(name string, now int64, hangTicks int64, tick time.Duration) (report.Breaker, bool) {
	if !t.dirty.Load() {
		return report.Breaker{}, false
	}
	t.dirty.Store(false)
	version := t.version
	r := report.Breaker{
		Name:          name,
		Gen:           t.gen,
		Version:       &version,
		OK:            t.takeOK(),
		Fail:          t.fail.Swap(0),
		TrailingFail:  t.trailing.Swap(0),
		Slow:          t.slow.Swap(0),
		Misconfigured: t.misconfigured.Swap(0),
	}
	// Counters are read one by one while calls go on: keep the entry
	// self-consistent; a count that slipped past lands in the next one.
	r.TrailingFail = min(r.TrailingFail, r.Fail)
	r.Slow = min(r.Slow, r.OK+r.Fail)
	if r.OK > 0 {
		if last := t.lastOK.Load(); last > 0 {
			// The success completed somewhere in tick last: its age is the
			// longest it can be, so one from before the cluster's run of
			// failures began is never taken for a later one (which would
			// end the run and hold back the trip). A success less than a
			// tick after the run began may then not end it.
			r.LastOKAgeMS = max(now-last+1, 0) * tick.Milliseconds()
		}
	}
	if h := t.hung.Swap(0); h > 0 {
		r.Hung = &report.Hung{N: h}
		if rg := t.ring.Load(); rg != nil {
			w, oldest := rg.waiting(now, hangTicks)
			r.Hung.Waiting, r.Hung.OldestMS = w, oldest*tick.Milliseconds()
		}
	}
	if r.Fail > 0 || r.Misconfigured > 0 {
		if e := t.lastErr.Swap(nil); e != nil {
			r.LastError = *e
		}
	}
	if r.OK == 0 && r.Fail == 0 && r.Hung == nil && r.Misconfigured == 0 {
		return report.Breaker{}, false
	}
	return r, true
}

// clipError keeps an error message within what a report accepts.
func clipError(s string) string {
	if len(s) <= report.MaxLastError {
		return s
	}
	s = s[:report.MaxLastError]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
