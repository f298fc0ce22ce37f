package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/fusebox-io/fusebox/statestore"
)

// Limits on one report.
const (
	MaxBreakers   = 1000
	MaxCount      = 1_000_000_000
	MaxLastError  = 512
	MaxRetryAfter = 7 * 24 * time.Hour
)

// Report is one agent's outcomes since its last report, per breaker. A
// report with no breakers is a heartbeat.
type Report struct {
	// Agent identifies the sender.
	Agent string `json:"agent"`
	// Degraded says the agent is running on local breakers.
	Degraded bool      `json:"degraded,omitempty"`
	Breakers []Breaker `json:"breakers"`
}

// Breaker is one breaker's outcomes in a report.
type Breaker struct {
	Name string `json:"name"`
	OK   int64  `json:"ok,omitempty"`
	Fail int64  `json:"fail,omitempty"`
	// TrailingFail counts the failures after the last success in this
	// report (all of them when there was no success).
	TrailingFail int64 `json:"trailing_fail,omitempty"`
	Slow         int64 `json:"slow,omitempty"`
	// RetryAfterMS is the largest Retry-After seen, in milliseconds.
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
	LastError    string `json:"last_error,omitempty"`
	// Probe is the traffic-mode probe's outcome, sent as soon as known.
	Probe *Probe `json:"probe,omitempty"`
}

// Probe is the outcome of the one call let through in a half-open epoch.
type Probe struct {
	Epoch        int64  `json:"epoch"`
	OK           bool   `json:"ok"`
	Error        string `json:"error,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

// Response answers a report with the current state of its breakers.
type Response struct {
	Breakers []statestore.Snapshot `json:"breakers"`
}

// Batch converts the wire form to the store's.
func (b Breaker) Batch() statestore.Batch {
	out := statestore.Batch{
		OK: b.OK, Fail: b.Fail, TrailingFail: b.TrailingFail, Slow: b.Slow,
		RetryAfter: time.Duration(b.RetryAfterMS) * time.Millisecond,
		LastError:  b.LastError,
	}
	if b.Probe != nil {
		out.Probe = &statestore.ProbeOutcome{
			Epoch: b.Probe.Epoch, OK: b.Probe.OK, Error: b.Probe.Error,
			RetryAfter: time.Duration(b.Probe.RetryAfterMS) * time.Millisecond,
		}
	}
	return out
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

var validAgent = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$`)

// Decode reads one report strictly: unknown fields, trailing data and
// wrong types are errors. It validates what it read.
func Decode(r io.Reader) (Report, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var rep Report
	if err := dec.Decode(&rep); err != nil {
		if errors.Is(err, io.EOF) {
			return Report{}, &Error{Reason: "empty body"}
		}
		return Report{}, &Error{Reason: "malformed JSON: " + err.Error(), Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Report{}, &Error{Reason: "trailing data after the report"}
	}
	if err := rep.Validate(); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// Validate checks every field against its limits.
func (r Report) Validate() error {
	if !validAgent.MatchString(r.Agent) {
		return &Error{Field: "agent", Reason: "want 1-128 of A-Z a-z 0-9 . _ : @ / -, starting with a letter or digit"}
	}
	if len(r.Breakers) > MaxBreakers {
		return &Error{Field: "breakers", Reason: fmt.Sprintf("at most %d per report, got %d", MaxBreakers, len(r.Breakers))}
	}
	seen := make(map[string]bool, len(r.Breakers))
	for i, b := range r.Breakers {
		field := fmt.Sprintf("breakers[%d]", i)
		if !statestore.ValidName(b.Name) {
			return &Error{Field: field + ".name", Reason: fmt.Sprintf("invalid breaker name %q: use 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit", clip(b.Name))}
		}
		if seen[b.Name] {
			return &Error{Field: field + ".name", Reason: fmt.Sprintf("breaker %q appears twice", b.Name)}
		}
		seen[b.Name] = true
		for _, c := range []struct {
			name string
			v    int64
		}{{"ok", b.OK}, {"fail", b.Fail}, {"trailing_fail", b.TrailingFail}, {"slow", b.Slow}} {
			if c.v < 0 || c.v > MaxCount {
				return &Error{Field: field + "." + c.name, Reason: fmt.Sprintf("must be in [0, %d], got %d", MaxCount, c.v)}
			}
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
			if len(p.Error) > MaxLastError {
				return &Error{Field: field + ".probe.error", Reason: fmt.Sprintf("at most %d bytes", MaxLastError)}
			}
			if err := checkRetryAfter(field+".probe.retry_after_ms", p.RetryAfterMS); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRetryAfter(field string, ms int64) error {
	if ms < 0 || ms > MaxRetryAfter.Milliseconds() {
		return &Error{Field: field, Reason: fmt.Sprintf("must be in [0, %d]", MaxRetryAfter.Milliseconds())}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
