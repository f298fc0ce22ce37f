package agentlib

import (
	"time"

	"github.com/fusebox-io/fusebox/statestore"
)

// view is one immutable state of a breaker's mirror. Allow reads it with
// one atomic load; everything it needs is computed when it is built.
type view struct {
	snap     statestore.Snapshot
	policy   *statestore.Policy // the cluster's policy; nil until known
	deny     *DeniedError       // nil when calls may go ahead
	traffic  bool               // half-open in traffic mode: ask for the permit
	slowCall time.Duration      // > 0: measure calls
}

func newView(s statestore.Snapshot, p *statestore.Policy, at time.Time) *view {
	v := &view{snap: s, policy: p}
	if p != nil {
		v.slowCall = p.SlowCall
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
	}
	return v
}

func (v *view) policyOr(def statestore.Policy) statestore.Policy {
	if v.policy != nil {
		return *v.policy
	}
	return def
}

// apply installs s when it is newer than what the mirror holds (another
// incarnation, or a higher version). p, when not nil, replaces the known
// policy. It reports whether the mirror changed.
func (b *Breaker) apply(s statestore.Snapshot, p *statestore.Policy) bool {
	now := b.a.clock.Now()
	for {
		cur := b.view.Load()
		newer := s.Newer(cur.snap)
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
		if b.view.CompareAndSwap(cur, newView(next, pol, now)) {
			if newer && next.Effective() != cur.snap.Effective() {
				b.a.log.Debug().Str("breaker", b.name).Str("old_state", cur.snap.Effective()).
					Str("new_state", next.Effective()).Int64("version", next.Version).Msg("mirror changed")
			}
			return true
		}
	}
}
