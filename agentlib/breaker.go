package agentlib

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/fusebox-io/fusebox/internal/logging"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// Breaker is one named breaker as this agent sees it. Get it from
// Agent.Breaker and keep it. It is safe for concurrent use.
type Breaker struct {
	a    *Agent
	name string
	view atomic.Pointer[view]

	// triedWindow is the last half-open window (gen, epoch) this agent
	// asked a permit for: one request per agent per window.
	triedMu       sync.Mutex
	triedGen      string    // guarded by triedMu
	triedEpoch    int64     // guarded by triedMu
	permitRetryAt time.Time // guarded by triedMu; after a failed request
	probing       atomic.Pointer[probeCall]
	probeMu       sync.Mutex
	probeReport   *report.Probe // guarded by probeMu; the traffic probe's verdict, not yet sent

	// localUntil (agent clock, unix nanos) is set while the cluster asked
	// this agent to keep its own breaker open (quorum not met).
	localUntil atomic.Int64

	// rollback counts resyncs in a row that read, in the mirror's gen, an
	// older version than the mirror holds or the same version with another
	// state (only the resync loop touches it).
	rollback int

	local atomic.Pointer[localBreaker] // set while degraded

	// The largest Retry-After heard since the last report, and its reason
	// (retryafter.go).
	retryAfterMS atomic.Int64
	retryReason  atomic.Pointer[string]

	// onChange, when set, is called after each newer state the mirror
	// takes (tests and benchmarks time propagation with it).
	onChange atomic.Pointer[func()]

	// watch holds the traced calls waiting to see the transition they
	// may cause (tracing.go); nil until a traced call ends.
	watch atomic.Pointer[transitionWatch]

	// Denials used while degraded, built once.
	degradedOpen, degradedForced *DeniedError

	// span names and starts Execute's spans, built once (tracing.go).
	span spanInfo
}

func newBreaker(a *Agent, name string) *Breaker {
	b := &Breaker{a: a, name: name}
	b.view.Store(b.newView(statestore.Snapshot{Name: name, State: statestore.StateClosed}, nil, nil, a.clock.Now()))
	b.degradedOpen = &DeniedError{Breaker: name, Reason: ErrOpen, Degraded: true}
	b.degradedForced = &DeniedError{Breaker: name, Reason: ErrForcedOpen, Degraded: true}
	b.span = newSpanInfo(name)
	return b
}

// Name is the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State is the breaker's state as this agent mirrors it.
func (b *Breaker) State() statestore.Snapshot { return b.view.Load().snap }

// RetryAllowed reports whether a call that just failed may be tried again
// at once on this breaker: true only while the breaker is closed as this
// agent sees it (or forced closed by an operator); false while it is
// open, half-open (its one probe is not spent on a retry), forced open,
// or open on this agent only, and, while the agent is degraded, while its
// local breaker is not closed. It reads the mirror only: no I/O and no
// allocation, and no lock but the local breaker's while degraded. A true
// answer is a moment's view: the retry's own Begin still decides.
func (b *Breaker) RetryAllowed() bool {
	v := b.view.Load()
	switch v.snap.Override {
	case statestore.OverrideClosed:
		return true
	case statestore.OverrideOpen:
		return false
	}
	if !b.a.degraded.Load() {
		return v.deny == nil
	}
	if b.a.mirrorLive.Load() && v.deny != nil {
		return false
	}
	lb := b.local.Load()
	if lb == nil { // degraded began while this breaker was being created
		return v.deny == nil
	}
	lb.mu.Lock()
	until := lb.openUntil
	lb.mu.Unlock()
	if !until.IsZero() && b.a.clock.Now().Before(until) {
		return false
	}
	return lb.cb.State() == gobreaker.StateClosed
}

