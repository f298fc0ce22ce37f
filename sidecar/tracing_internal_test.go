package sidecar

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/provider"
)

// hookRun is every tracing hook one request with one attempt passes
// through, in order (with the walk, attempt and outbound request the
// test makes itself: the same with tracing off and on).
type hookRun struct {
	s     *Server
	b     *agentlib.Breaker
	r     *http.Request
	w     *statusWriter
	req   *request
	route *Route
	p     *Provider
	body  []byte
	ev    provider.Event
	deny  error
}

func newHookRun(s *Server, b *agentlib.Breaker) *hookRun {
	return &hookRun{
		s: s, b: b,
		r:     httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil),
		w:     &statusWriter{ResponseWriter: httptest.NewRecorder(), status: 200},
		req:   &request{api: APIChat, model: "gpt-4o-mini"},
		route: &Route{Name: "chat"},
		p:     &Provider{Name: "openai", Kind: KindOpenAI},
		body:  []byte(`{"id":"x","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3}}`),
		ev:    provider.Event{Data: []byte(`{"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3}}`)},
		deny:  &agentlib.DeniedError{Breaker: "anthropic", Reason: agentlib.ErrOpen},
	}
}

func (h *hookRun) run() {
	r, span := h.s.traceServer(h.r, APIChat)
	traceRoute(span, h.route, h.req)
	wk := &walk{s: h.s, ctx: r.Context()}
	wk.traceDenied(h.p, h.deny)
	wk.traceSkip(h.p, "tools")
	a := &attempt{s: h.s, try: try{p: h.p, b: h.b, model: "gpt-4o-mini"}, req: h.req}
	a.ctx = a.traceStart(r.Context())
	out := httptest.NewRequest(http.MethodPost, "http://provider/v1/chat/completions", nil)
	a.traceInject(out)
	a.traceAnswer(h.body)
	a.traceEvent(h.ev)
	a.traceEnd(agentlib.Success(), "200")
	traceServerEnd(span, h.w)
}

func TestTracing_OffAllocatesNothing(t *testing.T) {
	s := &Server{} // no TracerProvider: s.tracing is nil
	h := newHookRun(s, nil)
	wk := &walk{s: s, ctx: context.Background()}
	a := &attempt{s: s, try: try{p: h.p, model: "m"}, req: h.req}
	if n := testing.AllocsPerRun(1000, func() {
		_, span := s.traceServer(h.r, APIChat)
		traceRoute(span, h.route, h.req)
		wk.traceDenied(h.p, h.deny)
		wk.traceSkip(h.p, "tools")
		_ = a.traceStart(h.r.Context())
		a.traceInject(h.r)
		a.traceAnswer(h.body)
		a.traceEvent(h.ev)
		a.traceEnd(agentlib.Failure(errors.New("x")), "503")
		traceServerEnd(span, h.w)
	}); n != 0 {
		t.Fatalf("the tracing hooks with tracing off: %v allocs, want 0", n)
	}
	if newTracer(nil, nil, &Config{}) != nil {
		t.Fatal("no TracerProvider, and tracing is on")
	}
}

func TestTracing_TheHooksRecordWhatTheyRead(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ag, err := agentlib.New(agentlib.Config{CoordinatorURL: c.URLs(), RedisURL: c.Redis.URL(), Token: testcluster.AgentToken})
	if err != nil {
		t.Fatal(err)
	}
	defer ag.Close()
	b, _ := ag.Breaker("openai")
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s := &Server{tracing: newTracer(tp, nil, &Config{Providers: map[string]*Provider{"openai": {Name: "openai", Kind: KindOpenAI, BaseURL: "https://api.openai.com/v1"}}})}
	newHookRun(s, b).run()
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	attrs := map[string]any{}
	for _, kv := range spans[0].Attributes {
		attrs[string(kv.Key)] = kv.Value.AsInterface()
	}
	for k, v := range map[string]any{"gen_ai.usage.input_tokens": int64(12), "gen_ai.usage.output_tokens": int64(3), "gen_ai.response.model": "gpt-4o-mini",
		"server.address": "api.openai.com", "server.port": int64(443), "gen_ai.system": "openai"} {
		if attrs[k] != v {
			t.Errorf("attempt span %s = %v, want %v", k, attrs[k], v)
		}
	}
}

// BenchmarkTracingHooks: what tracing adds to one request with one
// attempt, besides the export: off (no provider) and on (the SDK, spans
// batched to an exporter that drops them).
func BenchmarkTracingHooks(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{})
	ag, err := agentlib.New(agentlib.Config{CoordinatorURL: c.URLs(), RedisURL: c.Redis.URL(), Token: testcluster.AgentToken})
	if err != nil {
		b.Fatal(err)
	}
	defer ag.Close()
	br, _ := ag.Breaker("openai")
	cfg := &Config{Providers: map[string]*Provider{"openai": {Name: "openai", Kind: KindOpenAI, BaseURL: "https://api.openai.com/v1"}}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	for _, m := range []struct {
		name string
		s    *Server
	}{{"off", &Server{}}, {"on", &Server{tracing: newTracer(tp, nil, cfg)}}} {
		h := newHookRun(m.s, br)
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.run()
			}
		})
	}
}
