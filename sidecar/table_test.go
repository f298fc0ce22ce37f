package sidecar_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// tablePolicy keeps rolling-window totals (a rate rule that never trips)
// so a test can read exactly which outcomes were reported, and trips only
// on a Retry-After.
const tablePolicy = `
defaults:
  consecutive_failures: 1000
  failure_rate: 99
  min_calls: 100000
  window: 60s
  open_timeout: 1m
  max_open_timeout: 10m
`

const tableRoutes = `
routes:
  - name: anthropic-first
    models: ["claude-primary"]
    chain: [anthropic, ollama]
  - name: chat
    models: ["*"]
    chain: [openai, anthropic, ollama]
retry: {attempts: 3, base: 5ms, max: 20ms}
`

// TestSidecar_ProvidersTable runs every row of the table of what an
// answer says (package provider's doc) against the fake provider: does
// the outcome count against the breaker, and does the sidecar move on to
// the next provider.
func TestSidecar_ProvidersTable(t *testing.T) {
	r := newRig(t, tablePolicy, 1, tableRoutes)
	s := r.sidecars[0]
	ctx := context.Background()
	st := func(status int, retryAfter string) fakeprovider.Fault {
		return fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: status, RetryAfter: retryAfter}
	}
	cases := []struct {
		name      string
		breaker   string // the failing provider
		fault     fakeprovider.Fault
		stream    bool
		wantCode  int
		wantFrom  string // X-Fusebox-Provider
		wantFails int64  // failures reported against the breaker
		wantOpen  time.Duration
		check     func(t *testing.T, a answer)
	}{
		{name: "connection reset: failure, retried, then next", breaker: "openai", fault: fakeprovider.Fault{Kind: fakeprovider.FaultReset}, wantCode: 200, wantFrom: "anthropic", wantFails: 3},
		{name: "first-byte timeout: failure, never retried, next", breaker: "openai", fault: fakeprovider.Fault{Kind: fakeprovider.FaultHang}, wantCode: 200, wantFrom: "anthropic", wantFails: 1},
		{name: "500: failure, next", breaker: "openai", fault: st(500, ""), wantCode: 200, wantFrom: "anthropic", wantFails: 1},
		{name: "502 HTML page: failure, next", breaker: "openai", fault: fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 502, HTML: true}, wantCode: 200, wantFrom: "anthropic", wantFails: 1},
		{name: "503: failure, next", breaker: "openai", fault: st(503, ""), wantCode: 200, wantFrom: "anthropic", wantFails: 1},
		{name: "504: failure, next", breaker: "openai", fault: st(504, ""), wantCode: 200, wantFrom: "anthropic", wantFails: 1},
		{name: "Anthropic 529: failure, next", breaker: "anthropic", fault: st(529, ""), wantCode: 200, wantFrom: "ollama", wantFails: 1},
		{name: "408: failure, next", breaker: "openai", fault: st(408, ""), wantCode: 200, wantFrom: "anthropic", wantFails: 1},
		{name: "429 with Retry-After: failure, the cluster waits it out, next", breaker: "openai", fault: st(429, "30"), wantCode: 200, wantFrom: "anthropic", wantFails: 1, wantOpen: 30 * time.Second},
		{name: "429 insufficient_quota: failure, open for max_retry_after, next", breaker: "openai", fault: fakeprovider.Fault{Kind: fakeprovider.FaultQuota}, wantCode: 200, wantFrom: "anthropic", wantFails: 1, wantOpen: time.Hour},
		{name: "402 billing: failure, open for max_retry_after, next", breaker: "anthropic", fault: fakeprovider.Fault{Kind: fakeprovider.FaultQuota}, wantCode: 200, wantFrom: "ollama", wantFails: 1, wantOpen: time.Hour},
		{name: "stream cut before anything was sent: failure, next", breaker: "openai", stream: true, fault: fakeprovider.Fault{Kind: fakeprovider.FaultStreamCut, CutAfter: 0}, wantCode: 200, wantFrom: "anthropic", wantFails: 1,
			check: func(t *testing.T, a answer) {
				if !strings.HasSuffix(a.body, "data: [DONE]\n\n") {
					t.Fatalf("the fallback's stream did not finish: %q", a.body)
				}
			}},
		{name: "stream cut mid-way: failure, the client's stream ends with an error", breaker: "openai", stream: true, fault: fakeprovider.Fault{Kind: fakeprovider.FaultStreamCut, CutAfter: 3}, wantCode: 200, wantFrom: "openai", wantFails: 1,
			check: streamEndsInError},
		{name: "error event mid-stream: failure, the client's stream ends with an error", breaker: "openai", stream: true, fault: fakeprovider.Fault{Kind: fakeprovider.FaultStreamError, CutAfter: 3}, wantCode: 200, wantFrom: "openai", wantFails: 1,
			check: streamEndsInError},
		{name: "Anthropic error event mid-stream: failure, error to the client", breaker: "anthropic", stream: true, fault: fakeprovider.Fault{Kind: fakeprovider.FaultStreamError, CutAfter: 2}, wantCode: 200, wantFrom: "anthropic", wantFails: 1,
			check: streamEndsInError},
		{name: "400 context length: not a failure, returned to the caller", breaker: "openai", fault: st(400, ""), wantCode: 400, wantFrom: "openai",
			check: func(t *testing.T, a answer) {
				if !strings.Contains(a.body, "context_length_exceeded") {
					t.Fatalf("the provider's 400 was not passed on: %s", a.body)
				}
			}},
		{name: "Anthropic 400: not a failure, returned in OpenAI's shape", breaker: "anthropic", fault: st(400, ""), wantCode: 400, wantFrom: "anthropic",
			check: func(t *testing.T, a answer) {
				if !strings.Contains(a.body, `"type":"invalid_request_error"`) || !strings.Contains(a.body, "prompt is too long") {
					t.Fatalf("translated 400: %s", a.body)
				}
			}},
		{name: "413: not a failure, returned", breaker: "openai", fault: st(413, ""), wantCode: 413, wantFrom: "openai"},
		{name: "401: misconfigured, the cluster opens for misconfigured_open, next", breaker: "openai", fault: st(401, ""), wantCode: 200, wantFrom: "anthropic", wantOpen: time.Hour},
		{name: "403: misconfigured, the cluster opens for misconfigured_open, next", breaker: "openai", fault: st(403, ""), wantCode: 200, wantFrom: "anthropic", wantOpen: time.Hour},
		{name: "404 model not found: not a failure, next", breaker: "openai", fault: st(404, ""), wantCode: 200, wantFrom: "anthropic"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.fp.Reset()
			for _, b := range []string{"openai", "anthropic", "ollama"} {
				res, err := r.c.Store.Reset(ctx, b, r.c.Config.Policy(b), "test", "next case")
				if err != nil {
					t.Fatal(err)
				}
				// Outcomes count against the state they were allowed under:
				// wait for the reset's own version, not just "closed".
				br, _ := s.agent.Breaker(b)
				testcluster.Eventually(t, 2*time.Second, "the sidecar sees "+b+" reset", func() bool {
					return br.State().Version == res.Version
				})
			}
			provider := tc.breaker
			if err := r.fp.SetFault(provider, tc.fault); err != nil {
				t.Fatal(err)
			}
			body := hello
			if tc.breaker == "anthropic" {
				body = strings.Replace(body, "gpt-4o-mini", "claude-primary", 1)
			}
			if tc.stream {
				body = strings.Replace(body, `"messages"`, `"stream":true,"messages"`, 1)
			}
			a := chat(t, s.url, body)
			if a.status != tc.wantCode || a.provider != tc.wantFrom {
				t.Fatalf("answer %d from %q, want %d from %q: %s", a.status, a.provider, tc.wantCode, tc.wantFrom, a.body)
			}
			if tc.check != nil {
				tc.check(t, a)
			}
			if tc.wantOpen > 0 {
				testcluster.Eventually(t, 3*time.Second, "the cluster opens", func() bool {
					return r.c.Snapshot(t, tc.breaker).State == statestore.StateOpen
				})
				if in := time.Duration(r.c.Snapshot(t, tc.breaker).RetryInMS) * time.Millisecond; in > tc.wantOpen || in < tc.wantOpen-5*time.Second {
					t.Fatalf("open for %s more, want about %s", in, tc.wantOpen)
				}
				return
			}
			expectReported(t, r, s.agent, tc.breaker, tc.wantFails)
		})
	}
}

