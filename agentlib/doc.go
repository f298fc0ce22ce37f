// Package agentlib is the fusebox agent, embedded in each replica of an
// app. It decides whether a call may go to a provider from an in-memory
// mirror of the cluster's breaker state, with no I/O, no lock and no
// allocation on the hot path; it counts outcomes in atomic counters and
// reports them in batches to a coordinator, at once after a failure.
//
// The mirror follows Redis pub/sub, applies a change only when its version
// is newer, and resyncs on every (re)subscription and on a short timer, so
// a lost message or a restarted Redis leaves it stale for at most the
// resync interval. When Redis or the coordinator cannot be reached the
// agent runs degraded: a local breaker per name (gobreaker) with the same
// policy decides, and every denial says so.
//
// With an OpenTelemetry tracer provider (Config.TracerProvider, or the
// global one once an app set it), each Execute call is a span of its own
// (tracing.go); Allow and Begin never trace.
//
// It never writes breaker state itself (coordinators do, through
// statestore), never blocks a caller on I/O (except the one bounded
// permit request of a traffic-mode half-open window), and never panics on
// what it reads from the network.
package agentlib
