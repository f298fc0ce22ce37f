package agentlib

import (
	"errors"

	"go.opentelemetry.io/otel/trace"

	"github.com/fusebox-io/fusebox/statestore"
)

// ApplyPolicyForTest gives the mirror a policy, as a resync would.
func (b *Breaker) ApplyPolicyForTest(p statestore.Policy) { b.apply(b.State(), &p, false) }

// HangAfterForTest is the mirrored policy's hang_after in ticks.
func (b *Breaker) HangAfterForTest() int64 { return b.view.Load().hangTicks }

// FailLinkForTest records one failure of a link.
func (a *Agent) FailLinkForTest(redis bool) {
	if redis {
		a.setRedis(false, errors.New("test"))
		return
	}
	a.setCoordinator(false, false, errors.New("test"))
}

// ChangesHeardForTest counts the change messages the agent's feed heard.
func (a *Agent) ChangesHeardForTest() int64 { return a.feed.Stats().Changes }

// UnsetGlobalTracerProviderForTest is OTel's global provider as the
// process started with it (nil when it could not be told apart).
func UnsetGlobalTracerProviderForTest() trace.TracerProvider { return unsetGlobal }

// OnChangeForTest calls f after each newer state the mirror takes, in
// the goroutine that applied it.
func (b *Breaker) OnChangeForTest(f func()) { b.onChange.Store(&f) }
