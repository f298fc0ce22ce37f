package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// NoticeKind says what a Notice carries.
type NoticeKind int

// Notice kinds.
const (
	// NoticeChange carries one published transition in Payload: decode it
	// with report.DecodeChange or report.DecodeMessage.
	NoticeChange NoticeKind = iota + 1
	// NoticeSubscribed says a subscription started or started again:
	// messages published before it may never arrive, so the breakers in
	// Names need a resync. Names is nil for the one plain channel: every
	// breaker.
	NoticeSubscribed
	// NoticeRegistered names breakers just added to the registry, at At
	// (Redis's clock). Only a sharded feed that follows the registry
	// hears it.
	NoticeRegistered
	// NoticeError carries a subscription error in Err. The feed
	// subscribes again by itself; a NoticeSubscribed follows.
	NoticeError
)

// Notice is one thing a Feed heard.
type Notice struct {
	Kind    NoticeKind
	Payload string
	Names   []string
	At      time.Time
	Err     error
}

// FollowOptions say what a Feed follows from the start.
type FollowOptions struct {
	// Names are the breakers to follow; Feed.Add follows more.
	Names []string
	// Registry also hears new registrations (NoticeRegistered), so that
	// a coordinator learns a new breaker before its first transition. A
	// plain feed hears every breaker's changes anyway and ignores it.
	Registry bool
}

// FeedStats count what a Feed heard.
type FeedStats struct {
	Changes       int64 // NoticeChange
	Subscriptions int64 // subscriptions confirmed by Redis, one per channel
	Errors        int64
}

// Feed is a subscription to breakers' changes. A plain store's feed
// subscribes to the one channel and hears every breaker. A sharded
// store's feed subscribes (SSUBSCRIBE) to the shard channel of each
// breaker it follows, one connection per Redis Cluster node that owns one
// of them, so it hears only those breakers; it follows the slot map when
// slots move, and after any error it subscribes again on a fresh
// connection with a backoff (go-redis resubscribes every shard channel of
// a connection in one command, which Redis refuses across slots).
//
// Pub/sub is a hint: messages are lost around a reconnection, which
// NoticeSubscribed tells. Feed is safe for concurrent use.
type Feed struct {
	store  *Store
	out    chan Notice
	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}

	changes, subs, errs atomic.Int64
	healthy             atomic.Bool // Redis confirmed a subscription since the manager last looked

	mu     sync.Mutex
	want   map[string]bool    // guarded by mu: shard channels to follow
	broken map[*feedNode]bool // guarded by mu: connections to replace
}

// feedNode is a sharded feed's connection to one node.
type feedNode struct {
	addr   string
	ps     *redis.PubSub
	cancel context.CancelFunc
	ctx    context.Context // ends the node's reader; not an I/O deadline
}

const (
	feedMinBackoff = 50 * time.Millisecond
	feedMaxBackoff = 2 * time.Second
	feedPing       = 30 * time.Second
)

// Follow starts a feed. It runs until ctx ends or Close is called; its
// channel C is closed then. It does no I/O before returning.
func (s *Store) Follow(ctx context.Context, o FollowOptions) *Feed {
	ctx, cancel := context.WithCancel(ctx)
	f := &Feed{
		store:  s,
		out:    make(chan Notice, 256),
		kick:   make(chan struct{}, 1),
		cancel: cancel,
		done:   make(chan struct{}),
		want:   map[string]bool{},
	}
	f.wg.Add(1)
	if s.sharded {
		if o.Registry {
			f.want[s.registryChannel()] = true
		}
		for _, n := range o.Names {
			if ValidName(n) {
				f.want[s.changesChannel(n)] = true
			}
		}
		go f.manage(ctx)
		f.poke()
	} else {
		go f.plain(ctx)
	}
	go func() {
		f.wg.Wait()
		close(f.out)
		close(f.done)
	}()
	return f
}

// C delivers what the feed hears, in order per breaker. Read it without
// pause: a feed whose reader stalls stops reading Redis, which ends a
// subscriber that falls too far behind.
func (f *Feed) C() <-chan Notice { return f.out }

