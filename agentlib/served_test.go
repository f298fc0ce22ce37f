package agentlib_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/report"
)

func newServingAgent(t *testing.T, flush time.Duration) (*agentlib.Agent, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	a, err := agentlib.New(agentlib.Config{
		CoordinatorURL: srv.URL,
		Redis:          redistest.Mini(t).Client,
		AgentID:        "side-1",
		Service:        "checkout",
		FlushInterval:  flush,
		ResyncInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a, rec
}

// served adds up the routes of every report, and checks each report.
func (r *recorder) served(t *testing.T) map[string][2]int64 {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][2]int64{}
	for _, rep := range r.reports {
		if rep.Service != "checkout" {
			t.Fatalf("a report without the agent's service: %+v", rep)
		}
		for _, rt := range rep.Routes {
			c := out[rt.Name]
			out[rt.Name] = [2]int64{c[0] + rt.Served, c[1] + rt.Fallback}
		}
	}
	return out
}

func TestAgent_CountServed(t *testing.T) {
	t.Run("counts ride in the next report, with the service", func(t *testing.T) {
		a, rec := newServingAgent(t, 20*time.Millisecond)
		for i := range 5 {
			a.CountServed("chat", i < 2)
		}
		a.CountServed("embeddings", false)
		testcluster.Eventually(t, 2*time.Second, "the counts reported", func() bool { return len(rec.served(t)) == 2 })
		if got := rec.served(t); got["chat"] != [2]int64{5, 2} || got["embeddings"] != [2]int64{1, 0} {
			t.Fatalf("reported %v", got)
		}
		a.CountServed("chat", true)
		testcluster.Eventually(t, 2*time.Second, "a later answer in a later report", func() bool { return rec.served(t)["chat"] == [2]int64{6, 3} })
	})

	t.Run("Close sends what is pending", func(t *testing.T) {
		a, rec := newServingAgent(t, time.Hour)
		a.CountServed("chat", false)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if got := rec.served(t); got["chat"] != [2]int64{1, 0} {
			t.Fatalf("after Close: %v", got)
		}
	})

	t.Run("concurrent counting loses nothing and never reports more fallbacks than answers", func(t *testing.T) {
		a, rec := newServingAgent(t, 5*time.Millisecond)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 5000 {
					a.CountServed(fmt.Sprintf("route-%d", g%3), i%4 == 0)
				}
			})
		}
		wg.Wait()
		testcluster.Eventually(t, 3*time.Second, "every answer reported", func() bool {
			var n int64
			for _, c := range rec.served(t) {
				n += c[0]
			}
			return n == 8*5000
		})
		got := rec.served(t)
		if got["route-0"] != [2]int64{15000, 3750} || got["route-1"] != [2]int64{15000, 3750} || got["route-2"] != [2]int64{10000, 2500} {
			t.Fatalf("reported %v", got)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, rep := range rec.reports {
			if err := rep.Validate(); err != nil { // the recorder refuses invalid ones: this is a second look
				t.Fatalf("report %d: %v", rep.Seq, err)
			}
		}
	})

	t.Run("names are cleaned, and at most 64 routes are counted", func(t *testing.T) {
		a, rec := newServingAgent(t, 20*time.Millisecond)
		a.CountServed("my route", false)
		a.CountServed("my/route", true) // cleans to the same name: one counter
		a.CountServed("", false)
		a.CountServed(".hidden", false)
		a.CountServed(strings.Repeat("x", 300), false)
		for i := range report.MaxRoutes {
			a.CountServed(fmt.Sprintf("r%03d", i), false)
		}
		testcluster.Eventually(t, 2*time.Second, "reported", func() bool { return len(rec.served(t)) >= 4 })
		got := rec.served(t)
		if got["my_route"] != [2]int64{2, 1} || got["r"] != [2]int64{1, 0} || got["r.hidden"] != [2]int64{1, 0} || got[strings.Repeat("x", 128)] != [2]int64{1, 0} {
			t.Fatalf("reported %v", got)
		}
		if len(got) != report.MaxRoutes {
			t.Fatalf("%d routes counted, want %d", len(got), report.MaxRoutes)
		}
	})

	t.Run("a known route costs no allocation, and a nil agent nothing", func(t *testing.T) {
		a, _ := newServingAgent(t, time.Hour)
		a.CountServed("chat", false)
		if n := testing.AllocsPerRun(1000, func() { a.CountServed("chat", true) }); n != 0 {
			t.Fatalf("%v allocations per call", n)
		}
		var none *agentlib.Agent
		none.CountServed("chat", true)
	})
}

func TestNew_RefusesABadService(t *testing.T) {
	for _, s := range []string{"two words", "-lead", strings.Repeat("s", 129)} {
		_, err := agentlib.New(agentlib.Config{CoordinatorURL: "http://127.0.0.1:1", Redis: redistest.Mini(t).Client, Service: s})
		if !errors.Is(err, agentlib.ErrInvalidConfig) {
			t.Errorf("Service %q: %v", s, err)
		}
	}
}

// TestAgent_ServiceAndRoutesReachTheCluster: end to end, an agent's
// service is on its heartbeat and its routes' counts are in the
// cluster's per-second route counts.
func TestAgent_ServiceAndRoutesReachTheCluster(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	a := newAgent(t, c, "side-7", func(cfg *agentlib.Config) {
		cfg.Service = "search"
		cfg.FlushInterval = 50 * time.Millisecond
	})
	for i := range 10 {
		a.CountServed("chat", i%5 == 0)
	}
	coord := c.Coordinators[0]
	testcluster.Eventually(t, 5*time.Second, "the agent under its service", func() bool {
		ags, err := coord.Agents(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range ags {
			if g.ID == "side-7" {
				return g.Service == "search"
			}
		}
		return false
	})
	testcluster.Eventually(t, 5*time.Second, "the route's counts in the cluster", func() bool {
		rs, err := coord.Routes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var served, fallback int64
		for _, r := range rs {
			for i := range r.Served {
				if r.Route == "chat" {
					served, fallback = served+r.Served[i], fallback+r.Fallback[i]
				}
			}
		}
		return served == 10 && fallback == 2
	})
}
