//go:build integration

package integration

import (
	"testing"
	"time"
)

// sidecarCalls is how many calls the sidecars made to a provider, read
// from their metrics (the fake provider's count also has the canaries).
func (e *env) sidecarCalls(provider string) float64 {
	e.t.Helper()
	sum := 0.0
	for _, a := range e.agents {
		sum += metric(e.t, a.url, `fusebox_sidecar_upstream_calls_total{provider="`+provider+`"`)
	}
	return sum
}

// waitStopped waits until the sidecars' calls to provider stop growing
// for quiet, and returns when they last grew.
func (e *env) waitStopped(provider string, quiet, within time.Duration) (time.Time, float64) {
	e.t.Helper()
	last, lastAt := e.sidecarCalls(provider), time.Now()
	deadline := time.Now().Add(within)
	for time.Since(lastAt) < quiet {
		if time.Now().After(deadline) {
			e.t.Fatalf("the sidecars kept calling %s for %s", provider, within)
		}
		time.Sleep(20 * time.Millisecond)
		if v := e.sidecarCalls(provider); v != last {
			last, lastAt = v, time.Now()
		}
	}
	return lastAt, last
}

// Suite 1: the primary answers 503. The cluster trips after the threshold
// counted across all sidecars, every sidecar serves from the fallback, the
// primary sees one canary per half-open window and nothing else, and when
// it heals every sidecar goes back to it.
func TestSuite1_Primary503(t *testing.T) {
	e := newEnv(t, options{})
	l := e.startLoad(20 * time.Millisecond)
	start := time.Now()
	eventually(t, 20*time.Second, "every sidecar served by the primary", func() bool { return l.servedBy(start, "openai", 3) })

	before := e.sidecarCalls("openai")
	e.fault("openai", `{"kind":"status","status":503}`)
	outage := time.Now()
	eventually(t, 10*time.Second, "the cluster trips", func() bool { return e.state("openai") != "closed" })
	stoppedAt, after := e.waitStopped("openai", 2500*time.Millisecond, 20*time.Second)
	extra := after - before - 5
	t.Logf("suite 1: %.0f calls reached the failing primary after the threshold of 5 (3 sidecars, ~150 req/s); the last sidecar stopped calling it %s after the outage began",
		extra, stoppedAt.Sub(outage).Round(time.Millisecond))
	eventually(t, 5*time.Second, "every sidecar serves from the fallback", func() bool { return l.servedBy(time.Now().Add(-time.Second), "anthropic", 5) })

	// From now on only canaries reach the primary: one per window.
	watchFrom := time.Now()
	canariesBefore := e.calls("openai")
	startsBefore := countEvents(e.journal("openai"), "probe_started")
	time.Sleep(5 * time.Second)
	canaries := e.calls("openai") - canariesBefore
	windows := countEvents(e.journal("openai"), "probe_started") - startsBefore
	if e.sidecarCalls("openai") != after {
		t.Fatal("a sidecar called the primary while the breaker was open")
	}
	t.Logf("suite 1: %d canaries reached the primary in %d half-open windows over %s", canaries, windows, time.Since(watchFrom).Round(time.Second))
	if windows < 1 || canaries != int64(windows) {
		t.Fatalf("%d canaries for %d probe windows: want exactly one per window", canaries, windows)
	}

	e.heal("openai")
	healed := time.Now()
	eventually(t, 15*time.Second, "every sidecar back on the primary", func() bool { return l.servedBy(healed, "openai", 3) })
	t.Logf("suite 1: every sidecar back on the primary %s after it healed", time.Since(healed).Round(time.Millisecond))
	if f := l.failures(start); len(f) != 0 {
		t.Fatalf("%d requests failed although the fallback was up; first: %+v", len(f), f[0])
	}
}

func countEvents(evs []event, name string) int {
	n := 0
	for _, e := range evs {
		if e.Event == name {
			n++
		}
	}
	return n
}
