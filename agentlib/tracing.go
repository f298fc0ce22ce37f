package agentlib

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fusebox-io/fusebox/statestore"
)

// Tracing. Execute (and the generic Execute) makes each call a span of
// its own through Config.TracerProvider: "fusebox <breaker>", kind
// internal, a child of the span in the call's context, and fn gets a
// context holding it, so that the app's own spans of the call (its HTTP
// client's) are its children and its traceparent is the one sent.
//
// Attributes: fusebox.breaker; fusebox.decision, allowed or denied;
// fusebox.deny_reason when denied (DeniedError.Code: open, half_open,
// forced_open, local, degraded); fusebox.outcome when allowed (success,
// failure, ignored: Config.Classify's verdict); error.type when the call
// returned an error (semconv.ErrorType: "fusebox.denied" for a denial,
// the error's Go type otherwise) or panicked ("panic", with an
// "exception" event); the span's status is Error then.
//
// A breaker transition the call caused is a "fusebox.transition" event
// on its span (fusebox.state.old, fusebox.state.new, fusebox.version,
// fusebox.local for an open on this agent only): a failure that tripped
// the breaker, a probe that closed it. The report carrying the outcome
// is answered after Execute returned, so the span of a failure or a
// probe is ended later, when the agent's mirror moved or when the answer
// can no longer bring a change (RequestTimeout per coordinator, and
// one), with the call's own end time: it is exported that much later.
//
// Allow and Begin have no context and never trace: no lookup, no
// allocation. With the default provider and no app that set one,
// Execute costs one atomic load more than without tracing; with a
// provider that does not record (not sampled), a span start.

// Span names, attribute keys and event names (the sidecar uses the same).
const (
	attrBreaker    = attribute.Key("fusebox.breaker")
	attrDecision   = attribute.Key("fusebox.decision")
	attrDenyReason = attribute.Key("fusebox.deny_reason")
	attrOutcome    = attribute.Key("fusebox.outcome")
	attrStateOld   = attribute.Key("fusebox.state.old")
	attrStateNew   = attribute.Key("fusebox.state.new")
	attrVersion    = attribute.Key("fusebox.version")
	attrLocal      = attribute.Key("fusebox.local")

	eventTransition = "fusebox.transition"

	// ErrorTypeDenied is the error.type of a call a breaker denied.
	ErrorTypeDenied = "fusebox.denied"
	// ErrorTypePanic is the error.type of a call whose function panicked.
	ErrorTypePanic = "panic"

	tracerName = "github.com/fusebox-io/fusebox/agentlib"
)

// Code is the denial's reason as one word, for a span attribute, a
// metric label or a header: forced_open, degraded (the agent's local
// breaker decided), local (open on this agent only), half_open or open.
func (e *DeniedError) Code() string {
	switch {
	case errors.Is(e.Reason, ErrForcedOpen):
		return "forced_open"
	case e.Degraded:
		return "degraded"
	case e.Local:
		return "local"
	case errors.Is(e.Reason, ErrHalfOpen):
		return "half_open"
	}
	return "open"
}

// ErrorType is the denial's error.type, "fusebox.denied", for
// semconv.ErrorType: an app's own span of a call that a breaker denied
// gets the same value as agentlib's.
func (e *DeniedError) ErrorType() string { return ErrorTypeDenied }

// unsetGlobal is OpenTelemetry's global tracer provider as the process
// started with it: it delegates to the one an app sets with
// otel.SetTracerProvider, and until then makes spans that record
// nothing. While otel.GetTracerProvider() still returns it, Execute
// starts no span at all. nil when another package set a provider before
// this one was initialised, or OTel's global is not the type this
// expects: Execute then always asks the provider.
var unsetGlobal = func() trace.TracerProvider {
	tp := otel.GetTracerProvider()
	if fmt.Sprintf("%T", tp) == "*global.tracerProvider" {
		return tp
	}
	return nil
}()

// newTracer is the tracer of Config.TracerProvider, nil for a no-op
// provider; global says it is the global provider's.
func newTracer(tp trace.TracerProvider) (t trace.Tracer, global bool) {
	if tp == nil {
		tp, global = otel.GetTracerProvider(), true
	}
	if _, ok := tp.(noop.TracerProvider); ok {
		return nil, false
	}
	return tp.Tracer(tracerName), global
}

// spanInfo is what a breaker's spans start with, built once.
type spanInfo struct {
	name string
	opts []trace.SpanStartOption
}

func newSpanInfo(breaker string) spanInfo {
	return spanInfo{name: "fusebox " + breaker, opts: []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attrBreaker.String(breaker)),
	}}
}

