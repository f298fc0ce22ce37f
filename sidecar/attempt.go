package sidecar

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/provider"
)

// Why an attempt's context ended, besides the caller leaving.
var (
	errFirstToken = errors.New("no first token within the first-token timeout")
	errStall      = errors.New("the stream stalled")
	errTotal      = errors.New("no complete answer within the total timeout")
	errLost       = errors.New("another provider answered first")
)

// attemptKind is what came of an attempt, once it reports.
type attemptKind int

const (
	attReady   attemptKind = iota // an answer to serve: a whole body, or a stream up to its first token
	attAnswer                     // the provider's client error, for the caller
	attContext                    // a 400 for the context length: the caller's, unless a larger-context fallback takes it
	attNext                       // a failure: try the next provider
	attRetry                      // a fast failure (refused, reset): the same provider may be tried again
	attGone                       // the caller left, or another provider answered first
)

// attempt is one call to one provider. It runs in its own goroutine
// until it has something to serve, fails, or is called off; the walk
// then serves it (attReady) or moves on. Every attempt records exactly
// one outcome with its breaker and one upstream-call count.
type attempt struct {
	s     *Server
	p     *Provider
	b     *agentlib.Breaker
	req   *request
	ob    *outbound
	model string
	index int // in the route's chain
	hedge bool
	call  agentlib.Call
	start time.Time
	out   chan<- *attempt

	ctx    context.Context
	cancel context.CancelCauseFunc

	responded     chan struct{} // closed at the first byte (first token, for a stream)
	respondedOnce sync.Once
	finished      chan struct{} // closed when do returns
	lost, won     chan struct{}
	loseOnce      sync.Once
	endOnce       sync.Once

	// Set by do before the attempt reports.
	kind   attemptKind
	why    string
	skip   string // attNext: why the provider is passed over (X-Fusebox-Skipped), when it answered well but could not be relayed
	status int    // attAnswer, attContext
	body   []byte // attAnswer: the provider's error body; attReady (not streamed): the answer, in the client's format
	// A stream that is ready: the rest is read by the walk.
	resp  *http.Response
	rd    *bufio.Reader
	relay relay
	head  []provider.Event // events up to the first token, in the client's format
	fin   bool             // the stream ended within head
}

func (s *Server) newAttempt(parent context.Context, p *Provider, b *agentlib.Breaker, index int, model string, req *request, o *outbound, call agentlib.Call, out chan<- *attempt, hedge bool) *attempt {
	a := &attempt{
		s: s, p: p, b: b, req: req, ob: o, model: model, index: index, hedge: hedge, call: call, start: time.Now(), out: out,
		responded: make(chan struct{}), finished: make(chan struct{}), lost: make(chan struct{}), won: make(chan struct{}),
	}
	// An attempt outlives the request that started it: a hedge's loser
	// may need to run on until it counts as hung. The walk cancels every
	// attempt when the caller leaves first.
	parent = s.traceAttempt(parent, p, b, index, model, req, hedge)
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	ctx, stop := context.WithDeadlineCause(ctx, a.start.Add(p.Total), errTotal)
	a.ctx, a.cancel = ctx, func(cause error) { cancel(cause); stop() }
	go a.run()
	return a
}

func (a *attempt) run() {
	a.do()
	a.out <- a
	if a.kind != attReady || !a.req.stream {
		if a.kind != attReady {
			a.cancel(nil)
		}
		return
	}
	select {
	case <-a.won: // the walk serves the stream
	case <-a.lost:
		// Another answer was served; this provider answered well.
		a.end(agentlib.Success(), "hedge_lost")
		a.close()
	}
}

// lose tells the attempt another answer was served, and calls it off
// unless it has finished (watchLost, in a goroutine of its own: only a
// losing attempt needs one).
func (a *attempt) lose() {
	a.loseOnce.Do(func() {
		close(a.lost)
		go a.watchLost()
	})
}

// watchLost calls a losing attempt off. One that has not answered yet is
// kept until it would count as hung (the policy's hang_after, and the
// agent's clock resolution), so the cluster still learns of a hang that
// a hedge hid from the caller; one that answered is called off at once.
func (a *attempt) watchLost() {
	select {
	case <-a.finished:
		return
	default:
	}
	if hang := a.b.HangAfter(); hang > 0 {
		t := time.NewTimer(time.Until(a.start.Add(hang + a.s.agent.HangGrace())))
		defer t.Stop()
		select {
		case <-a.finished:
			return
		case <-a.responded:
		case <-t.C:
		}
	}
	a.cancel(errLost)
}

func (a *attempt) markResponded() {
	a.respondedOnce.Do(func() {
		a.call.Responding()
		close(a.responded)
		a.s.firstBytes.observe(a.p.Name, time.Since(a.start))
	})
}

func (a *attempt) hasResponded() bool {
	select {
	case <-a.responded:
		return true
	default:
		return false
	}
}

