package api

import (
	"time"

	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/statestore"
)

// BreakerView is a breaker in the API's JSON. Group is the name up to its
// first "." (groups.go): a sidecar's per-model breakers share their
// provider's. Misconfigured: open because the provider refused the
// callers' credentials (a 401 or 403; the last transition's reason is
// misconfigured), until misconfigured_open passes or a reset.
type BreakerView struct {
	Name           string         `json:"name"`
	Group          string         `json:"group"`
	State          string         `json:"state"`
	Override       string         `json:"override"`
	Effective      string         `json:"effective"`
	Version        int64          `json:"version"`
	Epoch          int64          `json:"epoch"`
	FailureCount   int64          `json:"failure_count"`
	Window         WindowView     `json:"window"`
	OpenUntil      *time.Time     `json:"open_until"`
	OverrideUntil  *time.Time     `json:"override_until"`
	RetryInMS      int64          `json:"retry_in_ms"`
	LastTransition TransitionView `json:"last_transition"`
	Policy         PolicyView     `json:"policy"`
	Canary         bool           `json:"canary"`
	Misconfigured  bool           `json:"misconfigured"`
}

// WindowView is the rolling window's totals.
type WindowView struct {
	Calls    int64 `json:"calls"`
	Failures int64 `json:"failures"`
	Slow     int64 `json:"slow"`
}

// TransitionView is the last transition.
type TransitionView struct {
	Reason    string     `json:"reason"`
	Actor     string     `json:"actor"`
	At        *time.Time `json:"at"`
	LastError string     `json:"last_error"`
}

// PolicyView is a policy with durations as Go duration strings.
type PolicyView struct {
	ConsecutiveFailures int     `json:"consecutive_failures"`
	FailureRate         float64 `json:"failure_rate"`
	MinCalls            int     `json:"min_calls"`
	Window              string  `json:"window"`
	SlowCall            string  `json:"slow_call"`
	SlowCallRate        float64 `json:"slow_call_rate"`
	OpenTimeout         string  `json:"open_timeout"`
	MaxOpenTimeout      string  `json:"max_open_timeout"`
	HonorRetryAfter     bool    `json:"honor_retry_after"`
	HalfOpen            string  `json:"half_open"`
	ProbeTimeout        string  `json:"probe_timeout"`
}

func viewBreaker(b coordinator.Breaker) BreakerView {
	t := func(x time.Time) *time.Time {
		if x.IsZero() {
			return nil
		}
		x = x.UTC()
		return &x
	}
	p := b.Policy
	return BreakerView{
		Name: b.Name, Group: groupOf(b.Name), State: string(b.State), Override: string(b.Override), Effective: b.Effective(),
		Version: b.Version, Epoch: b.Epoch, FailureCount: b.FailureCount,
		Window:         WindowView{Calls: b.WindowCalls, Failures: b.WindowFailures, Slow: b.WindowSlow},
		OpenUntil:      t(b.OpenUntil),
		OverrideUntil:  t(b.OverrideUntil),
		RetryInMS:      b.RetryInMS,
		LastTransition: TransitionView{Reason: b.Reason, Actor: b.Actor, At: t(b.ChangedAt), LastError: b.LastError},
		Policy: PolicyView{
			ConsecutiveFailures: p.ConsecutiveFailures, FailureRate: p.FailureRate, MinCalls: p.MinCalls,
			Window: p.Window.String(), SlowCall: p.SlowCall.String(), SlowCallRate: p.SlowCallRate,
			OpenTimeout: p.OpenTimeout.String(), MaxOpenTimeout: p.MaxOpenTimeout.String(),
			HonorRetryAfter: p.HonorRetryAfter, HalfOpen: string(p.HalfOpen), ProbeTimeout: p.ProbeTimeout.String(),
		},
		Canary:        b.HasCanary,
		Misconfigured: b.Effective() == "open" && b.Reason == "misconfigured",
	}
}

// EventView is one journal entry in the API's JSON: the event, and the
// cursor a stream client resumes from.
type EventView struct {
	statestore.Event
	Cursor string `json:"cursor"`
}

func viewEvent(e statestore.Event) EventView {
	cur := statestore.CursorOf(e).String()
	e.Time = e.Time.UTC()
	return EventView{Event: e, Cursor: cur}
}
