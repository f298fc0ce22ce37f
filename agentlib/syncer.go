package agentlib

import (
	"context"
	"time"

	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// subscribeLoop applies every change the agent's feed hears: on Redis
// Cluster only the shard channels of its own breakers (Breaker adds each
// new one), elsewhere the one channel of every breaker. Messages may be
// lost around a reconnection, so every (re)subscription asks for a
// resync. It returns when the feed ends with ctx.
func (a *Agent) subscribeLoop() {
	for n := range a.feed.C() {
		switch n.Kind {
		case statestore.NoticeSubscribed:
			a.kickResync()
		case statestore.NoticeError:
			a.log.Debug().Err(n.Err).Msg("subscription error; subscribing again")
		case statestore.NoticeChange:
			s, err := report.DecodeMessage(n.Payload)
			if err != nil {
				a.log.Warn().Err(err).Msg("ignored a bad change message")
				continue
			}
			if b := a.lookup(s.Name); b != nil {
				b.apply(s, nil, false)
			}
		}
	}
}

// resyncLoop compares the mirror with Redis every ResyncInterval and
// whenever asked (a new subscription, a new breaker), in one round trip.
// It is also how the agent finds out that Redis is unreachable, and that
// it answers again.
func (a *Agent) resyncLoop(ctx context.Context) {
	ticker := time.NewTicker(a.cfg.ResyncInterval)
	defer ticker.Stop()
	a.resync(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-a.resyncKick:
		}
		a.resync(ctx)
	}
}

func (a *Agent) resync(ctx context.Context) {
	list := a.breakerList()
	names := make([]string, len(list))
	// The default policy changes rarely: read it every tenth resync, or
	// while a breaker has no policy yet.
	defaults := a.resyncs%10 == 0
	for i, b := range list {
		names[i] = b.name
		if b.view.Load().policy == nil {
			defaults = true
		}
	}
	a.resyncs++
	rctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	entries, err := a.store.ReadMirrorWith(rctx, names, statestore.MirrorRead{Defaults: defaults})
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			a.setRedis(false, err)
		}
		return
	}
	for i, e := range entries {
		list[i].resynced(e.Snapshot, e.Policy)
	}
	a.setRedis(true, nil)
}

// resynced applies what Redis holds. A newer state replaces the mirror at
// once, as a pub/sub message would. A state of the same incarnation that
// is not newer yet differs from the mirror (an older version, or the same
// version with another state) is what Redis holds after a failover or a
// restore that lost the last writes, perhaps with a write since (an
// operator's reset there takes the lost version's number again): read
// twice in a row, it replaces the mirror, so no agent stays on a state
// Redis no longer has. One such read alone may only be a read that
// crossed a newer message. (Pub/sub messages never roll the mirror back:
// an old message is only late.)
func (b *Breaker) resynced(s statestore.Snapshot, p *statestore.Policy) {
	cur := b.view.Load().snap
	if diverged(s, cur) {
		b.rollback++
		if b.rollback >= 2 {
			b.rollback = 0
			b.a.log.Warn().Str("breaker", b.name).Int64("mirror_version", cur.Version).Str("mirror_state", cur.Effective()).
				Int64("redis_version", s.Version).Str("redis_state", s.Effective()).
				Msg("Redis holds another state than this agent mirrored at the same or a lower version (a failover or restore lost writes): following Redis")
			b.apply(s, p, true)
			return
		}
		b.apply(cur, p, false) // the policy may still be news
		return
	}
	b.rollback = 0
	b.apply(s, p, false)
}

// diverged reports whether Redis's state s of the mirror's incarnation is
// behind the mirror's cur or beside it: a lower version, or the same
// version with another state, override or half-open window.
func diverged(s, cur statestore.Snapshot) bool {
	if s.Gen != cur.Gen {
		return false
	}
	if s.Version != cur.Version {
		return s.Version < cur.Version
	}
	return s.State != cur.State || s.Override != cur.Override || s.Epoch != cur.Epoch
}
