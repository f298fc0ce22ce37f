package agentlib

import (
	"errors"
	"time"

	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// ReportRetryAfter tells the cluster that the provider asked its callers
// to stay away for d, without counting a failure: a successful answer
// whose rate-limit headers say the limit is exhausted until a reset (the
// next call would be a 429). With the policy's honor_retry_after the
// cluster stays off the provider until then (capped by max_retry_after),
// as for a Retry-After on a failure; reason goes with the report as its
// last error. Record the call's own outcome (a Success) as usual. d <= 0
// does nothing.
//
// While the agent is degraded its local breaker stays open for d instead.
func (b *Breaker) ReportRetryAfter(d time.Duration, reason string) {
	if d <= 0 {
		return
	}
	if reason == "" {
		reason = "rate limit exhausted"
	}
	if b.a.degraded.Load() {
		if lb := b.local.Load(); lb != nil && lb.policy.HonorRetryAfter {
			limit := lb.policy.MaxRetryAfter
			if limit <= 0 {
				limit = statestore.DefaultPolicy().MaxRetryAfter
			}
			until := b.a.clock.Now().Add(min(d, limit))
			lb.mu.Lock()
			if until.After(lb.openUntil) {
				lb.openUntil = until
			}
			lb.mu.Unlock()
		}
		return
	}
	// Keeps the largest Retry-After and the reason for the next report,
	// and counts no call: the report carries retry_after_ms, no failure.
	b.noteRetryAfter(d, errors.New(reason))
}

// noteRetryAfter keeps the largest Retry-After the provider asked for
// since the last report, with its reason, and has it sent at once. It is
// the breaker's, not a tally's: a Retry-After is about the provider now,
// whichever state the call that heard it began under, so one that arrives
// as the mirror moves to a new state is not left in the old state's
// tally, which nobody reports. (The cluster applies it to the state the
// report names if that state is current, and to an open breaker of the
// same incarnation in any case: an extension.)
func (b *Breaker) noteRetryAfter(d time.Duration, reason error) {
	ms := min(d.Milliseconds(), report.MaxRetryAfter.Milliseconds())
	if ms <= 0 {
		return
	}
	if reason != nil {
		msg := clipError(reason.Error())
		b.retryReason.Store(&msg)
	}
	for {
		cur := b.retryAfterMS.Load()
		if ms <= cur || b.retryAfterMS.CompareAndSwap(cur, ms) {
			break
		}
	}
	b.a.kickUrgent()
}

// takeRetryAfter adds the pending Retry-After, if any, to r, the entry of
// the mirror's current state (made when the tally had nothing to send).
func (b *Breaker) takeRetryAfter(v *view, r report.Breaker, ok bool) (report.Breaker, bool) {
	ms := b.retryAfterMS.Swap(0)
	if ms <= 0 {
		return r, ok
	}
	if !ok {
		version := v.tally.version
		r = report.Breaker{Name: b.name, Gen: v.tally.gen, Version: &version}
	}
	r.RetryAfterMS = max(r.RetryAfterMS, ms)
	if e := b.retryReason.Swap(nil); e != nil && r.LastError == "" {
		r.LastError = *e
	}
	return r, true
}
