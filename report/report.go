package report

import (
	"fmt"
	"io"
	"regexp"
	"time"
)

// Limits on one report.
const (
	MaxBreakers   = 1000
	MaxCount      = 1_000_000_000
	MaxLastError  = 512
	MaxRetryAfter = 7 * 24 * time.Hour
	// MaxRoutes bounds the routes one report counts (agentlib counts at
	// most this many per agent).
	MaxRoutes = 64
)

// Report is one agent's outcomes since its last report, per breaker. A
// report with no breakers is a heartbeat. docs/protocol.md describes every
// field and the rules the coordinators apply.
type Report struct {
	// Agent identifies the sender.
	Agent string `json:"agent"`
	// Boot is random per agent process; Seq grows by one per report of
	// that process. A report resent with the same (Boot, Seq) counts once.
	// An empty Boot (a report made by hand) is never taken for a repeat.
	Boot string `json:"boot,omitempty"`
	Seq  int64  `json:"seq,omitempty"`
	// Service names the app the agent runs in (agentlib.Config.Service),
	// so the dashboard groups agents by it; optional, validated like
	// Agent.
	Service string `json:"service,omitempty"`
	// Degraded says the agent is running on local breakers.
	Degraded bool      `json:"degraded,omitempty"`
	Breakers []Breaker `json:"breakers"`
	// Routes counts the answers the agent's routes served since its last
	// report (a sidecar's routes: agentlib's CountServed); optional.
	Routes []Route `json:"routes,omitempty"`
}

// Route is what one route served since the last report.
type Route struct {
	// Name is the route's name, with a breaker name's characters.
	Name string `json:"name"`
	// Served counts the answers it served; Fallback those of them served
	// by a provider that was not the route's first choice.
	Served   int64 `json:"served"`
	Fallback int64 `json:"fallback,omitempty"`
}

// Breaker is one breaker's outcomes in a report.
type Breaker struct {
	Name string `json:"name"`
	// Gen and Version are the state the calls were allowed under; the
	// outcomes count only against it. A nil Version (a report made by
	// hand) counts against whatever state is current.
	Gen     string `json:"gen,omitempty"`
	Version *int64 `json:"version,omitempty"`
	OK      int64  `json:"ok,omitempty"`
	Fail    int64  `json:"fail,omitempty"`
	// TrailingFail counts the failures after the last success in this
	// report (all of them when there was no success).
	TrailingFail int64 `json:"trailing_fail,omitempty"`
	Slow         int64 `json:"slow,omitempty"`
	// LastOKAgeMS is how long before the report was taken its last
	// success completed.
	LastOKAgeMS int64 `json:"last_ok_age_ms,omitempty"`
	// Hung counts calls still waiting for a first byte past the policy's
	// hang_after.
	Hung *Hung `json:"hung,omitempty"`
	// RetryAfterMS is the largest Retry-After seen, in milliseconds.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
	// Misconfigured counts failures the provider gave for who called it
	// (401, 403): they open the breaker in the long-lived misconfigured
	// state. They are among Fail too.
	Misconfigured int64  `json:"misconfigured,omitempty"`
	LastError     string `json:"last_error,omitempty"`
	// Probe is the traffic-mode probe's outcome, sent as soon as known.
	Probe *Probe `json:"probe,omitempty"`
}

// Hung describes calls in flight past hang_after.
type Hung struct {
	// N crossed hang_after since the last report: each call is counted
	// once, as a failure.
	N int64 `json:"n"`
	// Waiting are past hang_after now; OldestMS is the oldest one's age.
	Waiting  int64 `json:"waiting,omitempty"`
	OldestMS int64 `json:"oldest_ms,omitempty"`
}

