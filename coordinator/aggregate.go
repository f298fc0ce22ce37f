package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// successes gathers the success-only parts of agents' reports, per
// breaker and the state they were allowed under, so that a healthy fleet
// costs one script call per breaker per AggregateInterval per
// coordinator, whatever its size. A part with anything else in it (a
// failure, a hung call, a Retry-After, a probe verdict) is applied at
// once, as before. Aggregated successes skip the repeat check: a success
// counted twice resets a consecutive count the same success already
// reset, and adds one call to a rate window; the answer says
// "aggregated".
type successes struct {
	mu      sync.Mutex
	pending map[successKey]*successBatch // guarded by mu
}

type successKey struct {
	name    string
	fenced  bool
	gen     string
	version int64
}

type successBatch struct {
	ok, slow int64
	lastOK   time.Time // when the newest success happened, by this clock
	agents   map[string]struct{}
}

// successOnly reports whether a part holds successes and nothing else.
func successOnly(b report.Breaker) bool {
	return b.OK > 0 && b.Fail == 0 && (b.Hung == nil || b.Hung.N == 0) && b.Probe == nil && b.RetryAfterMS == 0 && b.Misconfigured == 0
}

func (s *successes) add(agent string, b report.Breaker, now time.Time) {
	k := successKey{name: b.Name, gen: b.Gen}
	if b.Version != nil {
		k.fenced, k.version = true, *b.Version
	}
	at := now.Add(-time.Duration(b.LastOKAgeMS) * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[successKey]*successBatch{}
	}
	p := s.pending[k]
	if p == nil {
		p = &successBatch{agents: map[string]struct{}{}}
		s.pending[k] = p
	}
	p.ok += b.OK
	p.slow += b.Slow
	if at.After(p.lastOK) {
		p.lastOK = at
	}
	if len(p.agents) < 1000 {
		p.agents[agent] = struct{}{}
	}
}

func (s *successes) take() map[successKey]*successBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.pending
	s.pending = nil
	return out
}

// flushSuccesses applies the gathered successes (and writes the gathered
// route counts) every AggregateInterval until ctx ends, and once more
// then.
func (s *Service) flushSuccesses(ctx context.Context) {
	t := time.NewTicker(s.cfg.AggregateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			s.applySuccesses(fctx)
			s.flushRoutes(fctx)
			cancel()
			return
		case <-t.C:
			s.applySuccesses(ctx)
			s.flushRoutes(ctx)
		}
	}
}

func (s *Service) applySuccesses(ctx context.Context) {
	now := time.Now()
	for k, p := range s.succ.take() {
		b := statestore.Batch{Fenced: k.fenced, Gen: k.gen, Version: k.version, OK: p.ok, Slow: p.slow, LastOKAge: max(now.Sub(p.lastOK), 0)}
		res, err := s.store.Report(ctx, k.name, s.policies.Policy(k.name), s.cfg.ID, b)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn().Err(err).Str("breaker", k.name).Int64("ok", p.ok).Msg("apply aggregated successes; they are dropped")
			}
			continue
		}
		s.metrics.parts.WithLabelValues(string(res.Applied)).Add(float64(len(p.agents)))
		if res.Applied == statestore.AppliedOK {
			s.metrics.outcomes.WithLabelValues("ok").Add(float64(p.ok))
			s.metrics.outcomes.WithLabelValues("slow").Add(float64(p.slow))
		}
		s.logTransition(res)
	}
}
