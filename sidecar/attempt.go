package sidecar

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
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
	attUnsettled attemptKind = iota // nothing yet: a path that ends so is a failure
	attReady                        // an answer to serve: a whole body, or a stream up to its first token
	attAnswer                       // the provider's client error, for the caller
	attContext                      // a 400 for the context length: the caller's, unless a larger-context fallback takes it
	attNext                         // a failure: try the next provider
	attRetry                        // a fast failure (refused, reset): the same provider may be tried again
	attGone                         // the caller left, or another provider answered first
)

// try is what one attempt is asked to do: call one provider, for one
// model (as sent to it), with the request built for it, under the call
// its breaker allowed.
type try struct {
	p     *Provider
	b     *agentlib.Breaker
	call  agentlib.Call
	model string
	index int // in the route's chain
	ob    *outbound
	hedge bool // started beside a slow first attempt
}

// attempt is one call to one provider. It runs in its own goroutine
// until it has something to serve, fails, or is called off; the walk
// then serves it (attReady) or moves on.
//
// Every attempt records exactly one outcome with its breaker and one
// upstream-call count, in one place: each phase (the call, do; serving a
// stream, relayTo; a stream that lost the race, loseReady) settles the outcome
// and result along its path and records them with a single deferred
// finish. A phase that ends without settling (a panic, a return that
// forgot to) records a failure.
type attempt struct {
	try
	s     *Server
	req   *request
	start time.Time
	out   chan<- *attempt

	ctx    context.Context
	cancel context.CancelCauseFunc

	responded     chan struct{} // closed at the first byte (first token, for a stream)
	respondedOnce sync.Once
	finished      chan struct{} // closed when do returns
	lost, won     chan struct{}
	loseOnce      sync.Once
	recordOnce    sync.Once

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

	// What the breaker records, settled along the path of the phase that
	// runs (do; then, for a stream, relayTo or loseReady) and recorded by
	// its deferred finish. result is the upstream-call metric's label; ""
	// until settled.
	outcome agentlib.Outcome
	result  string
	// serving: the stream phase has begun (relayTo or loseReady); do's finish
	// holds a ready stream's outcome for it.
	serving bool
}

// launch starts an attempt beside the walk.
func (wk *walk) launch(t try) *attempt {
	a := &attempt{
		try: t, s: wk.s, req: wk.req, start: time.Now(), out: wk.evs,
		responded: make(chan struct{}), finished: make(chan struct{}), lost: make(chan struct{}), won: make(chan struct{}),
	}
	// An attempt outlives the request that started it: a hedge's loser
	// may need to run on until it counts as hung. The walk cancels every
	// attempt when the caller leaves first.
	parent := a.traceStart(wk.ctx)
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	ctx, stop := context.WithDeadlineCause(ctx, a.start.Add(a.p.Total), errTotal)
	a.ctx, a.cancel = ctx, func(cause error) { cancel(cause); stop() }
	go a.run()
	return a
}

func (a *attempt) run() {
	a.do()
	kind := a.kind // the walk owns the attempt once it reported
	a.out <- a
	if kind != attReady || !a.req.stream {
		// Nothing reads the provider any more: a whole answer was read
		// and its body closed. Ending the context now releases its total
		// timeout's timer, which would keep the attempt's contexts alive
		// for the rest of that timeout (two minutes, as shipped).
		a.cancel(nil)
		return
	}
	select {
	case <-a.won: // the walk serves the stream (relayTo)
	case <-a.lost:
		a.loseReady()
	}
}

