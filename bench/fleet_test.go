package bench_test

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/bench"
	"github.com/fusebox-io/fusebox/internal/redistest"
)

// BenchmarkFleet prints the fleet table (make bench): Redis and
// coordinator cost per fleet size, and trip propagation. FUSEBOX_FLEET_AGENTS
// overrides the sizes ("10,50,200,1000").
func BenchmarkFleet(b *testing.B) {
	sizes := []int{10, 50, 200, 1000}
	if v := os.Getenv("FUSEBOX_FLEET_AGENTS"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("FUSEBOX_FLEET_AGENTS: %q is not a fleet size", f)
			}
			sizes = append(sizes, n)
		}
	}
	srv := redistest.Start(b, redistest.WithArgs("--maxclients", "20000"))
	cfg := bench.FleetConfig{RedisAddr: srv.Addr, Agents: sizes, Progress: os.Stderr}
	for b.Loop() {
		rows, err := bench.RunFleet(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		bench.WriteFleetTable(os.Stdout, cfg, rows)
		last := rows[len(rows)-1]
		b.ReportMetric(last.CmdsPerUserCall, "redis-cmds/call")
		b.ReportMetric(100*last.CoordinatorCPU, "coord-cpu-%")
	}
}

// TestRunFleet runs a tiny fleet and checks the table, not its numbers.
func TestRunFleet(t *testing.T) {
	srv := redistest.Start(t)
	cfg := bench.FleetConfig{RedisAddr: srv.Addr, Agents: []int{2}, Steady: time.Second, Trips: 2, Outages: 2}
	rows, err := bench.RunFleet(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0]
	if r.Agents != 2 || r.CallsPerSec < 50 || r.RedisCmdsPerSec <= 0 || r.PropagationP99 <= 0 || r.AgentsDegraded != 0 ||
		r.Threshold != 5 || r.OutageCallsP50 < int64(r.Threshold) || r.OutageTripP99 <= 0 || r.OutageNthP50 <= 0 || r.OutageNthP50 > r.OutageTripP50 {
		t.Fatalf("row %+v", r)
	}
	var out bytes.Buffer
	bench.WriteFleetTable(&out, cfg, rows)
	if !strings.Contains(out.String(), "Redis commands/s") {
		t.Fatalf("table:\n%s", out.String())
	}
}