// Add follows more breakers (a no-op on a plain feed, which hears them
// all). It does no I/O: the subscription follows at once in the
// background, and a NoticeSubscribed names each breaker when Redis
// confirms it. Invalid names are ignored.
func (f *Feed) Add(names ...string) {
	if !f.store.sharded {
		return
	}
	f.mu.Lock()
	added := false
	for _, n := range names {
		if ch := f.store.changesChannel(n); ValidName(n) && !f.want[ch] {
			f.want[ch] = true
			added = true
		}
	}
	f.mu.Unlock()
	if added {
		f.poke()
	}
}

// Remove stops following breakers (a no-op on a plain feed).
func (f *Feed) Remove(names ...string) {
	if !f.store.sharded {
		return
	}
	f.mu.Lock()
	removed := false
	for _, n := range names {
		if ch := f.store.changesChannel(n); f.want[ch] {
			delete(f.want, ch)
			removed = true
		}
	}
	f.mu.Unlock()
	if removed {
		f.poke()
	}
}

// Follows reports whether the feed follows a breaker: every breaker on
// a plain feed.
func (f *Feed) Follows(name string) bool {
	if !f.store.sharded {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.want[f.store.changesChannel(name)]
}

// Stats counts what the feed heard so far.
func (f *Feed) Stats() FeedStats {
	return FeedStats{Changes: f.changes.Load(), Subscriptions: f.subs.Load(), Errors: f.errs.Load()}
}

// Close stops the feed and waits until its goroutines have returned.
func (f *Feed) Close() error {
	f.cancel()
	<-f.done
	return nil
}

func (f *Feed) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *Feed) emit(ctx context.Context, n Notice) {
	switch n.Kind {
	case NoticeChange:
		f.changes.Add(1)
	case NoticeError:
		f.errs.Add(1)
	}
	select {
	case f.out <- n:
	case <-ctx.Done():
	}
}

// plain follows the one channel. go-redis reconnects and resubscribes it
// by itself; each (re)subscription is a NoticeSubscribed.
func (f *Feed) plain(ctx context.Context) {
	defer f.wg.Done()
	ps := f.store.rdb.Subscribe(ctx, f.store.channel)
	// go-redis does not watch ctx while blocked in a read: closing the
	// subscription is what ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	backoff := feedMinBackoff
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, feedPing)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if isTimeout(err) {
				_ = ps.Ping(ctx) // a quiet channel: a dead connection shows up
				continue
			}
			f.emit(ctx, Notice{Kind: NoticeError, Err: wrapRedis(ctx, err)})
			sleep(ctx, backoff)
			backoff = min(backoff*2, feedMaxBackoff)
			continue
		}
		backoff = feedMinBackoff
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				f.subs.Add(1)
				f.emit(ctx, Notice{Kind: NoticeSubscribed})
			}
		case *redis.Message:
			f.emit(ctx, Notice{Kind: NoticeChange, Payload: m.Payload})
		}
	}
}

// manage owns a sharded feed's connections: it subscribes each wanted
// shard channel on the connection to the node that owns its slot,
// unsubscribes the unwanted, and replaces broken connections, waiting
// longer each time until Redis confirms a subscription again.
func (f *Feed) manage(ctx context.Context) {
	defer f.wg.Done()
	nodes := map[string]*feedNode{} // by address
	on := map[string]*feedNode{}    // shard channel -> where it is subscribed
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	backoff := feedMinBackoff
	var hold time.Time // no subscribing before: the backoff after trouble
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		case <-retry:
			retry = nil
		}
		if f.healthy.Swap(false) {
			backoff = feedMinBackoff
		}
		f.mu.Lock()
		want, broken := maps.Clone(f.want), f.broken
		f.broken = nil
		f.mu.Unlock()
		for n := range broken {
			f.drop(n, nodes, on)
		}
		if len(broken) > 0 {
			if cc, ok := f.store.rdb.(*redis.ClusterClient); ok {
				cc.ReloadState(ctx) // a slot may have moved
			}
			hold, backoff = time.Now().Add(backoff), min(backoff*2, feedMaxBackoff)
		}
		for ch, n := range on {
			if !want[ch] {
				delete(on, ch)
				if err := n.ps.SUnsubscribe(ctx, ch); err != nil {
					f.drop(n, nodes, on)
				}
			}
		}
		if wait := time.Until(hold); wait > 0 {
			if retry == nil {
				retry = time.After(wait)
			}
			continue
		}
		for ch := range want {
			if on[ch] != nil {
				continue
			}
			n, err := f.node(ctx, nodes, ch)
			if err == nil {
				if err = n.ps.SSubscribe(ctx, ch); err != nil {
					f.drop(n, nodes, on)
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				f.emit(ctx, Notice{Kind: NoticeError, Err: wrapRedis(ctx, err)})
				hold, backoff = time.Now().Add(backoff), min(backoff*2, feedMaxBackoff)
				if retry == nil {
					retry = time.After(time.Until(hold))
				}
				break
			}
			on[ch] = n
		}
	}
}

