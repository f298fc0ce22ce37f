package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	wire "github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

func newStore(t *testing.T, b redistest.Backend) *statestore.Store {
	t.Helper()
	s, err := statestore.New(b.Client, statestore.Options{Prefix: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fastPolicy() statestore.Policy {
	p := statestore.DefaultPolicy()
	p.OpenTimeout = 150 * time.Millisecond
	p.MaxOpenTimeout = 500 * time.Millisecond
	p.ProbeTimeout = 10 * time.Second
	return p
}

func report(t *testing.T, s *statestore.Store, name string, p statestore.Policy, b statestore.Batch) statestore.Result {
	t.Helper()
	r, err := s.Report(context.Background(), name, p, "agent-1", b)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	return r
}

// tripped opens a breaker through consecutive failures.
func tripped(t *testing.T, s *statestore.Store, name string, p statestore.Policy) statestore.Result {
	t.Helper()
	r := report(t, s, name, p, statestore.Batch{Fail: int64(p.ConsecutiveFailures), TrailingFail: int64(p.ConsecutiveFailures), LastError: "503"})
	if r.State != statestore.StateOpen {
		t.Fatalf("state after %d failures = %s, want open", p.ConsecutiveFailures, r.State)
	}
	return r
}

// halfOpen trips a breaker and waits for its open time to pass.
func halfOpen(t *testing.T, s *statestore.Store, name string, p statestore.Policy) statestore.Result {
	t.Helper()
	tripped(t, s, name, p)
	var r statestore.Result
	testcluster.Eventually(t, 5*time.Second, "open -> half_open", func() bool {
		var err error
		r, err = s.Tick(context.Background(), name, p, "coord-1")
		if err != nil {
			t.Fatal(err)
		}
		return r.State == statestore.StateHalfOpen
	})
	return r
}

func TestStore_Report(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()

		t.Run("consecutive failures count across batches until a success", func(t *testing.T) {
			p := fastPolicy()
			r := report(t, s, "consec", p, statestore.Batch{Fail: 2, TrailingFail: 2})
			r = report(t, s, "consec", p, statestore.Batch{Fail: 2, TrailingFail: 2})
			if r.State != statestore.StateClosed || r.FailureCount != 4 {
				t.Fatalf("after 4 failures: %s count %d, want closed 4", r.State, r.FailureCount)
			}
			// A batch with a success resets the count to its trailing failures.
			r = report(t, s, "consec", p, statestore.Batch{OK: 1, Fail: 3, TrailingFail: 1})
			if r.FailureCount != 1 {
				t.Fatalf("after a success with 1 trailing failure: count %d, want 1", r.FailureCount)
			}
			r = report(t, s, "consec", p, statestore.Batch{Fail: 3, TrailingFail: 3})
			if r.State != statestore.StateClosed {
				t.Fatalf("4 consecutive: %s, want closed", r.State)
			}
			r = report(t, s, "consec", p, statestore.Batch{Fail: 1, TrailingFail: 1, LastError: "HTTP 503"})
			if r.State != statestore.StateOpen || r.Transition == nil {
				t.Fatalf("5 consecutive: %s, want open with a transition", r.State)
			}
			tr := r.Transition
			if tr.Event != "trip" || tr.Reason != "consecutive_failures" || tr.OldState != "closed" || tr.NewState != "open" ||
				tr.FailureCount != 5 || tr.LastError != "HTTP 503" || tr.Actor != "agent-1" || tr.Version != 1 {
				t.Fatalf("transition = %+v", *tr)
			}
			if r.RetryInMS <= 0 || r.RetryInMS > p.OpenTimeout.Milliseconds() {
				t.Fatalf("retry_in_ms = %d, want in (0, %d]", r.RetryInMS, p.OpenTimeout.Milliseconds())
			}
		})

		t.Run("outcomes reported while open change nothing", func(t *testing.T) {
			p := fastPolicy()
			p.OpenTimeout = time.Minute
			p.MaxOpenTimeout = time.Hour
			before := tripped(t, s, "late", p)
			r := report(t, s, "late", p, statestore.Batch{OK: 10, Fail: 10})
			if r.State != statestore.StateOpen || r.Version != before.Version || r.Transition != nil {
				t.Fatalf("late batch moved the breaker: %+v", r)
			}
		})

		t.Run("failure rate trips once min_calls were seen", func(t *testing.T) {
			p := fastPolicy()
			p.ConsecutiveFailures = 0
			p.FailureRate = 50
			p.MinCalls = 10
			p.Window = 10 * time.Second
			r := report(t, s, "rate", p, statestore.Batch{OK: 5, Fail: 4, TrailingFail: 1})
			if r.State != statestore.StateClosed {
				t.Fatalf("9 calls (below min_calls): %s", r.State)
			}
			r = report(t, s, "rate", p, statestore.Batch{OK: 0, Fail: 1, TrailingFail: 1})
			if r.State != statestore.StateOpen || r.Transition.Reason != "failure_rate" {
				t.Fatalf("10 calls, 50%% failed: %s %+v", r.State, r.Transition)
			}
		})

		t.Run("failure rate below the threshold does not trip", func(t *testing.T) {
			p := fastPolicy()
			p.ConsecutiveFailures = 0
			p.FailureRate = 50
			p.MinCalls = 10
			p.Window = 10 * time.Second
			r := report(t, s, "rate-low", p, statestore.Batch{OK: 60, Fail: 40})
			if r.State != statestore.StateClosed {
				t.Fatalf("40%% failures tripped a 50%% rule")
			}
		})

		t.Run("slow-call rate trips", func(t *testing.T) {
			p := fastPolicy()
			p.ConsecutiveFailures = 0
			p.SlowCall = time.Second
			p.SlowCallRate = 80
			p.MinCalls = 5
			p.Window = 10 * time.Second
			r := report(t, s, "slow", p, statestore.Batch{OK: 5, Slow: 3})
			if r.State != statestore.StateClosed {
				t.Fatalf("60%% slow tripped an 80%% rule")
			}
			r = report(t, s, "slow", p, statestore.Batch{OK: 5, Slow: 5})
			if r.State != statestore.StateOpen || r.Transition.Reason != "slow_call_rate" {
				t.Fatalf("80%% slow: %s %+v", r.State, r.Transition)
			}
		})

		t.Run("the rolling window forgets old buckets", func(t *testing.T) {
			p := fastPolicy()
			p.ConsecutiveFailures = 0
			p.FailureRate = 50
			p.MinCalls = 4
			p.Window = 2 * time.Second
			start := redisTime(t, b)
			report(t, s, "window", p, statestore.Batch{Fail: 3})
			testcluster.Eventually(t, 5*time.Second, "two seconds of redis time", func() bool {
				return redisTime(t, b).Unix() >= start.Unix()+2
			})
			r := report(t, s, "window", p, statestore.Batch{OK: 2})
			if r.State != statestore.StateClosed {
				t.Fatalf("old failures still counted: %s", r.State)
			}
			r = report(t, s, "window", p, statestore.Batch{OK: 1})
			if r.State != statestore.StateClosed {
				t.Fatalf("3 successes tripped: %s", r.State)
			}
			r = report(t, s, "window", p, statestore.Batch{Fail: 4, TrailingFail: 4})
			if r.State != statestore.StateOpen {
				t.Fatalf("4 of 7 failed within the window: %s", r.State)
			}
		})

		t.Run("a Retry-After opens the cluster until then", func(t *testing.T) {
			p := fastPolicy()
			p.OpenTimeout = time.Second
			p.MaxOpenTimeout = time.Minute
			r := report(t, s, "ra", p, statestore.Batch{Fail: 1, TrailingFail: 1, RetryAfter: 20 * time.Second, LastError: "429"})
			if r.State != statestore.StateOpen || r.Transition.Reason != "retry_after" {
				t.Fatalf("429 with Retry-After: %s %+v", r.State, r.Transition)
			}
			if r.RetryInMS < 19_000 || r.RetryInMS > 20_000 {
				t.Fatalf("retry_in_ms = %d, want about 20000", r.RetryInMS)
			}
			// A longer Retry-After reported while open extends it, as a
			// published transition of its own.
			before := r.Version
			r = report(t, s, "ra", p, statestore.Batch{Fail: 1, RetryAfter: 40 * time.Second})
			if r.RetryInMS < 39_000 || r.RetryInMS > 40_000 {
				t.Fatalf("extended retry_in_ms = %d, want about 40000", r.RetryInMS)
			}
			if r.Transition == nil || r.Transition.Event != "extend" || r.Version != before+1 || r.Transition.OldState != "open" {
				t.Fatalf("extension: %+v %+v, want an extend transition at version %d", r.Snapshot, r.Transition, before+1)
			}
			// A shorter one changes nothing, nor does the same one heard
			// again by a call that ended a moment later (it would move the
			// deadline by that moment).
			r = report(t, s, "ra", p, statestore.Batch{Fail: 1, RetryAfter: 10 * time.Second})
			if r.Transition != nil || r.Version != before+1 {
				t.Fatalf("a shorter Retry-After moved the breaker: %+v", r)
			}
			r = report(t, s, "ra", p, statestore.Batch{Fail: 1, RetryAfter: 40 * time.Second})
			if r.Transition != nil || r.Version != before+1 {
				t.Fatalf("the same Retry-After heard again moved the breaker: %+v", r.Transition)
			}
		})

		t.Run("a Retry-After is capped by max_retry_after, not max_open_timeout, and says so", func(t *testing.T) {
			p := fastPolicy()
			p.OpenTimeout = time.Second
			p.MaxOpenTimeout = 8 * time.Second
			r := report(t, s, "ra-long", p, statestore.Batch{Fail: 1, RetryAfter: 10 * time.Second})
			if r.State != statestore.StateOpen || r.RetryInMS < 9_000 || r.Transition.Reason != "retry_after" {
				t.Fatalf("Retry-After 10s under max_open_timeout 8s: %s retry_in_ms %d %+v, want open about 10000", r.State, r.RetryInMS, r.Transition)
			}
			p.MaxRetryAfter = 5 * time.Second
			r = report(t, s, "ra-cap", p, statestore.Batch{Fail: 1, RetryAfter: time.Hour})
			if r.State != statestore.StateOpen || r.RetryInMS > 5_000 || r.RetryInMS < 4_000 {
				t.Fatalf("capped Retry-After: %s retry_in_ms %d, want open about 5000", r.State, r.RetryInMS)
			}
			if r.Transition.Reason != "retry_after_capped" {
				t.Fatalf("reason = %q, want retry_after_capped", r.Transition.Reason)
			}
		})

		t.Run("a Retry-After is ignored when the policy says so", func(t *testing.T) {
			p := fastPolicy()
			p.HonorRetryAfter = false
			r := report(t, s, "ra-off", p, statestore.Batch{Fail: 1, RetryAfter: time.Minute})
			if r.State != statestore.StateClosed {
				t.Fatalf("honor_retry_after=false tripped: %s", r.State)
			}
		})

		t.Run("negative counts are refused", func(t *testing.T) {
			_, err := s.Report(ctx, "neg", fastPolicy(), "a", statestore.Batch{Fail: -1})
			if !errors.Is(err, statestore.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})

		t.Run("invalid names are refused before any I/O", func(t *testing.T) {
			for _, name := range []string{"", "a}b", "{x}", "a b", "-lead", string(make([]byte, 200))} {
				if _, err := s.Report(ctx, name, fastPolicy(), "a", statestore.Batch{OK: 1}); !errors.Is(err, statestore.ErrInvalidName) {
					t.Errorf("name %q: err = %v, want ErrInvalidName", name, err)
				}
			}
		})
	})
}

func report2(t *testing.T, s *statestore.Store, name string, p statestore.Policy, agent string, b statestore.Batch) statestore.Result {
	t.Helper()
	r, err := s.Report(context.Background(), name, p, agent, b)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	return r
}

func redisTime(t *testing.T, b redistest.Backend) time.Time {
	t.Helper()
	tm, err := b.Client.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestStore_Tick(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()

		t.Run("open stays open until its time has passed, then half-opens once", func(t *testing.T) {
			p := fastPolicy()
			p.OpenTimeout = 400 * time.Millisecond
			tripped(t, s, "tick", p)
			r, err := s.Tick(ctx, "tick", p, "c1")
			if err != nil {
				t.Fatal(err)
			}
			if r.State != statestore.StateOpen || r.Transition != nil {
				t.Fatalf("tick right after the trip: %s", r.State)
			}
			testcluster.Eventually(t, 5*time.Second, "half_open", func() bool {
				r, err = s.Tick(ctx, "tick", p, "c1")
				if err != nil {
					t.Fatal(err)
				}
				return r.Transition != nil
			})
			if r.State != statestore.StateHalfOpen || r.Epoch != 1 || r.Transition.Reason != "open_timeout_elapsed" {
				t.Fatalf("after the open time: %+v %+v", r.Snapshot, r.Transition)
			}
			again, _ := s.Tick(ctx, "tick", p, "c2")
			if again.Transition != nil || again.Version != r.Version {
				t.Fatalf("second tick made another transition: %+v", again)
			}
		})

		t.Run("many coordinators ticking at once make exactly one transition", func(t *testing.T) {
			p := fastPolicy()
			tripped(t, s, "race", p)
			testcluster.Eventually(t, 5*time.Second, "open time passed", func() bool {
				sn, err := s.Snapshots(ctx, []string{"race"})
				if err != nil {
					t.Fatal(err)
				}
				return sn[0].RetryInMS == 0
			})
			var wg sync.WaitGroup
			var mu sync.Mutex
			transitions := 0
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := s.Tick(ctx, "race", p, fmt.Sprintf("c%d", i))
					if err != nil {
						t.Error(err)
						return
					}
					if r.Transition != nil {
						mu.Lock()
						transitions++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if transitions != 1 {
				t.Fatalf("transitions = %d, want 1", transitions)
			}
		})

		t.Run("a half-open window nobody probes stays as it is", func(t *testing.T) {
			p := fastPolicy()
			p.ProbeTimeout = 100 * time.Millisecond
			r := halfOpen(t, s, "idle-half-open", p)
			start := redisTime(t, b)
			for redisTime(t, b).Sub(start) < 4*p.ProbeTimeout {
				n, err := s.Tick(ctx, "idle-half-open", p, "c1")
				if err != nil {
					t.Fatal(err)
				}
				if n.Transition != nil || n.Version != r.Version {
					t.Fatalf("an idle half-open breaker moved: %+v %+v", n.Snapshot, n.Transition)
				}
			}
			ev, err := s.Events(ctx, "idle-half-open", 100, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(ev) != 2 { // trip, half_open
				t.Fatalf("%d events journaled, want 2 (trip, half_open): %+v", len(ev), ev)
			}
		})

		t.Run("a half-open window whose probe gave no result starts a new epoch", func(t *testing.T) {
			p := fastPolicy()
			p.ProbeTimeout = 200 * time.Millisecond
			r := halfOpen(t, s, "probe-timeout", p)
			if g, err := s.AcquirePermit(ctx, "probe-timeout", p, "a1", r.Gen, r.Epoch, "n1"); err != nil || !g.Granted {
				t.Fatalf("permit: %+v %v", g, err)
			}
			testcluster.Eventually(t, 5*time.Second, "new epoch", func() bool {
				n, err := s.Tick(ctx, "probe-timeout", p, "c1")
				if err != nil {
					t.Fatal(err)
				}
				if n.Transition != nil {
					if n.Epoch != r.Epoch+1 || n.State != statestore.StateHalfOpen || n.Transition.Reason != "probe_timed_out" {
						t.Fatalf("after probe timeout: %+v %+v", n.Snapshot, n.Transition)
					}
					return true
				}
				return false
			})
		})

		t.Run("a breaker with no state is left alone", func(t *testing.T) {
			r, err := s.Tick(ctx, "never-seen", fastPolicy(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			sn, _ := s.Snapshots(ctx, []string{"never-seen"})
			if r.Transition != nil || sn[0].Gen != "" {
				t.Fatalf("tick created state: %+v %+v", r, sn[0])
			}
		})
	})
}

// claimed half-opens a breaker and claims its window for a canary with
// the token tok.
func claimed(t *testing.T, s *statestore.Store, name string, p statestore.Policy, tok string) statestore.Result {
	t.Helper()
	r := halfOpen(t, s, name, p)
	return claim(t, s, name, p, r.Epoch, tok)
}

func claim(t *testing.T, s *statestore.Store, name string, p statestore.Policy, epoch int64, tok string) statestore.Result {
	t.Helper()
	c, err := s.ProbeStart(context.Background(), name, p, "coord-1", epoch, tok, time.Minute)
	if err != nil || !c.Granted {
		t.Fatalf("claim window %d: %+v %v", epoch, c, err)
	}
	return c
}

func TestStore_ProbeResult(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()

		t.Run("a failed probe doubles the open time up to the cap", func(t *testing.T) {
			p := fastPolicy()
			p.OpenTimeout = 100 * time.Millisecond
			p.MaxOpenTimeout = 350 * time.Millisecond
			r := claimed(t, s, "double", p, "tok")
			for i, want := range []int64{200, 350, 350} {
				f, err := s.ProbeResult(ctx, "double", p, "c1", statestore.ProbeOutcome{Epoch: r.Epoch, Error: "503", Token: "tok"})
				if err != nil {
					t.Fatal(err)
				}
				if f.State != statestore.StateOpen || f.Transition == nil || f.Transition.Event != "probe_failed" {
					t.Fatalf("probe %d failed: %+v", i, f)
				}
				if f.RetryInMS > want || f.RetryInMS < want-50 {
					t.Fatalf("probe %d: open for %d ms, want about %d", i, f.RetryInMS, want)
				}
				testcluster.Eventually(t, 5*time.Second, "half_open again", func() bool {
					r, err = s.Tick(ctx, "double", p, "c1")
					if err != nil {
						t.Fatal(err)
					}
					return r.State == statestore.StateHalfOpen
				})
				claim(t, s, "double", p, r.Epoch, "tok")
			}
		})

		t.Run("a canary-mode breaker reopens on the canary cadence, not the open timeout", func(t *testing.T) {
			p := fastPolicy()
			p.HalfOpen = statestore.HalfOpenCanary
			p.OpenTimeout = time.Hour
			p.MaxOpenTimeout = 2 * time.Hour
			p.CanaryInterval = 100 * time.Millisecond
			p.CanaryMaxInterval = 300 * time.Millisecond
			tr := tripped(t, s, "cadence", p)
			if tr.RetryInMS > 100 {
				t.Fatalf("open for %d ms after the trip, want the canary interval (100)", tr.RetryInMS)
			}
			r := claimed(t, s, "cadence", p, "tok")
			for i, want := range []int64{200, 300, 300} {
				f, err := s.ProbeResult(ctx, "cadence", p, "c1", statestore.ProbeOutcome{Epoch: r.Epoch, Error: "hang", Token: "tok"})
				if err != nil {
					t.Fatal(err)
				}
				if f.RetryInMS > want || f.RetryInMS < want-50 {
					t.Fatalf("canary %d failed: open for %d ms, want about %d", i, f.RetryInMS, want)
				}
				testcluster.Eventually(t, 5*time.Second, "half_open again", func() bool {
					r, err = s.Tick(ctx, "cadence", p, "c1")
					if err != nil {
						t.Fatal(err)
					}
					return r.State == statestore.StateHalfOpen
				})
				claim(t, s, "cadence", p, r.Epoch, "tok")
			}
		})

		t.Run("a probe result without a token is refused", func(t *testing.T) {
			p := fastPolicy()
			r := claimed(t, s, "no-token", p, "tok")
			if _, err := s.ProbeResult(ctx, "no-token", p, "c1", statestore.ProbeOutcome{Epoch: r.Epoch, OK: true}); !errors.Is(err, statestore.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})

		t.Run("a successful probe closes with fresh counters", func(t *testing.T) {
			p := fastPolicy()
			r := claimed(t, s, "heal", p, "tok")
			ok, err := s.ProbeResult(ctx, "heal", p, "c1", statestore.ProbeOutcome{Epoch: r.Epoch, OK: true, Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			if ok.State != statestore.StateClosed || ok.FailureCount != 0 || ok.Transition.Event != "probe_succeeded" {
				t.Fatalf("after a good probe: %+v %+v", ok.Snapshot, ok.Transition)
			}
			// Fresh counters: it takes the full threshold to trip again.
			rr := report(t, s, "heal", p, statestore.Batch{Fail: 4, TrailingFail: 4})
			if rr.State != statestore.StateClosed {
				t.Fatal("tripped before the threshold after closing")
			}
		})

		t.Run("a late result from an earlier epoch is fenced out", func(t *testing.T) {
			p := fastPolicy()
			p.ProbeTimeout = 100 * time.Millisecond
			first := claimed(t, s, "fence", p, "tok")
			testcluster.Eventually(t, 5*time.Second, "a new epoch after the probe timeout", func() bool {
				r, err := s.Tick(ctx, "fence", p, "c2")
				if err != nil {
					t.Fatal(err)
				}
				return r.Epoch > first.Epoch
			})
			late, err := s.ProbeResult(ctx, "fence", p, "c1", statestore.ProbeOutcome{Epoch: first.Epoch, OK: true, Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			if !late.Stale || late.Transition != nil || late.State != statestore.StateHalfOpen {
				t.Fatalf("late result applied: %+v", late)
			}
		})

		t.Run("a result after the breaker closed is fenced out", func(t *testing.T) {
			p := fastPolicy()
			r := claimed(t, s, "fence-closed", p, "tok")
			if _, err := s.Reset(ctx, "fence-closed", p, "ops", "manual"); err != nil {
				t.Fatal(err)
			}
			late, err := s.ProbeResult(ctx, "fence-closed", p, "c1", statestore.ProbeOutcome{Epoch: r.Epoch, Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			if !late.Stale || late.State != statestore.StateClosed {
				t.Fatalf("late failure reopened a closed breaker: %+v", late)
			}
		})

		t.Run("a failed probe with Retry-After stays open at least that long", func(t *testing.T) {
			p := fastPolicy()
			p.MaxOpenTimeout = time.Minute
			r := claimed(t, s, "probe-ra", p, "tok")
			f, err := s.ProbeResult(ctx, "probe-ra", p, "c1", statestore.ProbeOutcome{Epoch: r.Epoch, RetryAfter: 30 * time.Second, Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			if f.RetryInMS < 29_000 {
				t.Fatalf("retry_in_ms = %d, want about 30000", f.RetryInMS)
			}
		})
	})
}

func TestStore_Permit(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		p := fastPolicy()

		closed, err := s.AcquirePermit(ctx, "permit", p, "a1", "", 1, "n")
		if err != nil {
			t.Fatal(err)
		}
		if closed.Granted {
			t.Fatal("permit granted while the breaker has no state")
		}
		r := halfOpen(t, s, "permit", p)
		if g, _ := s.AcquirePermit(ctx, "permit", p, "a1", r.Gen, r.Epoch-1, "n"); g.Granted {
			t.Fatal("permit granted for an old epoch")
		}
		if g, _ := s.AcquirePermit(ctx, "permit", p, "a1", "another-gen", r.Epoch, "n"); g.Granted {
			t.Fatal("permit granted for the same epoch of another incarnation")
		}
		holder := ""
		var wg sync.WaitGroup
		var mu sync.Mutex
		granted := 0
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g, err := s.AcquirePermit(ctx, "permit", p, fmt.Sprintf("a%d", i), r.Gen, r.Epoch, fmt.Sprintf("nonce-%d", i))
				if err != nil {
					t.Error(err)
					return
				}
				if g.Granted {
					mu.Lock()
					granted++
					holder = fmt.Sprint(i)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if granted != 1 {
			t.Fatalf("%d permits granted in one window, want 1", granted)
		}
		// In a window nobody was granted, a verdict closes nothing, whatever
		// nonce it carries (an empty one included).
		unasked := halfOpen(t, s, "permit-unasked", p)
		for _, nonce := range []string{"", "n", "guess"} {
			v := &statestore.ProbeOutcome{Gen: unasked.Gen, Epoch: unasked.Epoch, OK: true, Nonce: nonce}
			got, err := s.Report(ctx, "permit-unasked", p, "forger", statestore.Batch{Probe: v})
			if err != nil || got.Probe != statestore.ProbeRefused || got.State != statestore.StateHalfOpen {
				t.Fatalf("a verdict (nonce %q) in a window with no permit: %+v %v, want refused and still half-open", nonce, got, err)
			}
		}
		// A canary-mode breaker never grants a permit, whatever policy the
		// asking agent believes in.
		canary := fastPolicy()
		canary.HalfOpen = statestore.HalfOpenCanary
		cr := halfOpen(t, s, "permit-canary", canary)
		if g, err := s.AcquirePermit(ctx, "permit-canary", p, "a1", cr.Gen, cr.Epoch, "n"); err != nil || g.Granted {
			t.Fatalf("permit granted in canary mode: %+v %v", g, err)
		}
		// Its lifetime is the stored probe_timeout too, not the agent's.
		short := fastPolicy()
		short.ProbeTimeout = 150 * time.Millisecond
		sr := halfOpen(t, s, "permit-ttl", short)
		if g, _ := s.AcquirePermit(ctx, "permit-ttl", p, "a1", sr.Gen, sr.Epoch, "n"); !g.Granted {
			t.Fatal("first permit refused")
		}
		pttl, err := b.Client.PTTL(ctx, "t:{permit-ttl}:permit").Result()
		if err != nil || pttl > short.ProbeTimeout || pttl <= 0 {
			t.Fatalf("permit lives %s, want at most the stored %s (the agent believed %s)", pttl, short.ProbeTimeout, p.ProbeTimeout)
		}
		// The permit holder's outcome, reported with its window and nonce,
		// decides; nobody else's does.
		verdict := &statestore.ProbeOutcome{Gen: r.Gen, Epoch: r.Epoch, OK: true, Nonce: "nonce-" + holder}
		forged, err := s.Report(ctx, "permit", p, "forger", statestore.Batch{Probe: verdict})
		if err != nil || forged.Probe != statestore.ProbeRefused || forged.State != statestore.StateHalfOpen {
			t.Fatalf("a verdict from another agent: %+v %v, want refused and still half-open", forged, err)
		}
		guessed, err := s.Report(ctx, "permit", p, "a"+holder, statestore.Batch{Probe: &statestore.ProbeOutcome{Gen: r.Gen, Epoch: r.Epoch, OK: true, Nonce: "guess"}})
		if err != nil || guessed.Probe != statestore.ProbeRefused || guessed.State != statestore.StateHalfOpen {
			t.Fatalf("a verdict with the wrong nonce: %+v %v, want refused", guessed, err)
		}
		res := report2(t, s, "permit", p, "a"+holder, statestore.Batch{Fail: 3, Probe: verdict})
		if res.State != statestore.StateClosed || res.Transition == nil || res.Transition.Event != "probe_succeeded" {
			t.Fatalf("traffic probe success: %+v %+v", res.Snapshot, res.Transition)
		}
		if res.FailureCount != 0 {
			t.Fatalf("failures from before the probe were counted: %d", res.FailureCount)
		}
	})
}

func TestStore_Overrides(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		p := fastPolicy()

		t.Run("forced open ignores outcomes and timers until released", func(t *testing.T) {
			r, err := s.Force(ctx, "fo", p, "alice", statestore.OverrideOpen, 0, "provider incident")
			if err != nil {
				t.Fatal(err)
			}
			if r.Override != statestore.OverrideOpen || r.Transition.Event != "force_open" ||
				r.Transition.Actor != "alice" || r.Transition.Reason != "provider incident" || r.Transition.NewState != "forced_open" {
				t.Fatalf("force open: %+v %+v", r.Snapshot, r.Transition)
			}
			if r.RetryInMS != -1 {
				t.Fatalf("retry_in_ms = %d, want -1 (until released)", r.RetryInMS)
			}
			rep := report(t, s, "fo", p, statestore.Batch{OK: 50})
			tick, _ := s.Tick(ctx, "fo", p, "c1")
			if rep.Override != statestore.OverrideOpen || tick.Override != statestore.OverrideOpen || tick.Transition != nil {
				t.Fatal("forced open moved without a release")
			}
			rel, err := s.Release(ctx, "fo", p, "bob", "incident over")
			if err != nil {
				t.Fatal(err)
			}
			if rel.Override != statestore.OverrideNone || rel.State != statestore.StateClosed || rel.Transition.OldState != "forced_open" {
				t.Fatalf("release: %+v %+v", rel.Snapshot, rel.Transition)
			}
			again, _ := s.Release(ctx, "fo", p, "bob", "twice")
			if again.Transition != nil {
				t.Fatal("releasing an unforced breaker made a transition")
			}
		})

		t.Run("forced closed never trips", func(t *testing.T) {
			if _, err := s.Force(ctx, "fc", p, "alice", statestore.OverrideClosed, 0, "known flaky"); err != nil {
				t.Fatal(err)
			}
			r := report(t, s, "fc", p, statestore.Batch{Fail: 100, TrailingFail: 100, RetryAfter: time.Minute})
			if r.Override != statestore.OverrideClosed || r.State != statestore.StateClosed || r.Transition != nil {
				t.Fatalf("forced closed tripped: %+v", r)
			}
		})

		t.Run("an override with a ttl ends by itself", func(t *testing.T) {
			r, err := s.Force(ctx, "ttl", p, "alice", statestore.OverrideOpen, 200*time.Millisecond, "drill")
			if err != nil {
				t.Fatal(err)
			}
			if r.RetryInMS <= 0 || r.RetryInMS > 200 {
				t.Fatalf("retry_in_ms = %d, want in (0, 200]", r.RetryInMS)
			}
			testcluster.Eventually(t, 5*time.Second, "the override expired", func() bool {
				r, err = s.Tick(ctx, "ttl", p, "c1")
				if err != nil {
					t.Fatal(err)
				}
				return r.Transition != nil
			})
			if r.Override != statestore.OverrideNone || r.Transition.Event != "override_expired" || r.State != statestore.StateClosed {
				t.Fatalf("expiry: %+v %+v", r.Snapshot, r.Transition)
			}
		})

		t.Run("reset closes an open breaker and clears the override", func(t *testing.T) {
			tripped(t, s, "reset", p)
			if _, err := s.Force(ctx, "reset", p, "alice", statestore.OverrideOpen, 0, "x"); err != nil {
				t.Fatal(err)
			}
			r, err := s.Reset(ctx, "reset", p, "bob", "fixed")
			if err != nil {
				t.Fatal(err)
			}
			if r.State != statestore.StateClosed || r.Override != statestore.OverrideNone || r.FailureCount != 0 {
				t.Fatalf("reset: %+v", r)
			}
		})

		t.Run("an unknown override is refused", func(t *testing.T) {
			if _, err := s.Force(ctx, "bad", p, "alice", "sideways", 0, ""); !errors.Is(err, statestore.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	})
}

func TestStore_ReadsAndJournal(t *testing.T) {
	eachTopology(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		p := fastPolicy()

		sub := follow(t, s, "journal")

		tr := tripped(t, s, "journal", p)
		sn, err := wire.DecodeMessage(nextChange(t, sub))
		if err != nil {
			t.Fatal(err)
		}
		if sn.Name != "journal" || sn.State != statestore.StateOpen || sn.Version != tr.Version || sn.Gen != tr.Gen || sn.Gen == "" {
			t.Fatalf("published %+v, want the trip (version %d, gen %q)", sn, tr.Version, tr.Gen)
		}

		snaps, err := s.Snapshots(ctx, []string{"journal", "absent"})
		if err != nil {
			t.Fatal(err)
		}
		if snaps[0].State != statestore.StateOpen || snaps[0].Version != tr.Version || snaps[0].RetryInMS <= 0 {
			t.Fatalf("snapshot = %+v", snaps[0])
		}
		if snaps[1] != (statestore.Snapshot{Name: "absent", State: statestore.StateClosed}) {
			t.Fatalf("absent breaker = %+v, want closed with no gen", snaps[1])
		}

		if _, err := s.Force(ctx, "journal", p, "alice", statestore.OverrideOpen, 0, "why"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Release(ctx, "journal", p, "bob", "done"); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events(ctx, "journal", 2, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 || evs[0].Event != "release" || evs[1].Event != "force_open" {
			t.Fatalf("newest events = %+v", evs)
		}
		if evs[0].Actor != "bob" || evs[0].Reason != "done" || evs[0].Breaker != "journal" || evs[0].Version != 3 || evs[0].Time.IsZero() {
			t.Fatalf("release event = %+v", evs[0])
		}
		older, err := s.Events(ctx, "journal", 10, evs[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(older) != 1 || older[0].Event != "trip" || older[0].LastError != "503" || older[0].FailureCount != 5 ||
			older[0].OpenForMS != p.OpenTimeout.Milliseconds() {
			t.Fatalf("older events = %+v", older)
		}

		got, ok, err := s.Policy(ctx, "journal")
		if err != nil || !ok || got != p {
			t.Fatalf("stored policy = %+v %v %v, want %+v", got, ok, err, p)
		}

		if err := s.Register(ctx, "b", "a", "b"); err != nil {
			t.Fatal(err)
		}
		names, err := s.Names(ctx)
		if err != nil || len(names) != 2 || names[0] != "a" || names[1] != "b" {
			t.Fatalf("names = %v %v", names, err)
		}
	})
}

func TestStore_EventsAreCapped(t *testing.T) {
	b := redistest.Real(t)
	s, err := statestore.New(b.Client, statestore.Options{Prefix: "cap", EventsCap: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 300 {
		if _, err := s.Reset(ctx, "capped", fastPolicy(), "ops", "loop"); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.Client.XLen(ctx, "cap:{capped}:events").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n >= 300 || n < 10 {
		t.Fatalf("stream length %d after 300 events with cap 10", n)
	}
}

func TestDecodeMessage_RejectsGarbage(t *testing.T) {
	for _, payload := range []string{"", "{", `{"name":"a b","state":"open"}`, `{"name":"a","state":"weird"}`, `{"name":"a","state":"open","override":"x"}`} {
		if _, err := wire.DecodeMessage(payload); err == nil {
			t.Errorf("payload %q decoded without error", payload)
		}
	}
}

func TestStore_ProbeStartFencesByToken(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		p := fastPolicy()
		p.HalfOpen = statestore.HalfOpenCanary

		ttl := 100 * time.Millisecond
		closed, err := s.ProbeStart(ctx, "canary", p, "c1", 1, "tok-a", ttl)
		if err != nil || closed.Granted {
			t.Fatalf("claimed a window of a breaker with no state: %+v %v", closed, err)
		}
		r := halfOpen(t, s, "canary", p)
		if old, _ := s.ProbeStart(ctx, "canary", p, "c1", r.Epoch-1, "tok-a", ttl); old.Granted {
			t.Fatal("claimed an old window")
		}
		a, err := s.ProbeStart(ctx, "canary", p, "c1", r.Epoch, "tok-a", ttl)
		if err != nil || !a.Granted || a.Version != r.Version || a.Epoch != r.Epoch {
			t.Fatalf("claim: %+v %v (a claim is not a transition)", a, err)
		}
		// While c1's claim is fresh, nobody else may probe this window.
		if b2, _ := s.ProbeStart(ctx, "canary", p, "c2", r.Epoch, "tok-b", ttl); b2.Granted {
			t.Fatal("a second prober claimed a window that is being probed")
		}
		// c1 stalls past its lock; c2 takes over, in a new window.
		var b2 statestore.Result
		testcluster.Eventually(t, 5*time.Second, "the successor claims a new window", func() bool {
			b2, err = s.ProbeStart(ctx, "canary", p, "c2", r.Epoch, "tok-b", ttl)
			if err != nil {
				t.Fatal(err)
			}
			return b2.Granted
		})
		if b2.Epoch != r.Epoch+1 || b2.Version != r.Version+1 {
			t.Fatalf("takeover: epoch %d version %d, want a new window %d (version %d)", b2.Epoch, b2.Version, r.Epoch+1, r.Version+1)
		}
		late, err := s.ProbeResult(ctx, "canary", p, "c1", statestore.ProbeOutcome{Epoch: r.Epoch, OK: true, Token: "tok-a"})
		if err != nil || !late.Stale || late.State != statestore.StateHalfOpen {
			t.Fatalf("the stalled prober's result was applied: %+v %v", late, err)
		}
		if wrong, _ := s.ProbeResult(ctx, "canary", p, "c1", statestore.ProbeOutcome{Epoch: b2.Epoch, OK: true, Token: "tok-a"}); !wrong.Stale {
			t.Fatal("a result with another prober's token was applied")
		}
		res, err := s.ProbeResult(ctx, "canary", p, "c2", statestore.ProbeOutcome{Epoch: b2.Epoch, Error: "HTTP 503", Token: "tok-b"})
		if err != nil || res.Stale || res.State != statestore.StateOpen || res.Transition.Event != "probe_failed" || res.Transition.LastError != "HTTP 503" {
			t.Fatalf("the successor's result: %+v %+v %v", res.Snapshot, res.Transition, err)
		}
		evs, err := s.Events(ctx, "canary", 4, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 4 || evs[0].Event != "probe_failed" || evs[1].Event != "probe_started" || evs[1].Actor != "c2" ||
			evs[2].Event != "half_open" || evs[2].Reason != "prober_lost" || evs[3].Event != "probe_started" || evs[3].Actor != "c1" {
			t.Fatalf("journal = %+v", evs)
		}
		if _, err := s.ProbeStart(ctx, "canary", p, "c1", r.Epoch, "", ttl); !errors.Is(err, statestore.ErrInvalid) {
			t.Fatalf("empty token: %v", err)
		}
	})
}
