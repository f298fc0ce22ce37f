package sidecar

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/provider"
)

// Tracing. With a TracerProvider in Options, each request is a server
// span (a child of the caller's traceparent) and each call to a provider
// a client span under it, whose traceparent goes to the provider. Without
// one, s.tracing is nil and every hook below returns at its first line:
// no span, no context value, no decoding.
//
// Server span "POST /v1/chat/completions": http.request.method,
// http.route, http.response.status_code, gen_ai.operation.name,
// gen_ai.request.model (as the client asked), fusebox.route,
// fusebox.provider (who served), fusebox.fallback, fusebox.hedged,
// fusebox.cache, fusebox.skipped; an event per provider passed over:
// "fusebox.denied" (its breaker denied: fusebox.breaker,
// fusebox.decision=denied, fusebox.deny_reason) or "fusebox.skipped"
// (it cannot serve the request: fusebox.skip_reason); a
// "fusebox.transition" event when an attempt's failure tripped a breaker
// while the request ran.
//
// Attempt span "chat gpt-4o-mini" (the GenAI conventions' operation and
// model): gen_ai.system and gen_ai.provider.name, gen_ai.request.model
// (as sent to the provider), gen_ai.response.model,
// gen_ai.usage.input_tokens and output_tokens (only here, not on the
// server span, so that a sum over spans counts each token once),
// error.type, server.address and port, http.response.status_code,
// fusebox.provider, fusebox.breaker, fusebox.decision=allowed,
// fusebox.fallback, fusebox.hedged (this attempt was the hedge),
// fusebox.result (the upstream-call metric's result).

const (
	attrGenAISystem    = attribute.Key("gen_ai.system")
	attrGenAIProvider  = attribute.Key("gen_ai.provider.name")
	attrGenAIOperation = attribute.Key("gen_ai.operation.name")
	attrGenAIReqModel  = attribute.Key("gen_ai.request.model")
	attrGenAIRespModel = attribute.Key("gen_ai.response.model")
	attrGenAIInput     = attribute.Key("gen_ai.usage.input_tokens")
	attrGenAIOutput    = attribute.Key("gen_ai.usage.output_tokens")
	attrErrorType      = attribute.Key("error.type")

	attrRoute      = attribute.Key("fusebox.route")
	attrProvider   = attribute.Key("fusebox.provider")
	attrBreaker    = attribute.Key("fusebox.breaker")
	attrDecision   = attribute.Key("fusebox.decision")
	attrDenyReason = attribute.Key("fusebox.deny_reason")
	attrSkipReason = attribute.Key("fusebox.skip_reason")
	attrFallback   = attribute.Key("fusebox.fallback")
	attrHedged     = attribute.Key("fusebox.hedged")
	attrCache      = attribute.Key("fusebox.cache")
	attrSkipped    = attribute.Key("fusebox.skipped")
	attrResult     = attribute.Key("fusebox.result")
	attrStream     = attribute.Key("fusebox.stream")
)

// tracer is the sidecar's tracing; nil when off.
type tracer struct {
	t    trace.Tracer
	prop propagation.TextMapPropagator
	// static attributes of each provider's attempt spans
	providers map[string][]attribute.KeyValue
	// server span names and attributes, by API
	names       map[API]string
	serverAttrs map[API][]attribute.KeyValue
}

