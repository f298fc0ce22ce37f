package agentlib_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

var errProvider = errors.New("provider: HTTP 503")

func newAgent(t testing.TB, c *testcluster.Cluster, id string, mods ...func(*agentlib.Config)) *agentlib.Agent {
	t.Helper()
	cfg := agentlib.Config{
		CoordinatorURL: c.URLs(),
		Token:          testcluster.AgentToken,
		RedisURL:       c.Redis.URL() + "?max_retries=-1&dial_timeout=200ms&read_timeout=300ms&write_timeout=300ms",
		AgentID:        id,
		ResyncInterval: 200 * time.Millisecond,
		RequestTimeout: 300 * time.Millisecond,
	}
	for _, m := range mods {
		m(&cfg)
	}
	a, err := agentlib.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func breaker(t testing.TB, a *agentlib.Agent, name string) *agentlib.Breaker {
	t.Helper()
	b, err := a.Breaker(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func denied(b *agentlib.Breaker, reason error) bool {
	done, err := b.Allow()
	if err == nil {
		done(agentlib.Ignored())
		return false
	}
	return errors.Is(err, reason)
}

func TestBreaker_FollowsTheClusterState(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	a := newAgent(t, c, "a1")
	b := breaker(t, a, "openai")
	ctx := context.Background()

	for i := range 5 {
		done, err := b.Allow()
		if err != nil {
			t.Fatalf("call %d denied while closed: %v", i, err)
		}
		done(agentlib.Failure(errProvider))
	}
	testcluster.Eventually(t, 2*time.Second, "the agent denies after 5 failures", func() bool { return denied(b, agentlib.ErrOpen) })
	_, err := b.Allow()
	var de *agentlib.DeniedError
	if !errors.As(err, &de) || de.Breaker != "openai" || de.Degraded || errors.Is(err, agentlib.ErrDegraded) || errors.Is(err, agentlib.ErrForcedOpen) {
		t.Fatalf("denial = %#v", err)
	}
	if until := time.Until(de.RetryAt); until < 50*time.Second || until > time.Minute {
		t.Fatalf("RetryAt in %s, want about 1m", until)
	}
	if s := c.Snapshot(t, "openai"); s.State != statestore.StateOpen {
		t.Fatalf("cluster state %s", s.State)
	}

	p := c.Config.Policy("openai")
	if _, err := c.Store.Force(ctx, "openai", p, "alice", statestore.OverrideClosed, 0, "test"); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 2*time.Second, "forced closed lets calls through", func() bool { return !denied(b, agentlib.ErrOpen) })
	if _, err := c.Store.Force(ctx, "openai", p, "alice", statestore.OverrideOpen, 0, "test"); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 2*time.Second, "forced open denies", func() bool { return denied(b, agentlib.ErrForcedOpen) })
	if _, err := c.Store.Release(ctx, "openai", p, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 2*time.Second, "released: closed again", func() bool { return !denied(b, agentlib.ErrForcedOpen) })
	if s := b.State(); s.State != statestore.StateClosed || s.Override != statestore.OverrideNone {
		t.Fatalf("mirror = %+v", s)
	}
}

// TestAgents_TripTogether is the cluster-wide threshold: ten agents in one
// process, failures spread over all of them.
func TestAgents_TripTogether(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	const agents = 10
	breakers := make([]*agentlib.Breaker, agents)
	for i := range agents {
		breakers[i] = breaker(t, newAgent(t, c, fmt.Sprintf("agent-%d", i)), "openai")
	}

	// A failing LLM call is slow even when it fails: a 503 after 100 ms is
	// quick for a provider (and long enough that the comparison below is
	// about the design, not about how loaded the test machine is).
	const providerLatency = 100 * time.Millisecond
	var calls atomic.Int64 // calls that reached the failing provider
	var thresholdAt atomic.Int64
	deniedAt := make([]time.Time, agents)
	var wg sync.WaitGroup
	start := time.Now()
	for i, b := range breakers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 5000 && time.Since(start) < 10*time.Second; n++ {
				done, err := b.Allow()
				if err != nil {
					if !errors.Is(err, agentlib.ErrOpen) {
						t.Errorf("agent %d: unexpected denial %v", i, err)
					}
					deniedAt[i] = time.Now()
					return
				}
				n := calls.Add(1)
				time.Sleep(providerLatency) // the provider takes this long to answer 503
				if n == 5 {
					thresholdAt.Store(time.Now().UnixNano())
				}
				done(agentlib.Failure(errProvider))
			}
		}()
	}
	wg.Wait()
	var last time.Time
	for i, d := range deniedAt {
		if d.IsZero() {
			t.Fatalf("agent %d never denied", i)
		}
		if d.After(last) {
			last = d
		}
	}
	extra := calls.Load() - 5
	took := last.Sub(time.Unix(0, thresholdAt.Load()))
	t.Logf("cluster threshold 5 over %d agents: %d calls allowed after the 5th failure; last agent denied %s after it", agents, extra, took.Round(time.Microsecond))
	if s := c.Snapshot(t, "openai"); s.State != statestore.StateOpen || s.Version != 1 {
		t.Fatalf("cluster state %+v, want open after exactly one transition", s)
	}
	// Per-replica breakers would let each agent see 5 failures of its own:
	// 5*agents calls in all. The cluster breaker must do better: what gets
	// through after the 5th failure is the calls already in flight.
	if perReplica := int64(5*agents - 5); extra >= perReplica {
		t.Fatalf("%d calls after the threshold: the agents did not trip together", extra)
	}
}

