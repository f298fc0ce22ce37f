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
// state on one channel.
//
// It never decides what counts as a failure (agents do), never calls a
// provider, and never holds a lock.
package statestore
