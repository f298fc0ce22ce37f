package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// Service is the request-scoped work behind the API: ingest, permits,
// admin actions and reads. It is safe for concurrent use; each method is
// one request's work and keeps nothing but caches between calls.
type Service struct {
	*base

	mu    sync.Mutex
	beats map[string]beat // guarded by mu; each agent's last heartbeat written

	// succ gathers success-only parts while aggregating (Coordinator.Run
	// applies them every AggregateInterval).
	succ        successes
	aggregating atomic.Bool
	// served gathers reports' route counts while aggregating, written
	// with the successes.
	served routeCounts
}

// Ingest applies one agent's report and returns the current state of the
// breakers it names, with what was done with each part. New breaker
// names are registered first, within Config.Limits: past a limit the
// report is refused whole with a *statestore.LimitError and nothing is
// applied. It returns an error wrapping statestore.ErrUnavailable when
// Redis cannot be reached; each breaker's part is applied whole or not at
// all, and the parts applied before the failure stay applied: the agent
// resends the same report, whose applied parts are then recognised as
// repeats.
func (s *Service) Ingest(ctx context.Context, v report.Valid) ([]report.Answer, error) {
	r := v.Report()
	if err := s.register(ctx, r.Agent, r.Breakers); err != nil {
		if errors.Is(err, statestore.ErrLimit) {
			s.metrics.refused.Inc()
			s.log.Warn().Err(err).Str("agent", r.Agent).Msg("report refused: registration limit")
		}
		return nil, err
	}
	s.metrics.reports.Inc()
	if r.Agent != "" {
		s.heartbeat(ctx, r)
	}
	out := make([]report.Answer, 0, len(r.Breakers))
	now := time.Now()
	for _, b := range r.Breakers {
		if s.aggregating.Load() && successOnly(b) {
			// Applied with every agent's successes for this breaker in
			// the next interval; no state to answer with yet.
			s.succ.add(r.Agent, b, now)
			continue
		}
		res, err := s.store.Report(ctx, b.Name, s.policies.Policy(b.Name), r.Agent, batchOf(r, b))
		if err != nil {
			return nil, fmt.Errorf("coordinator: report for %s: %w", b.Name, err)
		}
		s.metrics.parts.WithLabelValues(string(res.Applied)).Inc()
		if res.Applied == statestore.AppliedOK {
			s.metrics.outcomes.WithLabelValues("ok").Add(float64(b.OK))
			s.metrics.outcomes.WithLabelValues("fail").Add(float64(b.Fail))
			s.metrics.outcomes.WithLabelValues("slow").Add(float64(b.Slow))
			if b.Hung != nil {
				s.metrics.outcomes.WithLabelValues("hung").Add(float64(b.Hung.N))
			}
		}
		if res.Probe == statestore.ProbeRefused {
			s.log.Warn().Str("breaker", b.Name).Str("agent", r.Agent).Int64("epoch", b.Probe.Epoch).
				Msg("refused a probe verdict: not the current window, or not from the holder of its permit")
		}
		if res.LocalOpen > 0 {
			s.log.Info().Str("breaker", b.Name).Str("agent", r.Agent).Dur("open_for", res.LocalOpen).
				Msg("local trip: too few agents failing for a cluster-wide trip")
		}
		s.logTransition(res)
		if res.Transition != nil {
			// Re-register on every transition: the registry may have been
			// lost with Redis's data while this process remembered it.
			_ = s.store.Register(ctx, b.Name)
		}
		out = append(out, report.Answer{Snapshot: res.Snapshot, Applied: res.Applied, Probe: res.Probe, LocalOpenMS: res.LocalOpen.Milliseconds()})
	}
	// Routes count once every part is applied: a report that failed half
	// way is resent whole, to this coordinator or the next.
	s.countRoutes(ctx, r.Agent, r.Routes, now)
	return out, nil
}

