package sidecar

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/provider"
	"github.com/fusebox-io/fusebox/statestore"
)

// Response headers.
const (
	HeaderProvider = "X-Fusebox-Provider"
	HeaderFallback = "X-Fusebox-Fallback"
	HeaderCache    = "X-Fusebox-Cache"
	// HeaderHedged is "true" when the answer came from a hedged race.
	HeaderHedged = "X-Fusebox-Hedged"
)

const maxUpstreamBody = 32 << 20

// walk tries the route's providers in order until one serves the request.
// A provider whose breaker denies is skipped; a failure moves on; a fast
// transport failure (refused, reset) is retried on the same provider
// within the retry budget; with a hedge, the next provider starts beside
// a slow first one and the first answer wins.
func (s *Server) walk(ctx context.Context, w http.ResponseWriter, route *Route, req *chatRequest) {
	s.budget.request(time.Now())
	w2 := &walk{s: s, ctx: ctx, w: w, route: route, req: req,
		evs: make(chan *attempt, len(route.Chain)*(s.cfg.Retry.Attempts+1)+1)}
	w2.run()
}

type walk struct {
	s     *Server
	ctx   context.Context
	w     http.ResponseWriter
	route *Route
	req   *chatRequest
	evs   chan *attempt

	next     int        // the next chain index to try
	running  []*attempt // at most two: the attempt and its hedge
	tries    map[int]int
	hedged   bool
	hedgeT   *time.Timer
	denied   []*agentlib.DeniedError
	failures []string
	tried    int
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
	if !wk.startNext() {
		wk.s.unavailable(wk.w, wk.tried, wk.denied, wk.failures)
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
		wk.s.serve(wk.ctx, wk.w, a, wk.hedged)
		return true
	case attAnswer:
		for _, o := range wk.running {
			o.lose()
		}
		wk.running = nil
		wk.s.answerClientError(wk.w, a.p, a.status, a.body)
		return true
	case attGone:
		return wk.ctx.Err() != nil
	}
	if a.kind == attRetry && len(wk.running) == 0 && wk.retry(a) {
		return false
	}
	wk.failures = append(wk.failures, a.why)
	if len(wk.running) > 0 {
		return false // the other of the race still runs
	}
	if !wk.startNext() {
		wk.s.unavailable(wk.w, wk.tried, wk.denied, wk.failures)
		return true
	}
	return false
}

