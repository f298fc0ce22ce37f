package statestore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/redistest"
	wire "github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

func TestStore_PublishesTheJournaledEvent(t *testing.T) {
	eachTopology(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		sub := follow(t, s, "pub")
		tripped(t, s, "pub", fastPolicy())
		ch, err := wire.DecodeChange(nextChange(t, sub))
		if err != nil || ch.Event == nil {
			t.Fatalf("decode: %+v %v", ch, err)
		}
		sn, e := ch.Snapshot, statestore.EventOf(ch.Event)
		ev := &e
		evs, _ := s.Events(ctx, "pub", 1, "")
		if ev.ID != evs[0].ID || ev.Event != "trip" || ev.Reason != "consecutive_failures" || ev.FailureCount != 5 ||
			ev.OldState != "closed" || ev.NewState != "open" || ev.Version != sn.Version || ev.Time != evs[0].Time || ev.OpenForMS != evs[0].OpenForMS {
			t.Fatalf("published event %+v, journal %+v", *ev, evs[0])
		}
	})
}

func TestStore_Details(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		p := fastPolicy()
		p.OpenTimeout = time.Minute
		p.MaxOpenTimeout = time.Hour
		p.FailureRate = 90
		p.MinCalls = 100
		p.Window = 10 * time.Second
		report(t, s, "d", p, statestore.Batch{OK: 3, Fail: 2, TrailingFail: 2, Slow: 1, LastError: "HTTP 503"})
		if _, err := s.Force(ctx, "f", p, "alice", statestore.OverrideOpen, time.Minute, "drill"); err != nil {
			t.Fatal(err)
		}
		tripped(t, s, "o", p)
		ds, err := s.Details(ctx, []string{"d", "f", "o", "none"})
		if err != nil {
			t.Fatal(err)
		}
		d, f, o, none := ds[0], ds[1], ds[2], ds[3]
		if !d.Exists || d.FailureCount != 2 || d.WindowCalls != 5 || d.WindowFailures != 2 || d.WindowSlow != 1 || d.LastError != "HTTP 503" {
			t.Fatalf("closed detail = %+v", d)
		}
		if f.Override != statestore.OverrideOpen || f.Actor != "alice" || f.Reason != "drill" || f.OverrideUntil.IsZero() || f.ChangedAt.IsZero() {
			t.Fatalf("forced detail = %+v", f)
		}
		if until := time.Until(o.OpenUntil); o.State != statestore.StateOpen || until < 55*time.Second || until > 65*time.Second {
			t.Fatalf("open detail = %+v (open for %s more)", o, until)
		}
		if none.Exists || none.State != statestore.StateClosed {
			t.Fatalf("absent detail = %+v", none)
		}
	})
}

func TestStore_EventsSince(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		p := fastPolicy()
		for _, n := range []string{"a", "b", "a", "c", "b"} {
			if _, err := s.Reset(ctx, n, p, "ops", "step"); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.EventsSince(ctx, []string{"a", "b", "c"}, statestore.EventCursor{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 5 {
			t.Fatalf("%d events, want 5", len(all))
		}
		for i := 1; i < len(all); i++ {
			if statestore.CursorOf(all[i]).Less(statestore.CursorOf(all[i-1])) {
				t.Fatalf("events out of cursor order: %+v", all)
			}
		}
		// Resuming after the third: everything after it comes back, it
		// does not; events of its own millisecond may come again.
		third := statestore.CursorOf(all[2])
		cur, err := statestore.ParseCursor(third.String())
		if err != nil || cur != third {
			t.Fatalf("cursor round trip: %+v %v", cur, err)
		}
		rest, err := s.EventsSince(ctx, []string{"a", "b", "c"}, cur, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[statestore.EventCursor]bool{}
		for _, e := range rest {
			got[statestore.CursorOf(e)] = true
		}
		if got[third] || !got[statestore.CursorOf(all[3])] || !got[statestore.CursorOf(all[4])] {
			t.Fatalf("after the 3rd: %+v", rest)
		}
		ms := func(id string) string { return strings.SplitN(id, "-", 2)[0] }
		for _, e := range rest {
			if statestore.CursorOf(e).Less(third) && ms(e.ID) != ms(third.ID) {
				t.Fatalf("an event from an earlier millisecond came back: %+v", e)
			}
		}
		last, _ := s.EventsSince(ctx, []string{"a", "b", "c"}, statestore.EventCursor{}, 2)
		if len(last) != 2 || last[1].ID != all[4].ID {
			t.Fatalf("newest 2 = %+v", last)
		}
		for _, bad := range []string{"", "x", "1-2", "1-2/", "a-b/x", "1-2/{x}"} {
			if _, err := statestore.ParseCursor(bad); err == nil {
				t.Errorf("cursor %q parsed", bad)
			}
		}
	})
}

func TestStore_Agents(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	ctx := context.Background()
	now := time.Now()
	for _, h := range []struct {
		id       string
		at       time.Time
		degraded bool
	}{{"fresh", now, false}, {"sick", now, true}, {"quiet", now.Add(-time.Minute), false}, {"gone", now.Add(-2 * time.Hour), false}} {
		if err := s.Heartbeat(ctx, h.id, h.degraded, h.at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Agents(ctx, now.Add(-30*time.Second), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("agents seen = %+v", got)
	}
	for _, a := range got {
		if (a.ID == "sick") != a.Degraded {
			t.Fatalf("agent %+v", a)
		}
	}
	if n, _ := b.Client.HLen(ctx, "t:agents").Result(); n != 3 {
		t.Fatalf("%d agents kept, want the 3 heard from within the hour", n)
	}
}
