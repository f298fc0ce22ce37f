package agentlib

import "sync"

// linkDownAfter is how many failures in a row take a link down: one
// failed resync or report must not flip modes (and reset counters).
const linkDownAfter = 2

// health tracks the agent's two links: Redis (the mirror: pub/sub and
// resync) and the coordinators (reports). The agent is degraded when
// either is down, and decides differently for each:
//
//   - only the coordinators are away: the mirror still follows Redis, so
//     its denials stand; a local breaker per name adds strictness, since
//     this agent's failures cannot reach the cluster;
//   - Redis is away: the mirror is stale; a local breaker per name,
//     seeded from the last mirrored state, decides.
type health struct {
	mu         sync.Mutex
	redisOK    bool // guarded by mu
	coordOK    bool // guarded by mu
	redisFails int  // guarded by mu; failures in a row
	coordFails int  // guarded by mu; failures in a row
}

// Links reports whether each of the agent's links is up: the mirror's
// (Redis) and the reports' (the coordinators).
func (a *Agent) Links() (redisOK, coordinatorOK bool) {
	a.health.mu.Lock()
	defer a.health.mu.Unlock()
	return a.health.redisOK, a.health.coordOK
}

// setRedis records a resync result.
func (a *Agent) setRedis(ok bool, err error) { a.setHealth(true, ok, false, err) }

// setCoordinator records a report result; refused (a 401/403) takes the
// link down at once.
func (a *Agent) setCoordinator(ok, refused bool, err error) { a.setHealth(false, ok, refused, err) }

func (a *Agent) setHealth(redis, ok, now bool, cause error) {
	h := &a.health
	h.mu.Lock()
	defer h.mu.Unlock()
	link, fails, name := &h.coordOK, &h.coordFails, "coordinator"
	if redis {
		link, fails, name = &h.redisOK, &h.redisFails, "redis"
	}
	if ok {
		*fails = 0
		*link = true
	} else {
		*fails++
		if now || *fails >= linkDownAfter {
			if *link {
				// Name what is unreachable: the Redis URL or the
				// coordinators, never their credentials.
				ev := a.log.Warn().Err(cause).Str("link", name)
				if redis {
					ev = ev.Str("redis", a.redisAddr)
				} else {
					ev = ev.Str("coordinators", a.coordsLog)
				}
				ev.Msg("link down: " + name + " unreachable")
			}
			*link = false
		}
	}
	a.applyMode(h.redisOK, h.coordOK)
}

// mode is how the agent decides.
type mode uint8

const (
	modeNormal    mode = iota // the cluster decides
	modeCoordDown             // mirror denials stand; local breakers add strictness
	modeRedisDown             // local breakers, seeded from the last mirror, decide
)

// applyMode switches modes when the links changed it. Caller holds
// health.mu.
func (a *Agent) applyMode(redisOK, coordOK bool) {
	m := modeNormal
	switch {
	case !redisOK:
		m = modeRedisDown
	case !coordOK:
		m = modeCoordDown
	}
	if m == a.mode {
		return
	}
	prev := a.mode
	a.mode = m
	now := a.clock.Now()
	if m == modeNormal {
		// Leaving: the mirror was just resynced (Redis answered) or kept
		// current by pub/sub (only the coordinator was away). Outcomes
		// counted meanwhile were the local breakers' business: drop them.
		for _, b := range a.breakerList() {
			b.resetCounters()
		}
		a.mirrorLive.Store(true)
		a.degraded.Store(false)
		a.log.Info().Msg("left degraded mode: deciding on the cluster state again")
		return
	}
	for _, b := range a.breakerList() {
		b.enterDegraded(now, m == modeRedisDown)
	}
	a.mirrorLive.Store(m == modeCoordDown)
	a.degraded.Store(true)
	if prev == modeNormal {
		a.log.Warn().Bool("redis_ok", redisOK).Bool("coordinator_ok", coordOK).
			Msg("degraded: deciding on local breakers until Redis and the coordinator answer again")
	}
}
