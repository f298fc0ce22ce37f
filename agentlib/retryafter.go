package agentlib

import (
	"errors"
	"time"

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
	b.view.Load().tally.noteFailure(Outcome{kind: kindIgnored, err: errors.New(reason), retryAfter: d})
	b.a.kickUrgent()
}
