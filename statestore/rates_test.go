package statestore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

func rates(t *testing.T, s *statestore.Store, name string) statestore.Rates {
	t.Helper()
	rs, err := s.Rates(context.Background(), []string{name})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Name != name || len(rs[0].Calls) != statestore.RateSeconds || len(rs[0].Failures) != statestore.RateSeconds {
		t.Fatalf("Rates(%s) = %+v", name, rs)
	}
	return rs[0]
}

func sum(xs []int64) (n int64) {
	for _, x := range xs {
		n += x
	}
	return n
}

func TestStore_Rates(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()

		t.Run("every part counts its calls and failures, with no rate rule on", func(t *testing.T) {
			p := fastPolicy() // consecutive failures only
			report(t, s, "plain", p, statestore.Batch{OK: 3, Fail: 2, TrailingFail: 1, Hung: 1})
			report(t, s, "plain", p, statestore.Batch{OK: 4})
			r := rates(t, s, "plain")
			if sum(r.Calls) != 10 || sum(r.Failures) != 3 {
				t.Fatalf("calls %d failures %d, want 10 and 3: %+v", sum(r.Calls), sum(r.Failures), r)
			}
			if last := len(r.Calls) - 1; r.Calls[last]+r.Calls[last-1] != 10 {
				t.Fatalf("the calls are not in the last seconds: %v", r.Calls)
			}
			if d, _ := s.Details(ctx, []string{"plain"}); d[0].WindowCalls != 0 {
				t.Fatalf("the rate rules' window is kept with no rate rule on: %+v", d[0])
			}
			if time.Since(r.End) > 5*time.Second || time.Until(r.End) > 5*time.Second {
				t.Fatalf("End %s is not Redis's now", r.End)
			}
		})

		t.Run("a repeat counts once; stale, forced and open parts count", func(t *testing.T) {
			p := fastPolicy()
			report(t, s, "fenced", p, statestore.Batch{Boot: "b1", Seq: 1, OK: 2})
			report(t, s, "fenced", p, statestore.Batch{Boot: "b1", Seq: 1, OK: 2}) // a resend
			report(t, s, "fenced", p, statestore.Batch{Fenced: true, Gen: "old", Version: 7, OK: 1, Fail: 1})
			if _, err := s.Force(ctx, "fenced", p, "ops", statestore.OverrideOpen, 0, "drill"); err != nil {
				t.Fatal(err)
			}
			report(t, s, "fenced", p, statestore.Batch{Fail: 1})
			r := rates(t, s, "fenced")
			if sum(r.Calls) != 5 || sum(r.Failures) != 2 {
				t.Fatalf("calls %d failures %d, want 5 and 2", sum(r.Calls), sum(r.Failures))
			}
		})

		t.Run("an empty part and an unknown breaker cost nothing and read as zeros", func(t *testing.T) {
			report(t, s, "idle", fastPolicy(), statestore.Batch{})
			for _, n := range []string{"idle", "never-reported"} {
				if r := rates(t, s, n); sum(r.Calls) != 0 || sum(r.Failures) != 0 {
					t.Fatalf("%s: %+v", n, r)
				}
			}
			if v, _ := b.Client.HGet(ctx, "t:{idle}:state", "rs").Result(); v != "" {
				t.Fatalf("an empty part wrote the rate fields (rs=%q)", v)
			}
		})

		t.Run("deleting a breaker forgets its rates", func(t *testing.T) {
			p := fastPolicy()
			report(t, s, "doomed", p, statestore.Batch{OK: 5})
			if _, err := s.Delete(ctx, "doomed", p, "ops", "gone"); err != nil {
				t.Fatal(err)
			}
			if r := rates(t, s, "doomed"); sum(r.Calls) != 0 {
				t.Fatalf("after delete: %v", r.Calls)
			}
		})

		t.Run("a second that passes moves its counts one bucket back", func(t *testing.T) {
			p := fastPolicy()
			report(t, s, "turns", p, statestore.Batch{OK: 7, Fail: 1})
			r0 := rates(t, s, "turns")
			i0 := len(r0.Calls) - 1
			for i0 > 0 && r0.Calls[i0] == 0 {
				i0--
			}
			sec0 := r0.End.Unix() - statestore.RateSeconds + 1 + int64(i0)
			if r0.Calls[i0] != 8 || r0.Failures[i0] != 1 {
				t.Fatalf("calls %v failures %v", r0.Calls, r0.Failures)
			}
			if b.Mini != nil {
				b.Mini.SetTime(time.Unix(sec0+1, 0))
				t.Cleanup(func() { b.Mini.SetTime(time.Time{}) })
			}
			testcluster.Eventually(t, 3*time.Second, "Redis's clock turns a second", func() bool { return redisTime(t, b).Unix() > sec0 })
			report(t, s, "turns", p, statestore.Batch{OK: 2})
			r := rates(t, s, "turns")
			at := int(sec0 - (r.End.Unix() - statestore.RateSeconds + 1))
			if r.Calls[at] != 8 || r.Failures[at] != 1 || sum(r.Calls) != 10 || sum(r.Calls[at+1:]) != 2 {
				t.Fatalf("calls %v failures %v: want 8 (1 failed) at %d and 2 after it", r.Calls, r.Failures, at)
			}
		})
	})
}

