package statestore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// TestStore_StateMachineProperties drives two breakers (one traffic-mode,
// one canary-mode) on a real redis-server with random interleavings of
// agents' reports (fenced against fresh or stale views, resent to other
// coordinators, old ones arriving after new ones), ticks, permits and
// probe verdicts with the right and the wrong nonces and tokens, canary
// claims and results, and operators' overrides, from three coordinators
// (three clients, three actors). After every step it checks the
// invariants:
//
//   - no outcome is lost or counted twice: a first delivery is applied
//     exactly when its fence matches the state it arrives in, and moves
//     the consecutive-failure count by the rule (a success resets it to
//     the trailing failures, else it adds the failures); a resent report
//     is a duplicate and changes nothing;
//   - versions only grow within a gen;
//   - one permit and at most one verdict per half-open window, and only
//     from its holder (nonce) or claimant (token); everything else is
//     refused and changes nothing;
//   - a deleted breaker starts again at version 0 in a new gen, and a
//     report resent from before the delete is still a repeat;
//   - an override always wins: while forced, nothing but an operator or
//     the override's own ttl moves the breaker, and a ttl ends it by
//     itself.
//
// Time is an input here: a step may let a few milliseconds of Redis time
// pass so that open timeouts, probe timeouts and ttls come due.
func TestStore_StateMachineProperties(t *testing.T) {
	srv := redistest.Start(t)
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			var stores []*statestore.Store
			for range 3 {
				s, err := statestore.New(srv.Client(t), statestore.Options{Prefix: fmt.Sprintf("prop%d", seed)})
				if err != nil {
					t.Fatal(err)
				}
				stores = append(stores, s)
			}
			newMachine(t, seed, stores).run(700)
		})
	}
}

type sentReport struct {
	agent   string
	breaker string
	batch   statestore.Batch
}

type window struct {
	gen   string
	epoch int64
}

type machine struct {
	t      *testing.T
	r      *rand.Rand
	stores []*statestore.Store
	ctx    context.Context
	pol    map[string]statestore.Policy

	seq     map[string]int64
	sent    []sentReport
	views   map[string][]statestore.Snapshot // breaker -> states seen, for stale fences
	holder  map[window]string                // traffic permit holder's agent
	nonce   map[window]string
	granted map[window]time.Time // when the permit was granted
	claim   map[window]string    // canary claimant's token
	decided map[window]int       // verdicts (incl. releases) per window
	ttl     map[string]bool      // the breaker's override has a ttl
	steps   map[string]int
}

func newMachine(t *testing.T, seed uint64, stores []*statestore.Store) *machine {
	traffic := statestore.DefaultPolicy()
	traffic.OpenTimeout, traffic.MaxOpenTimeout, traffic.ProbeTimeout = 15*time.Millisecond, 30*time.Millisecond, 40*time.Millisecond
	traffic.HonorRetryAfter = false
	canary := traffic
	canary.HalfOpen = statestore.HalfOpenCanary
	canary.CanaryInterval, canary.CanaryMaxInterval = 15*time.Millisecond, 30*time.Millisecond
	return &machine{
		t: t, r: rand.New(rand.NewPCG(seed, 14)), stores: stores, ctx: context.Background(),
		pol: map[string]statestore.Policy{"prop-t": traffic, "prop-c": canary},
		seq: map[string]int64{}, views: map[string][]statestore.Snapshot{},
		holder: map[window]string{}, nonce: map[window]string{}, granted: map[window]time.Time{}, claim: map[window]string{},
		decided: map[window]int{}, ttl: map[string]bool{}, steps: map[string]int{},
	}
}

func (m *machine) store() *statestore.Store { return m.stores[m.r.IntN(len(m.stores))] }

func (m *machine) actor(i int) string { return fmt.Sprintf("coord-%d", i) }

func (m *machine) now(name string) statestore.Detail {
	m.t.Helper()
	d, err := m.stores[0].Details(m.ctx, []string{name})
	if err != nil {
		m.t.Fatal(err)
	}
	return d[0]
}

