package agentlib_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

func TestBreaker_ReportRetryAfter(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	ctx := context.Background()

	t.Run("a success that says the limit is exhausted opens the cluster for it, counting no failure", func(t *testing.T) {
		a := newAgent(t, c, "a1")
		b := breaker(t, a, "openai")
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(agentlib.Success())
		b.ReportRetryAfter(3*time.Second, "openai: x-ratelimit-remaining-requests 0, resets in 3s")
		testcluster.Eventually(t, 3*time.Second, "the cluster opens", func() bool { return c.Snapshot(t, "openai").State == statestore.StateOpen })
		evs, err := c.Store.Events(ctx, "openai", 10, "")
		if err != nil || len(evs) == 0 {
			t.Fatalf("journal: %v %v", evs, err)
		}
		if trip := evs[0]; trip.Event != "trip" || trip.Reason != "retry_after" || trip.FailureCount != 0 || trip.OpenForMS > 3000 || trip.OpenForMS < 2000 {
			t.Fatalf("the trip: %+v, want retry_after for about 3s with no failure counted", trip.Transition)
		}
		testcluster.Eventually(t, 2*time.Second, "the agent denies", func() bool { return denied(b, agentlib.ErrOpen) })
	})

	t.Run("a longer Retry-After while open moves every agent's retry time", func(t *testing.T) {
		a := newAgent(t, c, "a4")
		other := breaker(t, newAgent(t, c, "a5"), "mistral")
		b := breaker(t, a, "mistral")
		// A call begins while the breaker is closed ...
		inFlight, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		// ... and another agent trips it for a Retry-After of 3 s.
		other.ReportRetryAfter(3*time.Second, "mistral: 429, Retry-After 3")
		retryAt := func(br *agentlib.Breaker) time.Time {
			_, err := br.Allow()
			var de *agentlib.DeniedError
			if !errors.As(err, &de) {
				return time.Time{}
			}
			return de.RetryAt
		}
		for _, br := range []*agentlib.Breaker{b, other} {
			testcluster.Eventually(t, 3*time.Second, "both agents deny until about 3s from now", func() bool {
				r := time.Until(retryAt(br))
				return r > time.Second && r <= 3*time.Second
			})
		}
		// The call that began before the trip ends with a 429 asking for a
		// minute: about the provider now, whatever state the call began
		// under. The cluster extends the open time, and every agent follows.
		inFlight(agentlib.FailureRetryAfter(errors.New("mistral: 429, Retry-After 60"), time.Minute))
		testcluster.Eventually(t, 3*time.Second, "the other agent denies until about a minute from now", func() bool {
			return time.Until(retryAt(other)) > 50*time.Second
		})
		evs, err := c.Store.Events(ctx, "mistral", 1, "")
		if err != nil || len(evs) != 1 || evs[0].Event != "extend" || evs[0].OpenForMS < 55000 || evs[0].Actor != "a4" {
			t.Fatalf("the last event: %+v %v, want a4's extend of about a minute", evs, err)
		}
	})

	t.Run("zero or negative says nothing", func(t *testing.T) {
		a := newAgent(t, c, "a2")
		b := breaker(t, a, "anthropic")
		b.ReportRetryAfter(0, "x")
		b.ReportRetryAfter(-time.Second, "x")
		// A failure sent after them is the first thing the cluster hears.
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(agentlib.Failure(errProvider))
		testcluster.Eventually(t, 3*time.Second, "the failure arrives", func() bool {
			d, err := c.Store.Details(ctx, []string{"anthropic"})
			return err == nil && d[0].FailureCount == 1
		})
		if s := c.Snapshot(t, "anthropic"); s.State != statestore.StateClosed {
			t.Fatalf("state %s after a zero Retry-After", s.State)
		}
	})

	t.Run("degraded: the local breaker stays open for it", func(t *testing.T) {
		a := newAgent(t, c, "a3", func(cfg *agentlib.Config) {
			cfg.CoordinatorURL = "http://127.0.0.1:1"
			cfg.ResyncInterval = 100 * time.Millisecond
		})
		b := breaker(t, a, "ollama")
		// With no coordinator the reports fail and the agent degrades.
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(agentlib.Failure(errProvider))
		testcluster.Eventually(t, 3*time.Second, "degraded", a.Degraded)
		if done, err := b.Allow(); err != nil {
			t.Fatalf("the local breaker denies before the Retry-After: %v", err)
		} else {
			done(agentlib.Success())
		}
		b.ReportRetryAfter(time.Minute, "ollama: limits exhausted")
		_, err = b.Allow()
		if !errors.Is(err, agentlib.ErrOpen) || !errors.Is(err, agentlib.ErrDegraded) {
			t.Fatalf("local breaker after a Retry-After: %v", err)
		}
	})
}