// Probe is the outcome of the one call let through in a half-open window.
type Probe struct {
	// Gen and Epoch name the window.
	Gen          string `json:"gen,omitempty"`
	Epoch        int64  `json:"epoch"`
	OK           bool   `json:"ok"`
	Error        string `json:"error,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
	// Nonce proves the sender holds the window's permit.
	Nonce string `json:"nonce"`
	// Release gives the window back with no verdict.
	Release bool `json:"release,omitempty"`
}

// Error says what is wrong with a report.
type Error struct {
	Field  string
	Reason string
	Err    error // the decoding error underneath, if any
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	if e.Field == "" {
		return "report: " + e.Reason
	}
	return "report: " + e.Field + ": " + e.Reason
}

var (
	validAgent = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$`)
	// validToken: boots, gens and nonces are short printable words.
	validToken = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// Decode reads one report strictly (unknown fields, trailing data and
// wrong types are errors) and validates it.
func Decode(r io.Reader) (Report, error) {
	v, err := DecodeValid(r)
	return v.r, err
}

// Valid is a report that passed Validate, once: DecodeValid and Check
// make one, and whoever takes a Valid need not check it again.
type Valid struct{ r Report }

// Report is the validated report.
func (v Valid) Report() Report { return v.r }

// Check validates a report built in code.
func Check(r Report) (Valid, error) {
	if err := r.Validate(); err != nil {
		return Valid{}, err
	}
	return Valid{r: r}, nil
}

// DecodeValid is Decode for a caller that hands the report on.
func DecodeValid(r io.Reader) (Valid, error) {
	var rep Report
	if err := decodeStrict(r, &rep); err != nil {
		return Valid{}, err
	}
	return Check(rep)
}

// Validate checks every field against its limits.
func (r Report) Validate() error {
	if !validAgent.MatchString(r.Agent) {
		return &Error{Field: "agent", Reason: "want 1-128 of A-Z a-z 0-9 . _ : @ / -, starting with a letter or digit"}
	}
	if r.Service != "" && !validAgent.MatchString(r.Service) {
		return &Error{Field: "service", Reason: "want 1-128 of A-Z a-z 0-9 . _ : @ / -, starting with a letter or digit"}
	}
	if r.Boot != "" && !validToken.MatchString(r.Boot) {
		return &Error{Field: "boot", Reason: "want 1-64 of A-Z a-z 0-9 . _ -"}
	}
	if r.Seq < 0 {
		return &Error{Field: "seq", Reason: "must not be negative"}
	}
	if len(r.Breakers) > MaxBreakers {
		return &Error{Field: "breakers", Reason: fmt.Sprintf("at most %d per report, got %d", MaxBreakers, len(r.Breakers))}
	}
	seen := make(map[string]bool, len(r.Breakers))
	for i, b := range r.Breakers {
		field := fmt.Sprintf("breakers[%d]", i)
		if !ValidName(b.Name) {
			return &Error{Field: field + ".name", Reason: nameReason(b.Name)}
		}
		if seen[b.Name] {
			return &Error{Field: field + ".name", Reason: fmt.Sprintf("breaker %q appears twice", b.Name)}
		}
		seen[b.Name] = true
		for _, c := range []struct {
			name string
			v    int64
		}{{"ok", b.OK}, {"fail", b.Fail}, {"trailing_fail", b.TrailingFail}, {"slow", b.Slow}, {"last_ok_age_ms", b.LastOKAgeMS}, {"misconfigured", b.Misconfigured}} {
			if c.v < 0 || c.v > MaxCount {
				return &Error{Field: field + "." + c.name, Reason: fmt.Sprintf("must be in [0, %d], got %d", MaxCount, c.v)}
			}
		}
		if b.Gen != "" && !validToken.MatchString(b.Gen) {
			return &Error{Field: field + ".gen", Reason: "want 1-64 of A-Z a-z 0-9 . _ -"}
		}
		if b.Version != nil && (*b.Version < 0 || *b.Version > MaxCount) {
			return &Error{Field: field + ".version", Reason: fmt.Sprintf("must be in [0, %d]", MaxCount)}
		}
		if h := b.Hung; h != nil {
			for _, c := range []struct {
				name string
				v    int64
			}{{"n", h.N}, {"waiting", h.Waiting}, {"oldest_ms", h.OldestMS}} {
				if c.v < 0 || c.v > MaxCount {
					return &Error{Field: field + ".hung." + c.name, Reason: fmt.Sprintf("must be in [0, %d], got %d", MaxCount, c.v)}
				}
			}
		}
		if b.Misconfigured > b.Fail {
			return &Error{Field: field + ".misconfigured", Reason: "must not exceed fail"}
		}
		if b.TrailingFail > b.Fail {
			return &Error{Field: field + ".trailing_fail", Reason: "must not exceed fail"}
		}
		if b.Slow > b.OK+b.Fail {
			return &Error{Field: field + ".slow", Reason: "must not exceed ok + fail"}
		}
		if err := checkRetryAfter(field+".retry_after_ms", b.RetryAfterMS); err != nil {
			return err
		}
		if len(b.LastError) > MaxLastError {
			return &Error{Field: field + ".last_error", Reason: fmt.Sprintf("at most %d bytes", MaxLastError)}
		}
		if p := b.Probe; p != nil {
			if p.Epoch <= 0 {
				return &Error{Field: field + ".probe.epoch", Reason: "must be positive"}
			}
			if !validToken.MatchString(p.Nonce) {
				return &Error{Field: field + ".probe.nonce", Reason: "required: the nonce the window's permit was granted for"}
			}
			if p.Gen != "" && !validToken.MatchString(p.Gen) {
				return &Error{Field: field + ".probe.gen", Reason: "want 1-64 of A-Z a-z 0-9 . _ -"}
			}
			if len(p.Error) > MaxLastError {
				return &Error{Field: field + ".probe.error", Reason: fmt.Sprintf("at most %d bytes", MaxLastError)}
			}
			if err := checkRetryAfter(field+".probe.retry_after_ms", p.RetryAfterMS); err != nil {
				return err
			}
		}
	}
	return r.validateRoutes()
}