// node returns the connection to the node that owns ch's slot, opening
// one if there is none.
func (f *Feed) node(ctx context.Context, nodes map[string]*feedNode, ch string) (*feedNode, error) {
	var client redis.UniversalClient = f.store.rdb
	addr := ""
	if cc, ok := f.store.rdb.(*redis.ClusterClient); ok {
		c, err := cc.MasterForKey(ctx, ch)
		if err != nil {
			return nil, err
		}
		client, addr = c, c.Options().Addr
	}
	if n := nodes[addr]; n != nil {
		return n, nil
	}
	nctx, cancel := context.WithCancel(ctx)
	n := &feedNode{addr: addr, ps: client.SSubscribe(nctx), cancel: cancel, ctx: nctx}
	nodes[addr] = n
	f.wg.Add(1)
	go f.read(n)
	return n, nil
}

// drop closes a node's connection and forgets what was subscribed on it:
// the next pass subscribes it again, wherever its slot is now.
func (f *Feed) drop(n *feedNode, nodes map[string]*feedNode, on map[string]*feedNode) {
	if nodes[n.addr] == n {
		delete(nodes, n.addr)
	}
	for ch, m := range on {
		if m == n {
			delete(on, ch)
		}
	}
	n.close()
}

func (n *feedNode) close() {
	n.cancel()
	_ = n.ps.Close()
}

// breakNode hands a connection that failed to the manager.
func (f *Feed) breakNode(n *feedNode) {
	f.mu.Lock()
	if f.broken == nil {
		f.broken = map[*feedNode]bool{}
	}
	f.broken[n] = true
	f.mu.Unlock()
	f.poke()
}

func (f *Feed) wanted(ch string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.want[ch]
}

// read delivers what one node's connection hears. Any error but a quiet
// connection's timeout, and a shard channel Redis unsubscribed by itself
// (its slot moved to another node), hand the connection back to the
// manager, which replaces it.
func (f *Feed) read(n *feedNode) {
	defer f.wg.Done()
	ctx := n.ctx
	reg := f.store.registryChannel()
	for ctx.Err() == nil {
		msg, err := n.ps.ReceiveTimeout(ctx, feedPing)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if isTimeout(err) {
				if err := n.ps.Ping(ctx); err == nil {
					continue
				}
			}
			f.emit(ctx, Notice{Kind: NoticeError, Err: wrapRedis(ctx, err)})
			f.breakNode(n)
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			switch m.Kind {
			case "ssubscribe":
				f.subs.Add(1)
				f.healthy.Store(true)
				if name := f.store.nameOfChannel(m.Channel); name != "" {
					f.emit(ctx, Notice{Kind: NoticeSubscribed, Names: []string{name}})
				}
			case "sunsubscribe":
				if f.wanted(m.Channel) {
					f.breakNode(n)
					return
				}
			}
		case *redis.Message:
			if m.Channel == reg {
				var r struct {
					Names []string `json:"names"`
					TS    int64    `json:"ts"`
				}
				if json.Unmarshal([]byte(m.Payload), &r) == nil && len(r.Names) > 0 {
					f.emit(ctx, Notice{Kind: NoticeRegistered, Names: r.Names, At: time.UnixMilli(r.TS)})
				}
				continue
			}
			f.emit(ctx, Notice{Kind: NoticeChange, Payload: m.Payload})
		}
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
