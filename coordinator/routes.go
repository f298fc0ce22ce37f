package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// maxRoutesPerFlush bounds the distinct routes one coordinator gathers
// per AggregateInterval; the rest of that interval's are dropped (and
// logged once per interval): agents' tokens could name routes without
// end.
const maxRoutesPerFlush = 256

// routeCounts gathers what agents' routes served (reports' routes), so
// a fleet's route counts cost one pipelined write per AggregateInterval
// per coordinator. Safe for concurrent use.
type routeCounts struct {
	mu      sync.Mutex
	pending map[string]*statestore.RouteCount // guarded by mu
	dropped int64                             // guarded by mu
}

// add gathers rs, within the bound.
func (c *routeCounts) add(rs []report.Route) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[string]*statestore.RouteCount{}
	}
	for _, r := range rs {
		p := c.pending[r.Name]
		if p == nil {
			if len(c.pending) >= maxRoutesPerFlush {
				c.dropped += r.Served
				continue
			}
			p = &statestore.RouteCount{Route: r.Name}
			c.pending[r.Name] = p
		}
		p.Served += r.Served
		p.Fallback += r.Fallback
	}
}

func (c *routeCounts) take() ([]statestore.RouteCount, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]statestore.RouteCount, 0, len(c.pending))
	for _, p := range c.pending {
		out = append(out, *p)
	}
	dropped := c.dropped
	c.pending, c.dropped = nil, 0
	return out, dropped
}

// countRoutes takes a report's route counts: gathered while aggregating,
// written at once otherwise.
func (s *Service) countRoutes(ctx context.Context, agent string, rs []report.Route, now time.Time) {
	if len(rs) == 0 {
		return
	}
	if s.aggregating.Load() {
		s.served.add(rs)
		return
	}
	counts := make([]statestore.RouteCount, len(rs))
	for i, r := range rs {
		counts[i] = statestore.RouteCount{Route: r.Name, Served: r.Served, Fallback: r.Fallback}
	}
	if err := s.store.CountRoutes(ctx, now, counts); err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Str("agent", agent).Msg("count routes; they are dropped")
	}
}

// flushRoutes writes the gathered route counts into the current second.
func (s *Service) flushRoutes(ctx context.Context) {
	counts, dropped := s.served.take()
	if dropped > 0 {
		s.log.Warn().Int64("served", dropped).Int("max_routes", maxRoutesPerFlush).
			Msg("route counts dropped: more distinct routes than a coordinator gathers per interval")
	}
	if err := s.store.CountRoutes(ctx, time.Now(), counts); err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Int("routes", len(counts)).Msg("count routes; they are dropped")
	}
}

// Routes returns what the agents' routes served per second over the
// last statestore.RateSeconds, by this coordinator's clock.
func (s *Service) Routes(ctx context.Context) ([]statestore.RouteRates, error) {
	return s.store.Routes(ctx, time.Now())
}
