package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fusebox-io/fusebox/internal/logging"
)

// Protocols of OTEL_EXPORTER_OTLP_PROTOCOL that the Go exporters speak.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// ErrConfig is returned by New for an OTEL_* variable it cannot use.
var ErrConfig = errors.New("telemetry: invalid OTEL_* configuration")

// Options say what New needs. A zero field means the default on its
// comment.
type Options struct {
	// ServiceName is service.name unless OTEL_SERVICE_NAME (or
	// OTEL_RESOURCE_ATTRIBUTES) names the service. Default "fusebox".
	ServiceName string
	// Getenv reads the variables that decide whether tracing is on and
	// over which protocol. Default os.Getenv. The exporters and the SDK
	// read theirs from the process environment whatever Getenv is: pass
	// one that agrees with it.
	Getenv func(string) string
	// Logger receives the SDK's export errors, at warn. Default: discard.
	Logger *zerolog.Logger
}

// Tracing is a process's tracer provider and propagator.
type Tracing struct {
	// On is false when no variable asks for traces: Provider is then a
	// no-op and nothing is exported.
	On bool
	// Provider makes the process's tracers.
	Provider trace.TracerProvider
	// Propagator reads and writes W3C traceparent, tracestate and baggage.
	Propagator propagation.TextMapPropagator
	// Protocol is ProtocolHTTP or ProtocolGRPC; Endpoint is where spans
	// go, fit for a log line (no credentials, no headers). Both empty
	// when off.
	Protocol, Endpoint string

	sdk *sdktrace.TracerProvider
}

// settings is what the variables decide.
type settings struct {
	on       bool
	protocol string
	endpoint string // for the log line
}

// readSettings applies the spec's rules: OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turn traces off; otherwise they are on when
// OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint variable is set. Every
// problem is reported at once.
func readSettings(getenv func(string) string) (settings, error) {
	var s settings
	var problems []string
	if v := strings.TrimSpace(getenv("OTEL_SDK_DISABLED")); strings.EqualFold(v, "true") {
		return s, nil
	}
	exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	tracesEP := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
	baseEP := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	switch exporter {
	case "none":
		return s, nil
	case "otlp":
		s.on = true
	case "":
		s.on = tracesEP != "" || baseEP != ""
	default:
		problems = append(problems, fmt.Sprintf("OTEL_TRACES_EXPORTER=%q: this process exports otlp or none", exporter))
	}
	s.protocol = strings.ToLower(strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")))
	protoVar := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if s.protocol == "" {
		s.protocol, protoVar = strings.ToLower(strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	switch s.protocol {
	case "":
		s.protocol = ProtocolHTTP
	case ProtocolHTTP, ProtocolGRPC:
	default:
		problems = append(problems, fmt.Sprintf("%s=%q: want http/protobuf or grpc (the Go exporter has no http/json)", protoVar, s.protocol))
	}
	for _, ep := range []struct{ name, v string }{{"OTEL_EXPORTER_OTLP_ENDPOINT", baseEP}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tracesEP}} {
		if ep.v == "" {
			continue
		}
		if u, err := url.Parse(ep.v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The exporter would ignore it with a line on stderr and send
			// to localhost: say so before anything starts.
			problems = append(problems, fmt.Sprintf("%s: want a URL like http://collector:4318, got %s", ep.name, logging.RedactURL(ep.v)))
		}
	}
	if len(problems) > 0 {
		return settings{}, fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	if !s.on {
		return settings{}, nil
	}
	s.endpoint = endpointFor(s.protocol, tracesEP, baseEP)
	return s, nil
}

// endpointFor is where the exporter sends spans, as it computes it: the
// traces endpoint as is, or the base endpoint (with /v1/traces for
// HTTP), or the protocol's default.
func endpointFor(protocol, tracesEP, baseEP string) string {
	switch {
	case tracesEP != "":
		return logging.RedactURL(tracesEP)
	case baseEP != "" && protocol == ProtocolHTTP:
		return logging.RedactURL(strings.TrimRight(baseEP, "/") + "/v1/traces")
	case baseEP != "":
		return logging.RedactURL(baseEP)
	case protocol == ProtocolGRPC:
		return "localhost:4317 (default)"
	}
	return "http://localhost:4318/v1/traces (default)"
}

// New builds the process's tracing from the OTEL_* variables. Call
// Shutdown before the process exits: it flushes the spans not yet sent.
func New(ctx context.Context, o Options) (*Tracing, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ServiceName == "" {
		o.ServiceName = "fusebox"
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	s, err := readSettings(o.Getenv)
	if err != nil {
		return nil, err
	}
	if !s.on {
		return &Tracing{Provider: noop.NewTracerProvider(), Propagator: prop}, nil
	}
	var exp *otlptrace.Exporter
	if s.protocol == ProtocolGRPC {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: the OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(o.ServiceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: after the default, so they win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if o.Logger != nil {
		log := o.Logger.With().Str("dependency", "otlp").Str("endpoint", s.endpoint).Logger()
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn().Err(err).Msg("tracing: spans not exported")
		}))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{On: true, Provider: tp, Propagator: prop, Protocol: s.protocol, Endpoint: s.endpoint, sdk: tp}, nil
}

// Shutdown sends the spans not yet exported and stops the exporter,
// within ctx. It does nothing when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: flushing spans to %s: %w", t.Endpoint, err)
	}
	return nil
}

// ShutdownTimeout is how long a command waits for its last spans at
// exit.
const ShutdownTimeout = 5 * time.Second
