package agentlib

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/fusebox-io/fusebox/internal/logging"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// Config configures an Agent. A zero field means the default on its
// comment.
type Config struct {
	// CoordinatorURL is the coordinator's base URL, e.g.
	// "http://127.0.0.1:8080". A comma-separated list names several; the
	// agent moves to the next when one fails. Required.
	CoordinatorURL string
	// RedisURL is the Redis the coordinators use (see statestore.Dial for
	// the forms). Required unless Redis is set.
	RedisURL string
	// Redis is used instead of RedisURL when set; the agent does not
	// close it.
	Redis redis.UniversalClient
	// RedisLabel names the Redis in the agent's log lines (a warning that
	// it is unreachable) when Redis is set, since a client carries no
	// URL: give the URL it was dialed with; the agent removes its
	// credentials (internal/logging.RedactURL). Default: RedisURL, with
	// its credentials removed, or "(client given)".
	RedisLabel string
	// Token is the bearer token (role agent) sent with every report.
	Token string
	// Prefix of the Redis keys and channel; must match the coordinators'.
	// Default "fusebox".
	Prefix string
	// AgentID names this agent in reports and the journal. Default
	// "<hostname>-<pid>".
	AgentID string
	// Service names the app this agent runs in, sent with every report:
	// the dashboard groups agents by it. 1-128 of A-Z a-z 0-9 . _ : @ / -,
	// starting with a letter or digit. Default: none.
	Service string
	// FlushInterval is how long successes may wait on the agent while
	// nothing fails: failures, hung calls and probe verdicts are sent at
	// once, with every success pending. A healthy fleet then costs one
	// report per agent per interval, whatever its traffic. The cluster's
	// rate rules see other agents' successes up to this late (a window of
	// W seconds may miss FlushInterval/W of its successes); consecutive
	// failures stay exact (a report says how old its last success is).
	// Default 1s.
	FlushInterval time.Duration
	// ResyncInterval bounds how stale the mirror can be when pub/sub
	// messages are lost: every interval the agent compares versions with
	// Redis in one round trip (one HMGET per breaker while all are closed).
	// It is also the heartbeat interval and how often a degraded agent
	// checks whether it can leave degraded mode; two failed resyncs in a
	// row take the Redis link down. Default 2s.
	ResyncInterval time.Duration
	// RequestTimeout bounds each call to the coordinator and each resync.
	// Default 1s.
	RequestTimeout time.Duration
	// PermitTimeout bounds the one Redis call that asks for a traffic-mode
	// half-open permit. Default 250ms.
	PermitTimeout time.Duration
	// DefaultPolicy is used for local (degraded) breakers until the
	// cluster's policy for a breaker is known. Default
	// statestore.DefaultPolicy().
	DefaultPolicy *statestore.Policy
	// Classify turns Execute's error into an Outcome. Default
	// DefaultClassify.
	Classify func(ctx context.Context, err error) Outcome
	// HTTPClient sends reports. Default: a pooled client with
	// RequestTimeout.
	HTTPClient *http.Client
	// Logger receives mode changes and errors. Default: discard.
	Logger *zerolog.Logger
	// HangResolution is the tick of the agent's coarse clock, which times
	// calls in flight (hang_after) and slow calls (slow_call): a call is
	// counted as hung or slow at most two ticks late, never early.
	// Default 100ms.
	HangResolution time.Duration
	// Clock is read for slow-call durations and retry times. Default: the
	// wall clock.
	Clock Clock
	// TracerProvider makes the span Execute starts for each call,
	// "fusebox <breaker>", a child of the span in the call's context
	// (tracing.go). Default: OpenTelemetry's global provider
	// (otel.GetTracerProvider()): no span until the app sets one with
	// otel.SetTracerProvider, and then, from that moment, spans through
	// it. Allow and Begin never trace.
	TracerProvider trace.TracerProvider
}

