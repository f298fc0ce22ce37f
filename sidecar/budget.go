package sidecar

import (
	"sync"
	"time"
)

// retryBudget lets retries be at most a share of recent requests (plus a
// small floor), over a sliding 10-second window of 1 s buckets, so an
// outage can never multiply the load on a provider by the retry count.
type retryBudget struct {
	ratio, floor float64

	mu       sync.Mutex
	requests [10]float64 // guarded by mu
	retries  [10]float64 // guarded by mu
	sec      int64       // guarded by mu; the second of the newest bucket
}

func newRetryBudget(ratio, minPerSecond float64) *retryBudget {
	return &retryBudget{ratio: ratio, floor: minPerSecond * 10}
}

func (b *retryBudget) advance(now time.Time) int {
	s := now.Unix()
	if s-b.sec >= 10 {
		b.requests, b.retries = [10]float64{}, [10]float64{}
	} else {
		for t := b.sec + 1; t <= s; t++ {
			b.requests[t%10], b.retries[t%10] = 0, 0
		}
	}
	if s > b.sec {
		b.sec = s
	}
	return int(s % 10)
}

// request counts a client request.
func (b *retryBudget) request(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests[b.advance(now)]++
}

// spend takes a retry from the budget, if there is one left.
func (b *retryBudget) spend(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.advance(now)
	var reqs, rets float64
	for j := range b.requests {
		reqs += b.requests[j]
		rets += b.retries[j]
	}
	if rets+1 > b.floor+b.ratio*reqs {
		return false
	}
	b.retries[i]++
	return true
}
