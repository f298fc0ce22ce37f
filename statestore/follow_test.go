package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/internal/redistest"
	wire "github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// eachTopology runs fn on a real redis-server, on the embedded server and
// on a Redis Cluster of three masters (sharded pub/sub).
func eachTopology(t *testing.T, fn func(t *testing.T, b redistest.Backend)) {
	t.Helper()
	redistest.Each(t, fn)
	t.Run("redis-cluster", func(t *testing.T) { fn(t, redistest.ClusterBackend(t)) })
}

// follow starts a feed of names and waits until Redis confirmed every
// subscription it needs.
func follow(t *testing.T, s *statestore.Store, names ...string) *statestore.Feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := s.Follow(ctx, statestore.FollowOptions{Names: names})
	t.Cleanup(func() {
		cancel()
		_ = f.Close()
	})
	waitSubscribed(t, f, names...)
	return f
}

// waitSubscribed reads f until a NoticeSubscribed covered every name (a
// plain feed's one subscription covers all), failing on any change heard
// meanwhile.
func waitSubscribed(t *testing.T, f *statestore.Feed, names ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, n := range names {
		left[n] = true
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case n, ok := <-f.C():
			if !ok {
				t.Fatal("the feed ended")
			}
			switch n.Kind {
			case statestore.NoticeSubscribed:
				if n.Names == nil {
					return
				}
				for _, name := range n.Names {
					delete(left, name)
				}
				if len(left) == 0 {
					return
				}
			case statestore.NoticeChange:
				t.Fatalf("a change before the subscription was confirmed: %s", n.Payload)
			}
		case <-deadline:
			t.Fatalf("not subscribed within 5s: %v left", left)
		}
	}
}

// nextChange returns the payload of the next change f hears within 5 s.
func nextChange(t *testing.T, f *statestore.Feed) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case n, ok := <-f.C():
			if !ok {
				t.Fatal("the feed ended")
			}
			if n.Kind == statestore.NoticeChange {
				return n.Payload
			}
		case <-deadline:
			t.Fatal("no change heard within 5s")
		}
	}
}

// quiet drains f for d and returns the changes it heard.
func quiet(f *statestore.Feed, d time.Duration) []wire.Change {
	var out []wire.Change
	deadline := time.After(d)
	for {
		select {
		case n, ok := <-f.C():
			if !ok {
				return out
			}
			if n.Kind == statestore.NoticeChange {
				ch, _ := wire.DecodeChange(n.Payload)
				out = append(out, ch)
			}
		case <-deadline:
			return out
		}
	}
}

