package sidecar_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// TestSidecars_FailOverTogetherAndBack: three sidecars, one coordinator,
// one Redis. The primary fails; after the cluster-wide threshold every
// sidecar serves from the fallback without calling the primary first;
// when the primary returns, all of them go back to it.
func TestSidecars_FailOverTogetherAndBack(t *testing.T) {
	for _, mode := range []string{"traffic", "canary"} {
		t.Run(mode, func(t *testing.T) {
			fp := fakeprovider.New()
			r := newRigWith(t, fp, mode, 3)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var served sync.Map // provider -> *atomic.Int64, after the phase marker
			var errs atomic.Int64
			var wg sync.WaitGroup
			for _, s := range r.sidecars {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; n < 5000 && ctx.Err() == nil; n++ {
						a := chatCtx(t, ctx, s.url, hello)
						if ctx.Err() != nil {
							return
						}
						if a.status != 200 {
							errs.Add(1)
						}
						v, _ := served.LoadOrStore(a.provider, new(atomic.Int64))
						v.(*atomic.Int64).Add(1)
						time.Sleep(5 * time.Millisecond)
					}
				}()
			}
			t.Cleanup(func() { cancel(); wg.Wait() })
			count := func(p string) int64 {
				v, ok := served.Load(p)
				if !ok {
					return 0
				}
				return v.(*atomic.Int64).Load()
			}
			testcluster.Eventually(t, 5*time.Second, "traffic on openai", func() bool { return count("openai") > 10 })

			if err := fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503}); err != nil {
				t.Fatal(err)
			}
			failedAt := fp.Calls("openai")
			testcluster.Eventually(t, 5*time.Second, "the cluster trips", func() bool { return r.c.Snapshot(t, "openai").State != statestore.StateClosed })
			// Every sidecar's mirror denies within the resync interval.
			testcluster.Eventually(t, time.Second, "every sidecar sees it", func() bool {
				for _, s := range r.sidecars {
					b, _ := s.agent.Breaker("openai")
					if b.State().State == statestore.StateClosed {
						return false
					}
				}
				return true
			})
			afterTrip := fp.Calls("openai")
			before := count("anthropic")
			testcluster.Eventually(t, 5*time.Second, "served from the fallback", func() bool { return count("anthropic") > before+30 })
			// While it stays down, the primary sees only probes: at most one
			// call per half-open window.
			windows := r.c.Snapshot(t, "openai").Epoch
			probes := fp.Calls("openai") - afterTrip
			if probes > windows+1 {
				t.Fatalf("the primary got %d calls in %d half-open windows after every sidecar denied", probes, windows)
			}
			t.Logf("%s mode: %d calls reached the failing primary before the trip landed everywhere (threshold 5, 3 sidecars); %d probe calls in %d windows after", mode, afterTrip-failedAt, probes, windows)
			// Breakers per sidecar would each need 5 failures of their own:
			// 15 calls at least. Together, the threshold and what each
			// sidecar has in flight while the trip travels (a few calls on a
			// loaded machine).
			if afterTrip-failedAt > 5+3*3 {
				t.Fatalf("%d calls reached the failing primary: the sidecars did not trip together", afterTrip-failedAt)
			}

			fp.ClearFault("openai")
			healedAt := time.Now()
			testcluster.Eventually(t, 5*time.Second, "closed again", func() bool { return r.c.Snapshot(t, "openai").State == statestore.StateClosed })
			testcluster.Eventually(t, time.Second, "every sidecar sees it closed", func() bool {
				for _, s := range r.sidecars {
					b, _ := s.agent.Breaker("openai")
					if b.State().State != statestore.StateClosed {
						return false
					}
				}
				return true
			})
			back := count("openai")
			testcluster.Eventually(t, 5*time.Second, "traffic back on openai", func() bool { return count("openai") > back+30 })
			t.Logf("%s mode: back on the primary %s after it healed", mode, time.Since(healedAt).Round(time.Millisecond))
			if errs.Load() != 0 {
				t.Fatalf("%d requests failed although a fallback was up", errs.Load())
			}
		})
	}
}

// newRigWith builds a rig on a given fake provider, with openai's
// half-open mode set (canary: a canary against the fake).
func newRigWith(t *testing.T, fp *fakeprovider.Server, mode string, sidecars int) *rig {
	t.Helper()
	r := newRigOn(t, fp, func(fpURL string) string {
		policy := "defaults:\n  consecutive_failures: 5\n  open_timeout: 200ms\n  max_open_timeout: 400ms\n  canary_interval: 200ms\n  canary_max_interval: 400ms\n"
		if mode == "canary" {
			policy += fmt.Sprintf("breakers:\n  openai:\n    canary:\n      kind: openai\n      url: %s/openai/v1\n      model: gpt-4o-mini\n      timeout: 1s\n", fpURL)
		}
		return policy
	}, sidecars)
	return r
}