func newTracer(tp trace.TracerProvider, prop propagation.TextMapPropagator, cfg *Config) *tracer {
	if tp == nil {
		return nil
	}
	if _, ok := tp.(noop.TracerProvider); ok {
		return nil
	}
	if prop == nil {
		prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	t := &tracer{t: tp.Tracer("github.com/fusebox-io/fusebox/sidecar"), prop: prop, providers: map[string][]attribute.KeyValue{},
		names: map[API]string{}, serverAttrs: map[API][]attribute.KeyValue{}}
	for _, api := range APIs {
		t.names[api] = "POST " + api.Path()
		t.serverAttrs[api] = []attribute.KeyValue{semconv.HTTPRequestMethodPost, semconv.HTTPRoute(api.Path()), attrGenAIOperation.String(genAIOperation(api))}
	}
	for name, p := range cfg.Providers {
		sys := genAISystem(p.Kind)
		attrs := []attribute.KeyValue{attrProvider.String(name), attrGenAISystem.String(sys), attrGenAIProvider.String(sys)}
		if u, err := url.Parse(p.BaseURL); err == nil {
			attrs = append(attrs, semconv.ServerAddress(u.Hostname()))
			port, err := strconv.Atoi(u.Port())
			if err != nil {
				port = 443
				if u.Scheme == "http" {
					port = 80
				}
			}
			attrs = append(attrs, semconv.ServerPort(port))
		}
		t.providers[name] = attrs
	}
	return t
}

// genAISystem is the GenAI conventions' name of a provider kind. An
// OpenAI-compatible server is "openai", as the conventions ask of a
// client that speaks OpenAI's API to another product.
func genAISystem(k Kind) string {
	switch k {
	case KindAnthropic:
		return "anthropic"
	case KindOllama:
		return "ollama"
	}
	return "openai"
}

// genAIOperation is the GenAI operation of an API.
func genAIOperation(api API) string {
	if api == APIEmbeddings {
		return "embeddings"
	}
	return "chat"
}

// traceServer starts the request's server span, a child of the caller's
// traceparent: r with the span in its context, and the span (nil when
// tracing is off).
func (s *Server) traceServer(r *http.Request, api API) (*http.Request, trace.Span) {
	if s.tracing == nil {
		return r, nil
	}
	ctx := s.tracing.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := s.tracing.t.Start(ctx, s.tracing.names[api], trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(s.tracing.serverAttrs[api]...))
	return r.WithContext(ctx), span
}

// traceRoute adds what the request asked for and the route it took.
func traceRoute(span trace.Span, route *Route, req *request) {
	if span == nil {
		return
	}
	span.SetAttributes(attrGenAIReqModel.String(req.model), attrRoute.String(route.Name), attrStream.Bool(req.stream))
}

// traceServerEnd ends the server span with what the answer's headers say.
func traceServerEnd(span trace.Span, w *statusWriter) {
	if span == nil {
		return
	}
	h := w.Header()
	attrs := make([]attribute.KeyValue, 0, 8)
	if w.status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(w.status))
		if w.status >= 500 {
			attrs = append(attrs, attrErrorType.String(strconv.Itoa(w.status)))
			span.SetStatus(codes.Error, http.StatusText(w.status))
		}
	}
	if v := h.Get(HeaderProvider); v != "" {
		attrs = append(attrs, attrProvider.String(v))
	}
	if v := h.Get(HeaderCache); v != "" {
		attrs = append(attrs, attrCache.String(v))
	}
	if v := h.Get(HeaderSkipped); v != "" {
		attrs = append(attrs, attrSkipped.String(v))
	}
	if v := h.Get(HeaderFallback); v != "" {
		attrs = append(attrs, attrFallback.Bool(v == "true"))
	}
	attrs = append(attrs, attrHedged.Bool(h.Get(HeaderHedged) == "true"))
	span.SetAttributes(attrs...)
	span.End()
}

// traceSkip records a provider passed over for what the request needs.
func (wk *walk) traceSkip(p *Provider, why string) {
	if wk.s.tracing == nil {
		return
	}
	trace.SpanFromContext(wk.ctx).AddEvent("fusebox.skipped", trace.WithAttributes(attrProvider.String(p.Name), attrSkipReason.String(why)))
}

// traceDenied records a provider whose breaker denied the request.
func (wk *walk) traceDenied(p *Provider, err error) {
	if wk.s.tracing == nil {
		return
	}
	attrs := []attribute.KeyValue{attrProvider.String(p.Name), attrDecision.String("denied")}
	var de *agentlib.DeniedError
	if errors.As(err, &de) {
		attrs = append(attrs, attrBreaker.String(de.Breaker), attrDenyReason.String(de.Code()))
	}
	trace.SpanFromContext(wk.ctx).AddEvent("fusebox.denied", trace.WithAttributes(attrs...))
}

// attemptTrace is an attempt's span and what it read of the provider's
// answer, kept in the attempt's context. Only the goroutine that reads
// the answer touches it (the attempt's, then the walk's for a stream it
// serves), one after the other.
type attemptTrace struct {
	span, server trace.Span
	answer       provider.AnswerUsage
	seenModel    bool
}