// batchOf converts one breaker's part of a report to the store's batch.
func batchOf(r report.Report, b report.Breaker) statestore.Batch {
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
	out := statestore.Batch{
		Boot: r.Boot, Seq: r.Seq, Gen: b.Gen,
		OK: b.OK, Fail: b.Fail, TrailingFail: b.TrailingFail, Slow: b.Slow,
		LastOKAge:     ms(b.LastOKAgeMS),
		Misconfigured: b.Misconfigured,
		RetryAfter:    ms(b.RetryAfterMS),
		LastError:     b.LastError,
	}
	if b.Version != nil {
		out.Fenced, out.Version = true, *b.Version
	}
	if h := b.Hung; h != nil {
		out.Hung, out.HungWaiting, out.HungOldest = h.N, h.Waiting, ms(h.OldestMS)
	}
	if p := b.Probe; p != nil {
		out.Probe = &statestore.ProbeOutcome{
			Gen: p.Gen, Epoch: p.Epoch, OK: p.OK, Error: p.Error,
			RetryAfter: ms(p.RetryAfterMS), Nonce: p.Nonce, Release: p.Release,
		}
	}
	return out
}

// Permit asks for the one probe permit of a traffic-mode half-open
// window on the agent's behalf (statestore.Store.AcquirePermit), so that
// agents need no Redis write access. req is as report.DecodePermit
// returns it: validated (the store still refuses a bad name or an empty
// nonce before any I/O).
func (s *Service) Permit(ctx context.Context, req report.PermitRequest) (report.PermitAnswer, error) {
	res, err := s.store.AcquirePermit(ctx, req.Breaker, s.policies.Policy(req.Breaker), req.Agent, req.Gen, req.Epoch, req.Nonce)
	if err != nil {
		return report.PermitAnswer{}, err
	}
	if res.Granted {
		s.log.Info().Str("breaker", req.Breaker).Str("agent", req.Agent).Int64("epoch", req.Epoch).Msg("half-open permit granted")
	}
	return report.PermitAnswer{Granted: res.Granted, State: res.Snapshot}, nil
}

// heartbeat records the agent as seen, with its service, at most once per
// HeartbeatInterval per agent, and at once when its degraded flag or its
// service changed.
func (s *Service) heartbeat(ctx context.Context, r report.Report) {
	now := time.Now()
	s.mu.Lock()
	last, ok := s.beats[r.Agent]
	if ok && last.degraded == r.Degraded && last.service == r.Service && now.Sub(last.at) < s.cfg.HeartbeatInterval {
		s.mu.Unlock()
		return
	}
	if len(s.beats) > 100_000 {
		clear(s.beats) // a flood of agent ids: start over rather than grow
	}
	s.beats[r.Agent] = beat{at: now, degraded: r.Degraded, service: r.Service}
	s.mu.Unlock()
	if err := s.store.HeartbeatOf(ctx, statestore.AgentInfo{ID: r.Agent, Service: r.Service, LastSeen: now, Degraded: r.Degraded}); err != nil {
		s.log.Debug().Err(err).Str("agent", r.Agent).Msg("record heartbeat")
	}
}

// beat is the last heartbeat written for an agent.
type beat struct {
	at       time.Time
	degraded bool
	service  string
}

// register registers the report's breakers this process does not know
// as registered, within the limits. Configured names are the config's:
// registered uncounted.
func (s *Service) register(ctx context.Context, agent string, bs []report.Breaker) error {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}
	fresh := s.known.missing(names, s.cfg.RegistryRefresh)
	if len(fresh) == 0 {
		return nil
	}
	var mine, theirs []string
	for _, n := range fresh {
		if s.configured(n) {
			theirs = append(theirs, n)
		} else {
			mine = append(mine, n)
		}
	}
	if err := s.store.Register(ctx, theirs...); err != nil {
		return fmt.Errorf("coordinator: register breakers: %w", err)
	}
	if err := s.store.RegisterFor(ctx, agent, s.cfg.Limits, mine...); err != nil {
		return fmt.Errorf("coordinator: register breakers: %w", err)
	}
	s.noteRegistered(fresh...)
	return nil
}

// Ready reports whether Redis answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }
