package coordinator

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"

	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// Loop is a coordinator's control loop: the timer that moves due
// breakers on, the canaries of half-open ones, the watch of the change
// channel, and the retention expiry. Run it once; its other methods are
// Run's own.
type Loop struct {
	*base
	rs     *redsync.Redsync
	probes sync.WaitGroup // running canaries

	mu      sync.Mutex
	probing map[string]int64 // guarded by mu; breaker -> epoch this process is probing
	heard   map[string]bool  // guarded by mu; names whose change the watch heard since the last tick: true when due
	wake    chan struct{}    // one pending wake-up for the timer
}

func newLoop(b *base) *Loop {
	return &Loop{
		base: b, rs: redsync.New(goredis.NewPool(b.store.Client())),
		probing: map[string]int64{}, heard: map[string]bool{}, wake: make(chan struct{}, 1),
	}
}

// due reports whether a breaker in state s needs the timer: open,
// half-open or overridden. Closed ones have nothing to time.
func due(s statestore.Snapshot) bool {
	return s.State != statestore.StateClosed || s.Override != statestore.OverrideNone
}

// Run moves due breakers on every TickInterval, probes half-open ones
// with their canaries and expires forgotten ones, until ctx ends. Each
// tick reads the breakers the change channel or the last tick said are
// due (open, half-open, overridden); every RegistryRefresh it re-reads
// the registry and checks every breaker, which covers lost messages.
// Redis errors are logged and retried on the next tick. Run returns nil
// on cancellation, after its watch and its canaries have returned.
func (l *Loop) Run(ctx context.Context) error {
	var watch sync.WaitGroup
	defer watch.Wait()
	defer l.probes.Wait()
	if err := l.store.Register(ctx, l.policies.Names()...); err != nil && ctx.Err() == nil {
		l.log.Warn().Err(err).Msg("register configured breakers")
	}
	// Every transition is published: a breaker that moves anywhere in the
	// cluster is on this coordinator's list within milliseconds, whoever
	// moved it. On Redis Cluster the feed follows each breaker's shard
	// channel: the configured and registered ones (below), and each new
	// one from its registration on.
	feed := l.store.Follow(ctx, statestore.FollowOptions{Names: l.policies.Names(), Registry: true})
	defer feed.Close()
	watch.Add(1)
	go func() { defer watch.Done(); l.watch(ctx, feed) }()
	ticker := time.NewTicker(l.cfg.TickInterval)
	defer ticker.Stop()
	var all []string            // every breaker this loop knows, sorted
	active := map[string]bool{} // the due ones
	absent := map[string]bool{} // followed, but not in the last registry read
	var refreshed, swept time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
			all = l.takeHeard(all, active)
			continue
		case <-ticker.C:
		}
		all = l.takeHeard(all, active)
		check := slices.Sorted(mapKeys(active))
		began, refreshing := time.Now(), false
		if all == nil || time.Since(refreshed) >= l.cfg.RegistryRefresh {
			refreshing = true
			if n, err := l.names(ctx); err == nil {
				for name := range active {
					n = append(n, name)
				}
				slices.Sort(n)
				l.refollow(feed, all, n, absent)
				all = slices.Compact(n)
				refreshed, check = time.Now(), all
			} else if ctx.Err() == nil {
				l.log.Warn().Err(err).Msg("read breaker registry")
			}
			if err := l.publishPolicies(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn().Err(err).Msg("publish policies")
			}
		}
		if err := l.tick(ctx, check, active); err != nil && ctx.Err() == nil {
			l.log.Warn().Err(err).Msg("tick")
		}
		if refreshing {
			l.metrics.refresh.Observe(time.Since(began).Seconds())
		} else {
			l.metrics.tick.Observe(time.Since(began).Seconds())
		}
		if l.cfg.Retention > 0 && time.Since(swept) >= l.cfg.RetentionSweep {
			swept = time.Now()
			if err := l.expire(ctx, all); err != nil && ctx.Err() == nil {
				l.log.Warn().Err(err).Msg("retention expiry")
			}
		}
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// takeHeard merges what the watch heard into the loop's lists.
func (l *Loop) takeHeard(all []string, active map[string]bool) []string {
	l.mu.Lock()
	heard := l.heard
	l.heard = map[string]bool{}
	l.mu.Unlock()
	for n, isDue := range heard {
		if i, found := slices.BinarySearch(all, n); !found {
			all = slices.Insert(all, i, n)
		}
		if isDue {
			active[n] = true
		}
	}
	return all
}

// refollow makes the feed follow every breaker of a fresh registry read
// (next, sorted), and stop following one missing from two reads in a
// row (deleted or expired: one read may just predate its registration).
func (l *Loop) refollow(feed *statestore.Feed, prev, next []string, absent map[string]bool) {
	feed.Add(next...)
	for _, n := range prev {
		if _, found := slices.BinarySearch(next, n); found {
			delete(absent, n)
			continue
		}
		if absent[n] {
			delete(absent, n)
			feed.Remove(n)
			continue
		}
		absent[n] = true
	}
}

// publishPolicies writes the configured policies where agents read them,
// before any outcome is reported: an agent must know a breaker's
// hang_after before its first call hangs.
func (l *Loop) publishPolicies(ctx context.Context) error {
	if err := l.store.SetDefaultPolicy(ctx, l.policies.DefaultPolicy()); err != nil {
		return err
	}
	for _, n := range l.policies.Names() {
		if err := l.store.SeedPolicy(ctx, n, l.policies.Policy(n)); err != nil {
			return err
		}
	}
	return nil
}

