package agentlib

import (
	"time"

	"github.com/fusebox-io/fusebox/statestore"
)

// view is one immutable state of a breaker's mirror. Allow reads it with
// one atomic load; everything it needs is computed when it is built.
type view struct {
	snap   statestore.Snapshot
	policy *statestore.Policy // the cluster's policy; nil until known
	tally  *tally             // outcomes of calls allowed under snap
	deny   *DeniedError       // nil when calls may go ahead
	// traffic: half-open in traffic mode: ask for the permit.
	traffic bool
	// hangTicks and slowTicks are the policy's hang_after and slow_call in
	// ticks of the agent's clock; 0 = off.
	hangTicks, slowTicks int64
}

// newView builds the view of s under policy p. t is the tally to keep
// (same gen and version), nil for a new one.
func (b *Breaker) newView(s statestore.Snapshot, p *statestore.Policy, t *tally, at time.Time) *view {
	if t == nil || !t.sameState(s) {
		t = newTally(b, s)
	}
	v := &view{snap: s, policy: p, tally: t}
	if p != nil {
		res := b.a.cfg.HangResolution
		v.hangTicks = ticksCeil(p.HangAfter, res)
		v.slowTicks = ticksCeil(p.SlowCall, res)
		if v.hangTicks > 0 || v.slowTicks > 0 {
			t.enableTracking(b.a.tick.Load())
		}
	}
	deny := func(reason error) *DeniedError {
		return &DeniedError{Breaker: s.Name, Reason: reason, Version: s.Version}
	}
	switch {
	case s.Override == statestore.OverrideClosed:
	case s.Override == statestore.OverrideOpen:
		v.deny = deny(ErrForcedOpen)
		if s.RetryInMS > 0 {
			v.deny.RetryAt = at.Add(time.Duration(s.RetryInMS) * time.Millisecond)
		}
	case s.State == statestore.StateOpen:
		v.deny = deny(ErrOpen)
		v.deny.RetryAt = at.Add(time.Duration(s.RetryInMS) * time.Millisecond)
	case s.State == statestore.StateHalfOpen:
		v.deny = deny(ErrHalfOpen)
		v.traffic = p == nil || p.HalfOpen == statestore.HalfOpenTraffic
	default:
		if until := b.localUntil.Load(); until > at.UnixNano() {
			v.deny = deny(ErrOpen)
			v.deny.Local = true
			v.deny.RetryAt = time.Unix(0, until)
		}
	}
	return v
}

func ticksCeil(d, res time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + res - 1) / res)
}

func (v *view) policyOr(def statestore.Policy) statestore.Policy {
	if v.policy != nil {
		return *v.policy
	}
	return def
}

// apply installs s when it is newer than what the mirror holds (another
// incarnation, or a higher version), or unconditionally with force (a
// resync that found Redis holding an older state for good). p, when not
// nil, replaces the known policy. It reports whether the mirror changed.
func (b *Breaker) apply(s statestore.Snapshot, p *statestore.Policy, force bool) bool {
	now := b.a.clock.Now()
	for {
		cur := b.view.Load()
		newer := s.Newer(cur.snap) || (force && s != cur.snap)
		policyChanged := p != nil && (cur.policy == nil || *p != *cur.policy)
		if !newer && !policyChanged {
			return false
		}
		next := s
		if !newer {
			next = cur.snap
		}
		pol := cur.policy
		if p != nil {
			pol = p
		}
		if b.view.CompareAndSwap(cur, b.newView(next, pol, cur.tally, now)) {
			if newer {
				if w := b.watch.Load(); w != nil {
					w.poke()
				}
				if f := b.onChange.Load(); f != nil {
					(*f)()
				}
			}
			if newer && next.Effective() != cur.snap.Effective() {
				b.a.log.Debug().Str("breaker", b.name).Str("old_state", cur.snap.Effective()).
					Str("new_state", next.Effective()).Int64("version", next.Version).Msg("mirror changed")
			}
			return true
		}
	}
}

// refresh rebuilds the view from its own snapshot and policy (a local
// open began or ended).
func (b *Breaker) refresh() {
	now := b.a.clock.Now()
	for {
		cur := b.view.Load()
		if b.view.CompareAndSwap(cur, b.newView(cur.snap, cur.policy, cur.tally, now)) {
			return
		}
	}
}