// loseReady ends a stream that was ready when another answer was
// served: this provider answered well.
func (a *attempt) loseReady() {
	a.serving = true
	defer a.finish()
	a.settle(attReady, "", agentlib.Success(), "hedge_lost")
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

// settle sets what came of the attempt: what the walk does with it (in
// the call phase), a reason for the caller and the log, and the outcome
// its breaker records with the metric's result. It records nothing: the
// phase's deferred finish does.
func (a *attempt) settle(kind attemptKind, why string, o agentlib.Outcome, result string) {
	if !a.serving { // the walk reads kind and why once the call phase reported
		a.kind, a.why = kind, why
	}
	a.outcome, a.result = o, result
}

// finish records what the phase settled on, once per attempt, and
// releases what it holds. Deferred by each phase: do (a ready stream's
// outcome is held for the stream phase), relayTo and loseReady. A phase
// that ended without settling is a failure. A panic in the call phase,
// the attempt's own goroutine, is logged and the walk moves on; one
// while a stream is served goes on to the HTTP server, which cuts the
// response (never a normal finish).
func (a *attempt) finish() {
	r := recover()
	switch {
	case r != nil:
		why := fmt.Sprintf("%s: internal error: %v", a.p.Name, r)
		a.s.log.Error().Str("provider", a.p.Name).Str("breaker", a.b.Name()).Str("panic", fmt.Sprint(r)).Bytes("stack", debug.Stack()).
			Msg("an attempt panicked: counted as a failure")
		a.settle(attNext, why, agentlib.Failure(errors.New(why)), "internal_error")
	case !a.serving && a.kind == attReady && a.req.stream:
		return // held: the stream's end settles it (relayTo, loseReady)
	case a.result == "":
		why := a.p.Name + ": the attempt ended with no outcome"
		a.s.log.Error().Str("provider", a.p.Name).Str("breaker", a.b.Name()).Msg(why)
		a.settle(attNext, why, agentlib.Failure(errors.New(why)), "internal_error")
	}
	if !a.serving {
		a.why = a.s.redact.string(a.why)
	}
	a.record()
	if a.serving || a.kind != attReady {
		a.close()
	}
	if r != nil && a.serving {
		panic(r)
	}
}

// record reports the settled outcome to the breaker and counts the
// upstream call, once.
func (a *attempt) record() {
	a.recordOnce.Do(func() {
		a.traceEnd(a.outcome, a.result)
		a.call.Done(a.outcome)
		a.s.metrics.upstream.WithLabelValues(a.p.Name, a.result).Inc()
		if a.result == "200" {
			a.s.metrics.latency.WithLabelValues(a.p.Name).Observe(time.Since(a.start).Seconds())
		}
	})
}

// close releases the provider's response and the stream's reader (nothing
// reads it after); a stream's phase also ends the attempt's context.
func (a *attempt) close() {
	if a.resp != nil {
		_ = a.resp.Body.Close()
	}
	if a.rd != nil {
		a.rd.Reset(nil)
		streamReaders.Put(a.rd)
		a.rd = nil
	}
	if a.serving {
		a.cancel(nil)
	}
}

// streamReaders are the 64 KiB readers of streams, reused.
var streamReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// gone reports whether the attempt ended because the caller left or it
// lost a race, and settles that (neither says anything about the provider).
func (a *attempt) gone() bool {
	switch context.Cause(a.ctx) {
	case errLost:
		a.settle(attGone, "", agentlib.Ignored(), "hedge_lost")
		return true
	case context.Canceled:
		a.settle(attGone, "", agentlib.Ignored(), "client_gone")
		return true
	}
	return false
}

// do is the call phase: it calls the provider and settles what came of
// it, up to a whole answer or a stream's first token.
func (a *attempt) do() {
	defer close(a.finished)
	defer a.finish()
	up := a.s.upstreams[a.p.Name]
	hreq, err := a.ob.request(a.ctx, a.s.tracing != nil)
	if err != nil { // a URL from a validated base URL: cannot happen
		a.settle(attNext, a.p.Name+": "+err.Error(), agentlib.Ignored(), "bad_request")
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
		if pb := a.s.breakers[a.p.Name]; v.accountWide && pb != nil {
			if n := pb.spread(a.b, v.outcome); n > 0 {
				a.s.log.Error().Str("provider", a.p.Name).Str("breaker", a.b.Name()).Int("breakers", n).
					Msg("the key or the account was refused, not one model: every breaker of the provider this sidecar knows records it")
			}
		}
		result := strconv.Itoa(resp.StatusCode)
		switch {
		case v.act == actAnswer && v.contextLength:
			a.settle(attContext, reason, v.outcome, result)
			a.status, a.body = resp.StatusCode, a.s.redact.bytes(body)
		case v.act == actAnswer:
			a.settle(attAnswer, "", v.outcome, result)
			a.status, a.body = resp.StatusCode, a.s.redact.bytes(body)
		default:
			a.settle(attNext, reason, v.outcome, result)
		}
		return
	}
	a.exhausted(resp.Header)
	if !a.req.stream {
		a.readWhole(resp)
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
			// The provider's own words (a stream's error event) may echo
			// the key: redacted before they become the cluster's last_error.
			why := a.s.redact.string(a.p.Name + ": " + err.Error())
			o, result := streamOutcome(why, err)
			if context.Cause(a.ctx) == errFirstToken {
				why, result = fmt.Sprintf("%s: %v (%s)", a.p.Name, errFirstToken, a.p.FirstToken), "first_token_timeout"
				o = agentlib.Failure(errors.New(why))
			}
			var ue *provider.UntranslatableError
			if errors.As(err, &ue) {
				a.skip = "untranslatable_answer:" + ue.Field
			}
			a.settle(attNext, why, o, result)
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
		a.settle(attNext, why, agentlib.Failure(errors.New(why)), "first_token_timeout")
		return
	}
	a.markResponded()
	a.kind = attReady // held: relayTo or loseReady settles it
}

// readWhole reads a whole answer and settles the attempt with it, in the
// client's format.
func (a *attempt) readWhole(resp *http.Response) {
	a.markResponded()
	body, err := readAll(io.LimitReader(resp.Body, maxUpstreamBody+1), resp.ContentLength)
	_ = resp.Body.Close()
	if err != nil {
		if a.gone() {
			return
		}
		why := a.s.redact.string(fmt.Sprintf("%s: response cut off: %s", a.p.Name, a.cause(err)))
		a.settle(attRetry, why, agentlib.Failure(errors.New(why)), "transport_error")
		return
	}
	if len(body) > maxUpstreamBody {
		// The provider answered; no other would answer smaller.
		a.settle(attAnswer, "", agentlib.Success(), "too_large")
		a.status = http.StatusBadGateway
		a.body = provider.OpenAIErrorBody(fmt.Sprintf("%s answered with more than %d MiB", a.p.Name, maxUpstreamBody>>20), "fusebox_answer_too_large", "", "")
		return
	}
	a.traceAnswer(body)
	out, err := convertBody(a.ob.conv, body)
	if err != nil {
		why := a.s.redact.string(a.p.Name + ": its answer could not be read: " + err.Error())
		var ue *provider.UntranslatableError
		if errors.As(err, &ue) {
			// It answered well; this side cannot say it in the caller's
			// format: the next provider may.
			a.skip = "untranslatable_answer:" + ue.Field
			a.settle(attNext, why, agentlib.Success(), "untranslatable")
			return
		}
		a.settle(attNext, why, agentlib.Failure(errors.New(why)), "bad_answer")
		return
	}
	a.settle(attReady, "", agentlib.Success(), "200")
	a.body = out
}

// relayTo is the stream phase of a ready stream the walk serves: it writes
// the events up to the first token, then the rest as they come, to w
// (its headers already written).
// A stream that fails after it began ends with an error event (and no
// end marker), never a fake normal finish.
func (a *attempt) relayTo(ctx context.Context, w http.ResponseWriter) {
	a.serving = true
	defer a.finish()
	// The caller hanging up ends the stream's upstream call at once.
	defer context.AfterFunc(ctx, func() { a.cancel(context.Canceled) })()
	fl, _ := w.(http.Flusher)
	var buf []byte // the events of one read, on the wire
	write := func(evs []provider.Event) error {
		buf = buf[:0]
		for _, ev := range evs {
			buf = ev.Append(buf)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	}
	if write(a.head) != nil {
		a.settle(attReady, "", agentlib.Ignored(), "client_gone")
		return
	}
	stall := time.AfterFunc(a.p.Stall, func() { a.cancel(errStall) })
	defer stall.Stop()
	for fin := a.fin; !fin; {
		evs, done, err := a.read()
		if err != nil {
			if ctx.Err() != nil {
				a.settle(attReady, "", agentlib.Ignored(), "client_gone")
				return
			}
			why := a.s.redact.string(a.p.Name + ": " + err.Error())
			o, result := streamOutcome(why, err)
			if errors.Is(err, errStall) {
				why, result = fmt.Sprintf("%s: the stream stalled for %s", a.p.Name, a.p.Stall), "stall"
				o = agentlib.Failure(errors.New(why))
			}
			a.settle(attReady, "", o, result)
			_ = write([]provider.Event{streamErrorEvent(a.req.api, "the provider's stream failed: "+why, err)})
			return
		}
		stall.Reset(a.p.Stall)
		if write(evs) != nil {
			a.settle(attReady, "", agentlib.Ignored(), "client_gone")
			return
		}
		fin = done
	}
	a.settle(attReady, "", agentlib.Success(), "200")
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
	why := a.s.redact.string(fmt.Sprintf("%s: %s", a.p.Name, a.cause(err)))
	o := agentlib.Failure(errors.New(why))
	switch cause := context.Cause(a.ctx); {
	case cause == errFirstToken:
		why = fmt.Sprintf("%s: %v (%s)", a.p.Name, errFirstToken, a.p.FirstToken)
		a.settle(attNext, why, agentlib.Failure(errors.New(why)), "first_token_timeout")
	case cause == errTotal:
		a.settle(attNext, why, o, "total_timeout")
	case strings.Contains(err.Error(), "timeout awaiting response headers"):
		why = fmt.Sprintf("%s: no first byte within the first-byte timeout (%s)", a.p.Name, a.p.FirstByte)
		a.settle(attNext, why, agentlib.Failure(errors.New(why)), "first_byte_timeout")
	case isTimeout(err):
		a.settle(attNext, why, o, "connect_timeout")
	default:
		a.settle(attRetry, why, o, "transport_error")
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
