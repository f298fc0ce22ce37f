package statestore_test

import (
	"context"
	"testing"

	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/statestore"
)

// TestStore_ProbeSucceededClearsLastError: a probe that closes the
// breaker starts it afresh, last error included: neither the journal's
// probe_succeeded event, nor the state, nor the answer carries the
// failure from before the outage ended. Both ways a probe succeeds: a
// coordinator's canary and an agent's traffic probe.
func TestStore_ProbeSucceededClearsLastError(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()

		check := func(t *testing.T, name string, res statestore.Result) {
			t.Helper()
			if res.Transition == nil || res.Transition.Event != "probe_succeeded" || res.State != statestore.StateClosed {
				t.Fatalf("the probe did not close %s: %+v %+v", name, res.Snapshot, res.Transition)
			}
			if res.LastError != "" || res.Transition.LastError != "" {
				t.Fatalf("the answer carries the old last error: %q, transition %q", res.LastError, res.Transition.LastError)
			}
			evs, err := s.Events(ctx, name, 1, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Event != "probe_succeeded" {
				t.Fatalf("newest journal event of %s: %+v", name, evs)
			}
			if evs[0].LastError != "" {
				t.Fatalf("the journal's probe_succeeded carries last_error %q", evs[0].LastError)
			}
			d, err := s.Details(ctx, []string{name})
			if err != nil {
				t.Fatal(err)
			}
			if d[0].LastError != "" {
				t.Fatalf("the closed breaker's state keeps last_error %q", d[0].LastError)
			}
		}

		t.Run("a canary's success", func(t *testing.T) {
			p := fastPolicy()
			r := claimed(t, s, "canary-clears", p, "tok")
			if r.LastError == "" {
				t.Fatalf("the trip left no last error to clear: %+v", r.Snapshot)
			}
			ok, err := s.ProbeResult(ctx, "canary-clears", p, "c1", statestore.ProbeOutcome{Epoch: r.Epoch, OK: true, Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			check(t, "canary-clears", ok)
		})

		t.Run("a traffic probe's success", func(t *testing.T) {
			p := fastPolicy()
			r := halfOpen(t, s, "traffic-clears", p)
			if r.LastError == "" {
				t.Fatalf("the trip left no last error to clear: %+v", r.Snapshot)
			}
			g, err := s.AcquirePermit(ctx, "traffic-clears", p, "a1", r.Gen, r.Epoch, "nonce-1")
			if err != nil || !g.Granted {
				t.Fatalf("permit: %+v %v", g, err)
			}
			verdict := &statestore.ProbeOutcome{Gen: r.Gen, Epoch: r.Epoch, OK: true, Nonce: "nonce-1"}
			check(t, "traffic-clears", report2(t, s, "traffic-clears", p, "a1", statestore.Batch{Probe: verdict}))
		})
	})
}
