package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// Policies gives each breaker's policy.
type Policies interface {
	Policy(name string) statestore.Policy
	// DefaultPolicy is the policy of every breaker not configured by name.
	DefaultPolicy() statestore.Policy
	// Names lists the breakers configured by name.
	Names() []string
}

// Config tunes a Coordinator. A zero field means the default on its
// comment.
type Config struct {
	// ID names this coordinator in the journal and logs. Default:
	// "coordinator-<hostname>-<pid>".
	ID string
	// TickInterval is how often due breakers are moved on. Default 100ms.
	TickInterval time.Duration
	// RegistryRefresh is how often the list of breakers is re-read from
	// Redis. Default 5s.
	RegistryRefresh time.Duration
	// Logger receives one line per transition. Default: discard.
	Logger *zerolog.Logger
	// Canaries probes half-open breakers whose policy says canary, by
	// breaker name.
	Canaries map[string]probe.Canary
	// ProbeLockMargin is added to a canary's timeout to make the expiry
	// of its window's lock. Default 2s.
	ProbeLockMargin time.Duration
	// MaxConcurrentProbes bounds the canaries this coordinator runs at
	// once. Default 16.
	MaxConcurrentProbes int
}

// Coordinator applies reports and runs the breaker timers.
type Coordinator struct {
	cfg      Config
	store    *statestore.Store
	policies Policies
	log      zerolog.Logger

	rs      *redsync.Redsync
	metrics *metrics
	hub     hub
	probes  sync.WaitGroup // running canaries

	mu      sync.Mutex
	known   map[string]bool  // guarded by mu; names registered in Redis by this process
	beats   map[string]beat  // guarded by mu; each agent's last heartbeat written
	seen    map[string]bool  // guarded by mu; names seen in published changes
	probing map[string]int64 // guarded by mu; breaker -> epoch this process is probing
}

// New returns a Coordinator. It does no I/O.
func New(cfg Config, store *statestore.Store, policies Policies) (*Coordinator, error) {
	if store == nil || policies == nil {
		return nil, errors.New("coordinator: store and policies are required")
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = fmt.Sprintf("coordinator-%s-%d", host, os.Getpid())
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.RegistryRefresh <= 0 {
		cfg.RegistryRefresh = 5 * time.Second
	}
	if cfg.ProbeLockMargin <= 0 {
		cfg.ProbeLockMargin = 2 * time.Second
	}
	if cfg.MaxConcurrentProbes <= 0 {
		cfg.MaxConcurrentProbes = 16
	}
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = *cfg.Logger
	}
	return &Coordinator{
		cfg: cfg, store: store, policies: policies, log: log,
		rs:      redsync.New(goredis.NewPool(store.Client())),
		metrics: newMetrics(),
		known:   map[string]bool{}, seen: map[string]bool{}, probing: map[string]int64{}, beats: map[string]beat{},
	}, nil
}

// ID is the coordinator's name in the journal.
func (c *Coordinator) ID() string { return c.cfg.ID }

// Ingest applies one agent's report and returns the current state of the
// breakers it names, with what was done with each part. It returns an
// error wrapping statestore.ErrUnavailable when Redis cannot be reached;
// each breaker's part is applied whole or not at all, and the parts
// applied before the failure stay applied: the agent resends the same
// report, whose applied parts are then recognised as repeats.
func (c *Coordinator) Ingest(ctx context.Context, r report.Report) ([]report.State, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := c.register(ctx, r.Breakers); err != nil {
		return nil, err
	}
	c.metrics.reports.Inc()
	c.heartbeat(ctx, r)
	out := make([]report.State, 0, len(r.Breakers))
	for _, b := range r.Breakers {
		res, err := c.store.Report(ctx, b.Name, c.policies.Policy(b.Name), r.Agent, r.Batch(b))
		if err != nil {
			return nil, fmt.Errorf("coordinator: report for %s: %w", b.Name, err)
		}
		c.metrics.parts.WithLabelValues(string(res.Applied)).Inc()
		if res.Applied == statestore.AppliedOK {
			c.metrics.outcomes.WithLabelValues("ok").Add(float64(b.OK))
			c.metrics.outcomes.WithLabelValues("fail").Add(float64(b.Fail))
			c.metrics.outcomes.WithLabelValues("slow").Add(float64(b.Slow))
			if b.Hung != nil {
				c.metrics.outcomes.WithLabelValues("hung").Add(float64(b.Hung.N))
			}
		}
		if res.Probe == statestore.ProbeRefused {
			c.log.Warn().Str("breaker", b.Name).Str("agent", r.Agent).Int64("epoch", b.Probe.Epoch).
				Msg("refused a probe verdict: not the current window, or not from the holder of its permit")
		}
		if res.LocalOpen > 0 {
			c.log.Info().Str("breaker", b.Name).Str("agent", r.Agent).Dur("open_for", res.LocalOpen).
				Msg("local trip: too few agents failing for a cluster-wide trip")
		}
		c.logTransition(res)
		if res.Transition != nil {
			// Re-register on every transition: the registry may have been
			// lost with Redis's data while this process remembered it.
			_ = c.store.Register(ctx, b.Name)
		}
		out = append(out, report.StateOf(res))
	}
	return out, nil
}

// heartbeat records the agent as seen, at most once a second per agent,
// and at once when its degraded flag changed.
func (c *Coordinator) heartbeat(ctx context.Context, r report.Report) {
	now := time.Now()
	c.mu.Lock()
	last, ok := c.beats[r.Agent]
	if ok && last.degraded == r.Degraded && now.Sub(last.at) < time.Second {
		c.mu.Unlock()
		return
	}
	if len(c.beats) > 100_000 {
		clear(c.beats) // a flood of agent ids: start over rather than grow
	}
	c.beats[r.Agent] = beat{at: now, degraded: r.Degraded}
	c.mu.Unlock()
	if err := c.store.Heartbeat(ctx, r.Agent, r.Degraded, now); err != nil {
		c.log.Debug().Err(err).Str("agent", r.Agent).Msg("record heartbeat")
	}
}

