package coordinator

import (
	"context"
	"time"

	"github.com/go-redsync/redsync/v4"

	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/statestore"
)

// maybeProbe starts the canary of a half-open window unless this
// coordinator is already probing that breaker. Whether any coordinator
// may probe is the lock's business (runProbe).
func (c *Coordinator) maybeProbe(ctx context.Context, s statestore.Snapshot, p statestore.Policy) {
	canary, ok := c.cfg.Canaries[s.Name]
	if !ok || p.HalfOpen != statestore.HalfOpenCanary || s.State != statestore.StateHalfOpen || s.Override != statestore.OverrideNone {
		return
	}
	c.mu.Lock()
	if _, busy := c.probing[s.Name]; busy || len(c.probing) >= c.cfg.MaxConcurrentProbes {
		c.mu.Unlock()
		return
	}
	c.probing[s.Name] = s.Epoch
	c.mu.Unlock()
	c.probes.Add(1)
	go func() {
		defer c.probes.Done()
		defer func() {
			c.mu.Lock()
			delete(c.probing, s.Name)
			c.mu.Unlock()
		}()
		c.runProbe(ctx, s.Name, s.Epoch, p, canary)
	}()
}

// runProbe runs one canary for the half-open window epoch, if this
// coordinator wins the window's lock. The lock (a redsync mutex per
// breaker and epoch) lets one coordinator probe per window; it expires
// after the canary's timeout plus a margin, so a coordinator that dies
// mid-probe holds nobody up for long. Its random value is the fencing
// token: statestore applies only the result of the window's latest
// claimant, so a coordinator that stalled past its lock cannot overwrite
// what its successor found.
func (c *Coordinator) runProbe(ctx context.Context, name string, epoch int64, p statestore.Policy, canary probe.Canary) {
	expiry := canary.Timeout() + c.cfg.ProbeLockMargin
	m := c.rs.NewMutex(c.store.ProbeLockKey(name, epoch), redsync.WithExpiry(expiry), redsync.WithTries(1))
	if err := m.TryLockContext(ctx); err != nil {
		return // another coordinator probes this window
	}
	defer func() { _, _ = m.UnlockContext(context.WithoutCancel(ctx)) }()
	claim, err := c.store.ProbeStart(ctx, name, p, c.cfg.ID, epoch, m.Value(), expiry)
	if err != nil {
		c.log.Warn().Err(err).Str("breaker", name).Int64("epoch", epoch).Msg("claim half-open window")
		return
	}
	if !claim.Granted {
		return // the window ended, or another prober holds it
	}
	c.logTransition(claim) // a window whose prober vanished was replaced
	epoch = claim.Epoch
	c.log.Info().Str("event", "probe_started").Str("breaker", name).Int64("epoch", epoch).Str("actor", c.cfg.ID).Msg("probe")

	r := canary.Probe(ctx)
	if ctx.Err() != nil {
		// Shutting down: no verdict. The lock expires and another
		// coordinator probes this window.
		return
	}
	c.metrics.probeDuration.WithLabelValues(name).Observe(r.Took.Seconds())
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := c.store.ProbeResult(rctx, name, p, c.cfg.ID, statestore.ProbeOutcome{
		Epoch: epoch, OK: r.OK, Error: r.Reason, RetryAfter: r.RetryAfter, Token: m.Value(),
	})
	if err != nil {
		c.log.Warn().Err(err).Str("breaker", name).Int64("epoch", epoch).Msg("record probe result; the window times out and starts again")
		return
	}
	if out.Stale {
		c.metrics.probes.WithLabelValues(name, "stale").Inc()
		c.log.Warn().Str("breaker", name).Int64("epoch", epoch).Bool("ok", r.OK).
			Msg("late probe result discarded: the window was taken over or is over")
		return
	}
	result := "failed"
	if r.OK {
		result = "succeeded"
	}
	c.metrics.probes.WithLabelValues(name, result).Inc()
	c.logTransition(out)
}
