package sidecar

import (
	"sync"
	"time"
)

// firstBytes keeps each provider's last 256 first-byte times (for a
// stream, first-token times), for percentile hedging.
type firstBytes struct {
	mu sync.Mutex
	by map[string]*fbRing // guarded by mu
}

type fbRing struct {
	d    [256]time.Duration
	n    int // samples seen, capped at len(d)
	next int
}

func (f *firstBytes) observe(provider string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.by == nil {
		f.by = map[string]*fbRing{}
	}
	r := f.by[provider]
	if r == nil {
		r = &fbRing{}
		f.by[provider] = r
	}
	r.d[r.next] = d
	r.next = (r.next + 1) % len(r.d)
	r.n = min(r.n+1, len(r.d))
}

// percentile returns the pct-th percentile of the provider's recent first
// bytes; ok is false with fewer than 20 samples. It runs on every hedged
// request: the samples are selected from a copy on the stack, not sorted.
func (f *firstBytes) percentile(provider string, pct float64) (time.Duration, bool) {
	var s [len(fbRing{}.d)]time.Duration
	f.mu.Lock()
	r := f.by[provider]
	if r == nil || r.n < 20 {
		f.mu.Unlock()
		return 0, false
	}
	n := copy(s[:], r.d[:r.n])
	f.mu.Unlock()
	return nth(s[:n], int(float64(n-1)*pct/100)), true
}

// nth returns the k-th smallest of s (from 0), reordering s: Hoare's
// quickselect, the median of three as the pivot.
func nth(s []time.Duration, k int) time.Duration {
	lo, hi := 0, len(s)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if s[mid] < s[lo] {
			s[mid], s[lo] = s[lo], s[mid]
		}
		if s[hi] < s[lo] {
			s[hi], s[lo] = s[lo], s[hi]
		}
		if s[hi] < s[mid] {
			s[hi], s[mid] = s[mid], s[hi]
		}
		p := s[mid]
		i, j := lo, hi
		for i <= j {
			for s[i] < p {
				i++
			}
			for s[j] > p {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return s[k]
		}
	}
	return s[k]
}