// TestStore_RatesFollowAModel: random reports over random seconds (the
// embedded server's clock, set by the test) read back as a plain model
// of per-second counts says, for the last 60 s; the history never holds
// more than 59 seconds.
func TestStore_RatesFollowAModel(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 8))
	p := fastPolicy()
	p.ConsecutiveFailures = 1_000_000 // never trips: the counts go on
	now := time.Unix(1_800_000_000, 0)
	model := map[int64][2]int64{}
	for step := range 3000 {
		switch k := rng.IntN(10); {
		case k < 5:
			now = now.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
		case k == 5:
			now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
		}
		b.Mini.SetTime(now)
		ok, fail, hung := rng.Int64N(5), rng.Int64N(3), rng.Int64N(2)
		report(t, s, "model", p, statestore.Batch{OK: ok, Fail: fail, Hung: hung})
		c := model[now.Unix()]
		model[now.Unix()] = [2]int64{c[0] + ok + fail + hung, c[1] + fail + hung}
		if step%7 != 0 {
			continue
		}
		r := rates(t, s, "model")
		if r.End.Unix() != now.Unix() {
			t.Fatalf("step %d: End %d, want %d", step, r.End.Unix(), now.Unix())
		}
		for i := range statestore.RateSeconds {
			sec := now.Unix() - statestore.RateSeconds + 1 + int64(i)
			if want := model[sec]; r.Calls[i] != want[0] || r.Failures[i] != want[1] {
				t.Fatalf("step %d, second %d (bucket %d): %d calls %d failures, want %v\ncalls %v", step, sec, i, r.Calls[i], r.Failures[i], want, r.Calls)
			}
		}
		h, _ := b.Client.HGet(ctx, "t:{model}:state", "rh").Result()
		if n := len(strings.Fields(h)); n > statestore.RateSeconds-1 {
			t.Fatalf("step %d: the history holds %d seconds", step, n)
		}
	}
	b.Mini.SetTime(time.Time{})
}

