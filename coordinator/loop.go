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

	mu       sync.Mutex
	probing  map[string]int64   // guarded by mu; breaker -> epoch this process is probing
	heard    map[string]heardAs // guarded by mu; names the watch heard of since the last tick
	checkAll bool               // guarded by mu; the change channel was subscribed again: check every breaker
	wake     chan struct{}      // one pending wake-up for the timer
}

func newLoop(b *base) *Loop {
	return &Loop{
		base: b, rs: redsync.New(goredis.NewPool(b.store.Client())),
		probing: map[string]int64{}, heard: map[string]heardAs{}, wake: make(chan struct{}, 1),
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
// due (open, half-open, overridden). Every RegistryRefresh it reads what
// changed in the registry since the last refresh (its log: O(1) while
// nothing changes) and checks the breakers that came, plus up to
// checkPerRefresh others in turn: the net under lost messages, a bounded
// cost whatever the registry's size. It checks every breaker at start,
// when the registry must be read whole, and when the change channel was
// subscribed again (messages may have been lost). Redis errors are
// logged and retried on the next tick. Run returns nil on cancellation,
// after its watch and its canaries have returned.
func (l *Loop) Run(ctx context.Context) error {
	var watch sync.WaitGroup
	defer watch.Wait()
	defer l.probes.Wait()
	if err := l.store.Register(ctx, l.policies.Names()...); err != nil && ctx.Err() == nil {
		l.log.Warn().Err(err).Str("dependency", "redis").Msg("redis: registering the configured breakers failed")
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
	k := &knownBreakers{active: map[string]bool{}, snaps: map[string]statestore.Snapshot{}, absent: map[string]bool{}}
	var refreshed, swept time.Time
	checkAll := false // every breaker is to be checked at the next tick
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
			checkAll = l.takeHeard(k) || checkAll
			continue
		case <-ticker.C:
		}
		checkAll = l.takeHeard(k) || checkAll
		check := slices.Sorted(mapKeys(k.active))
		began, refreshing := time.Now(), false
		if !k.loaded || time.Since(refreshed) >= l.cfg.RegistryRefresh {
			refreshing = true
			if more, all, err := l.refresh(ctx, feed, k); err == nil {
				refreshed = time.Now()
				check = append(check, more...)
				checkAll = checkAll || all
			} else if ctx.Err() == nil {
				l.log.Warn().Err(err).Str("dependency", "redis").Msg("redis: reading the breaker registry failed; again at the next tick")
			}
			if err := l.publishPolicies(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn().Err(err).Str("dependency", "redis").Msg("redis: publishing the policies failed; again at the next refresh")
			}
		}
		if checkAll && k.loaded {
			check = k.all
		} else {
			slices.Sort(check)
			check = slices.Compact(check)
		}
		if err := l.tick(ctx, check, k); err != nil {
			if ctx.Err() == nil {
				l.log.Warn().Err(err).Str("dependency", "redis").Msg("redis: the tick failed; again at the next one")
			}
		} else if k.loaded {
			checkAll = false
		}
		if refreshing {
			l.metrics.refresh.Observe(time.Since(began).Seconds())
		} else {
			l.metrics.tick.Observe(time.Since(began).Seconds())
		}
		if k.loaded {
			l.view.set(k.all, k.snaps)
		}
		if l.cfg.Retention > 0 && time.Since(swept) >= l.cfg.RetentionSweep {
			swept = time.Now()
			if err := l.expire(ctx, k); err != nil && ctx.Err() == nil {
				l.log.Warn().Err(err).Str("dependency", "redis").Msg("redis: the retention expiry failed; again at the next sweep")
			}
		}
	}
}

// checkPerRefresh bounds the breakers a registry refresh checks besides
// the due and the new ones, in turn: at 10,000 breakers every one is
// checked every 100 s (20 refreshes).
const checkPerRefresh = 500

// expirePerSweep bounds the breakers a retention sweep reads, in turn: at
// 10,000 breakers every one is looked at every 10 sweeps (10 minutes).
const expirePerSweep = 1000

// knownBreakers is the Loop's picture of the registry. Only the Loop's
// goroutine touches it.
type knownBreakers struct {
	all    []string                       // every breaker the loop knows, sorted; copied on write (the view shares it)
	active map[string]bool                // the due ones
	snaps  map[string]statestore.Snapshot // the due ones' states, as the last tick read them
	absent map[string]bool                // followed, but not in the last whole read of the registry
	cursor statestore.RegistryCursor      // where the registry's log was read up to
	loaded bool                           // the registry was read whole once

	checkFrom, expireFrom string // where the rolling check and the expiry stopped in all
}

// add puts names in all: a new list when any is missing from it.
func (k *knownBreakers) add(names ...string) {
	var missing []string
	for _, n := range names {
		if _, found := slices.BinarySearch(k.all, n); !found {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	merged := make([]string, 0, len(k.all)+len(missing))
	merged = append(merged, k.all...)
	merged = append(merged, missing...)
	slices.Sort(merged)
	k.all = slices.Compact(merged)
}

// remove takes names out of all: a new list when any is in it.
func (k *knownBreakers) remove(names ...string) {
	gone := map[string]bool{}
	for _, n := range names {
		if _, found := slices.BinarySearch(k.all, n); found {
			gone[n] = true
		}
	}
	if len(gone) == 0 {
		return
	}
	kept := make([]string, 0, len(k.all)-len(gone))
	for _, n := range k.all {
		if !gone[n] {
			kept = append(kept, n)
		}
	}
	k.all = kept
}

// next returns up to n names of all after *from, in turn: from the start
// again after the last.
func (k *knownBreakers) next(from *string, n int) []string {
	if n >= len(k.all) {
		return k.all
	}
	i, found := slices.BinarySearch(k.all, *from)
	if found {
		i++
	}
	out := make([]string, 0, n)
	for len(out) < n {
		if i >= len(k.all) {
			i = 0
		}
		out = append(out, k.all[i])
		i++
	}
	*from = out[len(out)-1]
	return out
}

// refresh reads what changed in the registry since the last refresh and
// returns the breakers to check besides the due ones; all is true when
// the registry was read whole, and every breaker is to be checked.
func (l *Loop) refresh(ctx context.Context, feed *statestore.Feed, k *knownBreakers) (check []string, all bool, err error) {
	ch, err := l.store.RegistryChanges(ctx, k.cursor)
	if err != nil {
		return nil, false, err
	}
	if ch.Reread || !k.loaded {
		n, err := l.names(ctx)
		if err != nil {
			return nil, false, err
		}
		for name := range k.active {
			n = append(n, name)
		}
		slices.Sort(n)
		n = slices.Compact(n)
		l.refollow(feed, k.all, n, k.absent)
		k.all, k.cursor, k.loaded = n, ch.Cursor, true
		return nil, true, nil
	}
	k.cursor = ch.Cursor
	feed.Add(ch.Added...)
	k.add(ch.Added...)
	var gone []string
	for _, n := range ch.Removed {
		if !l.configured(n) && !k.active[n] {
			gone = append(gone, n)
		}
	}
	feed.Remove(gone...)
	k.remove(gone...)
	check = append(slices.Clip(ch.Added), k.next(&k.checkFrom, checkPerRefresh)...)
	return check, false, nil
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

// takeHeard merges what the watch heard into the loop's lists; it
// reports whether every breaker is to be checked (the plain channel was
// subscribed again).
func (l *Loop) takeHeard(k *knownBreakers) (checkAll bool) {
	l.mu.Lock()
	heard := l.heard
	l.heard = map[string]heardAs{}
	checkAll, l.checkAll = l.checkAll, false
	l.mu.Unlock()
	var live, gone []string
	for n, h := range heard {
		if h.gone && !h.due {
			// Deleted or expired: its registry entry goes too (the
			// registry's log says so at the next refresh, and a new
			// report registers it again).
			if !l.configured(n) {
				gone = append(gone, n)
			}
			continue
		}
		live = append(live, n)
		if h.due {
			k.active[n] = true
		}
		if h.hasSnap {
			// The view follows the change channel at once; the next
			// tick reads the state again.
			cur, known := k.snaps[n]
			switch {
			case due(h.snap) && (!known || h.snap.Newer(cur)):
				k.snaps[n] = h.snap
			case !due(h.snap) && known && h.snap.Newer(cur):
				delete(k.snaps, n)
			}
		}
	}
	k.add(live...)
	k.remove(gone...)
	if len(heard) > 0 && k.loaded {
		l.view.set(k.all, k.snaps)
	}
	return checkAll
}

// refollow makes the feed follow every breaker of a whole read of the
// registry (next, sorted), and stop following one missing from two such
// reads in a row (deleted or expired: one read may just predate its
// registration).
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
	subscribedBefore := false                   // the plain channel was subscribed once
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
			gone := false
			if ch.Event != nil {
				e := statestore.EventOf(ch.Event)
				toHub(e)
				gone = e.Event == "deleted" || e.Event == "expired"
			}
			l.hear(ch.Name, heardAs{due: due(ch.Snapshot), gone: gone, snap: ch.Snapshot, hasSnap: true})
		case statestore.NoticeRegistered:
			for _, name := range n.Names {
				if feed.Follows(name) && confirmed[name] {
					l.backfill(ctx, name, n.At, toHub)
				} else {
					delete(confirmed, name)
					pending[name] = n.At
					feed.Add(name)
				}
				l.hear(name, heardAs{due: true}) // the next tick reads it
			}
			for name, at := range pending {
				if time.Since(at) > time.Minute {
					delete(pending, name) // never confirmed: the registry read covers it
				}
			}
		case statestore.NoticeSubscribed:
			if n.Names == nil {
				// The one plain channel, subscribed again: changes
				// published meanwhile are lost. The first subscription
				// needs nothing: the first refresh checks every breaker.
				if subscribedBefore {
					l.mu.Lock()
					l.checkAll = true
					l.mu.Unlock()
				}
				subscribedBefore = true
			}
			for _, name := range n.Names {
				// A breaker's shard channel, subscribed (again): the
				// next tick reads its state.
				l.hear(name, heardAs{due: true})
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
		l.hear(name, heardAs{due: true})
	}
}

// registered notes names this process registered (the Service's
// reports and admin actions): the view has them at once, other
// coordinators at their next registry refresh.
func (l *Loop) registered(names ...string) {
	for _, n := range names {
		l.hear(n, heardAs{})
	}
}

// heardAs is what the watch heard of a breaker since the last tick.
type heardAs struct {
	due     bool                // a change to a due state, or a reason to read its state
	gone    bool                // the last change heard deleted or expired it
	snap    statestore.Snapshot // the newest state a change carried, if hasSnap
	hasSnap bool
}

// hear notes a breaker for the timer and wakes it.
func (l *Loop) hear(name string, h heardAs) {
	l.mu.Lock()
	prev := l.heard[name]
	next := heardAs{due: prev.due || h.due, gone: h.gone, snap: prev.snap, hasSnap: prev.hasSnap}
	if h.hasSnap && (!prev.hasSnap || h.snap.Newer(prev.snap)) {
		next.snap, next.hasSnap = h.snap, true
	}
	l.heard[name] = next
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// tick runs the tick script on every breaker of names that is due (open,
// half-open or overridden) and has something for the timer to do, and
// keeps k's due lists up to date. Closed breakers, and open ones whose
// time has not come, cost one pipelined read.
func (l *Loop) tick(ctx context.Context, names []string, k *knownBreakers) error {
	if len(names) == 0 {
		return nil
	}
	snaps, err := l.store.Snapshots(ctx, names)
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if !due(s) {
			delete(k.active, s.Name)
			delete(k.snaps, s.Name)
			continue
		}
		k.active[s.Name] = true
		k.snaps[s.Name] = s
		if waiting(s) {
			continue
		}
		p := l.policies.Policy(s.Name)
		res, err := l.store.Tick(ctx, s.Name, p, l.cfg.ID)
		if err != nil {
			return err
		}
		l.logTransition(res)
		if due(res.Snapshot) {
			k.snaps[s.Name] = res.Snapshot
		} else {
			delete(k.active, s.Name)
			delete(k.snaps, s.Name)
		}
		l.maybeProbe(ctx, res.Snapshot, p)
	}
	return nil
}

// waiting reports whether the tick script would leave s as it is: open,
// or forced open, with time left (by the read's clock: one that runs out
// meanwhile moves at the next tick). Half-open breakers (probe timeouts)
// and forced-closed ones (the read does not say their ttl) are ticked.
func waiting(s statestore.Snapshot) bool {
	switch {
	case s.Override == statestore.OverrideOpen:
		return s.RetryInMS != 0
	case s.Override == statestore.OverrideNone && s.State == statestore.StateOpen:
		return s.RetryInMS > 0
	}
	return false
}

// expire forgets the breakers that no agent reported and nothing changed
// for the retention (statestore.Store.Expire), except configured ones,
// looking at up to expirePerSweep of them per sweep, in turn. The cheap
// read picks the candidates by this process's clock; the script decides
// by Redis's.
func (l *Loop) expire(ctx context.Context, k *knownBreakers) error {
	var candidates []string
	for _, n := range k.next(&k.expireFrom, expirePerSweep) {
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
