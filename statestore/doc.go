// Package statestore owns the cluster state of every breaker: its key
// layout in Redis, the Lua scripts that change it, the event journal and the
// pub/sub messages that announce each change.
//
// It is the only package that writes breaker state. Every read-modify-write
// is one atomic Lua script that touches one breaker's keys only (all share
// the hash tag {NAME}, so Redis Cluster works), and every script reads the
// time from Redis itself: no caller's clock is ever compared with a
// deadline written by someone else. Each transition bumps the breaker's
// version, appends an event to its capped stream and publishes the new
// state: on one channel, or on Redis Cluster on the breaker's own shard
// channel (SPUBLISH), which a Feed follows for the breakers it is given.
//
// It never decides what counts as a failure (agents do), never calls a
// provider, and never holds a lock. It keeps the registry of breakers
// within the registration limits, with an index by name (pages) and a log
// of its changes (readers that follow it), and forgets a breaker on an
// operator's delete or after the retention.
//
// Store and Feed are safe for concurrent use. Every other type here (Batch,
// Result, Policy, Detail, Event, EventCursor, Limits, LimitError) is a
// plain value.
package statestore
