package agentlib

import (
	"context"
	"errors"
	"time"
)

type outcomeKind uint8

const (
	kindIgnored outcomeKind = iota
	kindSuccess
	kindFailure
)

// Outcome is what happened to an allowed call. Make one with Success,
// Failure, FailureRetryAfter or Ignored.
type Outcome struct {
	kind          outcomeKind
	err           error
	retryAfter    time.Duration
	misconfigured bool
}

// Success is a call the provider answered well.
func Success() Outcome { return Outcome{kind: kindSuccess} }

// Failure is a call that counts against the breaker: a connection error,
// a timeout, a 408, 429 or 5xx, a stream cut off mid-way.
func Failure(err error) Outcome { return Outcome{kind: kindFailure, err: err} }

// FailureRetryAfter is a failure whose response carried Retry-After
// (429, 503): with honor_retry_after the whole cluster waits it out.
func FailureRetryAfter(err error, retryAfter time.Duration) Outcome {
	return Outcome{kind: kindFailure, err: err, retryAfter: max(retryAfter, 0)}
}

// Ignored is a call that says nothing about the provider's health: the
// caller cancelled it, or the request itself was bad (400, 404).
func Ignored() Outcome { return Outcome{kind: kindIgnored} }

// Misconfigured is a call the provider refused for who made it (401,
// 403: a wrong or revoked key, a missing permission): not an outage that
// heals by itself in a minute. It opens the breaker for the whole cluster
// in a distinct, long-lived state (the policy's misconfigured_open,
// reason "misconfigured"), journaled and logged as an error, until an
// operator resets it or that time passes.
func Misconfigured(err error) Outcome {
	return Outcome{kind: kindFailure, err: err, misconfigured: true}
}

// IsFailure reports whether o counts against the breaker.
func (o Outcome) IsFailure() bool { return o.kind == kindFailure }

// RetryAfterError is implemented by errors that carry a provider's
// Retry-After; DefaultClassify reports them with FailureRetryAfter.
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// DefaultClassify is how Execute classifies fn's error unless
// Config.Classify says otherwise: nil is a success; the caller's own
// cancellation is ignored; an error with a Retry-After is a failure with
// it; every other error is a failure.
func DefaultClassify(ctx context.Context, err error) Outcome {
	if err == nil {
		return Success()
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return Ignored()
	}
	var ra RetryAfterError
	if errors.As(err, &ra) {
		return FailureRetryAfter(err, ra.RetryAfter())
	}
	return Failure(err)
}
