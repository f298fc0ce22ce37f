package fakeprovider

import (
	"net/http"
	"strconv"
	"time"
)

// Rate limits every answer reports, as OpenAI (x-ratelimit-*) and
// Anthropic (anthropic-ratelimit-*) do: plenty left, unless a fault with
// a Reset says the requests are exhausted until then.
const (
	rateLimitRequests = 10000
	rateLimitTokens   = 2000000
)

// rateLimitHeaders sets a provider's rate-limit headers: exhausted (0
// requests remaining) until reset when reset > 0.
func rateLimitHeaders(w http.ResponseWriter, provider string, reset time.Duration) {
	h := w.Header()
	remaining, resetIn := rateLimitRequests-1, 6*time.Millisecond
	if reset > 0 {
		remaining, resetIn = 0, reset
	}
	switch provider {
	case "openai":
		h.Set("x-ratelimit-limit-requests", strconv.Itoa(rateLimitRequests))
		h.Set("x-ratelimit-remaining-requests", strconv.Itoa(remaining))
		h.Set("x-ratelimit-reset-requests", resetIn.String())
		h.Set("x-ratelimit-limit-tokens", strconv.Itoa(rateLimitTokens))
		h.Set("x-ratelimit-remaining-tokens", strconv.Itoa(rateLimitTokens-100))
		h.Set("x-ratelimit-reset-tokens", "3ms")
	case "anthropic":
		at := time.Now().Add(resetIn).UTC()
		h.Set("anthropic-ratelimit-requests-limit", strconv.Itoa(rateLimitRequests))
		h.Set("anthropic-ratelimit-requests-remaining", strconv.Itoa(remaining))
		// RFC 3339 to the second, as Anthropic sends it: round up so the
		// reset is never earlier than asked.
		h.Set("anthropic-ratelimit-requests-reset", at.Add(time.Second-time.Nanosecond).Truncate(time.Second).Format(time.RFC3339))
		h.Set("anthropic-ratelimit-tokens-limit", strconv.Itoa(rateLimitTokens))
		h.Set("anthropic-ratelimit-tokens-remaining", strconv.Itoa(rateLimitTokens-100))
		h.Set("anthropic-ratelimit-tokens-reset", time.Now().UTC().Add(time.Second).Truncate(time.Second).Format(time.RFC3339))
	}
}
