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
	l, start := e.warmLoad()

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

// Suite 2: the primary hangs. No client waits longer than the configured
// timeouts allow, and the sidecars' goroutines and open connections do not
// grow while it lasts.
func TestSuite2_PrimaryHangs(t *testing.T) {
	e := newEnv(t, options{})
	l, start := e.warmLoad()
	gor := func() (g, fds float64) {
		for _, a := range e.agents {
			g += metric(t, a.url, "go_goroutines")
			fds += metric(t, a.url, "process_open_fds")
		}
		return g, fds
	}
	g0, f0 := gor()

	e.fault("openai", `{"kind":"hang"}`)
	outage := time.Now()
	eventually(t, 15*time.Second, "the cluster trips", func() bool { return e.state("openai") != "closed" })
	eventually(t, 10*time.Second, "every sidecar serves from the fallback", func() bool { return l.servedBy(time.Now().Add(-time.Second), "anthropic", 5) })
	var gs, fs []float64
	for range 10 {
		g, f := gor()
		gs = append(gs, g)
		fs = append(fs, f)
		time.Sleep(500 * time.Millisecond)
	}
	// first_byte 1s, 2 attempts, backoff at most 200ms, then a fallback
	// that answers at once.
	limit := 2*time.Second + 200*time.Millisecond + time.Second
	var worst time.Duration
	for _, r := range l.since(outage) {
		worst = max(worst, r.took)
	}
	t.Logf("suite 2: slowest answer during the hang %s (limit %s); goroutines %v -> %v, open fds %v -> %v (sum of 3 sidecars, before -> during)",
		worst.Round(time.Millisecond), limit, g0, gs, f0, fs)
	if worst > limit {
		t.Fatalf("a client waited %s, longer than the timeouts allow (%s)", worst, limit)
	}
	for i := range gs {
		if gs[i] > g0+60 || fs[i] > f0+30 {
			t.Fatalf("sample %d: goroutines %v (before %v), fds %v (before %v): resources grow during the outage", i, gs[i], g0, fs[i], f0)
		}
	}
	if gs[len(gs)-1] > gs[0]+10 {
		t.Fatalf("goroutines keep growing: %v", gs)
	}
	if f := l.failures(start); len(f) != 0 {
		t.Fatalf("%d requests failed although the fallback was up; first: %+v", len(f), f[0])
	}
}

// Suite 3: a 429 with Retry-After keeps the whole cluster off the primary
// until then; then it resumes.
func TestSuite3_RetryAfter(t *testing.T) {
	e := newEnv(t, options{coordYAML: `
defaults:
  consecutive_failures: 5
  canary_interval: 1s
  canary_max_interval: 30s
breakers:
  openai:
    canary:
      kind: openai
      url: http://fakeprovider:9090/openai/v1
      model: gpt-4o-mini
      timeout: 1s
`})
	l, start := e.warmLoad()
	before := e.sidecarCalls("openai")
	const retryAfter = 4 * time.Second
	e.fault("openai", `{"kind":"status","status":429,"retry_after":"4"}`)
	eventually(t, 10*time.Second, "the cluster trips", func() bool { return e.state("openai") == "open" })
	tripped := time.Now()
	e.heal("openai") // healthy again at once, but it asked for 4 s
	stoppedAt, after := e.waitStopped("openai", time.Second, 10*time.Second)
	fakeAt := e.calls("openai")
	var resumed time.Time
	eventually(t, 15*time.Second, "calls resume", func() bool {
		if e.calls("openai") > fakeAt {
			if resumed.IsZero() {
				resumed = time.Now()
			}
			return true
		}
		return false
	})
	off := resumed.Sub(tripped)
	t.Logf("suite 3: %.0f sidecar calls reached the primary after the first 429 (threshold 1 with Retry-After); the last sidecar stopped %s after the trip; the cluster stayed off for %s (Retry-After %s)",
		after-before, stoppedAt.Sub(tripped).Round(time.Millisecond), off.Round(time.Millisecond), retryAfter)
	if off < retryAfter-250*time.Millisecond {
		t.Fatalf("a call reached the primary %s after the trip, before its Retry-After of %s", off, retryAfter)
	}
	eventually(t, 15*time.Second, "every sidecar back on the primary", func() bool { return l.servedBy(resumed, "openai", 3) })
	if f := l.failures(start); len(f) != 0 {
		t.Fatalf("%d requests failed; first: %+v", len(f), f[0])
	}
}
