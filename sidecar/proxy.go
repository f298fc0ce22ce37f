package sidecar

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/provider"
)

// Response headers.
const (
	HeaderProvider = "X-Fusebox-Provider"
	HeaderFallback = "X-Fusebox-Fallback"
	HeaderCache    = "X-Fusebox-Cache"
	// HeaderHedged is "true" when the answer came from a hedged race.
	HeaderHedged = "X-Fusebox-Hedged"
	// HeaderSkipped lists the providers the chain passed over, and why:
	// "anthropic=untranslatable:n, ollama=context_window, openai=open".
	HeaderSkipped = "X-Fusebox-Skipped"
)

const maxUpstreamBody = 64 << 20

// walk tries the route's providers in order until one serves the request.
// A provider that cannot serve it (a capability it lacks, a request it
// cannot be asked faithfully) or whose breaker denies is skipped; a
// failure moves on; a fast transport failure (refused, reset) is retried
// on the same provider within the retry budget; with a hedge, the next
// provider starts beside a slow first one and the first answer wins; a
// 400 for the context length moves on to the route's larger-context
// fallbacks, if it has any.
func (s *Server) walk(ctx context.Context, w http.ResponseWriter, route *Route, req *request) {
	s.budget.request(time.Now())
	chain := route.chainFor(req.api)
	w2 := &walk{s: s, ctx: ctx, w: w, route: route, req: req, seq: slices.Clip(chain),
		evs: make(chan *attempt, (len(chain)+len(route.ContextWindowFallbacks))*(s.cfg.Retry.Attempts+1)+1)}
	w2.run()
}

type walk struct {
	s     *Server
	ctx   context.Context
	w     http.ResponseWriter
	route *Route
	req   *request
	evs   chan *attempt

	// seq is the providers to try, in order: the chain, and after a
	// context-length 400 the route's context-window fallbacks instead of
	// the rest of it.
	seq      []*Provider
	next     int        // the next index of seq to try
	running  []*attempt // at most two: the attempt and its hedge
	tries    map[int]int
	hedged   bool
	hedgeT   *time.Timer
	denied   []*agentlib.DeniedError
	failures []string
	skipped  []string // provider=reason, for X-Fusebox-Skipped
	passed   int      // providers passed over for what the request needs or cannot be translated into
	tried    int
	// refusal: the request is not well-formed (a translation said so,
	// naming the field): a 400 before any provider saw it.
	refusal *requestError
	// ctxErr is the context-length 400 that sent the walk to the
	// fallbacks; answered when none of them is even tried.
	ctxErr      *attempt
	ctxSwitched bool
	triedAfter  bool // a provider was tried or denied after the switch
	minWindow   int64
}

func (wk *walk) run() {
	defer func() {
		for _, a := range wk.running {
			a.lose()
		}
		if wk.hedgeT != nil {
			wk.hedgeT.Stop()
		}
	}()
	if !wk.startNext(false) {
		wk.finish()
		return
	}
	for {
		var hedgeC <-chan time.Time
		if wk.hedgeT != nil {
			hedgeC = wk.hedgeT.C
		}
		select {
		case <-wk.ctx.Done():
			for _, a := range wk.running {
				a.cancel(context.Canceled)
			}
			return
		case <-hedgeC:
			wk.hedgeT = nil
			wk.hedge()
		case a := <-wk.evs:
			if wk.handle(a) {
				return
			}
		}
	}
}

// handle acts on an attempt that reported; it returns true when the
// request is answered.
func (wk *walk) handle(a *attempt) bool {
	wk.running = slices.DeleteFunc(wk.running, func(x *attempt) bool { return x == a })
	switch a.kind {
	case attReady:
		for _, o := range wk.running {
			o.lose()
			wk.s.metrics.hedges.WithLabelValues(o.p.Name, "lost").Inc()
		}
		if wk.hedged {
			wk.s.metrics.hedges.WithLabelValues(a.p.Name, "won").Inc()
		}
		wk.running = nil
		wk.markSkipped()
		wk.s.serve(wk.ctx, wk.w, a, wk.hedged)
		return true
	case attContext:
		if !wk.ctxSwitched && len(wk.route.ContextWindowFallbacks) > 0 {
			wk.toFallbacks(a)
			break
		}
		fallthrough
	case attAnswer:
		for _, o := range wk.running {
			o.lose()
		}
		wk.running = nil
		wk.markSkipped()
		wk.s.answerClientError(wk.w, wk.req.api, a.p, a.status, a.body)
		return true
	case attGone:
		return wk.ctx.Err() != nil
	}
	if a.skip != "" {
		wk.skip(a.p, a.skip)
	}
	if a.kind == attRetry && len(wk.running) == 0 && wk.retry(a) {
		return false
	}
	wk.failures = append(wk.failures, a.why)
	if len(wk.running) > 0 {
		return false // the other of the race still runs
	}
	if wk.ctx.Err() != nil {
		// The client left (during a retry's backoff): nothing more leaves
		// for a provider, and nobody is there to answer.
		return true
	}
	if !wk.startNext(false) {
		wk.finish()
		return true
	}
	return false
}

