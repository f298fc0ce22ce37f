package sidecar_test

import (
	"context"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

// A reset is retried after a backoff of up to 20 s (full jitter): the
// caller, who waits 300 ms, is nearly always gone before the retry is due.
const droppedRetryRoutes = `
routes:
  - name: chat
    models: ["*"]
    chain: [openai, anthropic, ollama]
retry: {attempts: 3, base: 20s, max: 20s, budget: 1, min_per_second: 100}
`

// TestSidecar_DroppedRetriesAreNotCounted: a retry that was scheduled
// and then dropped, because the client hung up during its backoff, never
// left the sidecar: fusebox_sidecar_retries_total counts only the retries
// the provider received, and fusebox_sidecar_upstream_calls_total counts
// each call that reached a provider once and nothing else (no call to the
// next provider after the client left).
func TestSidecar_DroppedRetriesAreNotCounted(t *testing.T) {
	r := newRig(t, tablePolicy, 1, droppedRetryRoutes)
	s := r.sidecars[0]
	if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultReset}); err != nil {
		t.Fatal(err)
	}
	const requests = 4
	for range requests {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		a := chatCtx(t, ctx, s.url, hello)
		cancel()
		if a.status != -1 {
			t.Fatalf("answered %d while a retry waited: %s", a.status, a.body)
		}
	}
	testcluster.Eventually(t, 5*time.Second, "every request ended", func() bool {
		return metricSum(t, s.url, "fusebox_sidecar_requests_total{") == requests && metric(t, s.url, "fusebox_sidecar_in_flight") == 0
	})

	calls := r.fp.Calls("openai")
	sent := calls - requests // retries that reached the provider
	if calls < requests || sent >= 2*requests {
		t.Fatalf("openai called %d times for %d requests: want every first attempt, and some retries dropped", calls, requests)
	}
	if n := metric(t, s.url, `fusebox_sidecar_retries_total{provider="openai"}`); n != float64(sent) {
		t.Fatalf("retries counted %v, sent %d: a dropped retry was counted", n, sent)
	}
	for _, p := range []string{"openai", "anthropic", "ollama"} {
		if got, want := metricSum(t, s.url, `fusebox_sidecar_upstream_calls_total{provider="`+p+`",`), float64(r.fp.Calls(p)); got != want {
			t.Fatalf("%s: %v upstream calls counted, the provider received %v", p, got, want)
		}
	}
	if n := metric(t, s.url, `fusebox_sidecar_upstream_calls_total{provider="openai",result="transport_error"}`); n != float64(calls) {
		t.Fatalf("resets counted as transport_error: %v, want %d", n, calls)
	}
}
