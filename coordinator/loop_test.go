package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/statestore"
)

// slowPipelines delays every pipeline (the timer's reads) while on.
type slowPipelines struct {
	on    atomic.Bool
	delay time.Duration
}

func (h *slowPipelines) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *slowPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h *slowPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.on.Load() {
			time.Sleep(h.delay)
		}
		return next(ctx, cmds)
	}
}

// runLoop runs a coordinator's loop until the test ends and returns a
// function that stops it and waits for Run to return.
func runLoop(t *testing.T, c *coordinator.Coordinator) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func subscribed(t *testing.T, rdb redis.UniversalClient, channel string) {
	t.Helper()
	testcluster.Eventually(t, 5*time.Second, "the coordinator subscribed", func() bool {
		n, err := rdb.PubSubNumSub(context.Background(), channel).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[channel] >= 1
	})
}

// A slow tick (Redis slow on the timer's reads) must not hold up the
// event stream: the watch hands events to the hub without waiting for
// the timer. Before the split it sent each name to the timer on a
// 64-slot channel, and stalled behind it.
func TestLoop_ASlowTickDoesNotBlockTheEventStream(t *testing.T) {
	srv := redistest.Start(t)
	hook := &slowPipelines{delay: 3 * time.Second}
	slow := redis.NewClient(&redis.Options{Addr: srv.Addr})
	slow.AddHook(hook)
	t.Cleanup(func() { _ = slow.Close() })
	store, _ := statestore.New(slow, statestore.Options{})
	c, err := coordinator.New(coordinator.Config{TickInterval: 10 * time.Millisecond}, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := c.Subscribe()
	defer unsubscribe()
	runLoop(t, c)
	subscribed(t, srv.Client(t), store.Channel())
	other, _ := statestore.New(srv.Client(t), statestore.Options{})
	ctx := context.Background()
	// One breaker open, so every tick reads it: the timer is now stuck in
	// a 3 s read.
	if _, err := other.Report(ctx, "stuck", config.Default().Policy("stuck"), "a", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
		t.Fatal(err)
	}
	hook.on.Store(true)
	time.Sleep(50 * time.Millisecond) // let the timer enter its slow read (not a wait for a condition: a head start)
	const n = 200
	for i := range n {
		if _, err := other.Reset(ctx, fmt.Sprintf("b-%03d", i), config.Default().Policy("x"), "ops", "flood"); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	deadline := time.After(2 * time.Second)
	for got < n+1 {
		select {
		case _, ok := <-events:
			if !ok {
				t.Fatalf("the listener was dropped after %d events", got)
			}
			got++
		case <-deadline:
			t.Fatalf("%d of %d events reached the stream within 2s while the timer was in a slow tick", got, n+1)
		}
	}
	hook.on.Store(false)
}

// Run joins its watch: when Run returns, nothing of the loop runs on.
func TestLoop_RunJoinsTheWatch(t *testing.T) {
	b := redistest.Real(t)
	store, _ := statestore.New(b.Client, statestore.Options{})
	c, err := coordinator.New(coordinator.Config{TickInterval: 10 * time.Millisecond}, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	stop := runLoop(t, c)
	subscribed(t, b.Client, store.Channel())
	stop()
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "coordinator.(*Loop).watch") || strings.Contains(stacks, "coordinator.(*Coordinator).watch") {
		t.Fatalf("the watch goroutine outlived Run:\n%s", stacks)
	}
}

// failProbeLocks makes Redis refuse the canary lock's SET.
type failProbeLocks struct{}

func (failProbeLocks) DialHook(next redis.DialHook) redis.DialHook { return next }
func (failProbeLocks) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "set" && strings.Contains(fmt.Sprint(cmd.Args()...), ":probe:") {
			cmd.SetErr(errors.New("ERR injected: the lock's node is sick"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (failProbeLocks) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// neverCanary is a canary the test never expects to run.
type neverCanary struct{ ran atomic.Int64 }

func (c *neverCanary) Probe(context.Context) probe.Result {
	c.ran.Add(1)
	return probe.Result{OK: true}
}
func (c *neverCanary) Timeout() time.Duration { return time.Second }

// A redsync error other than "taken" was once read as "someone else
// probes" and never logged.
func TestLoop_ProbeLockErrorsAreLogged(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	rdb.AddHook(failProbeLocks{})
	t.Cleanup(func() { _ = rdb.Close() })
	store, _ := statestore.New(rdb, statestore.Options{})
	cfg, err := config.Parse([]byte("breakers:\n  canb:\n    canary_interval: 50ms\n    canary:\n      kind: http\n      url: http://127.0.0.1:9/\n      timeout: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := zerolog.New(&logs)
	canary := &neverCanary{}
	c, err := coordinator.New(coordinator.Config{TickInterval: 10 * time.Millisecond, Logger: &log, Canaries: map[string]probe.Canary{"canb": canary}}, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runLoop(t, c)
	if _, err := store.Report(context.Background(), "canb", cfg.Policy("canb"), "a", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 5*time.Second, "the lock failure logged", func() bool {
		return strings.Contains(logs.String(), "probe lock: could not take the window's lock") && strings.Contains(logs.String(), "injected")
	})
	if canary.ran.Load() != 0 {
		t.Fatal("a canary ran without its window's lock")
	}
}

// Nothing once removed a breaker. The loop expires
// the ones no agent reports, except configured or overridden ones.
func TestLoop_ExpiresBreakersNobodyReports(t *testing.T) {
	b := redistest.Real(t)
	store, _ := statestore.New(b.Client, statestore.Options{})
	cfg, err := config.Parse([]byte("breakers:\n  named: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := zerolog.New(&logs)
	c, err := coordinator.New(coordinator.Config{
		TickInterval: 10 * time.Millisecond, RegistryRefresh: 50 * time.Millisecond, Logger: &log,
		Retention: 400 * time.Millisecond, RetentionSweep: 50 * time.Millisecond,
		AggregateInterval: 50 * time.Millisecond, // well inside the retention
	}, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []string{"gone-1", "gone-2", "kept", "named"} {
		if _, err := c.Ingest(ctx, valid(t, reportOf(n))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Force(ctx, "forced", statestore.OverrideClosed, 0, "ops", "held"); err != nil {
		t.Fatal(err)
	}
	runLoop(t, c)
	stopKeeping := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopKeeping:
				return
			case <-time.After(100 * time.Millisecond):
				_, _ = c.Ingest(ctx, valid(t, reportOf("kept")))
			}
		}
	}()
	testcluster.Eventually(t, 10*time.Second, "the unreported breakers expired", func() bool {
		names, err := store.Names(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(names, ",") == "forced,kept,named"
	})
	close(stopKeeping)
	if _, err := c.Breaker(ctx, "gone-1"); !errors.Is(err, coordinator.ErrNotFound) {
		t.Fatalf("an expired breaker: %v, want ErrNotFound", err)
	}
	if n := strings.Count(logs.String(), `"event":"expired"`); n != 2 {
		t.Fatalf("%d expired transitions logged, want 2 (one per expired breaker):\n%s", n, logs.String())
	}
	// It comes back with its next report.
	if _, err := c.Ingest(ctx, valid(t, reportOf("gone-1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Breaker(ctx, "gone-1"); err != nil {
		t.Fatalf("reported again: %v", err)
	}
}
