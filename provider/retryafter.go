package provider

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps every wait this package reads from a provider: one
// asking for more is misbehaving, and breakers cap their open time anyway.
const MaxRetryAfter = 24 * time.Hour

// RetryAfter is how long a provider asked its callers to wait: the
// retry-after-ms header (milliseconds, which the official SDKs honour),
// else Retry-After as seconds or an HTTP date, relative to now. 0 when
// absent, unreadable, not positive, or in the past.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && !math.IsInf(ms, 0) {
			return capWait(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || math.IsNaN(secs) {
			return 0
		}
		return capWait(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
	}
	return 0
}

// RetryIn is how long a caller should stay off a provider after this
// answer: the longer of RetryAfter and Exhausted.
func RetryIn(h http.Header, now time.Time) time.Duration {
	return max(RetryAfter(h, now), Exhausted(h, now))
}

func capWait(ns float64) time.Duration {
	if math.IsNaN(ns) || ns <= 0 {
		return 0
	}
	if ns >= float64(MaxRetryAfter) {
		return MaxRetryAfter
	}
	return time.Duration(ns)
}