// watch hears every change the feed brings: it hands the event to the
// hub at once and notes the breaker for the timer, never waiting for it,
// so a slow tick never holds up the event stream. On a sharded feed it
// also follows each breaker registered anywhere, and once Redis confirms
// that subscription it reads the journal of the moments before it, so
// the hub misses no event of a new breaker (its first transitions often
// come before any coordinator could subscribe). It returns when the feed
// ends with ctx.
func (l *Loop) watch(ctx context.Context, feed *statestore.Feed) {
	last := map[string]statestore.EventCursor{} // the newest event handed to the hub, per breaker
	pending := map[string]time.Time{}           // registered, subscription not confirmed yet: when
	confirmed := map[string]bool{}              // Redis confirmed the feed's subscription
	toHub := func(e statestore.Event) {
		cur := statestore.CursorOf(e)
		if prev, ok := last[e.Breaker]; ok && cur.Compare(prev) <= 0 {
			return // the journal's backfill gave it already
		}
		last[e.Breaker] = cur
		if e.Event == "deleted" || e.Event == "expired" {
			delete(last, e.Breaker) // its journal starts again
		}
		l.hub.publish(e)
	}
	for n := range feed.C() {
		switch n.Kind {
		case statestore.NoticeChange:
			ch, err := report.DecodeChange(n.Payload)
			if err != nil {
				l.log.Debug().Err(err).Msg("ignored a bad change message")
				continue
			}
			if ch.Event != nil {
				toHub(statestore.EventOf(ch.Event))
			}
			l.hear(ch.Name, due(ch.Snapshot))
		case statestore.NoticeRegistered:
			for _, name := range n.Names {
				if feed.Follows(name) && confirmed[name] {
					l.backfill(ctx, name, n.At, toHub)
				} else {
					delete(confirmed, name)
					pending[name] = n.At
					feed.Add(name)
				}
				l.hear(name, true) // the next tick reads it
			}
			for name, at := range pending {
				if time.Since(at) > time.Minute {
					delete(pending, name) // never confirmed: the registry read covers it
				}
			}
		case statestore.NoticeSubscribed:
			for _, name := range n.Names {
				confirmed[name] = true
				if at, ok := pending[name]; ok {
					delete(pending, name)
					l.backfill(ctx, name, at, toHub)
				}
			}
		case statestore.NoticeError:
			l.log.Debug().Err(n.Err).Msg("change feed error; subscribing again")
		}
	}
}

// backfill hands the hub the journal of a breaker registered at at, from
// a few seconds before (the nodes' clocks may differ): its first events
// may precede this coordinator's subscription to it.
func (l *Loop) backfill(ctx context.Context, name string, at time.Time, toHub func(statestore.Event)) {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	from := statestore.EventCursor{ID: strconv.FormatInt(at.Add(-5*time.Second).UnixMilli(), 10) + "-0"}
	evs, err := l.store.EventsSince(rctx, []string{name}, from, 1000)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn().Err(err).Str("breaker", name).Msg("read a new breaker's first events")
		}
		return
	}
	for _, e := range evs {
		toHub(e)
		l.hear(name, true)
	}
}

// hear notes a breaker for the timer and wakes it.
func (l *Loop) hear(name string, isDue bool) {
	l.mu.Lock()
	l.heard[name] = l.heard[name] || isDue
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// tick runs the tick script on every breaker of names that is due (open,
// half-open or overridden) and keeps active up to date. Closed breakers
// cost one pipelined read.
func (l *Loop) tick(ctx context.Context, names []string, active map[string]bool) error {
	if len(names) == 0 {
		return nil
	}
	snaps, err := l.store.Snapshots(ctx, names)
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if !due(s) {
			delete(active, s.Name)
			continue
		}
		active[s.Name] = true
		p := l.policies.Policy(s.Name)
		res, err := l.store.Tick(ctx, s.Name, p, l.cfg.ID)
		if err != nil {
			return err
		}
		l.logTransition(res)
		if !due(res.Snapshot) {
			delete(active, s.Name)
		}
		l.maybeProbe(ctx, res.Snapshot, p)
	}
	return nil
}

// expire forgets the breakers of names that no agent reported and
// nothing changed for the retention (statestore.Store.Expire), except
// configured ones. The cheap read picks the candidates by this
// process's clock; the script decides by Redis's.
func (l *Loop) expire(ctx context.Context, names []string) error {
	var candidates []string
	for _, n := range names {
		if !l.configured(n) {
			candidates = append(candidates, n)
		}
	}
	cutoff := time.Now().Add(-l.cfg.Retention)
	for chunk := range slices.Chunk(candidates, 500) {
		ds, err := l.store.Details(ctx, chunk)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Override != statestore.OverrideNone || d.SeenAt.After(cutoff) || d.ChangedAt.After(cutoff) {
				continue
			}
			res, err := l.store.Expire(ctx, d.Name, l.policies.Policy(d.Name), l.cfg.ID, l.cfg.Retention)
			if err != nil {
				return err
			}
			if res.Gone {
				l.known.forget(d.Name)
				l.logTransition(res)
				if res.Transition == nil {
					l.log.Info().Str("breaker", d.Name).Msg("forgot a registered breaker with no state")
				}
			}
		}
	}
	return nil
}
