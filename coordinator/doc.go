// Package coordinator holds the coordinator's own work: applying agents'
// outcome reports to the cluster state, and the timer loop that moves due
// breakers to half-open and ends expired overrides. Every state change
// goes through statestore; this package logs each transition it makes.
//
// Coordinators are stateless: any number may run against one Redis, and
// killing one loses nothing. It serves no HTTP (package api does) and
// never decides what counts as a failure (agents do).
package coordinator