// Agent mirrors the cluster's breakers and reports outcomes. It is safe
// for concurrent use.
type Agent struct {
	cfg       Config
	log       zerolog.Logger
	clock     Clock
	store     *statestore.Store
	feed      *statestore.Feed // the breakers' changes; Breaker follows each new one
	ownsRedis bool
	http      *http.Client
	coords    []string
	coordIdx  atomic.Uint32
	policy    statestore.Policy // default policy for local breakers

	mu       sync.Mutex
	breakers map[string]*Breaker // guarded by mu
	list     atomic.Pointer[[]*Breaker]

	// tick is the agent's coarse clock (Clock.Now / HangResolution),
	// advanced by clockLoop: Allow reads it to stamp a call's start.
	tick atomic.Int64

	degraded   atomic.Bool // either link is down
	mirrorLive atomic.Bool // the mirror still follows Redis
	health     health
	mode       mode         // guarded by health.mu
	redisAddr  string       // for log lines, without credentials
	tracer     trace.Tracer // Execute's spans; nil: none
	global     bool         // tracer is the global provider's: no span while no app set one
	coordsLog  string       // the coordinators, for log lines, without credentials

	// boot and seq identify reports (docs/protocol.md); only the flusher
	// touches seq.
	boot string
	seq  int64
	// resyncs counts resyncs; only the resync loop touches it.
	resyncs int
	// served counts what the app's routes served (CountServed), for the
	// next report.
	served servedRoutes

	urgent     chan struct{}
	resyncKick chan struct{}
	cancel     context.CancelFunc
	flushStop  chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

// New starts an agent: its flusher, its subscription and its resync
// timer. It does not wait for Redis or the coordinator: until the first
// resync every breaker is closed, and an unreachable Redis or coordinator
// puts the agent in degraded mode.
func New(cfg Config) (*Agent, error) {
	if cfg.CoordinatorURL == "" {
		return nil, fmt.Errorf("%w: CoordinatorURL is required", ErrInvalidConfig)
	}
	var coords []string
	for _, raw := range strings.Split(cfg.CoordinatorURL, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: CoordinatorURL %q: want http(s)://host:port", ErrInvalidConfig, raw)
		}
		coords = append(coords, strings.TrimRight(u.String(), "/"))
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 2 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = time.Second
	}
	if cfg.PermitTimeout <= 0 {
		cfg.PermitTimeout = 250 * time.Millisecond
	}
	if cfg.HangResolution <= 0 {
		cfg.HangResolution = 100 * time.Millisecond
	}
	if cfg.AgentID == "" {
		host, _ := os.Hostname()
		cfg.AgentID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.Service != "" && !report.ValidService(cfg.Service) {
		return nil, fmt.Errorf("%w: Service %q: want 1-128 of A-Z a-z 0-9 . _ : @ / -, starting with a letter or digit", ErrInvalidConfig, cfg.Service)
	}
	policy := statestore.DefaultPolicy()
	if cfg.DefaultPolicy != nil {
		policy = *cfg.DefaultPolicy
	}
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("%w: DefaultPolicy: %w", ErrInvalidConfig, err)
	}
	if cfg.Classify == nil {
		cfg.Classify = DefaultClassify
	}
	rdb, owns := cfg.Redis, false
	redisAddr := "(client given)"
	switch {
	case cfg.RedisLabel != "":
		redisAddr = logging.RedactURL(cfg.RedisLabel)
	case cfg.RedisURL != "":
		redisAddr = logging.RedactURL(cfg.RedisURL)
	}
	if rdb == nil {
		if cfg.RedisURL == "" {
			return nil, fmt.Errorf("%w: RedisURL or Redis is required", ErrInvalidConfig)
		}
		var err error
		if rdb, err = statestore.Dial(cfg.RedisURL); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		owns = true
	}
	store, err := statestore.New(rdb, statestore.Options{Prefix: cfg.Prefix})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Timeout: cfg.RequestTimeout,
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: cfg.RequestTimeout}).DialContext,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	}
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = cfg.Logger.With().Str("component", "agent").Str("agent", cfg.AgentID).Logger()
	}
	clock := cfg.Clock
	if clock == nil {
		clock = wallClock{}
	}
	tracer, tracerGlobal := newTracer(cfg.TracerProvider)
	a := &Agent{
		cfg:        cfg,
		log:        log,
		clock:      clock,
		store:      store,
		ownsRedis:  owns,
		http:       hc,
		coords:     coords,
		policy:     policy,
		breakers:   map[string]*Breaker{},
		redisAddr:  redisAddr,
		tracer:     tracer,
		global:     tracerGlobal,
		coordsLog:  logging.RedactURLs(strings.Join(coords, ",")),
		boot:       newBoot(),
		urgent:     make(chan struct{}, 1),
		resyncKick: make(chan struct{}, 1),
		flushStop:  make(chan struct{}),
	}
	a.health.redisOK, a.health.coordOK = true, true
	a.mirrorLive.Store(true)
	a.tick.Store(clock.Now().UnixNano() / int64(cfg.HangResolution))
	empty := []*Breaker{}
	a.list.Store(&empty)

	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.feed = store.Follow(ctx, statestore.FollowOptions{})
	a.wg.Add(4)
	go func() { defer a.wg.Done(); a.clockLoop(ctx) }()
	go func() { defer a.wg.Done(); a.flushLoop() }()
	go func() { defer a.wg.Done(); a.subscribeLoop() }()
	go func() { defer a.wg.Done(); a.resyncLoop(ctx) }()
	return a, nil
}

