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

func TestBreaker_RetryAllowed(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: `
defaults:
  open_timeout: 1m
breakers:
  quick:
    open_timeout: 1s
`})
	ctx := context.Background()
	a := newAgent(t, c, "a1")

	t.Run("closed: allowed, without allocating", func(t *testing.T) {
		b := breaker(t, a, "closed-one")
		if !b.RetryAllowed() {
			t.Fatal("a closed breaker refuses a retry")
		}
		if n := testing.AllocsPerRun(1000, func() { _ = b.RetryAllowed() }); n != 0 {
			t.Fatalf("RetryAllowed: %v allocs/op, want 0", n)
		}
	})

	t.Run("open: refused", func(t *testing.T) {
		b := breaker(t, a, "tripped")
		c.Trip(t, "tripped", 5)
		testcluster.Eventually(t, 3*time.Second, "the agent sees the trip", func() bool { return !b.RetryAllowed() })
		if b.State().State != statestore.StateOpen {
			t.Fatalf("refused in state %+v", b.State())
		}
	})

	t.Run("half-open: refused, the probe is not a retry's", func(t *testing.T) {
		b := breaker(t, a, "quick")
		c.Trip(t, "quick", 5)
		testcluster.Eventually(t, 5*time.Second, "half-open", func() bool { return b.State().State == statestore.StateHalfOpen })
		if b.RetryAllowed() {
			t.Fatal("a half-open breaker allows a retry")
		}
	})

	t.Run("forced closed: allowed, forced open: refused", func(t *testing.T) {
		b := breaker(t, a, "forced")
		p := c.Config.Policy("forced")
		if _, err := c.Store.Force(ctx, "forced", p, "ops", statestore.OverrideClosed, 0, "drill"); err != nil {
			t.Fatal(err)
		}
		testcluster.Eventually(t, 3*time.Second, "forced closed seen", func() bool { return b.State().Override == statestore.OverrideClosed })
		if !b.RetryAllowed() {
			t.Fatal("forced closed refuses a retry")
		}
		if _, err := c.Store.Force(ctx, "forced", p, "ops", statestore.OverrideOpen, 0, "drill"); err != nil {
			t.Fatal(err)
		}
		testcluster.Eventually(t, 3*time.Second, "forced open refuses", func() bool { return !b.RetryAllowed() })
		if b.State().Override != statestore.OverrideOpen {
			t.Fatalf("refused with %+v", b.State())
		}
	})

	t.Run("degraded: the local breaker decides", func(t *testing.T) {
		// No resync to bring Redis back while the test runs.
		d := newAgent(t, c, "a2", func(cfg *agentlib.Config) { cfg.ResyncInterval = time.Hour })
		b := breaker(t, d, "local")
		d.FailLinkForTest(true)
		d.FailLinkForTest(true)
		if !d.Degraded() {
			t.Fatal("not degraded after two failed resyncs")
		}
		if !b.RetryAllowed() {
			t.Fatal("a closed local breaker refuses a retry")
		}
		for range 10 {
			done, err := b.Allow()
			if err != nil {
				break
			}
			done(agentlib.Failure(errors.New("boom")))
		}
		if b.RetryAllowed() {
			t.Fatal("an open local breaker allows a retry")
		}
	})
}

// BenchmarkBreaker_RetryAllowed: the question a retry asks, beside the
// snapshot read it replaced in the sidecar.
func BenchmarkBreaker_RetryAllowed(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{})
	a := newAgent(b, c, "a1")
	br := breaker(b, a, "openai")
	b.Run("RetryAllowed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !br.RetryAllowed() {
				b.Fatal("refused")
			}
		}
	})
	b.Run("State", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if st := br.State(); !(st.Override == statestore.OverrideClosed || st.Override == statestore.OverrideNone && st.State == statestore.StateClosed) {
				b.Fatal("refused")
			}
		}
	})
}
