// Package report owns the wire format of the agent protocol
// (docs/protocol.md): the outcome report agents send to coordinators
// (POST /v1/reports), the answer they get, the breaker snapshot both
// carry, the half-open permit request and answer (POST /v1/permits), and
// the decoding of the change messages published on the Redis channel.
// It defines the JSON shapes, their limits, strict decoding and
// validation.
//
// It is the protocol's leaf: it imports nothing else of fusebox.
// statestore names its states with these types, coordinator converts a
// report into statestore's batches, agents encode reports and decode
// answers. It does no I/O. Every type here is a plain value: safe to
// share between goroutines as long as nobody mutates it.
package report
