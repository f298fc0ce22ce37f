package statestore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// HalfOpenMode says how a half-open breaker finds out whether its target is
// healthy again.
type HalfOpenMode string

const (
	// HalfOpenCanary: agents keep failing fast; one coordinator runs a
	// canary probe per half-open window.
	HalfOpenCanary HalfOpenMode = "canary"
	// HalfOpenTraffic: one live call, cluster-wide, is let through as the
	// probe; every other call fails fast.
	HalfOpenTraffic HalfOpenMode = "traffic"
)

// Policy says when a breaker trips and how long it stays open. It is a
// resolved policy: every field holds its final value. DefaultPolicy gives
// the defaults; a zero rate or count turns that rule off.
type Policy struct {
	// ConsecutiveFailures trips after this many failures with no success
	// in between, counted across the cluster. 0 turns the rule off.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// FailureRate trips when this percentage (0-100] of the calls in
	// Window failed, once MinCalls were seen. 0 turns the rule off.
	FailureRate float64 `json:"failure_rate"`
	// MinCalls is the number of calls in Window before either rate rule
	// may trip.
	MinCalls int `json:"min_calls"`
	// Window is the rolling window of the rate rules (1 s buckets).
	Window time.Duration `json:"window"`
	// SlowCall is the duration above which a call counts as slow (agents
	// measure it). 0 turns slow-call detection off.
	SlowCall time.Duration `json:"slow_call"`
	// SlowCallRate trips when this percentage (0-100] of the calls in
	// Window were slow, once MinCalls were seen. 0 turns the rule off.
	SlowCallRate float64 `json:"slow_call_rate"`
	// OpenTimeout is the time open before half-open.
	OpenTimeout time.Duration `json:"open_timeout"`
	// MaxOpenTimeout caps the open time a failed probe doubles: each
	// failed probe doubles it up to this (a Retry-After is capped by
	// MaxRetryAfter instead).
	MaxOpenTimeout time.Duration `json:"max_open_timeout"`
	// HonorRetryAfter opens the breaker for the whole cluster until a
	// reported Retry-After has passed (capped by MaxRetryAfter; the
	// journal's reason says when the cap applied).
	HonorRetryAfter bool `json:"honor_retry_after"`
	// HalfOpen is how a half-open breaker is probed.
	HalfOpen HalfOpenMode `json:"half_open"`
	// ProbeTimeout is how long one half-open probe may take; a half-open
	// window whose probe started and gave no result after this starts a
	// new window.
	ProbeTimeout time.Duration `json:"probe_timeout"`
	// HangAfter is how long a call may wait for its first byte before it
	// counts as hung: agents report such calls while they are still in
	// flight, and the cluster counts each as a failure (and a slow call)
	// once. 0 turns in-flight detection off.
	HangAfter time.Duration `json:"hang_after"`
	// MaxRetryAfter caps how long one Retry-After keeps the cluster off a
	// provider.
	MaxRetryAfter time.Duration `json:"max_retry_after"`
	// MinAgents is the quorum of a trip: the failures that trip the
	// breaker must come from at least this many distinct agents within
	// Window; failures fewer agents see open those agents' own local
	// breakers only. 0 or 1 turns the quorum off.
	MinAgents int `json:"min_agents"`
	// CanaryInterval is how long a canary-mode breaker stays open before
	// its next canary; it doubles after each failed canary, up to
	// CanaryMaxInterval. (Traffic mode uses OpenTimeout and
	// MaxOpenTimeout: there a probe is a user's call.)
	CanaryInterval    time.Duration `json:"canary_interval"`
	CanaryMaxInterval time.Duration `json:"canary_max_interval"`
	// MisconfiguredOpen is how long a provider that refused the callers'
	// credentials (401, 403) stays open, reason misconfigured, before it
	// is probed again; an operator's reset ends it sooner.
	MisconfiguredOpen time.Duration `json:"misconfigured_open"`
}

// DefaultPolicy returns the defaults, which the seed article found to work
// for LLM APIs: trip after 5 consecutive failures, stay open 60 s, double
// up to 10 minutes, honour Retry-After.
func DefaultPolicy() Policy {
	return Policy{
		ConsecutiveFailures: 5,
		MinCalls:            20,
		Window:              60 * time.Second,
		OpenTimeout:         60 * time.Second,
		MaxOpenTimeout:      10 * time.Minute,
		HonorRetryAfter:     true,
		HalfOpen:            HalfOpenTraffic,
		ProbeTimeout:        30 * time.Second,
		MaxRetryAfter:       time.Hour,
		CanaryInterval:      time.Second,
		CanaryMaxInterval:   5 * time.Second,
		MisconfiguredOpen:   time.Hour,
	}
}

// MaxHangAfter is the longest HangAfter agents track in flight.
const MaxHangAfter = time.Minute

// PolicyError says which field of a policy is wrong and why.
type PolicyError struct {
	Field  string
	Reason string
}

func (e *PolicyError) Error() string { return e.Field + ": " + e.Reason }

// Validate reports the first field that is out of range.
func (p Policy) Validate() error {
	if ps := p.Problems(); len(ps) > 0 {
		return ps[0]
	}
	return nil
}

