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