// oneName finds a breaker name whose keys live on node, with a slot none
// of avoid has.
func oneName(t *testing.T, c *redistest.Cluster, prefix string, node int, avoid ...string) string {
	t.Helper()
	cl := c.Nodes[0].Client(t)
	slot := func(n string) int64 {
		s, err := cl.ClusterKeySlot(context.Background(), prefix+":{"+n+"}:state").Result()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var taken []int64
	for _, a := range avoid {
		taken = append(taken, slot(a))
	}
	for i := range 1000 {
		n := fmt.Sprintf("svc-%d", i)
		if slices.Contains(avoid, n) || slices.Contains(taken, slot(n)) {
			continue
		}
		if c.NodeOf(t, prefix+":{"+n+"}:state") == node {
			return n
		}
	}
	t.Fatalf("no name on node %d", node)
	return ""
}

func TestStore_PubSubMode(t *testing.T) {
	srv := redistest.Real(t)
	t.Run("an unknown mode is refused", func(t *testing.T) {
		if _, err := statestore.New(srv.Client, statestore.Options{PubSub: "broadcast"}); !errors.Is(err, statestore.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
	t.Run("a plain client is plain by default", func(t *testing.T) {
		s, _ := statestore.New(srv.Client, statestore.Options{})
		if s.Sharded() || s.ChannelOf("a") != "fusebox:changes" || s.Channel() != "fusebox:changes" {
			t.Fatalf("sharded %v, channel of a %q", s.Sharded(), s.ChannelOf("a"))
		}
	})
	t.Run("a cluster client is sharded by default, each breaker on its own shard channel", func(t *testing.T) {
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}})
		defer cc.Close()
		s, _ := statestore.New(cc, statestore.Options{Prefix: "p"})
		if !s.Sharded() || s.ChannelOf("a") != "p:{a}:changes" {
			t.Fatalf("sharded %v, channel of a %q", s.Sharded(), s.ChannelOf("a"))
		}
	})
	t.Run("sharded works on one redis-server too", func(t *testing.T) {
		s, _ := statestore.New(srv.Client, statestore.Options{Prefix: "sh", PubSub: statestore.PubSubSharded})
		f := follow(t, s, "mine")
		tripped(t, s, "other", fastPolicy())
		tr := tripped(t, s, "mine", fastPolicy())
		sn, err := wire.DecodeMessage(nextChange(t, f))
		if err != nil || sn.Name != "mine" || sn.Version != tr.Version {
			t.Fatalf("heard %+v %v, want mine's trip (version %d): not other's", sn, err, tr.Version)
		}
	})
}

// On Redis Cluster each breaker's changes go on its own shard channel,
// delivered by the node that owns the breaker to the feeds that follow it,
// and to nobody else; nothing goes on the plain channel.
func TestFeed_ShardedHearsOnlyTheBreakersItFollows(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	s, err := statestore.New(c.Client(t), statestore.Options{Prefix: "t"})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{oneName(t, c, "t", 0), oneName(t, c, "t", 1), oneName(t, c, "t", 2)}
	plainListener := c.Nodes[1].Client(t).Subscribe(context.Background(), s.Channel())
	defer plainListener.Close()
	if _, err := plainListener.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := follow(t, s, names[0])
	rest := follow(t, s, names[1], names[2]) // two nodes on one feed
	p := fastPolicy()
	want := map[string]int64{}
	for _, n := range names {
		want[n] = tripped(t, s, n, p).Version
	}
	got := quiet(first, 300*time.Millisecond)
	if len(got) != 1 || got[0].Name != names[0] || got[0].Version != want[names[0]] {
		t.Fatalf("the feed of %s heard %+v, want its trip alone", names[0], got)
	}
	got = quiet(rest, 300*time.Millisecond)
	heard := map[string]int64{}
	for _, ch := range got {
		heard[ch.Name] = ch.Version
	}
	if len(got) != 2 || heard[names[1]] != want[names[1]] || heard[names[2]] != want[names[2]] {
		t.Fatalf("the feed of %s and %s heard %+v", names[1], names[2], got)
	}
	if st := first.Stats(); st.Changes != 1 || st.Subscriptions != 1 {
		t.Fatalf("first feed's stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if m, err := plainListener.ReceiveMessage(ctx); err == nil {
		t.Fatalf("a message on the plain channel: %s", m.Payload)
	}
	// The owner node counts one shard subscriber per feed of the breaker.
	owner := c.Nodes[c.NodeOf(t, "t:{"+names[0]+"}:state")].Client(t)
	n, err := owner.PubSubShardNumSub(context.Background(), s.ChannelOf(names[0])).Result()
	if err != nil || n[s.ChannelOf(names[0])] != 1 {
		t.Fatalf("shard subscribers of %s: %v %v", names[0], n, err)
	}
}

// A breaker added to a feed after it started is followed from Redis's
// confirmation on; one removed is no longer heard.
func TestFeed_AddAndRemove(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	s, _ := statestore.New(c.Client(t), statestore.Options{Prefix: "t"})
	a := oneName(t, c, "t", 0)
	b := oneName(t, c, "t", 0, a) // the same node, another slot
	f := follow(t, s, a)
	if f.Follows(b) {
		t.Fatalf("follows %s before Add", b)
	}
	f.Add(b)
	waitSubscribed(t, f, b)
	tr := tripped(t, s, b, fastPolicy())
	sn, err := wire.DecodeMessage(nextChange(t, f))
	if err != nil || sn.Name != b || sn.Version != tr.Version {
		t.Fatalf("heard %+v %v, want %s's trip", sn, err, b)
	}
	f.Remove(a)
	owner := c.Nodes[0].Client(t)
	eventually(t, 5*time.Second, "the node unsubscribed "+a, func() bool {
		n, err := owner.PubSubShardNumSub(context.Background(), s.ChannelOf(a)).Result()
		return err == nil && n[s.ChannelOf(a)] == 0
	})
	tripped(t, s, a, fastPolicy())
	if got := quiet(f, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("heard %+v after removing %s", got, a)
	}
}

// A coordinator hears every new registration on the registry's shard
// channel, once per name.
func TestFeed_HearsRegistrations(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	s, _ := statestore.New(c.Client(t), statestore.Options{Prefix: "t"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := s.Follow(ctx, statestore.FollowOptions{Registry: true})
	defer f.Close()
	eventually(t, 5*time.Second, "the registry channel subscribed", func() bool { return f.Stats().Subscriptions == 1 })
	before := time.Now()
	if err := s.Register(ctx, "r1", "r2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(ctx, "r1", "r3"); err != nil { // r1 is not news
		t.Fatal(err)
	}
	var got [][]string
	deadline := time.After(5 * time.Second)
	for len(got) < 2 {
		select {
		case n := <-f.C():
			if n.Kind != statestore.NoticeRegistered {
				continue
			}
			if n.At.Before(before.Add(-time.Second)) || n.At.After(time.Now().Add(time.Second)) {
				t.Fatalf("registered at %s, asked at %s", n.At, before)
			}
			got = append(got, n.Names)
		case <-deadline:
			t.Fatalf("heard %v within 5s", got)
		}
	}
	if !slices.Equal(got[0], []string{"r1", "r2"}) || !slices.Equal(got[1], []string{"r3"}) {
		t.Fatalf("registrations heard %v, want [r1 r2] then [r3]", got)
	}
}

// A killed connection comes back: the feed replaces it and subscribes
// each of its shard channels again, one SSUBSCRIBE per slot (go-redis's
// own reconnection would send them all in one, which Redis refuses across
// slots with CROSSSLOT), and says so.
func TestFeed_ResubscribesAfterItsConnectionsAreKilled(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	s, _ := statestore.New(c.Client(t), statestore.Options{Prefix: "t"})
	a := oneName(t, c, "t", 2)
	b := oneName(t, c, "t", 2, a)
	f := follow(t, s, a, b)
	node := c.Nodes[2].Client(t)
	if n, err := node.ClientKillByFilter(context.Background(), "TYPE", "pubsub").Result(); err != nil || n != 1 {
		t.Fatalf("killed %d pub/sub connections (%v), want 1", n, err)
	}
	waitSubscribed(t, f, a, b)
	if f.Stats().Errors == 0 {
		t.Fatal("no error counted for the killed connection")
	}
	for _, n := range []string{a, b} {
		tr := tripped(t, s, n, fastPolicy())
		sn, err := wire.DecodeMessage(nextChange(t, f))
		if err != nil || sn.Name != n || sn.Version != tr.Version {
			t.Fatalf("heard %+v %v, want %s's trip", sn, err, n)
		}
	}
}

// When a breaker's slot moves to another node, Redis unsubscribes its
// shard channel's subscribers; the feed follows the slot to its new
// owner.
func TestFeed_FollowsASlotThatMoves(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	s, _ := statestore.New(c.Client(t), statestore.Options{Prefix: "t"})
	name := oneName(t, c, "t", 0)
	f := follow(t, s, name)
	ctx := context.Background()
	from, to := c.Nodes[0].Client(t), c.Nodes[1].Client(t)
	slot, _ := from.ClusterKeySlot(ctx, "t:{"+name+"}:state").Result()
	fromID, _ := from.ClusterMyID(ctx).Result()
	toID, _ := to.ClusterMyID(ctx).Result()
	// The slot holds no key yet: moving it needs no MIGRATE.
	for _, step := range []struct {
		c    *redis.Client
		args []any
	}{
		{to, []any{"cluster", "setslot", slot, "importing", fromID}},
		{from, []any{"cluster", "setslot", slot, "migrating", toID}},
		{to, []any{"cluster", "setslot", slot, "node", toID}},
		{from, []any{"cluster", "setslot", slot, "node", toID}},
	} {
		if err := step.c.Do(ctx, step.args...).Err(); err != nil {
			t.Fatalf("%v: %v", step.args, err)
		}
	}
	waitSubscribed(t, f, name)
	n, err := to.PubSubShardNumSub(ctx, s.ChannelOf(name)).Result()
	if err != nil || n[s.ChannelOf(name)] != 1 {
		t.Fatalf("shard subscribers of %s on its new node: %v %v", name, n, err)
	}
	eventually(t, 5*time.Second, "the cluster client routes the slot to its new node", func() bool {
		_, err := s.Snapshots(ctx, []string{name})
		return err == nil
	})
	tr := tripped(t, s, name, fastPolicy())
	sn, err := wire.DecodeMessage(nextChange(t, f))
	if err != nil || sn.Name != name || sn.Version != tr.Version {
		t.Fatalf("heard %+v %v, want the trip on the new node", sn, err)
	}
}

// A plain feed hears every breaker, whatever it follows.
func TestFeed_PlainHearsEveryBreaker(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		f := follow(t, s) // follows nothing by name
		if !f.Follows("anything") {
			t.Fatal("a plain feed does not follow every breaker")
		}
		tr := tripped(t, s, "x", fastPolicy())
		sn, err := wire.DecodeMessage(nextChange(t, f))
		if err != nil || sn.Name != "x" || sn.Version != tr.Version {
			t.Fatalf("heard %+v %v", sn, err)
		}
	})
}

// eventually polls cond until it holds, failing the test after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
