package coordinator_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// commandLog records the commands a client sends, pipelined or not.
type commandLog struct {
	mu   sync.Mutex
	cmds []string // guarded by mu
}

func (h *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd)
		return next(ctx, cmd)
	}
}
func (h *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.add(cmds...)
		return next(ctx, cmds)
	}
}

func (h *commandLog) add(cmds ...redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cmds {
		switch c.Name() {
		case "hello", "client", "auth", "select":
			// a new connection's handshake
		default:
			h.cmds = append(h.cmds, c.Name())
		}
	}
}

// take returns the commands sent since the last take.
func (h *commandLog) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.cmds
	h.cmds = nil
	return out
}

// registryCoordinator starts a coordinator (loop running) on its own
// client, with a command log, over a registry of n breakers.
func registryCoordinator(t *testing.T, srv *redistest.Server, n int, cfg coordinator.Config) (*coordinator.Coordinator, *commandLog, []string) {
	t.Helper()
	ctx := context.Background()
	seed, _ := statestore.New(srv.Client(t), statestore.Options{})
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("b-%05d", i)
	}
	for chunk := range slices.Chunk(names, 1000) {
		if err := seed.Register(ctx, chunk...); err != nil {
			t.Fatal(err)
		}
	}
	log := &commandLog{}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	rdb.AddHook(log)
	t.Cleanup(func() { _ = rdb.Close() })
	store, _ := statestore.New(rdb, statestore.Options{})
	c, err := coordinator.New(cfg, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	return c, log, names
}

// gather reads the coordinator's metrics: each breaker's state series,
// the omitted count and the loop's refresh count.
func gather(t *testing.T, c *coordinator.Coordinator) (states map[string]string, omitted float64, refreshes uint64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	states = map[string]string{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "fusebox_breaker_state":
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				states[labels["breaker"]] = labels["state"]
			}
		case "fusebox_breaker_state_omitted":
			omitted = mf.GetMetric()[0].GetGauge().GetValue()
		case "fusebox_registry_refresh_seconds":
			refreshes = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return states, omitted, refreshes
}

func waitRefreshes(t *testing.T, c *coordinator.Coordinator, n uint64) {
	t.Helper()
	testcluster.Eventually(t, 10*time.Second, fmt.Sprintf("%d registry refreshes", n), func() bool {
		_, _, r := gather(t, c)
		return r >= n
	})
}

// Before, every registry refresh read the whole registry (SMEMBERS) and
// every breaker's state (one HMGET each): 3,000 breakers, 3,000 reads
// every 5 s. Now a refresh reads the registry's log and checks a
// bounded number of breakers in turn.
func TestLoop_RefreshCostDoesNotGrowWithTheRegistry(t *testing.T) {
	srv := redistest.Start(t)
	c, log, _ := registryCoordinator(t, srv, 3000, coordinator.Config{TickInterval: 10 * time.Millisecond, RegistryRefresh: 20 * time.Millisecond})
	runLoop(t, c)
	waitRefreshes(t, c, 2) // the first reads everything
	log.take()
	_, _, from := gather(t, c)
	waitRefreshes(t, c, from+10)
	cmds := log.take()
	// Each refresh compares the registry's sizes once (ZCARD): the
	// refreshes are counted in the same log as their commands. A refresh
	// cut by the log's start adds at most one refresh's commands over 10.
	refreshes := 0
	for _, c := range cmds {
		if c == "zcard" {
			refreshes++
		}
	}
	if refreshes < 5 {
		t.Fatalf("%d refreshes in the log, want at least 5", refreshes)
	}
	perRefresh := float64(len(cmds)) / float64(refreshes)
	if slices.Contains(cmds, "smembers") || perRefresh > 600 {
		t.Fatalf("%.0f commands per refresh over %d refreshes (smembers: %v), want at most the 500 checked in turn and a few more",
			perRefresh, refreshes, slices.Contains(cmds, "smembers"))
	}
}

