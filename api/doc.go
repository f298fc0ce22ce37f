// Package api is the coordinator's HTTP surface on echo v4: the route
// table, report ingest, health checks, and the one error handler that
// turns every error into application/problem+json.
//
// Handlers bind, validate, make one domain call and respond. There is no
// Redis and no breaker rule in this package: those live in statestore and
// coordinator, behind the small interfaces declared here.
//
// Server is safe for concurrent use (it is an http.Handler); Config,
// Problem and the views are plain values.
package api