// end records the attempt's outcome, once.
func (a *attempt) end(o agentlib.Outcome, result string) {
	a.endOnce.Do(func() {
		a.traceEnd(o, result)
		a.call.Done(o)
		a.s.metrics.upstream.WithLabelValues(a.p.Name, result).Inc()
		if result == "200" {
			a.s.metrics.latency.WithLabelValues(a.p.Name).Observe(time.Since(a.start).Seconds())
		}
	})
}

// close ends a stream that was ready (served, or lost a race): nothing
// reads it after.
func (a *attempt) close() {
	if a.resp != nil {
		_ = a.resp.Body.Close()
	}
	if a.rd != nil {
		a.rd.Reset(nil)
		streamReaders.Put(a.rd)
		a.rd = nil
	}
	a.cancel(nil)
}

// streamReaders are the 64 KiB readers of streams, reused.
var streamReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// fail ends the attempt with kind, a reason for the caller and the log,
// and the outcome its breaker records.
func (a *attempt) fail(kind attemptKind, why string, o agentlib.Outcome, result string) {
	a.kind, a.why = kind, a.s.redact.string(why)
	a.end(o, result)
	if a.resp != nil {
		_ = a.resp.Body.Close()
	}
}

// gone reports whether the attempt ended because the caller left or it
// lost a race, and records that (neither says anything about the provider).
func (a *attempt) gone() bool {
	switch context.Cause(a.ctx) {
	case errLost:
		a.fail(attGone, "", agentlib.Ignored(), "hedge_lost")
		return true
	case context.Canceled:
		a.fail(attGone, "", agentlib.Ignored(), "client_gone")
		return true
	}
	return false
}

func (a *attempt) do() {
	defer close(a.finished)
	up := a.s.upstreams[a.p.Name]
	hreq, err := a.ob.request(a.ctx, a.s.tracing != nil)
	if err != nil { // a URL from a validated base URL: cannot happen
		a.fail(attNext, a.p.Name+": "+err.Error(), agentlib.Ignored(), "bad_request")
		return
	}
	a.traceInject(hreq)
	var firstToken *time.Timer
	if a.req.stream {
		// Headers and then a first token: a stream that starts and sends
		// nothing is as hung as one that never starts.
		firstToken = time.AfterFunc(a.p.FirstToken, func() { a.cancel(errFirstToken) })
		defer firstToken.Stop()
	}
	resp, err := up.client.Do(hreq)
	if err != nil {
		a.transportFailure(err)
		return
	}
	a.resp = resp
	if resp.StatusCode != http.StatusOK {
		a.markResponded()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		v := classifyStatus(a.p, resp.StatusCode, body, provider.RetryIn(resp.Header, time.Now()))
		reason := a.s.redact.string(v.reason)
		switch {
		case v.quota:
			a.s.log.Error().Str("provider", a.p.Name).Str("reason", reason).Msg("quota or billing exhausted: the cluster stays off this provider")
		case v.misconfigured:
			a.s.log.Error().Str("provider", a.p.Name).Str("breaker", a.b.Name()).Str("reason", reason).
				Msg("configuration error at the provider (the key or its permissions): the cluster's breaker opens as misconfigured until reset")
		case resp.StatusCode == http.StatusNotFound:
			a.s.log.Error().Str("provider", a.p.Name).Str("model", a.model).Str("reason", reason).Msg("configuration error at the provider (the model)")
		}
		if v.act == actAnswer {
			a.kind, a.status, a.body = attAnswer, resp.StatusCode, a.s.redact.bytes(body)
			if v.contextLength {
				a.kind, a.why = attContext, reason
			}
			a.end(v.outcome, strconv.Itoa(resp.StatusCode))
			_ = resp.Body.Close()
			return
		}
		a.fail(attNext, reason, v.outcome, strconv.Itoa(resp.StatusCode))
		return
	}
	a.exhausted(resp.Header)
	if !a.req.stream {
		a.markResponded()
		body, err := readAll(io.LimitReader(resp.Body, maxUpstreamBody+1), resp.ContentLength)
		_ = resp.Body.Close()
		if err != nil {
			if a.gone() {
				return
			}
			why := fmt.Sprintf("%s: response cut off: %s", a.p.Name, a.cause(err))
			a.fail(attRetry, why, agentlib.Failure(errors.New(why)), "transport_error")
			return
		}
		if len(body) > maxUpstreamBody {
			// The provider answered; no other would answer smaller.
			a.kind, a.status = attAnswer, http.StatusBadGateway
			a.body = provider.OpenAIErrorBody(fmt.Sprintf("%s answered with more than %d MiB", a.p.Name, maxUpstreamBody>>20), "fusebox_answer_too_large", "", "")
			a.end(agentlib.Success(), "too_large")
			return
		}
		a.traceAnswer(body)
		out, err := convertBody(a.ob.conv, body)
		if err != nil {
			why := a.p.Name + ": its answer could not be read: " + err.Error()
			if errors.Is(err, provider.ErrUntranslatable) {
				// It answered well; this side cannot say it in the
				// caller's format: the next provider may.
				var ue *provider.UntranslatableError
				errors.As(err, &ue)
				a.skip = "untranslatable_answer:" + ue.Field
				a.fail(attNext, why, agentlib.Success(), "untranslatable")
				return
			}
			a.fail(attNext, why, agentlib.Failure(fmt.Errorf("%s: %w", a.p.Name, err)), "bad_answer")
			return
		}
		a.kind, a.body = attReady, out
		a.end(agentlib.Success(), "200")
		return
	}
	a.rd = streamReaders.Get().(*bufio.Reader)
	a.rd.Reset(resp.Body)
	a.relay = newRelay(a.req, a.ob)
	for {
		evs, fin, err := a.read()
		if err != nil {
			if a.gone() {
				return
			}
			why := a.p.Name + ": " + err.Error()
			o, result := streamOutcome(why, err)
			if context.Cause(a.ctx) == errFirstToken {
				why, result = fmt.Sprintf("%s: %v (%s)", a.p.Name, errFirstToken, a.p.FirstToken), "first_token_timeout"
				o = agentlib.Failure(errors.New(why))
			}
			var ue *provider.UntranslatableError
			if errors.As(err, &ue) {
				a.skip = "untranslatable_answer:" + ue.Field
			}
			a.fail(attNext, why, o, result)
			return
		}
		a.head = append(a.head, evs...)
		if fin || anyToken(a.req.api, evs) {
			a.fin = fin
			break
		}
	}
	if !firstToken.Stop() && context.Cause(a.ctx) == errFirstToken {
		why := fmt.Sprintf("%s: %v (%s)", a.p.Name, errFirstToken, a.p.FirstToken)
		a.fail(attNext, why, agentlib.Failure(errors.New(why)), "first_token_timeout")
		return
	}
	a.markResponded()
	a.kind = attReady
}

