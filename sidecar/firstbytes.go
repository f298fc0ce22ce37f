package sidecar

import (
	"slices"
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
// bytes; ok is false with fewer than 20 samples.
func (f *firstBytes) percentile(provider string, pct float64) (time.Duration, bool) {
	f.mu.Lock()
	r := f.by[provider]
	if r == nil || r.n < 20 {
		f.mu.Unlock()
		return 0, false
	}
	s := slices.Clone(r.d[:r.n])
	f.mu.Unlock()
	slices.Sort(s)
	i := int(float64(len(s)-1) * pct / 100)
	return s[i], true
}
