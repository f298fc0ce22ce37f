package bench_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/bench"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

// provider is the failing dependency: every call takes latency, and fails
// while failing is set.
type provider struct {
	failing atomic.Bool
	calls   atomic.Int64
}

const (
	providerLatency = 2 * time.Millisecond
	pace            = 5 * time.Millisecond // each replica calls every pace
	openTimeout     = 200 * time.Millisecond
	probeWatch      = 600 * time.Millisecond
	converge        = 10 * time.Second // give up waiting for every replica to deny
)

func (p *provider) call() error {
	p.calls.Add(1)
	time.Sleep(providerLatency)
	if p.failing.Load() {
		return errFailed
	}
	return nil
}

type trial struct {
	callsBeforeAllDenied int64
	lastDenied           time.Duration
	probesPerWindow      float64
	breakerErrors        int64
	converged            bool
}

// errBreaker marks an error of the breaker itself, not the provider's.
var errBreaker = errors.New("breaker error")

// calledProvider reports whether a replica's call reached the provider.
type counting struct {
	*provider
	called bool
}

func (c *counting) call() error {
	c.called = true
	return c.provider.call()
}

// runTrial runs n replicas against a provider that fails from t0 on, and
// measures how long the fleet takes to stop calling it and what it sends
// afterwards. The outage starts after 100 ms of healthy traffic, and once
// known reports true (nil: at once): the breaker is as a fleet that ran a
// while has it.
func runTrial(b *testing.B, reps []func(p *counting) error, known func() bool) trial {
	p := &provider{}
	var stop atomic.Bool
	var t0 atomic.Int64 // unix nanos of the outage start
	var breakerErrors atomic.Int64
	denied := make([]atomic.Int64, len(reps))
	var wg sync.WaitGroup
	for i, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100000 && !stop.Load(); n++ {
				c := &counting{provider: p}
				err := r(c)
				if errors.Is(err, errBreaker) && t0.Load() != 0 {
					breakerErrors.Add(1)
				}
				if !c.called && t0.Load() != 0 && denied[i].Load() == 0 {
					denied[i].Store(time.Now().UnixNano())
				}
				time.Sleep(pace)
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	time.Sleep(100 * time.Millisecond) // healthy traffic first
	for deadline := time.Now().Add(5 * time.Second); known != nil && !known(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the breaker was not known 5 s into healthy traffic")
		}
	}
	callsAt0 := p.calls.Load()
	p.failing.Store(true)
	start := time.Now()
	t0.Store(start.UnixNano())
	var last int64
	converged := false
	for deadline := start.Add(converge); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		last, converged = 0, true
		for i := range denied {
			d := denied[i].Load()
			if d == 0 {
				converged = false
				break
			}
			last = max(last, d)
		}
		if converged {
			break
		}
	}
	lastAt := time.Now()
	if converged {
		lastAt = time.Unix(0, last)
	}
	callsAtLast := p.calls.Load()
	time.Sleep(probeWatch) // the fleet is open: only probes reach the provider now
	probes := p.calls.Load() - callsAtLast
	return trial{
		callsBeforeAllDenied: callsAtLast - callsAt0,
		lastDenied:           lastAt.Sub(start),
		probesPerWindow:      float64(probes) / float64(probeWatch/(openTimeout+providerLatency)),
		breakerErrors:        breakerErrors.Load(),
		converged:            converged,
	}
}

