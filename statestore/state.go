package statestore

import (
	"time"

	"github.com/fusebox-io/fusebox/report"
)

// The breaker's states, overrides and snapshot are the agent protocol's
// (package report owns their wire format); statestore names them here
// for its callers.
type (
	State    = report.State
	Override = report.Override
	Snapshot = report.Snapshot
	// Applied is what Report did with a batch.
	Applied = report.Applied
	// ProbeVerdict is what Report did with a batch's probe verdict.
	ProbeVerdict = report.ProbeVerdict
)

const (
	StateClosed   = report.StateClosed
	StateOpen     = report.StateOpen
	StateHalfOpen = report.StateHalfOpen

	OverrideNone   = report.OverrideNone
	OverrideOpen   = report.OverrideOpen
	OverrideClosed = report.OverrideClosed

	AppliedOK        = report.AppliedOK
	AppliedDuplicate = report.AppliedDuplicate
	AppliedStale     = report.AppliedStale

	ProbeNone     = report.ProbeNone
	ProbeApplied  = report.ProbeApplied
	ProbeReleased = report.ProbeReleased
	ProbeRefused  = report.ProbeRefused
)

// retryInMS is how long until a breaker lets a probe through, from its
// stored deadlines (Redis milliseconds) and Redis's now: -1 when forced
// open with no ttl, 0 when not open. common.lua's retry_in says the same.
func retryInMS(st State, o Override, openUntil, overrideUntil, now int64) int64 {
	switch {
	case o == OverrideOpen && overrideUntil > 0:
		return max(overrideUntil-now, 0)
	case o == OverrideOpen:
		return -1
	case o == OverrideNone && st == StateOpen:
		return max(openUntil-now, 0)
	}
	return 0
}

// Transition is one change of a breaker's state, as journaled.
type Transition struct {
	Event        string    `json:"event"`
	Breaker      string    `json:"breaker"`
	OldState     string    `json:"old_state"`
	NewState     string    `json:"new_state"`
	Version      int64     `json:"version"`
	Reason       string    `json:"reason"`
	FailureCount int64     `json:"failure_count"`
	LastError    string    `json:"last_error"`
	Actor        string    `json:"actor"`
	Time         time.Time `json:"timestamp"`
	// OpenForMS is how long the breaker will stay open, for transitions
	// into open; 0 otherwise.
	OpenForMS int64 `json:"open_for_ms,omitempty"`
}

// Result is what a script did.
type Result struct {
	Snapshot
	// Transition is set when the call changed the state.
	Transition *Transition
	// Stale is set when a probe result was fenced out: the breaker had
	// already moved on to another epoch or state.
	Stale bool
	// Granted is set when a permit was granted.
	Granted bool
	// Gone is set when Delete or Expire forgot the breaker.
	Gone bool
	// FailureCount is the cluster-wide consecutive failure count.
	FailureCount int64
	// LastError is the last failure reported.
	LastError string
	// Applied says what Report did with the batch.
	Applied Applied
	// Probe says what Report did with the batch's probe verdict.
	Probe ProbeVerdict
	// LocalOpen > 0: the batch would have tripped the breaker but fewer
	// than the policy's MinAgents agents are failing; the reporting agent
	// should open its own breaker for this long.
	LocalOpen time.Duration
}
