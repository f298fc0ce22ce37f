package agentlib

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// Breaker is one named breaker as this agent sees it. Get it from
// Agent.Breaker and keep it.
type Breaker struct {
	a    *Agent
	name string
	view atomic.Pointer[view]
	// doneFn is b.record bound once, so Allow returns it without
	// allocating.
	doneFn func(Outcome)

	// Outcomes since the last report.
	ok, fail, trailing, slow atomic.Int64
	retryAfterMS             atomic.Int64 // the largest seen
	lastErr                  atomic.Pointer[string]
	dirty                    atomic.Bool

	// triedEpoch is the last half-open epoch this agent asked a permit
	// for: one request per agent per window.
	triedEpoch atomic.Int64

	probeMu sync.Mutex
	probe   *report.Probe // guarded by probeMu; the traffic probe's result, not yet sent

	local atomic.Pointer[localBreaker] // set while degraded

	// Denials used while degraded, built once.
	degradedOpen, degradedForced *DeniedError
}

func newBreaker(a *Agent, name string) *Breaker {
	b := &Breaker{a: a, name: name}
	b.doneFn = b.done
	b.view.Store(newView(statestore.Snapshot{Name: name, State: statestore.StateClosed}, nil, a.clock.Now()))
	b.degradedOpen = &DeniedError{Breaker: name, Reason: ErrOpen, Degraded: true}
	b.degradedForced = &DeniedError{Breaker: name, Reason: ErrForcedOpen, Degraded: true}
	return b
}

// Name is the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State is the breaker's state as this agent mirrors it.
func (b *Breaker) State() statestore.Snapshot { return b.view.Load().snap }

// Allow asks whether a call may go ahead. When it may, call done exactly
// once with the call's Outcome. When it may not, err is a *DeniedError.
//
// In the closed and open states Allow is two atomic loads (the agent's
// degraded flag, the breaker's view): no lock, no
// allocation, no I/O. With slow-call detection on, the returned done is a
// closure holding the start time (one small allocation). In a
// traffic-mode half-open window the first caller on this agent makes one
// bounded Redis call to ask for the cluster's single probe permit.
func (b *Breaker) Allow() (done func(Outcome), err error) {
	if b.a.degraded.Load() {
		return b.allowLocal()
	}
	v := b.view.Load()
	if v.deny == nil {
		if v.slowCall > 0 {
			start := b.a.clock.Now()
			return func(o Outcome) { b.record(o, b.a.since(start), v.slowCall) }, nil
		}
		return b.doneFn, nil
	}
	if v.traffic {
		return b.allowProbe(v)
	}
	return nil, v.deny
}

// Execute runs fn if the breaker allows it and records its outcome,
// classified by Config.Classify. It returns fn's error, or a
// *DeniedError without calling fn, or ctx's error if ctx is already done.
func (b *Breaker) Execute(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done, err := b.Allow()
	if err != nil {
		return err
	}
	ferr := fn(ctx)
	done(b.a.cfg.Classify(ctx, ferr))
	return ferr
}

// Execute is Breaker.Execute for a function that returns a value.
func Execute[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	done, err := b.Allow()
	if err != nil {
		return zero, err
	}
	v, ferr := fn(ctx)
	done(b.a.cfg.Classify(ctx, ferr))
	return v, ferr
}

func (b *Breaker) done(o Outcome) { b.record(o, 0, 0) }

// record counts one outcome for the next report.
func (b *Breaker) record(o Outcome, took, slowCall time.Duration) {
	switch o.kind {
	case kindSuccess:
		b.ok.Add(1)
		if b.trailing.Load() != 0 {
			b.trailing.Store(0)
		}
	case kindFailure:
		b.fail.Add(1)
		b.trailing.Add(1)
		if o.err != nil {
			msg := clipError(o.err.Error())
			b.lastErr.Store(&msg)
		}
		if ms := o.retryAfter.Milliseconds(); ms > 0 {
			for {
				cur := b.retryAfterMS.Load()
				if ms <= cur || b.retryAfterMS.CompareAndSwap(cur, ms) {
					break
				}
			}
		}
	default:
		return
	}
	if slowCall > 0 && took >= slowCall {
		b.slow.Add(1)
	}
	if !b.dirty.Load() {
		b.dirty.Store(true)
	}
	if o.kind == kindFailure {
		b.a.kickUrgent()
	}
}

// allowProbe handles a traffic-mode half-open window: the first caller on
// this agent asks Redis for the window's single permit; everyone else is
// denied.
func (b *Breaker) allowProbe(v *view) (func(Outcome), error) {
	epoch := v.snap.Epoch
	last := b.triedEpoch.Load()
	if last >= epoch || !b.triedEpoch.CompareAndSwap(last, epoch) {
		return nil, v.deny
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.a.cfg.PermitTimeout)
	defer cancel()
	res, err := b.a.store.AcquirePermit(ctx, b.name, v.policyOr(b.a.policy), b.a.cfg.AgentID, epoch)
	if err != nil {
		b.a.log.Warn().Err(err).Str("breaker", b.name).Msg("half-open permit request failed")
		return nil, v.deny
	}
	if !res.Granted {
		return nil, v.deny
	}
	b.a.log.Info().Str("breaker", b.name).Int64("epoch", epoch).Msg("this call is the half-open probe")
	return func(o Outcome) {
		if o.kind == kindIgnored {
			// No verdict: the permit expires and a new window starts.
			return
		}
		p := &report.Probe{Epoch: epoch, OK: o.kind == kindSuccess, RetryAfterMS: o.retryAfter.Milliseconds()}
		if o.err != nil {
			p.Error = clipError(o.err.Error())
		}
		b.probeMu.Lock()
		b.probe = p
		b.probeMu.Unlock()
		b.dirty.Store(true)
		b.a.kickUrgent()
	}, nil
}

// take empties the counters into a report entry; ok is false when there
// is nothing to send.
func (b *Breaker) take() (report.Breaker, bool) {
	b.probeMu.Lock()
	probe := b.probe
	b.probe = nil
	b.probeMu.Unlock()
	if !b.dirty.Load() && probe == nil {
		return report.Breaker{}, false
	}
	b.dirty.Store(false)
	r := report.Breaker{
		Name:         b.name,
		OK:           b.ok.Swap(0),
		Fail:         b.fail.Swap(0),
		TrailingFail: b.trailing.Swap(0),
		Slow:         b.slow.Swap(0),
		RetryAfterMS: min(b.retryAfterMS.Swap(0), report.MaxRetryAfter.Milliseconds()),
		Probe:        probe,
	}
	// Counters are read one by one while calls go on: keep the entry
	// self-consistent; a count that slipped past lands in the next one.
	r.TrailingFail = min(r.TrailingFail, r.Fail)
	r.Slow = min(r.Slow, r.OK+r.Fail)
	if r.Fail > 0 {
		if e := b.lastErr.Swap(nil); e != nil {
			r.LastError = *e
		}
	}
	if r.OK == 0 && r.Fail == 0 && r.Probe == nil {
		return report.Breaker{}, false
	}
	return r, true
}

func (b *Breaker) resetCounters() {
	b.ok.Store(0)
	b.fail.Store(0)
	b.trailing.Store(0)
	b.slow.Store(0)
	b.retryAfterMS.Store(0)
	b.lastErr.Store(nil)
	b.dirty.Store(false)
	b.probeMu.Lock()
	b.probe = nil
	b.probeMu.Unlock()
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