// retry tries a's provider again after a backoff, while its breaker is
// closed and the retry budget allows.
func (wk *walk) retry(a *attempt) bool {
	s := wk.s
	if wk.tries[a.index] >= s.cfg.Retry.Attempts-1 {
		return false
	}
	if st := a.b.State(); !(st.Override == statestore.OverrideClosed || st.Override == statestore.OverrideNone && st.State == statestore.StateClosed) {
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
	wk.running = append(wk.running, s.newAttempt(wk.ctx, a.p, a.index, a.model, wk.req, call, wk.evs))
	wk.armHedge()
	return true
}

// startNext starts the next provider of the chain whose breaker allows;
// false when none is left.
func (wk *walk) startNext() bool {
	if wk.tries == nil {
		wk.tries = map[int]int{}
	}
	for wk.next < len(wk.route.Chain) {
		i := wk.next
		wk.next++
		p := wk.route.Chain[i]
		model, ok := p.Model(wk.req.Model)
		if !ok {
			continue
		}
		call, err := wk.s.breakers[p.Name].Begin()
		if err != nil {
			wk.deny(p, err)
			continue
		}
		wk.tried++
		wk.running = append(wk.running, wk.s.newAttempt(wk.ctx, p, i, model, wk.req, call, wk.evs))
		wk.armHedge()
		return true
	}
	return false
}

func (wk *walk) deny(p *Provider, err error) {
	var de *agentlib.DeniedError
	if errors.As(err, &de) {
		wk.denied = append(wk.denied, de)
	}
	wk.s.metrics.skipped.WithLabelValues(p.Name).Inc()
}

// armHedge starts the hedge timer for the one running attempt, once per
// request.
func (wk *walk) armHedge() {
	h := wk.route.Hedge
	if h == nil || wk.hedged || len(wk.running) != 1 || wk.next >= len(wk.route.Chain) {
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
	if wk.startNext() {
		wk.hedged = true
		h := wk.running[len(wk.running)-1]
		h.hedge = true
		wk.s.metrics.hedges.WithLabelValues(h.p.Name, "started").Inc()
	}
}

// unavailable answers a fast 503 in OpenAI's error shape, with a
// Retry-After from the earliest expected recovery among denied providers.
func (s *Server) unavailable(w http.ResponseWriter, tried int, denied []*agentlib.DeniedError, failures []string) {
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
	writeOpenAIError(w, http.StatusServiceUnavailable, s.redact.string(msg), "service_unavailable", "fusebox_all_providers_unavailable", "")
}

// serve writes a ready attempt's answer: a whole body, or a stream from
// its first token on. A stream that fails after it began ends with an
// error event and no [DONE], never a fake normal finish.
func (s *Server) serve(ctx context.Context, w http.ResponseWriter, a *attempt, hedged bool) {
	close(a.won)
	w.Header().Set(HeaderProvider, a.p.Name)
	w.Header().Set(HeaderFallback, strconv.FormatBool(a.index > 0))
	if hedged {
		w.Header().Set(HeaderHedged, "true")
	}
	s.metrics.served.WithLabelValues(a.p.Name, strconv.FormatBool(a.index > 0)).Inc()
	if !a.req.Stream {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(a.body)
		return
	}
	defer a.close()
	// The caller hanging up ends the stream's upstream call at once.
	defer context.AfterFunc(ctx, func() { a.cancel(context.Canceled) })()
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	write := func(chunks [][]byte) error {
		for _, c := range chunks {
			if _, err := fmt.Fprintf(w, "data: %s\n\n", c); err != nil {
				return err
			}
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	}
	if write(a.head) != nil {
		a.end(agentlib.Ignored(), "client_gone")
		return
	}
	stall := time.AfterFunc(a.p.Stall, func() { a.cancel(errStall) })
	defer stall.Stop()
	for fin := a.fin; !fin; {
		chunks, done, err := a.read()
		if err != nil {
			if ctx.Err() != nil {
				a.end(agentlib.Ignored(), "client_gone")
				return
			}
			why := s.redact.string(a.p.Name + ": " + err.Error())
			result := "stream_error"
			if errors.Is(err, errStall) {
				why, result = fmt.Sprintf("%s: the stream stalled for %s", a.p.Name, a.p.Stall), "stall"
			}
			a.end(agentlib.Failure(errors.New(why)), result)
			_, _ = fmt.Fprintf(w, "data: %s\n\n", openAIErrorBody("the provider's stream failed: "+why, "fusebox_upstream_stream_error", "", ""))
			if fl != nil {
				fl.Flush()
			}
			return
		}
		stall.Reset(a.p.Stall)
		if write(chunks) != nil {
			a.end(agentlib.Ignored(), "client_gone")
			return
		}
		fin = done
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
	a.end(agentlib.Success(), "200")
}

// readSSE reads one server-sent event: its name and its data (nil for a
// comment-only block).
func readSSE(rd *bufio.Reader) (string, []byte, error) {
	var event string
	var data []byte
	seen := false
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			if err == io.EOF && len(line) == 0 && !seen {
				return "", nil, io.ErrUnexpectedEOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", nil, err
		}
		l := strings.TrimRight(string(line), "\r\n")
		if l == "" {
			if seen {
				return event, data, nil
			}
			continue
		}
		seen = true
		switch {
		case strings.HasPrefix(l, "event:"):
			event = strings.TrimSpace(l[6:])
		case strings.HasPrefix(l, "data:"):
			d := strings.TrimPrefix(l[5:], " ")
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, d...)
		}
	}
}

// answerClientError returns a provider's client error to the caller, in
// OpenAI's shape (body already redacted).
func (s *Server) answerClientError(w http.ResponseWriter, p *Provider, status int, body []byte) {
	w.Header().Set(HeaderProvider, p.Name)
	if p.Kind == KindAnthropic || len(body) == 0 {
		e := provider.ParseError(body)
		typ, msg := e.Type, e.Message
		if msg == "" {
			msg = http.StatusText(status)
		}
		if typ == "" || typ == "error" {
			typ = "invalid_request_error"
		}
		writeOpenAIError(w, status, msg, typ, "", "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeOpenAIError(w http.ResponseWriter, status int, msg, typ, code, param string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(openAIErrorBody(msg, typ, code, param))
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
