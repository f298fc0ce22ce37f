package statestore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/statestore"
)

// The report rules of docs/protocol.md, on real Redis and the embedded
// server.
func TestStore_ReportProtocol(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()

		t.Run("a resent report counts once, and an older one not at all", func(t *testing.T) {
			p := fastPolicy()
			batch := statestore.Batch{Boot: "boot-1", Seq: 7, Fail: 4, TrailingFail: 4}
			first := report2(t, s, "dup", p, "a1", batch)
			again := report2(t, s, "dup", p, "a1", batch)
			if first.Applied != statestore.AppliedOK || again.Applied != statestore.AppliedDuplicate || again.FailureCount != 4 {
				t.Fatalf("first %s count %d, again %s count %d: want applied then duplicate at 4", first.Applied, first.FailureCount, again.Applied, again.FailureCount)
			}
			older := report2(t, s, "dup", p, "a1", statestore.Batch{Boot: "boot-1", Seq: 6, Fail: 1, TrailingFail: 1})
			if older.Applied != statestore.AppliedDuplicate || older.State != statestore.StateClosed {
				t.Fatalf("an older report: %s %s, want a duplicate, still closed", older.Applied, older.State)
			}
			// Another agent's seq is its own; a restarted agent starts again.
			other := report2(t, s, "dup", p, "a2", statestore.Batch{Boot: "x", Seq: 1, OK: 1})
			restarted := report2(t, s, "dup", p, "a1", statestore.Batch{Boot: "boot-2", Seq: 1, Fail: 1, TrailingFail: 1})
			if other.Applied != statestore.AppliedOK || restarted.Applied != statestore.AppliedOK || restarted.FailureCount != 1 {
				t.Fatalf("other agent %s, restarted agent %s count %d", other.Applied, restarted.Applied, restarted.FailureCount)
			}
		})

		t.Run("outcomes count only against the state they were allowed under", func(t *testing.T) {
			p := fastPolicy()
			before := report2(t, s, "fence", p, "a1", statestore.Batch{Fenced: true, OK: 1})
			if before.Applied != statestore.AppliedOK || before.Gen == "" {
				t.Fatalf("a fenced report on a fresh breaker: %+v", before)
			}
			// Calls allowed before anything was written name no gen.
			tr := report2(t, s, "fence", p, "a1", statestore.Batch{Fenced: true, Fail: 5, TrailingFail: 5})
			if tr.State != statestore.StateOpen {
				t.Fatalf("5 failures at version 0: %s", tr.State)
			}
			closed, err := s.Reset(ctx, "fence", p, "ops", "healed")
			if err != nil {
				t.Fatal(err)
			}
			// Calls that hung through the outage end after the close: their
			// failures name version 0 and must not trip the healed breaker.
			for range 3 {
				late := report2(t, s, "fence", p, "a2", statestore.Batch{Fenced: true, Gen: tr.Gen, Version: 0, Fail: 5, TrailingFail: 5, Hung: 5})
				if late.Applied != statestore.AppliedStale || late.State != statestore.StateClosed || late.FailureCount != 0 {
					t.Fatalf("late failures from before the trip: %s %s count %d, want stale, closed, 0", late.Applied, late.State, late.FailureCount)
				}
			}
			now := report2(t, s, "fence", p, "a2", statestore.Batch{Fenced: true, Gen: closed.Gen, Version: closed.Version, Fail: 2, TrailingFail: 2})
			if now.Applied != statestore.AppliedOK || now.FailureCount != 2 {
				t.Fatalf("failures under the current state: %s count %d", now.Applied, now.FailureCount)
			}
			// Same version, another incarnation: stale too.
			other := report2(t, s, "fence", p, "a2", statestore.Batch{Fenced: true, Gen: "elsewhere", Version: closed.Version, Fail: 9})
			if other.Applied != statestore.AppliedStale {
				t.Fatalf("another gen: %s", other.Applied)
			}
			// Unfenced reports (by hand, curl) count against whatever is current.
			hand := report2(t, s, "fence", p, "me", statestore.Batch{Fail: 1, TrailingFail: 1})
			if hand.Applied != statestore.AppliedOK || hand.FailureCount != 3 {
				t.Fatalf("unfenced: %s count %d", hand.Applied, hand.FailureCount)
			}
		})

		t.Run("a late Retry-After still extends an open breaker", func(t *testing.T) {
			p := fastPolicy()
			p.OpenTimeout = time.Second
			tr := report2(t, s, "late-ra", p, "a1", statestore.Batch{Fenced: true, Fail: 5, TrailingFail: 5})
			ext := report2(t, s, "late-ra", p, "a2", statestore.Batch{Fenced: true, Gen: tr.Gen, Version: 0, Fail: 1, RetryAfter: 30 * time.Second})
			if ext.Transition == nil || ext.Transition.Event != "extend" || ext.RetryInMS < 29_000 {
				t.Fatalf("late 429 with Retry-After 30s: %+v %+v", ext.Snapshot, ext.Transition)
			}
		})

		t.Run("hung calls count as failures while still in flight", func(t *testing.T) {
			p := fastPolicy()
			r := report2(t, s, "hung", p, "a1", statestore.Batch{Fenced: true, Hung: 3, HungWaiting: 3, HungOldest: 2100 * time.Millisecond})
			if r.FailureCount != 3 || r.State != statestore.StateClosed || !strings.Contains(r.LastError, "hang_after") {
				t.Fatalf("3 hung calls: count %d %s %q", r.FailureCount, r.State, r.LastError)
			}
			r = report2(t, s, "hung", p, "a2", statestore.Batch{Fenced: true, Hung: 2, HungWaiting: 5})
			if r.State != statestore.StateOpen || r.Transition.Reason != "consecutive_failures" || r.Transition.FailureCount != 5 {
				t.Fatalf("5 hung across two agents: %+v %+v", r.Snapshot, r.Transition)
			}
			// Hung calls come after the batch's successes: those reset the
			// count, the hung ones count again.
			r = report2(t, s, "hung-after-ok", p, "a1", statestore.Batch{Fenced: true, Fail: 3, TrailingFail: 3})
			r = report2(t, s, "hung-after-ok", p, "a2", statestore.Batch{Fenced: true, OK: 4, Hung: 2})
			if r.FailureCount != 2 {
				t.Fatalf("3 failures, then 4 successes and 2 hung: count %d, want 2", r.FailureCount)
			}

			rp := fastPolicy()
			rp.ConsecutiveFailures = 0
			rp.SlowCall = time.Second
			rp.SlowCallRate = 50
			rp.MinCalls = 4
			rp.Window = 10 * time.Second
			r = report2(t, s, "hung-rate", rp, "a1", statestore.Batch{Fenced: true, OK: 2})
			r = report2(t, s, "hung-rate", rp, "a1", statestore.Batch{Fenced: true, Hung: 2})
			if r.State != statestore.StateOpen || r.Transition.Reason != "slow_call_rate" {
				t.Fatalf("2 of 4 calls hung, slow_call_rate 50: %+v %+v", r.Snapshot, r.Transition)
			}
		})

		t.Run("successes that completed before a run of failures began do not end it", func(t *testing.T) {
			p := fastPolicy()
			report2(t, s, "run", p, "a1", statestore.Batch{Fenced: true, Fail: 3, TrailingFail: 3})
			old := report2(t, s, "run", p, "a2", statestore.Batch{Fenced: true, OK: 50, LastOKAge: 10 * time.Second})
			if old.FailureCount != 3 {
				t.Fatalf("successes from 10 s ago reset the count to %d, want 3", old.FailureCount)
			}
			fresh := report2(t, s, "run", p, "a2", statestore.Batch{Fenced: true, OK: 1})
			if fresh.FailureCount != 0 {
				t.Fatalf("a success just now: count %d, want 0", fresh.FailureCount)
			}
		})

		t.Run("one sick agent opens its own breaker, not the cluster's", func(t *testing.T) {
			p := fastPolicy()
			p.MinAgents = 2
			p.OpenTimeout = 5 * time.Second
			r := report2(t, s, "quorum", p, "sick", statestore.Batch{Fenced: true, Fail: 5, TrailingFail: 5, LastError: "dial tcp: lookup api.openai.com: no such host"})
			if r.State != statestore.StateClosed || r.LocalOpen != p.OpenTimeout {
				t.Fatalf("one agent's failures: %s local %s, want closed and local open %s", r.State, r.LocalOpen, p.OpenTimeout)
			}
			r = report2(t, s, "quorum", p, "sick", statestore.Batch{Fenced: true, Fail: 2, TrailingFail: 2})
			if r.State != statestore.StateClosed || r.LocalOpen == 0 {
				t.Fatalf("more of the same agent: %s local %s", r.State, r.LocalOpen)
			}
			evs, err := s.Events(ctx, "quorum", 10, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Event != "local_trip" || evs[0].Actor != "sick" || !strings.Contains(evs[0].Reason, "1 of 2 agents") {
				t.Fatalf("journal = %+v, want one local_trip by sick", evs)
			}
			r = report2(t, s, "quorum", p, "other", statestore.Batch{Fenced: true, Fail: 1, TrailingFail: 1})
			if r.State != statestore.StateOpen || r.LocalOpen != 0 {
				t.Fatalf("a second agent failing: %s local %s, want the cluster open", r.State, r.LocalOpen)
			}
			// A Retry-After is the provider speaking: no quorum needed.
			r = report2(t, s, "quorum-ra", p, "one", statestore.Batch{Fenced: true, Fail: 1, RetryAfter: 10 * time.Second})
			if r.State != statestore.StateOpen {
				t.Fatalf("Retry-After under a quorum: %s", r.State)
			}
		})

		t.Run("a provider that refuses the credentials opens for misconfigured_open", func(t *testing.T) {
			p := fastPolicy()
			p.MisconfiguredOpen = 2 * time.Hour
			r := report2(t, s, "misconf", p, "a1", statestore.Batch{Fenced: true, Fail: 1, TrailingFail: 1, Misconfigured: 1, LastError: "openai: HTTP 401 invalid_api_key"})
			if r.State != statestore.StateOpen || r.Transition == nil || r.Transition.Reason != "misconfigured" || r.RetryInMS < (2*time.Hour-time.Minute).Milliseconds() {
				t.Fatalf("one 401: %+v %+v, want open for about 2h, reason misconfigured", r.Snapshot, r.Transition)
			}
		})

		t.Run("the permit holder can give its window back", func(t *testing.T) {
			p := fastPolicy()
			r := halfOpen(t, s, "release", p)
			if g, err := s.AcquirePermit(ctx, "release", p, "holder", r.Gen, r.Epoch, "secret"); err != nil || !g.Granted {
				t.Fatalf("permit: %+v %v", g, err)
			}
			give := &statestore.ProbeOutcome{Gen: r.Gen, Epoch: r.Epoch, Release: true, Nonce: "secret"}
			if x := report2(t, s, "release", p, "intruder", statestore.Batch{Probe: give}); x.Probe != statestore.ProbeRefused || x.Epoch != r.Epoch {
				t.Fatalf("a release by someone else: %s epoch %d", x.Probe, x.Epoch)
			}
			rel := report2(t, s, "release", p, "holder", statestore.Batch{Probe: give})
			if rel.Probe != statestore.ProbeReleased || rel.Epoch != r.Epoch+1 || rel.State != statestore.StateHalfOpen || rel.Transition.Reason != "probe_released" {
				t.Fatalf("release: %s %+v %+v", rel.Probe, rel.Snapshot, rel.Transition)
			}
			if g, _ := s.AcquirePermit(ctx, "release", p, "next", rel.Gen, rel.Epoch, "n2"); !g.Granted {
				t.Fatal("no permit in the window after a release")
			}
		})
	})
}
