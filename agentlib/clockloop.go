package agentlib

import (
	"context"
	"time"
)

// clockLoop advances the agent's coarse clock every HangResolution: it
// prepares each breaker's next in-flight slot (so Allow never allocates),
// counts the calls that just crossed hang_after (and sends them at once),
// decides a half-open probe that hangs, and ends local opens.
func (a *Agent) clockLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.HangResolution)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.advanceClock()
	}
}

func (a *Agent) advanceClock() {
	wall := a.clock.Now()
	now := wall.UnixNano() / int64(a.cfg.HangResolution)
	last := a.tick.Load()
	if now <= last {
		return
	}
	urgent := false
	for _, b := range a.breakerList() {
		v := b.view.Load()
		if r := v.tally.ring.Load(); r != nil {
			if now > last+1 {
				// The loop ran late (the process stalled): calls begun
				// while the clock still said last may have begun just
				// now. Date them now, so none counts as hung early.
				r.redate(last, now)
			}
			// Slots first, then the clock, so Allow always finds its
			// tick's slot ready.
			for next := max(last+1, now-ringSize+2); next <= now+1; next++ {
				r.advance(next)
			}
			if r.cross(now, v.hangTicks) > 0 {
				urgent = true
			}
		}
		p := b.probing.Load()
		if p != nil && now > last+1 {
			p.started.CompareAndSwap(last, now) // as for the ring's calls
		}
		if p != nil && v.hangTicks > 0 && !p.responded.Load() && now-p.started.Load()-1 >= v.hangTicks {
			p.verdict(Outcome{}, true)
		}
		if u := b.localUntil.Load(); u != 0 && u <= wall.UnixNano() && b.localUntil.CompareAndSwap(u, 0) {
			b.refresh()
		}
	}
	a.tick.Store(now)
	if urgent {
		a.kickUrgent()
	}
}