func (m *machine) run(steps int) {
	t := m.t
	for i := range steps {
		name := []string{"prop-t", "prop-c"}[m.r.IntN(2)]
		before := m.now(name)
		m.views[name] = append(m.views[name], before.Snapshot)
		var res statestore.Result
		var op string
		switch k := m.r.IntN(100); {
		case k < 35:
			op, res = "report", m.report(name, before)
		case k < 43:
			op, res = "resend", m.resend(before)
		case k < 63:
			op = "tick"
			var err error
			if res, err = m.store().Tick(m.ctx, name, m.pol[name], m.actor(m.r.IntN(3))); err != nil {
				t.Fatal(err)
			}
			if before.Override != statestore.OverrideNone && res.Transition != nil &&
				(res.Transition.Event != "override_expired" || !m.ttl[name]) {
				t.Fatalf("step %d: a tick moved a forced breaker: %+v", i, res.Transition)
			}
		case k < 83:
			op, res = "probe", m.probe(name, before)
		case k < 86:
			op, res = "force", m.force(name)
		case k < 90:
			op = "release"
			var err error
			if res, err = m.store().Release(m.ctx, name, m.pol[name], "ops", "prop"); err != nil {
				t.Fatal(err)
			}
			m.ttl[name] = false
		case k < 92:
			op = "delete"
			var err error
			if res, err = m.store().Delete(m.ctx, name, m.pol[name], "ops", "prop"); err != nil {
				t.Fatal(err)
			}
			m.ttl[name] = false
			if !res.Gone || res.Gen != "" || res.Version != 0 {
				t.Fatalf("step %d: delete left %+v", i, res.Snapshot)
			}
		case k < 93:
			op = "reset"
			var err error
			if res, err = m.store().Reset(m.ctx, name, m.pol[name], "ops", "prop"); err != nil {
				t.Fatal(err)
			}
			m.ttl[name] = false
		default:
			op = "time passes"
			time.Sleep(time.Duration(1+m.r.IntN(12)) * time.Millisecond) // an input, not a wait for a condition
			continue
		}
		m.steps[op]++
		if res.Name == "" {
			continue
		}
		after := m.now(res.Name)
		if res.Transition != nil {
			m.steps["event "+res.Transition.Event]++
		}
		if after.Gen == before.Gen && after.Version < before.Version && op != "delete" {
			t.Fatalf("step %d (%s): version went back within gen %s: %d -> %d", i, op, after.Gen, before.Version, after.Version)
		}
		if res.Transition != nil && res.Name == name {
			if ev := res.Transition.Event; ev == "probe_succeeded" || ev == "probe_failed" || res.Transition.Reason == "probe_released" {
				w := window{before.Gen, before.Epoch}
				m.decided[w]++
				if m.decided[w] > 1 {
					t.Fatalf("step %d (%s): window %+v decided %d times", i, op, w, m.decided[w])
				}
			}
		}
	}
	// An override with a ttl ends by itself.
	for name, p := range m.pol {
		if _, err := m.stores[0].Force(m.ctx, name, p, "ops", statestore.OverrideOpen, 30*time.Millisecond, "the last one"); err != nil {
			t.Fatal(err)
		}
		testcluster.Eventually(t, 2*time.Second, name+"'s override ends by itself", func() bool {
			r, err := m.stores[1].Tick(m.ctx, name, p, "coord-1")
			if err != nil {
				t.Fatal(err)
			}
			return r.Override == statestore.OverrideNone && r.State == statestore.StateClosed
		})
	}
	for _, op := range []string{"report", "resend", "tick", "probe", "force", "event trip", "event half_open"} {
		if m.steps[op] == 0 {
			t.Fatalf("the schedule never ran a %s step: %v", op, m.steps)
		}
	}
	if m.steps["event probe_failed"]+m.steps["event probe_succeeded"] == 0 {
		t.Fatalf("no probe verdict was applied: %v", m.steps)
	}
	t.Logf("steps %v; %d windows decided", m.steps, len(m.decided))
}

