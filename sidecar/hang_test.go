package sidecar_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/sidecar"
)

// hangYAML is sidecarYAML with the stream timeouts short.
func hangYAML(fpURL, routes string) string {
	y := sidecarYAML(fpURL, routes)
	return strings.ReplaceAll(y, "timeouts: {connect: 1s, first_byte: 500ms, total: 3s}", "timeouts: {connect: 1s, first_byte: 500ms, first_token: 300ms, stall: 300ms, total: 3s}")
}

func TestSidecar_StreamTimeouts(t *testing.T) {
	r := newRig(t, tablePolicy, 1, tableRoutes)
	s := r.startSidecar(t, 5, hangYAML(r.fpURL, tableRoutes))

	t.Run("a stream that starts and sends no token fails over, never retried", func(t *testing.T) {
		r.fp.Reset()
		// The role chunk only, then nothing: no token.
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStall, CutAfter: 1}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		a := chat(t, s.url, helloStream)
		took := time.Since(start)
		if a.status != 200 || a.provider != "anthropic" || !strings.HasSuffix(a.body, "data: [DONE]\n\n") {
			t.Fatalf("answer %d from %q: %q", a.status, a.provider, a.body)
		}
		if strings.Count(a.body, `"role":"assistant"`) != 1 {
			t.Fatalf("the stalled stream's first chunk reached the client: %q", a.body)
		}
		if n := r.fp.Calls("openai"); n != 1 {
			t.Fatalf("openai called %d times, want 1: a first-token timeout is not retried", n)
		}
		if took > 2*time.Second {
			t.Fatalf("the fail-over took %s (first_token 300ms)", took)
		}
		expectReported(t, r, s.agent, "openai", 1)
	})

	t.Run("a stream that stalls after content reached the client ends with an error", func(t *testing.T) {
		r.fp.Reset()
		resetBreakers(t, r, s.agent)
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStall, CutAfter: 3}); err != nil {
			t.Fatal(err)
		}
		a := chat(t, s.url, helloStream)
		if a.status != 200 || a.provider != "openai" {
			t.Fatalf("answer %d from %q", a.status, a.provider)
		}
		streamEndsInError(t, a)
		if !strings.Contains(a.body, "stalled") {
			t.Fatalf("the error event does not say the stream stalled: %q", a.body)
		}
		expectReported(t, r, s.agent, "openai", 1)
	})
}

func resetBreakers(t *testing.T, r *rig, a *agentlib.Agent) {
	t.Helper()
	for _, name := range []string{"openai", "anthropic", "ollama"} {
		res, err := r.c.Store.Reset(context.Background(), name, r.c.Config.Policy(name), "test", "next case")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := a.Breaker(name)
		testcluster.Eventually(t, 2*time.Second, "the sidecar sees "+name+" reset", func() bool { return b.State().Version == res.Version })
	}
}

const hedgeRoutes = `
routes:
  - name: chat
    models: ["*"]
    chain: [openai, anthropic, ollama]
    hedge: {after: 150ms}
retry: {attempts: 1, base: 5ms, max: 20ms, budget: 0.5, min_per_second: 5}
`

