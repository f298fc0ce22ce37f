package sidecar_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/telemetry"
	"github.com/fusebox-io/fusebox/internal/telemetry/otlptest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/sidecar"
	"github.com/fusebox-io/fusebox/statestore"
)

// The caller's trace context.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// tracedRig is a sidecar exporting its spans over OTLP/HTTP, configured
// by the OTEL_* variables as cmd/agent does, to a receiver the test
// started, in front of a fake provider that notes each call's
// traceparent.
type tracedRig struct {
	c     *testcluster.Cluster
	fp    *fakeprovider.Server
	otlp  *otlptest.Receiver
	url   string
	agent *agentlib.Agent

	mu           sync.Mutex
	traceparents map[string][]string // guarded by mu; by provider
}

// A slow fallback keeps the request open long enough to see a trip land.
func tracedYAML(fpURL, routes string) string {
	return fmt.Sprintf(`
providers:
  openai:
    kind: openai
    base_url: %[1]s/openai/v1
    api_key_env: OPENAI_API_KEY
    timeouts: {connect: 1s, first_byte: 5s, total: 10s}
  anthropic:
    kind: anthropic
    base_url: %[1]s/anthropic
    api_key_env: ANTHROPIC_API_KEY
    models: {"*": "claude-3-5-haiku-latest"}
    timeouts: {connect: 1s, first_byte: 5s, total: 10s}
%[2]s`, fpURL, routes)
}

const tracedRoutes = `
routes:
  - name: chat
    chain: [openai, anthropic]
retry: {attempts: 1}
`

