package coordinator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// On Redis Cluster the coordinator follows each breaker's shard channel.
// A breaker registered elsewhere (by another coordinator: Register, then
// the report that trips it, at once) is discovered from the registry's
// channel, not the registry read: the timer moves it on, and the event
// stream has every event of it, the ones before this coordinator could
// subscribe included, each once.
func TestLoop_OnRedisClusterDiscoversNewBreakersAndHearsEveryEvent(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	store, err := statestore.New(c.Client(t), statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !store.Sharded() {
		t.Fatal("a store on a cluster client is not sharded")
	}
	cfg, err := config.Parse([]byte("defaults:\n  open_timeout: 300ms\n  max_open_timeout: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	coord, err := coordinator.New(coordinator.Config{ID: "c1", TickInterval: 10 * time.Millisecond, RegistryRefresh: time.Hour}, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := coord.Subscribe()
	defer unsubscribe()
	runLoop(t, coord)
	// The coordinator follows the registry's shard channel.
	node := c.Nodes[c.NodeOf(t, "{fusebox:breakers}:registered")].Client(t)
	testcluster.Eventually(t, 5*time.Second, "the coordinator follows the registry", func() bool {
		n, err := node.PubSubShardNumSub(context.Background(), "{fusebox:breakers}:registered").Result()
		return err == nil && n["{fusebox:breakers}:registered"] == 1
	})

	// Another coordinator, as Service.Ingest does it: one breaker per node.
	other, _ := statestore.New(c.Client(t), statestore.Options{})
	ctx := context.Background()
	var names []string
	for node := 0; len(names) < 3; node++ {
		for i := 0; ; i++ {
			n := fmt.Sprintf("new-%d-%d", node, i)
			if c.NodeOf(t, "fusebox:{"+n+"}:state") == node {
				names = append(names, n)
				break
			}
		}
	}
	for _, n := range names {
		if err := other.Register(ctx, n); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Report(ctx, n, cfg.Policy(n), "agent-1", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
			t.Fatal(err)
		}
	}
	// Only this coordinator ticks: the half-open moves prove it found them.
	want := map[string][]string{}
	for _, n := range names {
		want[n] = []string{"trip", "half_open"}
	}
	got := map[string][]string{}
	deadline := time.After(10 * time.Second)
	for !equalEvents(got, want) {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("the listener was dropped")
			}
			got[e.Breaker] = append(got[e.Breaker], e.Event)
			if len(got[e.Breaker]) > len(want[e.Breaker]) {
				t.Fatalf("events of %s: %v, want %v, each once", e.Breaker, got[e.Breaker], want[e.Breaker])
			}
		case <-deadline:
			t.Fatalf("events within 10s: %v, want %v", got, want)
		}
	}
	// Every later change comes through its shard channel.
	if _, err := other.Reset(ctx, names[1], cfg.Policy(names[1]), "ops", "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.Breaker != names[1] || e.Event != "reset" {
			t.Fatalf("after the reset the stream had %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reset did not reach the event stream")
	}
	// Nobody listens on the plain channel.
	for i, s := range c.Nodes {
		n, err := s.Client(t).PubSubNumSub(ctx, store.Channel()).Result()
		if err != nil || n[store.Channel()] != 0 {
			t.Fatalf("node %d: plain channel subscribers %v (%v)", i, n, err)
		}
	}
}

func equalEvents(got, want map[string][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g := got[k]
		if len(g) != len(w) {
			return false
		}
		for i := range w {
			if g[i] != w[i] {
				return false
			}
		}
	}
	return true
}
