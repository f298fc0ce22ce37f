package statestore

import (
	"time"
)

// State is where a breaker is in its state machine.
type State string

const (
	StateClosed   State = "closed"
	StateOpen     State = "open"
	StateHalfOpen State = "half_open"
)

// Override is an operator's override on top of the state machine.
type Override string

const (
	// OverrideNone: the state machine decides.
	OverrideNone Override = ""
	// OverrideOpen: everyone fails fast; no probe runs.
	OverrideOpen Override = "open"
	// OverrideClosed: everyone passes; nothing trips.
	OverrideClosed Override = "closed"
)

// Snapshot is a breaker's cluster state as agents mirror it.
type Snapshot struct {
	Name     string   `json:"name"`
	State    State    `json:"state"`
	Override Override `json:"override"`
	// Version grows by one with every transition of this incarnation.
	Version int64 `json:"version"`
	// Epoch numbers the half-open windows; a probe result names its epoch.
	Epoch int64 `json:"epoch"`
	// Gen names this incarnation of the breaker's state: it changes when
	// the state is created again (for example after Redis lost its data),
	// so a version from an older incarnation is never compared with a new
	// one. Empty when the breaker has no state in Redis (closed).
	Gen string `json:"gen"`
	// RetryInMS is how long until an open breaker goes half-open, as seen
	// by Redis when the snapshot was taken; -1 when forced open with no
	// ttl, 0 when not open.
	RetryInMS int64 `json:"retry_in_ms"`
}

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

// Effective is the state as callers experience it: the override when there
// is one ("forced_open", "forced_closed"), the state otherwise.
func (s Snapshot) Effective() string {
	if s.Override != OverrideNone {
		return "forced_" + string(s.Override)
	}
	return string(s.State)
}

// Newer reports whether s should replace cur in a mirror: it belongs to
// another incarnation, or it has a higher version.
func (s Snapshot) Newer(cur Snapshot) bool {
	return s.Gen != cur.Gen || s.Version > cur.Version
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

// Applied is what Report did with a batch.
type Applied string

const (
	// AppliedOK: counted against the current state.
	AppliedOK Applied = "applied"
	// AppliedDuplicate: a report seen before (same agent, boot and seq or
	// older); nothing changed.
	AppliedDuplicate Applied = "duplicate"
	// AppliedStale: about a state that is gone (another gen or version);
	// dropped, but a Retry-After may still extend an open breaker.
	AppliedStale Applied = "stale"
)

// ProbeVerdict is what Report did with a batch's probe verdict.
type ProbeVerdict string

const (
	ProbeNone     ProbeVerdict = ""
	ProbeApplied  ProbeVerdict = "applied"
	ProbeReleased ProbeVerdict = "released"
	// ProbeRefused: not the current window, or not from its permit's
	// holder.
	ProbeRefused ProbeVerdict = "refused"
)
