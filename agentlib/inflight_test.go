package agentlib_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

func fastClock(cfg *agentlib.Config) { cfg.HangResolution = 20 * time.Millisecond }

// TestAgents_HangTripsWhileInFlight: the provider stops answering. Calls
// that wait past hang_after trip the cluster while they are still in
// flight; when they finally end, after the breaker healed, they do not
// trip it again.
func TestAgents_HangTripsWhileInFlight(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  consecutive_failures: 10\n  hang_after: 300ms\n  open_timeout: 1m\n"})
	const agents = 5
	breakers := make([]*agentlib.Breaker, agents)
	for i := range agents {
		breakers[i] = breaker(t, newAgent(t, c, fmt.Sprintf("agent-%d", i), fastClock), "openai")
	}
	for _, b := range breakers {
		testcluster.Eventually(t, 2*time.Second, "the policy mirrored", func() bool { return b.HangAfterForTest() > 0 })
	}
	// 4 calls per agent that never answer, 20 in all.
	var hanging []func(agentlib.Outcome)
	start := time.Now()
	for range 4 {
		for _, b := range breakers {
			done, err := b.Allow()
			if err != nil {
				t.Fatalf("allowed before the hang was seen: %v", err)
			}
			hanging = append(hanging, done)
		}
	}
	testcluster.Eventually(t, 5*time.Second, "every agent denies while the calls still hang", func() bool {
		for _, b := range breakers {
			if _, err := b.Allow(); !errors.Is(err, agentlib.ErrOpen) {
				return false
			}
		}
		return true
	})
	took := time.Since(start)
	t.Logf("hang_after 300ms: the fleet tripped %s after the calls began, with all 20 still in flight", took.Round(time.Millisecond))
	if took < 300*time.Millisecond {
		t.Fatalf("tripped %s after the calls began: before hang_after", took)
	}
	evs, err := c.Store.Events(context.Background(), "openai", 1, "")
	if err != nil || len(evs) != 1 || evs[0].Reason != "consecutive_failures" || !strings.Contains(evs[0].LastError, "hang_after") {
		t.Fatalf("trip event = %+v %v", evs, err)
	}

	// The provider heals; the breaker closes.
	res, err := c.Store.Reset(context.Background(), "openai", c.Config.Policy("openai"), "ops", "healed")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range breakers {
		testcluster.Eventually(t, 2*time.Second, "the agents see the close", func() bool { return b.State().Version == res.Version })
	}
	// The calls that hung through the outage end now, with failures.
	for _, done := range hanging {
		done(agentlib.Failure(errors.New("timeout awaiting response headers")))
	}
	// Then 9 fresh failures, one short of the threshold: the late ones,
	// had they counted, would trip it.
	for i := range 9 {
		done, err := breakers[i%agents].Allow()
		if err != nil {
			t.Fatalf("denied after the heal: %v", err)
		}
		done(agentlib.Failure(errProvider))
	}
	testcluster.Eventually(t, 3*time.Second, "the fresh failures are counted", func() bool {
		d, err := c.Store.Details(context.Background(), []string{"openai"})
		if err != nil {
			t.Fatal(err)
		}
		if d[0].State != statestore.StateClosed {
			t.Fatalf("the healed breaker tripped again: %+v (count %d)", d[0].Snapshot, d[0].FailureCount)
		}
		return d[0].FailureCount == 9
	})
}