func newTracedRig(t *testing.T, policies, routes string) *tracedRig {
	t.Helper()
	otlp := otlptest.StartHTTP(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20") // ms: spans arrive while the test waits
	tr := &tracedRig{fp: fakeprovider.New(), otlp: otlp, traceparents: map[string][]string{}}
	fsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		tr.mu.Lock()
		tr.traceparents[name] = append(tr.traceparents[name], r.Header.Get("traceparent"))
		tr.mu.Unlock()
		tr.fp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { tr.fp.Close(); fsrv.Close() })
	tr.c = testcluster.Start(t, testcluster.Options{ConfigYAML: policies})

	tel, err := telemetry.New(context.Background(), telemetry.Options{ServiceName: "fusebox-sidecar"})
	if err != nil {
		t.Fatal(err)
	}
	if !tel.On {
		t.Fatal("tracing is off with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	cfg, err := sidecar.ParseConfig([]byte(tracedYAML(fsrv.URL, routes)), func(k string) string { return testEnv[k] })
	if err != nil {
		t.Fatal(err)
	}
	tr.agent, err = agentlib.New(agentlib.Config{
		CoordinatorURL: tr.c.URLs(), RedisURL: tr.c.Redis.URL(), Token: testcluster.AgentToken,
		AgentID: "traced-sidecar", ResyncInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.agent.Close() })
	srv, err := sidecar.New(sidecar.Options{Config: cfg, Agent: tr.agent, TracerProvider: tel.Provider, Propagator: tel.Propagator})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	tr.url = hs.URL
	return tr
}

func (tr *tracedRig) traceparentsOf(p string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.traceparents[p]...)
}

// request is one request's spans: its server span and its attempts, in
// the order they started.
type requestSpans struct {
	server   otlptest.Span
	attempts []otlptest.Span
}

// waitRequest waits for the server span of the caller's trace and n
// attempt spans under it.
func (tr *tracedRig) waitRequest(t *testing.T, n int) requestSpans {
	t.Helper()
	var rs requestSpans
	tr.otlp.WaitFor(t, 5*time.Second, fmt.Sprintf("a server span and %d attempt spans in the caller's trace", n), func(spans []otlptest.Span) bool {
		rs = requestSpans{}
		for _, s := range spans {
			if s.TraceID == callerTrace && s.Kind.String() == "SPAN_KIND_SERVER" {
				rs.server = s
			}
		}
		for _, s := range spans {
			if s.TraceID == callerTrace && s.Kind.String() == "SPAN_KIND_CLIENT" && s.ParentID == rs.server.SpanID {
				rs.attempts = append(rs.attempts, s)
			}
		}
		slices.SortFunc(rs.attempts, func(a, b otlptest.Span) int { return a.Start.Compare(b.Start) })
		return rs.server.SpanID != "" && len(rs.attempts) == n
	})
	return rs
}

// want checks attributes of a span.
func want(t *testing.T, s otlptest.Span, attrs map[string]any) {
	t.Helper()
	for k, v := range attrs {
		if got, ok := s.Attrs[k]; !ok || got != v {
			t.Errorf("span %q: %s = %v (%T), want %v (%T)\n%s", s.Name, k, got, got, v, v, otlptest.Dump([]otlptest.Span{s}))
		}
	}
}

// usageOf is a chat answer's model and usage.
func usageOf(t *testing.T, body string) (model string, in, out int64) {
	t.Helper()
	var a struct {
		Model string `json:"model"`
		Usage struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.Usage.PromptTokens == 0 || a.Usage.CompletionTokens == 0 {
		t.Fatalf("the answer has no usage (%v): %s", err, body)
	}
	return a.Model, a.Usage.PromptTokens, a.Usage.CompletionTokens
}

func TestTracing_ARequestIsAServerSpanWithAChildPerAttempt(t *testing.T) {
	tr := newTracedRig(t, "", tracedRoutes)
	a := chat(t, tr.url, hello, "traceparent", callerParent)
	if a.status != 200 || a.provider != "openai" {
		t.Fatalf("answer %d from %q: %s", a.status, a.provider, a.body)
	}
	model, in, out := usageOf(t, a.body)
	rs := tr.waitRequest(t, 1)

	srv := rs.server
	if srv.ParentID != callerSpan || srv.Name != "POST /v1/chat/completions" {
		t.Fatalf("server span %q has parent %q, want the caller's %s", srv.Name, srv.ParentID, callerSpan)
	}
	want(t, srv, map[string]any{
		"http.request.method": "POST", "http.route": "/v1/chat/completions", "http.response.status_code": int64(200),
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
		"fusebox.route": "chat", "fusebox.provider": "openai", "fusebox.fallback": false, "fusebox.hedged": false, "fusebox.stream": false,
	})
	if srv.Resource["service.name"] != "fusebox-sidecar" {
		t.Errorf("resource: %v", srv.Resource)
	}
	if _, ok := srv.Attrs["gen_ai.usage.input_tokens"]; ok {
		t.Error("the server span carries usage: summed over spans, tokens would count twice")
	}

	at := rs.attempts[0]
	if at.Name != "chat gpt-4o-mini" {
		t.Errorf("attempt span named %q", at.Name)
	}
	want(t, at, map[string]any{
		"gen_ai.system": "openai", "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
		"gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": model,
		"gen_ai.usage.input_tokens": in, "gen_ai.usage.output_tokens": out,
		"fusebox.provider": "openai", "fusebox.breaker": "openai", "fusebox.decision": "allowed", "fusebox.fallback": false,
		"fusebox.result": "200", "http.response.status_code": int64(200), "server.address": "127.0.0.1",
	})
	if _, ok := at.Attrs["error.type"]; ok || at.StatusCode.String() == "STATUS_CODE_ERROR" {
		t.Errorf("a served attempt is an error:\n%s", otlptest.Dump(rs.attempts))
	}
	if got := tr.traceparentsOf("openai"); len(got) != 1 || got[0] != "00-"+callerTrace+"-"+at.SpanID+"-01" {
		t.Fatalf("the provider saw traceparent %q, want the attempt span's (%s) in the caller's trace", got, at.SpanID)
	}
}

func TestTracing_AFallbackAfterA503ShowsBothAttempts(t *testing.T) {
	tr := newTracedRig(t, "", tracedRoutes)
	if err := tr.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503}); err != nil {
		t.Fatal(err)
	}
	a := chat(t, tr.url, hello, "traceparent", callerParent)
	if a.status != 200 || a.provider != "anthropic" {
		t.Fatalf("answer %d from %q: %s", a.status, a.provider, a.body)
	}
	_, in, out := usageOf(t, a.body)
	rs := tr.waitRequest(t, 2)
	want(t, rs.server, map[string]any{"fusebox.provider": "anthropic", "fusebox.fallback": true, "http.response.status_code": int64(200)})

	failed, served := rs.attempts[0], rs.attempts[1]
	want(t, failed, map[string]any{
		"gen_ai.system": "openai", "fusebox.breaker": "openai", "fusebox.fallback": false,
		"error.type": "503", "fusebox.result": "503", "http.response.status_code": int64(503),
	})
	if failed.StatusCode.String() != "STATUS_CODE_ERROR" || !strings.Contains(failed.StatusMessage, "503") {
		t.Errorf("the failed attempt's status: %s %q", failed.StatusCode, failed.StatusMessage)
	}
	want(t, served, map[string]any{
		"gen_ai.system": "anthropic", "gen_ai.provider.name": "anthropic", "fusebox.breaker": "anthropic", "fusebox.fallback": true,
		"gen_ai.request.model": "claude-3-5-haiku-latest", "gen_ai.response.model": "claude-3-5-haiku-latest",
		"gen_ai.usage.input_tokens": in, "gen_ai.usage.output_tokens": out, "fusebox.result": "200",
	})
	if served.Name != "chat claude-3-5-haiku-latest" {
		t.Errorf("the fallback's span is named %q", served.Name)
	}
	for p, s := range map[string]otlptest.Span{"openai": failed, "anthropic": served} {
		if got := tr.traceparentsOf(p); len(got) != 1 || got[0] != "00-"+callerTrace+"-"+s.SpanID+"-01" {
			t.Errorf("%s saw traceparent %q, want its attempt span %s", p, got, s.SpanID)
		}
	}
}

