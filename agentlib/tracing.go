package agentlib

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/fusebox-io/fusebox/statestore"
)

// Tracing. agentlib makes no spans of its own: where a call has a
// context (Execute), it describes the decision on the span already in
// that context, the caller's, when that span is recording, and adds a
// "fusebox.transition" event to it when the state the agent mirrors
// moves soon after the call's outcome (the report that carried it was
// answered with a trip, or the change arrived first by pub/sub). Allow
// and Begin have no context and stay as they are: no lookup, no
// allocation. A span that is not recording (no tracing, or not sampled)
// costs Execute one context lookup and nothing else.
//
// Span attributes (the last call's, when one span covers several):
// fusebox.breaker, fusebox.decision (allowed, denied), fusebox.deny_reason
// (DeniedError.Code), fusebox.outcome (success, failure, ignored). Each
// denial is also an event, "fusebox.denied", so that a span covering a
// denied call and its fallback keeps both.

// Span attribute keys and event names (the sidecar uses the same).
const (
	attrBreaker    = attribute.Key("fusebox.breaker")
	attrDecision   = attribute.Key("fusebox.decision")
	attrDenyReason = attribute.Key("fusebox.deny_reason")
	attrOutcome    = attribute.Key("fusebox.outcome")
	attrStateOld   = attribute.Key("fusebox.state.old")
	attrStateNew   = attribute.Key("fusebox.state.new")
	attrVersion    = attribute.Key("fusebox.version")
	attrLocal      = attribute.Key("fusebox.local")

	eventDenied     = "fusebox.denied"
	eventTransition = "fusebox.transition"
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

// traceDenied describes a denial on the span in ctx.
func traceDenied(ctx context.Context, b *Breaker, err error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	reason := "open"
	var de *DeniedError
	if errors.As(err, &de) {
		reason = de.Code()
	}
	attrs := []attribute.KeyValue{attrBreaker.String(b.name), attrDecision.String("denied"), attrDenyReason.String(reason)}
	span.SetAttributes(attrs...)
	span.AddEvent(eventDenied, trace.WithAttributes(attrs...))
}

// traceOutcome describes an allowed call and its outcome on the span in
// ctx, before the outcome is recorded, and watches for the transition it
// may cause.
func traceOutcome(ctx context.Context, b *Breaker, o Outcome) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	outcome := "ignored"
	switch o.kind {
	case kindSuccess:
		outcome = "success"
	case kindFailure:
		outcome = "failure"
	}
	span.SetAttributes(attrBreaker.String(b.name), attrDecision.String("allowed"), attrOutcome.String(outcome))
	if o.kind == kindFailure || o.kind == kindSuccess && b.State().Effective() == string(statestore.StateHalfOpen) {
		// A failure may trip the breaker; a success while half-open was
		// the probe, and may close it.
		b.TraceTransition(span)
	}
}

// TraceTransition adds a "fusebox.transition" event to span (attributes
// fusebox.breaker, fusebox.state.old, fusebox.state.new, fusebox.version,
// and fusebox.local for an open on this agent only) when the state this
// agent mirrors for b changes soon after the call: within the time a
// report takes to be answered (RequestTimeout for each coordinator, and
// one more). Call it just before recording the outcome of a call that may
// change the state (a failure, a probe), with the span the transition
// belongs to; an event that arrives after the span ended is dropped by
// the span. It does nothing when span is not recording or the agent is
// degraded (local breakers: the cluster's state does not move).
//
// The agent has no hook in its mirror for this: a watch polls the
// breaker's view (one atomic load) at a cadence that starts at 1 ms and
// slows to 64 ms, one goroutine per watched breaker, only while traced
// calls wait for an answer.
func (b *Breaker) TraceTransition(span trace.Span) {
	if span == nil || !span.IsRecording() || b.a.degraded.Load() {
		return
	}
	wait := b.a.cfg.RequestTimeout * time.Duration(len(b.a.coords)+1)
	v, ok := transitionWatches.Load(b)
	if !ok {
		v, _ = transitionWatches.LoadOrStore(b, &transitionWatch{b: b, kick: make(chan struct{}, 1)})
	}
	v.(*transitionWatch).add(span, b.view.Load(), time.Now().Add(wait))
}

// transitionWatches holds one watch per breaker that has been traced.
var transitionWatches sync.Map // *Breaker → *transitionWatch

type transitionWatch struct {
	b    *Breaker
	kick chan struct{} // a waiter was added: poll fast again

	mu      sync.Mutex
	waiters []transitionWaiter // guarded by mu
	running bool               // guarded by mu: the poll loop runs
}

type transitionWaiter struct {
	span  trace.Span
	from  mirrorState
	until time.Time
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

func (w *transitionWatch) add(span trace.Span, v *view, until time.Time) {
	w.mu.Lock()
	w.waiters = append(w.waiters, transitionWaiter{span: span, from: stateOf(v), until: until})
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		go w.run()
		return
	}
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
	var fired []transitionWaiter
	for {
		select {
		case <-t.C:
			delay = min(2*delay, slowest)
		case <-w.kick:
			delay = fastest
		}
		cur := stateOf(w.b.view.Load())
		now := time.Now()
		fired = fired[:0]
		w.mu.Lock()
		kept := w.waiters[:0]
		for _, x := range w.waiters {
			switch {
			case changed(x.from, cur):
				fired = append(fired, x)
			case now.Before(x.until):
				kept = append(kept, x)
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
			attrs := []attribute.KeyValue{attrBreaker.String(w.b.name), attrStateOld.String(x.from.effective()),
				attrStateNew.String(cur.effective()), attrVersion.Int64(cur.snap.Version)}
			if cur.local {
				attrs = append(attrs, attrLocal.Bool(true))
			}
			x.span.AddEvent(eventTransition, trace.WithAttributes(attrs...))
		}
		if done {
			return
		}
		t.Reset(delay)
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