// TestAgents_OutcomesCountOnlyAgainstTheStateTheyStartedUnder: with no
// hang detection, calls allowed before a trip that end, failing, after
// the breaker closed again say nothing about the healed provider: they
// count against the state they were allowed under, which is gone, and do
// not trip the healed breaker. (The script's side of the fence is
// statestore's TestStore_ReportProtocol.)
func TestAgents_OutcomesCountOnlyAgainstTheStateTheyStartedUnder(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  consecutive_failures: 5\n  open_timeout: 1m\n"})
	const agents = 5
	breakers := make([]*agentlib.Breaker, agents)
	for i := range agents {
		breakers[i] = breaker(t, newAgent(t, c, fmt.Sprintf("agent-%d", i)), "openai")
	}
	// Two calls per agent start and wait: 10 in all, twice the threshold.
	var late []func(agentlib.Outcome)
	for range 2 {
		for _, b := range breakers {
			done, err := b.Allow()
			if err != nil {
				t.Fatal(err)
			}
			late = append(late, done)
		}
	}
	c.Trip(t, "openai", 5)
	res, err := c.Store.Reset(context.Background(), "openai", c.Config.Policy("openai"), "ops", "healed")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range breakers {
		testcluster.Eventually(t, 2*time.Second, "the agents see the close", func() bool { return b.State().Version == res.Version })
	}
	for _, done := range late {
		done(agentlib.Failure(errors.New("timeout awaiting response headers")))
	}
	// They count against nothing: 4 fresh failures, one short of the
	// threshold, reported with whatever else is pending, leave it closed
	// with a count of 4. (The agent keeps a tally per state and never
	// reports an old one's; the cluster's script drops a part that names an
	// older state too, for a report already on its way.)
	for i := range 4 {
		done, err := breakers[i].Allow()
		if err != nil {
			t.Fatalf("denied after the heal: %v", err)
		}
		done(agentlib.Failure(errProvider))
	}
	testcluster.Eventually(t, 3*time.Second, "the fresh failures are counted", func() bool {
		d, err := c.Store.Details(context.Background(), []string{"openai"})
		if err != nil {
			t.Fatal(err)
		}
		if d[0].State != statestore.StateClosed {
			t.Fatalf("the healed breaker tripped on calls allowed before the heal: %+v (count %d)", d[0].Snapshot, d[0].FailureCount)
		}
		return d[0].FailureCount == 4
	})
	evs, err := c.Store.Events(context.Background(), "openai", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Version > res.Version {
			t.Fatalf("an event after the heal: %+v", e)
		}
	}
}

// TestCall_RespondingIsNotAHang: a stream that started answering is not
// waiting for the provider, however long it runs; one that did not start
// is reported as hung, once, with its age.
func TestCall_RespondingIsNotAHang(t *testing.T) {
	a, rec := newRecordedAgent(t, 10*time.Millisecond)
	b := breaker(t, a, "openai")
	p := statestore.DefaultPolicy()
	p.HangAfter = 100 * time.Millisecond
	b.ApplyPolicyForTest(p) // no coordinator: give the mirror the policy
	streaming, err := b.Begin()
	if err != nil {
		t.Fatal(err)
	}
	streaming.Responding()
	stalled, err := b.Begin()
	if err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 3*time.Second, "the stalled call is reported as hung", func() bool {
		return rec.hung("openai") > 0
	})
	if n := rec.hung("openai"); n != 1 {
		t.Fatalf("%d calls reported hung, want 1 (the one that never answered)", n)
	}
	w, oldest := rec.hungWaiting("openai")
	if w != 1 || oldest < 100 {
		t.Fatalf("hung report: waiting %d oldest %d ms, want 1 and >= 100", w, oldest)
	}
	streaming.Done(agentlib.Success())
	stalled.Done(agentlib.Failure(errProvider)) // counted as hung already
	stalled.Done(agentlib.Failure(errProvider)) // a second Done does nothing
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := rec.sum("openai")
	if got.OK != 1 || got.Fail != 0 || rec.hung("openai") != 1 {
		t.Fatalf("after the ends: %+v, hung %d; want 1 success, no failure, 1 hung", got, rec.hung("openai"))
	}
}

func TestBreaker_AllowDoesNotAllocateWhileTrackingCalls(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  hang_after: 2s\n  slow_call: 1s\n  slow_call_rate: 90\n  min_calls: 1000000\n"})
	a := newAgent(t, c, "a1")
	b := breaker(t, a, "openai")
	testcluster.Eventually(t, 2*time.Second, "the policy mirrored", func() bool { return b.HangAfterForTest() > 0 })
	allow := testing.AllocsPerRun(1000, func() {
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(agentlib.Success())
	})
	begin := testing.AllocsPerRun(1000, func() {
		call, err := b.Begin()
		if err != nil {
			t.Fatal(err)
		}
		call.Responding()
		call.Done(agentlib.Success())
	})
	if allow != 0 || begin != 0 {
		t.Fatalf("with in-flight tracking: Allow+done %v allocs/op, Begin+Responding+Done %v, want 0", allow, begin)
	}
}

