package agentlib_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/telemetry/otlptest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// exportingProvider is an app's OpenTelemetry SDK exporting over
// OTLP/HTTP to a receiver the test started, in batches every 20 ms.
func exportingProvider(t *testing.T) (*sdktrace.TracerProvider, *otlptest.Receiver) {
	t.Helper()
	otlp := otlptest.StartHTTP(t)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(otlp.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(20*time.Millisecond)))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, otlp
}

// upstreamError is what the app's provider call fails with.
type upstreamError struct{ status int }

func (e *upstreamError) Error() string { return fmt.Sprintf("HTTP %d", e.status) }

// spanNamed waits for the spans called name and returns the newest.
func spanNamed(t *testing.T, otlp *otlptest.Receiver, name string, n int) otlptest.Span {
	t.Helper()
	var found []otlptest.Span
	otlp.WaitFor(t, 5*time.Second, fmt.Sprintf("%d spans named %q", n, name), func(spans []otlptest.Span) bool {
		found = found[:0]
		for _, s := range spans {
			if s.Name == name {
				found = append(found, s)
			}
		}
		return len(found) >= n
	})
	return found[n-1]
}

func wantAttrs(t *testing.T, s otlptest.Span, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if v == nil {
			if got, ok := s.Attrs[k]; ok {
				t.Fatalf("span %s has %s=%v, want none:\n%s", s.Name, k, got, otlptest.Dump([]otlptest.Span{s}))
			}
			continue
		}
		if s.Attrs[k] != v {
			t.Fatalf("span %s: %s=%v, want %v:\n%s", s.Name, k, s.Attrs[k], v, otlptest.Dump([]otlptest.Span{s}))
		}
	}
}

