package agentlib_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

var sink error

// BenchmarkAllowDone is the per-call cost of a closed breaker: no
// breaker, gobreaker v2's local breaker (two-step and Execute), and the
// fusebox agent, serial and parallel, in the same run.
func BenchmarkAllowDone(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{ConfigYAML: "breakers:\n  tracked:\n    hang_after: 2s\n"})
	a := newAgent(b, c, "bench")
	fb := breaker(b, a, "openai")
	// With hang_after: every call is stamped in its tick's slot.
	tracked := breaker(b, a, "tracked")
	testcluster.Eventually(b, 3*time.Second, "the tracked breaker's policy", func() bool { return tracked.HangAfter() > 0 })
	two := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "openai"})
	exe := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "openai"})
	work := func() error { return nil }

	cases := []struct {
		name string
		call func()
	}{
		{"none", func() { sink = work() }},
		{"gobreaker-twostep", func() {
			done, err := two.Allow()
			if err != nil {
				sink = err
				return
			}
			done(work())
		}},
		{"gobreaker-execute", func() {
			_, sink = exe.Execute(func() (struct{}, error) { return struct{}{}, work() })
		}},
		{"fusebox", func() { allowDone(fb, work) }},
		{"fusebox-in-flight-tracked", func() { allowDone(tracked, work) }},
		{"fusebox-begin-responding-done", func() {
			call, err := tracked.Begin()
			if err != nil {
				sink = err
				return
			}
			call.Responding()
			call.Done(agentlib.Success())
		}},
	}
	for _, tc := range cases {
		b.Run("serial/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.call()
			}
		})
	}
	for _, tc := range cases {
		b.Run("parallel/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tc.call()
				}
			})
		})
	}
}

// allowDone is one call through a fusebox breaker.
func allowDone(b *agentlib.Breaker, work func() error) {
	done, err := b.Allow()
	if err != nil {
		sink = err
		return
	}
	if err := work(); err != nil {
		done(agentlib.Failure(err))
		return
	}
	done(agentlib.Success())
}

// BenchmarkAllowOpen is the cost of a denial: fusebox against gobreaker.
func BenchmarkAllowOpen(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 10m\n"})
	a := newAgent(b, c, "bench")
	fb := breaker(b, a, "openai")
	if _, err := c.Store.Report(context.Background(), "openai", c.Config.Policy("openai"), "x", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
		b.Fatal(err)
	}
	testcluster.Eventually(b, 2*time.Second, "open", func() bool { return fb.State().State == statestore.StateOpen })
	two := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "openai", Timeout: 10 * time.Minute})
	for range 6 {
		if done, err := two.Allow(); err == nil {
			done(fmt.Errorf("fail"))
		}
	}
	b.Run("gobreaker-twostep", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, sink = two.Allow()
		}
	})
	b.Run("fusebox", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, sink = fb.Allow()
		}
	})
}

// BenchmarkPropagation measures, for N agents, the time from the report
// that trips a breaker (sent to the coordinator over HTTP) until every
// agent's mirror denies. It reports p50 and p99 over the run.
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			c := testcluster.Start(b, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 10m\n"})
			breakers := make([]*agentlib.Breaker, n)
			for i := range n {
				breakers[i] = breaker(b, newAgent(b, c, fmt.Sprintf("agent-%d", i), func(cfg *agentlib.Config) {
					cfg.ResyncInterval = 5 * time.Second // measure pub/sub, not the resync timer
				}), "openai")
			}
			ctx := context.Background()
			p := c.Config.Policy("openai")
			body := []byte(`{"agent":"tripper","breakers":[{"name":"openai","fail":5,"trailing_fail":5,"last_error":"503"}]}`)
			all := func(st statestore.State) bool {
				for _, br := range breakers {
					if br.State().State != st {
						return false
					}
				}
				return true
			}
			var samples []time.Duration
			for b.Loop() {
				b.StopTimer()
				if _, err := c.Store.Reset(ctx, "openai", p, "bench", "next round"); err != nil {
					b.Fatal(err)
				}
				testcluster.Eventually(b, 10*time.Second, "all closed", func() bool { return all(statestore.StateClosed) })
				b.StartTimer()
				start := time.Now()
				req, _ := http.NewRequest(http.MethodPost, c.Coordinators[0].URL+"/v1/reports", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+testcluster.AgentToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				for !all(statestore.StateOpen) {
					runtime.Gosched()
					if time.Since(start) > 10*time.Second {
						b.Fatal("agents never all saw the trip")
					}
				}
				samples = append(samples, time.Since(start))
			}
			slices.Sort(samples)
			b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