// TestAgent_CoordinatorCutOffKeepsMirrorDenial: an agent that reaches
// Redis but no coordinator still follows the mirror: another agent's trip
// stands on it.
func TestAgent_CoordinatorCutOffKeepsMirrorDenial(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	cut := newAgent(t, c, "cut", func(cfg *agentlib.Config) {
		cfg.CoordinatorURL = "http://127.0.0.1:1" // nothing listens
		cfg.ResyncInterval = 50 * time.Millisecond
	})
	b := breaker(t, cut, "openai")
	testcluster.Eventually(t, 3*time.Second, "the coordinator link is down", func() bool {
		r, co := cut.Links()
		return r && !co && cut.Degraded()
	})
	other := breaker(t, newAgent(t, c, "other"), "openai")
	for range 5 {
		done, err := other.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(agentlib.Failure(errProvider))
	}
	testcluster.Eventually(t, 3*time.Second, "the cut-off agent's mirror shows the trip", func() bool {
		return b.State().State == statestore.StateOpen
	})
	for range 3 {
		if _, err := b.Allow(); !errors.Is(err, agentlib.ErrOpen) {
			t.Fatalf("the cut-off agent allowed a call while the cluster is open: %v", err)
		}
	}
}

// TestAgent_OneFailedResyncIsNotAnOutage: a single failed resync does not
// flip the agent into degraded mode.
func TestAgent_OneFailedResyncIsNotAnOutage(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	a := newAgent(t, c, "a1")
	b := breaker(t, a, "openai")
	a.FailLinkForTest(true)
	if a.Degraded() {
		t.Fatal("one failed resync made the agent degraded")
	}
	a.FailLinkForTest(true)
	if !a.Degraded() {
		t.Fatal("two failed resyncs in a row did not")
	}
	_ = b
}

// TestAgent_FollowsARolledBackRedis: Redis comes back from a failover with
// an older copy of a breaker (same incarnation, lower version): every
// agent follows it within two resyncs, and a reset made there reaches
// them.
func TestAgent_FollowsARolledBackRedis(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	a := newAgent(t, c, "a1", func(cfg *agentlib.Config) { cfg.ResyncInterval = 50 * time.Millisecond })
	b := breaker(t, a, "openai")
	ctx := context.Background()
	rdb := c.Redis.Client(t)
	before, err := rdb.HGetAll(ctx, "fusebox:{openai}:state").Result()
	if err != nil {
		t.Fatal(err)
	}
	c.Trip(t, "openai", 5)
	testcluster.Eventually(t, 2*time.Second, "open mirrored", func() bool { return b.State().State == statestore.StateOpen })
	// The "failover": Redis now holds what it held before the trip.
	if len(before) == 0 {
		// The trip was the first write: the older copy is "closed, v0" of
		// the same gen.
		gen := b.State().Gen
		before = map[string]string{"state": "closed", "version": "0", "gen": gen, "override": "", "epoch": "0"}
	}
	if err := rdb.Del(ctx, "fusebox:{openai}:state").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, "fusebox:{openai}:state", before).Err(); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 2*time.Second, "the agent follows Redis back", func() bool {
		s := b.State()
		return s.State == statestore.StateClosed && s.Version == 0
	})
	if _, err := b.Allow(); err != nil {
		t.Fatalf("denied after following Redis to closed: %v", err)
	}
	c.Trip(t, "openai", 5)
	res, err := c.Store.Reset(ctx, "openai", c.Config.Policy("openai"), "ops", "after the failover")
	if err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 2*time.Second, "the reset reaches the agent", func() bool { return b.State().Version == res.Version })
}