// exhausted reports an answer whose rate-limit headers say the limit is
// exhausted until a reset: the cluster stays off the provider until then,
// before the 429s start, and the answer itself is a success.
func (a *attempt) exhausted(h http.Header) {
	d := provider.Exhausted(h, time.Now())
	if d <= 0 {
		return
	}
	why := fmt.Sprintf("%s: rate limits exhausted for %s (remaining 0 until the reset)", a.p.Name, d.Round(time.Millisecond))
	a.b.ReportRetryAfter(d, why)
	a.s.metrics.exhausted.WithLabelValues(a.p.Name).Inc()
	a.s.log.Info().Str("provider", a.p.Name).Str("breaker", a.b.Name()).Dur("retry_in", d).Msg("the provider's rate limits are exhausted: the cluster stays off it until the reset")
}

// convertBody turns a provider's whole answer into the client's format.
func convertBody(c conversion, body []byte) ([]byte, error) {
	switch c {
	case convFromAnthropic:
		return provider.AnthropicToOpenAIResponse(body, provider.ResponseOptions{})
	case convFromOpenAI:
		return provider.OpenAIToAnthropicResponse(body)
	}
	return body, nil
}

// transportFailure classifies an error before any response: a timeout
// moves on down the chain; a fast failure (refused, reset) may be retried.
func (a *attempt) transportFailure(err error) {
	if a.gone() {
		return
	}
	why := fmt.Sprintf("%s: %s", a.p.Name, a.cause(err))
	o := agentlib.Failure(errors.New(why))
	switch cause := context.Cause(a.ctx); {
	case cause == errFirstToken:
		why = fmt.Sprintf("%s: %v (%s)", a.p.Name, errFirstToken, a.p.FirstToken)
		a.fail(attNext, why, agentlib.Failure(errors.New(why)), "first_token_timeout")
	case cause == errTotal:
		a.fail(attNext, why, o, "total_timeout")
	case strings.Contains(err.Error(), "timeout awaiting response headers"):
		why = fmt.Sprintf("%s: no first byte within the first-byte timeout (%s)", a.p.Name, a.p.FirstByte)
		a.fail(attNext, why, agentlib.Failure(errors.New(why)), "first_byte_timeout")
	case isTimeout(err):
		a.fail(attNext, why, o, "connect_timeout")
	default:
		a.fail(attRetry, why, o, "transport_error")
	}
}

// cause says what went wrong, naming the timeout that fired.
func (a *attempt) cause(err error) string {
	if c := context.Cause(a.ctx); c != nil && c != context.Canceled {
		return c.Error()
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// read returns the next events of the stream in the client's format, and
// whether the client's stream is complete (its end marker is among them).
func (a *attempt) read() ([]provider.Event, bool, error) {
	for {
		ev, err := provider.ReadEvent(a.rd)
		if err != nil {
			if c := context.Cause(a.ctx); c != nil && c != context.Canceled {
				return nil, false, c
			}
			if errors.Is(err, io.EOF) {
				err = a.relay.end()
			}
			return nil, false, fmt.Errorf("stream cut off before its end: %w", err)
		}
		a.traceEvent(ev)
		evs, fin, err := a.relay.next(ev)
		if err != nil {
			return nil, false, err
		}
		if len(evs) == 0 && !fin {
			continue
		}
		return evs, fin, nil
	}
}