// Problems lists every field that is out of range, in the fields' order.
func (p Policy) Problems() []*PolicyError {
	var out []*PolicyError
	add := func(e *PolicyError) { out = append(out, e) }
	if p.ConsecutiveFailures < 0 {
		add(&PolicyError{"consecutive_failures", "must be 0 (off) or more"})
	}
	if p.FailureRate < 0 || p.FailureRate > 100 {
		add(&PolicyError{"failure_rate", fmt.Sprintf("must be a percentage in [0, 100], got %g", p.FailureRate)})
	}
	if p.SlowCallRate < 0 || p.SlowCallRate > 100 {
		add(&PolicyError{"slow_call_rate", fmt.Sprintf("must be a percentage in [0, 100], got %g", p.SlowCallRate)})
	}
	if p.MinCalls < 0 {
		add(&PolicyError{"min_calls", "must be 0 or more"})
	}
	if (p.FailureRate > 0 || p.SlowCallRate > 0) && (p.Window < time.Second || p.Window > time.Hour) {
		add(&PolicyError{"window", fmt.Sprintf("must be between 1s and 1h when a rate rule is on, got %s", p.Window)})
	}
	if p.Window%time.Second != 0 {
		add(&PolicyError{"window", fmt.Sprintf("must be whole seconds, got %s", p.Window)})
	}
	if p.SlowCallRate > 0 && p.SlowCall <= 0 {
		add(&PolicyError{"slow_call", "must be set when slow_call_rate is on"})
	}
	if p.SlowCall < 0 {
		add(&PolicyError{"slow_call", "must not be negative"})
	}
	if p.OpenTimeout < time.Millisecond {
		add(&PolicyError{"open_timeout", fmt.Sprintf("must be at least 1ms, got %s", p.OpenTimeout)})
	}
	if p.MaxOpenTimeout < p.OpenTimeout {
		add(&PolicyError{"max_open_timeout", fmt.Sprintf("must be at least open_timeout (%s), got %s", p.OpenTimeout, p.MaxOpenTimeout)})
	}
	if p.HalfOpen != HalfOpenCanary && p.HalfOpen != HalfOpenTraffic {
		add(&PolicyError{"half_open", fmt.Sprintf("must be %q or %q, got %q", HalfOpenCanary, HalfOpenTraffic, p.HalfOpen)})
	}
	if p.ProbeTimeout < time.Millisecond {
		add(&PolicyError{"probe_timeout", fmt.Sprintf("must be at least 1ms, got %s", p.ProbeTimeout)})
	}
	if p.HangAfter < 0 || p.HangAfter > MaxHangAfter {
		add(&PolicyError{"hang_after", fmt.Sprintf("must be between 0 (off) and %s, got %s", MaxHangAfter, p.HangAfter)})
	}
	if p.MaxRetryAfter < time.Second {
		add(&PolicyError{"max_retry_after", fmt.Sprintf("must be at least 1s, got %s", p.MaxRetryAfter)})
	}
	if p.MisconfiguredOpen < time.Second {
		add(&PolicyError{"misconfigured_open", fmt.Sprintf("must be at least 1s, got %s", p.MisconfiguredOpen)})
	}
	if p.MinAgents < 0 {
		add(&PolicyError{"min_agents", "must be 0 (off) or more"})
	}
	if p.CanaryInterval < time.Millisecond {
		add(&PolicyError{"canary_interval", fmt.Sprintf("must be at least 1ms, got %s", p.CanaryInterval)})
	}
	if p.CanaryMaxInterval < p.CanaryInterval {
		add(&PolicyError{"canary_max_interval", fmt.Sprintf("must be at least canary_interval (%s), got %s", p.CanaryInterval, p.CanaryMaxInterval)})
	}
	if p.ConsecutiveFailures == 0 && p.FailureRate == 0 && p.SlowCallRate == 0 && !p.HonorRetryAfter {
		add(&PolicyError{"consecutive_failures", "every trip rule is off: the breaker could never open"})
	}
	return out
}

// args encodes the policy as ARGV[5..19] of every script (see common.lua).
func (p Policy) args() ([]any, error) {
	js, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	honor := "0"
	if p.HonorRetryAfter {
		honor = "1"
	}
	return []any{
		strconv.Itoa(p.ConsecutiveFailures),
		strconv.FormatFloat(p.FailureRate, 'f', -1, 64),
		strconv.Itoa(p.MinCalls),
		strconv.FormatInt(int64(p.Window/time.Second), 10),
		strconv.FormatFloat(p.SlowCallRate, 'f', -1, 64),
		strconv.FormatInt(p.OpenTimeout.Milliseconds(), 10),
		strconv.FormatInt(p.MaxOpenTimeout.Milliseconds(), 10),
		honor,
		strconv.FormatInt(p.ProbeTimeout.Milliseconds(), 10),
		string(js),
		strconv.FormatInt(p.MaxRetryAfter.Milliseconds(), 10),
		strconv.Itoa(p.MinAgents),
		string(p.HalfOpen),
		strconv.FormatInt(p.CanaryInterval.Milliseconds(), 10),
		strconv.FormatInt(p.CanaryMaxInterval.Milliseconds(), 10),
	}, nil
}