// report sends an agent's next report for name, fenced against a fresh
// or a stale view, to any coordinator, and checks the count.
func (m *machine) report(name string, before statestore.Detail) statestore.Result {
	t := m.t
	agent := fmt.Sprintf("agent-%d", m.r.IntN(3))
	m.seq[agent]++
	ok, fail := int64(m.r.IntN(4)/3), int64(m.r.IntN(5))
	trailing := fail
	if ok > 0 {
		trailing = int64(m.r.IntN(int(fail) + 1))
	}
	view := before.Snapshot
	if vs := m.views[name]; m.r.IntN(3) == 0 && len(vs) > 1 {
		view = vs[m.r.IntN(len(vs))]
	}
	b := statestore.Batch{Boot: "boot-" + agent, Seq: m.seq[agent], Fenced: true, Gen: view.Gen, Version: view.Version, OK: ok, Fail: fail, TrailingFail: trailing}
	m.sent = append(m.sent, sentReport{agent, name, b})
	res, err := m.store().Report(m.ctx, name, m.pol[name], agent, b)
	if err != nil {
		t.Fatal(err)
	}
	current := view.Version == before.Version && (view.Version == 0 || view.Gen == before.Gen)
	switch {
	case res.Applied == statestore.AppliedDuplicate:
		t.Fatalf("a first delivery was taken for a repeat: %+v", b)
	case current != (res.Applied == statestore.AppliedOK):
		t.Fatalf("fence: view %d/%s, state %d/%s: applied %q", view.Version, view.Gen, before.Version, before.Gen, res.Applied)
	}
	counted := before.Override == statestore.OverrideNone && before.State == statestore.StateClosed && current
	want := before.FailureCount
	if counted {
		if ok > 0 {
			want = trailing
		} else {
			want = before.FailureCount + fail
		}
	}
	switch {
	case counted && want >= 5:
		if res.State != statestore.StateOpen || res.Transition == nil || res.Transition.Event != "trip" || res.Transition.FailureCount != want {
			t.Fatalf("count %d + batch %+v: want a trip at %d, got %+v %+v", before.FailureCount, b, want, res.Snapshot, res.Transition)
		}
	case res.FailureCount != want || (!counted && res.Version != before.Version):
		t.Fatalf("count %d (%s, override %q, fence ok %v) + batch ok %d fail %d trailing %d: got %d v%d, want %d v%d",
			before.FailureCount, before.State, before.Override, current, ok, fail, trailing, res.FailureCount, res.Version, want, before.Version)
	}
	return res
}

// resend delivers a report again, to any coordinator: a repeat.
func (m *machine) resend(before statestore.Detail) statestore.Result {
	if len(m.sent) == 0 {
		return statestore.Result{}
	}
	s := m.sent[m.r.IntN(len(m.sent))]
	if s.breaker != before.Name {
		before = m.now(s.breaker)
	}
	res, err := m.store().Report(m.ctx, s.breaker, m.pol[s.breaker], s.agent, s.batch)
	if err != nil {
		m.t.Fatal(err)
	}
	if res.Applied != statestore.AppliedDuplicate || res.Version != before.Version || res.FailureCount != before.FailureCount || res.Transition != nil {
		m.t.Fatalf("a resent report changed something: %+v %+v (before v%d count %d)", res.Snapshot, res.Transition, before.Version, before.FailureCount)
	}
	return res
}

