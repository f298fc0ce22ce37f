package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	wire "github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// An agent token could register breakers without
// bound. RegisterFor bounds them per agent and in total, all or nothing.
func TestStore_RegisterForBoundsWhatAgentsRegister(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		lim := statestore.Limits{MaxBreakers: 6, MaxPerAgent: 3}
		names := func(prefix string, n int) []string {
			var out []string
			for i := range n {
				out = append(out, fmt.Sprintf("%s-%d", prefix, i))
			}
			return out
		}
		if err := s.RegisterFor(ctx, "a1", lim, names("a1", 3)...); err != nil {
			t.Fatalf("three names for a1 (its maximum): %v", err)
		}
		// Names it registered already cost nothing.
		if err := s.RegisterFor(ctx, "a1", lim, names("a1", 3)...); err != nil {
			t.Fatalf("the same three again: %v", err)
		}
		err := s.RegisterFor(ctx, "a1", lim, "a1-3", "a1-0")
		var le *statestore.LimitError
		if !errors.As(err, &le) || !errors.Is(err, statestore.ErrLimit) || le.Limit != "max_breakers_per_agent" || le.Max != 3 || le.Current != 3 || le.New != 1 {
			t.Fatalf("a fourth for a1: %v (%+v), want max_breakers_per_agent", err, le)
		}
		// Another agent's budget is its own; a name a1 registered is free.
		if err := s.RegisterFor(ctx, "a2", lim, "a1-0", "a2-0", "a2-1"); err != nil {
			t.Fatalf("a2: %v", err)
		}
		// The registry holds 5 of 6: two new names do not both fit, and
		// neither is registered.
		err = s.RegisterFor(ctx, "a3", lim, "a3-0", "a3-1")
		if !errors.As(err, &le) || le.Limit != "max_breakers" || le.Max != 6 || le.Current != 5 {
			t.Fatalf("past the total: %v (%+v)", err, le)
		}
		all, err := s.Names(ctx)
		if err != nil || len(all) != 5 {
			t.Fatalf("registry after refusals = %v %v, want 5 names", all, err)
		}
		// Configured names and operators' overrides always register.
		if err := s.Register(ctx, "configured-1", "configured-2"); err != nil {
			t.Fatal(err)
		}
		// Unregistering gives a name back to its agent.
		if err := s.Unregister(ctx, "a1-0", "a1-1"); err != nil {
			t.Fatal(err)
		}
		if err := s.RegisterFor(ctx, "a1", statestore.Limits{MaxPerAgent: 3}, "a1-4", "a1-5"); err != nil {
			t.Fatalf("a1 after two of its names left: %v", err)
		}
	})
}

func TestStore_Delete(t *testing.T) {
	eachTopology(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		p := fastPolicy()
		sub := follow(t, s, "doomed")
		tr := tripped(t, s, "doomed", p)
		if err := s.Register(ctx, "doomed"); err != nil {
			t.Fatal(err)
		}
		nextChange(t, sub) // the trip
		res, err := s.Delete(ctx, "doomed", p, "ops", "decommissioned")
		if err != nil || !res.Gone || res.Transition == nil || res.Transition.Event != "deleted" || res.Transition.Actor != "ops" ||
			res.Transition.Reason != "decommissioned" || res.Transition.OldState != "open" {
			t.Fatalf("delete: %+v %+v %v", res, res.Transition, err)
		}
		// The last event went out with the state agents are left with.
		ch, err := wire.DecodeChange(nextChange(t, sub))
		if err != nil || ch.Event["event"] != "deleted" || ch.State != statestore.StateClosed || ch.Gen != "" || ch.Version != 0 {
			t.Fatalf("published %+v %v", ch, err)
		}
		if !ch.Newer(tr.Snapshot) {
			t.Fatal("an agent mirroring the open breaker would not take the deletion")
		}
		n, err := b.Client.Exists(ctx, "t:{doomed}:state", "t:{doomed}:events", "t:{doomed}:window", "t:{doomed}:permit").Result()
		if err != nil || n != 0 {
			t.Fatalf("%d of its keys left (%v)", n, err)
		}
		if names, _ := s.Names(ctx); len(names) != 0 {
			t.Fatalf("registry after delete: %v", names)
		}
		// The next report creates it again, in a new incarnation.
		again := report(t, s, "doomed", p, statestore.Batch{Fail: 1, TrailingFail: 1})
		if again.FailureCount != 1 || again.Gen == "" || again.Gen == tr.Gen {
			t.Fatalf("after delete: %+v", again)
		}
	})
}

