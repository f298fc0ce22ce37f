package sidecar

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/provider"
)

// action is what the sidecar does after a provider's answer.
type action int

const (
	// actNext: a failure; try the next provider. (Transient transport
	// errors never reach classifyStatus: try retries them itself.)
	actNext action = iota
	// actAnswer: the caller's own mistake (400, 413, ...): return the
	// provider's answer to the caller.
	actAnswer
)

// verdict is how an error response counts and what follows.
type verdict struct {
	outcome agentlib.Outcome
	act     action
	reason  string
	quota   bool
	// misconfigured: a 401 or 403, refused for who called.
	misconfigured bool
	// accountWide: the failure is the key's or the account's, not one
	// model's (a 401, quota or billing): with breakers per model, every
	// breaker of the provider records it. A 403 is not: it may be one
	// model's permission (a key without access to that model).
	accountWide bool
	// contextLength: a 400 for a prompt longer than the model's context,
	// which a route's context_window_fallbacks may take.
	contextLength bool
}

// quotaOpen keeps the cluster off a provider whose quota or billing ran
// out for as long as the breaker allows (max_retry_after caps it): it
// will not heal by itself in a minute.
const quotaOpen = 24 * time.Hour

// classifyStatus applies the table of what an answer says (package
// provider's doc) to an error status.
// retryAfter is how long the answer asked callers to stay away (its
// Retry-After, or the reset of its exhausted rate limits).
func classifyStatus(p *Provider, status int, body []byte, retryAfter time.Duration) verdict {
	e := provider.ParseError(body)
	typ, code, msg := e.Type, e.CodeString(), e.Message
	err := fmt.Errorf("%s: HTTP %d %s", p.Name, status, firstNonEmpty(code, typ, http.StatusText(status)))
	switch {
	case status == http.StatusTooManyRequests && (code == "insufficient_quota" || typ == "insufficient_quota"),
		status == http.StatusPaymentRequired, typ == "billing_error":
		return verdict{outcome: agentlib.FailureRetryAfter(err, max(quotaOpen, retryAfter)), act: actNext, reason: "quota or billing: " + msg, quota: true, accountWide: true}
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		// 408, 429 rate limit, 5xx (HTML 502s included), Anthropic 529.
		// A Retry-After keeps the whole cluster off it until then.
		return verdict{outcome: agentlib.FailureRetryAfter(err, retryAfter), act: actNext, reason: err.Error()}
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		// Refused for who called (a key, a permission): the cluster's
		// breaker opens in the long-lived misconfigured state. The next
		// provider may still serve.
		return verdict{outcome: agentlib.Misconfigured(err), act: nextOr(p), reason: err.Error(), misconfigured: true, accountWide: status == http.StatusUnauthorized}
	case status == http.StatusNotFound:
		// The model, here: a configuration error, not an outage; it never
		// counts against the breaker.
		return verdict{outcome: agentlib.Ignored(), act: nextOr(p), reason: err.Error()}
	default:
		// 400 (context length included), 413, 422: the request's fault.
		return verdict{outcome: agentlib.Ignored(), act: actAnswer, reason: err.Error(),
			contextLength: status == http.StatusBadRequest && provider.IsContextLengthError(body)}
	}
}

func nextOr(p *Provider) action {
	if p.NextOnConfigError {
		return actNext
	}
	return actAnswer
}

// streamOutcome is how a stream that failed counts: an error event for
// the caller's request (a 4xx type) or a translation this side could not
// make counts against nothing; a provider's error event (overloaded,
// api_error), a garbled or cut stream is a failure.
func streamOutcome(why string, err error) (agentlib.Outcome, string) {
	if errors.Is(err, provider.ErrUntranslatable) {
		return agentlib.Ignored(), "untranslatable"
	}
	if se := asStreamError(err); se != nil {
		if st := provider.AnthropicErrorStatus(se.Type); st >= 400 && st < 500 && st != http.StatusTooManyRequests &&
			st != http.StatusRequestTimeout && st != http.StatusPaymentRequired {
			return agentlib.Ignored(), "stream_error"
		}
	}
	return agentlib.Failure(errors.New(why)), "stream_error"
}

func asStreamError(err error) *provider.StreamError {
	var se *provider.StreamError
	if errors.As(err, &se) {
		return se
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