// Allow asks whether a call may go ahead. When it may, call done exactly
// once with the call's Outcome. When it may not, err is a *DeniedError.
//
// In the closed and open states Allow is a few atomic loads and one add:
// no lock, no allocation, no I/O, with or without in-flight tracking. A
// call allowed by Allow counts as waiting for its first byte until done;
// use Begin for calls that can say when their answer starts (a stream).
// In a traffic-mode half-open window the first caller on this agent makes
// one bounded Redis call to ask for the cluster's single probe permit.
func (b *Breaker) Allow() (done func(Outcome), err error) {
	if b.a.degraded.Load() {
		return b.allowDegraded()
	}
	v := b.view.Load()
	if v.deny == nil {
		if s := v.tally.begin(b.a.tick.Load()); s != nil {
			return s.done, nil
		}
		return v.tally.doneFn, nil
	}
	if v.traffic {
		if p := b.askPermit(v); p != nil {
			return p.done, nil
		}
	}
	return nil, v.deny
}

// Call is one call a Breaker allowed, from Begin. It is a small value:
// keep it in a variable, call Responding when the answer starts (a stream's
// first chunk, a response's headers) and Done exactly once. Until
// Responding or Done the call counts as waiting: past the policy's
// hang_after the cluster counts it as hung, while it is still in flight.
// A Call is not safe for concurrent use.
type Call struct {
	b         *Breaker
	s         *slotPart
	t         *tally
	probe     *probeCall
	fn        func(Outcome) // a degraded call's local done
	responded bool
	hung      bool
}

// Begin is Allow for a call that can tell when its answer starts. It
// does not allocate in the closed state.
func (b *Breaker) Begin() (Call, error) {
	if b.a.degraded.Load() {
		done, err := b.allowDegraded()
		if err != nil {
			return Call{}, err
		}
		return Call{b: b, fn: done}, nil
	}
	v := b.view.Load()
	if v.deny == nil {
		return Call{b: b, t: v.tally, s: v.tally.begin(b.a.tick.Load())}, nil
	}
	if v.traffic {
		if p := b.askPermit(v); p != nil {
			return Call{b: b, probe: p}, nil
		}
	}
	return Call{}, v.deny
}

// Responding says the call's answer has started: from now on it is not
// waiting for the provider. Calling it again does nothing.
func (c *Call) Responding() {
	if c.responded || c.b == nil {
		return
	}
	c.responded = true
	switch {
	case c.probe != nil:
		c.probe.responded.Store(true)
	case c.s != nil:
		c.hung = c.s.respond()
	}
}

// Done records the call's outcome. Call it exactly once.
func (c *Call) Done(o Outcome) {
	switch {
	case c.b == nil:
	case c.fn != nil:
		c.fn(o)
	case c.probe != nil:
		c.probe.done(o)
	case c.s != nil:
		c.s.finish(o, c.responded, c.hung)
	default:
		c.t.record(o, nil)
	}
	c.b = nil
}

// Execute runs fn if the breaker allows it and records its outcome,
// classified by Config.Classify. It returns fn's error, or a
// *DeniedError without calling fn, or ctx's error if ctx is already done.
// A panic in fn counts as a failure and is re-raised. With tracing on
// (Config.TracerProvider), the call is a span of its own, "fusebox
// <breaker>", and fn gets a context holding it (tracing.go).
func (b *Breaker) Execute(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, span := b.startSpan(ctx)
	done, err := b.Allow()
	if err != nil {
		b.endDenied(span, err)
		return err
	}
	finished := false
	defer failOnPanic(b, span, done, &finished)
	ferr := fn(ctx)
	finished = true
	o := b.a.cfg.Classify(ctx, ferr)
	b.endCall(span, o, ferr)
	done(o)
	return ferr
}

// Execute is Breaker.Execute for a function that returns a value.
func Execute[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	ctx, span := b.startSpan(ctx)
	done, err := b.Allow()
	if err != nil {
		b.endDenied(span, err)
		return zero, err
	}
	finished := false
	defer failOnPanic(b, span, done, &finished)
	v, ferr := fn(ctx)
	finished = true
	o := b.a.cfg.Classify(ctx, ferr)
	b.endCall(span, o, ferr)
	done(o)
	return v, ferr
}