// A /metrics scrape reads the loop's view, not every breaker's state.
func TestMetrics_ScrapeReadsNoBreakerState(t *testing.T) {
	srv := redistest.Start(t)
	c, log, names := registryCoordinator(t, srv, 2000, coordinator.Config{TickInterval: 10 * time.Millisecond})
	stop := runLoop(t, c)
	waitRefreshes(t, c, 1)
	// Tripped by another coordinator: heard on the change channel.
	other, _ := statestore.New(srv.Client(t), statestore.Options{})
	if _, err := other.Report(context.Background(), names[1500], config.Default().Policy(names[1500]), "a", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
		t.Fatal(err)
	}
	var states map[string]string
	var omitted float64
	testcluster.Eventually(t, 5*time.Second, "the trip in the view", func() bool {
		states, omitted, _ = gather(t, c)
		return states[names[1500]] == "open"
	})
	stop() // the loop's own reads apart; its view stays
	log.take()
	states, omitted, _ = gather(t, c)
	if cmds := log.take(); len(cmds) != 1 || cmds[0] != "hgetall" {
		t.Fatalf("a scrape sent %d commands (%v…), want only the agents' read (hgetall)", len(cmds), cmds[:min(len(cmds), 5)])
	}
	if len(states) != 1000 || states[names[1500]] != "open" || states[names[0]] != "closed" || omitted != 1000 {
		t.Fatalf("%d series (%s: %q, %s: %q), %v omitted; want the cap (1,000), the open one first, 1,000 omitted",
			len(states), names[1500], states[names[1500]], names[0], states[names[0]], omitted)
	}
}

// A page of GET /v1/breakers reads the registry's index from its cursor
// on, not the whole registry.
func TestService_BreakersPageReadsOnlyThePage(t *testing.T) {
	srv := redistest.Start(t)
	c, log, names := registryCoordinator(t, srv, 2000, coordinator.Config{})
	ctx := context.Background()
	log.take()
	page, err := c.Breakers(ctx, names[999], 10)
	if err != nil {
		t.Fatal(err)
	}
	cmds := log.take()
	if slices.Contains(cmds, "smembers") || len(cmds) > 2*10+5 {
		t.Fatalf("a page of 10 sent %d commands: %v", len(cmds), cmds)
	}
	if len(page.Breakers) != 10 || page.Breakers[0].Name != names[1000] || page.Next != names[1009] {
		t.Fatalf("page after %s: %d breakers from %s, next %q", names[999], len(page.Breakers), page.Breakers[0].Name, page.Next)
	}
	last, err := c.Breakers(ctx, names[1995], 10)
	if err != nil || len(last.Breakers) != 4 || last.Next != "" {
		t.Fatalf("the last page: %d breakers, next %q (%v)", len(last.Breakers), last.Next, err)
	}
}

// The loop learns the registry's changes from its log: a breaker another
// coordinator registers shows up, one it unregisters goes.
func TestLoop_FollowsTheRegistrysLog(t *testing.T) {
	srv := redistest.Start(t)
	c, _, names := registryCoordinator(t, srv, 10, coordinator.Config{TickInterval: 10 * time.Millisecond, RegistryRefresh: 20 * time.Millisecond})
	runLoop(t, c)
	waitRefreshes(t, c, 1)
	other, _ := statestore.New(srv.Client(t), statestore.Options{})
	ctx := context.Background()
	if err := other.Register(ctx, "newcomer"); err != nil {
		t.Fatal(err)
	}
	if err := other.Unregister(ctx, names[3]); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 5*time.Second, "the newcomer in, the unregistered out", func() bool {
		states, _, _ := gather(t, c)
		_, gone := states[names[3]]
		return states["newcomer"] == "closed" && !gone && len(states) == 10
	})
}

