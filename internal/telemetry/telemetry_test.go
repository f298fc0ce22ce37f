package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/fusebox-io/fusebox/internal/telemetry"
	"github.com/fusebox-io/fusebox/internal/telemetry/otlptest"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestNew_DecidesFromTheStandardVariables(t *testing.T) {
	for _, tc := range []struct {
		name          string
		env           map[string]string
		on            bool
		protocol, end string
	}{
		{"nothing set: off", nil, false, "", ""},
		{"an endpoint: on, over HTTP, with /v1/traces", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true, telemetry.ProtocolHTTP, "http://collector:4318/v1/traces"},
		{"the traces endpoint is used as is", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/otlp/traces", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318"}, true, telemetry.ProtocolHTTP, "https://collector/otlp/traces"},
		{"exporter otlp alone: the default endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, telemetry.ProtocolHTTP, "http://localhost:4318/v1/traces (default)"},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, telemetry.ProtocolGRPC, "http://collector:4317"},
		{"the traces protocol beats the general one", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, true, telemetry.ProtocolGRPC, "http://c:4317"},
		{"exporter none wins over an endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false, "", ""},
		{"the SDK disabled wins over everything", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false, "", ""},
		{"an endpoint's password is not shown", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:hunter2@collector"}, true, telemetry.ProtocolHTTP, "https://user:xxxxx@collector/v1/traces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := telemetry.New(context.Background(), telemetry.Options{ServiceName: "test", Getenv: envOf(tc.env)})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				// The span below goes to the process's endpoint (none:
				// the default, where nobody listens): do not wait for it.
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				_ = tr.Shutdown(ctx)
			}()
			if tr.On != tc.on || tr.Protocol != tc.protocol || tr.Endpoint != tc.end {
				t.Fatalf("on=%v protocol=%q endpoint=%q, want %v %q %q", tr.On, tr.Protocol, tr.Endpoint, tc.on, tc.protocol, tc.end)
			}
			_, span := tr.Provider.Tracer("t").Start(context.Background(), "x")
			if span.IsRecording() != tc.on {
				t.Fatalf("a span records: %v, want %v", span.IsRecording(), tc.on)
			}
			span.End()
		})
	}
}

func TestNew_ReportsEveryProblemAtOnce(t *testing.T) {
	_, err := telemetry.New(context.Background(), telemetry.Options{Getenv: envOf(map[string]string{
		"OTEL_TRACES_EXPORTER":               "zipkin",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/json",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318",
	})})
	if !errors.Is(err, telemetry.ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	for _, want := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
}

// exportOne makes one span through a Tracing built from the process
// environment, and shuts it down (which flushes).
func exportOne(t *testing.T) *telemetry.Tracing {
	t.Helper()
	tr, err := telemetry.New(context.Background(), telemetry.Options{ServiceName: "fusebox-test"})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.On {
		t.Fatal("tracing is off with an endpoint set")
	}
	_, span := tr.Provider.Tracer("t").Start(context.Background(), "one", trace.WithSpanKind(trace.SpanKindServer))
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return tr
}

func checkOne(t *testing.T, r *otlptest.Receiver) {
	t.Helper()
	spans := r.Spans()
	if len(spans) != 1 || spans[0].Name != "one" || spans[0].Kind.String() != "SPAN_KIND_SERVER" {
		t.Fatalf("received:\n%s", otlptest.Dump(spans))
	}
	res := spans[0].Resource
	if res["service.name"] != "fusebox-test" || res["deployment.environment.name"] != "ci" || res["telemetry.sdk.language"] != "go" {
		t.Fatalf("resource: %v", res)
	}
}

func TestNew_ExportsOverHTTPAndFlushesAtShutdown(t *testing.T) {
	r := otlptest.StartHTTP(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.URL)
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci")
	tr := exportOne(t) // the batch's 5 s delay has not passed: only Shutdown sent it
	if tr.Protocol != telemetry.ProtocolHTTP || tr.Endpoint != r.URL+"/v1/traces" {
		t.Fatalf("protocol %q endpoint %q", tr.Protocol, tr.Endpoint)
	}
	checkOne(t, r)
}

func TestNew_ExportsOverGRPC(t *testing.T) {
	r := otlptest.StartGRPC(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci")
	if tr := exportOne(t); tr.Protocol != telemetry.ProtocolGRPC {
		t.Fatalf("protocol %q", tr.Protocol)
	}
	checkOne(t, r)
}

func TestNew_ServiceNameFromTheEnvironmentWins(t *testing.T) {
	r := otlptest.StartHTTP(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.URL)
	t.Setenv("OTEL_SERVICE_NAME", "checkout-sidecar")
	exportOne(t)
	if spans := r.Spans(); len(spans) != 1 || spans[0].Resource["service.name"] != "checkout-sidecar" {
		t.Fatalf("received:\n%s", otlptest.Dump(spans))
	}
}

func TestNew_ExportErrorsGoToTheLogWithoutHeaders(t *testing.T) {
	// A port nobody listens on.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20otlp-secret-token")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
	buf := &syncBuffer{}
	log := zerolog.New(buf)
	tr, err := telemetry.New(context.Background(), telemetry.Options{Logger: &log})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Provider.Tracer("t").Start(context.Background(), "lost")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = tr.Shutdown(ctx)
	out := buf.String()
	if !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, "spans not exported") || !strings.Contains(out, `"endpoint":"http://127.0.0.1:1/v1/traces"`) {
		t.Fatalf("the failed export was not logged as a warning naming the endpoint: %q", out)
	}
	if strings.Contains(out, "otlp-secret-token") {
		t.Fatalf("a header reached the log: %s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTracing_PropagatesTraceContextAndBaggage(t *testing.T) {
	tr, err := telemetry.New(context.Background(), telemetry.Options{Getenv: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	in := http.Header{}
	in.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	in.Set("baggage", "tenant=acme")
	ctx := tr.Propagator.Extract(context.Background(), propagation.HeaderCarrier(in))
	if sc := trace.SpanContextFromContext(ctx); sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !sc.IsRemote() {
		t.Fatalf("extracted %v", sc)
	}
	if v := baggage.FromContext(ctx).Member("tenant").Value(); v != "acme" {
		t.Fatalf("baggage tenant = %q", v)
	}
	out := http.Header{}
	tr.Propagator.Inject(ctx, propagation.HeaderCarrier(out))
	if out.Get("traceparent") != in.Get("traceparent") || out.Get("baggage") != "tenant=acme" {
		t.Fatalf("injected %v", out)
	}
}
