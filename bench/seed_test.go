package bench_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/fusebox-io/fusebox/bench"
	"github.com/fusebox-io/fusebox/internal/redistest"
)

// BenchmarkSeedScenario prints the seed's outage table (make bench): the
// scenario of cmd/outagesim, fusebox on a real redis-server started here.
// FUSEBOX_SIM_SCALE divides its durations (default 10; 1 runs the
// 8 minutes per mode in real time).
func BenchmarkSeedScenario(b *testing.B) {
	cfg := bench.SimConfig{Scale: 10, Progress: os.Stderr}
	if v := os.Getenv("FUSEBOX_SIM_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 1 {
			b.Fatalf("FUSEBOX_SIM_SCALE: %q is not a scale of 1 or more", v)
		}
		cfg.Scale = f
	}
	cfg.RedisURL = redistest.Start(b).URL()
	for b.Loop() {
		rows, err := bench.RunSim(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		bench.WriteTable(os.Stdout, cfg, rows)
		for _, r := range rows {
			if r.Mode == bench.ModeFusebox {
				b.ReportMetric(float64(r.UserErrors), "fusebox-user-errors")
				b.ReportMetric(float64(r.FailingProviderCalls), "fusebox-calls-to-hanging")
				b.ReportMetric(r.OutageP99.Seconds(), "fusebox-outage-p99-s")
			}
		}
	}
}
