package agentlib

import (
	"errors"
	"time"
)

// Reasons a call is denied. Test with errors.Is; a denial is always a
// *DeniedError that matches exactly one of the first three, ErrDegraded
// as well when the agent decided on its local breaker, and ErrLocal when
// the cluster told this agent alone to stay off (quorum not met).
var (
	// ErrOpen: the breaker is open; the provider is failing.
	ErrOpen = errors.New("agentlib: breaker open")
	// ErrHalfOpen: the breaker is half-open and this call is not the probe.
	ErrHalfOpen = errors.New("agentlib: breaker half-open, waiting for the probe")
	// ErrForcedOpen: an operator forced the breaker open.
	ErrForcedOpen = errors.New("agentlib: breaker forced open by an operator")
	// ErrDegraded: the agent cannot reach Redis or the coordinator and
	// decided on its local breaker.
	ErrDegraded = errors.New("agentlib: degraded, local breaker decided")
	// ErrLocal: open on this agent only: its failures tripped the policy
	// but fewer agents than the quorum (min_agents) were failing.
	ErrLocal = errors.New("agentlib: open on this agent only (quorum not met)")

	// ErrInvalidConfig is returned by New for a config it cannot use.
	ErrInvalidConfig = errors.New("agentlib: invalid config")
	// ErrInvalidName is returned by Agent.Breaker for an invalid name.
	ErrInvalidName = errors.New("agentlib: invalid breaker name")
)

// DeniedError says why a call was not allowed.
type DeniedError struct {
	Breaker string
	// Reason is ErrOpen, ErrHalfOpen or ErrForcedOpen.
	Reason error
	// Degraded is set when the agent decided on its local breaker.
	Degraded bool
	// Local is set when only this agent is open (quorum not met).
	Local bool
	// RetryAt is when the breaker is expected to let a probe through, by
	// this agent's clock; zero when unknown (forced, degraded).
	RetryAt time.Time
	// Version is the cluster state version the decision was made on.
	Version int64
}

func (e *DeniedError) Error() string {
	msg := e.Reason.Error() + ": " + e.Breaker
	if e.Degraded {
		msg += " (degraded: local breaker)"
	}
	if e.Local {
		msg += " (this agent only: quorum not met)"
	}
	return msg
}

// Is matches the reason, and ErrDegraded for a degraded decision.
func (e *DeniedError) Is(target error) bool {
	return target == e.Reason || (e.Degraded && target == ErrDegraded) || (e.Local && target == ErrLocal)
}

// Unwrap returns the reason.
func (e *DeniedError) Unwrap() error { return e.Reason }
