package sidecar

import (
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
}

// quotaOpen keeps the cluster off a provider whose quota or billing ran
// out for as long as the breaker allows (max_open_timeout caps it): it
// will not heal by itself in a minute.
const quotaOpen = 24 * time.Hour

// classifyStatus applies PROVIDERS.md's table to an error status.
func classifyStatus(p *Provider, status int, body []byte, retryAfter time.Duration) verdict {
	e := provider.ParseError(body)
	typ, code, msg := e.Type, e.CodeString(), e.Message
	err := fmt.Errorf("%s: HTTP %d %s", p.Name, status, firstNonEmpty(code, typ, http.StatusText(status)))
	switch {
	case status == http.StatusTooManyRequests && (code == "insufficient_quota" || typ == "insufficient_quota"),
		status == http.StatusPaymentRequired, typ == "billing_error":
		return verdict{outcome: agentlib.FailureRetryAfter(err, quotaOpen), act: actNext, reason: "quota or billing: " + msg, quota: true}
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		// 408, 429 rate limit, 5xx (HTML 502s included), Anthropic 529.
		// A Retry-After keeps the whole cluster off it until then.
		return verdict{outcome: agentlib.FailureRetryAfter(err, retryAfter), act: actNext, reason: err.Error()}
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusNotFound:
		// A configuration error here (key, permission, model), not an
		// outage: it never counts against the breaker.
		act := actAnswer
		if p.NextOnConfigError {
			act = actNext
		}
		return verdict{outcome: agentlib.Ignored(), act: act, reason: err.Error()}
	default:
		// 400 (context length included), 413, 422: the request's fault.
		return verdict{outcome: agentlib.Ignored(), act: actAnswer, reason: err.Error()}
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
