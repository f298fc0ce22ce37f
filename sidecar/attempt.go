package sidecar

import (
	"bufio"
	"context"
	"encoding/json"
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
	attReady  attemptKind = iota // an answer to serve: a whole body, or a stream up to its first token
	attAnswer                    // the provider's client error, for the caller
	attNext                      // a failure: try the next provider
	attRetry                     // a fast failure (refused, reset): the same provider may be tried again
	attGone                      // the caller left, or another provider answered first
)

// attempt is one call to one provider. It runs in its own goroutine
// until it has something to serve, fails, or is called off; the walk
// then serves it (attReady) or moves on. Every attempt records exactly
// one outcome with its breaker and one upstream-call count.
type attempt struct {
	s     *Server
	p     *Provider
	b     *agentlib.Breaker
	req   *chatRequest
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
	status int    // attAnswer
	body   []byte // attAnswer: the provider's error body; attReady (not streamed): the answer
	// A stream that is ready: the rest is read by the walk.
	resp *http.Response
	rd   *bufio.Reader
	ant  *anthropicStream
	head [][]byte // chunks up to the first token
	fin  bool     // the stream ended within head
}

func (s *Server) newAttempt(parent context.Context, p *Provider, index int, model string, req *chatRequest, call agentlib.Call, out chan<- *attempt) *attempt {
	a := &attempt{
		s: s, p: p, b: s.breakers[p.Name], req: req, model: model, index: index, call: call, start: time.Now(), out: out,
		responded: make(chan struct{}), finished: make(chan struct{}), lost: make(chan struct{}), won: make(chan struct{}),
	}
	// An attempt outlives the request that started it: a hedge's loser
	// may need to run on until it counts as hung. The walk cancels every
	// attempt when the caller leaves first.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	ctx, stop := context.WithDeadlineCause(ctx, a.start.Add(p.Total), errTotal)
	a.ctx, a.cancel = ctx, func(cause error) { cancel(cause); stop() }
	go a.run()
	return a
}