func newRigOn(t *testing.T, fp *fakeprovider.Server, policy func(fpURL string) string, sidecars int) *rig {
	t.Helper()
	fsrv := startFake(t, fp)
	r := &rig{c: testcluster.Start(t, testcluster.Options{ConfigYAML: policy(fsrv)}), fp: fp, fpURL: fsrv}
	for i := range sidecars {
		r.sidecars = append(r.sidecars, r.startSidecar(t, i, sidecarYAML(fsrv, defaultRoutes)))
	}
	return r
}

// TestSidecar_RetryBudget: during a sustained outage of connection errors
// the primary sees no more calls than the threshold plus what the retry
// budget allows.
func TestSidecar_RetryBudget(t *testing.T) {
	t.Run("with the breaker", func(t *testing.T) {
		r := newRig(t, "defaults:\n  consecutive_failures: 5\n  open_timeout: 1m\n", 1, defaultRoutes)
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultReset}); err != nil {
			t.Fatal(err)
		}
		const requests = 200
		for range requests {
			if a := chat(t, r.sidecars[0].url, hello); a.status != 200 || a.provider != "anthropic" {
				t.Fatalf("answer %+v", a)
			}
		}
		calls := r.fp.Calls("openai")
		// Threshold 5, plus the attempts of the requests made while the
		// trip's answer was on its way (6 on a quiet machine; a loaded one
		// takes a few requests longer): far from the 600 of no breaker.
		t.Logf("%d requests during a reset storm: the primary got %d calls (threshold 5, 3 attempts per request without a budget would be %d)", requests, calls, 3*requests)
		if calls > 5+3*3 {
			t.Fatalf("the primary got %d calls", calls)
		}
	})
	t.Run("budget alone, breaker forced closed", func(t *testing.T) {
		r := newRig(t, "defaults:\n  consecutive_failures: 5\n", 1, "routes:\n  - name: chat\n    chain: [openai, anthropic]\nretry: {attempts: 3, base: 1ms, max: 2ms, budget: 0.2, min_per_second: 1}\n")
		if _, err := r.c.Store.Force(context.Background(), "openai", r.c.Config.Policy("openai"), "test", statestore.OverrideClosed, 0, "budget test"); err != nil {
			t.Fatal(err)
		}
		b, _ := r.sidecars[0].agent.Breaker("openai")
		testcluster.Eventually(t, 2*time.Second, "forced closed seen", func() bool { return b.State().Override == statestore.OverrideClosed })
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultReset}); err != nil {
			t.Fatal(err)
		}
		const requests = 100
		start := time.Now()
		for range requests {
			if a := chat(t, r.sidecars[0].url, hello); a.status != 200 {
				t.Fatalf("answer %+v", a)
			}
		}
		took := time.Since(start)
		calls := r.fp.Calls("openai")
		// budget: 0.2 of the requests in the last 10s, plus 1 per second.
		allowed := int64(requests + requests/5 + 10*int(took/time.Second+1))
		t.Logf("%d requests, every one a connection reset: %d calls to the primary (no budget: %d, budget allows %d)", requests, calls, 3*requests, allowed)
		if calls > allowed || calls < requests {
			t.Fatalf("%d calls to the primary, want between %d and %d", calls, requests, allowed)
		}
	})
}

func TestSidecar_AllUnavailableIsAFast503(t *testing.T) {
	r := newRig(t, "defaults:\n  consecutive_failures: 1\n  open_timeout: 45s\n  max_open_timeout: 10m\n", 1, defaultRoutes)
	ctx := context.Background()
	for _, p := range []string{"openai", "anthropic", "ollama"} {
		if _, err := r.c.Store.Force(ctx, p, r.c.Config.Policy(p), "test", statestore.OverrideOpen, 90*time.Second, "all down"); err != nil {
			t.Fatal(err)
		}
	}
	r.c.Trip(t, "openai", 1) // forced wins; the trip is recorded underneath
	for _, p := range []string{"openai", "anthropic", "ollama"} {
		b, _ := r.sidecars[0].agent.Breaker(p)
		testcluster.Eventually(t, 2*time.Second, "forced open seen", func() bool { return b.State().Override == statestore.OverrideOpen })
	}
	start := time.Now()
	a := chat(t, r.sidecars[0].url, hello)
	took := time.Since(start)
	if a.status != 503 || !strings.Contains(a.body, "fusebox_all_providers_unavailable") || !strings.Contains(a.body, `"error"`) {
		t.Fatalf("answer %+v", a)
	}
	ra := a.header.Get("Retry-After")
	if ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	t.Logf("all providers forced open: 503 in %s with Retry-After %s", took.Round(time.Microsecond), ra)
	if n := r.fp.Calls("openai") + r.fp.Calls("anthropic") + r.fp.Calls("ollama"); n != 0 {
		t.Fatalf("%d provider calls while every breaker denied", n)
	}
}
