package agentlib_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

// BenchmarkExecuteTracing is the cost of Execute's span, side by side:
// Allow and done (never traced), Execute with the global provider no app
// set (the default), with a no-op provider, with an SDK that samples
// nothing, and with an SDK that records every span (no exporter: the
// span's own cost).
func BenchmarkExecuteTracing(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{})
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	always := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() { _ = never.Shutdown(ctx); _ = always.Shutdown(ctx) })
	breakerWith := func(id string, tp trace.TracerProvider) *agentlib.Breaker {
		a := newAgent(b, c, id, func(cfg *agentlib.Config) { cfg.TracerProvider = tp })
		return breaker(b, a, "openai")
	}
	plain := breakerWith("bench-global", nil)
	quiet := breakerWith("bench-noop", noop.NewTracerProvider())
	unsampled := breakerWith("bench-never", never)
	recorded := breakerWith("bench-always", always)
	cases := []struct {
		name string
		call func()
	}{
		{"allow-done", func() { allowDone(plain, func() error { return nil }) }},
		{"execute-global-unset", func() { sink = plain.Execute(ctx, fn) }},
		{"execute-noop", func() { sink = quiet.Execute(ctx, fn) }},
		{"execute-sdk-not-sampled", func() { sink = unsampled.Execute(ctx, fn) }},
		{"execute-sdk-recording", func() { sink = recorded.Execute(ctx, fn) }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.call()
			}
		})
	}
}