// Pub/sub is a hint: a trip whose message this coordinator never heard
// (published where it does not listen) is found by the refreshes'
// checks in turn, however large the registry.
func TestLoop_FindsAnUnheardTripInTurn(t *testing.T) {
	srv := redistest.Start(t)
	c, _, names := registryCoordinator(t, srv, 1200, coordinator.Config{TickInterval: 10 * time.Millisecond, RegistryRefresh: 20 * time.Millisecond})
	runLoop(t, c)
	waitRefreshes(t, c, 1)
	silent, _ := statestore.New(srv.Client(t), statestore.Options{PubSub: statestore.PubSubSharded})
	if _, err := silent.Report(context.Background(), names[700], config.Default().Policy(names[700]), "a", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 5*time.Second, "the unheard trip found", func() bool {
		states, _, _ := gather(t, c)
		return states[names[700]] == "open"
	})
}

// After the change channel drops, every breaker is checked at once:
// changes published while it was down are lost.
func TestLoop_ChecksEveryBreakerAfterTheChannelDrops(t *testing.T) {
	srv := redistest.Start(t)
	c, _, names := registryCoordinator(t, srv, 1200, coordinator.Config{TickInterval: 10 * time.Millisecond, RegistryRefresh: time.Hour})
	runLoop(t, c)
	waitRefreshes(t, c, 1)
	admin := srv.Client(t)
	ctx := context.Background()
	subscribed(t, admin, "fusebox:changes")
	silent, _ := statestore.New(admin, statestore.Options{PubSub: statestore.PubSubSharded})
	if _, err := silent.Report(ctx, names[900], config.Default().Policy(names[900]), "a", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 5*time.Second, "the trip found after the resubscription", func() bool {
		states, _, _ := gather(t, c)
		return states[names[900]] == "open"
	})
}

// An open breaker whose open time has not passed costs the timer a read,
// not a script call, per tick: a coordinator with many open breakers
// ticks in one round trip. It still half-opens when its time comes.
func TestLoop_TicksOpenBreakersOnlyWhenTheirTimeComes(t *testing.T) {
	srv := redistest.Start(t)
	c, log, names := registryCoordinator(t, srv, 20, coordinator.Config{TickInterval: 10 * time.Millisecond})
	cfg := config.Default()
	other, _ := statestore.New(srv.Client(t), statestore.Options{})
	ctx := context.Background()
	long := cfg.Policy("x")
	long.OpenTimeout, long.MaxOpenTimeout = time.Hour, time.Hour
	short := cfg.Policy("x")
	short.OpenTimeout, short.MaxOpenTimeout = 300*time.Millisecond, 300*time.Millisecond
	for i, n := range names[:10] {
		p := long
		if i == 0 {
			p = short
		}
		if _, err := other.Report(ctx, n, p, "a", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
			t.Fatal(err)
		}
	}
	runLoop(t, c)
	waitRefreshes(t, c, 1)
	testcluster.Eventually(t, 5*time.Second, "the short one half-open", func() bool {
		s, err := other.Snapshots(ctx, names[:1])
		if err != nil {
			t.Fatal(err)
		}
		return s[0].State == statestore.StateHalfOpen
	})
	log.take()
	from := ticks(t, c)
	testcluster.Eventually(t, 5*time.Second, "20 ticks", func() bool { return ticks(t, c) >= from+20 })
	cmds := log.take()
	n := ticks(t, c) - from
	evals := 0
	for _, cmd := range cmds {
		if cmd == "evalsha" || cmd == "eval" {
			evals++
		}
	}
	// The half-open one is ticked every time (its probe may time out);
	// the nine open for an hour never.
	if evals > int(n)+2 {
		t.Fatalf("%d script calls in %d ticks, want at most one a tick (the half-open breaker's)", evals, n)
	}
}

// ticks is how many ticks the coordinator's timer made.
func ticks(t *testing.T, c *coordinator.Coordinator) uint64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "fusebox_loop_tick_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}
