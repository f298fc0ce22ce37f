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
	"strconv"
	"strings"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/statestore"
)

// Response headers.
const (
	HeaderProvider = "X-Fusebox-Provider"
	HeaderFallback = "X-Fusebox-Fallback"
	HeaderCache    = "X-Fusebox-Cache"
)

const maxUpstreamBody = 32 << 20

// result of trying one provider.
type result int

const (
	served    result = iota // the caller has its answer (possibly an error event mid-stream)
	answered                // the caller got the provider's client error
	next                    // try the next provider
	retry                   // transient: the same provider may be tried again
	cancelled               // the caller went away
)

// walk tries the route's providers in order until one serves the request.
func (s *Server) walk(ctx context.Context, w http.ResponseWriter, route *Route, req *chatRequest) {
	s.budget.request(time.Now())
	var denied []*agentlib.DeniedError
	var failures []string
	tried := 0
	for i, p := range route.Chain {
		model, ok := p.Model(req.Model)
		if !ok {
			continue
		}
		b := s.breakers[p.Name]
		for attempt := 1; ; attempt++ {
			done, err := b.Allow()
			if err != nil {
				var de *agentlib.DeniedError
				if errors.As(err, &de) {
					denied = append(denied, de)
				}
				s.metrics.skipped.WithLabelValues(p.Name).Inc()
				break
			}
			tried++
			res, why := s.try(ctx, w, p, req, model, i > 0, done)
			switch res {
			case served, answered, cancelled:
				return
			case retry:
				if st := b.State(); attempt < s.cfg.Retry.Attempts &&
					(st.Override == statestore.OverrideClosed || st.Override == statestore.OverrideNone && st.State == statestore.StateClosed) {
					if !s.budget.spend(time.Now()) {
						s.metrics.budgetExhausted.Inc()
					} else if sleep(ctx, backoff(s.cfg.Retry, attempt)) {
						s.metrics.retries.WithLabelValues(p.Name).Inc()
						continue
					} else {
						return // the caller went away while we waited
					}
				}
			}
			failures = append(failures, why)
			break
		}
	}
	s.unavailable(w, tried, denied, failures)
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
	writeOpenAIError(w, http.StatusServiceUnavailable, msg, "service_unavailable", "fusebox_all_providers_unavailable", "")
}

// try calls one provider once and reports the outcome through done.
func (s *Server) try(ctx context.Context, w http.ResponseWriter, p *Provider, req *chatRequest, model string, fallback bool, done func(agentlib.Outcome)) (result, string) {
	up := s.upstreams[p.Name]
	cctx, cancel := context.WithTimeout(ctx, p.Total)
	defer cancel()
	hreq, err := up.request(cctx, req, model)
	if err != nil {
		done(agentlib.Ignored())
		var re *requestError
		if errors.As(err, &re) {
			writeOpenAIError(w, http.StatusBadRequest, re.msg, "invalid_request_error", "", re.param)
			return answered, ""
		}
		// errUntranslatable: this provider cannot take the request.
		return next, p.Name + ": " + err.Error()
	}
	start := time.Now()
	resp, err := up.client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			done(agentlib.Ignored())
			return cancelled, ""
		}
		why := fmt.Sprintf("%s: %s", p.Name, transportError(err, cctx))
		done(agentlib.Failure(errors.New(why)))
		s.metrics.upstream.WithLabelValues(p.Name, "transport_error").Inc()
		return retry, why
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		v := classifyStatus(p, resp.StatusCode, body, probe.RetryAfter(resp.Header, time.Now()))
		done(v.outcome)
		s.metrics.upstream.WithLabelValues(p.Name, strconv.Itoa(resp.StatusCode)).Inc()
		if v.quota {
			s.log.Error().Str("provider", p.Name).Str("reason", v.reason).Msg("quota or billing exhausted: the cluster stays off this provider")
		} else if resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode == 404 {
			s.log.Error().Str("provider", p.Name).Str("reason", v.reason).Msg("configuration error at the provider (key, permission or model)")
		}
		if v.act == actAnswer {
			s.answerClientError(w, p, resp.StatusCode, body)
			return answered, ""
		}
		return next, v.reason
	}
	headers := func() {
		w.Header().Set(HeaderProvider, p.Name)
		w.Header().Set(HeaderFallback, strconv.FormatBool(fallback))
	}
	if req.Stream {
		return s.relay(ctx, w, p, resp, req, headers, done, start, fallback)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody))
	if err != nil {
		if ctx.Err() != nil {
			done(agentlib.Ignored())
			return cancelled, ""
		}
		why := fmt.Sprintf("%s: response cut off: %s", p.Name, transportError(err, cctx))
		done(agentlib.Failure(errors.New(why)))
		return retry, why
	}
	if p.Kind == KindAnthropic {
		if body, err = fromAnthropic(body); err != nil {
			done(agentlib.Failure(fmt.Errorf("%s: %w", p.Name, err)))
			return next, p.Name + ": " + err.Error()
		}
	}
	done(agentlib.Success())
	s.metrics.upstream.WithLabelValues(p.Name, "200").Inc()
	s.metrics.latency.WithLabelValues(p.Name).Observe(time.Since(start).Seconds())
	headers()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	s.served(p, fallback)
	return served, ""
}

