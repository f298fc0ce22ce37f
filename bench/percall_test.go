package bench_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/bench"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

var (
	sink      error
	errFailed = errors.New("provider failed")
)

// BenchmarkPerCall is the cost of one call through each breaker, closed
// and open, in the same run: no breaker, gobreaker v2's local breaker,
// gobreaker v2's DistributedCircuitBreaker over Redis, and the fusebox
// agent. redis-rt/op counts the round trips the caller's own Redis client
// made (fusebox's agent makes none on the hot path; its background resync
// is amortized in); coord-rt/op those the coordinator made to apply the
// agent's batched reports. Calls from several goroutines at once are
// agentlib's BenchmarkAllowDone.
func BenchmarkPerCall(b *testing.B) {
	coordRT := &bench.RoundTrips{}
	c := testcluster.Start(b, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 10m\n  max_open_timeout: 10m\n", RedisHook: coordRT})
	agentRT := &bench.RoundTrips{}
	agentRedis := redis.NewClient(&redis.Options{Addr: c.Redis.Addr})
	agentRedis.AddHook(agentRT)
	b.Cleanup(func() { _ = agentRedis.Close() })
	agent, err := agentlib.New(agentlib.Config{CoordinatorURL: c.URLs(), Redis: agentRedis, Token: testcluster.AgentToken, AgentID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = agent.Close() })

	gbRT := &bench.RoundTrips{}
	gbRedis := redis.NewClient(&redis.Options{Addr: c.Redis.Addr})
	gbRedis.AddHook(gbRT)
	b.Cleanup(func() { _ = gbRedis.Close() })

	settings := func(name string) gobreaker.Settings {
		return gobreaker.Settings{Name: name, Timeout: 10 * time.Minute}
	}
	ok := func() (struct{}, error) { return struct{}{}, nil }
	fail := func() (struct{}, error) { return struct{}{}, errFailed }

	type impl struct {
		name string
		call func()
		rt   *bench.RoundTrips
	}
	build := func(state string) []impl {
		suffix := state
		local := gobreaker.NewCircuitBreaker[struct{}](settings("local-" + suffix))
		dist, err := gobreaker.NewDistributedCircuitBreaker[struct{}](bench.NewGobreakerStore(gbRedis), settings("dist-"+suffix))
		if err != nil {
			b.Fatal(err)
		}
		fb, err := agent.Breaker("fusebox-" + suffix)
		if err != nil {
			b.Fatal(err)
		}
		if state == "open" {
			for range 6 {
				_, _ = local.Execute(fail)
				_, _ = dist.Execute(fail)
			}
			c.Trip(b, "fusebox-"+suffix, 5)
			testcluster.Eventually(b, 3*time.Second, "fusebox open", func() bool { return fb.State().State == statestore.StateOpen })
			if st, _ := dist.State(); st != gobreaker.StateOpen {
				b.Fatalf("distributed breaker is %s", st)
			}
		}
		return []impl{
			{"none", func() { _, sink = ok() }, nil},
			{"gobreaker-local", func() { _, sink = local.Execute(ok) }, nil},
			{"gobreaker-distributed", func() { _, sink = dist.Execute(ok) }, gbRT},
			{"fusebox", func() {
				done, err := fb.Allow()
				if err != nil {
					sink = err
					return
				}
				done(agentlib.Success())
			}, agentRT},
		}
	}
	for _, state := range []string{"closed", "open"} {
		for _, im := range build(state) {
			b.Run(fmt.Sprintf("%s/serial/%s", state, im.name), func(b *testing.B) {
				b.ReportAllocs()
				var rt0, crt0 int64
				if im.rt != nil {
					rt0 = im.rt.Count()
				}
				crt0 = coordRT.Count()
				b.ResetTimer()
				for range b.N {
					im.call()
				}
				b.StopTimer()
				if im.rt != nil {
					b.ReportMetric(float64(im.rt.Count()-rt0)/float64(b.N), "redis-rt/op")
				}
				if im.name == "fusebox" {
					time.Sleep(50 * time.Millisecond) // let the last batch land before counting
					b.ReportMetric(float64(coordRT.Count()-crt0)/float64(b.N), "coord-rt/op")
				}
			})
		}
	}
}
