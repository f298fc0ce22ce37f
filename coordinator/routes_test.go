package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

func total(xs []int64) (n int64) {
	for _, x := range xs {
		n += x
	}
	return n
}

func routesOf(t *testing.T, c *coordinator.Coordinator) map[string][2]int64 {
	t.Helper()
	rs, err := c.Routes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for _, r := range rs {
		out[r.Route] = [2]int64{total(r.Served), total(r.Fallback)}
	}
	return out
}

func TestService_CountsWhatRoutesServed(t *testing.T) {
	t.Run("written at once when not aggregating", func(t *testing.T) {
		b := redistest.Mini(t)
		store, _ := statestore.New(b.Client, statestore.Options{})
		c, err := coordinator.New(coordinator.Config{}, store, config.Default())
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i, agent := range []string{"a1", "a2"} {
			r := report.Report{Agent: agent, Breakers: []report.Breaker{}, Routes: []report.Route{{Name: "chat", Served: 10, Fallback: int64(i * 3)}, {Name: "embed", Served: 2}}}
			if _, err := c.Ingest(ctx, valid(t, r)); err != nil {
				t.Fatal(err)
			}
		}
		if got := routesOf(t, c); len(got) != 2 || got["chat"] != [2]int64{20, 3} || got["embed"] != [2]int64{4, 0} {
			t.Fatalf("routes = %v", got)
		}
	})

	t.Run("gathered while aggregating and written every interval", func(t *testing.T) {
		b := redistest.Mini(t)
		store, _ := statestore.New(b.Client, statestore.Options{})
		c, err := coordinator.New(coordinator.Config{AggregateInterval: 50 * time.Millisecond}, store, config.Default())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		for i := range 30 {
			r := report.Report{Agent: fmt.Sprintf("a%d", i%3), Breakers: []report.Breaker{{Name: "openai", OK: 2}}, Routes: []report.Route{{Name: "chat", Served: 2, Fallback: 1}}}
			if _, err := c.Ingest(ctx, valid(t, r)); err != nil {
				t.Fatal(err)
			}
		}
		testcluster.Eventually(t, 3*time.Second, "the gathered counts written", func() bool { return routesOf(t, c)["chat"] == [2]int64{60, 30} })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// The breaker's rates saw the gathered successes too.
		rs, err := c.Rates(context.Background(), []string{"openai"})
		if err != nil || total(rs[0].Calls) != 60 {
			t.Fatalf("rates after aggregation: %+v %v", rs, err)
		}
	})

	t.Run("at most 256 distinct routes per interval", func(t *testing.T) {
		b := redistest.Mini(t)
		store, _ := statestore.New(b.Client, statestore.Options{})
		// One interval: the whole test; its counts are written on stop.
		c, err := coordinator.New(coordinator.Config{AggregateInterval: time.Hour}, store, config.Default())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		testcluster.Eventually(t, time.Second, "aggregating", func() bool {
			r := report.Report{Agent: "probe", Breakers: []report.Breaker{{Name: "x", OK: 1}}}
			as, err := c.Ingest(ctx, valid(t, r))
			return err == nil && len(as) == 0 // a success-only part gathered: aggregating
		})
		for i := range 5 { // 320 names: a hostile token's flood
			var rs []report.Route
			for j := range report.MaxRoutes {
				rs = append(rs, report.Route{Name: fmt.Sprintf("r-%d-%d", i, j), Served: 1})
			}
			if _, err := c.Ingest(ctx, valid(t, report.Report{Agent: "flood", Breakers: []report.Breaker{}, Routes: rs})); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := len(routesOf(t, c)); n != 256 {
			t.Fatalf("%d routes written from one interval, want the first 256", n)
		}
	})

	t.Run("a report refused for a registration limit counts no route", func(t *testing.T) {
		b := redistest.Mini(t)
		store, _ := statestore.New(b.Client, statestore.Options{})
		c, err := coordinator.New(coordinator.Config{Limits: statestore.Limits{MaxBreakers: 10, MaxPerAgent: 1}}, store, config.Default())
		if err != nil {
			t.Fatal(err)
		}
		r := reportOf("one", "two")
		r.Routes = []report.Route{{Name: "chat", Served: 5}}
		if _, err := c.Ingest(context.Background(), valid(t, r)); !errors.Is(err, statestore.ErrLimit) {
			t.Fatalf("over the limit: %v", err)
		}
		if got := routesOf(t, c); len(got) != 0 {
			t.Fatalf("a refused report counted routes: %v", got)
		}
	})
}

func TestService_HeartbeatCarriesTheService(t *testing.T) {
	b := redistest.Mini(t)
	store, _ := statestore.New(b.Client, statestore.Options{})
	c, err := coordinator.New(coordinator.Config{}, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	serviceOf := func() string {
		ags, err := c.Agents(ctx)
		if err != nil || len(ags) != 1 {
			t.Fatalf("agents = %+v %v", ags, err)
		}
		return ags[0].Service
	}
	if _, err := c.Ingest(ctx, valid(t, report.Report{Agent: "a1", Service: "checkout", Breakers: []report.Breaker{}})); err != nil {
		t.Fatal(err)
	}
	if s := serviceOf(); s != "checkout" {
		t.Fatalf("service %q", s)
	}
	// A new service is written at once, throttle or not.
	if _, err := c.Ingest(ctx, valid(t, report.Report{Agent: "a1", Service: "search", Breakers: []report.Breaker{}})); err != nil {
		t.Fatal(err)
	}
	if s := serviceOf(); s != "search" {
		t.Fatalf("the new service waited for the throttle: %q", s)
	}
}

func TestService_RatesAndTimelinesAreBounded(t *testing.T) {
	b := redistest.Mini(t)
	store, _ := statestore.New(b.Client, statestore.Options{})
	c, err := coordinator.New(coordinator.Config{}, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Ingest(ctx, valid(t, report.Report{Agent: "a1", Breakers: []report.Breaker{{Name: "openai", Fail: 5, TrailingFail: 5}}})); err != nil {
		t.Fatal(err)
	}
	tls, since, err := c.Timelines(ctx, []string{"openai"}, time.Hour, 10)
	if err != nil || len(tls) != 1 || len(tls[0].Events) != 1 || tls[0].Events[0].Event != "trip" || time.Since(since) < 59*time.Minute {
		t.Fatalf("timeline = %+v since %s: %v", tls, since, err)
	}
	many := strings.Split(strings.Repeat("x,", coordinator.MaxBatch+1), ",")[:coordinator.MaxBatch+1]
	for _, names := range [][]string{nil, many} {
		if _, err := c.Rates(ctx, names); !errors.Is(err, statestore.ErrInvalid) {
			t.Errorf("Rates of %d names: %v", len(names), err)
		}
		if _, _, err := c.Timelines(ctx, names, time.Hour, 10); !errors.Is(err, statestore.ErrInvalid) {
			t.Errorf("Timelines of %d names: %v", len(names), err)
		}
	}
	if _, err := c.Rates(ctx, []string{"bad name"}); !errors.Is(err, statestore.ErrInvalidName) {
		t.Errorf("a bad name: %v", err)
	}
}