// startSpan starts a call's span. It returns ctx as it is and a nil span
// when tracing is off, and a nil span (with the context holding the
// started one, for propagation) when the span does not record.
func (b *Breaker) startSpan(ctx context.Context) (context.Context, trace.Span) {
	a := b.a
	if a.tracer == nil || a.global && unsetGlobal != nil && otel.GetTracerProvider() == unsetGlobal {
		return ctx, nil
	}
	ctx, span := a.tracer.Start(ctx, b.span.name, b.span.opts...)
	if !span.IsRecording() {
		return ctx, nil
	}
	return ctx, span
}

// endDenied ends the span of a call the breaker denied.
func (b *Breaker) endDenied(span trace.Span, err error) {
	if span == nil {
		return
	}
	reason := "open"
	var de *DeniedError
	if errors.As(err, &de) {
		reason = de.Code()
	}
	span.SetAttributes(attrDecision.String("denied"), attrDenyReason.String(reason), semconv.ErrorType(err))
	span.SetStatus(codes.Error, "denied by the breaker: "+reason)
	span.End()
}

// endCall describes an allowed call and its outcome on its span, before
// the outcome is recorded, and ends the span: at once, or once the
// transition the outcome may cause was seen or can no longer come.
func (b *Breaker) endCall(span trace.Span, o Outcome, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attrDecision.String("allowed"), attrOutcome.String(o.name()))
	if err != nil {
		span.SetAttributes(semconv.ErrorType(err))
		span.SetStatus(codes.Error, clipError(err.Error()))
	}
	b.end(span, o)
}

// endPanic is endCall for a function that panicked with r.
func (b *Breaker) endPanic(span trace.Span, o Outcome, r any) {
	if span == nil {
		return
	}
	msg := clipError(fmt.Sprint(r))
	span.AddEvent("exception", trace.WithAttributes(
		semconv.ExceptionTypeKey.String(fmt.Sprintf("%T", r)), semconv.ExceptionMessage(msg),
		semconv.ExceptionStacktrace(string(debug.Stack()))))
	span.SetAttributes(attrDecision.String("allowed"), attrOutcome.String(o.name()), semconv.ErrorTypeKey.String(ErrorTypePanic))
	span.SetStatus(codes.Error, "panic: "+msg)
	b.end(span, o)
}

func (b *Breaker) end(span trace.Span, o Outcome) {
	at := time.Now()
	// A failure may trip the breaker; a success while half-open was the
	// probe, and may close it.
	if o.kind == kindFailure || o.kind == kindSuccess && b.State().Effective() == string(statestore.StateHalfOpen) {
		if b.watchTransition(span, true, at) {
			return
		}
	}
	span.End(trace.WithTimestamp(at))
}

// name is the outcome as fusebox.outcome says it.
func (o Outcome) name() string {
	switch o.kind {
	case kindSuccess:
		return "success"
	case kindFailure:
		return "failure"
	}
	return "ignored"
}

// TraceTransition adds a "fusebox.transition" event to span (attributes
// fusebox.breaker, fusebox.state.old, fusebox.state.new, fusebox.version,
// and fusebox.local for an open on this agent only) when the state this
// agent mirrors for b changes soon after the call: within the time a
// report takes to be answered (RequestTimeout for each coordinator, and
// one more). Call it just before recording the outcome of a call that may
// change the state (a failure, a probe), with the span the transition
// belongs to (Execute does, on its own span); an event that arrives after
// the span ended is dropped by the span. It does nothing when span is not
// recording or the agent is degraded (local breakers: the cluster's state
// does not move).
//
// The mirror pokes the breaker's watch when it takes a newer cluster
// state, so such a transition is seen at once; the watch also polls the
// view (one atomic load) at a cadence that starts at 1 ms and slows to
// 64 ms, for this agent's own opens and closes, one goroutine per
// watched breaker, only while traced calls wait for an answer.
func (b *Breaker) TraceTransition(span trace.Span) {
	if span == nil {
		return
	}
	b.watchTransition(span, false, time.Time{})
}

// watchTransition watches for the transition of a call just ended; with
// end, the watch ends span (at endAt) when it is done with it. It
// reports whether it watches: not when span does not record or the agent
// is degraded.
func (b *Breaker) watchTransition(span trace.Span, end bool, endAt time.Time) bool {
	if !span.IsRecording() || b.a.degraded.Load() {
		return false
	}
	wait := b.a.cfg.RequestTimeout * time.Duration(len(b.a.coords)+1)
	w := b.watch.Load()
	if w == nil {
		b.watch.CompareAndSwap(nil, &transitionWatch{b: b, kick: make(chan struct{}, 1)})
		w = b.watch.Load()
	}
	w.add(transitionWaiter{span: span, from: stateOf(b.view.Load()), until: time.Now().Add(wait), end: end, endAt: endAt})
	return true
}