// expectReported checks exactly what reached the cluster for a breaker:
// wantFails failures. A success sent last through the same agent proves
// everything before it was flushed.
func expectReported(t *testing.T, r *rig, a *agentlib.Agent, breaker string, wantFails int64) {
	t.Helper()
	b, _ := a.Breaker(breaker)
	done, err := b.Allow()
	if err != nil {
		t.Fatalf("sentinel call denied: %v", err)
	}
	done(agentlib.Success())
	var d statestore.Detail
	testcluster.Eventually(t, 3*time.Second, "the sentinel success reported", func() bool {
		ds, err := r.c.Store.Details(context.Background(), []string{breaker})
		if err != nil {
			t.Fatal(err)
		}
		d = ds[0]
		return d.WindowCalls-d.WindowFailures >= 1
	})
	if d.WindowFailures != wantFails || d.WindowCalls != wantFails+1 {
		t.Fatalf("%s: the cluster got %d failures in %d calls, want %d failures (and the sentinel success)", breaker, d.WindowFailures, d.WindowCalls, wantFails)
	}
}

func streamEndsInError(t *testing.T, a answer) {
	t.Helper()
	if strings.Contains(a.body, "[DONE]") || !strings.Contains(a.body, "fusebox_upstream_stream_error") || !strings.Contains(a.body, "chat.completion.chunk") {
		t.Fatalf("a failed stream must end with an error event and no [DONE]: %q", a.body)
	}
}

