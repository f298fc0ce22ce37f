// Package coordinator is a coordinator's work, in two parts with one job
// each, over one statestore:
//
//   - Loop, the control loop: the timer that moves due breakers on (tick),
//     the canaries of half-open breakers, the watch of the change channel
//     (which feeds the event hub and tells the timer what moved), the
//     registry refresh (the registry's changes, from its log), and the
//     retention expiry of breakers nobody reports. It keeps a view of the
//     cluster's states, which /metrics serves. Run it once.
//   - Service, the request-scoped work behind the API: report ingest
//     (within the registration limits), traffic-mode permits, the admin
//     actions and the reads. Each call is one request's; any number run
//     at once.
//
// Coordinators are stateless: any number may run against one Redis, and
// killing one loses nothing. Every state change goes through statestore,
// and each transition this process makes is logged once. The package
// serves no HTTP (package api does) and never decides what counts as a
// failure (agents do).
//
// Coordinator, Loop and Service are safe for concurrent use (run the
// Loop once); Config, Breaker and Page are plain values.
package coordinator