// toFallbacks replaces the rest of the chain with the route's
// context-window fallbacks (those not tried yet), after a provider said
// the prompt does not fit its context: a fallback that declares a window
// no larger than the failed provider's is passed over.
func (wk *walk) toFallbacks(a *attempt) {
	wk.ctxSwitched, wk.ctxErr = true, a
	wk.minWindow = a.p.CapabilitiesOf(a.model).ContextWindow
	tried := wk.seq[:wk.next]
	wk.seq = slices.Clip(tried)
	for _, p := range wk.route.ContextWindowFallbacks {
		if !slices.Contains(tried, p) {
			wk.seq = append(wk.seq, p)
		}
	}
	wk.s.log.Info().Str("provider", a.p.Name).Str("route", wk.route.Name).Msg("the prompt is over the provider's context window: trying the route's context-window fallbacks")
}

// finish answers when no provider is left: the refusal, the
// context-length 400 when no fallback could even be tried, or a 503.
func (wk *walk) finish() {
	wk.markSkipped()
	switch {
	case wk.refusal != nil:
		writeAPIError(wk.w, wk.req.api, http.StatusBadRequest, wk.s.redact.string(wk.refusal.msg), "invalid_request_error", "", wk.refusal.param)
	case wk.ctxErr != nil && !wk.triedAfter:
		wk.s.answerClientError(wk.w, wk.req.api, wk.ctxErr.p, wk.ctxErr.status, wk.ctxErr.body)
	case wk.tried == 0 && len(wk.denied) == 0 && wk.passed > 0:
		// Every provider that serves the model lacks what the request
		// needs: no retry will change that.
		writeAPIError(wk.w, wk.req.api, http.StatusBadRequest,
			fmt.Sprintf("no provider of the route %q can serve this request: %s", wk.route.Name, strings.Join(wk.skipped, ", ")),
			"invalid_request_error", "fusebox_no_capable_provider", "")
	default:
		wk.s.unavailable(wk.w, wk.req.api, wk.tried, wk.denied, wk.failures)
	}
}

// retry tries a's provider again after a backoff, while its breaker is
// closed and the retry budget allows.
func (wk *walk) retry(a *attempt) bool {
	s := wk.s
	if wk.tries[a.index] >= s.cfg.Retry.Attempts-1 {
		return false
	}
	if !a.b.RetryAllowed() {
		return false
	}
	if !s.budget.spend(time.Now()) {
		s.metrics.budgetExhausted.Inc()
		return false
	}
	if !sleep(wk.ctx, backoff(s.cfg.Retry, wk.tries[a.index]+1)) {
		return false
	}
	call, err := a.b.Begin()
	if err != nil {
		wk.deny(a.p, err)
		return false
	}
	wk.tries[a.index]++
	s.metrics.retries.WithLabelValues(a.p.Name).Inc()
	t := a.try
	t.call, t.hedge = call, false // the race is over: nothing else runs
	wk.running = append(wk.running, wk.launch(t))
	wk.armHedge()
	return true
}

