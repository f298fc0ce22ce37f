package sidecar

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestNth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 7, 20, 255, 256} {
		for _, spread := range []int64{3, 1000} { // many equal values, few
			s := make([]time.Duration, n)
			for i := range s {
				s[i] = time.Duration(rng.Int64N(spread))
			}
			sorted := slices.Sorted(slices.Values(s))
			for k := range n {
				if got := nth(slices.Clone(s), k); got != sorted[k] {
					t.Fatalf("n %d, spread %d: nth(%d) = %d, want %d", n, spread, k, got, sorted[k])
				}
			}
		}
	}
}

func TestFirstBytes_Percentile(t *testing.T) {
	var f firstBytes
	for i := range 19 {
		f.observe("p", time.Duration(i+1)*time.Millisecond)
	}
	if _, ok := f.percentile("p", 95); ok {
		t.Fatal("a percentile from 19 samples")
	}
	// 300 samples, 1..300 ms: the ring keeps the last 256, 45..300 ms.
	for i := 19; i < 300; i++ {
		f.observe("p", time.Duration(i+1)*time.Millisecond)
	}
	for _, c := range []struct {
		pct  float64
		want time.Duration
	}{{0, 45 * time.Millisecond}, {50, 172 * time.Millisecond}, {95, 287 * time.Millisecond}, {100, 300 * time.Millisecond}} {
		if got, ok := f.percentile("p", c.pct); !ok || got != c.want {
			t.Errorf("p%v = %v, %v; want %v", c.pct, got, ok, c.want)
		}
	}
	if _, ok := f.percentile("q", 95); ok {
		t.Error("a percentile of a provider never seen")
	}
}

func TestHedge_Wait(t *testing.T) {
	p := &Provider{Name: "openai"}
	other := &Provider{Name: "anthropic"}
	ms := time.Millisecond

	t.Run("a fixed wait is the wait, whatever was seen", func(t *testing.T) {
		var f firstBytes
		for range 50 {
			f.observe("openai", 10*ms)
		}
		h := Hedge{After: 2 * time.Second}
		if got := h.wait(p, &f); got != 2*time.Second {
			t.Fatalf("wait %s, want 2s", got)
		}
	})

	t.Run("a percentile waits min until 20 first bytes were seen", func(t *testing.T) {
		var f firstBytes
		h := Hedge{Percentile: 95, Min: 300 * ms, Max: 3 * time.Second}
		for i := range 19 {
			f.observe("openai", 2*time.Second)
			if got := h.wait(p, &f); got != 300*ms {
				t.Fatalf("after %d samples: wait %s, want min 300ms", i+1, got)
			}
		}
		f.observe("openai", 2*time.Second)
		if got := h.wait(p, &f); got != 2*time.Second {
			t.Fatalf("after 20 samples of 2s: wait %s, want 2s", got)
		}
		if got := h.wait(other, &f); got != 300*ms {
			t.Fatalf("another provider, never seen: wait %s, want min", got)
		}
	})

	t.Run("the percentile of the recent first bytes, clamped to min and max", func(t *testing.T) {
		var f firstBytes
		// 100 samples: 1ms .. 100ms.
		for i := 1; i <= 100; i++ {
			f.observe("openai", time.Duration(i)*ms)
		}
		for _, c := range []struct {
			h    Hedge
			want time.Duration
		}{
			{Hedge{Percentile: 95, Min: 10 * ms, Max: time.Second}, 95 * ms},
			{Hedge{Percentile: 50, Min: 10 * ms, Max: time.Second}, 50 * ms},
			{Hedge{Percentile: 99.9, Min: 10 * ms, Max: time.Second}, 99 * ms},
			{Hedge{Percentile: 95, Min: 200 * ms, Max: time.Second}, 200 * ms}, // below min
			{Hedge{Percentile: 95, Min: 10 * ms, Max: 40 * ms}, 40 * ms},       // above max
		} {
			if got := c.h.wait(p, &f); got != c.want {
				t.Errorf("p%v in [%s, %s]: wait %s, want %s", c.h.Percentile, c.h.Min, c.h.Max, got, c.want)
			}
		}
	})

	t.Run("only the last 256 first bytes count", func(t *testing.T) {
		var f firstBytes
		for range 256 {
			f.observe("openai", 5*time.Second) // an old slow spell
		}
		for range 256 {
			f.observe("openai", 100*ms)
		}
		h := Hedge{Percentile: 95, Min: 10 * ms, Max: 10 * time.Second}
		if got := h.wait(p, &f); got != 100*ms {
			t.Fatalf("wait %s, want 100ms: the slow spell has left the window", got)
		}
		for range 20 {
			f.observe("openai", 5*time.Second) // 20 of 256 slow again: 7.8 %
		}
		if got := h.wait(p, &f); got != 5*time.Second {
			t.Fatalf("wait %s, want 5s: more than 5 %% of the window is slow", got)
		}
	})
}