// TestExecute_Tracing: with a TracerProvider, each Execute is a span of
// its own that arrives at a real OTLP/HTTP receiver: a child of the
// caller's span and the parent of fn's, describing the decision and the
// outcome, with the transition the call caused as an event.
func TestExecute_Tracing(t *testing.T) {
	tp, otlp := exportingProvider(t)
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "breakers:\n  traced:\n    consecutive_failures: 3\n    open_timeout: 10m\n"})
	a := newAgent(t, c, "traced-agent", func(cfg *agentlib.Config) { cfg.TracerProvider = tp })
	b := breaker(t, a, "traced")
	app := tp.Tracer("app")

	t.Run("an allowed call is a child of the caller's span and the parent of fn's", func(t *testing.T) {
		ctx, parent := app.Start(context.Background(), "handle request")
		var inFn trace.SpanContext
		err := b.Execute(ctx, func(ctx context.Context) error {
			inFn = trace.SpanContextFromContext(ctx)
			_, call := app.Start(ctx, "POST /v1/chat/completions")
			call.End()
			return nil
		})
		parent.End()
		if err != nil {
			t.Fatal(err)
		}
		s := spanNamed(t, otlp, "fusebox traced", 1)
		if s.ParentID != parent.SpanContext().SpanID().String() || s.TraceID != parent.SpanContext().TraceID().String() {
			t.Fatalf("the call's span is not the caller's child:\n%s", otlptest.Dump(otlp.Spans()))
		}
		if inFn.SpanID().String() != s.SpanID || s.Kind != tracepb.Span_SPAN_KIND_INTERNAL {
			t.Fatalf("fn's context holds span %s, want the call's %s (kind %s)", inFn.SpanID(), s.SpanID, s.Kind)
		}
		call := spanNamed(t, otlp, "POST /v1/chat/completions", 1)
		if call.ParentID != s.SpanID {
			t.Fatalf("fn's own span is not the call's child:\n%s", otlptest.Dump(otlp.Spans()))
		}
		wantAttrs(t, s, map[string]any{"fusebox.breaker": "traced", "fusebox.decision": "allowed", "fusebox.outcome": "success", "error.type": nil})
		if s.StatusCode != tracepb.Status_STATUS_CODE_UNSET || s.Scope != "github.com/fusebox-io/fusebox/agentlib" {
			t.Fatalf("status %s, scope %q", s.StatusCode, s.Scope)
		}
	})

	t.Run("failures that trip the breaker: error.type, an error status, the transition as an event", func(t *testing.T) {
		for range 3 {
			err := b.Execute(context.Background(), func(context.Context) error { return &upstreamError{503} })
			if !errors.As(err, new(*upstreamError)) {
				t.Fatalf("Execute returned %v, want fn's error", err)
			}
		}
		testcluster.Eventually(t, 3*time.Second, "the breaker open", func() bool { return b.State().State == statestore.StateOpen })
		s := spanNamed(t, otlp, "fusebox traced", 4) // the third failure
		wantAttrs(t, s, map[string]any{"fusebox.decision": "allowed", "fusebox.outcome": "failure", "error.type": "*agentlib_test.upstreamError"})
		if s.StatusCode != tracepb.Status_STATUS_CODE_ERROR || s.StatusMessage != "HTTP 503" {
			t.Fatalf("status %s %q", s.StatusCode, s.StatusMessage)
		}
		evs := s.EventsNamed("fusebox.transition")
		if len(evs) != 1 || evs[0].Attrs["fusebox.state.old"] != "closed" || evs[0].Attrs["fusebox.state.new"] != "open" || evs[0].Attrs["fusebox.breaker"] != "traced" {
			t.Fatalf("the trip is not on the call that caused it:\n%s", otlptest.Dump([]otlptest.Span{s}))
		}
		// The span was held for the answer, and ends when the call did.
		if d := s.End.Sub(s.Start); d < 0 || d > 100*time.Millisecond {
			t.Fatalf("the span lasts %s: it should end when fn returned", d)
		}
	})

	t.Run("a denied call: the decision, why, error.type, and fn never runs", func(t *testing.T) {
		ran := false
		err := b.Execute(context.Background(), func(context.Context) error { ran = true; return nil })
		if !errors.Is(err, agentlib.ErrOpen) || ran {
			t.Fatalf("Execute on an open breaker: %v, fn ran %v", err, ran)
		}
		s := spanNamed(t, otlp, "fusebox traced", 5)
		wantAttrs(t, s, map[string]any{"fusebox.decision": "denied", "fusebox.deny_reason": "open", "error.type": agentlib.ErrorTypeDenied, "fusebox.outcome": nil})
		if s.StatusCode != tracepb.Status_STATUS_CODE_ERROR || !strings.Contains(s.StatusMessage, "open") {
			t.Fatalf("status %s %q", s.StatusCode, s.StatusMessage)
		}
	})

	t.Run("a panic: a failure, error.type panic, an exception event, and the panic goes on", func(t *testing.T) {
		p := breaker(t, a, "panicky")
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Fatalf("recovered %v, want the panic to go on", r)
				}
			}()
			_ = p.Execute(context.Background(), func(context.Context) error { panic("boom") })
		}()
		s := spanNamed(t, otlp, "fusebox panicky", 1)
		wantAttrs(t, s, map[string]any{"fusebox.decision": "allowed", "fusebox.outcome": "failure", "error.type": agentlib.ErrorTypePanic})
		ex := s.EventsNamed("exception")
		if len(ex) != 1 || ex[0].Attrs["exception.message"] != "boom" || ex[0].Attrs["exception.type"] != "string" ||
			!strings.Contains(fmt.Sprint(ex[0].Attrs["exception.stacktrace"]), "tracing_test.go") {
			t.Fatalf("exception event %v", ex)
		}
		if s.StatusCode != tracepb.Status_STATUS_CODE_ERROR || s.StatusMessage != "panic: boom" {
			t.Fatalf("status %s %q", s.StatusCode, s.StatusMessage)
		}
	})

	t.Run("the generic Execute makes the same span", func(t *testing.T) {
		g := breaker(t, a, "generic")
		v, err := agentlib.Execute(context.Background(), g, func(ctx context.Context) (int, error) {
			if !trace.SpanFromContext(ctx).IsRecording() {
				return 0, errors.New("fn's context holds no recording span")
			}
			return 42, nil
		})
		if v != 42 || err != nil {
			t.Fatalf("Execute: %v %v", v, err)
		}
		s := spanNamed(t, otlp, "fusebox generic", 1)
		wantAttrs(t, s, map[string]any{"fusebox.breaker": "generic", "fusebox.decision": "allowed", "fusebox.outcome": "success"})
	})
	if p := otlp.Problems(); len(p) > 0 {
		t.Fatalf("the receiver refused requests: %v", p)
	}
}

