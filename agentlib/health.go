package agentlib

import (
	"sync"
	"time"
)

// health tracks whether Redis and the coordinator answer; the agent is
// degraded when either does not.
type health struct {
	mu      sync.Mutex
	redisOK bool // guarded by mu
	coordOK bool // guarded by mu
}

// setRedis records a resync or subscription result.
func (a *Agent) setRedis(ok bool, err error) { a.setHealth(&ok, nil, err) }

// setCoordinator records a report result.
func (a *Agent) setCoordinator(ok bool, err error) { a.setHealth(nil, &ok, err) }

func (a *Agent) setHealth(redisOK, coordOK *bool, cause error) {
	a.health.mu.Lock()
	defer a.health.mu.Unlock()
	if redisOK != nil {
		a.health.redisOK = *redisOK
	}
	if coordOK != nil {
		a.health.coordOK = *coordOK
	}
	degraded := !a.health.redisOK || !a.health.coordOK
	if degraded == a.degraded.Load() {
		return
	}
	now := a.clock.Now()
	if degraded {
		for _, b := range a.breakerList() {
			b.enterDegraded(now)
		}
		a.degraded.Store(true)
		a.log.Warn().Err(cause).Bool("redis_ok", a.health.redisOK).Bool("coordinator_ok", a.health.coordOK).
			Msg("degraded: deciding on local breakers until Redis and the coordinator answer again")
		return
	}
	// Leaving: the mirror was just resynced (Redis answered) or kept
	// current by pub/sub (only the coordinator was away). Outcomes counted
	// meanwhile were the local breakers' business: drop them.
	for _, b := range a.breakerList() {
		b.resetCounters()
	}
	a.degraded.Store(false)
	a.log.Info().Msg("left degraded mode: deciding on the cluster state again")
}

// since is a small helper for durations on the agent's clock.
func (a *Agent) since(t time.Time) time.Duration { return a.clock.Now().Sub(t) }