// TestAgent_FollowsARolledBackRedisAfterAWriteThere: Redis comes back
// with an older copy and an operator resets the breaker there before any
// agent noticed: the reset takes the lost version's number again, so its
// message is not newer than the agent's mirror. The agent still follows
// Redis within two resyncs, and the stale message of the lost state,
// heard again, does not take it back.
func TestAgent_FollowsARolledBackRedisAfterAWriteThere(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	a := newAgent(t, c, "a1", func(cfg *agentlib.Config) { cfg.ResyncInterval = 200 * time.Millisecond })
	b := breaker(t, a, "openai")
	ctx := context.Background()
	rdb := c.Redis.Client(t)
	// A first write, so the breaker's incarnation exists before the trip.
	if _, err := c.Store.Reset(ctx, "openai", c.Config.Policy("openai"), "ops", "a first write"); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 2*time.Second, "the first write mirrored", func() bool { return b.State().Version == 1 })
	before, err := rdb.HGetAll(ctx, "fusebox:{openai}:state").Result()
	if err != nil {
		t.Fatal(err)
	}
	sub := rdb.Subscribe(ctx, "fusebox:changes")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	c.Trip(t, "openai", 5)
	testcluster.Eventually(t, 2*time.Second, "open mirrored", func() bool { return b.State().State == statestore.StateOpen })
	lost := b.State()
	var tripMsg string
	for tripMsg == "" {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := report.DecodeMessage(m.Payload); err == nil && s.Version == lost.Version {
			tripMsg = m.Payload
		}
	}
	// The "failover" and, before a resync could notice it, the reset.
	if err := rdb.Del(ctx, "fusebox:{openai}:state").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, "fusebox:{openai}:state", before).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := c.Store.Reset(ctx, "openai", c.Config.Policy("openai"), "ops", "after the failover")
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != lost.Version || res.Gen != lost.Gen {
		t.Fatalf("the reset is at %s v%d, the lost trip was at %s v%d: not the case under test", res.Gen, res.Version, lost.Gen, lost.Version)
	}
	testcluster.Eventually(t, 2*time.Second, "the agent follows Redis", func() bool {
		s := b.State()
		return s.State == statestore.StateClosed && s.Version == res.Version
	})
	if _, err := b.Allow(); err != nil {
		t.Fatalf("denied after following Redis to closed: %v", err)
	}
	// The lost state's message, delivered late, is only late.
	if err := rdb.Publish(ctx, "fusebox:changes", tripMsg).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Publish(ctx, "fusebox:changes", tripMsg).Err(); err != nil {
		t.Fatal(err)
	}
	// Both deliveries are handled in order before a later message is: a
	// marker change to another breaker, heard by this agent, shows they
	// were.
	other := breaker(t, a, "anthropic")
	c.Trip(t, "anthropic", 5)
	testcluster.Eventually(t, 2*time.Second, "the marker heard", func() bool { return other.State().State == statestore.StateOpen })
	if s := b.State(); s.State != statestore.StateClosed || s.Version != res.Version {
		t.Fatalf("a stale message moved the mirror to %s v%d", s.Effective(), s.Version)
	}
}

// TestAgent_AsksForAPermitInEveryIncarnation: after Redis lost its data,
// epochs start at 1 again; an agent that tried epoch 1 of the old
// incarnation asks again in the new one.
func TestAgent_AsksForAPermitInEveryIncarnation(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 100ms\n  max_open_timeout: 100ms\n  half_open: traffic\n"})
	a := newAgent(t, c, "a1", func(cfg *agentlib.Config) { cfg.ResyncInterval = 50 * time.Millisecond })
	b := breaker(t, a, "openai")
	probe := func() {
		t.Helper()
		c.Trip(t, "openai", 5)
		testcluster.Eventually(t, 3*time.Second, "half-open, epoch 1, mirrored", func() bool {
			s := b.State()
			return s.State == statestore.StateHalfOpen && s.Epoch == 1
		})
		var done func(agentlib.Outcome)
		testcluster.Eventually(t, 2*time.Second, "the agent gets the permit", func() bool {
			var err error
			done, err = b.Allow()
			return err == nil
		})
		done(agentlib.Failure(errProvider))
	}
	probe()
	ctx := context.Background()
	old := b.State().Gen
	if err := c.Redis.Client(t).FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// Empty, or written again since by a report: another incarnation.
	testcluster.Eventually(t, 2*time.Second, "the mirror follows the emptied Redis", func() bool { return b.State().Gen != old })
	probe()
}

