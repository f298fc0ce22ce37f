package provider

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RateLimit is one rate-limit window a provider reported in its response
// headers.
type RateLimit struct {
	// Provider is whose headers these were: "openai" (x-ratelimit-*,
	// which OpenAI-compatible servers send too) or "anthropic"
	// (anthropic-ratelimit-*).
	Provider string
	// Name is what the window counts: "requests" or "tokens" (both), or
	// "input-tokens" or "output-tokens" (Anthropic).
	Name string
	// Limit and Remaining, -1 when the header is absent or unreadable.
	Limit, Remaining int64
	// Reset is when the window refills; zero when unknown.
	Reset time.Time
}

// RateLimits are the windows of one response.
type RateLimits []RateLimit

// rateWindow is one rate-limit window's headers, as http.Header keys
// them (canonical, so reading them allocates nothing).
type rateWindow struct {
	provider, name          string
	limit, remaining, reset string
	// resetAt: the reset is an RFC 3339 time (Anthropic), not a duration
	// from now (OpenAI).
	resetAt bool
}

// rateWindows are the windows ParseRateLimits reads, in its order.
var rateWindows = func() []rateWindow {
	var ws []rateWindow
	for _, name := range []string{"requests", "tokens"} {
		ws = append(ws, rateWindow{provider: "openai", name: name,
			limit:     http.CanonicalHeaderKey("x-ratelimit-limit-" + name),
			remaining: http.CanonicalHeaderKey("x-ratelimit-remaining-" + name),
			reset:     http.CanonicalHeaderKey("x-ratelimit-reset-" + name)})
	}
	for _, name := range []string{"requests", "tokens", "input-tokens", "output-tokens"} {
		p := "anthropic-ratelimit-" + name + "-"
		ws = append(ws, rateWindow{provider: "anthropic", name: name, resetAt: true,
			limit:     http.CanonicalHeaderKey(p + "limit"),
			remaining: http.CanonicalHeaderKey(p + "remaining"),
			reset:     http.CanonicalHeaderKey(p + "reset")})
	}
	return ws
}()

// ParseRateLimits reads OpenAI's x-ratelimit-{limit,remaining,reset}-
// {requests,tokens} (the reset a duration such as "1s", "6m0s", "20ms",
// taken from now) and Anthropic's anthropic-ratelimit-{requests,tokens,
// input-tokens,output-tokens}-{limit,remaining,reset} (the reset an RFC
// 3339 time). Windows with no header at all are left out.
func ParseRateLimits(h http.Header, now time.Time) RateLimits {
	var out RateLimits
	for _, w := range rateWindows {
		rl := RateLimit{Provider: w.provider, Name: w.name, Limit: -1, Remaining: -1}
		seen := readCount(h, w.limit, &rl.Limit)
		seen = readCount(h, w.remaining, &rl.Remaining) || seen
		if v := header(h, w.reset); v != "" {
			seen = true
			if w.resetAt {
				if t, err := time.Parse(time.RFC3339, v); err == nil {
					rl.Reset = t
				}
			} else if d, err := time.ParseDuration(v); err == nil && d >= 0 {
				rl.Reset = now.Add(min(d, MaxRetryAfter))
			}
		}
		if seen {
			out = append(out, rl)
		}
	}
	return out
}

// ExhaustedUntil is when every window whose remaining count reached 0
// refills: the latest such reset. Zero when none is exhausted, or an
// exhausted window's reset is unknown (nothing to wait for then).
func (rls RateLimits) ExhaustedUntil() time.Time {
	var until time.Time
	for _, rl := range rls {
		if rl.Remaining == 0 && rl.Reset.After(until) {
			until = rl.Reset
		}
	}
	return until
}

// Exhausted is how long the provider's rate limits stay exhausted after
// this response: until the reset of every window whose remaining count is
// 0, relative to now and capped at MaxRetryAfter; 0 when none is. A caller
// treats it like a Retry-After: the next call would be a 429.
func Exhausted(h http.Header, now time.Time) time.Duration {
	if !anyRemainingZero(h) {
		return 0 // every answer is read for this: most have none at 0
	}
	until := ParseRateLimits(h, now).ExhaustedUntil()
	if !until.After(now) {
		return 0
	}
	return min(until.Sub(now), MaxRetryAfter)
}

// anyRemainingZero reports whether a remaining count ParseRateLimits
// would read is 0: only then can a window be exhausted.
func anyRemainingZero(h http.Header) bool {
	for _, w := range rateWindows {
		if v := header(h, w.remaining); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n == 0 {
				return true
			}
		}
	}
	return false
}

// header is h's first value for a canonical key, trimmed.
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

func readCount(h http.Header, key string, dst *int64) bool {
	v := header(h, key)
	if v == "" {
		return false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		*dst = n
	}
	return true
}
