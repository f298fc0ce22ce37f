package statestore

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/internal/redistest"
)

// BenchmarkReport_RateBuckets measures what the always-on rate buckets
// (rule 8 of report.lua) add to one report script call on a real
// redis-server: the same script with and without them, in alternating
// chunks on the same server, so the machine's noise falls on both. On one
// breaker every call lands in the second of the last; round robin over
// 4,000 breakers about a second passes between two calls of one breaker,
// as when coordinators apply aggregated successes: every call turns a
// second. Times are Redis's own per EVALSHA (INFO commandstats), without
// the round trip.
func BenchmarkReport_RateBuckets(b *testing.B) {
	start := strings.Index(reportLua, "-- 8. Always")
	endMark := "record_rate(ok + fail + hung, fail + hung)\nend\n"
	end := strings.Index(reportLua, endMark)
	if start < 0 || end < start {
		b.Fatal("report.lua: cannot find the rate buckets' block")
	}
	without := redis.NewScript(commonLua + reportLua[:start] + reportLua[end+len(endMark):])
	with := reportScript
	b.Cleanup(func() { reportScript = with })

	srv := redistest.Real(b)
	s, err := New(srv.Client, Options{Prefix: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rate := DefaultPolicy()
	rate.FailureRate = 50
	for _, c := range []struct {
		name string
		p    Policy
	}{{"successes", DefaultPolicy()}, {"successes-rate-rule", rate}} {
		for _, n := range []int{1, 4000} {
			b.Run(c.name+"/breakers="+strconv.Itoa(n), func(b *testing.B) {
				names := make([]string, n)
				for i := range names {
					names[i] = "bench-" + c.name + "-" + strconv.Itoa(i)
				}
				calls := 0
				chunk := func(script *redis.Script, k int) float64 {
					reportScript = script
					srv.Client.ConfigResetStat(ctx)
					for range k {
						if _, err := s.Report(ctx, names[calls%n], c.p, "coord", Batch{OK: 40}); err != nil {
							b.Fatal(err)
						}
						calls++
					}
					return evalshaMicros(b, srv.Client)
				}
				for range n / 400 {
					chunk(with, 400) // every breaker written once
				}
				var withUS, withoutUS, added []float64
				for b.Loop() {
					w, wo := chunk(with, 400), chunk(without, 400)
					withUS, withoutUS, added = append(withUS, w), append(withoutUS, wo), append(added, w-wo)
				}
				b.ReportMetric(median(withUS), "us/call-with")
				b.ReportMetric(median(withoutUS), "us/call-without")
				b.ReportMetric(median(added), "us/call-added")
			})
		}
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// evalshaMicros is Redis's mean time per EVALSHA since the last stats
// reset.
func evalshaMicros(b *testing.B, c redis.UniversalClient) float64 {
	b.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "usec_per_call="); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
	}
	b.Fatal("no evalsha in INFO commandstats")
	return 0
}
