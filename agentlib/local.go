package agentlib

import (
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/fusebox-io/fusebox/statestore"
)

var (
	errLocalFailure = errors.New("failure")
	errLocalIgnored = errors.New("ignored")
)

// localBreaker decides for one breaker while the agent is degraded: a
// gobreaker two-step breaker with the cluster's policy, seeded from the
// last cluster view (when Redis is away) so a breaker that was open stays
// open.
type localBreaker struct {
	cb     *gobreaker.TwoStepCircuitBreaker[struct{}]
	policy statestore.Policy

	mu        sync.Mutex
	openUntil time.Time // guarded by mu; a Retry-After or the cluster's open time
}

func newLocalBreaker(name string, p statestore.Policy) *localBreaker {
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     p.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if p.ConsecutiveFailures > 0 && int(c.ConsecutiveFailures) >= p.ConsecutiveFailures {
				return true
			}
			return p.FailureRate > 0 && int(c.Requests) >= max(p.MinCalls, 1) &&
				float64(c.TotalFailures)*100 >= p.FailureRate*float64(c.Requests)
		},
		IsExcluded: func(err error) bool { return err == errLocalIgnored },
	}
	if p.FailureRate > 0 {
		st.Interval = p.Window
		st.BucketPeriod = time.Second
	}
	return &localBreaker{cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](st), policy: p}
}

// enterDegraded builds the local breaker; seeded, from the current view.
func (b *Breaker) enterDegraded(now time.Time, seeded bool) {
	v := b.view.Load()
	lb := newLocalBreaker(b.name, v.policyOr(b.a.policy))
	switch {
	case !seeded, v.snap.Override != statestore.OverrideNone:
	case v.snap.State == statestore.StateOpen:
		lb.openUntil = v.deny.RetryAt
		if !lb.openUntil.After(now) {
			lb.openUntil = now.Add(lb.policy.OpenTimeout)
		}
	case v.snap.State == statestore.StateHalfOpen:
		// Nobody is probing for us now: give the provider one open
		// window, then the local breaker probes by itself.
		lb.openUntil = now.Add(lb.policy.OpenTimeout)
	}
	b.local.Store(lb)
}

// allowDegraded is Allow while degraded. With the mirror still fed by
// Redis (only the coordinators are away), a denial in the mirror stands
// and the local breaker only adds strictness.
func (b *Breaker) allowDegraded() (func(Outcome), error) {
	if b.a.mirrorLive.Load() {
		if v := b.view.Load(); v.deny != nil {
			// A half-open window's probe verdict could not be reported
			// either: no permit while the coordinators are away.
			return nil, v.deny
		}
	}
	return b.allowLocal()
}

// allowLocal asks the local breaker. Operator overrides still hold.
func (b *Breaker) allowLocal() (func(Outcome), error) {
	v := b.view.Load()
	switch v.snap.Override {
	case statestore.OverrideOpen:
		return nil, b.degradedForced
	case statestore.OverrideClosed:
		return v.tally.doneFn, nil
	}
	lb := b.local.Load()
	if lb == nil {
		// Degraded began while this breaker was being created.
		b.enterDegraded(b.a.clock.Now(), !b.a.mirrorLive.Load())
		lb = b.local.Load()
	}
	lb.mu.Lock()
	until := lb.openUntil
	lb.mu.Unlock()
	if !until.IsZero() && b.a.clock.Now().Before(until) {
		return nil, b.degradedOpen
	}
	done, err := lb.cb.Allow()
	if err != nil {
		return nil, b.degradedOpen
	}
	return func(o Outcome) {
		switch o.kind {
		case kindSuccess:
			done(nil)
		case kindFailure:
			done(errLocalFailure)
			if o.retryAfter > 0 && lb.policy.HonorRetryAfter {
				lb.mu.Lock()
				limit := lb.policy.MaxRetryAfter
				if limit <= 0 {
					limit = statestore.DefaultPolicy().MaxRetryAfter
				}
				lb.openUntil = b.a.clock.Now().Add(min(o.retryAfter, limit))
				lb.mu.Unlock()
			}
		default:
			done(errLocalIgnored)
		}
	}, nil
}
