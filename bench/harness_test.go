package bench_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/fusebox-io/fusebox/bench"
	"github.com/fusebox-io/fusebox/internal/redistest"
)

// TestGobreakerStore: the adapter gives gobreaker's distributed breaker a
// working shared store, and the hook counts its round trips.
func TestGobreakerStore(t *testing.T) {
	srv := redistest.Start(t)
	rt := &bench.RoundTrips{}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	rdb.AddHook(rt)
	t.Cleanup(func() { _ = rdb.Close() })
	store := bench.NewGobreakerStore(rdb)
	if err := store.Lock("m"); err != nil {
		t.Fatal(err)
	}
	if err := store.Lock("m"); err == nil {
		t.Fatal("a held lock was taken again")
	}
	if err := store.Unlock("m"); err != nil {
		t.Fatal(err)
	}
	if err := store.Unlock("m"); err == nil {
		t.Fatal("unlocked a lock not held")
	}
	settings := gobreaker.Settings{Name: "shared", Timeout: time.Minute}
	a, err := gobreaker.NewDistributedCircuitBreaker[struct{}](store, settings)
	if err != nil {
		t.Fatal(err)
	}
	b, err := gobreaker.NewDistributedCircuitBreaker[struct{}](store, settings)
	if err != nil {
		t.Fatal(err)
	}
	fail := func() (struct{}, error) { return struct{}{}, errFailed }
	before := rt.Count()
	for range 6 { // gobreaker's default trips after more than 5
		_, _ = a.Execute(fail)
	}
	if per := float64(rt.Count()-before) / 6; per != 4 {
		t.Fatalf("%.1f round trips per Execute, want gobreaker's 4 (get, lock, set, unlock)", per)
	}
	if _, err := b.Execute(fail); !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("the other instance did not see the trip: %v", err)
	}
}

// TestRunSim runs the outage simulation very fast and checks its table,
// not its numbers.
func TestRunSim(t *testing.T) {
	cfg := bench.SimConfig{Scale: 120, Replicas: 2}
	rows, err := bench.RunSim(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		if r.Requests != 800 || r.MeanLatency <= 0 || r.PeakInFlight < 1 || r.FailingProviderCalls < 1 {
			t.Fatalf("row %+v", r)
		}
	}
	if rows[0].Mode != bench.ModeNone || rows[2].Mode != bench.ModeFusebox {
		t.Fatalf("modes %s, %s", rows[0].Mode, rows[2].Mode)
	}
	var out bytes.Buffer
	bench.WriteTable(&out, cfg, rows)
	for _, want := range []string{"user-visible errors", "calls to failing provider", bench.ModeGobreaker, "time scale 120"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
}