func (r Report) validateRoutes() error {
	if len(r.Routes) > MaxRoutes {
		return &Error{Field: "routes", Reason: fmt.Sprintf("at most %d per report, got %d", MaxRoutes, len(r.Routes))}
	}
	seen := make(map[string]bool, len(r.Routes))
	for i, rt := range r.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		if !ValidName(rt.Name) {
			return &Error{Field: field + ".name", Reason: fmt.Sprintf("invalid route name %q: use 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit", clip(rt.Name))}
		}
		if seen[rt.Name] {
			return &Error{Field: field + ".name", Reason: fmt.Sprintf("route %q appears twice", rt.Name)}
		}
		seen[rt.Name] = true
		if rt.Served < 0 || rt.Served > MaxCount {
			return &Error{Field: field + ".served", Reason: fmt.Sprintf("must be in [0, %d], got %d", MaxCount, rt.Served)}
		}
		if rt.Fallback < 0 || rt.Fallback > rt.Served {
			return &Error{Field: field + ".fallback", Reason: fmt.Sprintf("must be in [0, served], got %d", rt.Fallback)}
		}
	}
	return nil
}

// ValidService reports whether s can name an agent's service (and an
// agent): 1-128 of A-Z a-z 0-9 . _ : @ / -, starting with a letter or
// digit.
func ValidService(s string) bool { return validAgent.MatchString(s) }

func checkRetryAfter(field string, ms int64) error {
	if ms < 0 || ms > MaxRetryAfter.Milliseconds() {
		return &Error{Field: field, Reason: fmt.Sprintf("must be in [0, %d]", MaxRetryAfter.Milliseconds())}
	}
	return nil
}

func nameReason(name string) string {
	return fmt.Sprintf("invalid breaker name %q: use 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit", clip(name))
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
