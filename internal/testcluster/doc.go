// Package testcluster runs a fusebox cluster inside a test: a real
// redis-server, and coordinators that serve the real HTTP API on loopback
// ports, so agents talk to them exactly as in production.
package testcluster