func (s *Server) served(p *Provider, fallback bool) {
	s.metrics.served.WithLabelValues(p.Name, strconv.FormatBool(fallback)).Inc()
}

// relay streams a provider's answer to the caller as OpenAI chunks. Until
// the first chunk goes out, a failure moves on to the next provider; after
// it, the stream ends with an error event and no [DONE], never a fake
// normal finish.
func (s *Server) relay(ctx context.Context, w http.ResponseWriter, p *Provider, resp *http.Response, req *chatRequest, headers func(), done func(agentlib.Outcome), start time.Time, fallback bool) (result, string) {
	fl, _ := w.(http.Flusher)
	began := false
	begin := func() {
		if began {
			return
		}
		began = true
		headers()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
	}
	write := func(data []byte) error {
		begin()
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	}
	fail := func(why string) (result, string) {
		if ctx.Err() != nil {
			done(agentlib.Ignored())
			return cancelled, ""
		}
		done(agentlib.Failure(errors.New(why)))
		s.metrics.upstream.WithLabelValues(p.Name, "stream_error").Inc()
		if !began {
			return next, why
		}
		_, _ = fmt.Fprintf(w, "data: %s\n\n", openAIErrorBody("the provider's stream failed: "+why, "fusebox_upstream_stream_error", "", ""))
		if fl != nil {
			fl.Flush()
		}
		return served, why
	}
	var ant *anthropicStream
	if p.Kind == KindAnthropic {
		ant = &anthropicStream{includeUsage: req.IncludeUsage}
	}
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		event, data, err := readSSE(rd)
		if err != nil {
			return fail(fmt.Sprintf("%s: stream cut off before its end: %v", p.Name, err))
		}
		if data == nil {
			continue
		}
		if ant != nil {
			chunks, fin, err := ant.event(event, data)
			if err != nil {
				return fail(p.Name + ": " + err.Error())
			}
			for _, c := range chunks {
				if werr := write(c); werr != nil {
					done(agentlib.Ignored())
					return cancelled, ""
				}
			}
			if fin {
				return s.finish(w, fl, p, begin, done, start, fallback)
			}
			continue
		}
		if string(data) == "[DONE]" {
			return s.finish(w, fl, p, begin, done, start, fallback)
		}
		if typ, code, msg := probe.ProviderError(data); typ != "" || code != "" || msg != "" {
			return fail(fmt.Sprintf("%s: error mid-stream: %s", p.Name, firstNonEmpty(msg, code, typ)))
		}
		if werr := write(data); werr != nil {
			done(agentlib.Ignored())
			return cancelled, ""
		}
	}
}

func (s *Server) finish(w http.ResponseWriter, fl http.Flusher, p *Provider, begin func(), done func(agentlib.Outcome), start time.Time, fallback bool) (result, string) {
	begin()
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
	done(agentlib.Success())
	s.metrics.upstream.WithLabelValues(p.Name, "200").Inc()
	s.metrics.latency.WithLabelValues(p.Name).Observe(time.Since(start).Seconds())
	s.served(p, fallback)
	return served, ""
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
// OpenAI's shape.
func (s *Server) answerClientError(w http.ResponseWriter, p *Provider, status int, body []byte) {
	w.Header().Set(HeaderProvider, p.Name)
	if p.Kind == KindAnthropic || len(body) == 0 {
		typ, _, msg := probe.ProviderError(body)
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

// transportError says what went wrong without repeating URLs' secrets
// (there are none: keys travel in headers).
func transportError(err error, ctx context.Context) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "no complete answer within the total timeout"
	case strings.Contains(err.Error(), "timeout awaiting response headers"):
		return "no first byte within the first-byte timeout"
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
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