func TestTracing_ADeniedProviderIsAnEvent(t *testing.T) {
	tr := newTracedRig(t, "defaults:\n  open_timeout: 1m\n", tracedRoutes)
	b, _ := tr.agent.Breaker("openai")
	tr.c.Trip(t, "openai", 5)
	testcluster.Eventually(t, 3*time.Second, "the sidecar sees openai open", func() bool { return b.State().State == statestore.StateOpen })
	a := chat(t, tr.url, hello, "traceparent", callerParent)
	if a.status != 200 || a.provider != "anthropic" {
		t.Fatalf("answer %d from %q: %s", a.status, a.provider, a.body)
	}
	rs := tr.waitRequest(t, 1)
	want(t, rs.server, map[string]any{"fusebox.skipped": "openai=open", "fusebox.fallback": true})
	evs := rs.server.EventsNamed("fusebox.denied")
	if len(evs) != 1 {
		t.Fatalf("denied events: %v\n%s", evs, otlptest.Dump([]otlptest.Span{rs.server}))
	}
	for k, v := range map[string]any{"fusebox.provider": "openai", "fusebox.breaker": "openai", "fusebox.decision": "denied", "fusebox.deny_reason": "open"} {
		if evs[0].Attrs[k] != v {
			t.Errorf("the denial's %s = %v, want %v", k, evs[0].Attrs[k], v)
		}
	}
	if got := rs.attempts[0].Attrs["fusebox.provider"]; got != "anthropic" {
		t.Errorf("the one attempt went to %v", got)
	}
	if got := tr.traceparentsOf("openai"); len(got) != 0 {
		t.Errorf("the denied provider was called: %q", got)
	}
}

