package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/statestore"
)

// Policies gives each breaker's policy. Implementations must be safe for
// concurrent use (config.Config is: it is read only).
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
	// RegistryRefresh is how often the registry's changes are read from
	// its log and 500 breakers' states checked in turn, the net under a
	// lost message (the change channel tells the timer about the rest at
	// once). Default 5s.
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
	// Limits bound the breakers agents may create. Zero fields: no limit
	// (cmd/coordinator's defaults are 10,000 and 1,000).
	Limits statestore.Limits
	// Retention expires a breaker no agent reported and nothing changed
	// for this long, unless the config names it or an override is in
	// effect. 0: never.
	Retention time.Duration
	// RetentionSweep is how often the expiry looks. Default 1m.
	RetentionSweep time.Duration
	// MetricsMaxBreakers caps the breakers with a fusebox_breaker_state
	// series (those not closed first). Default 1000.
	MetricsMaxBreakers int
	// AggregateInterval is how long this coordinator gathers agents'
	// success-only report parts before applying them, one script call per
	// breaker: a healthy fleet's cost follows its breakers, not its size
	// or traffic. Parts with a failure, a hung call, a Retry-After or a
	// probe verdict are applied at once. The rate rules see successes up
	// to this (and the agents' FlushInterval) late. Default 1s; negative
	// applies every part at once.
	AggregateInterval time.Duration
	// HeartbeatInterval is how often an agent's heartbeat is written (and
	// at once when its degraded flag changes). Default 10s.
	HeartbeatInterval time.Duration
}

// Coordinator is one coordinator's Loop and Service, sharing a store,
// policies, a log and metrics: the wiring of the two. It serves the API
// as its Service does (the Service's methods are promoted), and Run runs
// its Loop. It is safe for concurrent use; run it once.
type Coordinator struct {
	// Service is the work behind the API.
	*Service
	// Loop is the control loop: Run it (Coordinator.Run) once.
	Loop *Loop
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
	if cfg.RetentionSweep <= 0 {
		cfg.RetentionSweep = time.Minute
	}
	if cfg.MetricsMaxBreakers <= 0 {
		cfg.MetricsMaxBreakers = 1000
	}
	if cfg.AggregateInterval == 0 {
		cfg.AggregateInterval = time.Second
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.Retention < 0 || cfg.Limits.MaxBreakers < 0 || cfg.Limits.MaxPerAgent < 0 {
		return nil, errors.New("coordinator: negative retention or limit")
	}
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = *cfg.Logger
	}
	b := &base{cfg: cfg, store: store, policies: policies, log: log, metrics: newMetrics(), hub: &hub{}, known: &knownNames{}, view: &clusterView{}}
	loop := newLoop(b)
	b.registered = loop.registered
	return &Coordinator{Loop: loop, Service: &Service{base: b, beats: map[string]beat{}}}, nil
}

// Run runs the control loop until ctx ends (Loop.Run), and the Service's
// gathering of success-only parts.
func (c *Coordinator) Run(ctx context.Context) error {
	if c.cfg.AggregateInterval > 0 {
		c.Service.aggregating.Store(true)
		done := make(chan struct{})
		go func() { defer close(done); c.Service.flushSuccesses(ctx) }()
		defer func() { <-done }()
		defer c.Service.aggregating.Store(false)
	}
	return c.Loop.Run(ctx)
}

// ID is the coordinator's name in the journal.
func (c *Coordinator) ID() string { return c.cfg.ID }

// Collectors returns the coordinator's metrics for a Prometheus registry.
func (c *Coordinator) Collectors() []prometheus.Collector {
	m := c.metrics
	return []prometheus.Collector{m.transitions, m.reports, m.parts, m.outcomes, m.probes, m.probeDuration, m.refused, m.tick, m.refresh, newClusterCollector(c.base)}
}

// base is what the Loop and the Service share. Its fields are set once;
// hub, known and view are safe for concurrent use.
type base struct {
	cfg      Config
	store    *statestore.Store
	policies Policies
	log      zerolog.Logger
	metrics  *metrics
	hub      *hub
	known    *knownNames
	view     *clusterView
	// registered tells the Loop of names this process registered, so
	// its view has them before the next registry refresh.
	registered func(names ...string)
}

// noteRegistered records names this process registered: known at once,
// and in the Loop's view before the next registry refresh.
func (b *base) noteRegistered(names ...string) {
	b.known.add(names...)
	b.registered(names...)
}

// names is the registry plus the configured names, sorted.
func (b *base) names(ctx context.Context) ([]string, error) {
	reg, err := b.store.Names(ctx)
	if err != nil {
		return nil, err
	}
	all := append(reg, b.policies.Names()...)
	slices.Sort(all)
	return slices.Compact(all), nil
}

func (b *base) configured(name string) bool {
	_, found := slices.BinarySearch(b.policies.Names(), name)
	return found
}

func (b *base) logTransition(r statestore.Result) {
	t := r.Transition
	if t == nil {
		return
	}
	b.metrics.transitions.WithLabelValues(t.OldState, t.NewState, t.Reason).Inc()
	ev := b.log.Info()
	if t.Reason == "misconfigured" {
		// Loud: a key or a permission is wrong; it will not heal by itself.
		ev = b.log.Error()
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

// knownNames caches the names this process knows are registered, so a
// report of known breakers costs no registry call. It forgets everything
// every RegistryRefresh (a name deleted or expired elsewhere registers
// again, and counts again) and a name at once when this process deletes
// it. Safe for concurrent use.
type knownNames struct {
	mu      sync.Mutex
	names   map[string]bool // guarded by mu
	clearAt time.Time       // guarded by mu
}

// missing returns the names not known, after forgetting everything if
// refresh has passed.
func (k *knownNames) missing(names []string, refresh time.Duration) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if k.names == nil || now.After(k.clearAt) || len(k.names) > 1_000_000 {
		k.names, k.clearAt = map[string]bool{}, now.Add(refresh)
	}
	var out []string
	for _, n := range names {
		if !k.names[n] {
			out = append(out, n)
		}
	}
	return out
}

func (k *knownNames) add(names ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.names == nil {
		k.names = map[string]bool{}
	}
	for _, n := range names {
		k.names[n] = true
	}
}

func (k *knownNames) forget(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.names, name)
}