// probe: a permit and a verdict (traffic), or a claim and a result
// (canary), each with the right or the wrong secret.
func (m *machine) probe(name string, before statestore.Detail) statestore.Result {
	t := m.t
	w := window{before.Gen, before.Epoch}
	open := before.Override == statestore.OverrideNone && before.State == statestore.StateHalfOpen
	if name == "prop-t" {
		if _, held := m.holder[w]; !held || m.r.IntN(3) == 0 {
			agent := fmt.Sprintf("agent-%d", m.r.IntN(3))
			nonce := fmt.Sprintf("n%d", m.r.Uint32())
			g, err := m.store().AcquirePermit(m.ctx, name, m.pol[name], agent, before.Gen, before.Epoch, nonce)
			if err != nil {
				t.Fatal(err)
			}
			_, held := m.holder[w]
			if g.Granted && (held || !open) {
				t.Fatalf("a permit granted in window %+v (open %v, held by %q already)", w, open, m.holder[w])
			}
			if g.Granted {
				m.holder[w], m.nonce[w], m.granted[w] = agent, nonce, time.Now()
			}
			return g
		}
		agent, nonce := m.holder[w], m.nonce[w]
		right := m.r.IntN(2) == 0
		if !right {
			if m.r.IntN(2) == 0 {
				nonce = "guessed"
			} else {
				agent = "someone-else"
			}
		}
		m.seq[agent]++
		pr := &statestore.ProbeOutcome{Gen: w.gen, Epoch: w.epoch, OK: m.r.IntN(2) == 0, Nonce: nonce, Release: m.r.IntN(5) == 0}
		res, err := m.store().Report(m.ctx, name, m.pol[name], agent, statestore.Batch{Boot: "boot-" + agent, Seq: m.seq[agent], Fail: 1, TrailingFail: 1, Probe: pr})
		if err != nil {
			t.Fatal(err)
		}
		decided := res.Probe == statestore.ProbeApplied || res.Probe == statestore.ProbeReleased
		// A permit lives probe_timeout: the holder's verdict after that
		// may be refused (its window timed out), never applied otherwise.
		expired := time.Since(m.granted[w]) > m.pol[name].ProbeTimeout/2
		if decided != (right && open) && !(right && open && expired) {
			t.Fatalf("verdict (right %v) in window %+v (open %v): %q", right, w, open, res.Probe)
		}
		if !decided && (res.Version != before.Version) && !(open == false && res.Transition != nil) {
			t.Fatalf("a refused verdict moved the breaker: %+v %+v", res.Snapshot, res.Transition)
		}
		return res
	}
	i := m.r.IntN(3)
	if _, claimed := m.claim[w]; !claimed || m.r.IntN(3) == 0 {
		tok := fmt.Sprintf("tok-%d-%d", i, m.r.Uint32())
		c, err := m.stores[i].ProbeStart(m.ctx, name, m.pol[name], m.actor(i), before.Epoch, tok, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if c.Granted {
			if !open {
				t.Fatalf("a claim granted outside a half-open window: %+v", before)
			}
			m.claim[window{c.Gen, c.Epoch}] = tok
		}
		return c
	}
	tok := m.claim[w]
	right := m.r.IntN(2) == 0
	if !right {
		tok = "stolen"
	}
	res, err := m.stores[i].ProbeResult(m.ctx, name, m.pol[name], m.actor(i), statestore.ProbeOutcome{Epoch: w.epoch, OK: m.r.IntN(2) == 0, Error: "503", Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stale == (right && open) {
		t.Fatalf("canary result (right token %v) in window %+v (open %v): stale %v", right, w, open, res.Stale)
	}
	if res.Stale && res.Version != before.Version {
		t.Fatalf("a fenced-out canary result moved the breaker")
	}
	return res
}

func (m *machine) force(name string) statestore.Result {
	o := []statestore.Override{statestore.OverrideOpen, statestore.OverrideClosed}[m.r.IntN(2)]
	ttl := time.Duration(0)
	if m.r.IntN(2) == 0 {
		ttl = time.Duration(10+m.r.IntN(30)) * time.Millisecond
	}
	res, err := m.store().Force(m.ctx, name, m.pol[name], "ops", o, ttl, "prop")
	if err != nil {
		m.t.Fatal(err)
	}
	if res.Override != o {
		m.t.Fatalf("force %s: override %q", o, res.Override)
	}
	m.ttl[name] = ttl > 0
	return res
}