func TestTracing_ATripTheRequestCausedIsAnEvent(t *testing.T) {
	tr := newTracedRig(t, "defaults:\n  consecutive_failures: 1\n  open_timeout: 1m\n", tracedRoutes)
	b, _ := tr.agent.Breaker("openai")
	testcluster.Eventually(t, 3*time.Second, "the policy is mirrored", func() bool { p, ok := b.Policy(); return ok && p.ConsecutiveFailures == 1 })
	if err := tr.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503}); err != nil {
		t.Fatal(err)
	}
	// The fallback answers after a second: the request is still open when
	// the report of openai's failure comes back with the trip.
	if err := tr.fp.SetFault("anthropic", fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Latency: fakeprovider.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	a := chat(t, tr.url, hello, "traceparent", callerParent)
	if a.status != 200 || a.provider != "anthropic" {
		t.Fatalf("answer %d from %q: %s", a.status, a.provider, a.body)
	}
	if b.State().State != statestore.StateOpen {
		t.Fatalf("openai is %s after the request", b.State().Effective())
	}
	rs := tr.waitRequest(t, 2)
	evs := rs.server.EventsNamed("fusebox.transition")
	if len(evs) != 1 {
		t.Fatalf("transition events: %v\n%s", evs, otlptest.Dump([]otlptest.Span{rs.server}))
	}
	for k, v := range map[string]any{"fusebox.breaker": "openai", "fusebox.state.old": "closed", "fusebox.state.new": "open", "fusebox.version": b.State().Version} {
		if evs[0].Attrs[k] != v {
			t.Errorf("the transition's %s = %v, want %v", k, evs[0].Attrs[k], v)
		}
	}
}

func TestTracing_StreamsCarryTheirUsage(t *testing.T) {
	tr := newTracedRig(t, "", tracedRoutes)
	t.Run("chat: the usage chunk", func(t *testing.T) {
		body := `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello"}]}`
		a := chat(t, tr.url, body, "traceparent", callerParent)
		if a.status != 200 || a.provider != "openai" {
			t.Fatalf("answer %d from %q: %s", a.status, a.provider, a.body)
		}
		var in, out int64
		for _, ev := range a.events(t) {
			if !ev.IsDone() {
				var c struct {
					Usage *struct {
						PromptTokens     int64 `json:"prompt_tokens"`
						CompletionTokens int64 `json:"completion_tokens"`
					} `json:"usage"`
				}
				if json.Unmarshal(ev.Data, &c) == nil && c.Usage != nil {
					in, out = c.Usage.PromptTokens, c.Usage.CompletionTokens
				}
			}
		}
		if in == 0 || out == 0 {
			t.Fatalf("no usage chunk in the stream: %s", a.body)
		}
		rs := tr.waitRequest(t, 1)
		want(t, rs.server, map[string]any{"fusebox.stream": true})
		want(t, rs.attempts[0], map[string]any{"gen_ai.usage.input_tokens": in, "gen_ai.usage.output_tokens": out,
			"gen_ai.response.model": "gpt-4o-mini", "fusebox.result": "200", "fusebox.stream": true})
	})
}

func TestTracing_MessagesStreamFromAnthropic(t *testing.T) {
	tr := newTracedRig(t, "", tracedRoutes)
	body := `{"model":"gpt-4o-mini","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello"}]}`
	a := post(t, tr.url+"/v1/messages", body, "traceparent", callerParent, "anthropic-version", "2023-06-01")
	if a.status != 200 || a.provider != "anthropic" {
		t.Fatalf("answer %d from %q: %s", a.status, a.provider, a.body)
	}
	var in, out int64
	for _, ev := range a.events(t) {
		var e struct {
			Type    string
			Message struct {
				Usage struct {
					InputTokens int64 `json:"input_tokens"`
				}
			}
			Usage struct {
				OutputTokens int64 `json:"output_tokens"`
			}
		}
		_ = json.Unmarshal(ev.Data, &e)
		switch e.Type {
		case "message_start":
			in = e.Message.Usage.InputTokens
		case "message_delta":
			out = e.Usage.OutputTokens
		}
	}
	if in == 0 || out == 0 {
		t.Fatalf("no usage in the stream: %s", a.body)
	}
	rs := tr.waitRequest(t, 1)
	want(t, rs.server, map[string]any{"http.route": "/v1/messages", "fusebox.provider": "anthropic"})
	want(t, rs.attempts[0], map[string]any{"gen_ai.system": "anthropic", "gen_ai.usage.input_tokens": in, "gen_ai.usage.output_tokens": out,
		"gen_ai.response.model": "claude-3-5-haiku-latest"})
}