func (a *attempt) run() {
	go a.watchLost()
	a.do()
	a.out <- a
	if a.kind != attReady || !a.req.Stream {
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

// lose tells the attempt another answer was served.
func (a *attempt) lose() { a.loseOnce.Do(func() { close(a.lost) }) }

// watchLost calls a losing attempt off. One that has not answered yet is
// kept until it would count as hung (the policy's hang_after, and the
// agent's clock resolution), so the cluster still learns of a hang that
// a hedge hid from the caller; one that answered is called off at once.
func (a *attempt) watchLost() {
	select {
	case <-a.finished:
		return
	case <-a.lost:
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
		a.call.Done(o)
		a.s.metrics.upstream.WithLabelValues(a.p.Name, result).Inc()
		if result == "200" {
			a.s.metrics.latency.WithLabelValues(a.p.Name).Observe(time.Since(a.start).Seconds())
		}
	})
}

func (a *attempt) close() {
	if a.resp != nil {
		_ = a.resp.Body.Close()
	}
	a.cancel(nil)
}

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
	hreq, err := up.request(a.ctx, a.req, a.model)
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			a.kind, a.status, a.body = attAnswer, http.StatusBadRequest, openAIErrorBody(re.msg, "invalid_request_error", "", re.param)
			a.end(agentlib.Ignored(), "refused")
			return
		}
		// errUntranslatable: this provider cannot take the request.
		a.fail(attNext, a.p.Name+": "+err.Error(), agentlib.Ignored(), "skipped")
		return
	}
	var firstToken *time.Timer
	if a.req.Stream {
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
		v := classifyStatus(a.p, resp.StatusCode, body, provider.RetryAfter(resp.Header, time.Now()))
		reason := a.s.redact.string(v.reason)
		if v.quota {
			a.s.log.Error().Str("provider", a.p.Name).Str("reason", reason).Msg("quota or billing exhausted: the cluster stays off this provider")
		} else if resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode == 404 {
			a.s.log.Error().Str("provider", a.p.Name).Str("reason", reason).Msg("configuration error at the provider (key, permission or model)")
		}
		if v.act == actAnswer {
			a.kind, a.status, a.body = attAnswer, resp.StatusCode, a.s.redact.bytes(body)
			a.end(v.outcome, strconv.Itoa(resp.StatusCode))
			_ = resp.Body.Close()
			return
		}
		a.fail(attNext, reason, v.outcome, strconv.Itoa(resp.StatusCode))
		return
	}
	if !a.req.Stream {
		a.markResponded()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody))
		_ = resp.Body.Close()
		if err != nil {
			if a.gone() {
				return
			}
			why := fmt.Sprintf("%s: response cut off: %s", a.p.Name, a.cause(err))
			a.fail(attRetry, why, agentlib.Failure(errors.New(why)), "transport_error")
			return
		}
		if a.p.Kind == KindAnthropic {
			if body, err = fromAnthropic(body); err != nil {
				a.fail(attNext, a.p.Name+": "+err.Error(), agentlib.Failure(fmt.Errorf("%s: %w", a.p.Name, err)), "bad_answer")
				return
			}
		}
		a.kind, a.body = attReady, body
		a.end(agentlib.Success(), "200")
		return
	}
	a.rd = bufio.NewReaderSize(resp.Body, 64<<10)
	if a.p.Kind == KindAnthropic {
		a.ant = &anthropicStream{includeUsage: a.req.IncludeUsage}
	}
	for {
		chunks, fin, err := a.read()
		if err != nil {
			if a.gone() {
				return
			}
			why := a.p.Name + ": " + err.Error()
			result := "stream_error"
			if context.Cause(a.ctx) == errFirstToken {
				why, result = fmt.Sprintf("%s: %v (%s)", a.p.Name, errFirstToken, a.p.FirstToken), "first_token_timeout"
			}
			a.fail(attNext, why, agentlib.Failure(errors.New(why)), result)
			return
		}
		a.head = append(a.head, chunks...)
		if fin || anyToken(chunks) {
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

// read returns the next OpenAI chunks of the stream (JSON), and whether
// the stream is complete ([DONE] follows).
func (a *attempt) read() ([][]byte, bool, error) {
	for {
		event, data, err := readSSE(a.rd)
		if err != nil {
			if c := context.Cause(a.ctx); c != nil && c != context.Canceled {
				return nil, false, c
			}
			return nil, false, fmt.Errorf("stream cut off before its end: %v", err)
		}
		if data == nil {
			continue
		}
		if a.ant != nil {
			chunks, fin, err := a.ant.event(event, data)
			if err != nil {
				return nil, false, err
			}
			if len(chunks) == 0 && !fin {
				continue
			}
			return chunks, fin, nil
		}
		if string(data) == "[DONE]" {
			return nil, true, nil
		}
		if e := provider.ParseError(data); e.Shape != provider.ShapeUnknown {
			return nil, false, fmt.Errorf("error mid-stream: %s", firstNonEmpty(e.Message, e.CodeString(), e.Type))
		}
		return [][]byte{data}, false, nil
	}
}

// anyToken reports whether a chunk carries content: text, a tool call, a
// refusal, a finish reason or the usage. A role-only first chunk does not.
func anyToken(chunks [][]byte) bool {
	for _, c := range chunks {
		var ch struct {
			Choices []struct {
				Delta struct {
					Content   string          `json:"content"`
					Refusal   string          `json:"refusal"`
					ToolCalls json.RawMessage `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage json.RawMessage `json:"usage"`
		}
		if json.Unmarshal(c, &ch) != nil {
			return true // not ours to judge: pass it on
		}
		if len(ch.Usage) > 0 && string(ch.Usage) != "null" {
			return true
		}
		for _, x := range ch.Choices {
			if x.Delta.Content != "" || x.Delta.Refusal != "" || (len(x.Delta.ToolCalls) > 0 && string(x.Delta.ToolCalls) != "null") || x.FinishReason != nil {
				return true
			}
		}
	}
	return false
}
