package testcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/statestore"
)

// API tokens every test cluster accepts, one per role.
const (
	AdminToken = "test-admin-token-0123456789"
	AgentToken = "test-agent-token-0123456789"
	ReadToken  = "test-read-token-0123456789"
)

// Tokens are the tokens above, as the API takes them.
var Tokens = []config.Token{
	{Name: "test-admin", Role: config.RoleAdmin, Secret: AdminToken},
	{Name: "test-agent", Role: config.RoleAgent, Secret: AgentToken},
	{Name: "test-read", Role: config.RoleRead, Secret: ReadToken},
}

// Cluster is a Redis and its coordinators. Its methods are safe for
// concurrent use.
type Cluster struct {
	Redis        *redistest.Server
	Store        *statestore.Store
	Config       *config.Config
	Coordinators []*Coordinator
}

// Coordinator is one running coordinator. Stop is safe to call more
// than once and from several goroutines.
type Coordinator struct {
	*coordinator.Coordinator
	URL    string
	server *httptest.Server
	API    *api.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// Options shape a cluster. A zero field means the default on its comment.
type Options struct {
	// Coordinators to run. Default 1.
	Coordinators int
	// Config holds the policies, YAML. Default: built-in defaults.
	ConfigYAML string
	// Tick is the coordinators' timer interval. Default 10ms.
	Tick time.Duration
	// Getenv gives canaries their secrets. Default: none set.
	Getenv func(string) string
	// ProbeLockMargin is added to a canary's timeout for its lock's
	// expiry. Default 200ms.
	ProbeLockMargin time.Duration
	// RedisHook, when set, sees every command the coordinators send.
	RedisHook redis.Hook
	// Coordinator, when set, adjusts each coordinator's config (limits,
	// retention, registry refresh).
	Coordinator func(*coordinator.Config)
	// RedisArgs are extra redis-server arguments (an ACL, for example).
	RedisArgs []string
	// RedisURL is how the coordinators log in, for a server with ACL
	// users ("redis://user:pass@"); the address is filled in. Default: no
	// AUTH.
	RedisUser, RedisPassword string
}

// Start runs a cluster until the test ends.
func Start(tb testing.TB, o Options) *Cluster {
	tb.Helper()
	if o.Coordinators <= 0 {
		o.Coordinators = 1
	}
	if o.Tick <= 0 {
		o.Tick = 10 * time.Millisecond
	}
	cfg := config.Default()
	if o.ConfigYAML != "" {
		var err error
		if cfg, err = config.Parse([]byte(o.ConfigYAML)); err != nil {
			tb.Fatal(err)
		}
	}
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.ProbeLockMargin <= 0 {
		o.ProbeLockMargin = 200 * time.Millisecond
	}
	srv := redistest.Start(tb, redistest.WithArgs(o.RedisArgs...))
	auth := ""
	if o.RedisUser != "" {
		auth = o.RedisUser + ":" + o.RedisPassword + "@"
	}
	rdb, err := statestore.Dial("redis://" + auth + srv.Addr + "?max_retries=-1&dial_timeout=200ms&read_timeout=500ms&write_timeout=500ms")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = rdb.Close() })
	if o.RedisHook != nil {
		rdb.AddHook(o.RedisHook)
	}
	store, err := statestore.New(rdb, statestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{Redis: srv, Store: store, Config: cfg}
	for i := range o.Coordinators {
		canaries, err := probe.NewAll(cfg.Canaries, o.Getenv, nil)
		if err != nil {
			tb.Fatal(err)
		}
		ccfg := coordinator.Config{
			ID: "coord-" + string(rune('a'+i)), TickInterval: o.Tick,
			Canaries: canaries, ProbeLockMargin: o.ProbeLockMargin,
		}
		if o.Coordinator != nil {
			o.Coordinator(&ccfg)
		}
		coord, err := coordinator.New(ccfg, store, cfg)
		if err != nil {
			tb.Fatal(err)
		}
		srv := api.New(api.Config{Tokens: Tokens, MetricsPublic: true, Collectors: coord.Collectors()}, coord.Service)
		ts := httptest.NewUnstartedServer(srv)
		ts.Config.RegisterOnShutdown(srv.CloseStreams)
		ts.Start()
		ctx, cancel := context.WithCancel(context.Background())
		cc := &Coordinator{Coordinator: coord, URL: ts.URL, server: ts, API: srv, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(cc.done)
			_ = coord.Run(ctx)
		}()
		c.Coordinators = append(c.Coordinators, cc)
	}
	tb.Cleanup(func() {
		for _, cc := range c.Coordinators {
			cc.Stop()
		}
	})
	return c
}

// URLs is every coordinator's URL, comma-separated, as agents take it.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Coordinators))
	for i, cc := range c.Coordinators {
		urls[i] = cc.URL
	}
	return strings.Join(urls, ",")
}

var stopMu sync.Mutex

// Stop ends the coordinator's timer loop and HTTP server.
func (cc *Coordinator) Stop() {
	stopMu.Lock()
	defer stopMu.Unlock()
	if cc.cancel == nil {
		return
	}
	cc.cancel()
	<-cc.done
	cc.API.CloseStreams()
	cc.server.CloseClientConnections()
	cc.server.Close()
	cc.cancel = nil
}

// Snapshot reads one breaker's cluster state.
func (c *Cluster) Snapshot(tb testing.TB, name string) statestore.Snapshot {
	tb.Helper()
	s, err := c.Store.Snapshots(context.Background(), []string{name})
	if err != nil {
		tb.Fatal(err)
	}
	return s[0]
}

// Eventually polls cond every 2 milliseconds until it holds, and fails
// the test when it does not within d.
func Eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	EventuallyEvery(tb, d, 2*time.Millisecond, what, cond)
}

// EventuallyEvery is Eventually with another polling interval, for
// conditions that are costly to check (HTTP to several containers).
func EventuallyEvery(tb testing.TB, d, every time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(every)
	}
}

// Trip opens a breaker the way agents do: a report of failures through the
// first coordinator's HTTP API, so the coordinator registers it.
func (c *Cluster) Trip(tb testing.TB, name string, failures int) {
	tb.Helper()
	body := fmt.Sprintf(`{"agent":"testcluster","breakers":[{"name":%q,"fail":%d,"trailing_fail":%d,"last_error":"tripped by test"}]}`, name, failures, failures)
	req, err := http.NewRequest(http.MethodPost, c.Coordinators[0].URL+"/v1/reports", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+AgentToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		tb.Fatalf("trip %s: %d %s", name, resp.StatusCode, msg)
	}
}