func TestStore_Expire(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		p := fastPolicy()
		retention := 300 * time.Millisecond
		report(t, s, "idle", p, statestore.Batch{OK: 1})
		report(t, s, "busy", p, statestore.Batch{OK: 1})
		if _, err := s.Force(ctx, "pinned", p, "ops", statestore.OverrideOpen, 0, "held on purpose"); err != nil {
			t.Fatal(err)
		}
		if err := s.Register(ctx, "idle", "busy", "pinned", "ghost"); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Expire(ctx, "idle", p, "c1", retention); err != nil || r.Gone {
			t.Fatalf("a breaker reported just now expired: %+v %v", r, err)
		}
		start := redisTime(t, b)
		testcluster.Eventually(t, 5*time.Second, "past the retention", func() bool {
			if redisTime(t, b).Sub(start) < retention/2 {
				return false
			}
			report(t, s, "busy", p, statestore.Batch{OK: 1}) // busy keeps reporting
			return redisTime(t, b).Sub(start) > retention+50*time.Millisecond
		})
		for name, gone := range map[string]bool{"idle": true, "busy": false, "pinned": false, "ghost": true} {
			r, err := s.Expire(ctx, name, p, "c1", retention)
			if err != nil || r.Gone != gone {
				t.Errorf("%s: gone %v (%v), want %v", name, r.Gone, err, gone)
			}
			if name == "idle" && (r.Transition == nil || r.Transition.Event != "expired" || r.Transition.Actor != "c1") {
				t.Errorf("idle expired with %+v, want one expired event", r.Transition)
			}
			if name == "ghost" && r.Transition != nil {
				t.Errorf("a breaker with no state expired with an event: %+v", r.Transition)
			}
		}
		names, err := s.Names(ctx)
		if err != nil || len(names) != 2 || names[0] != "busy" || names[1] != "pinned" {
			t.Fatalf("registry after expiry = %v %v, want busy and pinned", names, err)
		}
	})
}