func TestStore_Timelines(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		p := fastPolicy()
		start := redisTime(t, b).Add(-time.Second)
		tripped(t, s, "flappy", p)
		if _, err := s.Reset(ctx, "flappy", p, "ops", "back"); err != nil {
			t.Fatal(err)
		}
		tripped(t, s, "flappy", p)

		tls, err := s.Timelines(ctx, []string{"flappy", "calm"}, start, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(tls) != 2 || tls[0].Name != "flappy" || tls[1].Name != "calm" || len(tls[1].Events) != 0 || tls[1].Truncated {
			t.Fatalf("timelines = %+v", tls)
		}
		var got []string
		for _, e := range tls[0].Events {
			got = append(got, e.Event+":"+e.NewState)
		}
		if strings.Join(got, " ") != "trip:open reset:closed trip:open" || tls[0].Truncated {
			t.Fatalf("flappy's timeline, oldest first: %v (truncated %v)", got, tls[0].Truncated)
		}

		t.Run("a limit keeps the newest and says so", func(t *testing.T) {
			tls, err := s.Timelines(ctx, []string{"flappy"}, start, 2)
			if err != nil {
				t.Fatal(err)
			}
			if ev := tls[0].Events; len(ev) != 2 || !tls[0].Truncated || ev[0].Event != "reset" || ev[1].Event != "trip" {
				t.Fatalf("limited: %+v", tls[0])
			}
		})
		t.Run("events before the span are left out", func(t *testing.T) {
			tls, err := s.Timelines(ctx, []string{"flappy"}, redisTime(t, b).Add(time.Minute), 10)
			if err != nil || len(tls[0].Events) != 0 {
				t.Fatalf("%+v %v", tls, err)
			}
		})
		t.Run("bad arguments are refused before any I/O", func(t *testing.T) {
			if _, err := s.Timelines(ctx, []string{"a b"}, start, 10); !errors.Is(err, statestore.ErrInvalidName) {
				t.Fatalf("bad name: %v", err)
			}
			if _, err := s.Timelines(ctx, []string{"flappy"}, start, 0); !errors.Is(err, statestore.ErrInvalid) {
				t.Fatalf("limit 0: %v", err)
			}
			if _, err := s.Rates(ctx, []string{"a}b"}); !errors.Is(err, statestore.ErrInvalidName) {
				t.Fatalf("bad name: %v", err)
			}
		})
	})
}

func TestStore_Routes(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		now := time.Now()
		if err := s.CountRoutes(ctx, now.Add(-3*time.Second), []statestore.RouteCount{{Route: "chat", Served: 10, Fallback: 4}, {Route: "embed", Served: 2}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CountRoutes(ctx, now, []statestore.RouteCount{{Route: "chat", Served: 5, Fallback: 5}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CountRoutes(ctx, now, []statestore.RouteCount{{Route: "chat", Served: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CountRoutes(ctx, now.Add(-2*time.Minute), []statestore.RouteCount{{Route: "old", Served: 9}}); err != nil {
			t.Fatal(err)
		}
		rs, err := s.Routes(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 2 || rs[0].Route != "chat" || rs[1].Route != "embed" {
			t.Fatalf("routes = %+v", rs)
		}
		chat, last := rs[0], statestore.RateSeconds-1
		if chat.Served[last] != 6 || chat.Fallback[last] != 5 || chat.Served[last-3] != 10 || chat.Fallback[last-3] != 4 || sum(chat.Served) != 16 || sum(rs[1].Served) != 2 || sum(rs[1].Fallback) != 0 {
			t.Fatalf("chat served %v fallback %v; embed %v", chat.Served, chat.Fallback, rs[1].Served)
		}
		if ttl := b.Client.TTL(ctx, "{t:routes}:"+strconv.FormatInt(now.Unix(), 10)).Val(); ttl <= 0 || ttl > 2*time.Minute {
			t.Fatalf("a second's routes expire in %s", ttl)
		}
		if err := s.CountRoutes(ctx, now, []statestore.RouteCount{{Route: "a|b", Served: 1}}); !errors.Is(err, statestore.ErrInvalidName) {
			t.Fatalf("bad route name: %v", err)
		}
		if err := s.CountRoutes(ctx, now, []statestore.RouteCount{{Route: "ok", Served: -1}}); !errors.Is(err, statestore.ErrInvalid) {
			t.Fatalf("negative count: %v", err)
		}
	})
}

func TestStore_AgentsWithTheirService(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	ctx := context.Background()
	now := time.Now()
	for _, a := range []statestore.AgentInfo{
		{ID: "web-1", Service: "checkout:eu", LastSeen: now},
		{ID: "web-2", Service: "checkout:eu", LastSeen: now, Degraded: true},
		{ID: "batch-1", LastSeen: now},
	} {
		if err := s.HeartbeatOf(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Agents(ctx, now.Add(-30*time.Second), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]statestore.AgentInfo{}
	for _, a := range got {
		seen[a.ID] = a
	}
	if len(seen) != 3 || seen["web-1"].Service != "checkout:eu" || seen["web-1"].Degraded || !seen["web-2"].Degraded ||
		seen["web-2"].Service != "checkout:eu" || seen["batch-1"].Service != "" || seen["web-1"].LastSeen.UnixMilli() != now.UnixMilli() {
		t.Fatalf("agents = %+v", got)
	}
}