// TestExecute_CloseEndsTheHeldSpans: the span of a failure waits for
// the transition it may cause (here up to 10 s: a slow RequestTimeout);
// Close ends it at once, with its own end time, so that an app that shuts
// its tracer provider down next loses nothing.
func TestExecute_CloseEndsTheHeldSpans(t *testing.T) {
	tp, otlp := exportingProvider(t)
	c := testcluster.Start(t, testcluster.Options{})
	a := newAgent(t, c, "closing-agent", func(cfg *agentlib.Config) {
		cfg.TracerProvider = tp
		cfg.RequestTimeout = 5 * time.Second
	})
	b := breaker(t, a, "held")
	_ = b.Execute(context.Background(), func(context.Context) error { return &upstreamError{503} })
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range otlp.Spans() {
		if s.Name == "fusebox held" {
			t.Fatal("the failure's span was not held for its transition")
		}
	}
	closed := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := spanNamed(t, otlp, "fusebox held", 1)
	if waited := time.Since(closed); waited > 2*time.Second {
		t.Fatalf("the span arrived %s after Close", waited)
	}
	wantAttrs(t, s, map[string]any{"fusebox.outcome": "failure", "error.type": "*agentlib_test.upstreamError"})
	if d := s.End.Sub(s.Start); d < 0 || d > 100*time.Millisecond {
		t.Fatalf("the span lasts %s: it should end when fn returned", d)
	}
}

// TestExecute_GlobalTracerProvider: with no TracerProvider, Execute
// follows OpenTelemetry's global provider: while no app set one it
// starts no span and allocates nothing; once the app sets one, even
// after the agent was made, its calls are spans. The global provider
// can be set once per process: the test runs in a fresh one.
func TestExecute_GlobalTracerProvider(t *testing.T) {
	const child = "FUSEBOX_TEST_GLOBAL_TRACER_PROVIDER"
	if os.Getenv(child) != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestExecute_GlobalTracerProvider$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), child+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestExecute_GlobalTracerProvider") {
			t.Fatalf("in a fresh process: %v\n%s", err, out)
		}
		return
	}
	unset := agentlib.UnsetGlobalTracerProviderForTest()
	if unset == nil || otel.GetTracerProvider() != unset {
		t.Fatalf("OTel's global provider was set before this test (%T): it cannot check the unset case", otel.GetTracerProvider())
	}
	c := testcluster.Start(t, testcluster.Options{})
	a := newAgent(t, c, "global-agent")
	b := breaker(t, a, "global")
	ctx := context.Background()
	fn := func(ctx context.Context) error {
		if trace.SpanFromContext(ctx).IsRecording() {
			return errors.New("a recording span with no provider set")
		}
		return nil
	}
	if err := b.Execute(ctx, fn); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = b.Execute(ctx, fn) }); n != 0 {
		t.Fatalf("Execute with no provider set: %v allocs/op, want 0", n)
	}

	tp, otlp := exportingProvider(t)
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	if err := b.Execute(ctx, func(ctx context.Context) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return errors.New("no recording span after the app set a provider")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s := spanNamed(t, otlp, "fusebox global", 1)
	wantAttrs(t, s, map[string]any{"fusebox.breaker": "global", "fusebox.decision": "allowed", "fusebox.outcome": "success"})
}

// TestExecute_NoopTracerProvider: an explicit no-op provider turns
// Execute's spans off, at no cost.
func TestExecute_NoopTracerProvider(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	a := newAgent(t, c, "noop-agent", func(cfg *agentlib.Config) { cfg.TracerProvider = noop.NewTracerProvider() })
	b := breaker(t, a, "quiet")
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	if n := testing.AllocsPerRun(1000, func() { _ = b.Execute(ctx, fn) }); n != 0 {
		t.Fatalf("Execute with a no-op provider: %v allocs/op, want 0", n)
	}
}