// beat is the last heartbeat written for an agent.
type beat struct {
	at       time.Time
	degraded bool
}

func (c *Coordinator) register(ctx context.Context, bs []report.Breaker) error {
	var fresh []string
	c.mu.Lock()
	for _, b := range bs {
		if !c.known[b.Name] {
			fresh = append(fresh, b.Name)
		}
	}
	c.mu.Unlock()
	if len(fresh) == 0 {
		return nil
	}
	if err := c.store.Register(ctx, fresh...); err != nil {
		return fmt.Errorf("coordinator: register breakers: %w", err)
	}
	c.mu.Lock()
	for _, n := range fresh {
		c.known[n] = true
	}
	c.mu.Unlock()
	return nil
}

// Ready reports whether Redis answers.
func (c *Coordinator) Ready(ctx context.Context) error { return c.store.Ping(ctx) }

// Run moves due breakers on every TickInterval and probes half-open ones
// with their canaries, until ctx ends. Redis errors are logged and retried
// on the next tick. Run returns nil on cancellation, after its canaries
// have returned.
func (c *Coordinator) Run(ctx context.Context) error {
	defer c.probes.Wait()
	if err := c.store.Register(ctx, c.policies.Names()...); err != nil && ctx.Err() == nil {
		c.log.Warn().Err(err).Msg("register configured breakers")
	}
	// Every transition is published: a breaker that moves anywhere in the
	// cluster is on this coordinator's list within milliseconds, whoever
	// moved it. The registry re-read covers lost messages.
	discovered := make(chan string, 64)
	go c.watch(ctx, discovered)
	ticker := time.NewTicker(c.cfg.TickInterval)
	defer ticker.Stop()
	var names []string
	var refreshed time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-discovered:
			if i, found := slices.BinarySearch(names, n); !found {
				names = slices.Insert(names, i, n)
			}
			continue
		case <-ticker.C:
		}
		if names == nil || time.Since(refreshed) >= c.cfg.RegistryRefresh {
			if n, err := c.names(ctx); err == nil {
				names, refreshed = n, time.Now()
			} else if ctx.Err() == nil {
				c.log.Warn().Err(err).Msg("read breaker registry")
			}
			if err := c.publishPolicies(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn().Err(err).Msg("publish policies")
			}
		}
		if err := c.tick(ctx, names); err != nil && ctx.Err() == nil {
			c.log.Warn().Err(err).Msg("tick")
		}
	}
}

// publishPolicies writes the configured policies where agents read them,
// before any outcome is reported: an agent must know a breaker's
// hang_after before its first call hangs.
func (c *Coordinator) publishPolicies(ctx context.Context) error {
	if err := c.store.SetDefaultPolicy(ctx, c.policies.DefaultPolicy()); err != nil {
		return err
	}
	for _, n := range c.policies.Names() {
		if err := c.store.SeedPolicy(ctx, n, c.policies.Policy(n)); err != nil {
			return err
		}
	}
	return nil
}

// watch sends the name of every breaker whose change is published.
func (c *Coordinator) watch(ctx context.Context, out chan<- string) {
	ps := c.store.Subscribe(ctx)
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveMessage(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		s, ev, err := statestore.DecodeChange(msg.Payload)
		if err != nil {
			continue
		}
		if ev != nil {
			c.hub.publish(*ev)
		}
		c.mu.Lock()
		c.seen[s.Name] = true
		c.mu.Unlock()
		select {
		case out <- s.Name:
		case <-ctx.Done():
		}
	}
}

// names is the registry, plus configured names and names this process saw.
func (c *Coordinator) names(ctx context.Context) ([]string, error) {
	reg, err := c.store.Names(ctx)
	if err != nil {
		return nil, err
	}
	all := append(reg, c.policies.Names()...)
	c.mu.Lock()
	for n := range c.known {
		all = append(all, n)
	}
	for n := range c.seen {
		all = append(all, n)
	}
	c.mu.Unlock()
	slices.Sort(all)
	return slices.Compact(all), nil
}

// tick runs the tick script on every breaker that may be due: open,
// half-open or overridden. Closed breakers cost one pipelined read.
func (c *Coordinator) tick(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	snaps, err := c.store.Snapshots(ctx, names)
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if s.State == statestore.StateClosed && s.Override == statestore.OverrideNone {
			continue
		}
		p := c.policies.Policy(s.Name)
		res, err := c.store.Tick(ctx, s.Name, p, c.cfg.ID)
		if err != nil {
			return err
		}
		c.logTransition(res)
		c.maybeProbe(ctx, res.Snapshot, p)
	}
	return nil
}

func (c *Coordinator) logTransition(r statestore.Result) {
	t := r.Transition
	if t == nil {
		return
	}
	c.metrics.transitions.WithLabelValues(t.OldState, t.NewState, t.Reason).Inc()
	ev := c.log.Info()
	if t.Reason == "misconfigured" {
		// Loud: a key or a permission is wrong; it will not heal by itself.
		ev = c.log.Error()
	}
	ev.
		Str("event", t.Event).
		Str("breaker", t.Breaker).
		Str("old_state", t.OldState).
		Str("new_state", t.NewState).
		Int64("version", t.Version).
		Str("reason", t.Reason).
		Int64("failure_count", t.FailureCount).
		Str("last_error", t.LastError).
		Str("actor", t.Actor).
		Time("timestamp", t.Time).
		Msg("transition")
}
