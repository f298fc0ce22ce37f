//go:build integration

// Package integration proves fusebox's promises on real containers
// (testcontainers-go): Redis, two coordinators, three agent sidecars and
// the fake provider on private networks, with clients calling the
// sidecars, while providers fail, Redis pauses and restarts, coordinators
// die, sidecars are cut off, Sentinel fails over and Redis Cluster spreads
// the breakers. The images come from `make images`; nothing is pulled.
package integration
