package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/go-redsync/redsync/v4"

	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/statestore"
)

// maybeProbe starts the canary of a half-open window unless this
// coordinator is already probing that breaker. Whether any coordinator
// may probe is the lock's business (runProbe).
func (l *Loop) maybeProbe(ctx context.Context, s statestore.Snapshot, p statestore.Policy) {
	canary, ok := l.cfg.Canaries[s.Name]
	if !ok || p.HalfOpen != statestore.HalfOpenCanary || s.State != statestore.StateHalfOpen || s.Override != statestore.OverrideNone {
		return
	}
	l.mu.Lock()
	if _, busy := l.probing[s.Name]; busy || len(l.probing) >= l.cfg.MaxConcurrentProbes {
		l.mu.Unlock()
		return
	}
	l.probing[s.Name] = s.Epoch
	l.mu.Unlock()
	l.probes.Add(1)
	go func() {
		defer l.probes.Done()
		defer func() {
			l.mu.Lock()
			delete(l.probing, s.Name)
			l.mu.Unlock()
		}()
		l.runProbe(ctx, s.Name, s.Epoch, p, canary)
	}()
}

// lockTaken reports whether a redsync error says another holder has the
// lock, as opposed to a failure to ask (Redis unreachable, a timeout).
func lockTaken(err error) bool {
	var taken *redsync.ErrTaken
	var nodeTaken *redsync.ErrNodeTaken
	return errors.As(err, &taken) || errors.As(err, &nodeTaken)
}

// runProbe runs one canary for the half-open window epoch, if this
// coordinator wins the window's lock. The lock (a redsync mutex per
// breaker and epoch) lets one coordinator probe per window; it expires
// after the canary's timeout plus a margin, so a coordinator that dies
// mid-probe holds nobody up for long. Its random value is the fencing
// token: statestore applies only the result of the window's latest
// claimant, so a coordinator that stalled past its lock cannot overwrite
// what its successor found.
func (l *Loop) runProbe(ctx context.Context, name string, epoch int64, p statestore.Policy, canary probe.Canary) {
	expiry := canary.Timeout() + l.cfg.ProbeLockMargin
	m := l.rs.NewMutex(l.store.ProbeLockKey(name, epoch), redsync.WithExpiry(expiry), redsync.WithTries(1))
	if err := m.TryLockContext(ctx); err != nil {
		if !lockTaken(err) && ctx.Err() == nil {
			// Not someone else's window: this coordinator could not ask.
			l.log.Warn().Err(err).Str("breaker", name).Int64("epoch", epoch).Msg("probe lock: could not take the window's lock; the next tick tries again")
		}
		return
	}
	defer func() {
		if _, err := m.UnlockContext(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, redsync.ErrLockAlreadyExpired) && !lockTaken(err) {
			l.log.Warn().Err(err).Str("breaker", name).Int64("epoch", epoch).Msg("probe lock: release failed; it expires by itself")
		}
	}()
	claim, err := l.store.ProbeStart(ctx, name, p, l.cfg.ID, epoch, m.Value(), expiry)
	if err != nil {
		l.log.Warn().Err(err).Str("breaker", name).Int64("epoch", epoch).Msg("claim half-open window")
		return
	}
	if !claim.Granted {
		return // the window ended, or another prober holds it
	}
	l.logTransition(claim) // a window whose prober vanished was replaced
	epoch = claim.Epoch
	l.log.Info().Str("event", "probe_started").Str("breaker", name).Int64("epoch", epoch).Str("actor", l.cfg.ID).Msg("probe")
	r := canary.Probe(ctx)
	if ctx.Err() != nil {
		// Shutting down: no verdict. The lock expires and another
		// coordinator probes this window.
		return
	}
	l.metrics.probeDuration.WithLabelValues(name).Observe(r.Took.Seconds())
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := l.store.ProbeResult(rctx, name, p, l.cfg.ID, statestore.ProbeOutcome{
		Epoch: epoch, OK: r.OK, Error: r.Reason, RetryAfter: r.RetryAfter, Token: m.Value(),
	})
	if err != nil {
		l.log.Warn().Err(err).Str("breaker", name).Int64("epoch", epoch).Msg("record probe result; the window times out and starts again")
		return
	}
	if out.Stale {
		l.metrics.probes.WithLabelValues(name, "stale").Inc()
		l.log.Warn().Str("breaker", name).Int64("epoch", epoch).Bool("ok", r.OK).
			Msg("late probe result discarded: the window was taken over or is over")
		return
	}
	result := "failed"
	if r.OK {
		result = "succeeded"
	}
	l.metrics.probes.WithLabelValues(name, result).Inc()
	l.logTransition(out)
}