func TestSidecar_CallerCancelledIsNotAFailure(t *testing.T) {
	r := newRig(t, tablePolicy, 1, tableRoutes)
	if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Latency: fakeprovider.Duration(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if a := chatCtx(t, ctx, r.sidecars[0].url, hello); a.status != -1 {
		t.Fatalf("the request finished: %+v", a)
	}
	// The sidecar notices the hang-up once the provider answers or the
	// connection drops; nothing may be counted.
	testcluster.Eventually(t, 3*time.Second, "the provider saw the call", func() bool { return r.fp.Calls("openai") == 1 })
	expectReported(t, r, r.sidecars[0].agent, "openai", 0)
	if r.fp.Calls("anthropic") != 0 {
		t.Fatal("a cancelled request went on to the next provider")
	}
}

func TestSidecar_ConnectionRefusedAndConfigErrorsAnswered(t *testing.T) {
	r := newRig(t, tablePolicy, 1, tableRoutes)
	t.Run("connection refused: failure, retried, next", func(t *testing.T) {
		yaml := strings.Replace(sidecarYAML(r.fpURL, tableRoutes), r.fpURL+"/openai/v1", "http://127.0.0.1:1/v1", 1)
		s := r.startSidecar(t, 9, yaml)
		a := chat(t, s.url, hello)
		if a.status != 200 || a.provider != "anthropic" || a.fallback != "true" {
			t.Fatalf("answer %+v", a)
		}
		expectReported(t, r, s.agent, "openai", 3)
	})
	t.Run("404 with next_on_config_error off: returned to the caller", func(t *testing.T) {
		yaml := strings.Replace(sidecarYAML(r.fpURL, tableRoutes), "api_key_env: OPENAI_API_KEY", "api_key_env: OPENAI_API_KEY\n    next_on_config_error: false", 1)
		s := r.startSidecar(t, 10, yaml)
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 404}); err != nil {
			t.Fatal(err)
		}
		a := chat(t, s.url, hello)
		if a.status != 404 || a.provider != "openai" || !strings.Contains(a.body, "model_not_found") {
			t.Fatalf("answer %+v", a)
		}
		r.fp.Reset()
	})
}