// TestAgents_ConvergeWithoutPubSub kills every pub/sub connection over and
// over while the breaker trips: the resync timer alone must converge.
func TestAgents_ConvergeWithoutPubSub(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	const agents = 5
	resync := 200 * time.Millisecond
	breakers := make([]*agentlib.Breaker, agents)
	for i := range agents {
		breakers[i] = breaker(t, newAgent(t, c, fmt.Sprintf("agent-%d", i), func(cfg *agentlib.Config) { cfg.ResyncInterval = resync }), "openai")
	}
	admin := c.Redis.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	killed := make(chan int64, 1)
	go func() {
		var n int64
		defer func() { killed <- n }()
		for ctx.Err() == nil {
			k, err := admin.ClientKillByFilter(context.Background(), "TYPE", "pubsub").Result()
			if err == nil {
				n += k
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	// Wait until pub/sub has been cut at least once, then trip.
	testcluster.Eventually(t, 5*time.Second, "pub/sub connections killed", func() bool {
		n, _ := admin.PubSubNumSub(context.Background(), c.Store.Channel()).Result()
		return n[c.Store.Channel()] < agents
	})
	if _, err := c.Store.Report(context.Background(), "openai", c.Config.Policy("openai"), "someone", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
		t.Fatal(err)
	}
	tripped := time.Now()
	testcluster.Eventually(t, 5*resync, "every agent denies", func() bool {
		for _, b := range breakers {
			if b.State().State != statestore.StateOpen {
				return false
			}
		}
		return true
	})
	converged := time.Since(tripped)
	cancel()
	t.Logf("converged %s after the trip with pub/sub killed %d times (resync interval %s)", converged.Round(time.Millisecond), <-killed, resync)
	for i, b := range breakers {
		if !denied(b, agentlib.ErrOpen) {
			t.Fatalf("agent %d allows", i)
		}
	}
}

// TestAgents_RedisStoppedUnderLoad: agents go degraded, calls keep
// flowing through local breakers, and nothing but the provider's own
// errors and local denials reach the caller; when Redis is back they
// resync and leave degraded mode.
func TestAgents_RedisStoppedUnderLoad(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	const agents = 4
	var as []*agentlib.Agent
	for i := range agents {
		as = append(as, newAgent(t, c, fmt.Sprintf("agent-%d", i), func(cfg *agentlib.Config) {
			cfg.ResyncInterval = 100 * time.Millisecond
			cfg.RequestTimeout = 200 * time.Millisecond
		}))
	}
	// A breaker that was open in the cluster before the outage stays
	// open locally; a forced one stays forced.
	ctx := context.Background()
	if _, err := c.Store.Report(ctx, "was-open", c.Config.Policy("was-open"), "x", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store.Force(ctx, "was-forced", c.Config.Policy("was-forced"), "ops", statestore.OverrideOpen, 0, "drill"); err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		for _, name := range []string{"was-open", "was-forced"} {
			b := breaker(t, a, name)
			testcluster.Eventually(t, 2*time.Second, name+" mirrored", func() bool { return b.State().Version > 0 })
		}
	}

	var (
		stop                      atomic.Bool
		ok, providerErr, deniedN  atomic.Int64
		degradedOK, libraryErrors atomic.Int64
		healthy                   atomic.Bool // the "good" provider's health
	)
	healthy.Store(true)
	var wg sync.WaitGroup
	for i, a := range as {
		good := breaker(t, a, "good")
		flaky := breaker(t, a, "flaky")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 200000 && !stop.Load(); n++ {
				for _, b := range []*agentlib.Breaker{good, flaky} {
					err := b.Execute(ctx, func(context.Context) error {
						if b == flaky || !healthy.Load() {
							return errProvider
						}
						return nil
					})
					var de *agentlib.DeniedError
					switch {
					case err == nil:
						ok.Add(1)
						if a.Degraded() {
							degradedOK.Add(1)
						}
					case errors.Is(err, errProvider):
						providerErr.Add(1)
					case errors.As(err, &de):
						deniedN.Add(1)
					default:
						libraryErrors.Add(1)
						t.Errorf("agent %d: error from the library itself: %v", i, err)
					}
				}
				time.Sleep(500 * time.Microsecond)
			}
		}()
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })

	testcluster.Eventually(t, 5*time.Second, "load before the outage", func() bool { return ok.Load() > 100 })
	c.Redis.Stop(t)
	outage := time.Now()
	testcluster.Eventually(t, 5*time.Second, "every agent degraded", func() bool {
		for _, a := range as {
			if !a.Degraded() {
				return false
			}
		}
		return true
	})
	testcluster.Eventually(t, 5*time.Second, "every agent knows Redis is away", func() bool {
		for _, a := range as {
			if redisOK, _ := a.Links(); redisOK {
				return false
			}
		}
		return true
	})
	t.Logf("all agents degraded, Redis link down, %s after Redis stopped", time.Since(outage).Round(time.Millisecond))
	before := degradedOK.Load()
	testcluster.Eventually(t, 5*time.Second, "calls flow while degraded", func() bool { return degradedOK.Load() > before+100 })

	for i, a := range as {
		wasOpen, _ := a.Breaker("was-open")
		if _, err := wasOpen.Allow(); !errors.Is(err, agentlib.ErrOpen) || !errors.Is(err, agentlib.ErrDegraded) {
			t.Fatalf("agent %d: a breaker open in the cluster allowed while degraded: %v", i, err)
		}
		forced, _ := a.Breaker("was-forced")
		if _, err := forced.Allow(); !errors.Is(err, agentlib.ErrForcedOpen) || !errors.Is(err, agentlib.ErrDegraded) {
			t.Fatalf("agent %d: a forced breaker allowed while degraded: %v", i, err)
		}
		flaky, _ := a.Breaker("flaky")
		testcluster.Eventually(t, 2*time.Second, "the local breaker trips on the flaky provider", func() bool {
			_, err := flaky.Allow()
			return errors.Is(err, agentlib.ErrOpen) && errors.Is(err, agentlib.ErrDegraded)
		})
	}

	c.Redis.Restart(t)
	back := time.Now()
	testcluster.Eventually(t, 5*time.Second, "every agent leaves degraded mode", func() bool {
		for _, a := range as {
			if a.Degraded() {
				return false
			}
		}
		return true
	})
	t.Logf("all agents back on the cluster state %s after Redis returned", time.Since(back).Round(time.Millisecond))
	// Redis came back empty (no persistence here): the resync must accept
	// the new, empty state even though its versions are lower.
	for i, a := range as {
		wasOpen, _ := a.Breaker("was-open")
		testcluster.Eventually(t, 2*time.Second, "resynced to Redis's empty state", func() bool {
			return wasOpen.State().Gen == "" || wasOpen.State().State == statestore.StateClosed
		})
		if s := wasOpen.State(); s.State != statestore.StateClosed {
			t.Fatalf("agent %d: was-open mirror = %+v after Redis lost its data", i, s)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("calls: %d ok (%d while degraded), %d provider errors, %d denied, %d library errors", ok.Load(), degradedOK.Load(), providerErr.Load(), deniedN.Load(), libraryErrors.Load())
	if libraryErrors.Load() != 0 {
		t.Fatalf("%d errors from the library itself", libraryErrors.Load())
	}
}

// TestAgents_TrafficModeOneProbePerWindow: in half-open, one live call
// across all agents is the probe.
func TestAgents_TrafficModeOneProbePerWindow(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 300ms\n  max_open_timeout: 300ms\n  half_open: traffic\n"})
	const agents = 20
	breakers := make([]*agentlib.Breaker, agents)
	for i := range agents {
		breakers[i] = breaker(t, newAgent(t, c, fmt.Sprintf("agent-%d", i)), "openai")
	}
	c.Trip(t, "openai", 5)
	var healthy atomic.Bool
	perEpoch := map[int64]int{}
	var mu sync.Mutex
	call := func(b *agentlib.Breaker) {
		epoch := b.State().Epoch
		done, err := b.Allow()
		if err != nil {
			return
		}
		mu.Lock()
		if b.State().State == statestore.StateHalfOpen {
			perEpoch[epoch]++
		}
		mu.Unlock()
		if healthy.Load() {
			done(agentlib.Success())
		} else {
			done(agentlib.Failure(errProvider))
		}
	}
	hammer := func(until func() bool) {
		var wg sync.WaitGroup
		for _, b := range breakers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 20000 && !until(); n++ {
					call(b)
					time.Sleep(200 * time.Microsecond)
				}
			}()
		}
		wg.Wait()
	}
	// watch polls the cluster state in one goroutine, so the callers'
	// loops stay cheap.
	watch := func(cond func(statestore.Snapshot) bool) func() bool {
		var met atomic.Bool
		go func() {
			for deadline := time.Now().Add(30 * time.Second); !met.Load() && time.Now().Before(deadline); {
				s, err := c.Store.Snapshots(context.Background(), []string{"openai"})
				if err == nil && cond(s[0]) {
					met.Store(true)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		return met.Load
	}
	// Two failing windows, then the provider heals.
	hammer(watch(func(s statestore.Snapshot) bool { return s.Epoch >= 3 }))
	healthy.Store(true)
	hammer(watch(func(s statestore.Snapshot) bool { return s.State == statestore.StateClosed }))
	mu.Lock()
	defer mu.Unlock()
	t.Logf("probes per half-open window: %v", perEpoch)
	if len(perEpoch) < 3 {
		t.Fatalf("saw %d half-open windows, want at least 3: %v", len(perEpoch), perEpoch)
	}
	for e, n := range perEpoch {
		if n != 1 {
			t.Fatalf("window %d let %d calls through, want 1", e, n)
		}
	}
	testcluster.Eventually(t, time.Second, "every agent allows after the good probe", func() bool {
		for _, b := range breakers {
			if b.State().State != statestore.StateClosed {
				return false
			}
		}
		return true
	})
}

func TestExecute_ClassifiesOutcomes(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	a := newAgent(t, c, "a1")
	b := breaker(t, a, "openai")
	ctx := context.Background()
	fail := func(context.Context) error { return errProvider }
	for range 4 {
		if err := b.Execute(ctx, fail); !errors.Is(err, errProvider) {
			t.Fatalf("Execute returned %v, want the provider's error", err)
		}
	}
	// The caller's own cancellation says nothing about the provider.
	for range 10 {
		cctx, cancel := context.WithCancel(ctx)
		err := b.Execute(cctx, func(ctx context.Context) error { cancel(); return ctx.Err() })
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
	// Ignored outcomes (a 400, a 404) neither.
	for range 10 {
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(agentlib.Ignored())
	}
	// The four failures reach the cluster; the ignored outcomes add nothing.
	testcluster.Eventually(t, 2*time.Second, "4 failures counted", func() bool {
		r, err := c.Store.Report(ctx, "openai", c.Config.Policy("openai"), "probe-reader", statestore.Batch{})
		if err != nil {
			t.Fatal(err)
		}
		if r.FailureCount > 4 || r.State != statestore.StateClosed {
			t.Fatalf("4 failures and ignored outcomes gave %+v (count %d)", r.Snapshot, r.FailureCount)
		}
		return r.FailureCount == 4
	})
	v, err := agentlib.Execute(ctx, b, func(context.Context) (string, error) { return "", errProvider })
	if v != "" || !errors.Is(err, errProvider) {
		t.Fatal(v, err)
	}
	testcluster.Eventually(t, 2*time.Second, "the 5th failure trips", func() bool { return denied(b, agentlib.ErrOpen) })
	called := false
	err = b.Execute(ctx, func(context.Context) error { called = true; return nil })
	if called || !errors.Is(err, agentlib.ErrOpen) {
		t.Fatalf("Execute on an open breaker: called=%v err=%v", called, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Execute(cctx, func(context.Context) error { called = true; return nil }); !errors.Is(err, context.Canceled) || called {
		t.Fatalf("Execute with a done ctx: %v", err)
	}
}

func TestAgent_CoordinatorFailover(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Coordinators: 2, ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	a := newAgent(t, c, "a1")
	b := breaker(t, a, "openai")
	c.Coordinators[0].Stop()
	for range 5 {
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(agentlib.Failure(errProvider))
	}
	testcluster.Eventually(t, 3*time.Second, "the trip goes through the second coordinator", func() bool {
		return c.Snapshot(t, "openai").State == statestore.StateOpen
	})
	testcluster.Eventually(t, 3*time.Second, "not degraded with one coordinator up", func() bool { return !a.Degraded() })
}

func TestAgent_DegradedWhenNoCoordinatorAnswers(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	a := newAgent(t, c, "a1", func(cfg *agentlib.Config) { cfg.ResyncInterval = 100 * time.Millisecond })
	b := breaker(t, a, "openai")
	c.Coordinators[0].Stop()
	done, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	done(agentlib.Failure(errProvider))
	testcluster.Eventually(t, 3*time.Second, "degraded", a.Degraded)
	// The local breaker has the same policy: 5 consecutive failures.
	for range 5 {
		if done, err := b.Allow(); err == nil {
			done(agentlib.Failure(errProvider))
		}
	}
	if _, err := b.Allow(); !errors.Is(err, agentlib.ErrOpen) || !errors.Is(err, agentlib.ErrDegraded) {
		t.Fatalf("local breaker after 5 failures: %v", err)
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	bad := []agentlib.Config{
		{RedisURL: "redis://127.0.0.1:1"},
		{CoordinatorURL: "ftp://x", RedisURL: "redis://127.0.0.1:1"},
		{CoordinatorURL: "http://127.0.0.1:1"},
		{CoordinatorURL: "http://127.0.0.1:1", RedisURL: "memcached://x"},
		{CoordinatorURL: "http://127.0.0.1:1", RedisURL: "redis://127.0.0.1:1", DefaultPolicy: &statestore.Policy{}},
	}
	for i, cfg := range bad {
		if a, err := agentlib.New(cfg); !errors.Is(err, agentlib.ErrInvalidConfig) {
			if a != nil {
				a.Close()
			}
			t.Errorf("config %d: err = %v, want ErrInvalidConfig", i, err)
		}
	}
}