// TestAgent_AnIgnoredProbeGivesTheWindowBack: the traffic probe ends in a
// 400 or a cancel: another call probes at once, not after probe_timeout.
func TestAgent_AnIgnoredProbeGivesTheWindowBack(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 100ms\n  half_open: traffic\n  probe_timeout: 1m\n"})
	a := newAgent(t, c, "a1")
	b := breaker(t, a, "openai")
	c.Trip(t, "openai", 5)
	var done func(agentlib.Outcome)
	testcluster.Eventually(t, 3*time.Second, "the first probe's permit", func() bool {
		if b.State().State != statestore.StateHalfOpen {
			return false // an Allow before the mirror saw the trip is no probe
		}
		var err error
		done, err = b.Allow()
		return err == nil
	})
	epoch := b.State().Epoch
	done(agentlib.Ignored())
	testcluster.Eventually(t, 3*time.Second, "a new window, and its permit", func() bool {
		if b.State().Epoch <= epoch {
			return false
		}
		var err error
		done, err = b.Allow()
		return err == nil
	})
	done(agentlib.Success())
	testcluster.Eventually(t, 3*time.Second, "closed by the second probe", func() bool { return c.Snapshot(t, "openai").State == statestore.StateClosed })
}

// TestAgent_AHangingProbeFailsAtHangAfter: the one traffic probe hangs:
// the window is decided as failed when it crosses hang_after.
func TestAgent_AHangingProbeFailsAtHangAfter(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 100ms\n  max_open_timeout: 1m\n  half_open: traffic\n  hang_after: 200ms\n  probe_timeout: 1m\n"})
	a := newAgent(t, c, "a1", fastClock)
	b := breaker(t, a, "openai")
	c.Trip(t, "openai", 5)
	var call agentlib.Call
	testcluster.Eventually(t, 3*time.Second, "the probe's permit", func() bool {
		if b.State().State != statestore.StateHalfOpen {
			return false
		}
		var err error
		call, err = b.Begin()
		return err == nil
	})
	testcluster.Eventually(t, 3*time.Second, "the window failed while the probe hangs", func() bool {
		evs, err := c.Store.Events(context.Background(), "openai", 1, "")
		return err == nil && len(evs) == 1 && evs[0].Event == "probe_failed"
	})
	call.Done(agentlib.Success()) // too late: decided
	if s := c.Snapshot(t, "openai"); s.State != statestore.StateOpen {
		t.Fatalf("a late end of the hung probe moved the breaker: %+v", s)
	}
}

// TestAgent_OneSickAgentOpensOnlyItself: with min_agents 2, failures only
// one agent sees open that agent alone.
func TestAgent_OneSickAgentOpensOnlyItself(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  min_agents: 2\n  open_timeout: 1m\n"})
	sick := breaker(t, newAgent(t, c, "sick"), "openai")
	well := breaker(t, newAgent(t, c, "well"), "openai")
	for range 5 {
		done, err := sick.Allow()
		if err != nil {
			break
		}
		done(agentlib.Failure(errors.New("dial tcp: lookup api.openai.com: no such host")))
	}
	testcluster.Eventually(t, 3*time.Second, "the sick agent opens its own breaker", func() bool {
		_, err := sick.Allow()
		return errors.Is(err, agentlib.ErrOpen) && errors.Is(err, agentlib.ErrLocal)
	})
	if _, err := well.Allow(); err != nil {
		t.Fatalf("a healthy agent was denied: %v", err)
	}
	if s := c.Snapshot(t, "openai"); s.State != statestore.StateClosed {
		t.Fatalf("one agent's failures tripped the cluster: %+v", s)
	}
}

func TestExecute_APanicIsAFailure(t *testing.T) {
	a, rec := newRecordedAgent(t, time.Hour)
	b := breaker(t, a, "openai")
	var wg sync.WaitGroup
	wg.Add(1)
	var recovered any
	go func() {
		defer wg.Done()
		defer func() { recovered = recover() }()
		_ = b.Execute(context.Background(), func(context.Context) error { panic("boom") })
	}()
	wg.Wait()
	if recovered != "boom" {
		t.Fatalf("recovered %v, want the panic to go on", recovered)
	}
	testcluster.Eventually(t, 2*time.Second, "the panic is reported as a failure", func() bool {
		got, _ := rec.sum("openai")
		return got.Fail == 1 && strings.Contains(got.LastError, "panic: boom")
	})
}