// startNext starts the next provider that can serve the request and
// whose breaker allows (as a hedge beside a slow first one, with hedge);
// false when none is left (or the request was refused).
func (wk *walk) startNext(hedge bool) bool {
	if wk.tries == nil {
		wk.tries = map[int]int{}
	}
	for wk.next < len(wk.seq) {
		i := wk.next
		wk.next++
		p := wk.seq[i]
		model, ok := p.Model(wk.req.model)
		if !ok {
			continue
		}
		if why := wk.ineligible(i, p, model); why != "" {
			wk.skip(p, why)
			continue
		}
		ob, err := wk.s.upstreams[p.Name].build(wk.req, model)
		if err != nil {
			var ue *provider.UntranslatableError
			var ie *provider.InvalidError
			switch {
			case errors.As(err, &ue):
				wk.s.log.Info().Str("provider", p.Name).Str("api", string(wk.req.api)).Str("field", ue.Field).Str("reason", ue.Reason).
					Msg("provider skipped: the request cannot be translated for it faithfully")
				wk.skip(p, "untranslatable:"+ue.Field)
				continue
			case errors.As(err, &ie) && len(wk.running) == 0:
				msg := ie.Reason
				if ie.Field != "" {
					msg = ie.Field + ": " + ie.Reason
				}
				wk.refusal = &requestError{msg: msg, param: ie.Field}
				return false
			default:
				// Invalid while a hedge's partner runs: it may still
				// answer; this provider is passed over.
				wk.skip(p, "invalid")
				continue
			}
		}
		if len(ob.dropped) > 0 {
			wk.s.log.Info().Str("provider", p.Name).Str("api", string(wk.req.api)).Strs("fields", ob.dropped).
				Msg("fields with no counterpart at this provider left out (none changes the answer)")
		}
		b := wk.s.breakers[p.Name].get(model)
		call, err := b.Begin()
		if err != nil {
			wk.deny(p, err)
			continue
		}
		wk.tried++
		if wk.ctxSwitched {
			wk.triedAfter = true
		}
		wk.running = append(wk.running, wk.launch(try{p: p, b: b, call: call, model: model, index: i, ob: ob, hedge: hedge}))
		wk.armHedge()
		return true
	}
	return false
}

// ineligible says why p cannot serve the request, or "".
func (wk *walk) ineligible(i int, p *Provider, model string) string {
	if wk.req.stateful && i > 0 && !wk.ctxSwitched {
		// previous_response_id and conversations live at the provider
		// that stored them: the route's first one.
		return "stateful"
	}
	if !wk.route.scan {
		return ""
	}
	caps := p.CapabilitiesOf(model)
	if wk.ctxSwitched && wk.minWindow > 0 && caps.ContextWindow > 0 && caps.ContextWindow <= wk.minWindow {
		return "context_window"
	}
	return caps.lacks(wk.req.needs)
}

// skip records a provider passed over for what the request needs.
func (wk *walk) skip(p *Provider, why string) {
	wk.passed++
	wk.skipped = append(wk.skipped, p.Name+"="+why)
	label, _, _ := strings.Cut(why, ":")
	wk.s.metrics.ineligible.WithLabelValues(p.Name, label).Inc()
	wk.traceSkip(p, why)
}

func (wk *walk) markSkipped() {
	if len(wk.skipped) > 0 {
		wk.w.Header().Set(HeaderSkipped, strings.Join(wk.skipped, ", "))
	}
}

func (wk *walk) deny(p *Provider, err error) {
	wk.traceDenied(p, err)
	var de *agentlib.DeniedError
	if errors.As(err, &de) {
		wk.denied = append(wk.denied, de)
		state := "open"
		switch {
		case errors.Is(de, agentlib.ErrForcedOpen):
			state = "forced_open"
		case errors.Is(de, agentlib.ErrHalfOpen):
			state = "half_open"
		}
		wk.skipped = append(wk.skipped, p.Name+"="+state)
	}
	if wk.ctxSwitched {
		wk.triedAfter = true
	}
	wk.s.metrics.skipped.WithLabelValues(p.Name).Inc()
}

// armHedge starts the hedge timer for the one running attempt, once per
// request.
func (wk *walk) armHedge() {
	h := wk.route.Hedge
	if h == nil || wk.hedged || len(wk.running) != 1 || wk.next >= len(wk.seq) {
		return
	}
	if wk.hedgeT != nil {
		wk.hedgeT.Stop()
	}
	a := wk.running[0]
	wk.hedgeT = time.NewTimer(time.Until(a.start.Add(h.wait(a.p, &wk.s.firstBytes))))
}

// hedge starts the next provider beside a first one that has not sent
// its first byte, spending from the retry budget.
func (wk *walk) hedge() {
	if len(wk.running) != 1 || wk.running[0].hasResponded() {
		return
	}
	if !wk.s.budget.spend(time.Now()) {
		wk.s.metrics.hedges.WithLabelValues(wk.running[0].p.Name, "budget_exhausted").Inc()
		return
	}
	started := wk.startNext(true)
	if started {
		wk.hedged = true
		wk.s.metrics.hedges.WithLabelValues(wk.running[len(wk.running)-1].p.Name, "started").Inc()
	}
}