// ErrUnavailable once flattened its cause with %v.
func TestStore_UnavailableWrapsItsCause(t *testing.T) {
	srv := redistest.Start(t)
	s, err := statestore.New(srv.Client(t), statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	_, err = s.Snapshots(context.Background(), []string{"openai"})
	if !errors.Is(err, statestore.ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v: want ErrUnavailable wrapping ECONNREFUSED (errors.Is sees both)", err)
	}
}

// The registry's changes are read from its log, not from the whole set:
// what came and went since a cursor, net.
func TestStore_RegistryChanges(t *testing.T) {
	eachTopology(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		changes := func(cur statestore.RegistryCursor) statestore.RegistryChanges {
			t.Helper()
			ch, err := s.RegistryChanges(ctx, cur)
			if err != nil {
				t.Fatal(err)
			}
			return ch
		}
		first := changes(statestore.RegistryCursor{})
		if !first.Reread {
			t.Fatalf("a reader with no cursor was not told to read everything: %+v", first)
		}
		if err := s.Register(ctx, "b", "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.RegisterFor(ctx, "agent-1", statestore.Limits{}, "c", "a"); err != nil {
			t.Fatal(err)
		}
		ch := changes(first.Cursor)
		if ch.Reread || !slices.Equal(ch.Added, []string{"b", "a", "c"}) || len(ch.Removed) != 0 {
			t.Fatalf("after three registrations: %+v", ch)
		}
		if same := changes(ch.Cursor); same.Reread || len(same.Added)+len(same.Removed) != 0 {
			t.Fatalf("nothing changed, yet: %+v", same)
		}
		// Net: c went and came back; d came and went; a went.
		for _, step := range []func() error{
			func() error { return s.Unregister(ctx, "c") },
			func() error { return s.Register(ctx, "d") },
			func() error { return s.Register(ctx, "c") },
			func() error { return s.Unregister(ctx, "d", "a", "never-registered") },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		next := changes(ch.Cursor)
		if next.Reread || !slices.Equal(next.Added, []string{"c"}) || !slices.Equal(next.Removed, []string{"d", "a"}) {
			t.Fatalf("net changes: %+v, want c added, d and a removed", next)
		}
		// Unregistering what is not registered changes nothing.
		if err := s.Unregister(ctx, "never-registered"); err != nil {
			t.Fatal(err)
		}
		if same := changes(next.Cursor); same.Reread || len(same.Added)+len(same.Removed) != 0 {
			t.Fatalf("an empty change was logged: %+v", same)
		}
	})
}

func TestStore_RegistryChangesBeyondTheLog(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		start, err := s.RegistryChanges(ctx, statestore.RegistryCursor{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 1001 {
			if err := s.Register(ctx, fmt.Sprintf("n-%04d", i)); err != nil {
				t.Fatal(err)
			}
		}
		ch, err := s.RegistryChanges(ctx, start.Cursor)
		if err != nil || !ch.Reread {
			t.Fatalf("1,001 changes later, with a log of 1,000: %d added, reread %v (%v), want reread", len(ch.Added), ch.Reread, err)
		}
	})
}

// A version that kept no index adds to the set alone (or Redis lost the
// index): the next read of the changes rebuilds the index and tells
// readers to read everything.
func TestStore_RegistryIndexRebuilt(t *testing.T) {
	eachTopology(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		if err := s.Register(ctx, "a", "c"); err != nil {
			t.Fatal(err)
		}
		start, err := s.RegistryChanges(ctx, statestore.RegistryCursor{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Client.SAdd(ctx, "t:breakers", "b").Err(); err != nil { // as register.lua did before the index
			t.Fatal(err)
		}
		ch, err := s.RegistryChanges(ctx, start.Cursor)
		if err != nil || !ch.Reread {
			t.Fatalf("the set and the index disagree: %+v %v, want reread", ch, err)
		}
		page, err := s.RegistryPage(ctx, "", 10)
		if err != nil || !slices.Equal(page, []string{"a", "b", "c"}) {
			t.Fatalf("index after the rebuild: %v %v", page, err)
		}
		// Another reader behind the rebuild is told too.
		if other, err := s.RegistryChanges(ctx, start.Cursor); err != nil || !other.Reread {
			t.Fatalf("a reader from before the rebuild: %+v %v", other, err)
		}
		if after, err := s.RegistryChanges(ctx, ch.Cursor); err != nil || after.Reread || len(after.Added) != 0 {
			t.Fatalf("after the rebuild: %+v %v", after, err)
		}
	})
}

func TestStore_RegistryPage(t *testing.T) {
	eachTopology(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		if err := s.Register(ctx, "e", "a", "c", "b", "d"); err != nil {
			t.Fatal(err)
		}
		var got []string
		after := ""
		for {
			page, err := s.RegistryPage(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1]
			if after == "b" {
				// Registered mid-walk, after the cursor: still seen.
				if err := s.Register(ctx, "cc"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !slices.Equal(got, []string{"a", "b", "c", "cc", "d", "e"}) {
			t.Fatalf("pages gave %v", got)
		}
		if page, err := s.RegistryPage(ctx, "zzz", 2); err != nil || len(page) != 0 {
			t.Fatalf("after the last name: %v %v", page, err)
		}
		for _, bad := range []struct {
			after string
			limit int
		}{{"", 0}, {"a b", 2}, {"", -1}} {
			if _, err := s.RegistryPage(ctx, bad.after, bad.limit); !errors.Is(err, statestore.ErrInvalid) {
				t.Errorf("page after %q limit %d: %v, want ErrInvalid", bad.after, bad.limit, err)
			}
		}
		if in, err := s.Registered(ctx, "cc"); err != nil || !in {
			t.Fatalf("cc registered: %v %v", in, err)
		}
		if in, err := s.Registered(ctx, "zz"); err != nil || in {
			t.Fatalf("zz registered: %v %v", in, err)
		}
	})
}