// ID is the agent's name in reports.
func (a *Agent) ID() string { return a.cfg.AgentID }

// Breaker returns the breaker called name, creating it on first use.
// Keep the handle: Allow on it is the hot path. A new breaker is closed
// until the agent's first resync of it (started at once, in the
// background), so create the breakers an app uses when it starts, not on
// its first request.
func (a *Agent) Breaker(name string) (*Breaker, error) {
	if !statestore.ValidName(name) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	a.mu.Lock()
	b, ok := a.breakers[name]
	if !ok {
		b = newBreaker(a, name)
		a.breakers[name] = b
		list := make([]*Breaker, 0, len(a.breakers))
		for _, x := range a.breakers {
			list = append(list, x)
		}
		a.list.Store(&list)
	}
	a.mu.Unlock()
	if !ok {
		a.feed.Add(name) // on Redis Cluster: its shard channel, on the same connection when its node has one
		if a.degraded.Load() {
			b.enterDegraded(a.clock.Now(), !a.mirrorLive.Load())
		}
		a.kickResync()
	}
	return b, nil
}

// Degraded reports whether the agent is deciding (in part) on local
// breakers because Redis or the coordinators cannot be reached; Links
// says which.
func (a *Agent) Degraded() bool { return a.degraded.Load() }

func newBoot() string {
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}

// Close flushes pending outcomes (bounded by RequestTimeout) and stops
// the agent, ending the spans of Execute calls it still held for a
// transition (close it before the tracer provider). Breakers keep
// answering Allow from their last state.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		close(a.flushStop)
		a.cancel()
		a.wg.Wait()
		a.endHeldSpans()
		if a.ownsRedis {
			_ = a.store.Client().Close()
		}
	})
	return nil
}

func (a *Agent) breakerList() []*Breaker { return *a.list.Load() }

func (a *Agent) lookup(name string) *Breaker {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.breakers[name]
}

func (a *Agent) kickUrgent() {
	select {
	case a.urgent <- struct{}{}:
	default:
	}
}

func (a *Agent) kickResync() {
	select {
	case a.resyncKick <- struct{}{}:
	default:
	}
}

// HangGrace is how long past hang_after a call must stay in flight to be
// surely counted as hung: two ticks of the agent's clock, and a half for
// the clock loop to run.
func (a *Agent) HangGrace() time.Duration { return 5 * a.cfg.HangResolution / 2 }