// unavailable answers at once when every provider is unavailable: 503 in
// OpenAI's error shape, or for a Messages client 529 overloaded_error,
// Anthropic's "come back later" that its SDKs retry; with a Retry-After
// from the earliest expected recovery among denied providers.
func (s *Server) unavailable(w http.ResponseWriter, api API, tried int, denied []*agentlib.DeniedError, failures []string) {
	retryIn := time.Second
	var soonest time.Time
	var parts []string
	for _, d := range denied {
		state := "open"
		switch {
		case errors.Is(d, agentlib.ErrForcedOpen):
			state = "forced open"
		case errors.Is(d, agentlib.ErrHalfOpen):
			state = "half-open, probing"
		}
		if d.Degraded {
			state += ", local breaker"
		}
		if d.Local {
			state += ", this agent only"
		}
		parts = append(parts, d.Breaker+" ("+state+")")
		if !d.RetryAt.IsZero() && (soonest.IsZero() || d.RetryAt.Before(soonest)) {
			soonest = d.RetryAt
		}
	}
	if !soonest.IsZero() {
		retryIn = max(time.Until(soonest), time.Second)
	}
	msg := "all providers are unavailable"
	if len(parts) > 0 {
		msg += "; breakers: " + strings.Join(parts, ", ")
	}
	if len(failures) > 0 {
		msg += "; failed: " + strings.Join(failures, "; ")
	}
	if tried == 0 && len(denied) == 0 {
		msg = "no provider of this route serves the requested model"
	}
	s.metrics.unavailable.Inc()
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryIn.Seconds()))))
	if api == APIMessages {
		writeAPIError(w, api, 529, s.redact.string(msg), "overloaded_error", "", "")
		return
	}
	writeAPIError(w, api, http.StatusServiceUnavailable, s.redact.string(msg), "service_unavailable", "fusebox_all_providers_unavailable", "")
}

// serve writes a ready attempt's answer: a whole body, or a stream from
// its first token on. A stream that fails after it began ends with an
// error event (and no end marker), never a fake normal finish.
func (s *Server) serve(ctx context.Context, w http.ResponseWriter, a *attempt, hedged bool) {
	close(a.won)
	w.Header().Set(HeaderProvider, a.p.Name)
	w.Header().Set(HeaderFallback, strconv.FormatBool(a.index > 0))
	if hedged {
		w.Header().Set(HeaderHedged, "true")
	}
	s.metrics.served.WithLabelValues(a.p.Name, strconv.FormatBool(a.index > 0)).Inc()
	if !a.req.stream {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(a.body)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	a.relayTo(ctx, w)
}

// answerClientError returns a provider's client error to the caller, in
// the caller's API's shape (body already redacted).
func (s *Server) answerClientError(w http.ResponseWriter, api API, p *Provider, status int, body []byte) {
	w.Header().Set(HeaderProvider, p.Name)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(clientErrorBody(api, p, status, body))
}

// clientErrorBody is a provider's error in the caller's shape: kept as
// sent when it already is (OpenAI-shaped from an OpenAI-format provider,
// Anthropic-shaped from Anthropic), rewritten otherwise.
func clientErrorBody(api API, p *Provider, status int, body []byte) []byte {
	shape := provider.ParseError(body).Shape
	if api == APIMessages {
		if p.Kind == KindAnthropic && shape == provider.ShapeAnthropic {
			return body
		}
		return provider.ToAnthropicError(status, body)
	}
	if p.Kind != KindAnthropic && shape == provider.ShapeOpenAI {
		return body
	}
	return provider.ToOpenAIError(status, body)
}

// writeAPIError answers an error of the sidecar's own in the API's shape:
// OpenAI's, or Anthropic's for Messages (typ then becomes Anthropic's
// type for the status, unless it is one of Anthropic's types).
func writeAPIError(w http.ResponseWriter, api API, status int, msg, typ, code, param string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if api == APIMessages {
		if provider.AnthropicErrorStatus(typ) == 0 {
			typ = provider.AnthropicErrorType(status)
		}
		_, _ = w.Write(provider.AnthropicErrorBody(typ, msg))
		return
	}
	_, _ = w.Write(provider.OpenAIErrorBody(msg, typ, code, param))
}

// backoff is exponential with full jitter.
func backoff(r Retry, attempt int) time.Duration {
	d := min(time.Duration(float64(r.Base)*math.Pow(2, float64(attempt-1))), r.Max)
	return time.Duration(rand.Int64N(int64(d) + 1))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
