//go:build integration

package integration

import (
	"testing"
	"time"
)

// degradedCount is how many sidecars say they are degraded.
func (e *env) degradedCount() int {
	e.t.Helper()
	n := 0
	for _, a := range e.agents {
		if metric(e.t, a.url, "fusebox_agent_degraded") == 1 {
			n++
		}
	}
	return n
}

// Suite 4: Redis paused, then stopped and restarted. The sidecars keep
// serving through their local breakers, say they are degraded, and never
// answer an error of their own; afterwards they resync and leave degraded
// mode. State written before the outage survives (Redis runs with an
// append-only file here).
func TestSuite4_RedisPausedStoppedRestarted(t *testing.T) {
	e := newEnv(t, options{})
	e.admin("/v1/breakers/billing-api/force-open", `{"reason":"written before the outage"}`)
	l, start := e.warmLoad()

	docker(t, "pause", e.redis.c.GetContainerID())
	paused := time.Now()
	eventually(t, 10*time.Second, "every sidecar degraded", func() bool { return e.degradedCount() == 3 })
	t.Logf("suite 4: all sidecars degraded %s after Redis was paused", time.Since(paused).Round(time.Millisecond))
	during := time.Now()
	eventually(t, 10*time.Second, "served while degraded", func() bool { return l.servedBy(during, "openai", 5) })
	docker(t, "unpause", e.redis.c.GetContainerID())
	unpaused := time.Now()
	eventually(t, 15*time.Second, "every sidecar leaves degraded mode", func() bool { return e.degradedCount() == 0 })
	t.Logf("suite 4: all sidecars left degraded mode %s after Redis was unpaused", time.Since(unpaused).Round(time.Millisecond))

	timeout := 2 * time.Second
	if err := e.redis.c.Stop(e.ctx, &timeout); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	eventually(t, 10*time.Second, "every sidecar degraded", func() bool { return e.degradedCount() == 3 })
	during = time.Now()
	eventually(t, 10*time.Second, "served while Redis is down", func() bool { return l.servedBy(during, "openai", 5) })
	if err := e.redis.c.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	eventually(t, 20*time.Second, "every sidecar leaves degraded mode", func() bool { return e.degradedCount() == 0 })
	t.Logf("suite 4: Redis down for %s; all sidecars back on the cluster state %s after it restarted",
		restarted.Sub(stopped).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	if s := e.state("billing-api"); s != "forced_open" {
		t.Fatalf("state written before the outage: %q, want forced_open (Redis kept its append-only file)", s)
	}
	// And the cluster works again: a trip now reaches every sidecar.
	e.admin("/v1/breakers/openai/force-open", `{"reason":"after the outage"}`)
	after := time.Now()
	eventually(t, 10*time.Second, "every sidecar follows the cluster again", func() bool { return l.servedBy(after, "anthropic", 3) })
	f := l.failures(start)
	t.Logf("suite 4: %d of %d requests failed because of fusebox itself", len(f), len(l.since(start)))
	if len(f) != 0 {
		t.Fatalf("first failure: %+v", f[0])
	}
}

// Suite 5: the coordinator that holds a canary's probe lock is killed. The
// other one probes after the lock expires, in a new window; no breaker
// stays half-open; no window gets two canaries.
func TestSuite5_ProbingCoordinatorKilled(t *testing.T) {
	e := newEnv(t, options{coordYAML: `
defaults:
  consecutive_failures: 5
  canary_interval: 1s
  canary_max_interval: 2s
  probe_timeout: 30s
breakers:
  openai:
    canary:
      kind: openai
      url: http://fakeprovider:9090/openai/v1
      model: gpt-4o-mini
      timeout: 4s
`})
	l, start := e.warmLoad()
	before := e.sidecarCalls("openai")
	e.fault("openai", `{"kind":"hang"}`) // canaries hang too: a probe lasts its whole timeout
	outage := time.Now()
	eventually(t, 15*time.Second, "the cluster trips", func() bool { return e.state("openai") != "closed" })
	stoppedAt, after := e.waitStopped("openai", 2*time.Second, 20*time.Second)
	t.Logf("suite 5: %.0f calls reached the hanging primary after the threshold of 5; the last sidecar stopped %s after the outage began",
		after-before-5, stoppedAt.Sub(outage).Round(time.Millisecond))

	var holder string
	eventually(t, 15*time.Second, "a coordinator probes", func() bool {
		for _, ev := range e.journal("openai") {
			if ev.Event == "probe_started" {
				holder = ev.Actor
			}
		}
		return holder != ""
	})
	killed := time.Now()
	for _, c := range e.coords {
		if c.name == holder {
			docker(t, "kill", c.c.GetContainerID())
		}
	}
	var survivor *node
	for _, c := range e.coords {
		if c.name != holder {
			survivor = c
		}
	}
	e.coords = []*node{survivor}
	var takeover time.Time
	eventually(t, 20*time.Second, "the other coordinator probes a new window", func() bool {
		for _, ev := range e.journal("openai") {
			if ev.Event == "half_open" && ev.Reason == "prober_lost" && ev.Actor == survivor.name {
				takeover = ev.Timestamp
				return true
			}
		}
		return false
	})
	t.Logf("suite 5: %s killed mid-canary; %s took the probe over in a new window %s later (canary timeout 4s + lock margin 0.5s)",
		holder, survivor.name, takeover.Sub(killed).Round(100*time.Millisecond))

	e.heal("openai")
	healed := time.Now()
	eventually(t, 30*time.Second, "closed again", func() bool { return e.state("openai") == "closed" })
	eventually(t, 15*time.Second, "every sidecar back on the primary", func() bool { return l.servedBy(healed, "openai", 3) })
	perWindow := map[string]int{}
	windows := 0
	for _, ev := range e.journal("openai") {
		if ev.Event == "probe_started" {
			perWindow[ev.Reason]++
		}
		if ev.Event == "half_open" {
			windows++
		}
	}
	for w, n := range perWindow {
		if n != 1 {
			t.Fatalf("window %q got %d canaries", w, n)
		}
	}
	t.Logf("suite 5: %d half-open windows, canaries per window %v; closed %s after the heal", windows, perWindow, time.Since(healed).Round(time.Millisecond))
	if f := l.failures(start); len(f) != 0 {
		t.Fatalf("%d requests failed although the fallback was up; first: %+v", len(f), f[0])
	}
}

// Suite 6: one sidecar cut off from Redis and the coordinators (its
// providers still reachable), then reconnected: degraded while cut off,
// converged within the resync interval after.
func TestSuite6_SidecarPartitioned(t *testing.T) {
	e := newEnv(t, options{partitionable: true})
	l, start := e.warmLoad()
	cut := e.agents[0]
	// agent-0 reaches Redis and the coordinators only through ctl0: take
	// them off it.
	far := append([]*node{e.redis}, e.coords...)
	for _, n := range far {
		docker(t, "network", "disconnect", e.ctl0, n.c.GetContainerID())
	}
	eventually(t, 10*time.Second, "the cut-off sidecar is degraded", func() bool { return metric(t, cut.url, "fusebox_agent_degraded") == 1 })
	if metric(t, e.agents[1].url, "fusebox_agent_degraded") != 0 {
		t.Fatal("a connected sidecar went degraded")
	}
	// The cluster changes while it cannot see: the others follow, it
	// cannot (its local breaker still passes the healthy primary).
	e.admin("/v1/breakers/openai/force-open", `{"reason":"while agent-0 is cut off"}`)
	forced := time.Now()
	eventually(t, 5*time.Second, "the connected sidecars follow the override", func() bool {
		n := 0
		for _, r := range l.since(forced.Add(500 * time.Millisecond)) {
			if r.sidecar != 0 && r.provider == "anthropic" {
				n++
			}
		}
		return n >= 10
	})
	for _, n := range far {
		docker(t, "network", "connect", "--alias", n.name, e.ctl0, n.c.GetContainerID())
	}
	reconnected := time.Now()
	eventually(t, 10*time.Second, "the reconnected sidecar follows the override", func() bool {
		for _, r := range l.since(reconnected) {
			if r.sidecar == 0 && r.provider == "anthropic" {
				return true
			}
		}
		return false
	})
	converged := time.Since(reconnected)
	eventually(t, 10*time.Second, "and leaves degraded mode", func() bool { return metric(t, cut.url, "fusebox_agent_degraded") == 0 })
	f := l.failures(start)
	t.Logf("suite 6: the reconnected sidecar converged %s after it was reconnected (resync interval 300ms); %d of %d requests failed because of fusebox itself",
		converged.Round(time.Millisecond), len(f), len(l.since(start)))
	if len(f) != 0 {
		t.Fatalf("first failure: %+v", f[0])
	}
}