// failOnPanic records a panic in the protected function as a failure (on
// its span too, when traced) and lets it go on, as gobreaker does.
func failOnPanic(b *Breaker, span trace.Span, done func(Outcome), finished *bool) {
	if *finished {
		return
	}
	r := recover()
	if r == nil {
		// runtime.Goexit (t.FailNow in a test): not the provider's fault.
		b.endCall(span, Ignored(), nil)
		done(Ignored())
		return
	}
	o := Failure(fmt.Errorf("panic: %v", r))
	b.endPanic(span, o, r)
	done(o)
	panic(r)
}

// probeCall is the one call of a traffic-mode half-open window this
// agent got the permit for.
type probeCall struct {
	b         *Breaker
	gen       string
	epoch     int64
	nonce     string
	started   atomic.Int64 // agent tick (the clock loop dates it later if it ran late)
	responded atomic.Bool
	decided   atomic.Bool
}

func (p *probeCall) done(o Outcome) { p.verdict(o, false) }

// verdict queues the probe's verdict for the next report, once: a probe
// that hangs is decided as failed when it crosses hang_after, and its
// late end changes nothing.
func (p *probeCall) verdict(o Outcome, hung bool) {
	if !p.decided.CompareAndSwap(false, true) {
		return
	}
	b := p.b
	b.probing.CompareAndSwap(p, nil)
	r := &report.Probe{Gen: p.gen, Epoch: p.epoch, Nonce: p.nonce}
	switch {
	case hung:
		r.Error = "the probe call waited past hang_after for a first byte"
	case o.kind == kindIgnored:
		// No verdict (a bad request, a cancel): give the window back so
		// another call can probe at once.
		r.Release = true
	default:
		r.OK = o.kind == kindSuccess
		r.RetryAfterMS = min(o.retryAfter.Milliseconds(), report.MaxRetryAfter.Milliseconds())
		if o.err != nil {
			r.Error = clipError(o.err.Error())
		}
	}
	if r.Release {
		b.a.log.Info().Str("breaker", b.name).Int64("epoch", p.epoch).Msg("the half-open probe ended with no verdict: window given back")
	}
	b.probeMu.Lock()
	b.probeReport = r
	b.probeMu.Unlock()
	b.a.kickUrgent()
}

// askPermit handles a traffic-mode half-open window: the first caller on
// this agent asks a coordinator (POST /v1/permits, which runs the permit
// script: agents need no Redis write access) for the window's single
// permit; everyone else is denied (nil).
func (b *Breaker) askPermit(v *view) *probeCall {
	b.triedMu.Lock()
	if b.triedGen == v.snap.Gen && b.triedEpoch >= v.snap.Epoch || time.Now().Before(b.permitRetryAt) {
		b.triedMu.Unlock()
		return nil
	}
	b.triedGen, b.triedEpoch = v.snap.Gen, v.snap.Epoch
	b.triedMu.Unlock()

	var raw [16]byte
	_, _ = rand.Read(raw[:])
	p := &probeCall{b: b, gen: v.snap.Gen, epoch: v.snap.Epoch, nonce: hex.EncodeToString(raw[:])}
	p.started.Store(b.a.tick.Load())
	ctx, cancel := context.WithTimeout(context.Background(), b.a.cfg.PermitTimeout)
	defer cancel()
	ans, err := b.requestPermit(ctx, report.PermitRequest{Agent: b.a.cfg.AgentID, Breaker: b.name, Gen: p.gen, Epoch: p.epoch, Nonce: p.nonce})
	if err != nil {
		b.a.log.Warn().Err(err).Str("breaker", b.name).Msg("half-open permit request failed; asking again shortly")
		// Not a refusal: ask again in this window (a window nobody asks
		// for stays half-open), after a pause.
		b.triedMu.Lock()
		if b.triedGen == p.gen && b.triedEpoch == p.epoch {
			b.triedEpoch = p.epoch - 1
		}
		b.permitRetryAt = time.Now().Add(max(b.a.cfg.PermitTimeout, 100*time.Millisecond))
		b.triedMu.Unlock()
		return nil
	}
	if !ans.Granted {
		b.apply(ans.State, nil, false) // the window may have moved on
		return nil
	}
	b.probing.Store(p)
	b.a.log.Info().Str("breaker", b.name).Int64("epoch", p.epoch).Msg("this call is the half-open probe")
	return p
}

