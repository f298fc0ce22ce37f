// Package telemetry builds the OpenTelemetry tracer provider a fusebox
// process exports its traces with, from the standard OTEL_* variables:
// OTLP over HTTP (http/protobuf, the default) or gRPC, W3C tracecontext
// and baggage propagation, the service's resource. With no exporter and
// no endpoint variable set, tracing is off: New returns a Tracing whose
// On is false and whose provider is a no-op, and nothing is started.
//
// It owns the decision and the log line that says where spans go. The
// exporters read the endpoint, headers, TLS, timeout and compression
// variables themselves (OTEL_EXPORTER_OTLP_* and their _TRACES_ forms),
// the SDK reads the sampler (OTEL_TRACES_SAMPLER), the batch processor's
// variables (OTEL_BSP_*) and the resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES), all from the process environment.
//
// It never logs a header (OTEL_EXPORTER_OTLP_HEADERS holds tokens) nor
// an endpoint's credentials, and never sets the OTel globals except the
// error handler, which routes the SDK's export errors into the logger.
package telemetry