// transitionWatch is a breaker's traced calls waiting for a transition.
type transitionWatch struct {
	b    *Breaker
	kick chan struct{} // a waiter was added, or the mirror moved: look now

	mu      sync.Mutex
	waiters []transitionWaiter // guarded by mu
	running bool               // guarded by mu: the poll loop runs
}

type transitionWaiter struct {
	span  trace.Span
	from  mirrorState
	until time.Time
	end   bool      // end span when done with it...
	endAt time.Time // ...at this time, the call's end
}

// mirrorState is what a transition event compares: the state callers see,
// and whether it is this agent's own open.
type mirrorState struct {
	snap  statestore.Snapshot
	local bool
}

func stateOf(v *view) mirrorState {
	return mirrorState{snap: v.snap, local: v.deny != nil && v.deny.Local}
}

func (m mirrorState) effective() string { return m.snap.Effective() }

func (w *transitionWatch) add(x transitionWaiter) {
	w.mu.Lock()
	w.waiters = append(w.waiters, x)
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		go w.run()
		return
	}
	w.poke()
}

// poke makes the poll loop look at once (and fast again).
func (w *transitionWatch) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run polls the breaker's view until no waiter is left.
func (w *transitionWatch) run() {
	const fastest, slowest = time.Millisecond, 64 * time.Millisecond
	delay := fastest
	t := time.NewTimer(delay)
	defer t.Stop()
	var fired, expired []transitionWaiter
	for {
		select {
		case <-t.C:
			delay = min(2*delay, slowest)
		case <-w.kick:
			delay = fastest
		}
		cur := stateOf(w.b.view.Load())
		now := time.Now()
		fired, expired = fired[:0], expired[:0]
		w.mu.Lock()
		kept := w.waiters[:0]
		for _, x := range w.waiters {
			switch {
			case changed(x.from, cur):
				fired = append(fired, x)
			case now.Before(x.until):
				kept = append(kept, x)
			default:
				expired = append(expired, x)
			}
		}
		clear(w.waiters[len(kept):])
		w.waiters = kept
		done := len(kept) == 0
		if done {
			w.running = false
		}
		w.mu.Unlock()
		// The spans' code runs outside the lock.
		for _, x := range fired {
			w.fire(x, cur)
		}
		for _, x := range expired {
			if x.end {
				x.span.End(trace.WithTimestamp(x.endAt))
			}
		}
		clear(fired)
		clear(expired)
		if done {
			return
		}
		t.Reset(delay)
	}
}

// fire adds the transition event to x's span, and ends it if the watch
// holds it.
func (w *transitionWatch) fire(x transitionWaiter, cur mirrorState) {
	attrs := []attribute.KeyValue{attrBreaker.String(w.b.name), attrStateOld.String(x.from.effective()),
		attrStateNew.String(cur.effective()), attrVersion.Int64(cur.snap.Version)}
	if cur.local {
		attrs = append(attrs, attrLocal.Bool(true))
	}
	x.span.AddEvent(eventTransition, trace.WithAttributes(attrs...))
	if x.end {
		x.span.End(trace.WithTimestamp(x.endAt))
	}
}

// endHeldSpans ends the spans of this agent's calls still held for a
// transition, with the event when the last report's answer brought one:
// once the agent is closed its mirror no longer moves, and an app that
// shuts its tracer provider down next must not lose them.
func (a *Agent) endHeldSpans() {
	for _, b := range a.breakerList() {
		w := b.watch.Swap(nil)
		if w == nil {
			continue
		}
		w.mu.Lock()
		held := w.waiters
		w.waiters = nil
		w.mu.Unlock()
		cur := stateOf(b.view.Load())
		for _, x := range held {
			switch {
			case changed(x.from, cur):
				w.fire(x, cur)
			case x.end:
				x.span.End(trace.WithTimestamp(x.endAt))
			}
		}
	}
}

// changed reports a transition from a to b: a newer cluster state that
// callers see differently, or this agent's own open beginning or ending.
func changed(a, b mirrorState) bool {
	if a.local != b.local {
		return true
	}
	return b.snap.Newer(a.snap) && a.effective() != b.effective()
}