// requestPermit posts a permit request to the coordinators, the one
// reports go to first, within ctx.
func (b *Breaker) requestPermit(ctx context.Context, pr report.PermitRequest) (report.PermitAnswer, error) {
	body, err := json.Marshal(pr)
	if err != nil {
		return report.PermitAnswer{}, err
	}
	a := b.a
	first := int(a.coordIdx.Load())
	var lastErr error
	for i := range a.coords {
		base := a.coords[(first+i)%len(a.coords)]
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/permits", bytes.NewReader(body))
		if err != nil {
			return report.PermitAnswer{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		if a.cfg.Token != "" {
			req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
		}
		resp, err := a.http.Do(req)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("coordinator %s answered the permit request %d: %s", logging.RedactURL(base), resp.StatusCode, bytes.TrimSpace(data[:min(len(data), 300)]))
			continue
		}
		var ans report.PermitAnswer
		if err := json.Unmarshal(data, &ans); err != nil {
			return report.PermitAnswer{}, fmt.Errorf("coordinator %s: bad permit answer: %w", logging.RedactURL(base), err)
		}
		return ans, nil
	}
	return report.PermitAnswer{}, lastErr
}

// takeProbe returns the probe verdict waiting to be reported, if any.
func (b *Breaker) takeProbe() *report.Probe {
	b.probeMu.Lock()
	defer b.probeMu.Unlock()
	p := b.probeReport
	b.probeReport = nil
	return p
}

// take collects this breaker's report entry; ok is false when there is
// nothing to send.
func (b *Breaker) take(now int64) (report.Breaker, bool) {
	v := b.view.Load()
	r, ok := v.tally.take(b.name, now, v.hangTicks, b.a.cfg.HangResolution)
	r, ok = b.takeRetryAfter(v, r, ok)
	if p := b.takeProbe(); p != nil {
		if !ok {
			r = report.Breaker{Name: b.name}
		}
		r.Probe, ok = p, true
	}
	return r, ok
}

// resetCounters drops what was counted for the cluster (leaving degraded
// mode: the local breakers used it).
func (b *Breaker) resetCounters() {
	v := b.view.Load()
	_, _ = v.tally.take(b.name, b.a.tick.Load(), v.hangTicks, b.a.cfg.HangResolution)
	b.retryAfterMS.Store(0) // a duration heard then would be counted from now
	b.retryReason.Store(nil)
}

// setLocalOpen opens this agent's own breaker for d (the cluster's
// answer when too few agents fail for a cluster-wide trip).
func (b *Breaker) setLocalOpen(d time.Duration) {
	until := b.a.clock.Now().Add(d).UnixNano()
	if until <= b.localUntil.Load() {
		return
	}
	b.localUntil.Store(until)
	b.a.log.Warn().Str("breaker", b.name).Dur("open_for", d).
		Msg("open on this agent only: the failures are this agent's alone (quorum not met)")
	b.refresh()
}

// Policy is the cluster's policy for this breaker as mirrored; ok is
// false until the agent has read it.
func (b *Breaker) Policy() (p statestore.Policy, ok bool) {
	if v := b.view.Load(); v.policy != nil {
		return *v.policy, true
	}
	return b.a.policy, false
}

// HangAfter is the mirrored policy's hang_after: how long a call may
// wait for its first byte before the cluster counts it as hung (0: off).
func (b *Breaker) HangAfter() time.Duration {
	p, _ := b.Policy()
	return p.HangAfter
}