// BenchmarkOutage: N replicas (1, 10, 50) against one failing provider, for
// fusebox, a gobreaker v2 breaker per replica, and gobreaker v2's
// DistributedCircuitBreaker over the same Redis. Reported per
// implementation: calls that reached the failing provider before every
// replica denied (mean over trials), the time until the last replica
// denied (p50 and p99 over trials; with few trials p99 is the worst), and
// probe calls per half-open window afterwards. All three trip after 5
// consecutive failures and stay open 200ms. Run with -benchtime=1x.
func BenchmarkOutage(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{ConfigYAML: fmt.Sprintf(
		"defaults:\n  consecutive_failures: 5\n  open_timeout: %s\n  max_open_timeout: %s\n  half_open: traffic\n", openTimeout, openTimeout)})
	gbRedis := redis.NewClient(&redis.Options{Addr: c.Redis.Addr, PoolSize: 100})
	b.Cleanup(func() { _ = gbRedis.Close() })
	store := bench.NewGobreakerStore(gbRedis)
	settings := func(name string) gobreaker.Settings {
		return gobreaker.Settings{Name: name, MaxRequests: 1, Timeout: openTimeout,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 }}
	}
	for _, n := range []int{1, 10, 50} {
		var agents []*agentlib.Agent
		for i := range n {
			a, err := agentlib.New(agentlib.Config{CoordinatorURL: c.URLs(), RedisURL: c.Redis.URL(), Token: testcluster.AgentToken,
				AgentID: fmt.Sprintf("replica-%d", i)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = a.Close() })
			agents = append(agents, a)
		}
		trials := 5
		if n == 50 {
			trials = 2
		}
		impls := []struct {
			name  string
			build func(trial int) []func(p *counting) error
			// known: the cluster has the trial's breaker (nil: nothing to
			// wait for).
			known func(trial int) func() bool
		}{
			{"fusebox", func(t int) []func(p *counting) error {
				var reps []func(p *counting) error
				name := fmt.Sprintf("outage-%d-%d", n, t)
				for _, a := range agents {
					br, _ := a.Breaker(name)
					reps = append(reps, func(p *counting) error {
						done, err := br.Allow()
						if err != nil {
							return err
						}
						if err := p.call(); err != nil {
							done(agentlib.Failure(err))
							return err
						}
						done(agentlib.Success())
						return nil
					})
				}
				return reps
			}, func(t int) func() bool {
				// Successes wait on an agent up to FlushInterval (1 s)
				// before they reach the cluster and register the breaker.
				name := fmt.Sprintf("outage-%d-%d", n, t)
				return func() bool {
					ok, err := c.Store.Registered(context.Background(), name)
					return err == nil && ok
				}
			}},
			{"gobreaker-per-replica", func(t int) []func(p *counting) error {
				var reps []func(p *counting) error
				for range n {
					cb := gobreaker.NewCircuitBreaker[struct{}](settings("local"))
					reps = append(reps, func(p *counting) error {
						_, err := cb.Execute(func() (struct{}, error) { return struct{}{}, p.call() })
						return err
					})
				}
				return reps
			}, nil},
			{"gobreaker-distributed", func(t int) []func(p *counting) error {
				var reps []func(p *counting) error
				name := fmt.Sprintf("outage-%d-%d", n, t)
				for range n {
					cb, err := gobreaker.NewDistributedCircuitBreaker[struct{}](store, settings(name))
					if err != nil {
						b.Fatal(err)
					}
					reps = append(reps, func(p *counting) error {
						_, err := cb.Execute(func() (struct{}, error) { return struct{}{}, p.call() })
						if err != nil && !errors.Is(err, errFailed) && !errors.Is(err, gobreaker.ErrOpenState) && !errors.Is(err, gobreaker.ErrTooManyRequests) {
							return fmt.Errorf("%w: %v", errBreaker, err) // its Redis lock timed out
						}
						return err
					})
				}
				return reps
			}, nil},
		}
		for _, im := range impls {
			b.Run(fmt.Sprintf("replicas=%d/%s", n, im.name), func(b *testing.B) {
				var calls, probes, breakerErrs float64
				var lasts []time.Duration
				stuck := 0
				tr := trials
				if im.name == "gobreaker-distributed" && n > 1 {
					tr = 2 // each trial can take the full converge limit
				}
				for range b.N {
					for t := range tr {
						var known func() bool
						if im.known != nil {
							known = im.known(t)
						}
						r := runTrial(b, im.build(t), known)
						calls += float64(r.callsBeforeAllDenied)
						probes += r.probesPerWindow
						breakerErrs += float64(r.breakerErrors)
						lasts = append(lasts, r.lastDenied)
						if !r.converged {
							stuck++
						}
					}
				}
				k := float64(len(lasts))
				slices.Sort(lasts)
				b.ReportMetric(calls/k, "calls-to-failing")
				b.ReportMetric(float64(lasts[len(lasts)/2].Microseconds())/1000, "all-denied-p50-ms")
				b.ReportMetric(float64(lasts[(len(lasts)*99)/100].Microseconds())/1000, "all-denied-p99-ms")
				b.ReportMetric(probes/k, "probes/window")
				b.ReportMetric(breakerErrs/k, "breaker-errors")
				b.ReportMetric(float64(stuck), "trials-not-converged")
			})
		}
	}
}
