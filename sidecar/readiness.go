package sidecar

import (
	"context"
	"time"
)

// readyTimeout bounds the Redis check of /readyz: the answer comes within
// it whatever Redis does.
const readyTimeout = 500 * time.Millisecond

// Link states in /readyz.
const (
	linkUp      = "up"
	linkDown    = "down"
	linkUnknown = "unknown" // the agent says one link is down, not which
)

// readinessBody is /readyz's answer.
type readinessBody struct {
	Status   string `json:"status"` // always "ready": degraded still serves
	Degraded bool   `json:"degraded"`
	// Links: "redis" and "coordinator", each up, down or unknown.
	Links map[string]string `json:"links"`
	// Down names the links known to be down.
	Down []string `json:"down"`
}

// linkReporter is agentlib's per-link view, where the agentlib in use
// has it (Agent.Links); without it only Degraded is known.
type linkReporter interface {
	Links() (redisOK, coordinatorOK bool)
}

// readiness says which of the sidecar's links answer. Redis is asked
// directly (PING, within readyTimeout) and is down when that fails or
// the agent says so. The coordinator's link is the agent's view; when
// the agent tells only whether it is degraded (Redis or the coordinator
// failed it), it is inferred: degraded while Redis answers means the
// coordinator is down, and with Redis down too it is unknown.
func (s *Server) readiness(ctx context.Context) readinessBody {
	degraded := s.agent.Degraded()
	redisState := linkUnknown
	if s.cache != nil {
		redisState = linkUp
		if err := pingWithin(ctx, s.cache, readyTimeout); err != nil {
			redisState = linkDown
		}
	} else if !degraded {
		redisState = linkUp
	}
	coordState := linkUp
	if lr, ok := any(s.agent).(linkReporter); ok {
		redisOK, coordOK := lr.Links()
		if !redisOK {
			redisState = linkDown
		}
		if !coordOK {
			coordState = linkDown
		}
	} else if degraded {
		coordState = linkUnknown
		if redisState == linkUp {
			coordState = linkDown
		}
	}
	b := readinessBody{Status: "ready", Degraded: degraded,
		Links: map[string]string{"redis": redisState, "coordinator": coordState}, Down: []string{}}
	for _, name := range []string{"redis", "coordinator"} {
		if b.Links[name] == linkDown {
			b.Down = append(b.Down, name)
		}
	}
	return b
}

// pingWithin PINGs the cache's Redis and gives up after d, even when the
// client would wait longer.
func pingWithin(ctx context.Context, c *cache, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- c.rdb.Ping(ctx).Err() }()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
