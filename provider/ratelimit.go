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

// ParseRateLimits reads OpenAI's x-ratelimit-{limit,remaining,reset}-
// {requests,tokens} (the reset a duration such as "1s", "6m0s", "20ms",
// taken from now) and Anthropic's anthropic-ratelimit-{requests,tokens,
// input-tokens,output-tokens}-{limit,remaining,reset} (the reset an RFC
// 3339 time). Windows with no header at all are left out.
func ParseRateLimits(h http.Header, now time.Time) RateLimits {
	var out RateLimits
	for _, name := range []string{"requests", "tokens"} {
		rl := RateLimit{Provider: "openai", Name: name, Limit: -1, Remaining: -1}
		seen := readCount(h, "x-ratelimit-limit-"+name, &rl.Limit)
		seen = readCount(h, "x-ratelimit-remaining-"+name, &rl.Remaining) || seen
		if v := strings.TrimSpace(h.Get("x-ratelimit-reset-" + name)); v != "" {
			seen = true
			if d, err := time.ParseDuration(v); err == nil && d >= 0 {
				rl.Reset = now.Add(min(d, MaxRetryAfter))
			}
		}
		if seen {
			out = append(out, rl)
		}
	}
	for _, name := range []string{"requests", "tokens", "input-tokens", "output-tokens"} {
		p := "anthropic-ratelimit-" + name + "-"
		rl := RateLimit{Provider: "anthropic", Name: name, Limit: -1, Remaining: -1}
		seen := readCount(h, p+"limit", &rl.Limit)
		seen = readCount(h, p+"remaining", &rl.Remaining) || seen
		if v := strings.TrimSpace(h.Get(p + "reset")); v != "" {
			seen = true
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				rl.Reset = t
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

// remainingHeaders are the remaining counts ParseRateLimits reads, as
// http.Header keys them.
var remainingHeaders = [...]string{
	"X-Ratelimit-Remaining-Requests", "X-Ratelimit-Remaining-Tokens",
	"Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Tokens-Remaining",
	"Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Remaining",
}

// anyRemainingZero reports whether a remaining count ParseRateLimits
// would read is 0: only then can a window be exhausted.
func anyRemainingZero(h http.Header) bool {
	for _, k := range remainingHeaders {
		if v := strings.TrimSpace(h.Get(k)); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n == 0 {
				return true
			}
		}
	}
	return false
}

func readCount(h http.Header, key string, dst *int64) bool {
	v := strings.TrimSpace(h.Get(key))
	if v == "" {
		return false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		*dst = n
	}
	return true
}