func TestTracing_AHedgedRaceShowsBothAttempts(t *testing.T) {
	routes := `
routes:
  - name: chat
    chain: [openai, anthropic]
    hedge: {after: 50ms}
retry: {attempts: 1, budget: 0.5, min_per_second: 5}
`
	tr := newTracedRig(t, "", routes)
	if err := tr.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Latency: fakeprovider.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	a := chat(t, tr.url, hello, "traceparent", callerParent)
	if a.status != 200 || a.provider != "anthropic" || a.header.Get(sidecar.HeaderHedged) != "true" {
		t.Fatalf("answer %d from %q hedged %q: %s", a.status, a.provider, a.header.Get(sidecar.HeaderHedged), a.body)
	}
	rs := tr.waitRequest(t, 2)
	want(t, rs.server, map[string]any{"fusebox.hedged": true, "fusebox.provider": "anthropic"})
	first, hedge := rs.attempts[0], rs.attempts[1]
	want(t, first, map[string]any{"fusebox.provider": "openai", "fusebox.result": "hedge_lost"})
	if _, ok := first.Attrs["fusebox.hedged"]; ok {
		t.Errorf("the first attempt is marked as the hedge")
	}
	if _, ok := first.Attrs["error.type"]; ok {
		t.Errorf("losing a race is an error: %v", first.Attrs)
	}
	want(t, hedge, map[string]any{"fusebox.provider": "anthropic", "fusebox.hedged": true, "fusebox.result": "200"})
	if !hedge.Start.After(first.Start.Add(40 * time.Millisecond)) {
		t.Errorf("the hedge started %s after the first attempt, want about 50ms", hedge.Start.Sub(first.Start))
	}
}

func TestTracing_WithoutACallerTraceARequestStartsOne(t *testing.T) {
	tr := newTracedRig(t, "", tracedRoutes)
	if a := chat(t, tr.url, hello); a.status != 200 {
		t.Fatalf("answer %d: %s", a.status, a.body)
	}
	spans := tr.otlp.WaitFor(t, 5*time.Second, "a server span and its attempt", func(spans []otlptest.Span) bool { return len(spans) >= 2 })
	var root otlptest.Span
	for _, s := range spans {
		if s.Kind.String() == "SPAN_KIND_SERVER" {
			root = s
		}
	}
	if root.ParentID != "" || root.TraceID == "" || root.TraceID == callerTrace {
		t.Fatalf("the server span: %s", otlptest.Dump(spans))
	}
	if got := tr.traceparentsOf("openai"); len(got) != 1 || !strings.HasPrefix(got[0], "00-"+root.TraceID+"-") {
		t.Fatalf("the provider saw %q, want the sidecar's own trace %s", got, root.TraceID)
	}
}

func TestTracing_OffByDefault(t *testing.T) {
	// No OTEL_* variable: telemetry hands out a no-op provider, the
	// sidecar treats it as no provider, and nothing reaches the provider
	// but the request itself.
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"} {
		t.Setenv(k, "")
	}
	tel, err := telemetry.New(context.Background(), telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tel.On {
		t.Fatal("tracing is on with no variable set")
	}
	var seen []string
	var mu sync.Mutex
	fp := fakeprovider.New()
	fsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("traceparent"))
		mu.Unlock()
		fp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { fp.Close(); fsrv.Close() })
	c := testcluster.Start(t, testcluster.Options{})
	cfg, err := sidecar.ParseConfig([]byte(tracedYAML(fsrv.URL, tracedRoutes)), func(k string) string { return testEnv[k] })
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agentlib.New(agentlib.Config{CoordinatorURL: c.URLs(), RedisURL: c.Redis.URL(), Token: testcluster.AgentToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ag.Close() })
	srv, err := sidecar.New(sidecar.Options{Config: cfg, Agent: ag, TracerProvider: tel.Provider, Propagator: tel.Propagator})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	if a := chat(t, hs.URL, hello, "traceparent", callerParent); a.status != 200 {
		t.Fatalf("answer %d: %s", a.status, a.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "" {
		t.Fatalf("with tracing off the provider saw traceparent %q, want none", seen)
	}
}
