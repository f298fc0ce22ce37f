package provider

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkExhausted: the check every successful answer goes through,
// on OpenAI's rate-limit headers with nothing exhausted.
func BenchmarkExhausted(b *testing.B) {
	h := http.Header{
		"X-Ratelimit-Limit-Requests": {"10000"}, "X-Ratelimit-Remaining-Requests": {"9999"}, "X-Ratelimit-Reset-Requests": {"6ms"},
		"X-Ratelimit-Limit-Tokens": {"1000000"}, "X-Ratelimit-Remaining-Tokens": {"999900"}, "X-Ratelimit-Reset-Tokens": {"3ms"},
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if Exhausted(h, now) != 0 {
			b.Fatal("exhausted")
		}
	}
}