type attemptTraceKey struct{}

// traceStart starts an attempt's client span: parent with the span, for
// the attempt's context.
func (a *attempt) traceStart(parent context.Context) context.Context {
	s := a.s
	if s.tracing == nil {
		return parent
	}
	at := &attemptTrace{server: trace.SpanFromContext(parent)}
	op := genAIOperation(a.req.api)
	static := s.tracing.providers[a.p.Name]
	attrs := make([]attribute.KeyValue, 0, len(static)+7)
	attrs = append(attrs, static...)
	attrs = append(attrs, attrGenAIOperation.String(op), attrGenAIReqModel.String(a.model), attrBreaker.String(a.b.Name()),
		attrDecision.String("allowed"), attrFallback.Bool(a.index > 0), attrStream.Bool(a.req.stream))
	if a.hedge {
		// Set at the start: a hedge may answer and end before the walk
		// that started it runs again.
		attrs = append(attrs, attrHedged.Bool(true))
	}
	ctx, span := s.tracing.t.Start(parent, op+" "+a.model, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	at.span = span
	return context.WithValue(ctx, attemptTraceKey{}, at)
}

func (a *attempt) trace() *attemptTrace {
	at, _ := a.ctx.Value(attemptTraceKey{}).(*attemptTrace)
	return at
}

// traceInject sends the attempt's trace context to the provider.
func (a *attempt) traceInject(r *http.Request) {
	if a.s.tracing == nil {
		return
	}
	a.s.tracing.prop.Inject(a.ctx, propagation.HeaderCarrier(r.Header))
}

// traceAnswer reads the model and usage of a whole answer, as the
// provider sent it.
func (a *attempt) traceAnswer(body []byte) {
	if a.s.tracing == nil {
		return
	}
	if at := a.trace(); at != nil {
		at.answer.Read(body)
	}
}

// traceEvent reads the model and usage of a stream's events, as the
// provider sent them: the first event (the model), and those that carry a
// usage object (OpenAI's usage chunk, Anthropic's message_start and
// message_delta, the Responses API's response.completed).
func (a *attempt) traceEvent(ev provider.Event) {
	if a.s.tracing == nil {
		return
	}
	at := a.trace()
	if at == nil || (at.seenModel && !provider.HasUsageObject(ev.Data)) {
		return
	}
	if at.answer.Read(ev.Data) {
		at.seenModel = at.seenModel || at.answer.Model != ""
	}
}

// traceEnd ends the attempt's span with its result, before the outcome
// is recorded; a failure (or a probe's verdict) watches for the breaker
// transition it may cause, as an event on the request's span.
func (a *attempt) traceEnd(o agentlib.Outcome, result string) {
	if a.s.tracing == nil {
		return
	}
	at := a.trace()
	if at == nil {
		return
	}
	span := at.span
	attrs := []attribute.KeyValue{attrResult.String(result)}
	if a.resp != nil {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(a.resp.StatusCode))
	}
	attrs = usageAttrs(&at.answer, attrs)
	if et := errorType(result); et != "" {
		attrs = append(attrs, attrErrorType.String(et))
		desc := a.why
		if desc == "" {
			desc = result
		}
		span.SetStatus(codes.Error, desc)
	}
	span.SetAttributes(attrs...)
	span.End()
	// A failure may trip the breaker; a call ending while the breaker is
	// not closed may be its half-open probe, whose verdict moves it.
	if o.IsFailure() || !a.b.RetryAllowed() {
		a.b.TraceTransition(at.server)
	}
}

// errorType is the error.type of an attempt's result: "" for an answer
// served, or one that lost a hedged race after answering well.
func errorType(result string) string {
	switch result {
	case "200", "hedge_lost":
		return ""
	}
	return result
}

// usageAttrs adds the model and token counts the answer reported.
func usageAttrs(u *provider.AnswerUsage, attrs []attribute.KeyValue) []attribute.KeyValue {
	if u.Model != "" {
		attrs = append(attrs, attrGenAIRespModel.String(u.Model))
	}
	if u.HasInput {
		attrs = append(attrs, attrGenAIInput.Int64(u.Input))
	}
	if u.HasOutput {
		attrs = append(attrs, attrGenAIOutput.Int64(u.Output))
	}
	return attrs
}
