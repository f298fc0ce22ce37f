package agentlib_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/sony/gobreaker/v2"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

var sink error

// trivialCall is the protected call of the per-call benchmarks: a real
// call that returns a nil error, not inlined, so every case pays for one
// call and one error check, with or without a breaker.
//
//go:noinline
func trivialCall() error { return nil }

// BenchmarkAllowDone is the per-call cost of a closed breaker: no
// breaker, gobreaker v2's local breaker (two-step and Execute), and the
// fusebox agent, serial and from 2 and 8 goroutines, in the same run.
//
// "none" is the baseline: the same caller work as every other case (the
// trivial call and its error check), no breaker. In the goroutines=N
// cases N goroutines share b.N calls, so ns/op is wall time per call:
// with 2 cores, a case that scales costs half its serial ns/op at 2
// goroutines and stays there at 8.
func BenchmarkAllowDone(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{ConfigYAML: "breakers:\n  tracked:\n    hang_after: 2s\n"})
	a := newAgent(b, c, "bench")
	fb := breaker(b, a, "openai")
	// With hang_after: every call is stamped in its tick's slot.
	tracked := breaker(b, a, "tracked")
	testcluster.Eventually(b, 3*time.Second, "the tracked breaker's policy", func() bool { return tracked.HangAfter() > 0 })
	two := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "openai"})
	exe := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "openai"})
	work := trivialCall

	cases := []struct {
		name string
		call func() error
	}{
		{"none", func() error {
			if err := work(); err != nil {
				return err
			}
			return nil
		}},
		// The floor of any breaker that counts calls in shared memory:
		// the same call and one atomic add, on a counter of its own cache
		// line per goroutine (no contention).
		{"none+atomic-add", func() error {
			if err := work(); err != nil {
				return err
			}
			floor[stackShard()].Add(1)
			return nil
		}},
		{"gobreaker-twostep", func() error {
			done, err := two.Allow()
			if err != nil {
				return err
			}
			err = work()
			done(err)
			return err
		}},
		{"gobreaker-execute", func() error {
			_, err := exe.Execute(func() (struct{}, error) { return struct{}{}, work() })
			return err
		}},
		{"fusebox", func() error { return allowDone(fb, work) }},
		{"fusebox-in-flight-tracked", func() error { return allowDone(tracked, work) }},
		{"fusebox-begin-responding-done", func() error {
			call, err := tracked.Begin()
			if err != nil {
				return err
			}
			err = work()
			call.Responding()
			if err != nil {
				call.Done(agentlib.Failure(err))
				return err
			}
			call.Done(agentlib.Success())
			return nil
		}},
	}
	for _, tc := range cases {
		b.Run("serial/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			inGoroutines(b, 1, tc.call)
		})
	}
	for _, g := range []int{2, 8} {
		for _, tc := range cases {
			b.Run(fmt.Sprintf("goroutines=%d/%s", g, tc.name), func(b *testing.B) {
				b.ReportAllocs()
				inGoroutines(b, g, tc.call)
			})
		}
	}
}

// inGoroutines makes b.N calls from n goroutines, each its share.
// testing.B.RunParallel would start GOMAXPROCS × parallelism goroutines;
// here the count is the same on every machine. Besides wall time per
// call it reports cpu-ns/op, the process's CPU time per call: on a
// machine shared with other work the goroutines may not run side by side,
// and then only the CPU time shows what contention costs.
func inGoroutines(b *testing.B, n int, call func() error) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		calls := b.N / n
		if i < b.N%n {
			calls++
		}
		wg.Go(func() {
			<-start
			for range calls {
				if err := call(); err != nil {
					errs[i] = err
				}
			}
		})
	}
	b.ResetTimer()
	cpu0 := processCPU()
	close(start)
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
}

// floor holds the none+atomic-add case's counters, one cache line each.
var floor [64]struct {
	atomic.Int64
	_ [56]byte
}

// stackShard picks a counter of floor by where the calling goroutine's
// stack is (goroutines' stacks are at least 2 KiB apart).
func stackShard() int {
	var here byte
	return int(uint64(uintptr(unsafe.Pointer(&here))>>11) * 0x9e3779b97f4a7c15 >> 58)
}

// allowDone is one call through a fusebox breaker.
func allowDone(b *agentlib.Breaker, work func() error) error {
	done, err := b.Allow()
	if err != nil {
		return err
	}
	if err := work(); err != nil {
		done(agentlib.Failure(err))
		return err
	}
	done(agentlib.Success())
	return nil
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
//
// Each agent's mirror says when it took the trip (a hook in the
// goroutine that applied it), and the benchmark waits parked: a waiter
// that spins with runtime.Gosched would keep a goroutine in the global
// run queue, and a P that finds one never polls the network, so the
// agents' pub/sub messages would wait for the runtime's sysmon (up to
// 10 ms) and the benchmark would measure itself.
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			c := testcluster.Start(b, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 10m\n"})
			breakers := make([]*agentlib.Breaker, n)
			var (
				mu     sync.Mutex
				seen   = make([]bool, n) // guarded by mu; this round's trip reached agent i
				left   int               // guarded by mu
				last   time.Time         // guarded by mu; when the last agent took it
				allSaw = make(chan struct{}, 1)
			)
			for i := range n {
				br := breaker(b, newAgent(b, c, fmt.Sprintf("agent-%d", i), func(cfg *agentlib.Config) {
					cfg.ResyncInterval = 5 * time.Second // measure pub/sub, not the resync timer
				}), "openai")
				br.OnChangeForTest(func() {
					if br.State().State != statestore.StateOpen {
						return
					}
					now := time.Now()
					mu.Lock()
					defer mu.Unlock()
					if seen[i] || left == 0 {
						return
					}
					seen[i] = true
					if left--; left == 0 {
						last = now
						allSaw <- struct{}{}
					}
				})
				breakers[i] = br
			}
			ctx := context.Background()
			p := c.Config.Policy("openai")
			body := []byte(`{"agent":"tripper","breakers":[{"name":"openai","fail":5,"trailing_fail":5,"last_error":"503"}]}`)
			closed := func() bool {
				for _, br := range breakers {
					if br.State().State != statestore.StateClosed {
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
				testcluster.Eventually(b, 10*time.Second, "all closed", closed)
				mu.Lock()
				clear(seen)
				left = n
				mu.Unlock()
				b.StartTimer()
				start := time.Now()
				req, _ := http.NewRequest(http.MethodPost, c.Coordinators[0].URL+"/v1/reports", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+testcluster.AgentToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				// Read to the end, so the next report reuses the connection.
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				select {
				case <-allSaw:
				case <-time.After(10 * time.Second):
					b.Fatal("agents never all saw the trip")
				}
				mu.Lock()
				samples = append(samples, last.Sub(start))
				mu.Unlock()
			}
			slices.Sort(samples)
			b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