func TestSidecar_Hedging(t *testing.T) {
	t.Run("a hanging primary is raced: the fallback answers, the loser counts as hung", func(t *testing.T) {
		policy := tablePolicy + "  hang_after: 300ms\n"
		r := newRig(t, policy, 1, hedgeRoutes)
		s := r.sidecars[0]
		b, _ := s.agent.Breaker("openai")
		testcluster.Eventually(t, 3*time.Second, "the policy is mirrored", func() bool { return b.HangAfter() > 0 })
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultHang}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		a := chat(t, s.url, hello)
		took := time.Since(start)
		if a.status != 200 || a.provider != "anthropic" || a.header.Get(sidecar.HeaderHedged) != "true" {
			t.Fatalf("answer %d from %q hedged %q: %s", a.status, a.provider, a.header.Get(sidecar.HeaderHedged), a.body)
		}
		if took > 400*time.Millisecond {
			t.Fatalf("answered after %s: the hedge (150ms) did not win", took)
		}
		if r.fp.Calls("openai") != 1 || r.fp.Calls("anthropic") != 1 {
			t.Fatalf("calls: openai %d, anthropic %d; want 1 each", r.fp.Calls("openai"), r.fp.Calls("anthropic"))
		}
		// The primary's call was kept until it counted as hung.
		testcluster.Eventually(t, 3*time.Second, "the loser counted as hung", func() bool {
			d, err := r.c.Store.Details(context.Background(), []string{"openai"})
			if err != nil {
				t.Fatal(err)
			}
			return d[0].WindowFailures == 1
		})
		// It ends by its own first-byte timeout (500ms) or is called off,
		// and is counted once.
		testcluster.Eventually(t, 3*time.Second, "the loser's call ends", func() bool {
			return metricSum(t, s.url, `fusebox_sidecar_upstream_calls_total{provider="openai",`) == 1
		})
		if won := metric(t, s.url, `fusebox_sidecar_hedges_total{provider="anthropic",result="won"}`); won != 1 {
			t.Fatalf("hedges won = %v, want 1", won)
		}
	})

	t.Run("a slow but healthy primary that answers first wins; the hedge is called off", func(t *testing.T) {
		r := newRig(t, tablePolicy, 1, hedgeRoutes)
		s := r.sidecars[0]
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Latency: fakeprovider.Duration(250 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		if err := r.fp.SetFault("anthropic", fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Latency: fakeprovider.Duration(2 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		a := chat(t, s.url, hello)
		if a.status != 200 || a.provider != "openai" || a.header.Get(sidecar.HeaderHedged) != "true" {
			t.Fatalf("answer %d from %q hedged %q", a.status, a.provider, a.header.Get(sidecar.HeaderHedged))
		}
		testcluster.Eventually(t, 3*time.Second, "the hedge is called off and not counted", func() bool {
			return metric(t, s.url, `fusebox_sidecar_upstream_calls_total{provider="anthropic",result="hedge_lost"}`) == 1
		})
		expectReported(t, r, s.agent, "anthropic", 0)
	})

	t.Run("hedges spend the retry budget: none left, no hedge", func(t *testing.T) {
		routes := strings.Replace(hedgeRoutes, "budget: 0.5, min_per_second: 5", "budget: 0, min_per_second: 0", 1)
		r := newRig(t, tablePolicy, 1, routes)
		s := r.sidecars[0]
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Latency: fakeprovider.Duration(300 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		a := chat(t, s.url, hello)
		if a.status != 200 || a.provider != "openai" || a.header.Get(sidecar.HeaderHedged) != "" {
			t.Fatalf("answer %d from %q hedged %q", a.status, a.provider, a.header.Get(sidecar.HeaderHedged))
		}
		if r.fp.Calls("anthropic") != 0 {
			t.Fatal("hedged with no budget")
		}
		if n := metric(t, s.url, `fusebox_sidecar_hedges_total{provider="openai",result="budget_exhausted"}`); n != 1 {
			t.Fatalf("budget_exhausted = %v, want 1", n)
		}
	})
}

// TestSidecar_CountersMatchTheProvider: every call that reached the
// provider is counted once with its result, retries when sent.
func TestSidecar_CountersMatchTheProvider(t *testing.T) {
	r := newRig(t, tablePolicy, 1, tableRoutes)
	s := r.sidecars[0]
	for _, f := range []fakeprovider.Fault{{Kind: fakeprovider.FaultHang}, {Kind: fakeprovider.FaultReset}} {
		if err := r.fp.SetFault("openai", f); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			chat(t, s.url, hello)
		}
	}
	// Callers that hang up while the provider is slow.
	if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Latency: fakeprovider.Duration(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		chatCtx(t, ctx, s.url, hello)
		cancel()
	}
	want := float64(r.fp.Calls("openai"))
	testcluster.Eventually(t, 3*time.Second, "every call counted", func() bool {
		return metricSum(t, s.url, `fusebox_sidecar_upstream_calls_total{provider="openai",`) == want
	})
	if n := metric(t, s.url, `fusebox_sidecar_upstream_calls_total{provider="openai",result="client_gone"}`); n != 3 {
		t.Fatalf("client_gone = %v, want 3", n)
	}
	// Resets are retried (3 requests, 3 attempts each), hangs never.
	if n := metric(t, s.url, `fusebox_sidecar_retries_total{provider="openai"}`); n != 6 {
		t.Fatalf("retries = %v, want 6 (3 requests × 2 retries of a reset)", n)
	}
	if n := metric(t, s.url, `fusebox_sidecar_upstream_calls_total{provider="openai",result="first_byte_timeout"}`); n != 3 {
		t.Fatalf("first_byte_timeout = %v, want 3", n)
	}
}

// TestSidecar_RedactsKeys: a provider that echoes the API key in its
// error: the key reaches neither the caller nor the log.
func TestSidecar_RedactsKeys(t *testing.T) {
	r := newRig(t, tablePolicy, 1, tableRoutes)
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	yaml := strings.Replace(sidecarYAML(r.fpURL, tableRoutes), "api_key_env: OPENAI_API_KEY", "api_key_env: OPENAI_API_KEY\n    next_on_config_error: false", 1)
	s := r.startSidecarWith(t, 11, yaml, &log)
	key := testEnv["OPENAI_API_KEY"]
	if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 401, EchoKey: true}); err != nil {
		t.Fatal(err)
	}
	a := chat(t, s.url, hello)
	if a.status != 401 || strings.Contains(a.body, key) || !strings.Contains(a.body, "[redacted]") {
		t.Fatalf("401 passed on: %s", a.body)
	}
	// Every provider failing with the key in its answer: the 503 too.
	for _, p := range []string{"openai", "anthropic", "ollama"} {
		if err := r.fp.SetFault(p, fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503, EchoKey: true}); err != nil {
			t.Fatal(err)
		}
	}
	a = chat(t, s.url, hello)
	if a.status != 503 {
		t.Fatalf("answer %d: %s", a.status, a.body)
	}
	for _, k := range []string{key, testEnv["ANTHROPIC_API_KEY"]} {
		if strings.Contains(a.body, k) || strings.Contains(logs.String(), k) {
			t.Fatalf("a key reached the caller or the log:\n%s\n%s", a.body, logs.String())
		}
	}
	// An exhausted quota everywhere: the sidecar's own 503 says why, and
	// not with the key.
	for _, p := range []string{"openai", "anthropic", "ollama"} {
		resetBreakers(t, r, s.agent)
		if err := r.fp.SetFault(p, fakeprovider.Fault{Kind: fakeprovider.FaultQuota, EchoKey: true}); err != nil {
			t.Fatal(err)
		}
	}
	a = chat(t, s.url, hello)
	if a.status != 503 || strings.Contains(a.body, key) || strings.Contains(a.body, testEnv["ANTHROPIC_API_KEY"]) {
		t.Fatalf("quota everywhere: %d %s", a.status, a.body)
	}
	// A stream whose error event echoes the key, before its first token
	// (the sidecar moves on) and after it (the client's stream ends with
	// an error event): neither the client, nor the log, nor the cluster's
	// journal (the breaker's last_error) gets the key.
	for _, cut := range []int{0, 2} {
		r.fp.Reset()
		resetBreakers(t, r, s.agent)
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStreamError, CutAfter: cut, EchoKey: true}); err != nil {
			t.Fatal(err)
		}
		st := chat(t, s.url, helloStream)
		if st.status != 200 || strings.Contains(st.body, key) {
			t.Fatalf("cut after %d: %d, the client's stream:\n%s", cut, st.status, st.body)
		}
		testcluster.Eventually(t, 3*time.Second, "the stream's failure reaches the cluster", func() bool {
			d, err := r.c.Store.Details(context.Background(), []string{"openai"})
			return err == nil && d[0].LastError != ""
		})
		d, err := r.c.Store.Details(context.Background(), []string{"openai"})
		if err != nil || strings.Contains(d[0].LastError, key) || !strings.Contains(d[0].LastError, "[redacted]") {
			t.Fatalf("cut after %d: the cluster's last_error %q (%v)", cut, d[0].LastError, err)
		}
		if strings.Contains(logs.String(), key) {
			t.Fatalf("cut after %d: the key reached the log", cut)
		}
	}
}

var metricLine = regexp.MustCompile(`^(\S+) (\S+)$`)

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric is the value of one exact series.
func metric(t *testing.T, url, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(scrape(t, url), "\n") {
		if m := metricLine.FindStringSubmatch(l); m != nil && m[1] == series {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	return 0
}

// metricSum adds up every series that starts with prefix.
func metricSum(t *testing.T, url, prefix string) float64 {
	t.Helper()
	var sum float64
	for _, l := range strings.Split(scrape(t, url), "\n") {
		if m := metricLine.FindStringSubmatch(l); m != nil && strings.HasPrefix(m[1], prefix) {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}
